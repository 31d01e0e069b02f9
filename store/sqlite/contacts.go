package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// What the rules of a campaign need of contacts across pools: the items of
// a contact in every pool, the do-not-call list, opt-outs and escalations
// (migration 0006). The lists are the store's, shared by every pool.
//
// Methods that take a list of contacts pass it as one JSON array of the
// UUIDs' hex digits, which SQL turns back into 16-byte BLOBs with unhex():
// one prepared statement for any number of contacts, each a seek.

const (
	// contactItemsSQL walks the pools in key order and seeks each one's
	// item of the contact in UNIQUE (pool_id, contact_uuid).
	contactItemsSQL = `SELECT ` + itemCols + `, p.uuid FROM pools p CROSS JOIN items i
WHERE i.pool_id = p.id AND i.contact_uuid = ? ORDER BY p.id`

	// campaignItemsSQL walks a campaign's pools and seeks, in each but one,
	// the item of each contact of a contactList (?3) in UNIQUE (pool_id,
	// contact_uuid), then the contacts' kept calls in kept_calls_contact;
	// campaignItemsOneSQL of one contact (?3), no JSON. INDEXED BY (and
	// keptCallJoin's NOT INDEXED): with statistics taken while few items
	// were in flight and no campaign kept a call (an operator's ANALYZE at
	// a quiet hour), SQLite walked every pool, every kept call and, for
	// each, every lease of the store (items_lease), where these are seeks.
	campaignItemsSQL = `SELECT ` + itemCols + `, p.uuid FROM campaigns c
JOIN campaign_pools cp INDEXED BY campaign_pools_seq ON cp.campaign_id = c.id JOIN pools p ON p.id = cp.pool_id CROSS JOIN items i
WHERE c.uuid = ?1 AND p.uuid <> ?2 AND i.pool_id = p.id
    AND i.contact_uuid IN (SELECT unhex(value) FROM json_each(?3))
UNION ALL SELECT ` + keptCols + ` FROM campaigns c JOIN kept_calls k INDEXED BY kept_calls_contact ON k.campaign_id = c.id` + keptCallJoin + `
WHERE c.uuid = ?1 AND k.contact_uuid IN (SELECT unhex(value) FROM json_each(?3))`
	campaignItemsOneSQL = `SELECT ` + itemCols + `, p.uuid FROM campaigns c
JOIN campaign_pools cp INDEXED BY campaign_pools_seq ON cp.campaign_id = c.id JOIN pools p ON p.id = cp.pool_id CROSS JOIN items i
WHERE c.uuid = ?1 AND p.uuid <> ?2 AND i.pool_id = p.id AND i.contact_uuid = ?3
UNION ALL SELECT ` + keptCols + ` FROM campaigns c JOIN kept_calls k INDEXED BY kept_calls_contact ON k.campaign_id = c.id` + keptCallJoin + `
WHERE c.uuid = ?1 AND k.contact_uuid = ?3`

	// keptCols are a kept call as itemCols and a pool's UUID: a Completed
	// item of no pool, or an item in flight when its item is still in the
	// call it was in when its pool left (keptCallJoin; see
	// store.Tx.CampaignItems).
	keptCols = `0, k.contact_uuid, coalesce(live.status, 'Completed'), 0, k.attempts, 0, NULL, NULL, NULL, NULL, '', 0, NULL, 0,
    live.lease_expires_at, NULL, NULL, NULL, NULL, k.call_at, k.calls_today, 0,
    k.prev_call_at, k.prev_calls_today, k.older_call_at, k.older_calls_today, zeroblob(16)`
	// keptCallJoin seeks, for a call kept under a lease (lease_token not
	// 0), its item by primary key (NOT INDEXED leaves the rowid: no other
	// index): still in flight under that token, the call goes on.
	keptCallJoin = `
LEFT JOIN items live NOT INDEXED ON k.lease_token <> 0 AND live.id = k.item_id AND live.token = k.lease_token
    AND live.status IN ('Processing', 'In_Call')`

	// releaseKeptCallSQL gives back an attempt (and ?3, the day's call: 0
	// or 1) in the calls kept of item ?1 under lease token ?2.
	releaseKeptCallSQL = `UPDATE kept_calls SET attempts = attempts - 1, calls_today = max(calls_today - ?3, 0), lease_token = 0
WHERE item_id = ?1 AND lease_token = ?2 AND lease_token <> 0 AND attempts > 0`

	// keepingCampaignsSQL reads the campaigns that keep the call of item
	// ?1 under lease token ?2, in kept_calls_lease.
	keepingCampaignsSQL = `SELECT c.uuid FROM kept_calls k JOIN campaigns c ON c.id = k.campaign_id
WHERE k.item_id = ?1 AND k.lease_token = ?2 AND k.lease_token <> 0`

	// keepCallsSQL copies the calls of pool ?1's items of a contactList
	// (?2) into kept_calls, once per campaign of the pool that may still
	// dispatch (not ?3 or ?4, Completed or Archived); keepPoolCallsSQL of
	// every item of the pool (?2 and ?3 the finished statuses).
	keepCallsSQL = `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today)
SELECT cp.campaign_id, i.id, i.contact_uuid, i.attempts, i.call_at, i.calls_today, i.prev_call_at, i.prev_calls_today,
    i.older_call_at, i.older_calls_today
FROM pools p JOIN campaign_pools cp ON cp.pool_id = p.id
    JOIN campaigns c ON c.id = cp.campaign_id AND c.status NOT IN (?3, ?4) JOIN items i ON i.pool_id = p.id
WHERE p.uuid = ?1 AND (i.attempts > 0 OR i.calls_today > 0 OR i.prev_calls_today > 0 OR i.older_calls_today > 0)
    AND i.contact_uuid IN (SELECT unhex(value) FROM json_each(?2))`
	keepPoolCallsSQL = `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today)
SELECT cp.campaign_id, i.id, i.contact_uuid, i.attempts, i.call_at, i.calls_today, i.prev_call_at, i.prev_calls_today,
    i.older_call_at, i.older_calls_today
FROM pools p JOIN campaign_pools cp ON cp.pool_id = p.id
    JOIN campaigns c ON c.id = cp.campaign_id AND c.status NOT IN (?2, ?3) JOIN items i ON i.pool_id = p.id
WHERE p.uuid = ?1 AND (i.attempts > 0 OR i.calls_today > 0 OR i.prev_calls_today > 0 OR i.older_calls_today > 0)`

	// campaignCallsSQL walks a campaign's pools and, in each, items_lease
	// from ?2 on.
	campaignCallsSQL = `SELECT ` + itemCols + `, p.uuid FROM campaigns c
JOIN campaign_pools cp ON cp.campaign_id = c.id JOIN pools p ON p.id = cp.pool_id CROSS JOIN items i
WHERE c.uuid = ?1 AND i.pool_id = p.id AND i.status IN ('Processing', 'In_Call') AND i.lease_expires_at > ?2`

	// contactListSQL is the contacts of a JSON array of hex UUIDs.
	contactListSQL = `SELECT unhex(value) FROM json_each(?)`

	// addDNCSQL's WHERE true tells SQLite's parser that ON CONFLICT is
	// the upsert's, not a join's.
	addDNCSQL = `INSERT INTO dnc (contact_uuid, added_at) SELECT unhex(value), ?2 FROM json_each(?1)
WHERE true ON CONFLICT DO NOTHING`
	removeDNCSQL = `DELETE FROM dnc WHERE contact_uuid IN (` + contactListSQL + `)`
	onDNCSQL     = `SELECT contact_uuid FROM dnc WHERE contact_uuid IN (` + contactListSQL + `)`
	dncSQL       = `SELECT contact_uuid, added_at FROM dnc ORDER BY added_at, contact_uuid ` + limitParam + ` OFFSET ?`
	dncTotalSQL  = `SELECT count(*) FROM dnc`

	optOutSQL   = `INSERT INTO opt_outs (contact_uuid, opted_out_at) VALUES (?, ?) ON CONFLICT DO NOTHING`
	optedOutSQL = `SELECT contact_uuid FROM opt_outs WHERE contact_uuid IN (` + contactListSQL + `)`

	// listedOneSQL is Listed of one contact: two primary-key seeks, no
	// JSON; listedSQL of a contactList (?1), each list's seeks.
	listedOneSQL = `SELECT EXISTS (SELECT 1 FROM dnc WHERE contact_uuid = ?1),
    EXISTS (SELECT 1 FROM opt_outs WHERE contact_uuid = ?1)`
	listedSQL = `SELECT contact_uuid, 0 FROM dnc WHERE contact_uuid IN (SELECT unhex(value) FROM json_each(?1))
UNION ALL SELECT contact_uuid, 1 FROM opt_outs WHERE contact_uuid IN (SELECT unhex(value) FROM json_each(?1))`

	// insertEscalationSQL records an escalation unless its item has one:
	// the SELECT then yields no row, and no id is taken.
	insertEscalationSQL = `INSERT INTO escalations (item_id, pool_uuid, contact_uuid, campaign_uuid, rule_uuid,
    type, target, failed_attempts, escalated_at)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9 WHERE NOT EXISTS (SELECT 1 FROM escalations WHERE item_id = ?1)
ON CONFLICT (item_id) DO NOTHING RETURNING id`

	escalationCols = `id, item_id, pool_uuid, contact_uuid, campaign_uuid, rule_uuid, type, target,
    failed_attempts, escalated_at`
	// escalationsSQL walks the primary key from After; escalationsOfPoolSQL
	// escalations_pool.
	escalationsSQL       = `SELECT ` + escalationCols + ` FROM escalations WHERE id > ? ORDER BY id ` + limitParam
	escalationsOfPoolSQL = `SELECT ` + escalationCols + ` FROM escalations WHERE pool_uuid = ? AND id > ?
ORDER BY id ` + limitParam
)

// contactList returns contacts as contactListSQL takes them.
func contactList(contacts []uuid.UUID) (string, error) {
	list := make([]string, len(contacts))
	for i, c := range contacts {
		list[i] = hex.EncodeToString(c[:])
	}
	b, err := json.Marshal(list)
	return string(b), err
}

// ContactItems returns the items of a contact in every pool, in pool
// order. One index seek per pool: O(P log n) for P pools.
func (t *txn) ContactItems(ctx context.Context, contact uuid.UUID) ([]pool.Item, error) {
	const op = "contact items"
	rows, err := t.query(ctx, contactItemsSQL, blob(contact))
	if err != nil {
		return nil, wrap(op, err)
	}
	return scanPoolItems(rows, op)
}

// CampaignItems returns the items of contacts in the pools of campaign id
// but except, and their kept calls, in one statement. O(P·m log n) for P
// pools and m contacts.
func (t *txn) CampaignItems(ctx context.Context, id, except uuid.UUID, contacts ...uuid.UUID) ([]pool.Item, error) {
	const op = "campaign items"
	var rows *sql.Rows
	var err error
	switch len(contacts) {
	case 0:
		return []pool.Item{}, nil
	case 1:
		rows, err = t.query(ctx, campaignItemsOneSQL, blob(id), blob(except), blob(contacts[0]))
	default:
		var list string
		if list, err = contactList(contacts); err != nil {
			return nil, wrap(op, err)
		}
		rows, err = t.query(ctx, campaignItemsSQL, blob(id), blob(except), list)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return scanPoolItems(rows, op)
}

// KeepCalls records the calls of pool poolID's items of contacts (all
// its items when none are given) for each campaign of the pool, in one
// statement. O(C·m log n) for C campaigns and m contacts (m = the pool's
// items when none are given).
func (t *txn) KeepCalls(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) error {
	const op = "keep calls"
	if err := t.writable(op); err != nil {
		return err
	}
	var err error
	if len(contacts) == 0 {
		_, err = t.exec(ctx, keepPoolCallsSQL, blob(poolID), string(campaign.Completed), string(campaign.Archived))
	} else {
		var list string
		if list, err = contactList(contacts); err == nil {
			_, err = t.exec(ctx, keepCallsSQL, blob(poolID), list, string(campaign.Completed), string(campaign.Archived))
		}
	}
	return wrap(op, err)
}

// ReleaseKeptCall gives back a released attempt in the calls kept of
// item itemID under lease token. O(log k) for k calls kept under a lease.
func (t *txn) ReleaseKeptCall(ctx context.Context, itemID, token int64, day bool) error {
	const op = "release kept call"
	if err := t.writable(op); err != nil {
		return err
	}
	d := 0
	if day {
		d = 1
	}
	_, err := t.exec(ctx, releaseKeptCallSQL, itemID, token, d)
	return wrap(op, err)
}

// KeepingCampaigns returns the campaigns that keep the call of item
// itemID under lease token. O(log k) for k calls kept under a lease.
func (t *txn) KeepingCampaigns(ctx context.Context, itemID, token int64) ([]uuid.UUID, error) {
	const op = "keeping campaigns"
	rows, err := t.query(ctx, keepingCampaignsSQL, itemID, token)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := []uuid.UUID{}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(op, err)
		}
		out = append(out, id)
	}
	return out, wrap(op, rows.Err())
}

// CampaignCalls returns the items in flight in the pools of campaign id
// whose lease ends after after, in one statement. O(P log n + k) for P
// pools and k such items.
func (t *txn) CampaignCalls(ctx context.Context, id uuid.UUID, after time.Time) ([]pool.Item, error) {
	const op = "campaign calls"
	at, err := nanos(after)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, campaignCallsSQL, blob(id), at)
	if err != nil {
		return nil, wrap(op, err)
	}
	return scanPoolItems(rows, op)
}

// scanPoolItems scans and closes rows of itemCols followed by the pool's
// UUID.
func scanPoolItems(rows *sql.Rows, op string) ([]pool.Item, error) {
	defer rows.Close()
	out := []pool.Item{}
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

// AddDNC puts contacts on the do-not-call list in one statement. No
// contacts add none. O(m log n) for m contacts.
func (t *txn) AddDNC(ctx context.Context, at time.Time, contacts ...uuid.UUID) (int, error) {
	const op = "add dnc"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	n, err := nanos(at)
	if err != nil {
		return 0, wrap(op, err)
	}
	if len(contacts) == 0 {
		return 0, nil
	}
	list, err := contactList(contacts)
	if err != nil {
		return 0, wrap(op, err)
	}
	res, err := t.exec(ctx, addDNCSQL, list, n)
	if err != nil {
		return 0, wrap(op, err)
	}
	added, err := res.RowsAffected()
	return int(added), wrap(op, err)
}

// RemoveDNC takes contacts off the do-not-call list in one statement.
// O(m log n) for m contacts.
func (t *txn) RemoveDNC(ctx context.Context, contacts ...uuid.UUID) (int, error) {
	const op = "remove dnc"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	if len(contacts) == 0 {
		return 0, nil
	}
	list, err := contactList(contacts)
	if err != nil {
		return 0, wrap(op, err)
	}
	res, err := t.exec(ctx, removeDNCSQL, list)
	if err != nil {
		return 0, wrap(op, err)
	}
	removed, err := res.RowsAffected()
	return int(removed), wrap(op, err)
}

// OnDNC returns which of contacts are on the do-not-call list, in one
// statement. O(m log n) for m contacts.
func (t *txn) OnDNC(ctx context.Context, contacts ...uuid.UUID) (map[uuid.UUID]bool, error) {
	return t.contactSet(ctx, "on dnc", onDNCSQL, contacts)
}

// OptedOut returns which of contacts have opted out, in one statement.
// O(m log n) for m contacts.
func (t *txn) OptedOut(ctx context.Context, contacts ...uuid.UUID) (map[uuid.UUID]bool, error) {
	return t.contactSet(ctx, "opted out", optedOutSQL, contacts)
}

// Listed returns which of contacts are on the do-not-call list and which
// opted out, in one statement. O(m log n) for m contacts.
func (t *txn) Listed(ctx context.Context, contacts ...uuid.UUID) (dnc, optedOut map[uuid.UUID]bool, err error) {
	const op = "listed"
	dnc, optedOut = map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	switch len(contacts) {
	case 0:
		return dnc, optedOut, nil
	case 1:
		c := contacts[0]
		var onDNC, opted bool
		s, err := t.stmt(ctx, listedOneSQL)
		if err != nil {
			return nil, nil, wrap(op, err)
		}
		if err := s.QueryRowContext(ctx, blob(c)).Scan(&onDNC, &opted); err != nil {
			return nil, nil, wrap(op, err)
		}
		if onDNC {
			dnc[c] = true
		}
		if opted {
			optedOut[c] = true
		}
		return dnc, optedOut, nil
	}
	list, err := contactList(contacts)
	if err != nil {
		return nil, nil, wrap(op, err)
	}
	rows, err := t.query(ctx, listedSQL, list)
	if err != nil {
		return nil, nil, wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c uuid.UUID
		var which int
		if err := rows.Scan(&c, &which); err != nil {
			return nil, nil, wrap(op, err)
		}
		if which == 0 {
			dnc[c] = true
		} else {
			optedOut[c] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, wrap(op, err)
	}
	return dnc, optedOut, nil
}

// contactSet runs query, which selects contacts among those of a
// contactList, and returns them as a set.
func (t *txn) contactSet(ctx context.Context, op, query string, contacts []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(contacts) == 0 {
		return out, nil
	}
	list, err := contactList(contacts)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, query, list)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c uuid.UUID
		if err := rows.Scan(&c); err != nil {
			return nil, wrap(op, err)
		}
		out[c] = true
	}
	return out, wrap(op, rows.Err())
}

// DNC returns one page of the do-not-call list and its length. The page
// is O(log n + offset + per_page), the length O(n).
func (t *txn) DNC(ctx context.Context, q campaign.DNCQuery) ([]campaign.DNCEntry, int, error) {
	const op = "dnc"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("sqlite: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	var total int
	if err := t.queryRow(ctx, []any{&total}, dncTotalSQL); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.query(ctx, dncSQL, q.PerPage, pool.Offset(q.Page, q.PerPage))
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	defer rows.Close()
	out := make([]campaign.DNCEntry, 0, q.PerPage)
	for rows.Next() {
		var e campaign.DNCEntry
		var added int64
		if err := rows.Scan(&e.ContactUUID, &added); err != nil {
			return nil, 0, wrap(op, err)
		}
		e.AddedAt = fromNanos(added)
		out = append(out, e)
	}
	return out, total, wrap(op, rows.Err())
}

// OptOut records an opt-out. O(log n).
func (t *txn) OptOut(ctx context.Context, contact uuid.UUID, at time.Time) (bool, error) {
	const op = "opt out"
	if err := t.writable(op); err != nil {
		return false, err
	}
	n, err := nanos(at)
	if err != nil {
		return false, wrap(op, err)
	}
	res, err := t.exec(ctx, optOutSQL, blob(contact), n)
	if err != nil {
		return false, wrap(op, err)
	}
	added, err := res.RowsAffected()
	return added > 0, wrap(op, err)
}

// InsertEscalation records an escalation unless its item has one.
// O(log n).
func (t *txn) InsertEscalation(ctx context.Context, e campaign.Escalation) (campaign.Escalation, bool, error) {
	const op = "insert escalation"
	if err := t.writable(op); err != nil {
		return e, false, err
	}
	at, err := nanos(e.At)
	if err != nil {
		return e, false, wrap(op, err)
	}
	var id int64
	err = t.queryRow(ctx, []any{&id}, insertEscalationSQL, e.ItemID, blob(e.PoolUUID), blob(e.ContactUUID),
		blob(e.CampaignUUID), blob(e.RuleUUID), e.Type, e.Target, e.FailedAttempts, at)
	if err = translate(err); err == store.ErrNotFound { // no row: the item has one
		return e, false, nil
	} else if err != nil {
		return e, false, wrap(op, err)
	}
	e.ID = id
	e.At = e.At.UTC()
	return e, true, nil
}

// Escalations returns escalations in ID order. O(log n + r) for r
// returned.
func (t *txn) Escalations(ctx context.Context, q campaign.EscalationQuery) ([]campaign.Escalation, error) {
	const op = "escalations"
	if q.Limit < 1 || q.After < 0 {
		return nil, fmt.Errorf("sqlite: %s: query not normalized (after %d, limit %d)", op, q.After, q.Limit)
	}
	var (
		rows *sql.Rows
		err  error
	)
	if q.PoolUUID != nil {
		rows, err = t.query(ctx, escalationsOfPoolSQL, blob(*q.PoolUUID), q.After, q.Limit)
	} else {
		rows, err = t.query(ctx, escalationsSQL, q.After, q.Limit)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	out := make([]campaign.Escalation, 0, min(q.Limit, 64))
	for rows.Next() {
		var e campaign.Escalation
		var at int64
		if err := rows.Scan(&e.ID, &e.ItemID, &e.PoolUUID, &e.ContactUUID, &e.CampaignUUID, &e.RuleUUID,
			&e.Type, &e.Target, &e.FailedAttempts, &at); err != nil {
			return nil, wrap(op, err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, wrap(op, rows.Err())
}
