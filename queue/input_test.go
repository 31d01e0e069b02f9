package queue_test

// Input hygiene at the engine's API: text that enters poolq is valid UTF-8
// without NUL and within its length; a lease settles only the item of its
// own pool and contact; a failed call writes nothing.

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

func TestEngine_NotesAreText(t *testing.T) {
	t.Parallel()
	bad := map[string]string{
		"InvalidUTF8": "busy \xff",
		"NUL":         "bu\x00sy",
		"TooLong":     strings.Repeat("n", pool.MaxNoteLen+1),
	}
	for name, note := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.pool(t, pool.Parallel, 10, 3)
			ids := b.add(t, p.UUID, 2)
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)

			require.Equal(t, []string{"note"}, fieldsOf(t, b.eng.Complete(b.ctx, l, note)))
			require.Equal(t, []string{"note"}, fieldsOf(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: note})))
			_, err = b.eng.Settle(b.ctx, queue.Outcome{Lease: l, Note: note})
			require.Equal(t, []string{"outcomes[0].note"}, fieldsOf(t, err))
			_, err = b.eng.Settle(b.ctx, queue.Outcome{Lease: l, Failure: &queue.Failure{Note: note}})
			require.Equal(t, []string{"outcomes[0].failure.note"}, fieldsOf(t, err))
			_, err = b.eng.Skip(b.ctx, p.UUID, ids[1], note)
			require.Equal(t, []string{"note"}, fieldsOf(t, err))

			// Nothing was written: the lease still settles, the other item waits.
			require.Equal(t, pool.StatusProcessing, b.item(t, p.UUID, l.ContactUUID).Status)
			require.Equal(t, pool.StatusPending, b.item(t, p.UUID, ids[1]).Status)
			require.NoError(t, b.eng.Complete(b.ctx, l, strings.Repeat("n", pool.MaxNoteLen)), "a note at the limit")
		})
	}
}

// TestEngine_LeaseNamesItsItem: a lease whose contact or pool is not its
// item's settles nothing, as a webhook that paired the wrong contact with a
// lease must not settle someone else's call.
func TestEngine_LeaseNamesItsItem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 10, 3)
	other := b.pool(t, pool.Parallel, 10, 3)
	ids := b.add(t, p.UUID, 2)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)

	wrongContact := *l
	wrongContact.ContactUUID = ids[1]
	wrongPool := *l
	wrongPool.PoolUUID = other.UUID
	for name, bad := range map[string]queue.Lease{"Contact": wrongContact, "Pool": wrongPool} {
		require.ErrorIs(t, b.eng.Complete(b.ctx, &bad, ""), queue.ErrLeaseLost, name)
		require.ErrorIs(t, b.eng.Fail(b.ctx, &bad, queue.Failure{Final: true}), queue.ErrLeaseLost, name)
		require.ErrorIs(t, b.eng.Release(b.ctx, &bad), queue.ErrLeaseLost, name)
		require.ErrorIs(t, b.eng.MarkInCall(b.ctx, &bad), queue.ErrLeaseLost, name)
		res, err := b.eng.Settle(b.ctx, queue.Outcome{Lease: &bad})
		require.NoError(t, err)
		require.ErrorIs(t, res[0], queue.ErrLeaseLost, name)
	}
	it := b.item(t, p.UUID, ids[0])
	require.Equal(t, pool.StatusProcessing, it.Status, "settled by nothing")
	require.Equal(t, pool.StatusPending, b.item(t, p.UUID, ids[1]).Status)
	require.NoError(t, b.eng.Complete(b.ctx, l, "the right lease"))
}

// TestEngine_SettlementsReturnTheItem: Complete, Fail and Release leave the
// settled item in the lease, as MarkInCall and Extend do, and so does
// Settle, whose outcomes are applied "as Complete or Fail would" (it left
// the item as dispatched); a lease it lost keeps its item.
func TestEngine_SettlementsReturnTheItem(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p := b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p.UUID, 5)
	ls, err := b.eng.DequeueN(b.ctx, p.UUID, 5)
	require.NoError(t, err)

	require.NoError(t, b.eng.Complete(b.ctx, ls[0], "answered"))
	require.NoError(t, b.eng.Fail(b.ctx, ls[1], queue.Failure{Note: "busy"}))
	require.NoError(t, b.eng.Release(b.ctx, ls[2]))
	stale := *ls[0]
	stale.Item = pool.Item{}
	results, err := b.eng.Settle(b.ctx, queue.Outcome{Lease: ls[3], Note: "answered"},
		queue.Outcome{Lease: ls[4], Failure: &queue.Failure{Note: "busy"}}, queue.Outcome{Lease: &stale})
	require.NoError(t, err)
	require.Equal(t, []bool{false, false, true}, []bool{results[0] != nil, results[1] != nil, results[2] != nil})
	want := []pool.Status{pool.StatusCompleted, pool.StatusRetrying, pool.StatusPending, pool.StatusCompleted, pool.StatusRetrying}
	for i := range want {
		require.Equal(t, want[i], ls[i].Item.Status, "lease %d", i)
		require.Equal(t, b.item(t, p.UUID, ls[i].ContactUUID), ls[i].Item, "lease %d: the item as stored", i)
	}
	require.Zero(t, stale.Item, "a lost lease's item is left as it was")
}

func TestEngine_RemoveNothing(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	n, err := b.eng.Remove(b.ctx, p.UUID)
	require.Equal(t, []string{"contact_uuids"}, fieldsOf(t, err))
	require.Zero(t, n)
	require.Equal(t, 1, b.counts(t, p.UUID)[pool.StatusPending])

	// Too many contacts for one transaction, one of them nil: both said,
	// nothing removed.
	many := make([]uuid.UUID, queue.MaxContactsPerCall+1)
	for i := range many {
		many[i] = uuid.New()
	}
	many[3] = uuid.Nil
	n, err = b.eng.Remove(b.ctx, p.UUID, many...)
	require.Equal(t, []string{"contact_uuids", "contact_uuids[3]"}, fieldsOf(t, err))
	require.Zero(t, n)
	require.Equal(t, 1, b.counts(t, p.UUID)[pool.StatusPending])
}

// TestEngine_DNCMostContacts: AddDNC and RemoveDNC take MaxContactsPerCall
// contacts in one call, the bound included.
func TestEngine_DNCMostContacts(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	most := make([]uuid.UUID, queue.MaxContactsPerCall)
	for i := range most {
		most[i] = uuid.New()
	}
	n, err := b.eng.AddDNC(b.ctx, most...)
	require.NoError(t, err)
	require.Equal(t, queue.MaxContactsPerCall, n)
	n, err = b.eng.RemoveDNC(b.ctx, most...)
	require.NoError(t, err)
	require.Equal(t, queue.MaxContactsPerCall, n)
}

// TestFailureOf_NotesAlwaysSettle: whatever a handler's error says, the
// note Work records is one the engine accepts.
func TestFailureOf_NotesAlwaysSettle(t *testing.T) {
	t.Parallel()
	for name, text := range map[string]string{
		"InvalidUTF8": "busy \xff\xfe",
		"NUL":         "no\x00answer",
		"Long":        strings.Repeat("é", 3*pool.MaxNoteLen),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := queue.FailureOf(errors.New(text))
			b := setup(t)
			p := b.pool(t, pool.FIFO, 1, 3)
			b.add(t, p.UUID, 1)
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			require.NoError(t, b.eng.Fail(b.ctx, l, f), "the note of %q", text[:min(len(text), 20)])
		})
	}
}

// TestLease_JSON: a lease marshalled (to be kept with a call and settled
// from a webhook) writes its expiry as the API writes times, and read back
// it settles the item.
func TestLease_JSON(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	b.clock.Advance(123456789) // nanoseconds in every time
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	raw, err := json.Marshal(l)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, l.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339), m["expires_at"])
	var back queue.Lease
	require.NoError(t, json.Unmarshal(raw, &back))
	require.NoError(t, b.eng.Complete(b.ctx, &back, "settled from JSON"))

	// The caller's encoder decides whether <, > and & are escaped, in the
	// lease's item too (see pool's TestMarshalJSON_CallerDecidesHTMLEscaping).
	const markup = `{"script":"<b>Tom & Jerry</b>"}`
	_, err = b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New(), Payload: json.RawMessage(markup)})
	require.NoError(t, err)
	l, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	raw, err = jsonenc.Marshal(l)
	require.NoError(t, err)
	require.Contains(t, string(raw), markup)
	escaped, err := json.Marshal(l)
	require.NoError(t, err)
	require.NotContains(t, string(escaped), "<")
	require.JSONEq(t, string(raw), string(escaped))
}

// TestEngine_EveryBadFieldAtOnce: a call names every bad argument in one
// validate.Errors, by its own JSON name, before it reads anything (but
// UpdateRule, which reads the rule whose type decides which fields count:
// TestEngine_UpdateRuleEveryBadField): an unknown id with bad parameters is
// a field error, not ErrNotFound; a nil UUID in an optional filter is an
// error, not an empty result; names and search terms are one line (a
// rule's search runs over its fields joined by line breaks: "\n" matched
// every rule).
func TestEngine_EveryBadFieldAtOnce(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	ctx := b.ctx
	p := b.pool(t, pool.FIFO, 1, 3)
	r := b.rule(t, campaign.CreateRuleParams{})
	c := b.campaignOf(t, r.UUID, p.UUID)
	empty, bad, zero := "", "two\nlines", 0
	unknown := uuid.New()

	for _, tc := range []struct {
		name string
		err  error
		want []string
	}{
		{"DetachPool", second(b.eng.DetachPool(ctx, c.UUID, uuid.Nil)), []string{"pool_uuid"}},
		{"DetachPoolBoth", second(b.eng.DetachPool(ctx, uuid.Nil, uuid.Nil)), []string{"uuid", "pool_uuid"}},
		{"AssignRule", second(b.eng.AssignRule(ctx, uuid.Nil, uuid.Nil)), []string{"uuid", "rule_uuid"}},
		{"UpdatePool", second(b.eng.UpdatePool(ctx, uuid.Nil, pool.UpdateParams{MaxParallelItems: &zero})),
			[]string{"uuid", "max_parallel_items"}},
		{"DuplicatePool", second(b.eng.DuplicatePool(ctx, uuid.Nil, pool.DuplicateParams{Name: &bad})),
			[]string{"uuid", "name"}},
		{"Items", second(b.eng.Items(ctx, uuid.Nil, pool.ItemQuery{Status: "Done"})), []string{"uuid", "status"}},
		{"UpdateCampaign", second(b.eng.UpdateCampaign(ctx, uuid.Nil, campaign.UpdateParams{Name: &empty})),
			[]string{"uuid", "name"}},
		{"UpdateCampaignUnknown", second(b.eng.UpdateCampaign(ctx, unknown, campaign.UpdateParams{Name: &empty})),
			[]string{"name"}},
		{"UpdateRule", second(b.eng.UpdateRule(ctx, uuid.Nil, campaign.UpdateRuleParams{Name: &bad})),
			[]string{"uuid", "name"}},
		{"UpdateRuleUnknown", second(b.eng.UpdateRule(ctx, unknown, campaign.UpdateRuleParams{Name: &empty})),
			[]string{"name"}},
		{"CreateCampaignName", second(b.eng.CreateCampaign(ctx, campaign.CreateParams{Name: "line1\nline2"})),
			[]string{"name"}},
		{"CreateRuleName", second(b.eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "tab\there"})),
			[]string{"name"}},
		{"UpdateCampaignName", second(b.eng.UpdateCampaign(ctx, c.UUID, campaign.UpdateParams{Name: &bad})),
			[]string{"name"}},
		{"RulesSearch", second(b.eng.Rules(ctx, campaign.RuleQuery{Search: "\n"})), []string{"search"}},
		{"CampaignsSearch", second(b.eng.Campaigns(ctx, campaign.Query{Search: "a\tb"})), []string{"search"}},
		{"CampaignsRuleNil", second(b.eng.Campaigns(ctx, campaign.Query{RuleUUID: &uuid.Nil})), []string{"rule_uuid"}},
		{"EscalationsPoolNil", second(b.eng.Escalations(ctx, campaign.EscalationQuery{PoolUUID: &uuid.Nil})),
			[]string{"pool_uuid"}},
	} {
		require.Equal(t, tc.want, fieldsOf(t, tc.err), tc.name)
	}
	// Nothing was written.
	got, err := b.eng.Campaign(ctx, c.UUID)
	require.NoError(t, err)
	require.Equal(t, c, got)
	gr, err := b.eng.Rule(ctx, r.UUID)
	require.NoError(t, err)
	require.Equal(t, r, gr)
	cs, err := b.eng.Campaigns(ctx, campaign.Query{})
	require.NoError(t, err)
	require.Equal(t, 1, cs.Total)
	rs, err := b.eng.Rules(ctx, campaign.RuleQuery{})
	require.NoError(t, err)
	require.Equal(t, 1, rs.Total)
}

// second returns the error of a call that returns a value and an error.
func second[T any](_ T, err error) error { return err }

// TestEngine_NilContext: a call given a nil context, its other arguments
// valid, returns a field error on ctx; it does not panic, nor write.
func TestEngine_NilContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 10, 3)
	ids := b.add(t, p.UUID, 1)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	c := b.campaignOf(t, uuid.Nil, b.pool(t, pool.FIFO, 1, 3).UUID)
	var nilctx context.Context
	for name, call := range map[string]func() error{
		"Pool":  func() error { _, err := b.eng.Pool(nilctx, p.UUID); return err },
		"Items": func() error { _, err := b.eng.Items(nilctx, p.UUID, pool.ItemQuery{}); return err },
		"CreatePool": func() error {
			_, err := b.eng.CreatePool(nilctx, pool.CreateParams{Name: "new", Description: "d"})
			return err
		},
		"Add":        func() error { _, err := b.eng.Add(nilctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); return err },
		"TryDequeue": func() error { _, err := b.eng.TryDequeue(nilctx, p.UUID); return err },
		"Dequeue":    func() error { _, err := b.eng.Dequeue(nilctx, p.UUID); return err },
		"Complete":   func() error { return b.eng.Complete(nilctx, l, "") },
		"Skip":       func() error { _, err := b.eng.Skip(nilctx, p.UUID, ids[0], ""); return err },
		"AddDNC":     func() error { _, err := b.eng.AddDNC(nilctx, uuid.New()); return err },
		"CreateRule": func() error { _, err := b.eng.CreateRule(nilctx, campaign.CreateRuleParams{Name: "rule"}); return err },
		"Work": func() error {
			return b.eng.Work(nilctx, func(context.Context, *queue.Lease) error { return nil }, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
		},
		"DequeueN": func() error { _, err := b.eng.DequeueN(nilctx, p.UUID, 2); return err },
		"DequeueCampaign": func() error {
			_, err := b.eng.DequeueCampaign(nilctx, c.UUID)
			return err
		},
		"WatchEscalations": func() error {
			return b.eng.WatchEscalations(nilctx, 0, func(campaign.Escalation) error { return nil })
		},
	} {
		var err error
		require.NotPanics(t, func() { err = call() }, name)
		require.Equal(t, []string{"ctx"}, fieldsOf(t, err), name)
	}
	require.Equal(t, pool.StatusProcessing, b.item(t, p.UUID, ids[0]).Status, "nothing written")
	d, err := b.eng.Pool(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 1, d.ContactsCount)
}

// TestEngine_WrongStatusNamesItsOperationOnce: an operation refused for
// the item's status says which operation and which status, once each (the
// state machine's error wrapped by the engine's read "release: release:
// the call connected" and "requeue item: requeue: Pending").
func TestEngine_WrongStatusNamesItsOperationOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 2, 3)
	ids := b.add(t, p.UUID, 2)
	l, err := b.eng.Dequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.MarkInCall(b.ctx, l))

	err = b.eng.Release(b.ctx, l)
	require.ErrorIs(t, err, pool.ErrWrongStatus)
	require.Equal(t, "release: the item is In_Call, its call connected: complete or fail it: "+pool.ErrWrongStatus.Error(), err.Error())

	waiting := ids[0]
	if waiting == l.ContactUUID {
		waiting = ids[1]
	}
	_, err = b.eng.Requeue(b.ctx, p.UUID, waiting)
	require.ErrorIs(t, err, pool.ErrWrongStatus)
	require.Equal(t, "requeue item: the item is Pending: "+pool.ErrWrongStatus.Error(), err.Error())
}
