package pool_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

func TestPoolQuery_Normalize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		q       pool.PoolQuery
		want    pool.PoolQuery
		wantErr map[string]string
	}{
		{name: "OKDefaults", q: pool.PoolQuery{}, want: pool.PoolQuery{Page: 1, PerPage: 15}},
		{name: "OKGiven", q: pool.PoolQuery{Page: 3, PerPage: 50}, want: pool.PoolQuery{Page: 3, PerPage: 50}},
		{name: "OKPerPage1", q: pool.PoolQuery{PerPage: 1}, want: pool.PoolQuery{Page: 1, PerPage: 1}},
		{name: "OKPerPage100", q: pool.PoolQuery{PerPage: 100}, want: pool.PoolQuery{Page: 1, PerPage: 100}},
		{name: "ErrPerPage101", q: pool.PoolQuery{PerPage: 101}, wantErr: map[string]string{"per_page": validate.RuleRange}},
		{name: "ErrPerPageNegative", q: pool.PoolQuery{PerPage: -1}, wantErr: map[string]string{"per_page": validate.RuleRange}},
		{name: "ErrPageNegative", q: pool.PoolQuery{Page: -1}, wantErr: map[string]string{"page": validate.RuleRange}},
		{name: "OKTypeCanonical", q: pool.PoolQuery{Type: pool.LIFO}, want: pool.PoolQuery{Page: 1, PerPage: 15, Type: pool.LIFO}},
		{name: "OKTypeLowerCase", q: pool.PoolQuery{Type: "fifo"}, want: pool.PoolQuery{Page: 1, PerPage: 15, Type: pool.FIFO}},
		{name: "OKTypeMixedCase", q: pool.PoolQuery{Type: "pArAlLeL"}, want: pool.PoolQuery{Page: 1, PerPage: 15, Type: pool.Parallel}},
		{name: "ErrTypeUnknown", q: pool.PoolQuery{Type: "Random"}, wantErr: map[string]string{"type": validate.RuleEnum}},
		{name: "ErrTypeTrailingSpace", q: pool.PoolQuery{Type: "FIFO "}, wantErr: map[string]string{"type": validate.RuleEnum}},
		{
			name: "OKFiltersKept",
			q:    pool.PoolQuery{IsActive: ptr(false), Search: "VIP Ünïcode"},
			want: pool.PoolQuery{Page: 1, PerPage: 15, IsActive: ptr(false), Search: "VIP Ünïcode"},
		},
		{name: "OKSearchLongest", q: pool.PoolQuery{Search: strings.Repeat("é", pool.MaxSearchLen)}, want: pool.PoolQuery{Page: 1, PerPage: 15, Search: strings.Repeat("é", pool.MaxSearchLen)}},
		{name: "ErrSearchTooLong", q: pool.PoolQuery{Search: strings.Repeat("é", pool.MaxSearchLen+1)}, wantErr: map[string]string{"search": validate.RuleLength}},
		{name: "ErrSearchNewline", q: pool.PoolQuery{Search: "leads\nécole"}, wantErr: map[string]string{"search": validate.RuleFormat}},
		{name: "ErrSearchControl", q: pool.PoolQuery{Search: "a\x07b"}, wantErr: map[string]string{"search": validate.RuleFormat}},
		{name: "ErrSearchNUL", q: pool.PoolQuery{Search: "a\x00b"}, wantErr: map[string]string{"search": validate.RuleFormat}},
		{name: "ErrSearchInvalidUTF8", q: pool.PoolQuery{Search: "VIP\xff"}, wantErr: map[string]string{"search": validate.RuleFormat}},
		{
			name:    "ErrEveryFieldAtOnce",
			q:       pool.PoolQuery{Page: -2, PerPage: 1000, Type: "x", Search: "\n"},
			wantErr: map[string]string{"page": validate.RuleRange, "per_page": validate.RuleRange, "type": validate.RuleEnum, "search": validate.RuleFormat},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.q.Normalize()
			requireFieldRules(t, err, tt.wantErr)
			if len(tt.wantErr) == 0 {
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestItemQuery_Normalize(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		q       pool.ItemQuery
		want    pool.ItemQuery
		wantErr map[string]string
	}{
		{name: "OKDefaults", q: pool.ItemQuery{}, want: pool.ItemQuery{Page: 1, PerPage: 25}},
		{name: "OKGiven", q: pool.ItemQuery{Page: 2, PerPage: 10}, want: pool.ItemQuery{Page: 2, PerPage: 10}},
		{name: "OKPerPage100", q: pool.ItemQuery{PerPage: 100}, want: pool.ItemQuery{Page: 1, PerPage: 100}},
		{name: "ErrPerPage101", q: pool.ItemQuery{PerPage: 101}, wantErr: map[string]string{"per_page": validate.RuleRange}},
		{name: "ErrPerPageNegative", q: pool.ItemQuery{PerPage: -1}, wantErr: map[string]string{"per_page": validate.RuleRange}},
		{name: "ErrPageNegative", q: pool.ItemQuery{Page: -1}, wantErr: map[string]string{"page": validate.RuleRange}},
		{name: "OKStatusCanonical", q: pool.ItemQuery{Status: pool.StatusFailed}, want: pool.ItemQuery{Page: 1, PerPage: 25, Status: pool.StatusFailed}},
		{name: "OKStatusLowerCase", q: pool.ItemQuery{Status: "in_call"}, want: pool.ItemQuery{Page: 1, PerPage: 25, Status: pool.StatusInCall}},
		{name: "OKStatusUpperCase", q: pool.ItemQuery{Status: "PENDING"}, want: pool.ItemQuery{Page: 1, PerPage: 25, Status: pool.StatusPending}},
		{name: "ErrStatusUnknown", q: pool.ItemQuery{Status: "Done"}, wantErr: map[string]string{"status": validate.RuleEnum}},
		{name: "ErrStatusWithoutUnderscore", q: pool.ItemQuery{Status: "InCall"}, wantErr: map[string]string{"status": validate.RuleEnum}},
		{name: "OKSearch", q: pool.ItemQuery{Search: "Zoë Ñ"}, want: pool.ItemQuery{Page: 1, PerPage: 25, Search: "Zoë Ñ"}},
		{name: "OKSearchAtMax", q: pool.ItemQuery{Search: strings.Repeat("é", pool.MaxSearchLen)}, want: pool.ItemQuery{Page: 1, PerPage: 25, Search: strings.Repeat("é", pool.MaxSearchLen)}},
		{name: "ErrSearchTooLong", q: pool.ItemQuery{Search: strings.Repeat("é", pool.MaxSearchLen+1)}, wantErr: map[string]string{"search": validate.RuleLength}},
		{name: "ErrSearchNewline", q: pool.ItemQuery{Search: "Ada\nLovelace"}, wantErr: map[string]string{"search": validate.RuleFormat}},
		{name: "ErrSearchInvalidUTF8", q: pool.ItemQuery{Search: "Ada\xff"}, wantErr: map[string]string{"search": validate.RuleFormat}},
		{name: "OKAfter", q: pool.ItemQuery{After: 42}, want: pool.ItemQuery{Page: 1, PerPage: 25, After: 42}},
		{name: "OKAfterPage1", q: pool.ItemQuery{After: 42, Page: 1, PerPage: 100}, want: pool.ItemQuery{Page: 1, PerPage: 100, After: 42}},
		{name: "ErrAfterNegative", q: pool.ItemQuery{After: -1}, wantErr: map[string]string{"after": validate.RuleRange}},
		{name: "ErrAfterWithPage2", q: pool.ItemQuery{After: 42, Page: 2}, wantErr: map[string]string{"page": validate.RuleExclusive}},
		{
			name:    "ErrEveryFieldAtOnce",
			q:       pool.ItemQuery{Page: -1, PerPage: 101, Status: "nope"},
			wantErr: map[string]string{"page": validate.RuleRange, "per_page": validate.RuleRange, "status": validate.RuleEnum},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.q.Normalize()
			requireFieldRules(t, err, tt.wantErr)
			if len(tt.wantErr) == 0 {
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestNewPage(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name                 string
		page, perPage, total int
		wantLast             int
	}{
		{"EmptyIsOnePage", 1, 15, 0, 1},
		{"One", 1, 15, 1, 1},
		{"ExactlyOnePage", 1, 15, 15, 1},
		{"OneMore", 1, 15, 16, 2},
		{"ExactlyTwoPages", 2, 15, 30, 2},
		{"ThreePages", 3, 15, 31, 3},
		{"PerPage1", 1, 1, 7, 7},
		{"PerPage100", 1, 100, 250, 3},
		{"Items25", 1, 25, 26, 2},
		{"PageBeyondLast", 9, 15, 16, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := pool.NewPage[pool.Pool](tt.page, tt.perPage, tt.total, nil)
			require.Equal(t, tt.wantLast, p.LastPage)
			require.Equal(t, tt.page, p.CurrentPage)
			require.Equal(t, tt.perPage, p.PerPage)
			require.Equal(t, tt.total, p.Total)
			require.NotNil(t, p.Data)
			require.Empty(t, p.Data)
		})
	}

	t.Run("OKDataNilMarshalsAsEmptyArray", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(pool.NewPage[pool.Item](1, 25, 0, nil))
		require.NoError(t, err)
		require.JSONEq(t, `{"current_page":1,"last_page":1,"per_page":25,"total":0,"data":[]}`, string(b))
	})

	t.Run("OKDataKept", func(t *testing.T) {
		t.Parallel()
		data := []pool.Pool{defaultPool(), defaultPool()}
		p := pool.NewPage(1, 15, 2, data)
		require.Equal(t, data, p.Data)
	})
}

func TestOffset(t *testing.T) {
	t.Parallel()

	require.Equal(t, int64(0), pool.Offset(1, 15))
	require.Equal(t, int64(15), pool.Offset(2, 15))
	require.Equal(t, int64(50), pool.Offset(3, 25))
	require.Equal(t, int64(9900), pool.Offset(100, 100))
	require.Equal(t, int64(pool.MaxPage-1)*pool.MaxPerPage, pool.Offset(pool.MaxPage, pool.MaxPerPage), "beyond a 32-bit int")
}
