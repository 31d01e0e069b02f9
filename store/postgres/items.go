package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// itemCols are the columns scanned by scanItem.
const itemCols = `i.id, i.contact_uuid, i.status, i.priority, i.attempts, i.retry_count,
    i.started_at, i.completed_at, i.failed_at, i.next_retry_at, i.notes, i.added_at, i.payload,
    i.token, i.lease_expires_at, i.name, i.phone_number, i.email, i.timezone, i.call_at, i.calls_today, i.call_token,
    i.prev_call_at, i.prev_calls_today, i.older_call_at, i.older_calls_today`

const (
	// insertItemsSQL inserts items from arrays, one element per item, in
	// the order of the arrays (so the IDs follow it), skipping contacts
	// already in the pool and the repeats of one (the first wins: a contact
	// added again keeps its fields), and returns how many it added in each
	// status. $1 is the pool; $16 to $19 the contact fields, NULL when
	// empty; $20 the tsvector literals of their words (see search.go); $21
	// to $23 the latest counted call, the day's calls and the counted
	// dispatch's token; $24 and $25 the previous calling day's latest call
	// and calls, $26 and $27 the older day's.
	insertItemsSQL = `WITH ins AS (
    INSERT INTO items (pool_id, contact_uuid, added_at, payload, priority, status, attempts, retry_count,
        started_at, completed_at, failed_at, next_retry_at, notes, token, lease_expires_at, ready,
        name, phone_number, email, timezone, search, call_at, calls_today, call_token, prev_call_at,
        prev_calls_today, older_call_at, older_calls_today)
    SELECT $1, v.c, v.a, v.p, v.pr, v.s, v.at, v.rc, v.sa, v.ca, v.fa, v.nr, v.n, v.tk, v.le, v.s = 'Pending',
        v.nm, v.ph, v.em, v.tz, v.sv::tsvector, v.cl, v.ct, v.ck, v.pc, v.pt, v.oc, v.ot
    FROM unnest($2::uuid[], $3::bigint[], $4::bytea[], $5::bigint[], $6::text[], $7::bigint[], $8::bigint[],
        $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], $13::text[], $14::bigint[], $15::bigint[],
        $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::bigint[], $22::bigint[], $23::bigint[],
        $24::bigint[], $25::bigint[], $26::bigint[], $27::bigint[])
        WITH ORDINALITY AS v (c, a, p, pr, s, at, rc, sa, ca, fa, nr, n, tk, le, nm, ph, em, tz, sv, cl, ct, ck, pc, pt, oc, ot, ord)
    ORDER BY v.ord
    ON CONFLICT (pool_id, contact_uuid) DO NOTHING
    RETURNING status
)
SELECT status, count(*) FROM ins GROUP BY status`

	// insertNewItemsSQL is insertItemsSQL for new items (see isNew)
	// without contact fields: four arrays, the state being the literals of
	// a new item. The pool is named by its UUID ($1), so that the statement
	// can ride the batch that locks it (see InsertItems); a pool not there
	// gets nothing.
	insertNewItemsSQL = `INSERT INTO items (pool_id, contact_uuid, added_at, payload, priority, status, attempts,
    retry_count, notes, token, ready)
SELECT pl.id, v.c, v.a, v.p, v.pr, 'Pending', 0, 0, '', 0, true
FROM pools pl, unnest($2::uuid[], $3::bigint[], $4::bytea[], $5::bigint[]) WITH ORDINALITY AS v (c, a, p, pr, ord)
WHERE pl.uuid = $1
ORDER BY v.ord
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`

	// insertNewContactItemsSQL is insertNewItemsSQL for new items with
	// contact fields: nine arrays.
	insertNewContactItemsSQL = `INSERT INTO items (pool_id, contact_uuid, added_at, payload, priority, status,
    attempts, retry_count, notes, token, ready, name, phone_number, email, timezone, search)
SELECT $1, v.c, v.a, v.p, v.pr, 'Pending', 0, 0, '', 0, true, v.nm, v.ph, v.em, v.tz, v.sv::tsvector
FROM unnest($2::uuid[], $3::bigint[], $4::bytea[], $5::bigint[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[]) WITH ORDINALITY AS v (c, a, p, pr, nm, ph, em, tz, sv, ord)
ORDER BY v.ord
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`

	// copyItemsSQL copies the items of pool $3 into pool $1 with their
	// contact fields. The lexemes of their words name their pool (see
	// search.go): $4 replaces the source's prefix, $5 characters long.
	copyItemsSQL = `INSERT INTO items (pool_id, contact_uuid, added_at, payload, status, priority,
    attempts, retry_count, notes, token, ready, name, phone_number, email, timezone, search)
SELECT $1, i.contact_uuid, $2, i.payload, 'Pending', i.priority, 0, 0, '', 0, true,
    i.name, i.phone_number, i.email, i.timezone,
    CASE WHEN i.search IS NOT NULL THEN array_to_tsvector(ARRAY(
        SELECT $4::text || substr(l, $5::int + 1) FROM unnest(tsvector_to_array(i.search)) l)) END
FROM items i WHERE i.pool_id = $3 ORDER BY i.id
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`

	itemSQL = `SELECT ` + itemCols + ` FROM items i WHERE i.pool_id = $1 AND i.contact_uuid = $2`

	itemsByIDSQL = `SELECT ` + itemCols + `, p.uuid, p.id FROM items i JOIN pools p ON p.id = i.pool_id
WHERE i.id = ANY($1::bigint[])`

	// updateItemSQL sets ready from the status: a Pending item is due, a
	// Retrying or Scheduled one waits for Due to promote it.
	updateItemSQL = `UPDATE items SET status = $1, priority = $2, attempts = $3, retry_count = $4,
    started_at = $5, completed_at = $6, failed_at = $7, next_retry_at = $8, notes = $9, token = $10,
    lease_expires_at = $11, ready = $1 = 'Pending', call_at = $15, calls_today = $16, call_token = $17,
    prev_call_at = $18, prev_calls_today = $19, older_call_at = $20, older_calls_today = $21
WHERE id = $12 AND pool_id = $13 AND status = $14`

	// updateItemsSQL is updateItemSQL for many items, from arrays.
	// updateItemsSQL fails (poolq_expect_rows, SQLSTATE P0002) unless it
	// finds every item in its pool and From status: it is deferred (see
	// UpdateItems), so the check cannot wait for the client. "pool_id +
	// 0" leaves items_pkey the only index to seek: with pool and status,
	// some samples of ANALYZE made it items_pool_status (as good a seek,
	// one row, but a plan that changes with the sample).
	updateItemsSQL = `WITH u AS (UPDATE items i SET status = v.s, priority = v.pr, attempts = v.at, retry_count = v.rc,
    started_at = v.sa, completed_at = v.ca, failed_at = v.fa, next_retry_at = v.nr, notes = v.n,
    token = v.tk, lease_expires_at = v.le, ready = v.s = 'Pending', call_at = v.cl, calls_today = v.ct,
    call_token = v.ck, prev_call_at = v.pc, prev_calls_today = v.pt, older_call_at = v.oc, older_calls_today = v.ot
FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
    $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::bigint[], $14::bigint[],
    $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[], $19::bigint[], $20::bigint[], $21::bigint[])
    AS v (id, pool_id, f, s, pr, at, rc, sa, ca, fa, nr, n, tk, le, cl, ct, ck, pc, pt, oc, ot)
WHERE i.id = v.id AND i.pool_id + 0 = v.pool_id AND i.status = v.f RETURNING 1)
SELECT poolq_expect_rows(count(*), cardinality($1::bigint[])) FROM u`

	// itemsOfContactsSQL seeks UNIQUE (pool_id, contact_uuid) once per
	// contact of $2 (each once), in a lateral subquery that its LIMIT (a
	// pool has one item of a contact at most) keeps apart: written as a
	// join, or with "contact_uuid = ANY($2)", the generic plan of a table
	// not analyzed since a bulk add walks every item of the pool instead.
	itemsOfContactsSQL = `SELECT ` + itemCols + ` FROM unnest($2::uuid[]) c
CROSS JOIN LATERAL (SELECT * FROM items WHERE pool_id = $1 AND contact_uuid = c LIMIT 1) i`

	// deleteItemsSQL seeks the primary key once per ID of $2, and returns
	// how many items it deleted in each status. "pool_id + 0" keeps the
	// pool out of the choice of index: with "pool_id = $1" the generic
	// plan of a table not analyzed since a bulk add walks every item of
	// the pool. Their search words are a column of the row: they go with
	// it.
	deleteItemsSQL = `WITH d AS (DELETE FROM items WHERE id = ANY($2::bigint[]) AND pool_id + 0 = $1 RETURNING status)
SELECT status, count(*) FROM d GROUP BY status`

	// itemsSQL walks items_pool from the first ID past the query's After
	// (0: the first item), then skips the page's offset.
	itemsSQL = `SELECT ` + itemCols + ` FROM items i WHERE i.pool_id = $1 AND i.id > $2
ORDER BY i.id LIMIT $3 OFFSET $4`

	itemsByStatusSQL = `SELECT ` + itemCols + ` FROM items i WHERE i.pool_id = $1 AND i.status = $2 AND i.id > $3
ORDER BY i.id LIMIT $4 OFFSET $5`
)

// isNew reports whether it is in the state of a new item: Pending, never
// attempted, no times but AddedAt, no notes, token, lease or calling day.
func isNew(it pool.Item) bool {
	return it.Status == pool.StatusPending && it.Attempts == 0 && it.RetryCount == 0 &&
		it.StartedAt == nil && it.CompletedAt == nil && it.FailedAt == nil && it.NextRetryAt == nil &&
		it.Notes == "" && it.Token == 0 && it.LeaseExpiresAt.IsZero() && it.CallAt.IsZero() && it.CallsToday == 0 && it.CallToken == 0 &&
		it.PrevCallAt.IsZero() && it.PrevCallsToday == 0 && it.OlderCallAt.IsZero() && it.OlderCallsToday == 0
}

// stateArrays are the arrays of items' mutable fields, one element per
// item, as insertItemsSQL and updateItemsSQL take them.
type stateArrays struct {
	status                      []string
	priority, attempts, retries []int64
	started, completed, failed  []*int64
	next, lease                 []*int64
	notes                       []string
	token                       []int64
	callAt                      []*int64
	callsToday, callToken       []int64
	prevCallAt, olderCallAt     []*int64
	prevCallsToday, olderCalls  []int64
}

func (a *stateArrays) add(it pool.Item) error {
	var times [4]*int64
	for i, p := range []*time.Time{it.StartedAt, it.CompletedAt, it.FailedAt, it.NextRetryAt} {
		v, err := nullNanos(p)
		if err != nil {
			return err
		}
		times[i] = v
	}
	lease, err := zeroNullNanos(it.LeaseExpiresAt)
	if err != nil {
		return err
	}
	callAt, err := zeroNullNanos(it.CallAt)
	if err != nil {
		return err
	}
	prevCallAt, err := zeroNullNanos(it.PrevCallAt)
	if err != nil {
		return err
	}
	olderCallAt, err := zeroNullNanos(it.OlderCallAt)
	if err != nil {
		return err
	}
	a.status = append(a.status, string(it.Status))
	a.priority = append(a.priority, int64(it.Priority))
	a.attempts = append(a.attempts, int64(it.Attempts))
	a.retries = append(a.retries, int64(it.RetryCount))
	a.started = append(a.started, times[0])
	a.completed = append(a.completed, times[1])
	a.failed = append(a.failed, times[2])
	a.next = append(a.next, times[3])
	a.notes = append(a.notes, it.Notes)
	a.token = append(a.token, it.Token)
	a.lease = append(a.lease, lease)
	a.callAt = append(a.callAt, callAt)
	a.callsToday = append(a.callsToday, int64(it.CallsToday))
	a.callToken = append(a.callToken, it.CallToken)
	a.prevCallAt = append(a.prevCallAt, prevCallAt)
	a.prevCallsToday = append(a.prevCallsToday, int64(it.PrevCallsToday))
	a.olderCallAt = append(a.olderCallAt, olderCallAt)
	a.olderCalls = append(a.olderCalls, int64(it.OlderCallsToday))
	return nil
}

// args returns the arrays in the order of the statements' parameters.
func (a *stateArrays) args() []any {
	return []any{a.status, a.priority, a.attempts, a.retries, a.started, a.completed, a.failed,
		a.next, a.notes, a.token, a.lease, a.callAt, a.callsToday, a.callToken, a.prevCallAt, a.prevCallsToday,
		a.olderCallAt, a.olderCalls}
}

// contactArrays are the arrays of items' contact fields and the tsvector
// literals of their words, one element per item, NULL for an empty one.
type contactArrays struct {
	name, phone, email, zone, search []*string
}

func (c *contactArrays) add(k int64, ct pool.Contact) {
	c.name = append(c.name, nullText(ct.Name))
	c.phone = append(c.phone, nullText(ct.PhoneNumber))
	c.email = append(c.email, nullText(ct.Email))
	c.zone = append(c.zone, nullText(ct.TimeZone))
	c.search = append(c.search, contactLexemes(k, ct))
}

// args returns the arrays in the order of the statements' parameters.
func (c *contactArrays) args() []any {
	return []any{c.name, c.phone, c.email, c.zone, c.search}
}

// nullText returns &s, or nil (NULL) for "": an unknown contact field.
func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// payloadArg returns a payload as stored: bytea, or NULL when empty.
func payloadArg(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	return p
}

// InsertItems adds items to a pool in one statement that skips contacts
// already in the pool (and a contact's repeats in items, the first
// winning). It stores every field of each item but ID and PoolUUID.
// O(m log n) for m items.
func (t *txn) InsertItems(ctx context.Context, poolID uuid.UUID, items []pool.Item) (int, error) {
	const op = "insert items"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	for i, it := range items {
		if len(it.Payload) > 0 && !json.Valid(it.Payload) {
			return 0, fmt.Errorf("postgres: %s: item %d: payload is not valid JSON", op, i)
		}
	}
	if len(items) == 0 {
		_, err := t.pool(ctx, poolID)
		return 0, wrap(op, err)
	}
	contacts := make([]uuid.UUID, len(items))
	added := make([]int64, len(items))
	payloads := make([][]byte, len(items))
	fresh, anyContact := true, false
	for i, it := range items {
		at, err := nanos(it.AddedAt)
		if err != nil {
			return 0, wrap(fmt.Sprintf("%s: item %d", op, i), err)
		}
		contacts[i], added[i], payloads[i] = it.ContactUUID, at, payloadArg(it.Payload)
		fresh = fresh && isNew(it)
		anyContact = anyContact || !it.Contact.IsZero()
	}
	n := 0
	var priorities []int64
	if fresh {
		priorities = make([]int64, len(items))
		for i, it := range items {
			priorities[i] = int64(it.Priority)
		}
	}
	var (
		st   *poolState
		done bool // the items were inserted with the pool's lock
		err  error
	)
	if st = t.states[poolID]; st == nil && fresh && !anyContact && t.maxKey == noLock {
		// The transaction's first lock: the INSERT rides the batch that
		// takes it (lockPool), one round trip instead of two.
		insert := &behind{sql: insertNewItemsSQL, args: []any{poolID, contacts, added, payloads, priorities},
			read: func(br pgx.BatchResults) error {
				tag, err := br.Exec()
				n = int(tag.RowsAffected())
				return err
			}}
		if st, done, err = t.lockPool(ctx, poolID, insert); err != nil {
			return 0, wrap(op, err)
		}
	} else if st, err = t.pool(ctx, poolID); err != nil {
		return 0, wrap(op, err)
	}
	var c contactArrays
	if anyContact || !fresh {
		for _, it := range items {
			c.add(st.k, it.Contact)
		}
	}
	if done {
		t.count(st, pool.StatusPending, n)
	} else if fresh {
		sql, args := insertNewItemsSQL, []any{poolID, contacts, added, payloads, priorities}
		if anyContact {
			sql, args = insertNewContactItemsSQL, append([]any{st.k, contacts, added, payloads, priorities}, c.args()...)
		}
		tag, err := t.exec(ctx, sql, args...)
		if err != nil {
			return 0, wrap(op, err)
		}
		n = int(tag.RowsAffected())
		t.count(st, pool.StatusPending, n)
	} else {
		var a stateArrays
		for i, it := range items {
			if err := a.add(it); err != nil {
				return 0, wrap(fmt.Sprintf("%s: item %d", op, i), err)
			}
		}
		args := append([]any{st.k, contacts, added, payloads, a.priority, a.status, a.attempts, a.retries,
			a.started, a.completed, a.failed, a.next, a.notes, a.token, a.lease}, c.args()...)
		args = append(args, a.callAt, a.callsToday, a.callToken, a.prevCallAt, a.prevCallsToday, a.olderCallAt, a.olderCalls)
		rows, err := t.query(ctx, insertItemsSQL, args...)
		if err != nil {
			return 0, wrap(op, err)
		}
		var status string
		var c int
		_, err = pgx.ForEachRow(rows, []any{&status, &c}, func() error {
			t.count(st, pool.Status(status), c)
			n += c
			return nil
		})
		if err != nil {
			t.noteErr(err)
			return 0, wrap(op, err)
		}
	}
	for _, it := range items { // those added among them, and maybe more: bounds may be low
		noteItem(st, it)
	}
	return n, nil
}

// CopyItems copies a pool's items into another as new Pending items, in
// one statement. O(m log n) for m items.
func (t *txn) CopyItems(ctx context.Context, src, dst uuid.UUID, now time.Time) (int, error) {
	const op = "copy items"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	at, err := nanos(now)
	if err != nil {
		return 0, wrap(op, err)
	}
	ss, err := t.pool(ctx, src)
	if err != nil {
		return 0, wrap(op+": source", err)
	}
	ds, err := t.pool(ctx, dst)
	if err != nil {
		return 0, wrap(op+": destination", err)
	}
	srcPrefix, dstPrefix := strconv.FormatInt(ss.k, 10)+"/", strconv.FormatInt(ds.k, 10)+"/"
	tag, err := t.exec(ctx, copyItemsSQL, ds.k, at, ss.k, dstPrefix, len(srcPrefix))
	if err != nil {
		return 0, wrap(op, err)
	}
	n := int(tag.RowsAffected())
	t.count(ds, pool.StatusPending, n)
	return n, nil
}

// Item returns the item of a contact in a pool. O(log n).
func (t *txn) Item(ctx context.Context, poolID, contact uuid.UUID) (pool.Item, error) {
	const op = "item"
	k, err := t.key(ctx, poolID)
	if err != nil {
		return pool.Item{}, wrap(op, err)
	}
	it, err := scanItem(t.tx.QueryRow(ctx, itemSQL, k, contact), poolID)
	t.noteErr(err)
	if err != nil {
		return pool.Item{}, wrap(fmt.Sprintf("%s: contact %s in pool %s", op, contact, poolID), err)
	}
	return it, nil
}

// ItemsOfContacts returns the items of contacts in a pool, in one
// statement. O(m log n) for m contacts. In a write transaction it locks
// the pool first.
func (t *txn) ItemsOfContacts(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) ([]pool.Item, error) {
	const op = "items of contacts"
	k, err := t.key(ctx, poolID)
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(contacts) == 0 {
		return []pool.Item{}, nil
	}
	rows, err := t.query(ctx, itemsOfContactsSQL, k, distinct(contacts))
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := t.scanItems(rows, poolID, len(contacts))
	return out, wrap(op, err)
}

// lockPoolsFound locks the pools that query (rows of id and UUID) finds
// with arg, in the order of their keys. A pool deleted meanwhile is left
// out.
func (t *txn) lockPoolsFound(ctx context.Context, query string, arg any) error {
	rows, err := t.query(ctx, query, arg)
	if err != nil {
		return err
	}
	var locks []lockedPool
	var l lockedPool
	if _, err := pgx.ForEachRow(rows, []any{&l.k, &l.id}, func() error {
		locks = append(locks, l)
		return nil
	}); err != nil {
		t.noteErr(err)
		return err
	}
	return t.lockAll(ctx, locks)
}

// lockAll locks pools in the order of their keys. A pool deleted
// meanwhile is left out.
func (t *txn) lockAll(ctx context.Context, locks []lockedPool) error {
	slices.SortFunc(locks, func(a, b lockedPool) int { return cmp.Compare(t.lockKey(a.k), t.lockKey(b.k)) })
	for _, l := range locks {
		if _, err := t.pool(ctx, l.id); err != nil && translate(err) != store.ErrNotFound {
			return err
		}
	}
	return nil
}

// ItemByID returns an item by its ID. O(log n).
func (t *txn) ItemByID(ctx context.Context, id int64) (pool.Item, error) {
	const op = "item by id"
	items, err := t.ItemsByID(ctx, []int64{id})
	if err != nil {
		return pool.Item{}, err
	}
	if len(items) == 0 {
		return pool.Item{}, fmt.Errorf("postgres: %s: item %d: %w", op, id, store.ErrNotFound)
	}
	return items[0], nil
}

// ItemsByID returns the items with the given IDs that exist, in no
// particular order. O(m log n).
func (t *txn) ItemsByID(ctx context.Context, ids []int64) ([]pool.Item, error) {
	const op = "items by id"
	if len(ids) == 0 {
		return []pool.Item{}, nil
	}
	out, pools, err := t.itemsByID(ctx, ids)
	if err != nil || t.readOnly {
		return out, wrap(op, err)
	}
	// An item changes only under its pool's lock, so what was read stands
	// if this transaction held the lock of every pool found before it read
	// (it dispatched from the pool before settling, say). Else those pools
	// are locked, in the order of their keys, and the items read again.
	var missing []lockedPool
	for _, l := range pools {
		if _, ok := t.locked[l.id]; !ok {
			missing = append(missing, l)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	if err := t.lockAll(ctx, missing); err != nil {
		return nil, wrap(op, err)
	}
	out, _, err = t.itemsByID(ctx, ids)
	return out, wrap(op, err)
}

// PoolItems returns pool id and those of the items ids that are in it.
// In a write transaction that does not hold the pool's lock yet, the items
// are read in the round trip that takes it, behind the lock. They are read
// by ID alone (itemsByIDSQL), the pool filtered here: a condition on the
// pool in the statement can lead the planner to walk the pool's index.
func (t *txn) PoolItems(ctx context.Context, id uuid.UUID, ids []int64) (pool.Pool, []pool.Item, error) {
	const op = "pool items"
	if ids == nil {
		ids = []int64{}
	}
	var (
		p     pool.Pool
		found []pool.Item
		read  bool
	)
	if !t.readOnly && t.states[id] == nil {
		st, ok, err := t.lockPool(ctx, id, &behind{sql: itemsByIDSQL, args: []any{ids}, read: func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err == nil {
				found, _, err = t.scanItemsByID(rows, len(ids))
			}
			return err
		}})
		if err != nil {
			return pool.Pool{}, nil, wrap(op, err)
		}
		p, read = st.p, ok
	}
	if !read {
		var err error
		if p, err = t.Pool(ctx, id); err != nil {
			return pool.Pool{}, nil, err
		}
		if found, _, err = t.itemsByID(ctx, ids); err != nil {
			return pool.Pool{}, nil, wrap(op, err)
		}
	}
	in := found[:0]
	for _, it := range found {
		if it.PoolUUID == id {
			in = append(in, it)
		}
	}
	return p, in, nil
}

// itemsByID reads the items with the given IDs, and the pools they are
// in (each once).
func (t *txn) itemsByID(ctx context.Context, ids []int64) ([]pool.Item, []lockedPool, error) {
	rows, err := t.query(ctx, itemsByIDSQL, ids)
	if err != nil {
		return nil, nil, err
	}
	return t.scanItemsByID(rows, len(ids))
}

// scanItemsByID reads the rows of itemsByIDSQL: the items, and the pools
// they are in (each once).
func (t *txn) scanItemsByID(rows pgx.Rows, n int) ([]pool.Item, []lockedPool, error) {
	defer rows.Close()
	out := make([]pool.Item, 0, n)
	var pools []lockedPool
	for rows.Next() {
		var l lockedPool
		it, err := scanItem(rows, uuid.Nil, &l.id, &l.k)
		if err != nil {
			return nil, nil, err
		}
		it.PoolUUID = l.id
		out = append(out, it)
		if !slices.ContainsFunc(pools, func(p lockedPool) bool { return p.id == l.id }) {
			pools = append(pools, l)
		}
	}
	if err := rows.Err(); err != nil {
		t.noteErr(err)
		return nil, nil, err
	}
	return out, pools, nil
}

// UpdateItem stores the mutable fields of it if it is in status from.
// O(log n).
func (t *txn) UpdateItem(ctx context.Context, from pool.Status, it pool.Item) error {
	const op = "update item"
	if err := t.writable(op); err != nil {
		return err
	}
	st, err := t.pool(ctx, it.PoolUUID)
	if err != nil {
		return wrap(op, err)
	}
	var a stateArrays
	if err := a.add(it); err != nil {
		return wrap(op, err)
	}
	tag, err := t.exec(ctx, updateItemSQL, a.status[0], a.priority[0], a.attempts[0], a.retries[0],
		a.started[0], a.completed[0], a.failed[0], a.next[0], a.notes[0], a.token[0], a.lease[0],
		it.ID, st.k, string(from), a.callAt[0], a.callsToday[0], a.callToken[0], a.prevCallAt[0], a.prevCallsToday[0],
		a.olderCallAt[0], a.olderCalls[0])
	if err != nil {
		return wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: item %d in pool %s in status %s: %w", op, it.ID, it.PoolUUID, from, store.ErrNotFound)
	}
	t.count(st, from, -1)
	t.count(st, it.Status, 1)
	noteItem(st, it)
	return nil
}

// UpdateItems stores the mutable fields of items in one statement. O(m log
// n) for m items.
//
// The statement is deferred: it travels with the transaction's next
// statement or with its COMMIT (one round trip fewer each time: the
// dispatch and settlement paths write items this way, and a transaction
// that claims and settles made two). Its check runs in the server, so an
// item not found in its From status fails the call that sent it, or the
// commit, with [store.ErrNotFound], and the transaction does not commit.
// Inside a savepoint it is sent before the savepoint is released, so the
// failure is the savepoint's own, and dropped unsent when the savepoint is
// rolled back.
func (t *txn) UpdateItems(ctx context.Context, changes ...store.Change) error {
	const op = "update items"
	if err := t.writable(op); err != nil {
		return err
	}
	if len(changes) == 0 {
		return nil
	}
	states := make([]*poolState, len(changes))
	for i, c := range changes {
		st, err := t.pool(ctx, c.Item.PoolUUID)
		if err != nil {
			return wrap(fmt.Sprintf("%s: item %d", op, i), err)
		}
		states[i] = st
	}
	ids := make([]int64, len(changes))
	keys := make([]int64, len(changes))
	from := make([]string, len(changes))
	var a stateArrays
	for i, c := range changes {
		ids[i], keys[i], from[i] = c.Item.ID, states[i].k, string(c.From)
		if err := a.add(c.Item); err != nil {
			return wrap(fmt.Sprintf("%s: item %d", op, i), err)
		}
	}
	if err := t.deferExec(ctx, updateItemsSQL, append([]any{ids, keys, from}, a.args()...)...); err != nil {
		return wrap(op, err)
	}
	for i, c := range changes {
		t.count(states[i], c.From, -1)
		t.count(states[i], c.Item.Status, 1)
		noteItem(states[i], c.Item)
	}
	return nil
}

// DeleteItems removes those of the items ids that are in pool poolID, in
// one statement, and returns how many it removed. O(m log n) for m items.
func (t *txn) DeleteItems(ctx context.Context, poolID uuid.UUID, ids []int64) (int, error) {
	const op = "delete items"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	st, err := t.pool(ctx, poolID)
	if err != nil {
		return 0, wrap(op, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	rows, err := t.query(ctx, deleteItemsSQL, st.k, ids)
	if err != nil {
		return 0, wrap(op, err)
	}
	var (
		status string
		d, n   int
	)
	if _, err := pgx.ForEachRow(rows, []any{&status, &d}, func() error {
		t.count(st, pool.Status(status), -d)
		n += d
		return nil
	}); err != nil {
		t.noteErr(err)
		return 0, wrap(op, err)
	}
	return n, nil
}

// Items returns one page of a pool's items in insertion order and the
// number matching. O(log n + offset + per_page), the seek past q.After
// included; the total comes from pool_counts, O(1).
func (t *txn) Items(ctx context.Context, poolID uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error) {
	const op = "items"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("postgres: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	var (
		k int64
		c counts
	)
	if t.readOnly {
		var err error
		if k, err = t.key(ctx, poolID); err != nil {
			return nil, 0, wrap(op, err)
		}
		if err := t.queryRow(ctx, []any{&c[0], &c[1], &c[2], &c[3], &c[4], &c[5], &c[6], &c[7]}, statusCountsSQL, k); err != nil {
			return nil, 0, wrap(op, notFoundPool(poolID, err))
		}
	} else {
		st, err := t.pool(ctx, poolID)
		if err != nil {
			return nil, 0, wrap(op, err)
		}
		k, c = st.k, st.n
	}
	if q.Search != "" {
		return t.searchItems(ctx, k, poolID, q)
	}
	var (
		total int
		rows  pgx.Rows
		err   error
	)
	offset := pool.Offset(q.Page, q.PerPage)
	if q.Status == "" {
		total = int(c.sum())
		rows, err = t.query(ctx, itemsSQL, k, q.After, q.PerPage, offset)
	} else {
		if i := statusIndex(q.Status); i >= 0 {
			total = int(c[i])
		}
		rows, err = t.query(ctx, itemsByStatusSQL, k, string(q.Status), q.After, q.PerPage, offset)
	}
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out, err := t.scanItems(rows, poolID, q.PerPage)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}

// scanItem scans the columns of itemCols, then extra, into an item of pool
// poolID.
func scanItem(s pgx.Row, poolID uuid.UUID, extra ...any) (pool.Item, error) {
	var (
		it                                          pool.Item
		status                                      string
		added                                       int64
		started, completed, failed, next, leaseEnds *int64
		callAt, prevCallAt, olderCallAt             *int64
		payload                                     []byte
		name, phone, email, zone                    *string
	)
	dest := append([]any{&it.ID, &it.ContactUUID, &status, &it.Priority, &it.Attempts, &it.RetryCount,
		&started, &completed, &failed, &next, &it.Notes, &added, &payload, &it.Token, &leaseEnds,
		&name, &phone, &email, &zone, &callAt, &it.CallsToday, &it.CallToken,
		&prevCallAt, &it.PrevCallsToday, &olderCallAt, &it.OlderCallsToday}, extra...)
	if err := s.Scan(dest...); err != nil {
		return pool.Item{}, err
	}
	it.PoolUUID = poolID
	it.Status = pool.Status(status)
	it.Contact = pool.Contact{Name: deref(name), PhoneNumber: deref(phone), Email: deref(email), TimeZone: deref(zone)}
	it.StartedAt = fromNullNanos(started)
	it.CompletedAt = fromNullNanos(completed)
	it.FailedAt = fromNullNanos(failed)
	it.NextRetryAt = fromNullNanos(next)
	it.AddedAt = fromNanos(added)
	if payload != nil {
		it.Payload = payload
	}
	if leaseEnds != nil {
		it.LeaseExpiresAt = fromNanos(*leaseEnds)
	}
	if callAt != nil {
		it.CallAt = fromNanos(*callAt)
	}
	if prevCallAt != nil {
		it.PrevCallAt = fromNanos(*prevCallAt)
	}
	if olderCallAt != nil {
		it.OlderCallAt = fromNanos(*olderCallAt)
	}
	return it, nil
}

// deref returns *s, or "" for NULL.
func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// scanItems scans and closes rows.
func (t *txn) scanItems(rows pgx.Rows, poolID uuid.UUID, capHint int) ([]pool.Item, error) {
	defer rows.Close()
	out := make([]pool.Item, 0, min(capHint, 128))
	for rows.Next() {
		it, err := scanItem(rows, poolID)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	err := rows.Err()
	t.noteErr(err)
	return out, err
}
