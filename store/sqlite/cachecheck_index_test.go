package sqlite_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestCache_CheckModeIndex corrupts the cache's index of pools by UUID
// (each one's internal id) after a pool is cached, and checks that the
// next Write in check mode fails on it, names the problem, and leaves the
// Store usable. TestCache_CheckMode changes the database under a cached
// state; here the states are right and the index is wrong, which would
// lead a later transaction to the wrong pool's state, or to none.
func TestCache_CheckModeIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// corrupt changes keys, the index, in which pool id has
		// internal id k, and returns what the check must report.
		corrupt func(keys map[uuid.UUID]int64, id uuid.UUID, k int64) (want string)
	}{
		{"StrayKey", func(keys map[uuid.UUID]int64, _ uuid.UUID, k int64) string {
			keys[uuid.New()] = k + 1000
			return "2 pools by UUID, 1 by internal id"
		}},
		{"KeyToWrongID", func(keys map[uuid.UUID]int64, id uuid.UUID, k int64) string {
			keys[id] = k + 1000
			return fmt.Sprintf("pool %s (id %d): its UUID leads to id %d (found: true)", id, k, k+1000)
		}},
		{"KeyMissing", func(keys map[uuid.UUID]int64, id uuid.UUID, k int64) string {
			delete(keys, id)
			return fmt.Sprintf("pool %s (id %d): its UUID leads to id 0 (found: false)", id, k)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st *sqlite.Store) {
				p := insertPool(t, st, 2)
				require.NoError(t, st.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }))
				require.Equal(t, 1, sqlite.CachedPools(st))
				keys := sqlite.CacheKeys(st)
				k, ok := keys[p.UUID]
				require.True(t, ok, "the cached pool is in the index")
				want := tc.corrupt(keys, p.UUID, k)

				err := st.Write(ctx, func(store.Tx) error { return nil }) // checks the cached pools all the same
				require.ErrorIs(t, err, sqlite.ErrCacheMismatch)
				require.ErrorContains(t, err, want)
				require.Zero(t, sqlite.CachedPools(st), "the cache is emptied")
				require.Empty(t, sqlite.CacheKeys(st), "the index is emptied")
				require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
					got, err := tx.Pool(ctx, p.UUID)
					require.Equal(t, 2, got.ContactsCount)
					return err
				}), "the next Write reads the pool again")
			})
		})
	}
}
