package sqlite_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestCache_Bounded: the cache of pools (cache.go) holds at most
// MaxCachedPools from one Write to the next: a Write that would take it
// past the bound starts it empty again, so that a process serving ever
// more pools does not keep every one it ever wrote. The other cache tests
// cache a pool or two.
func TestCache_Bounded(t *testing.T) {
	if raceEnabled {
		t.Skip("one goroutine's writes one after the other, nothing for the race detector (10 s under it, 0.3 s without)")
	}
	t.Parallel()
	ctx := context.Background()
	// Check mode off: it would read every cached pool again at each
	// commit, and the bound is what is tested here.
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })

	// cacheNew inserts n pools and reads them in one Write, which caches
	// them.
	cacheNew := func(n int) {
		t.Helper()
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			for range n {
				p := insertPoolParams(uuid.New())
				if err := tx.InsertPool(ctx, p); err != nil {
					return err
				}
				if _, err := tx.Pool(ctx, p.UUID); err != nil {
					return err
				}
			}
			return nil
		}))
	}

	cacheNew(sqlite.MaxCachedPools - 1)
	require.Equal(t, sqlite.MaxCachedPools-1, sqlite.CachedPools(st))
	cacheNew(1)
	require.Equal(t, sqlite.MaxCachedPools, sqlite.CachedPools(st), "up to the bound, the cache keeps every pool")
	for range 3 {
		cacheNew(2)
		require.LessOrEqual(t, sqlite.CachedPools(st), sqlite.MaxCachedPools, "the cache grew past its bound")
		require.Positive(t, sqlite.CachedPools(st), "the last Write's pools are cached")
	}
	require.Len(t, sqlite.CacheKeys(st), sqlite.CachedPools(st), "the index is emptied with the states")
}
