package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// itemCols are the columns scanned by scanItem.
const itemCols = `i.id, i.contact_uuid, i.status, i.priority, i.attempts, i.retry_count,
    i.started_at, i.completed_at, i.failed_at, i.next_retry_at, i.notes, i.added_at, i.payload,
    i.token, i.lease_expires_at, i.name, i.phone_number, i.email, i.timezone, i.call_at, i.calls_today, i.call_token,
    i.prev_call_at, i.prev_calls_today, i.older_call_at, i.older_calls_today`

// stateCols are an item's mutable columns, in the order of appendState.
const stateCols = `status, priority, attempts, retry_count, started_at, completed_at, failed_at,
    next_retry_at, notes, token, lease_expires_at, ready, call_at, calls_today, call_token,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today`

// itemParams is the number of parameters of one row of an items INSERT:
// pool, contact, added_at, payload, the four contact fields, the state.
const itemParams = 27

// insertSizes are the row counts of the multi-row statements of InsertItems
// and UpdateItems, largest first, ending with 1: a batch is cut greedily
// into statements of these sizes, all prepared at Open. Every size up to 16
// is there, so that the small batches of group commit (a few claims or
// settlements a transaction) take one statement rather than several.
// Batches of 64 rows share a statement's fixed costs in a bulk add, and
// stay far below SQLite's limit of 32766 parameters.
var insertSizes = []int{64, 32, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}

// updateItemsSQL maps each of insertSizes to a statement updating that many
// items, found by ID, pool and status, from a VALUES list: one statement for
// many rows, so a batch pays the statement's fixed costs once. The unary +
// keeps pool and status out of the choice of index: without it SQLite
// seeks items_pool_status rather than the rowid. On the VALUES side too,
// and on its ID: once the file has statistics (an operator's ANALYZE or
// PRAGMA optimize), SQLite otherwise scans all of items and looks each row
// up in an automatic index of the VALUES rows.
var updateItemsSQL = func() map[int]string {
	row := "(" + strings.Repeat("?, ", stateParams+2) + "?)"
	m := make(map[int]string, len(insertSizes))
	for _, n := range insertSizes {
		m[n] = `UPDATE OR FAIL items SET status = v.column1, priority = v.column2, attempts = v.column3,
    retry_count = v.column4, started_at = v.column5, completed_at = v.column6, failed_at = v.column7,
    next_retry_at = v.column8, notes = v.column9, token = v.column10, lease_expires_at = v.column11,
    ready = v.column12, call_at = v.column13, calls_today = v.column14, call_token = v.column15,
    prev_call_at = v.column16, prev_calls_today = v.column17, older_call_at = v.column18,
    older_calls_today = v.column19
FROM (VALUES ` + strings.Repeat(row+", ", n-1) + row + `) AS v
WHERE items.id = +v.column20 AND +items.pool_id = +v.column21 AND +items.status = +v.column22`
	}
	return m
}()

// stateParams is the number of values appendState appends.
const stateParams = 19

// insertItemsSQL maps each of insertSizes to its statement.
var insertItemsSQL = func() map[int]string {
	row := "(" + strings.Repeat("?, ", itemParams-1) + "?)"
	m := make(map[int]string, len(insertSizes))
	for _, n := range insertSizes {
		m[n] = `INSERT OR FAIL INTO items (pool_id, contact_uuid, added_at, payload,
    name, phone_number, email, timezone, ` + stateCols + `)
VALUES ` + strings.Repeat(row+", ", n-1) + row + `
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`
	}
	return m
}()

// insertNewItemsSQL maps each of insertSizes to a statement inserting that
// many new items (see isNew): five values a row, the state being the
// literals of a new item. An Add binds a third of the values it would with
// insertItemsSQL, and builds as few.
var insertNewItemsSQL = func() map[int]string {
	const row = "(?, ?, ?, ?, ?, 'Pending', 0, 0, '', 0, 1)"
	m := make(map[int]string, len(insertSizes))
	for _, n := range insertSizes {
		m[n] = `INSERT OR FAIL INTO items (pool_id, contact_uuid, added_at, payload, priority,
    status, attempts, retry_count, notes, token, ready)
VALUES ` + strings.Repeat(row+", ", n-1) + row + `
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`
	}
	return m
}()

// insertNewContactItemsSQL is insertNewItemsSQL for new items with contact
// fields: nine values a row. Items without any take the narrower one.
var insertNewContactItemsSQL = func() map[int]string {
	const row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, 'Pending', 0, 0, '', 0, 1)"
	m := make(map[int]string, len(insertSizes))
	for _, n := range insertSizes {
		m[n] = `INSERT OR FAIL INTO items (pool_id, contact_uuid, added_at, payload, priority,
    name, phone_number, email, timezone, status, attempts, retry_count, notes, token, ready)
VALUES ` + strings.Repeat(row+", ", n-1) + row + `
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`
	}
	return m
}()

// isNew reports whether it is in the state of a new item: Pending, never
// attempted, no times but AddedAt, no notes, token, lease or calling day.
func isNew(it pool.Item) bool {
	return it.Status == pool.StatusPending && it.Attempts == 0 && it.RetryCount == 0 &&
		it.StartedAt == nil && it.CompletedAt == nil && it.FailedAt == nil && it.NextRetryAt == nil &&
		it.Notes == "" && it.Token == 0 && it.LeaseExpiresAt.IsZero() && it.CallAt.IsZero() && it.CallsToday == 0 && it.CallToken == 0 &&
		it.PrevCallAt.IsZero() && it.PrevCallsToday == 0 && it.OlderCallAt.IsZero() && it.OlderCallsToday == 0
}

const (
	copyItemsSQL = `INSERT INTO items (pool_id, contact_uuid, added_at, payload, status, priority,
    attempts, retry_count, notes, token, ready, name, phone_number, email, timezone)
SELECT ?, i.contact_uuid, ?, i.payload, 'Pending', i.priority, 0, 0, '', 0, 1,
    i.name, i.phone_number, i.email, i.timezone
FROM items i WHERE i.pool_id = ? ORDER BY i.id
ON CONFLICT (pool_id, contact_uuid) DO NOTHING`

	// lastItemIDSQL is the largest item id ever given (AUTOINCREMENT keeps
	// it in sqlite_sequence): the items inserted after reading it have
	// larger ids.
	lastItemIDSQL = `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'items'), 0)`

	// indexContactsSQL adds to item_search the items of a pool with an id
	// above ? that have contact fields: those just inserted, with their
	// terms, their pool's (see search.go). A range seek on items_pool.
	indexContactsSQL = `INSERT INTO item_search (rowid, body)
SELECT i.id, poolq_search_terms(i.pool_id, i.name, i.email, i.phone_number) FROM items i
WHERE i.pool_id = ? AND i.id > ? AND (i.name IS NOT NULL OR i.email IS NOT NULL OR i.phone_number IS NOT NULL)`

	itemSQL = `SELECT ` + itemCols + ` FROM items i WHERE i.pool_id = ? AND i.contact_uuid = ?`

	itemByIDSQL = `SELECT ` + itemCols + `, p.uuid FROM items i JOIN pools p ON p.id = i.pool_id WHERE i.id = ?`

	// updateItemSQL sets ready from the status: a Pending item is due, a
	// Retrying or Scheduled one waits for Promote.
	updateItemSQL = `UPDATE OR FAIL items SET status = ?, priority = ?, attempts = ?, retry_count = ?,
    started_at = ?, completed_at = ?, failed_at = ?, next_retry_at = ?, notes = ?, token = ?,
    lease_expires_at = ?, ready = ?, call_at = ?, calls_today = ?, call_token = ?, prev_call_at = ?,
    prev_calls_today = ?, older_call_at = ?, older_calls_today = ?
WHERE id = ? AND +pool_id = ? AND +status = ?`

	// itemsOfContactsSQL takes the contacts as a JSON array of hex
	// strings (contactList): one statement for any number of them, each a
	// seek in UNIQUE (pool_id, contact_uuid).
	itemsOfContactsSQL = `SELECT ` + itemCols + ` FROM items i
WHERE i.pool_id = ? AND i.contact_uuid IN (SELECT unhex(value) FROM json_each(?))`

	// deleteItemsSQL takes the IDs as a JSON array: each a rowid seek, the
	// unary + keeping the pool out of the choice of index. The trigger
	// items_search_delete removes their search words.
	deleteItemsSQL = `DELETE FROM items WHERE id IN (SELECT value FROM json_each(?)) AND +pool_id = ? RETURNING status`

	// itemsByIDSQL takes the IDs as a JSON array: one statement for any
	// number of them, each a rowid seek.
	itemsByIDSQL = `SELECT ` + itemCols + `, p.uuid FROM items i JOIN pools p ON p.id = i.pool_id
WHERE i.id IN (SELECT value FROM json_each(?))`

	// itemsSQL walks items_pool from the first ID past the query's After
	// (0: the first item), then skips the page's offset. INDEXED BY: with
	// statistics that show the pool holding most of the items, SQLite
	// scans the table in rowid order instead, reading other pools' items.
	itemsSQL = `SELECT ` + itemCols + ` FROM items i INDEXED BY items_pool WHERE i.pool_id = ? AND i.id > ?
ORDER BY i.id ` + limitParam + ` OFFSET ?`

	itemsByStatusSQL = `SELECT ` + itemCols + ` FROM items i WHERE i.pool_id = ? AND i.status = ? AND i.id > ?
ORDER BY i.id ` + limitParam + ` OFFSET ?`

	itemsTotalSQL = `SELECT coalesce(sum(n), 0) FROM pool_counts WHERE pool_id = ?`

	itemsStatusTotalSQL = `SELECT coalesce(sum(n), 0) FROM pool_counts WHERE pool_id = ? AND status = ?`
)

// InsertItems adds items to a pool with prepared multi-row INSERTs that
// skip contacts already in the pool (and a contact's repeats in items, the
// first winning). It stores every field of each item but ID and PoolUUID.
// O(m log n) for m items.
func (t *txn) InsertItems(ctx context.Context, poolID uuid.UUID, items []pool.Item) (int, error) {
	const op = "insert items"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	// The schema has no JSON check on payloads (it would make SQLite keep a
	// statement journal for every batch, see migration 0003): the check is
	// here, before anything is written.
	for i, it := range items {
		if len(it.Payload) > 0 && !json.Valid(it.Payload) {
			return 0, fmt.Errorf("sqlite: %s: item %d: payload is not valid JSON", op, i)
		}
	}
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return 0, wrap(op, err)
	}
	// The items with contact fields are indexed for search after they are
	// inserted: those with an id above the largest before.
	var before int64 = -1
	for _, it := range items {
		if !it.Contact.IsZero() {
			if err := t.queryRow(ctx, []any{&before}, lastItemIDSQL); err != nil {
				return 0, wrap(op, err)
			}
			break
		}
	}
	// The statements run over runs of one status, so that the rows each
	// adds are counted in that status, and of new items (with contact
	// fields or not) or not, which take the narrow statements.
	added := 0
	for start := 0; start < len(items); {
		end := start + 1
		kind := insertKind(items[start])
		for end < len(items) && items[end].Status == items[start].Status && insertKind(items[end]) == kind {
			end++
		}
		var stmts map[int]string
		var tail func(args []any, it pool.Item) ([]any, error)
		switch kind {
		case insertNew:
			stmts = insertNewItemsSQL
			tail = func(args []any, it pool.Item) ([]any, error) { return append(args, it.Priority), nil }
		case insertNewContact:
			stmts = insertNewContactItemsSQL
			tail = func(args []any, it pool.Item) ([]any, error) {
				return appendContact(append(args, it.Priority), it.Contact), nil
			}
		default:
			stmts = insertItemsSQL
			tail = func(args []any, it pool.Item) ([]any, error) { return appendState(appendContact(args, it.Contact), it) }
		}
		n, err := execChunks(ctx, t, op, start, items[start:end], stmts, func(args []any, _ int, it pool.Item) ([]any, error) {
			at, err := nanos(it.AddedAt)
			if err != nil {
				return nil, err
			}
			return tail(append(args, k, blob(it.ContactUUID), at, payloadArg(it.Payload)), it)
		})
		if err != nil {
			if start > 0 { // an earlier run's rows are written (see execChunks)
				err = t.failed(err)
			}
			return 0, err
		}
		t.count(k, items[start].Status, n)
		for _, it := range items[start:end] { // those added among them, and maybe more
			t.noteItem(k, it)
		}
		added += n
		start = end
	}
	if before >= 0 && added > 0 {
		if _, err := t.exec(ctx, indexContactsSQL, k, before); err != nil { // the items are written
			return 0, t.failed(wrap(op+": search index", err))
		}
	}
	return added, nil
}

// The statements InsertItems chooses from for an item.
const (
	insertNew        = iota // a new item without contact fields: insertNewItemsSQL
	insertNewContact        // a new item with contact fields: insertNewContactItemsSQL
	insertFull              // any other: insertItemsSQL
)

func insertKind(it pool.Item) int {
	switch {
	case !isNew(it):
		return insertFull
	case it.Contact.IsZero():
		return insertNew
	default:
		return insertNewContact
	}
}

// appendContact appends the four contact fields, NULL for empty ones.
func appendContact(args []any, c pool.Contact) []any {
	return append(args, nullText(c.Name), nullText(c.PhoneNumber), nullText(c.Email), nullText(c.TimeZone))
}

// nullText returns s, or nil (NULL) for "".
func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CopyItems copies a pool's items into another as new Pending items, in
// one statement. O(m log n) for m items.
func (t *txn) CopyItems(ctx context.Context, src, dst uuid.UUID, now time.Time) (int, error) {
	const op = "copy items"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	sk, err := t.poolKey(ctx, src)
	if err != nil {
		return 0, wrap(op+": source", err)
	}
	dk, err := t.poolKey(ctx, dst)
	if err != nil {
		return 0, wrap(op+": destination", err)
	}
	at, err := nanos(now)
	if err != nil {
		return 0, wrap(op, err)
	}
	var before int64
	if err := t.queryRow(ctx, []any{&before}, lastItemIDSQL); err != nil {
		return 0, wrap(op, err)
	}
	res, err := t.exec(t.long(ctx), copyItemsSQL, dk, at, sk)
	if err != nil {
		return 0, wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, wrap(op, err)
	}
	t.count(dk, pool.StatusPending, int(n))
	if n > 0 {
		if _, err := t.exec(ctx, indexContactsSQL, dk, before); err != nil { // the copies are written
			return 0, t.failed(wrap(op+": search index", err))
		}
	}
	return int(n), nil
}

// ItemsOfContacts returns the items of contacts in a pool, in one
// statement. O(m log n) for m contacts.
func (t *txn) ItemsOfContacts(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) ([]pool.Item, error) {
	const op = "items of contacts"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return nil, wrap(op, err)
	}
	if len(contacts) == 0 {
		return []pool.Item{}, nil
	}
	list, err := contactList(contacts)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, itemsOfContactsSQL, k, list)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := scanItems(rows, poolID, len(contacts))
	return out, wrap(op, err)
}

// Item returns the item of a contact in a pool. O(log n).
func (t *txn) Item(ctx context.Context, poolID, contact uuid.UUID) (pool.Item, error) {
	const op = "item"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return pool.Item{}, wrap(op, err)
	}
	s, err := t.stmt(ctx, itemSQL)
	if err != nil {
		return pool.Item{}, wrap(op, err)
	}
	it, err := scanItem(s.QueryRowContext(ctx, k, blob(contact)), poolID)
	if err != nil {
		return pool.Item{}, wrap(fmt.Sprintf("%s: contact %s in pool %s", op, contact, poolID), err)
	}
	return it, nil
}

// ItemByID returns an item by its ID. O(log n).
func (t *txn) ItemByID(ctx context.Context, id int64) (pool.Item, error) {
	const op = "item by id"
	s, err := t.stmt(ctx, itemByIDSQL)
	if err != nil {
		return pool.Item{}, wrap(op, err)
	}
	var poolID uuid.UUID
	it, err := scanItem(s.QueryRowContext(ctx, id), uuid.Nil, &poolID)
	if err != nil {
		return pool.Item{}, wrap(op, err)
	}
	it.PoolUUID = poolID
	return it, nil
}

// UpdateItem stores the mutable fields of it if it is in status from.
// O(log n).
func (t *txn) UpdateItem(ctx context.Context, from pool.Status, it pool.Item) error {
	const op = "update item"
	if err := t.writable(op); err != nil {
		return err
	}
	k, err := t.poolKey(ctx, it.PoolUUID)
	if err != nil {
		return wrap(op, err)
	}
	args, err := appendState(make([]any, 0, stateParams+3), it)
	if err != nil {
		return wrap(op, err)
	}
	res, err := t.exec(ctx, updateItemSQL, append(args, it.ID, k, string(from))...)
	if err := affected(res, err); err != nil {
		return wrap(op, err)
	}
	t.count(k, from, -1)
	t.count(k, it.Status, 1)
	t.noteItem(k, it)
	return nil
}

// UpdateItems stores the mutable fields of items with as few statements as
// the sizes of insertSizes allow. O(m log n) for m items.
func (t *txn) UpdateItems(ctx context.Context, changes ...store.Change) error {
	const op = "update items"
	if err := t.writable(op); err != nil {
		return err
	}
	if len(changes) == 1 {
		return t.UpdateItem(ctx, changes[0].From, changes[0].Item)
	}
	keys := make([]int64, len(changes))
	for i, c := range changes {
		k, err := t.poolKey(ctx, c.Item.PoolUUID)
		if err != nil {
			return wrap(fmt.Sprintf("%s: item %d", op, i), err)
		}
		keys[i] = k
	}
	n, err := execChunks(ctx, t, op, 0, changes, updateItemsSQL, func(args []any, i int, c store.Change) ([]any, error) {
		args, err := appendState(args, c.Item)
		return append(args, c.Item.ID, keys[i], string(c.From)), err
	})
	if err != nil {
		return err
	}
	if n != len(changes) {
		// The items found are written: the transaction must not commit
		// them, with counts that do not follow.
		return t.failed(fmt.Errorf("sqlite: %s: %d of %d items found in the status given: %w", op, n, len(changes), store.ErrNotFound))
	}
	for i, c := range changes {
		t.count(keys[i], c.From, -1)
		t.count(keys[i], c.Item.Status, 1)
		t.noteItem(keys[i], c.Item)
	}
	return nil
}

// execChunks runs, for items cut into chunks of insertSizes, the statement
// of each chunk's size from stmts, with the arguments row appends for each
// item (given its index in items), and returns the number of rows the
// statements affected. first is the index of items[0] in the caller's
// list, for errors.
//
// An error once a statement has run may leave rows written (an earlier
// chunk's, or the failing statement's own before the row that failed:
// UPDATE OR FAIL keeps them) that the caller does not count: the
// transaction must then not commit them (see txn.failed).
func execChunks[T any](ctx context.Context, t *txn, op string, first int, items []T, stmts map[int]string,
	row func(args []any, i int, it T) ([]any, error)) (int, error) {
	args := make([]any, 0, min(len(items), insertSizes[0])*itemParams) // itemParams: the widest row
	affected := 0
	for start := 0; start < len(items); {
		size := chunk(len(items) - start)
		args = args[:0]
		for i, it := range items[start : start+size] {
			var err error
			if args, err = row(args, start+i, it); err != nil {
				err = wrap(fmt.Sprintf("%s: item %d", op, first+start+i), err)
				if start > 0 {
					err = t.failed(err)
				}
				return 0, err
			}
		}
		res, err := t.exec(ctx, stmts[size], args...)
		if err != nil {
			return 0, t.failed(wrap(op, err))
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, t.failed(wrap(op, err))
		}
		affected += int(n)
		start += size
	}
	return affected, nil
}

// chunk returns the largest of insertSizes that is at most left (left ≥ 1).
func chunk(left int) int {
	for _, n := range insertSizes {
		if n <= left {
			return n
		}
	}
	return 1
}

// ItemsByID returns the items with the given IDs that exist, in no
// particular order. O(m log n).
func (t *txn) ItemsByID(ctx context.Context, ids []int64) ([]pool.Item, error) {
	const op = "items by id"
	if len(ids) == 0 {
		return []pool.Item{}, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, itemsByIDSQL, string(list))
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := make([]pool.Item, 0, len(ids))
	for rows.Next() {
		var poolID uuid.UUID
		it, err := scanItem(rows, uuid.Nil, &poolID)
		if err != nil {
			return nil, wrap(op, err)
		}
		it.PoolUUID = poolID
		out = append(out, it)
	}
	return out, wrap(op, rows.Err())
}

// PoolItems returns pool id and those of the items ids that are in it:
// Pool, then ItemByID or ItemsByID.
func (t *txn) PoolItems(ctx context.Context, id uuid.UUID, ids []int64) (pool.Pool, []pool.Item, error) {
	p, err := t.Pool(ctx, id)
	if err != nil {
		return pool.Pool{}, nil, err
	}
	var found []pool.Item
	if len(ids) == 1 {
		it, err := t.ItemByID(ctx, ids[0])
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return pool.Pool{}, nil, err
		}
		if err == nil {
			found = []pool.Item{it}
		}
	} else if found, err = t.ItemsByID(ctx, ids); err != nil {
		return pool.Pool{}, nil, err
	}
	in := found[:0]
	for _, it := range found {
		if it.PoolUUID == id {
			in = append(in, it)
		}
	}
	return p, in, nil
}

// DeleteItems removes those of the items ids that are in pool poolID, in
// one statement, and returns how many it removed. O(m log n) for m items.
func (t *txn) DeleteItems(ctx context.Context, poolID uuid.UUID, ids []int64) (int, error) {
	const op = "delete items"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return 0, wrap(op, err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, err := json.Marshal(ids)
	if err != nil {
		return 0, wrap(op, err)
	}
	rows, err := t.query(ctx, deleteItemsSQL, string(list), k)
	if err != nil {
		return 0, wrap(op, err)
	}
	defer rows.Close()
	gone := make(map[pool.Status]int, 1)
	n := 0
	for rows.Next() {
		var status string
		if err := rows.Scan(&status); err != nil {
			return 0, wrap(op, err)
		}
		gone[pool.Status(status)]++
		n++
	}
	if err := rows.Err(); err != nil {
		return 0, wrap(op, err)
	}
	for s, d := range gone {
		t.count(k, s, -d)
	}
	return n, nil
}

// Items returns one page of a pool's items in insertion order and the
// number matching. O(log n + offset + per_page), the seek past q.After
// included; the total comes from pool_counts, O(1).
func (t *txn) Items(ctx context.Context, poolID uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error) {
	const op = "items"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("sqlite: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	if q.Search != "" {
		return t.searchItems(ctx, k, poolID, q)
	}
	if err := t.flushCounts(ctx); err != nil {
		return nil, 0, wrap(op, err)
	}
	var total int
	var rows *sql.Rows
	offset := pool.Offset(q.Page, q.PerPage)
	if q.Status == "" {
		if err := t.queryRow(ctx, []any{&total}, itemsTotalSQL, k); err != nil {
			return nil, 0, wrap(op, err)
		}
		rows, err = t.query(ctx, itemsSQL, k, q.After, q.PerPage, offset)
	} else {
		if err := t.queryRow(ctx, []any{&total}, itemsStatusTotalSQL, k, string(q.Status)); err != nil {
			return nil, 0, wrap(op, err)
		}
		rows, err = t.query(ctx, itemsByStatusSQL, k, string(q.Status), q.After, q.PerPage, offset)
	}
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out, err := scanItems(rows, poolID, q.PerPage)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}

// appendState appends the values of it's mutable fields to args, in the
// order of stateCols.
func appendState(args []any, it pool.Item) ([]any, error) {
	var times [4]any
	for i, p := range []*time.Time{it.StartedAt, it.CompletedAt, it.FailedAt, it.NextRetryAt} {
		v, err := nullNanos(p)
		if err != nil {
			return nil, err
		}
		times[i] = v
	}
	lease, err := zeroNullNanos(it.LeaseExpiresAt)
	if err != nil {
		return nil, err
	}
	callAt, err := zeroNullNanos(it.CallAt)
	if err != nil {
		return nil, err
	}
	prevCallAt, err := zeroNullNanos(it.PrevCallAt)
	if err != nil {
		return nil, err
	}
	olderCallAt, err := zeroNullNanos(it.OlderCallAt)
	if err != nil {
		return nil, err
	}
	ready := 0
	if it.Status == pool.StatusPending {
		ready = 1
	}
	return append(args, string(it.Status), it.Priority, it.Attempts, it.RetryCount,
		times[0], times[1], times[2], times[3], it.Notes, it.Token, lease, ready, callAt, it.CallsToday, it.CallToken,
		prevCallAt, it.PrevCallsToday, olderCallAt, it.OlderCallsToday), nil
}

// payloadArg returns a payload as stored: TEXT, or NULL when empty.
func payloadArg(p []byte) any {
	if len(p) == 0 {
		return nil
	}
	return string(p)
}

// scanItem scans the columns of itemCols, then extra, into an item of pool
// poolID.
func scanItem(s scanner, poolID uuid.UUID, extra ...any) (pool.Item, error) {
	var (
		it                                          pool.Item
		status                                      string
		added                                       int64
		started, completed, failed, next, leaseEnds sql.NullInt64
		callAt, prevCallAt, olderCallAt             sql.NullInt64
		payload                                     []byte
		name, phone, email, zone                    sql.NullString
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
	it.Contact = pool.Contact{Name: name.String, PhoneNumber: phone.String, Email: email.String, TimeZone: zone.String}
	it.StartedAt = fromNullNanos(started)
	it.CompletedAt = fromNullNanos(completed)
	it.FailedAt = fromNullNanos(failed)
	it.NextRetryAt = fromNullNanos(next)
	it.AddedAt = fromNanos(added)
	if payload != nil {
		it.Payload = payload
	}
	if leaseEnds.Valid {
		it.LeaseExpiresAt = fromNanos(leaseEnds.Int64)
	}
	if callAt.Valid {
		it.CallAt = fromNanos(callAt.Int64)
	}
	if prevCallAt.Valid {
		it.PrevCallAt = fromNanos(prevCallAt.Int64)
	}
	if olderCallAt.Valid {
		it.OlderCallAt = fromNanos(olderCallAt.Int64)
	}
	return it, nil
}

// scanItems scans and closes rows.
func scanItems(rows *sql.Rows, poolID uuid.UUID, capHint int) ([]pool.Item, error) {
	defer rows.Close()
	out := make([]pool.Item, 0, capHint)
	for rows.Next() {
		it, err := scanItem(rows, poolID)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// searchItems is Items with a search over the contacts' fields, in
// item_search: every word of the search but the last must be a word of the
// item's contact name, email or phone number, and the last must begin one
// (store.SearchWords: case and diacritics aside), as a type-ahead
// box expects. The index keeps each pool's words apart (see search.go):
// whole words are seeks in it, so the cost grows with the items of the
// pool that match, not with the pool nor with the other pools; only the
// last word, a prefix, reads the whole list of the pool's words it begins.
// A search without letters or digits matches nothing.
func (t *txn) searchItems(ctx context.Context, k int64, poolID uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error) {
	const op = "search items"
	match := ftsQuery(k, q.Search)
	if match == "" {
		return []pool.Item{}, 0, nil
	}
	cond := "i.pool_id = ? AND i.id IN (SELECT rowid FROM item_search WHERE item_search MATCH ?)"
	args := []any{k, match}
	if q.Status != "" {
		cond += " AND i.status = ?"
		args = append(args, string(q.Status))
	}
	var total int
	if err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM items i WHERE `+cond, args...).Scan(&total); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.tx.QueryContext(ctx, `SELECT `+itemCols+` FROM items i WHERE `+cond+` AND i.id > ? ORDER BY i.id LIMIT ? OFFSET ?`,
		append(args, q.After, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out, err := scanItems(rows, poolID, q.PerPage)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}
