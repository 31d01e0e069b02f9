package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// These tests run with check mode OFF (sqlite.Options{}), as a production
// Store does: each asserts what a dialer would see (InFlight, the room
// PoolDue leaves under the cap, Expired, Due) after a sequence of writes in
// which the Store's cache of pools (cache.go) could go wrong.

var unchecked = sqlite.Options{}

// insertPoolCap stores a Parallel pool of cap maxParallel with n Pending items
// and returns it with its items in insertion order.
func insertPoolCap(t *testing.T, st *sqlite.Store, maxParallel, n int) (pool.Pool, []pool.Item) {
	t.Helper()
	ctx := context.Background()
	p := insertPool(t, st, n)
	p.Type, p.MaxParallelItems = pool.Parallel, maxParallel
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.UpdatePool(ctx, p) }))
	return p, poolItems(t, st, p.UUID)
}

// dispatchable returns the contacts PoolDue hands out at now: due items
// within the room the cap leaves.
func dispatchable(t *testing.T, st *sqlite.Store, id uuid.UUID, now time.Time) (inFlight int, due []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		var err error
		if inFlight, err = tx.InFlight(ctx, id); err != nil {
			return err
		}
		_, items, err := tx.PoolDue(ctx, id, now, 100)
		due = contacts(items...)
		return err
	}))
	return inFlight, due
}

func leasedUntil(it pool.Item, at time.Time) pool.Item {
	it = claimed(it)
	it.LeaseExpiresAt = at
	return it
}

func completed(it pool.Item) pool.Item {
	it.Status, it.LeaseExpiresAt, it.CompletedAt = pool.StatusCompleted, time.Time{}, &testT0
	return it
}

// A savepoint rolled back after the transaction has claimed an item: the
// rest of the transaction must still count that claim against the cap.
func TestCacheReview_SavepointRollbackKeepsEarlierClaimCounted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStoreWith(t, unchecked, func(t *testing.T, st *sqlite.Store) {
		p, items := insertPoolCap(t, st, 1, 2)
		viewPool(t, st, p.UUID) // cached
		errUndo := errors.New("undo")
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])); err != nil {
				return err
			}
			err := tx.Savepoint(ctx, func(tx store.Tx) error {
				if _, err := tx.InsertItems(ctx, p.UUID, pendingItems(1)); err != nil {
					return err
				}
				return errUndo
			})
			if !errors.Is(err, errUndo) {
				return err
			}
			n, err := tx.InFlight(ctx, p.UUID)
			if err != nil {
				return err
			}
			require.Equal(t, 1, n, "in flight after the savepoint, in the same transaction")
			_, due, err := tx.PoolDue(ctx, p.UUID, testT0, 100)
			require.Empty(t, due, "the cap of 1 is reached")
			return err
		}))
		inFlight, due := dispatchable(t, st, p.UUID, testT0)
		require.Equal(t, 1, inFlight)
		require.Empty(t, due, "the cap of 1 is reached")
	})
}

// A transaction that settles the only item in flight but whose COMMIT does
// not happen (the database file was renamed away, ErrFileMoved): the next
// Write must still count the item in flight, or it dispatches past the cap.
func TestCacheReview_CommitRefusedForgetsTheTransactionsState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, unchecked)
	p, items := insertPoolCap(t, st, 1, 2)
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0]))
	}))
	inFlight, due := dispatchable(t, st, p.UUID, testT0) // cached, in flight 1
	require.Equal(t, 1, inFlight)
	require.Empty(t, due)

	err := st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, p.UUID); err != nil {
			return err
		}
		if err := tx.UpdateItem(ctx, pool.StatusProcessing, completed(claimed(items[0]))); err != nil {
			return err
		}
		return os.Rename(path, filepath.Join(filepath.Dir(path), "moved.db"))
	})
	require.ErrorIs(t, err, sqlite.ErrFileMoved)
	require.NoError(t, os.Rename(filepath.Join(filepath.Dir(path), "moved.db"), path))

	inFlight, due = dispatchable(t, st, p.UUID, testT0)
	require.Equal(t, 1, inFlight, "the settle was not committed")
	require.Empty(t, due, "the cap of 1 is reached")
}

// The lease bound of a cached pool: lowered by a shorter lease, kept while
// another item stays in flight, and inclusive at the lease's end.
func TestCacheReview_ExpiredLeasesFoundThroughTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStoreWith(t, unchecked, func(t *testing.T, st *sqlite.Store) {
		p, items := insertPoolCap(t, st, 10, 3)
		viewPool(t, st, p.UUID)
		soon, late := testT0.Add(time.Minute), testT0.Add(time.Hour)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			if err := tx.UpdateItem(ctx, pool.StatusPending, leasedUntil(items[0], late)); err != nil {
				return err
			}
			return tx.UpdateItem(ctx, pool.StatusPending, leasedUntil(items[1], soon))
		}))
		expired := func(at time.Time) []uuid.UUID {
			var out []pool.Item
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
				var err error
				out, err = tx.Expired(ctx, p.UUID, at, 10)
				return err
			}))
			return contacts(out...)
		}
		require.Empty(t, expired(soon.Add(-time.Nanosecond)))
		require.Equal(t, contacts(items[1]), expired(soon), "a lease that ends at now has ended")

		// The short lease settles: the long one is still in flight, and
		// found once it ends.
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusProcessing, completed(leasedUntil(items[1], soon)))
		}))
		require.Equal(t, contacts(items[0]), expired(late.Add(time.Hour)))
	})
}

// The retry bound of a cached pool: lowered by a Scheduled or Retrying
// item, inclusive at the retry time, and read again exactly after a
// promotion.
func TestCacheReview_RetriesFoundThroughTheCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStoreWith(t, unchecked, func(t *testing.T, st *sqlite.Store) {
		p, items := insertPoolCap(t, st, 10, 3)
		viewPool(t, st, p.UUID)
		first, second := testT0.Add(time.Minute), testT0.Add(2*time.Minute)
		scheduled := items[0]
		scheduled.Status, scheduled.NextRetryAt = pool.StatusScheduled, &first
		retry := items[1]
		retry.Status, retry.RetryCount, retry.NextRetryAt = pool.StatusRetrying, 1, &second
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if err := tx.UpdateItem(ctx, pool.StatusPending, scheduled); err != nil {
				return err
			}
			return tx.UpdateItem(ctx, pool.StatusPending, retry)
		}))
		due := func(at time.Time) []uuid.UUID {
			var out []pool.Item
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
				var err error
				out, err = tx.Due(ctx, p.UUID, pool.FIFO, at, 10)
				return err
			}))
			return contacts(out...)
		}
		// Claim the Pending one so that only the waiting items are left.
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[2]))
		}))
		require.Empty(t, due(first.Add(-time.Nanosecond)))
		require.Equal(t, contacts(items[0]), due(first), "a Scheduled item is due at its time")
		require.Equal(t, contacts(items[0], items[1]), due(second), "a Retrying item is due at its time, after a promotion")
	})
}

// Items in call count against the cap as items being processed do, and
// waiting items do not.
func TestCacheReview_InCallCountsAgainstTheCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStoreWith(t, unchecked, func(t *testing.T, st *sqlite.Store) {
		p, items := insertPoolCap(t, st, 2, 4)
		viewPool(t, st, p.UUID)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])); err != nil {
				return err
			}
			return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[1]))
		}))
		inCall := claimed(items[0])
		inCall.Status = pool.StatusInCall
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusProcessing, inCall)
		}))
		inFlight, due := dispatchable(t, st, p.UUID, testT0)
		require.Equal(t, 2, inFlight)
		require.Empty(t, due, "the cap of 2 is reached")

		// A third item waits for a retry: not in flight.
		p.MaxParallelItems = 3
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.UpdatePool(ctx, p) }))
		viewPool(t, st, p.UUID)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusPending, retrying(items[2]))
		}))
		inFlight, due = dispatchable(t, st, p.UUID, testT0)
		require.Equal(t, 2, inFlight)
		require.Equal(t, contacts(items[3]), due)
	})
}

// Another Store on the file claims the pool's last room: this Store, whose
// cache holds the pool, must see it.
func TestCacheReview_AnotherStoresClaimSeen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, path := MustOpenFile(t, unchecked)
	b, err := sqlite.Open(ctx, path, unchecked)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	p, items := insertPoolCap(t, a, 1, 2)
	inFlight, due := dispatchable(t, a, p.UUID, testT0)
	require.Equal(t, 0, inFlight)
	require.Equal(t, contacts(items[0]), due)
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error {
		return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0]))
	}))
	inFlight, due = dispatchable(t, a, p.UUID, testT0)
	require.Equal(t, 1, inFlight)
	require.Empty(t, due, "the cap of 1 is reached")
}
