package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// limitParam is the LIMIT of a cached statement with ORDER BY, its value
// bound. Not a bare "LIMIT ?": SQLite plans such a statement for the value
// bound, and so prepares it again at every execution with a new binding —
// which made a claim's due-items query cost 56–84 µs instead of 15 µs
// (measured on the Parallel one, 5,000 executions). Through a cast the
// planner does not see the value, and the plan (an index walk in the
// ORDER BY's order) is the same for every limit. Statements prepared for
// one call (the filtered listings) keep a bare LIMIT: planned once, for
// their own value.
const limitParam = `LIMIT CAST(? AS INTEGER)`

const (
	inFlightSQL = `SELECT coalesce(sum(n), 0) FROM pool_counts
WHERE pool_id = ? AND status IN ('Processing', 'In_Call')`

	// promoteSQL moves the Retrying and Scheduled items whose time came into
	// the due set: a range seek on items_retry, touching only those items.
	promoteSQL = `UPDATE OR FAIL items SET ready = 1
WHERE pool_id = ? AND ready = 0 AND status IN ('Retrying', 'Scheduled') AND next_retry_at <= ?`

	// demoteSQL takes out of the due set the Retrying and Scheduled items
	// that are not due at ?2: a Due at a later now promoted them (the clock
	// stepped back, or another process's clock is ahead). Run when a Due
	// read the whole due set (fewer items than its limit): besides those
	// it returned, the set then holds only such items. A walk of
	// items_ready over those rows, at most 1,000 (more are left to the
	// next such Due). Written as a filter on all of the pool's retries,
	// the plan searched items_pool_status: every item waiting for a retry
	// time, at every such claim.
	demoteSQL = `UPDATE OR FAIL items SET ready = 0
WHERE id IN (SELECT id FROM items WHERE pool_id = ?1 AND ready = 1 ORDER BY id LIMIT 1000)
    AND status IN ('Retrying', 'Scheduled') AND next_retry_at > ?2`

	// dueWhere selects the due set of a pool. The second condition only
	// matters when now goes back in time: an item promoted at a later now
	// is not due at an earlier one (see demoteSQL).
	dueWhere = `WHERE i.pool_id = ? AND i.ready = 1 AND (i.status = 'Pending' OR i.next_retry_at <= ?)`

	// The due items in each order, each an index walk: items_ready
	// ascending (FIFO) or descending (LIFO), items_ready_priority
	// (Parallel).
	dueFIFOSQL     = `SELECT ` + itemCols + ` FROM items i ` + dueWhere + ` ORDER BY i.id ` + limitParam
	dueLIFOSQL     = `SELECT ` + itemCols + ` FROM items i ` + dueWhere + ` ORDER BY i.id DESC ` + limitParam
	dueParallelSQL = `SELECT ` + itemCols + ` FROM items i ` + dueWhere + ` ORDER BY i.priority DESC, i.id ` + limitParam

	// expiredSQL walks items_lease from its start.
	expiredSQL = `SELECT ` + itemCols + ` FROM items i
WHERE i.pool_id = ? AND i.status IN ('Processing', 'In_Call') AND i.lease_expires_at <= ?
ORDER BY i.lease_expires_at, i.id ` + limitParam

	// nextWakeSQL takes the first entries of items_retry and items_lease:
	// two seeks.
	nextWakeSQL = `SELECT min(t) FROM (
    SELECT min(next_retry_at) AS t FROM items
    WHERE pool_id = ?1 AND ready = 0 AND status IN ('Retrying', 'Scheduled')
    UNION ALL
    SELECT min(lease_expires_at) FROM items
    WHERE pool_id = ?1 AND status IN ('Processing', 'In_Call')
)`

	// poolWakesSQL reads the PoolWake of the pools of a JSON array of hex
	// UUIDs (contactList's form): each pool's row (a seek of its UUID,
	// the list read once), then the first entry of its items_ready (any),
	// items_retry and items_lease, as poolStateFrom reads the last two,
	// and its counts in flight, as inFlightSQL (two seeks of
	// pool_counts' key). No row for an unknown pool, one for a pool named
	// twice. One statement rather than one a pool: half the time from 20
	// pools up. INDEXED BY: with statistics of a few pools, SQLite scans
	// every pool instead, and goes on doing so as the pools grow until the
	// next ANALYZE.
	poolWakesSQL = `SELECT p.uuid, EXISTS (SELECT 1 FROM items i WHERE i.pool_id = p.id AND i.ready = 1),
    (SELECT min(i.next_retry_at) FROM items i
     WHERE i.pool_id = p.id AND i.ready = 0 AND i.status IN ('Retrying', 'Scheduled')),
    (SELECT min(i.lease_expires_at) FROM items i
     WHERE i.pool_id = p.id AND i.status IN ('Processing', 'In_Call')),
    p.type, p.max_parallel_items,
    (SELECT coalesce(sum(c.n), 0) FROM pool_counts c
     WHERE c.pool_id = p.id AND c.status IN ('Processing', 'In_Call'))
FROM pools p INDEXED BY sqlite_autoindex_pools_1 WHERE p.uuid IN (SELECT unhex(value) FROM json_each(?))`
)

// InFlight returns the number of a pool's items in flight, from
// pool_counts. O(1) in the number of items.
func (t *txn) InFlight(ctx context.Context, poolID uuid.UUID) (int, error) {
	const op = "in flight"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return 0, wrap(op, err)
	}
	if st := t.state(k); st != nil {
		return st.inFlight, nil
	}
	if err := t.flushCounts(ctx); err != nil {
		return 0, wrap(op, err)
	}
	var n int
	return n, wrap(op, t.queryRow(ctx, []any{&n}, inFlightSQL, k))
}

// Due promotes the Retrying and Scheduled items of a pool whose time came,
// then returns up to limit due items in the order of typ. O(log n + p + r)
// for p items promoted and r returned, whatever the number of items
// waiting.
func (t *txn) Due(ctx context.Context, poolID uuid.UUID, typ pool.Type, now time.Time, limit int) ([]pool.Item, error) {
	const op = "due"
	if err := t.writable(op); err != nil {
		return nil, err
	}
	var query string
	switch typ {
	case pool.FIFO:
		query = dueFIFOSQL
	case pool.LIFO:
		query = dueLIFOSQL
	case pool.Parallel:
		query = dueParallelSQL
	default:
		return nil, fmt.Errorf("sqlite: %s: unknown pool type %q", op, typ)
	}
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return nil, wrap(op, err)
	}
	at, err := nanos(now)
	if err != nil {
		return nil, wrap(op, err)
	}
	if limit <= 0 {
		return []pool.Item{}, nil
	}
	if t.retryBy(k, at) {
		if _, err := t.exec(ctx, promoteSQL, k, at); err != nil {
			return nil, wrap(op+": promote", err)
		}
		if err := t.refreshRetry(ctx, k); err != nil {
			return nil, wrap(op+": promote", err)
		}
	}
	rows, err := t.query(ctx, query, k, at, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := scanItems(rows, poolID, min(limit, 64))
	if err == nil && len(out) < limit {
		err = t.demote(ctx, k, at)
	}
	return out, wrap(op, err)
}

// demote gives back to the waiting set the retries of pool k marked due at
// a later now than at (see demoteSQL), when a Due at at read the whole due
// set: NextWake, which leaves marked items out, then names their times to
// a caller about to wait for them (one that found nothing, or passed over
// what it found), instead of letting it sleep past them to its poll.
func (t *txn) demote(ctx context.Context, k int64, at int64) error {
	res, err := t.exec(ctx, demoteSQL, k, at)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	return t.refreshRetry(ctx, k)
}

// PoolDue returns pool id and up to limit of its due items in the order of
// its type, within the room its cap leaves: Pool, InFlight, then Due.
func (t *txn) PoolDue(ctx context.Context, id uuid.UUID, now time.Time, limit int) (pool.Pool, []pool.Item, error) {
	if err := t.writable("pool due"); err != nil {
		return pool.Pool{}, nil, err
	}
	p, err := t.Pool(ctx, id)
	if err != nil {
		return pool.Pool{}, nil, err
	}
	n, err := t.InFlight(ctx, id)
	if err != nil {
		return pool.Pool{}, nil, err
	}
	due, err := t.Due(ctx, id, p.Type, now, min(limit, p.Cap()-n))
	if err != nil {
		return pool.Pool{}, nil, err
	}
	return p, due, nil
}

// Expired returns up to limit in-flight items of a pool whose lease ended
// at or before now, earliest first. O(log n + r) for r returned.
func (t *txn) Expired(ctx context.Context, poolID uuid.UUID, now time.Time, limit int) ([]pool.Item, error) {
	const op = "expired"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return nil, wrap(op, err)
	}
	at, err := nanos(now)
	if err != nil {
		return nil, wrap(op, err)
	}
	if limit <= 0 || !t.expiredBy(k, at) {
		return []pool.Item{}, nil
	}
	rows, err := t.query(ctx, expiredSQL, k, at, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := scanItems(rows, poolID, min(limit, 64))
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(out) == 0 {
		// The bound said a lease may have ended by now, and none has.
		if err := t.refreshExpiry(ctx, k); err != nil {
			return nil, wrap(op, err)
		}
	}
	return out, nil
}

// NextWake returns the earliest retry time or lease expiry of a pool.
// O(log n).
//
// Retrying and Scheduled items that a Due has already found due are left
// out: their time has come, and they change only when dispatched, which a
// settled lease or a raised cap announces. Counting their past retry times
// would make a caller that waits at capacity wake at once, again and again.
func (t *txn) NextWake(ctx context.Context, poolID uuid.UUID) (time.Time, bool, error) {
	const op = "next wake"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return time.Time{}, false, wrap(op, err)
	}
	var n sql.NullInt64
	if err := t.queryRow(ctx, []any{&n}, nextWakeSQL, k); err != nil {
		return time.Time{}, false, wrap(op, err)
	}
	if !n.Valid {
		return time.Time{}, false, nil
	}
	return fromNanos(n.Int64), true, nil
}

// PoolWakes reads, for each of pools, whether its due set holds an item,
// whether its items in flight fill its cap, and its NextWake (its first
// lease end alone when full), in one statement (poolWakesSQL): six seeks a
// pool. O(P log n) for P pools.
func (t *txn) PoolWakes(ctx context.Context, pools ...uuid.UUID) (map[uuid.UUID]store.PoolWake, error) {
	const op = "pool wakes"
	if !t.readOnly {
		return nil, fmt.Errorf("sqlite: %s: only in a read transaction", op)
	}
	out := make(map[uuid.UUID]store.PoolWake, len(pools))
	if len(pools) == 0 {
		return out, nil
	}
	list, err := contactList(pools)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, poolWakesSQL, list)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id           uuid.UUID
			due          bool
			retry, lease sql.NullInt64
			typ          pool.Type
			limit, n     int
		)
		if err := rows.Scan(&id, &due, &retry, &lease, &typ, &limit, &n); err != nil {
			return nil, wrap(op, err)
		}
		out[id] = store.NewPoolWake(due, typ, limit, n, nullTime(retry), nullTime(lease))
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// nullTime returns the instant of n, nil for NULL.
func nullTime(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}
