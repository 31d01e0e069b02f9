package queue_test

// Helpers shared by model_test.go, concurrency_test.go and crash_test.go.
// Their names are distinctive on purpose, so they do not clash with the
// helpers of engine_test.go (setup, clock, newClock).

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// pageOverMax is the page number after pool.MaxPage where an int holds it
// (64-bit systems); where it does not (32-bit), the smallest int, which is
// out of range too.
var pageOverMax = func() int {
	if p := int64(pool.MaxPage) + 1; p <= math.MaxInt {
		return int(p)
	}
	return math.MinInt
}()

// oneGoroutine marks a test that makes its calls one at a time from one
// goroutine and counts no goroutines: it runs in parallel with the other
// tests, and CI's race run (-short) leaves it out, as the plain run has
// run it and the race detector has no concurrency of its to look at.
func oneGoroutine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("one goroutine's calls, which the plain run has run: -short (CI's race run) leaves it out")
	}
	t.Parallel()
}

// pqPtr returns a pointer to v (for the pointer fields of pool params).
func pqPtr[T any](v T) *T { return &v }

// openFileStore opens (creating it if needed) a SQLite store at path with the
// default durability and closes it when the test ends. An empty path means a
// fresh file in t.TempDir().
func openFileStore(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "poolq.db")
	}
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{CheckCache: true})
	require.NoError(t, err, "open sqlite store %s", path)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// openEngine returns an engine over st, closed when the test ends.
func openEngine(t testing.TB, st store.Store, opts queue.Options) *queue.Engine {
	t.Helper()
	eng, err := queue.New(st, opts)
	require.NoError(t, err, "queue.New")
	t.Cleanup(func() { _ = eng.Close() })
	return eng
}

// allItems lists every item of a pool, in insertion order, page by page
// (perPage items a page).
func allItems(ctx context.Context, t require.TestingT, eng *queue.Engine, poolID uuid.UUID, perPage int) []pool.Item {
	var out []pool.Item
	for page := 1; ; page++ {
		pg, err := eng.Items(ctx, poolID, pool.ItemQuery{Page: page, PerPage: perPage})
		require.NoError(t, err, "list items page %d", page)
		require.Equal(t, page, pg.CurrentPage, "current_page")
		require.LessOrEqual(t, len(pg.Data), perPage, "page %d holds more than per_page", page)
		out = append(out, pg.Data...)
		if page >= pg.LastPage {
			require.Len(t, out, pg.Total, "items listed across %d pages vs total", page)
			return out
		}
		require.Len(t, pg.Data, perPage, "a page before the last one must be full")
	}
}

// newItems returns n items for new random contacts, priority 0.
func newItems(n int) []pool.NewItem {
	items := make([]pool.NewItem, n)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: uuid.New()}
	}
	return items
}

// countStatuses recounts statuses from a list of items, every status present.
func countStatuses(items []pool.Item) map[pool.Status]int {
	m := pool.ZeroCounts()
	for _, it := range items {
		m[it.Status]++
	}
	return m
}

// isOneOf reports whether err is one of the targets (errors.Is).
func isOneOf(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// waitUntil polls cond every few milliseconds until it holds or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}
