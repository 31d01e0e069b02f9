package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
)

// A write transaction locks a pool before it reads it (see txn.pool), and
// reads with the lock what dispatch asks next: the pool's row, its counts,
// the earliest lease expiry and the earliest retry time not yet promoted to
// the due set. It keeps them for the rest of the transaction, adjusted by
// every item it writes: no other transaction writes the pool until this
// one ends, so they stay true. InFlight and StatusCounts then answer
// without a statement, Expired without one while no lease has ended, and
// Due skips the promotion UPDATE while no retry time has come. Nothing is
// kept across transactions: other processes write too.
//
// The two times are lower bounds: an item that leaves flight or is
// promoted leaves them as they were, and a lower bound only ever costs a
// statement that finds nothing. When one is found stale it is read again.

// counts holds one number per status, in the order of pool.Statuses().
type counts [8]int64

// statusIndex returns the index of s in counts, -1 for an unknown status.
func statusIndex(s pool.Status) int {
	switch s {
	case pool.StatusPending:
		return 0
	case pool.StatusProcessing:
		return 1
	case pool.StatusInCall:
		return 2
	case pool.StatusRetrying:
		return 3
	case pool.StatusScheduled:
		return 4
	case pool.StatusCompleted:
		return 5
	case pool.StatusFailed:
		return 6
	case pool.StatusSkipped:
		return 7
	}
	return -1
}

func (c *counts) sum() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

func (c *counts) inFlight() int64 { return c[1] + c[2] }

// retries is the number of items waiting for a retry time: Retrying and
// Scheduled.
func (c *counts) retries() int64 { return c[3] + c[4] }

// statusMap returns the counts as StatusCounts returns them.
func (c *counts) statusMap() map[pool.Status]int {
	m := make(map[pool.Status]int, 8)
	for i, s := range pool.Statuses() {
		m[s] = int(c[i])
	}
	return m
}

// poolState is what a write transaction knows of a pool it locked.
type poolState struct {
	k int64     // the pool's internal id
	p pool.Pool // its row; ContactsCount follows n
	n counts    // its items in each status, as of now in the transaction
	// expiry is at or before the earliest lease end of an in-flight item;
	// hasExpiry is false only when there is none.
	expiry    int64
	hasExpiry bool
	// retry is at or before the earliest retry time of a Retrying or
	// Scheduled item outside the due set; hasRetry is false only when
	// there is none.
	retry    int64
	hasRetry bool
	// governors are the campaigns that govern the pool and attached
	// whether it has any campaign, read with the lock (what PoolGovernors
	// answers), while hasGovernors; a write to campaigns or their pools in
	// the transaction clears it.
	governors    []campaign.Campaign
	attached     bool
	hasGovernors bool

	scan struct { // scan buffers
		typ              string
		created, updated int64
		expiry, retry    *int64
	}
}

// poolCols are the columns of a pool scanned by scanPool (with pool_counts
// joined as c), the counts last.
const poolCols = `p.id, p.uuid, p.name, p.description, p.type, p.max_parallel_items, p.max_retries,
    p.is_active, p.created_at, p.updated_at,
    c.pending, c.processing, c.in_call, c.retrying, c.scheduled, c.completed, c.failed, c.skipped`

// poolStateSQL reads a pool with its dispatch state: four index seeks
// (pools, pool_counts, items_lease, items_retry).
const poolStateSQL = `SELECT ` + poolCols + `,
    (SELECT min(i.lease_expires_at) FROM items i
     WHERE i.pool_id = p.id AND i.status IN ('Processing', 'In_Call')),
    (SELECT min(i.next_retry_at) FROM items i
     WHERE i.pool_id = p.id AND NOT i.ready AND i.status IN ('Retrying', 'Scheduled'))
FROM pools p JOIN pool_counts c ON c.pool_id = p.id WHERE p.uuid = $1`

// poolDest returns the scan destinations of poolCols for st.
func (st *poolState) poolDest() []any {
	return []any{&st.k, &st.p.UUID, &st.p.Name, &st.p.Description, &st.scan.typ, &st.p.MaxParallelItems,
		&st.p.MaxRetries, &st.p.IsActive, &st.scan.created, &st.scan.updated,
		&st.n[0], &st.n[1], &st.n[2], &st.n[3], &st.n[4], &st.n[5], &st.n[6], &st.n[7]}
}

// dest returns the scan destinations of poolStateSQL.
func (st *poolState) dest() []any {
	return append(st.poolDest(), &st.scan.expiry, &st.scan.retry)
}

// finish completes a scanned state. Its bounds are exact.
func (st *poolState) finish() {
	st.p.Type = pool.Type(st.scan.typ)
	st.p.CreatedAt = fromNanos(st.scan.created)
	st.p.UpdatedAt = fromNanos(st.scan.updated)
	st.p.ContactsCount = int(st.n.sum())
	if st.scan.expiry != nil {
		st.expiry, st.hasExpiry = *st.scan.expiry, true
	}
	if st.scan.retry != nil {
		st.retry, st.hasRetry = *st.scan.retry, true
	}
}

// addPending adds this transaction's count changes not yet written to a
// state just read.
func (t *txn) addPending(st *poolState) {
	if d := t.deltas[st.k]; d != nil {
		for i, v := range d {
			st.n[i] += v
		}
		st.p.ContactsCount = int(st.n.sum())
	}
}

// count adds d to the count of pool st in status s, pending until commit.
func (t *txn) count(st *poolState, s pool.Status, d int) {
	i := statusIndex(s)
	if d == 0 || i < 0 {
		return
	}
	if t.deltas == nil {
		t.deltas = make(map[int64]*counts, 1)
	}
	c := t.deltas[st.k]
	if c == nil {
		c = new(counts)
		t.deltas[st.k] = c
	}
	c[i] += int64(d)
	st.n[i] += int64(d)
	st.p.ContactsCount += d
	if s.InFlight() && st.n.inFlight() == 0 {
		st.hasExpiry = false // no lease left to end
	}
}

// updateCountsSQL adds changes to pool_counts, one row per pool.
const updateCountsSQL = `UPDATE pool_counts c SET pending = c.pending + v.d0, processing = c.processing + v.d1,
    in_call = c.in_call + v.d2, retrying = c.retrying + v.d3, scheduled = c.scheduled + v.d4,
    completed = c.completed + v.d5, failed = c.failed + v.d6, skipped = c.skipped + v.d7
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[])
    AS v (pool_id, d0, d1, d2, d3, d4, d5, d6, d7)
WHERE c.pool_id = v.pool_id`

// queueCounts queues the statement writing the pending count changes to
// pool_counts, if there are any. A count that would go below zero fails its
// CHECK: the writes that led there were wrong, and the transaction must not
// commit.
func (t *txn) queueCounts(b *pgx.Batch) {
	var args [9][]int64
	for k, c := range t.deltas {
		if *c == (counts{}) {
			continue
		}
		args[0] = append(args[0], k)
		for i, v := range c {
			args[i+1] = append(args[i+1], v)
		}
	}
	if len(args[0]) == 0 {
		return
	}
	b.Queue(updateCountsSQL, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8])
}

// flushCounts writes the pending count changes now: before a statement
// that reads pool_counts of pools this transaction may not have a state of.
func (t *txn) flushCounts(ctx context.Context) error {
	b := &pgx.Batch{}
	t.queueCounts(b)
	if b.Len() == 0 {
		return nil
	}
	err := t.tx.SendBatch(ctx, b).Close()
	t.noteErr(err)
	if err != nil {
		return err
	}
	clear(t.deltas)
	return nil
}

// noteItem updates the state of a pool for an item written as it: a lease
// it holds or a retry time it waits for may now be the earliest.
func noteItem(st *poolState, it pool.Item) {
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

// firstLeaseSQL and firstRetrySQL are the first entries of a pool's
// items_lease and items_retry (pool $1), NULL when none: an ordered walk
// stopped at its first row. Written as min(), the generic plan read the
// whole set when the planner took it for a row or two (a table analyzed
// while its items were all Pending): 15 ms at 100,000 items waiting for
// a retry, at every claim that promoted one.
const (
	firstLeaseSQL = `(SELECT lease_expires_at FROM items
     WHERE pool_id = $1 AND status IN ('Processing', 'In_Call') ORDER BY lease_expires_at LIMIT 1)`
	firstRetrySQL = `(SELECT next_retry_at FROM items
     WHERE pool_id = $1 AND NOT ready AND status IN ('Retrying', 'Scheduled') ORDER BY next_retry_at LIMIT 1)`
)

const (
	// leaseBoundSQL and retryBoundSQL read the two bounds of a pool's state
	// exactly: one seek each, on items_lease and items_retry.
	leaseBoundSQL = `SELECT ` + firstLeaseSQL
	retryBoundSQL = `SELECT ` + firstRetrySQL
)

// refreshBound reads one bound of st again (leaseBoundSQL or
// retryBoundSQL): it was found stale.
func (t *txn) refreshBound(ctx context.Context, st *poolState, sql string, v *int64, ok *bool) error {
	var n *int64
	if err := t.queryRow(ctx, []any{&n}, sql, st.k); err != nil {
		return err
	}
	*ok = n != nil
	if n != nil {
		*v = *n
	}
	return nil
}
