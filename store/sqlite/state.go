package sqlite

import (
	"context"
	"database/sql"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
)

// A write transaction that reads a pool ([txn.Pool]) learns in the same
// statement what dispatch asks next: how many of its items are in flight,
// the earliest lease expiry, and the earliest retry time not yet promoted
// to the due set. It keeps them for the rest of the transaction, adjusted
// by every item it writes, so that InFlight answers without a statement,
// Expired without one when no lease has ended, and Due skips the promotion
// UPDATE when no retry time has come. Nothing else writes while a write
// transaction is open (SQLite has one writer), so what it learnt stays
// true; a savepoint rolled back forgets all of it. What a committed
// transaction knew is kept for the next ones (see cache.go).
//
// The two times are lower bounds: an item that leaves flight or is
// promoted leaves them as they were, and a lower bound only ever costs a
// statement that finds nothing. When one is found stale (Expired finds no
// lease ended by its bound, or Due has promoted everything due), it is
// read again exactly, so that a bound carried over from an earlier
// transaction does not cost a statement in every later one.

// poolState is what a write transaction knows of a pool.
type poolState struct {
	k int64     // the pool's internal id
	p pool.Pool // its row and ContactsCount, as of now in the transaction
	// inFlight is the number of its items in flight.
	inFlight int
	// expiry is at or before the earliest lease end of an in-flight item.
	// hasExpiry is false only when there is none (it may be true when
	// there is none, a stale bound).
	expiry    int64
	hasExpiry bool
	// retry is at or before the earliest retry time of a Retrying or
	// Scheduled item outside the due set. hasRetry is false only when
	// there is none (it may be true when there is none, a stale bound).
	retry    int64
	hasRetry bool
}

// poolStateFrom reads pools with their dispatch state after the pool's
// columns: for one pool, four index seeks (pools, pool_counts, items_lease,
// items_retry).
const poolStateFrom = `SELECT ` + poolCols + `,
    (SELECT coalesce(sum(c.n), 0) FROM pool_counts c
     WHERE c.pool_id = p.id AND c.status IN ('Processing', 'In_Call')),
    (SELECT min(i.lease_expires_at) FROM items i
     WHERE i.pool_id = p.id AND i.status IN ('Processing', 'In_Call')),
    (SELECT min(i.next_retry_at) FROM items i
     WHERE i.pool_id = p.id AND i.ready = 0 AND i.status IN ('Retrying', 'Scheduled'))
FROM pools p`

const (
	// poolStateSQL reads a pool and its dispatch state by UUID.
	poolStateSQL = poolStateFrom + ` WHERE p.uuid = ?`
	// poolStateByKeySQL reads them by internal id (check mode, see
	// cachecheck.go).
	poolStateByKeySQL = poolStateFrom + ` WHERE p.id = ?`
)

// scanPoolState scans a row of poolStateFrom. Its bounds are exact.
func scanPoolState(s scanner) (poolState, error) {
	var (
		st            poolState
		expiry, retry sql.NullInt64
		err           error
	)
	st.p, st.k, err = scanPool(s, &st.inFlight, &expiry, &retry)
	st.expiry, st.hasExpiry = expiry.Int64, expiry.Valid
	st.retry, st.hasRetry = retry.Int64, retry.Valid
	return st, err
}

// poolWithState returns a pool, and keeps its dispatch state for the rest
// of the transaction: the state this transaction already has, or the one
// an earlier transaction left in the cache if nothing has changed the pool
// since, or else both read from the database. Pending count changes are
// written before that read, so that both the counts and the state are
// exact.
func (t *txn) poolWithState(ctx context.Context, id uuid.UUID) (pool.Pool, error) {
	if st := t.stateByID(id); st != nil {
		return st.p, nil
	}
	if err := t.flushCounts(ctx); err != nil {
		return pool.Pool{}, err
	}
	s, err := t.stmt(ctx, poolStateSQL)
	if err != nil {
		return pool.Pool{}, err
	}
	st, err := scanPoolState(s.QueryRowContext(ctx, blob(id)))
	if err != nil {
		return pool.Pool{}, err
	}
	t.rememberPool(id, st.k)
	t.setState(&st)
	return st.p, nil
}

func (t *txn) setState(st *poolState) {
	if t.states == nil {
		t.states = make(map[int64]*poolState, 1)
	}
	t.states[st.k] = st
}

// forgetPool drops what this transaction and the cache know of pool id,
// whose row it changes.
func (t *txn) forgetPool(id uuid.UUID) {
	if k, ok := t.pools[id]; ok {
		delete(t.states, k)
		t.markStale(k)
	}
	if t.cache != nil {
		if k, ok := t.cache.keys[id]; ok {
			t.markStale(k)
		}
	}
}

// noteItem updates the state of pool k, if known, for an item written as
// it: a lease it holds or a retry time it waits for may now be the
// earliest. (Counts of items in flight follow in count.)
func (t *txn) noteItem(k int64, it pool.Item) {
	st := t.state(k)
	if st == nil {
		return
	}
	if it.Status.InFlight() && !it.LeaseExpiresAt.IsZero() {
		n, err := nanos(it.LeaseExpiresAt)
		if err == nil && (!st.hasExpiry || n < st.expiry) {
			st.expiry, st.hasExpiry = n, true
		}
	}
	if (it.Status == pool.StatusRetrying || it.Status == pool.StatusScheduled) && it.NextRetryAt != nil {
		n, err := nanos(*it.NextRetryAt)
		if err == nil && (!st.hasRetry || n < st.retry) {
			st.retry, st.hasRetry = n, true
		}
	}
}

// expiredBy reports whether pool k may hold a lease that ended at or
// before at: true unless the state says otherwise.
func (t *txn) expiredBy(k int64, at int64) bool {
	st := t.state(k)
	return st == nil || (st.hasExpiry && st.expiry <= at)
}

// retryBy reports whether pool k may hold an item outside the due set
// whose retry time is at or before at: true unless the state says
// otherwise.
func (t *txn) retryBy(k int64, at int64) bool {
	st := t.state(k)
	return st == nil || (st.hasRetry && st.retry <= at)
}

const (
	// leaseBoundSQL and retryBoundSQL read the two bounds of a pool's state
	// exactly: one seek each, on items_lease and items_retry.
	leaseBoundSQL = `SELECT min(lease_expires_at) FROM items
WHERE pool_id = ? AND status IN ('Processing', 'In_Call')`
	retryBoundSQL = `SELECT min(next_retry_at) FROM items
WHERE pool_id = ? AND ready = 0 AND status IN ('Retrying', 'Scheduled')`
)

// refreshExpiry reads the lease bound of pool k again, if the pool has a
// state: Expired found it stale.
func (t *txn) refreshExpiry(ctx context.Context, k int64) error {
	st := t.states[k]
	if st == nil {
		return nil
	}
	var n sql.NullInt64
	if err := t.queryRow(ctx, []any{&n}, leaseBoundSQL, k); err != nil {
		return err
	}
	st.expiry, st.hasExpiry = n.Int64, n.Valid
	return nil
}

// refreshRetry reads the retry bound of pool k again, if the pool has a
// state: every item due by now has just been promoted.
func (t *txn) refreshRetry(ctx context.Context, k int64) error {
	st := t.states[k]
	if st == nil {
		return nil
	}
	var n sql.NullInt64
	if err := t.queryRow(ctx, []any{&n}, retryBoundSQL, k); err != nil {
		return err
	}
	st.retry, st.hasRetry = n.Int64, n.Valid
	return nil
}
