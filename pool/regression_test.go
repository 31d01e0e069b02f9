package pool_test

// Regression tests of bugs found while testing the package.

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// max_retries has no upper bound (the API says only x ≥ 0), so
// math.MaxInt passes validation, but Pool.Ceiling computes MaxRetries+1,
// which wraps to math.MinInt: Dispatch then fails every item on its first
// dispatch with "retry ceiling reached", and Fail fails every attempt.
// Either fix is accepted here: reject such a max_retries at validation, or
// make the ceiling saturate instead of wrapping.
//
// Once fixed, also add require.GreaterOrEqual(t, got.Ceiling(), 1) to
// requirePoolRules in fuzz_test.go: the fuzzers then guard it too.
func TestPool_Ceiling_MaxRetriesOverflow(t *testing.T) {

	t.Parallel()

	for _, retries := range []int{math.MaxInt, math.MaxInt - 1, math.MaxInt32, 1 << min(40, strconv.IntSize-2)} {
		p, err := pool.New(poolID, pool.CreateParams{Name: "VIP", Description: "d", MaxRetries: ptr(retries)}, t0)
		if err != nil {
			// Fix 1: an absurd max_retries is rejected as a range error.
			requireFieldRules(t, err, map[string]string{"max_retries": validate.RuleRange})
			continue
		}
		// Fix 2: the ceiling never wraps.
		require.GreaterOrEqual(t, p.Ceiling(), 1, "max_retries %d", retries)
		require.GreaterOrEqual(t, p.Ceiling(), p.MaxRetries, "max_retries %d", retries)

		it := pool.NewItem{ContactUUID: contactA}.Item(p.UUID, t0)
		it, ok := it.Dispatched(p.Ceiling(), t0, t0.Add(time.Minute))
		require.True(t, ok, "a fresh item is dispatched (max_retries %d)", retries)
		require.Equal(t, pool.StatusProcessing, it.Status)

		it, err = it.Failed(p.Ceiling(), t0, pool.Failure{Note: "busy"}, time.Hour)
		require.NoError(t, err)
		require.Equal(t, pool.StatusRetrying, it.Status, "attempts are left (max_retries %d)", retries)
	}

	// The same pool through an update.
	_, _, err := pool.UpdateParams{MaxRetries: ptr(math.MaxInt)}.Apply(defaultPool())
	if err == nil {
		p := defaultPool()
		p.MaxRetries = math.MaxInt
		require.GreaterOrEqual(t, p.Ceiling(), 1)
	}
}

// NewPage is exported and divides by perPage: a caller that skips
// Normalize (a store that builds a page from a zero ItemQuery, say) panics
// with "integer divide by zero" instead of getting a page or an error.
// Reproduction: pool.NewPage[pool.Item](1, 0, 0, nil).
func TestNewPage_NonPositivePerPage(t *testing.T) {
	t.Parallel()

	for _, perPage := range []int{0, -1} {
		require.NotPanics(t, func() {
			pg := pool.NewPage[pool.Item](1, perPage, 10, nil)
			require.GreaterOrEqual(t, pg.LastPage, 1)
			require.NotNil(t, pg.Data)
		}, "perPage %d", perPage)
	}
}

// A NUL in a name passed validation, then SQLite's length() (which stops at
// NUL) made the store's CHECK reject the row: a 500 instead of a 422.
// Reproduction: CreateParams{Name: "abc\x00", Description: "d"}.
func TestValidate_NUL(t *testing.T) {
	t.Parallel()

	for _, p := range []pool.CreateParams{
		{Name: "abc\x00", Description: "d"},
		{Name: "\x00\x00\x00", Description: "d"},
		{Name: "abc", Description: "\x00 leading"},
	} {
		err := p.Validate()
		require.ErrorIs(t, err, validate.ErrInvalid, "%q", p)
		var fe validate.Errors
		require.ErrorAs(t, err, &fe)
		require.Equal(t, validate.RuleFormat, fe[0].Rule, "%q", p)
	}
	require.Error(t, pool.UpdateParams{Name: ptr("ab\x00c")}.Validate())
	require.Error(t, pool.UpdateParams{Description: ptr("x\x00")}.Validate())
}

// pool.Offset overflowed for a huge page: page 2^62 with 15 per page
// wrapped around to a small offset and listed the first rows under that
// page number.
func TestQuery_PageTooLarge(t *testing.T) {
	t.Parallel()

	if math.MaxInt > pool.MaxPage { // 64-bit: 1<<62 - 1
		_, err := pool.PoolQuery{Page: math.MaxInt / 2}.Normalize()
		require.ErrorIs(t, err, validate.ErrInvalid)
	}
	_, err := pool.ItemQuery{Page: pageOverMax}.Normalize()
	require.ErrorIs(t, err, validate.ErrInvalid)
	q, err := pool.ItemQuery{Page: pool.MaxPage, PerPage: pool.MaxPerPage}.Normalize()
	require.NoError(t, err)
	require.Positive(t, pool.Offset(q.Page, q.PerPage), "the largest page's offset does not overflow")
}
