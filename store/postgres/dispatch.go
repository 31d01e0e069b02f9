package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

const (
	inFlightSQL = `SELECT c.processing + c.in_call FROM pool_counts c WHERE c.pool_id = $1`

	// promoteSQL moves the Retrying and Scheduled items whose time came into
	// the due set: a range seek on items_retry, touching only those items.
	promoteSQL = `UPDATE items SET ready = true
WHERE pool_id = $1 AND NOT ready AND status IN ('Retrying', 'Scheduled') AND next_retry_at <= $2`

	// demoteSQL takes out of the due set the Retrying and Scheduled items
	// that are not due at $2: a Due at a later now promoted them (another
	// node's clock ahead of this one's, or this clock stepped back). Run
	// when a Due read the whole due set (fewer items than its limit):
	// besides those it returned, the set then holds only such items. A
	// walk of items_ready over those rows, at most 1,000 (more are left to
	// the next such Due). Written as a filter on all of the pool's
	// retries, the plan walked items_pool_status: every item waiting for a
	// retry time, at every such claim.
	demoteSQL = `UPDATE items SET ready = false
WHERE id IN (SELECT id FROM items WHERE pool_id = $1 AND ready ORDER BY id LIMIT 1000)
    AND status IN ('Retrying', 'Scheduled') AND next_retry_at > $2`

	// dueWhere selects the due set of a pool. The second condition only
	// matters when now goes back in time: an item promoted at a later now
	// is not due at an earlier one (see demoteSQL).
	dueWhere = `WHERE i.pool_id = $1 AND i.ready AND (i.status = 'Pending' OR i.next_retry_at <= $2)`

	// The due items in each order, each an index walk: items_ready
	// ascending (FIFO) or descending (LIFO), items_ready_priority
	// (Parallel).
	dueFIFOSQL     = `SELECT ` + itemCols + ` FROM items i ` + dueWhere + ` ORDER BY i.id LIMIT $3`
	dueLIFOSQL     = `SELECT ` + itemCols + ` FROM items i ` + dueWhere + ` ORDER BY i.id DESC LIMIT $3`
	dueParallelSQL = `SELECT ` + itemCols + ` FROM items i ` + dueWhere + ` ORDER BY i.priority DESC, i.id LIMIT $3`

	// The due statements of PoolDue: those above with the pool named by
	// its UUID, sent with the lock before its id is known.
	dueFIFOByUUIDSQL     = `SELECT ` + itemCols + ` FROM items i ` + dueByUUIDWhere + ` ORDER BY i.id LIMIT $3`
	dueLIFOByUUIDSQL     = `SELECT ` + itemCols + ` FROM items i ` + dueByUUIDWhere + ` ORDER BY i.id DESC LIMIT $3`
	dueParallelByUUIDSQL = `SELECT ` + itemCols + ` FROM items i ` + dueByUUIDWhere + ` ORDER BY i.priority DESC, i.id LIMIT $3`
	dueByUUIDWhere       = `WHERE i.pool_id = (SELECT id FROM pools WHERE uuid = $1) AND i.ready AND (i.status = 'Pending' OR i.next_retry_at <= $2)`

	// expiredSQL walks items_lease from its start.
	expiredSQL = `SELECT ` + itemCols + ` FROM items i
WHERE i.pool_id = $1 AND i.status IN ('Processing', 'In_Call') AND i.lease_expires_at <= $2
ORDER BY i.lease_expires_at, i.id LIMIT $3`

	// nextWakeSQL takes the first entries of items_retry and items_lease:
	// two seeks.
	nextWakeSQL = `SELECT least(` + firstRetrySQL + `, ` + firstLeaseSQL + `)`

	// poolWakesSQL reads the PoolWake of pools $1: each pool's row (a seek
	// of its UUID) and its counts (a seek of pool_counts' key), then the
	// first entry of its items_ready (any), items_retry and items_lease,
	// the last two written as firstRetrySQL and firstLeaseSQL are, an
	// ordered walk stopped at its first row. No row for an unknown pool.
	// The pools are read in a lateral subquery per UUID, which its LIMIT
	// keeps apart: written as "p.uuid = ANY($1)", with the statistics of
	// a few pools the plan walked every pool.
	poolWakesSQL = `SELECT p.uuid, EXISTS (SELECT 1 FROM items i WHERE i.pool_id = p.id AND i.ready),
    (SELECT i.next_retry_at FROM items i
     WHERE i.pool_id = p.id AND NOT i.ready AND i.status IN ('Retrying', 'Scheduled')
     ORDER BY i.next_retry_at LIMIT 1),
    (SELECT i.lease_expires_at FROM items i
     WHERE i.pool_id = p.id AND i.status IN ('Processing', 'In_Call')
     ORDER BY i.lease_expires_at LIMIT 1),
    p.type, p.max_parallel_items, p.in_flight
FROM unnest($1::uuid[]) u CROSS JOIN LATERAL (SELECT pl.id, pl.uuid, pl.type, pl.max_parallel_items,
    c.processing + c.in_call AS in_flight FROM pools pl JOIN pool_counts c ON c.pool_id = pl.id WHERE pl.uuid = u LIMIT 1) p`
)

// InFlight returns the number of a pool's items in flight, from
// pool_counts (or, in a write transaction, the pool's state). O(1) in the
// number of items.
func (t *txn) InFlight(ctx context.Context, poolID uuid.UUID) (int, error) {
	const op = "in flight"
	if !t.readOnly {
		st, err := t.pool(ctx, poolID)
		if err != nil {
			return 0, wrap(op, err)
		}
		return int(st.n.inFlight()), nil
	}
	k, err := t.key(ctx, poolID)
	if err != nil {
		return 0, wrap(op, err)
	}
	var n int
	if err := t.queryRow(ctx, []any{&n}, inFlightSQL, k); err != nil {
		return 0, wrap(op, notFoundPool(poolID, err))
	}
	return n, nil
}

// Due promotes the Retrying and Scheduled items of a pool whose time came,
// then returns up to limit due items in the order of typ. O(log n + p + r)
// for p items promoted and r returned, whatever the number of items
// waiting. It fails with an error wrapping ErrClockSkew while this
// process's clock is further than MaxClockSkew from the server's, as
// PoolDue does (see the package documentation, Clocks).
func (t *txn) Due(ctx context.Context, poolID uuid.UUID, typ pool.Type, now time.Time, limit int) ([]pool.Item, error) {
	const op = "due"
	if err := t.writable(op); err != nil {
		return nil, err
	}
	if err := t.s.watch.err(); err != nil {
		return nil, wrap(op, err) // this clock would judge the pool's leases and retry times
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
		return nil, fmt.Errorf("postgres: %s: unknown pool type %q", op, typ)
	}
	st, err := t.pool(ctx, poolID)
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
	if st.hasRetry && st.retry <= at {
		if _, err := t.exec(ctx, promoteSQL, st.k, at); err != nil {
			return nil, wrap(op+": promote", err)
		}
		if err := t.refreshBound(ctx, st, retryBoundSQL, &st.retry, &st.hasRetry); err != nil {
			return nil, wrap(op+": promote", err)
		}
	}
	rows, err := t.query(ctx, query, st.k, at, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := t.scanItems(rows, poolID, limit)
	if err == nil && len(out) < limit {
		err = t.demote(ctx, st, at)
	}
	return out, wrap(op, err)
}

// demote gives back to the waiting set the retries of pool st marked due
// at a later now than at (see demoteSQL), when a Due at at read the whole
// due set: NextWake, which leaves marked items out, then names their times
// to a caller about to wait for them (one that found nothing, or passed
// over what it found: a contact in a call elsewhere). Without it, a node whose clock is behind
// the one that marked them sleeps past their time, to its poll. No
// statement when the pool has no retries.
func (t *txn) demote(ctx context.Context, st *poolState, at int64) error {
	if st.n.retries() == 0 {
		return nil
	}
	tag, err := t.exec(ctx, demoteSQL, st.k, at)
	if err != nil || tag.RowsAffected() == 0 {
		return err
	}
	return t.refreshBound(ctx, st, retryBoundSQL, &st.retry, &st.hasRetry)
}

// poolHint is what PoolDue guesses of a pool before its lock: its type
// (the order of the due statement to send) and its cap (no more rows are
// worth reading).
type poolHint struct {
	typ pool.Type
	cap int
}

// maxHints bounds the hints a Store keeps: pools made and deleted on
// other nodes are never forgotten one by one (this node learns of a
// deletion only when it claims from the pool), so a long-running node
// would otherwise keep one for every pool it ever claimed from. Past the
// bound every hint is dropped at once: the next claim of each pool pays
// the statement a wrong guess costs, once.
const maxHints = 4096

// hints holds, for each pool read in a write transaction, its type and cap
// as last seen (see PoolDue), at most maxHints of them.
type hints struct {
	mu sync.Mutex
	m  map[uuid.UUID]poolHint
}

func (h *hints) load(id uuid.UUID) (poolHint, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.m[id]
	return v, ok
}

func (h *hints) store(id uuid.UUID, v poolHint) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[id]; !ok && len(h.m) >= maxHints {
		clear(h.m)
	}
	if h.m == nil {
		h.m = make(map[uuid.UUID]poolHint)
	}
	h.m[id] = v
}

func (h *hints) forget(id uuid.UUID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.m, id)
}

func (h *hints) len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.m)
}

// PoolDue returns pool id and up to limit of its due items in the order
// of its type, within the room its cap leaves: Pool, InFlight, then Due.
// It fails with an error wrapping ErrClockSkew while this process's clock
// is further than MaxClockSkew from the server's: every claim begins with
// it (see the package documentation, Clocks).
//
// In a write transaction that does not hold the pool's lock yet, and for a
// pool this store has seen before, the due items are read in the round
// trip that takes the lock, behind it, in the order of the type the pool
// had then and at most as many as its cap was. They stand when the state
// read with the lock agrees: the same type, no retry time come (Due
// promotes those first), and every item the room allows read, or the due
// set exhausted. Otherwise Due reads them again.
func (t *txn) PoolDue(ctx context.Context, id uuid.UUID, now time.Time, limit int) (pool.Pool, []pool.Item, error) {
	const op = "pool due"
	if err := t.writable(op); err != nil {
		return pool.Pool{}, nil, err
	}
	if err := t.s.watch.err(); err != nil {
		return pool.Pool{}, nil, wrap(op, err) // this clock would judge the pool's leases and retry times
	}
	at, err := nanos(now)
	if err != nil {
		return pool.Pool{}, nil, wrap(op, err)
	}
	var st *poolState
	if h, ok := t.s.seen.load(id); ok && t.states[id] == nil && limit > 0 {
		n := min(limit, h.cap)
		var due []pool.Item
		s, read, err := t.lockPool(ctx, id, &behind{sql: dueByUUIDSQL(h.typ), args: []any{id, at, n}, read: func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err == nil {
				due, err = t.scanItems(rows, id, n)
			}
			return err
		}})
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				t.s.seen.forget(id) // deleted since, by another node maybe
			}
			return pool.Pool{}, nil, wrap(op, err)
		}
		st = s
		t.s.noteHint(id, st)
		want := poolRoom(st, limit)
		if read && st.p.Type == h.typ && !(st.hasRetry && st.retry <= at) && (len(due) < n || n >= want) {
			if len(due) < n && want > 0 {
				if err := t.demote(ctx, st, at); err != nil { // the due set read whole: see Due
					return pool.Pool{}, nil, wrap(op, err)
				}
			}
			return st.p, due[:min(len(due), want)], nil
		}
	} else if st, err = t.pool(ctx, id); err != nil {
		return pool.Pool{}, nil, wrap(op, err)
	} else {
		t.s.noteHint(id, st)
	}
	due, err := t.Due(ctx, id, st.p.Type, now, poolRoom(st, limit))
	if err != nil {
		return pool.Pool{}, nil, err
	}
	return st.p, due, nil
}

// noteHint keeps the type and cap of the pool of st for PoolDue's next
// guess.
func (s *Store) noteHint(id uuid.UUID, st *poolState) {
	h := poolHint{st.p.Type, st.p.Cap()}
	if old, ok := s.seen.load(id); !ok || old != h {
		s.seen.store(id, h)
	}
}

// poolRoom is limit, or less: the room the pool's cap leaves.
func poolRoom(st *poolState, limit int) int {
	return max(min(limit, st.p.Cap()-int(st.n.inFlight())), 0)
}

// dueByUUIDSQL returns the due statement of PoolDue for a pool of type typ.
func dueByUUIDSQL(typ pool.Type) string {
	switch typ {
	case pool.LIFO:
		return dueLIFOByUUIDSQL
	case pool.Parallel:
		return dueParallelByUUIDSQL
	}
	return dueFIFOByUUIDSQL
}

// Expired returns up to limit in-flight items of a pool whose lease ended
// at or before now, earliest first: none while this process's clock is
// further than MaxClockSkew from the server's (see the package
// documentation, Clocks). O(log n + r) for r returned.
func (t *txn) Expired(ctx context.Context, poolID uuid.UUID, now time.Time, limit int) ([]pool.Item, error) {
	const op = "expired"
	at, err := nanos(now)
	if err != nil {
		return nil, wrap(op, err)
	}
	var (
		k  int64
		st *poolState
	)
	if t.readOnly {
		if k, err = t.key(ctx, poolID); err != nil {
			return nil, wrap(op, err)
		}
	} else {
		if st, err = t.pool(ctx, poolID); err != nil {
			return nil, wrap(op, err)
		}
		k = st.k
	}
	if limit <= 0 || (st != nil && !(st.hasExpiry && st.expiry <= at)) || t.s.watch.err() != nil {
		return []pool.Item{}, nil
	}
	rows, err := t.query(ctx, expiredSQL, k, at, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := t.scanItems(rows, poolID, limit)
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(out) == 0 && st != nil {
		// The bound said a lease may have ended by now, and none has.
		if err := t.refreshBound(ctx, st, leaseBoundSQL, &st.expiry, &st.hasExpiry); err != nil {
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
	k, err := t.key(ctx, poolID)
	if err != nil {
		return time.Time{}, false, wrap(op, err)
	}
	var n *int64
	if err := t.queryRow(ctx, []any{&n}, nextWakeSQL, k); err != nil {
		return time.Time{}, false, wrap(op, err)
	}
	if n == nil {
		return time.Time{}, false, nil
	}
	return fromNanos(*n), true, nil
}

// PoolWakes reads, for each of pools, whether its due set holds an item,
// whether its items in flight fill its cap, and its NextWake (its first
// lease end alone when full), in one statement (poolWakesSQL): five seeks
// a pool. O(P log n) for P pools.
func (t *txn) PoolWakes(ctx context.Context, pools ...uuid.UUID) (map[uuid.UUID]store.PoolWake, error) {
	const op = "pool wakes"
	if !t.readOnly {
		return nil, fmt.Errorf("postgres: %s: only in a read transaction", op)
	}
	out := make(map[uuid.UUID]store.PoolWake, len(pools))
	if len(pools) == 0 {
		return out, nil
	}
	rows, err := t.query(ctx, poolWakesSQL, pools)
	if err != nil {
		return nil, wrap(op, err)
	}
	var (
		id           uuid.UUID
		due          bool
		retry, lease *int64
		typ          pool.Type
		limit        int
		n            int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &due, &retry, &lease, &typ, &limit, &n}, func() error {
		out[id] = store.NewPoolWake(due, typ, limit, int(n), instant(retry), instant(lease))
		return nil
	})
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// instant returns the instant of nanoseconds n, nil for none.
func instant(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := fromNanos(*n)
	return &t
}
