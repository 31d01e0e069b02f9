package sqlite_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// More tests of the Store's cache of pools and its count changes (cache.go,
// state.go, counts.go) with check mode OFF, as a production Store runs:
// each asserts what a dialer sees (InFlight, the room under the cap, the
// pool's counts) after writes that a mutation of that code got wrong with
// no other test of this package noticing it with check mode off.

// statusCounts returns the counts of a pool's items by status, as the pool's
// detail shows them.
func statusCounts(t *testing.T, st *sqlite.Store, id uuid.UUID) map[pool.Status]int {
	t.Helper()
	ctx := context.Background()
	var out map[pool.Status]int
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		var err error
		out, err = tx.StatusCounts(ctx, id)
		return err
	}))
	return out
}

// One Write claims an item in each of two pools: each pool's counts (its
// detail, and InFlight read again from the database by another Store) show
// its own claim.
func TestCacheReview2_CountsOfTwoPoolsInOneWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, path := MustOpenFile(t, unchecked)
	pa, ia := insertPoolCap(t, a, 1, 2)
	pb, ib := insertPoolCap(t, a, 1, 2)
	viewPool(t, a, pa.UUID)
	viewPool(t, a, pb.UUID)
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(ia[0])); err != nil {
			return err
		}
		return tx.UpdateItem(ctx, pool.StatusPending, claimed(ib[0]))
	}))
	for _, id := range []uuid.UUID{pa.UUID, pb.UUID} {
		c := statusCounts(t, a, id)
		require.Equal(t, 1, c[pool.StatusProcessing], "pool %s", id)
		require.Equal(t, 1, c[pool.StatusPending], "pool %s", id)
	}
	b, err := sqlite.Open(ctx, path, unchecked)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	for _, id := range []uuid.UUID{pa.UUID, pb.UUID} {
		inFlight, due := dispatchable(t, b, id, testT0)
		require.Equal(t, 1, inFlight, "pool %s", id)
		require.Empty(t, due, "pool %s: the cap of 1 is reached", id)
	}
}
