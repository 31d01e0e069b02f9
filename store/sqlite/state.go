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
// true; a savepoint rolled back forgets all of it.
//
// The two times are lower bounds: an item that leaves flight or is
// promoted leaves them as they were, and a lower bound only ever costs a
// statement that finds nothing.

// poolState is what a write transaction knows of a pool's items.
type poolState struct {
	inFlight int
	// expiry is at or before the earliest lease end of an in-flight item;
	// hasExpiry is false when there is none.
	expiry    int64
	hasExpiry bool
	// retry is at or before the earliest retry time of a Retrying or
	// Scheduled item outside the due set; hasRetry is false when there is
	// none.
	retry    int64
	hasRetry bool
}

// poolStateSQL is poolSQL with the dispatch state after the pool's
// columns: four index seeks (pools by uuid, pool_counts, items_lease,
// items_retry).
const poolStateSQL = `SELECT ` + poolCols + `,
    (SELECT coalesce(sum(c.n), 0) FROM pool_counts c
     WHERE c.pool_id = p.id AND c.status IN ('Processing', 'In_Call')),
    (SELECT min(i.lease_expires_at) FROM items i
     WHERE i.pool_id = p.id AND i.status IN ('Processing', 'In_Call')),
    (SELECT min(i.next_retry_at) FROM items i
     WHERE i.pool_id = p.id AND i.ready = 0 AND i.status IN ('Retrying', 'Scheduled'))
FROM pools p WHERE p.uuid = ?`

// poolWithState reads a pool and its dispatch state, and keeps the state
// for the rest of the transaction. Pending count changes are written
// first, so that both the counts and the state are exact.
func (t *txn) poolWithState(ctx context.Context, id uuid.UUID) (pool.Pool, error) {
	if err := t.flushCounts(ctx); err != nil {
		return pool.Pool{}, err
	}
	s, err := t.stmt(ctx, poolStateSQL)
	if err != nil {
		return pool.Pool{}, err
	}
	var (
		st            poolState
		expiry, retry sql.NullInt64
	)
	p, k, err := scanPool(s.QueryRowContext(ctx, blob(id)), &st.inFlight, &expiry, &retry)
	if err != nil {
		return pool.Pool{}, err
	}
	st.expiry, st.hasExpiry = expiry.Int64, expiry.Valid
	st.retry, st.hasRetry = retry.Int64, retry.Valid
	t.rememberPool(id, k)
	if t.states == nil {
		t.states = make(map[int64]*poolState, 1)
	}
	t.states[k] = &st
	return p, nil
}

// noteItem updates the state of pool k, if known, for an item written as
// it: a lease it holds or a retry time it waits for may now be the
// earliest. (Counts of items in flight follow in count.)
func (t *txn) noteItem(k int64, it pool.Item) {
	st := t.states[k]
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
	st := t.states[k]
	return st == nil || (st.hasExpiry && st.expiry <= at)
}

// retryBy reports whether pool k may hold an item outside the due set
// whose retry time is at or before at: true unless the state says
// otherwise.
func (t *txn) retryBy(k int64, at int64) bool {
	st := t.states[k]
	return st == nil || (st.hasRetry && st.retry <= at)
}

// promoted records that every item of pool k due by at is in the due set:
// those left outside wait for a later time.
func (t *txn) promoted(k int64, at int64) {
	if st := t.states[k]; st != nil && at < maxNanos {
		st.retry, st.hasRetry = at+1, true
	}
}

// maxNanos is the largest time in nanoseconds.
const maxNanos = int64(^uint64(0) >> 1)
