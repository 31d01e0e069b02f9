package pool_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

var (
	contactA = uuid.MustParse("00000000-0000-4000-8000-00000000000a")
	contactB = uuid.MustParse("00000000-0000-4000-8000-00000000000b")
	contactC = uuid.MustParse("00000000-0000-4000-8000-00000000000c")
)

// jsonString returns a JSON string literal exactly n bytes long.
func jsonString(n int) json.RawMessage {
	return json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)
}

// nested returns inner nested depth deep in arrays and objects, in turn.
func nested(depth int, inner string) json.RawMessage {
	var open, close strings.Builder
	for i := range depth {
		if i%2 == 0 {
			open.WriteString(`[`)
		} else {
			open.WriteString(`{"k":`)
		}
	}
	for i := depth - 1; i >= 0; i-- {
		if i%2 == 0 {
			close.WriteString(`]`)
		} else {
			close.WriteString(`}`)
		}
	}
	return json.RawMessage(open.String() + inner + close.String())
}

func TestPrepareItems(t *testing.T) {
	t.Parallel()
	// siblings is 101 records in a list: 3 deep.
	siblings := json.RawMessage("[" + strings.Repeat(`{"tags":["a"]},`, 100) + `{"tags":["a"]}]`)

	tests := []struct {
		name    string
		in      []pool.NewItem
		want    []pool.NewItem
		wantErr map[string]string
	}{
		{name: "ErrNil", in: nil, wantErr: map[string]string{"items": validate.RuleRequired}},
		{name: "ErrEmpty", in: []pool.NewItem{}, wantErr: map[string]string{"items": validate.RuleRequired}},
		{
			name: "OKOne",
			in:   []pool.NewItem{{ContactUUID: contactA}},
			want: []pool.NewItem{{ContactUUID: contactA}},
		},
		{
			name: "OKPayloadAndPriority",
			in:   []pool.NewItem{{ContactUUID: contactA, Priority: -3, Payload: json.RawMessage(`{"phone":"+1555"}`)}},
			want: []pool.NewItem{{ContactUUID: contactA, Priority: -3, Payload: json.RawMessage(`{"phone":"+1555"}`)}},
		},
		{
			name: "OKPayloadScalarsAndNull",
			in: []pool.NewItem{
				{ContactUUID: contactA, Payload: json.RawMessage(`"+1555"`)},
				{ContactUUID: contactB, Payload: json.RawMessage(`null`)},
				{ContactUUID: contactC, Payload: json.RawMessage(` [1, 2] `)},
			},
			want: []pool.NewItem{
				{ContactUUID: contactA, Payload: json.RawMessage(`"+1555"`)},
				{ContactUUID: contactB, Payload: json.RawMessage(`null`)},
				{ContactUUID: contactC, Payload: json.RawMessage(` [1, 2] `)},
			},
		},
		{
			name: "OKPayloadAtLimit",
			in:   []pool.NewItem{{ContactUUID: contactA, Payload: jsonString(pool.MaxPayloadBytes)}},
			want: []pool.NewItem{{ContactUUID: contactA, Payload: jsonString(pool.MaxPayloadBytes)}},
		},
		{
			name:    "ErrNilUUID",
			in:      []pool.NewItem{{ContactUUID: contactA}, {ContactUUID: uuid.Nil}},
			wantErr: map[string]string{"items[1].contact_uuid": validate.RuleRequired},
		},
		{
			name:    "ErrPayloadNotJSON",
			in:      []pool.NewItem{{ContactUUID: contactA, Payload: json.RawMessage(`{"phone":`)}},
			wantErr: map[string]string{"items[0].payload": validate.RuleFormat},
		},
		{
			name:    "ErrPayloadBareWord",
			in:      []pool.NewItem{{ContactUUID: contactA}, {ContactUUID: contactB}, {ContactUUID: contactC, Payload: json.RawMessage(`+1555`)}},
			wantErr: map[string]string{"items[2].payload": validate.RuleFormat},
		},
		{
			name:    "ErrPayloadInvalidUTF8",
			in:      []pool.NewItem{{ContactUUID: contactA, Payload: json.RawMessage("{\"name\":\"\xff\"}")}},
			wantErr: map[string]string{"items[0].payload": validate.RuleFormat},
		},
		{
			name:    "ErrPayloadBlank",
			in:      []pool.NewItem{{ContactUUID: contactA, Payload: json.RawMessage(`  `)}},
			wantErr: map[string]string{"items[0].payload": validate.RuleFormat},
		},
		{
			name: "OKPayloadAtDepthLimit",
			in:   []pool.NewItem{{ContactUUID: contactA, Payload: nested(pool.MaxPayloadDepth, `"\"[[[[[[[[[[\\"`)}},
			want: []pool.NewItem{{ContactUUID: contactA, Payload: nested(pool.MaxPayloadDepth, `"\"[[[[[[[[[[\\"`)}},
		},
		{
			// Depth is how deeply values nest, not how many arrays and
			// objects there are: a list of many records is shallow.
			name: "OKPayloadManySiblingsShallow",
			in:   []pool.NewItem{{ContactUUID: contactA, Payload: siblings}},
			want: []pool.NewItem{{ContactUUID: contactA, Payload: siblings}},
		},
		{
			name:    "ErrPayloadTooDeep",
			in:      []pool.NewItem{{ContactUUID: contactA, Payload: nested(pool.MaxPayloadDepth+1, `1`)}},
			wantErr: map[string]string{"items[0].payload": validate.RuleFormat},
		},
		{
			name:    "ErrPayloadTooDeepForEncodingJSON",
			in:      []pool.NewItem{{ContactUUID: contactA, Payload: json.RawMessage(strings.Repeat("[", 10000) + strings.Repeat("]", 10000))}},
			wantErr: map[string]string{"items[0].payload": validate.RuleFormat},
		},
		{
			name:    "ErrPayloadOversized",
			in:      []pool.NewItem{{ContactUUID: contactA, Payload: jsonString(pool.MaxPayloadBytes + 1)}},
			wantErr: map[string]string{"items[0].payload": validate.RuleLength},
		},
		{
			name: "ErrSeveralBadItemsAllReported",
			in: []pool.NewItem{
				{ContactUUID: uuid.Nil},
				{ContactUUID: contactA},
				{ContactUUID: contactB, Payload: json.RawMessage(`{`)},
				{ContactUUID: contactC, Payload: jsonString(pool.MaxPayloadBytes + 10)},
			},
			wantErr: map[string]string{
				"items[0].contact_uuid": validate.RuleRequired,
				"items[2].payload":      validate.RuleFormat,
				"items[3].payload":      validate.RuleLength,
			},
		},
		{
			name: "ErrBothFieldsOfOneItem",
			in:   []pool.NewItem{{ContactUUID: contactA}, {ContactUUID: uuid.Nil, Payload: json.RawMessage(`nope`)}},
			wantErr: map[string]string{
				"items[1].contact_uuid": validate.RuleRequired,
				"items[1].payload":      validate.RuleFormat,
			},
		},
		{
			name: "ErrEveryNilUUIDReported",
			in:   []pool.NewItem{{ContactUUID: uuid.Nil}, {ContactUUID: uuid.Nil}},
			wantErr: map[string]string{
				"items[0].contact_uuid": validate.RuleRequired,
				"items[1].contact_uuid": validate.RuleRequired,
			},
		},
		{
			name: "ErrBadDuplicateStillReported",
			in:   []pool.NewItem{{ContactUUID: contactA}, {ContactUUID: contactA, Payload: json.RawMessage(`{`)}},
			wantErr: map[string]string{
				"items[1].payload": validate.RuleFormat,
			},
		},
		{
			name: "OKDuplicatesFoldedFirstWinsOrderKept",
			in: []pool.NewItem{
				{ContactUUID: contactC, Priority: 1, Payload: json.RawMessage(`{"n":1}`)},
				{ContactUUID: contactA, Priority: 2},
				{ContactUUID: contactC, Priority: 9, Payload: json.RawMessage(`{"n":2}`)},
				{ContactUUID: contactB, Priority: 3},
				{ContactUUID: contactA, Priority: 8, Payload: json.RawMessage(`{"n":3}`)},
				{ContactUUID: contactC},
			},
			want: []pool.NewItem{
				{ContactUUID: contactC, Priority: 1, Payload: json.RawMessage(`{"n":1}`)},
				{ContactUUID: contactA, Priority: 2},
				{ContactUUID: contactB, Priority: 3},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := pool.PrepareItems(tt.in)
			requireFieldRules(t, err, tt.wantErr)
			if len(tt.wantErr) > 0 {
				require.Nil(t, got, "a rejected batch returns no items")
				return
			}
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("OKDoesNotModifyInput", func(t *testing.T) {
		t.Parallel()
		in := []pool.NewItem{{ContactUUID: contactA}, {ContactUUID: contactA, Priority: 5}, {ContactUUID: contactB}}
		_, err := pool.PrepareItems(in)
		require.NoError(t, err)
		require.Equal(t, []pool.NewItem{{ContactUUID: contactA}, {ContactUUID: contactA, Priority: 5}, {ContactUUID: contactB}}, in)
	})

	t.Run("OKManyDistinct", func(t *testing.T) {
		t.Parallel()
		in := make([]pool.NewItem, 1000)
		for i := range in {
			in[i] = pool.NewItem{ContactUUID: uuid.New(), Priority: i}
		}
		got, err := pool.PrepareItems(append(in, in...))
		require.NoError(t, err)
		require.Equal(t, in, got)
	})
}

func TestNewItem_Item(t *testing.T) {
	t.Parallel()

	now := time.Date(2024, 5, 6, 9, 0, 0, 0, time.FixedZone("X", -5*3600))
	n := pool.NewItem{ContactUUID: contactA, Priority: 4, Payload: json.RawMessage(`{"phone":"+1"}`)}
	got := n.Item(poolID, now)
	require.Equal(t, pool.Item{
		PoolUUID:    poolID,
		ContactUUID: contactA,
		Status:      pool.StatusPending,
		Priority:    4,
		AddedAt:     time.Date(2024, 5, 6, 14, 0, 0, 0, time.UTC),
		Payload:     json.RawMessage(`{"phone":"+1"}`),
	}, got)
	require.Equal(t, time.UTC, got.AddedAt.Location())
	require.True(t, got.Due(now), "a new item is due at once")
}

func TestNewItem_UnmarshalJSON(t *testing.T) {
	t.Parallel()

	var n pool.NewItem
	require.NoError(t, json.Unmarshal([]byte(`{"contact_uuid":"00000000-0000-4000-8000-00000000000a","priority":2,"payload":{"phone":"+1"}}`), &n))
	require.Equal(t, pool.NewItem{ContactUUID: contactA, Priority: 2, Payload: json.RawMessage(`{"phone":"+1"}`)}, n)

	var bad pool.NewItem
	require.Error(t, json.Unmarshal([]byte(`{"contact_uuid":"not-a-uuid"}`), &bad))
}

func TestItem_Due(t *testing.T) {
	t.Parallel()

	now := t0
	before, after := now.Add(-time.Second), now.Add(time.Second)

	tests := []struct {
		name   string
		status pool.Status
		next   *time.Time
		want   bool
	}{
		{"Pending", pool.StatusPending, nil, true},
		{"PendingIgnoresNextRetry", pool.StatusPending, &after, true},
		{"RetryingPast", pool.StatusRetrying, &before, true},
		{"RetryingNow", pool.StatusRetrying, &now, true},
		{"RetryingFuture", pool.StatusRetrying, &after, false},
		{"RetryingNoTime", pool.StatusRetrying, nil, false},
		{"ScheduledPast", pool.StatusScheduled, &before, true},
		{"ScheduledNow", pool.StatusScheduled, &now, true},
		{"ScheduledFuture", pool.StatusScheduled, &after, false},
		{"ScheduledNoTime", pool.StatusScheduled, nil, false},
		{"Processing", pool.StatusProcessing, &before, false},
		{"InCall", pool.StatusInCall, nil, false},
		{"Completed", pool.StatusCompleted, &before, false},
		{"Failed", pool.StatusFailed, &before, false},
		{"Skipped", pool.StatusSkipped, nil, false},
		{"Unknown", "Done", &before, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			it := pool.Item{Status: tt.status, NextRetryAt: tt.next}
			require.Equal(t, tt.want, it.Due(now))
		})
	}

	t.Run("OKOtherTimeZone", func(t *testing.T) {
		t.Parallel()
		at := now.In(time.FixedZone("X", 9*3600))
		it := pool.Item{Status: pool.StatusRetrying, NextRetryAt: &at}
		require.True(t, it.Due(now))
		require.False(t, it.Due(now.Add(-time.Nanosecond)))
	})
}

// TestPrepareItemsContext: a batch is checked whole up to 64 items
// whatever its context says; a larger one returns the context's error once
// the context has ended, and is checked as PrepareItems checks it while the
// context lasts.
func TestPrepareItemsContext(t *testing.T) {
	t.Parallel()
	batch := func(n int) []pool.NewItem {
		items := make([]pool.NewItem, n)
		for i := range items {
			items[i] = pool.NewItem{ContactUUID: uuid.New()}
		}
		return items
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()

	out, err := pool.PrepareItemsContext(ended, batch(64))
	require.NoError(t, err, "a batch of 64 is checked whatever its context says")
	require.Len(t, out, 64)

	large := batch(3 * 4096)
	_, err = pool.PrepareItemsContext(ended, large)
	require.ErrorIs(t, err, context.Canceled, "a larger batch stops once its context has ended")
	var fields validate.Errors
	require.NotErrorAs(t, err, &fields, "the context's end is no field error")

	large[5000].ContactUUID = uuid.Nil
	large = append(large, large[0]) // a duplicate, folded
	out, err = pool.PrepareItemsContext(context.Background(), large)
	require.Nil(t, out)
	requireFieldRules(t, err, map[string]string{"items[5000].contact_uuid": validate.RuleRequired})
	var nilctx context.Context
	_, err = pool.PrepareItemsContext(nilctx, large)
	requireFieldRules(t, err, map[string]string{"ctx": validate.RuleRequired, "items[5000].contact_uuid": validate.RuleRequired})
	large[5000].ContactUUID = uuid.New()
	out, err = pool.PrepareItemsContext(context.Background(), large)
	require.NoError(t, err)
	require.Len(t, out, 3*4096, "the duplicate folded")
}
