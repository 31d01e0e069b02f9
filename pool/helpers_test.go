package pool_test

import (
	"encoding/json"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// tb is what the helpers need of a *testing.T or a *rapid.T.
type tb interface {
	require.TestingT
	Helper()
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// t0 is the clock of the tests: a fixed instant, so outputs are exact.
var t0 = time.Date(2023, 11, 7, 5, 31, 56, 0, time.UTC)

// poolID is the id the tests give to new pools.
var poolID = uuid.MustParse("3c90c3cc-0d44-4b50-8888-8dd25736052a")

// pageOverMax is the page number after pool.MaxPage where an int holds it
// (64-bit systems); where it does not (32-bit), the smallest int, which is
// out of range too.
var pageOverMax = func() int {
	if p := int64(pool.MaxPage) + 1; p <= math.MaxInt {
		return int(p)
	}
	return math.MinInt
}()

// validCreate returns create params that pass validation with every default.
func validCreate() pool.CreateParams {
	return pool.CreateParams{Name: "VIP customers", Description: "High-value leads, push first"}
}

// mustNew creates a pool from p at t0 and fails the test on error.
func mustNew(t tb, p pool.CreateParams) pool.Pool {
	t.Helper()
	out, err := pool.New(poolID, p, t0)
	require.NoError(t, err)
	return out
}

// fieldRules checks that err is a validation failure and returns, for each
// failing field, the rules it failed (in order).
func fieldRules(t tb, err error) map[string][]string {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, validate.ErrInvalid)
	var es validate.Errors
	require.ErrorAs(t, err, &es)
	require.NotEmpty(t, es)
	out := make(map[string][]string)
	for _, e := range es {
		require.NotEmpty(t, e.Message, "field %q has no message", e.Field)
		out[e.Field] = append(out[e.Field], e.Rule)
	}
	return out
}

// requireFieldRules checks that err fails exactly the fields of want, each
// with exactly one failure of the given rule. A nil or empty want means err
// must be nil.
func requireFieldRules(t tb, err error, want map[string]string) {
	t.Helper()
	if len(want) == 0 {
		require.NoError(t, err)
		return
	}
	got := fieldRules(t, err)
	wantRules := make(map[string][]string, len(want))
	for f, r := range want {
		wantRules[f] = []string{r}
	}
	require.Equal(t, wantRules, got, "error: %v", err)
}

// fieldSet returns the failing fields of err, sorted.
func fieldSet(t tb, err error) []string {
	t.Helper()
	var es validate.Errors
	require.ErrorAs(t, err, &es)
	f := es.Fields()
	sort.Strings(f)
	return f
}

// jsonKeys marshals v and returns the keys of the resulting object, sorted.
func jsonKeys(t tb, v any) []string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &m), "not an object: %s", b)
	return sortedKeys(m)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
