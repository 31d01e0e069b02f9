package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// boundsPool opens a store and inserts a Parallel pool holding items.
func boundsPool(t *testing.T, items ...pool.Item) (*Store, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	st, err := Open(ctx, ":memory:", Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	t0 := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	p := pool.Pool{UUID: uuid.New(), Name: "bounds", Description: "d", Type: pool.Parallel,
		MaxParallelItems: 10, MaxRetries: 3, IsActive: true, CreatedAt: t0, UpdatedAt: t0}
	for i := range items {
		items[i].ContactUUID, items[i].AddedAt = uuid.New(), t0
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, items)
		return err
	}))
	return st, p.UUID
}

// inWrite runs fn in a write transaction of st with its txn.
func inWrite(t *testing.T, st *Store, fn func(ctx context.Context, tx *txn) error) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return fn(ctx, tx.(*txn)) }))
}

// TestState_RetryBoundAfterPromote: once Due has promoted every retry due
// by now, the pool's retry bound is read again, exactly: the next claims
// (later transactions, the state carried in the cache) before the next
// retry time run no promote statement, and one at it does. (Left as it
// was, at or before the promoted retry, the bound made every later claim
// run the promote UPDATE, which found nothing, until a promote found
// something again: a statement a claim, not a wrong answer.)
func TestState_RetryBoundAfterPromote(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	st, id := boundsPool(t,
		pool.Item{Status: pool.StatusRetrying, Attempts: 1, RetryCount: 1, NextRetryAt: &t1},
		pool.Item{Status: pool.StatusScheduled, Attempts: 1, RetryCount: 1, NextRetryAt: &t2})
	var k int64
	inWrite(t, st, func(ctx context.Context, tx *txn) (err error) {
		if _, err = tx.Pool(ctx, id); err != nil { // the pool's state, read exactly
			return err
		}
		if k, err = tx.poolKey(ctx, id); err != nil {
			return err
		}
		require.True(t, tx.retryBy(k, mustNanos(t, t1)), "the first retry time, read")
		due, err := tx.Due(ctx, id, pool.Parallel, t1, 10)
		require.Len(t, due, 1, "the first retry, promoted")
		return err
	})
	inWrite(t, st, func(ctx context.Context, tx *txn) error {
		_, err := tx.Pool(ctx, id) // the state the cache kept
		require.False(t, tx.retryBy(k, mustNanos(t, t2.Add(-time.Nanosecond))),
			"a claim before the next retry time would run a promote statement")
		require.True(t, tx.retryBy(k, mustNanos(t, t2)), "one at it promotes it")
		return err
	})
}

// TestState_LeaseBoundAfterExpired: when Expired finds no lease ended by
// the pool's lease bound (a stale one: the lease was settled), the bound
// is read again, exactly: the next claims before the next lease's end run
// no expiry statement. (Left stale, every later claim ran one.)
func TestState_LeaseBoundAfterExpired(t *testing.T) {
	t.Parallel()
	t1 := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	st, id := boundsPool(t,
		pool.Item{Status: pool.StatusProcessing, Attempts: 1, Token: 7, LeaseExpiresAt: t1},
		pool.Item{Status: pool.StatusProcessing, Attempts: 1, Token: 7, LeaseExpiresAt: t2})
	var k int64
	inWrite(t, st, func(ctx context.Context, tx *txn) (err error) {
		if _, err = tx.Pool(ctx, id); err != nil {
			return err
		}
		if k, err = tx.poolKey(ctx, id); err != nil {
			return err
		}
		require.True(t, tx.expiredBy(k, mustNanos(t, t1)), "the first lease's end, read")
		// The first lease settled: the bound stays at its end, a lower bound.
		items, _, err := tx.Items(ctx, id, pool.ItemQuery{Page: 1, PerPage: 10})
		if err != nil {
			return err
		}
		done := items[0]
		done.Status, done.LeaseExpiresAt = pool.StatusCompleted, time.Time{}
		return tx.UpdateItem(ctx, pool.StatusProcessing, done)
	})
	inWrite(t, st, func(ctx context.Context, tx *txn) error {
		if _, err := tx.Pool(ctx, id); err != nil {
			return err
		}
		require.True(t, tx.expiredBy(k, mustNanos(t, t1)), "the bound, stale")
		ended, err := tx.Expired(ctx, id, t1.Add(time.Minute), 10)
		require.Empty(t, ended, "no lease ended")
		return err
	})
	inWrite(t, st, func(ctx context.Context, tx *txn) error {
		_, err := tx.Pool(ctx, id)
		require.False(t, tx.expiredBy(k, mustNanos(t, t2.Add(-time.Nanosecond))),
			"a claim before the next lease's end would run an expiry statement")
		require.True(t, tx.expiredBy(k, mustNanos(t, t2)), "one at it ends it")
		return err
	})
}

func mustNanos(t *testing.T, at time.Time) int64 {
	t.Helper()
	n, err := nanos(at)
	require.NoError(t, err)
	return n
}
