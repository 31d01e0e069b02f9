package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// What the rules of a campaign need of contacts across pools: the items of
// a contact in every pool, the do-not-call list, opt-outs and escalations
// (migration 0004).
//
// The three lists are global, shared by every pool and every node. DNC
// entries and opt-outs are inserted with ON CONFLICT DO NOTHING, so two
// nodes adding the same contact at once both succeed, and only one counts
// it as added (the other waits for the first to commit, then finds the
// row). A batch of DNC entries is inserted in UUID order, so that two
// batches sharing contacts do not deadlock.
//
// A claim reads the lists after it locks its pool, and commits later. So
// the do-not-call list has a lock of its own (a transaction-level advisory
// lock, apart from the pools', see dncLockID), taken shared by every write
// transaction that reads the list (OnDNC and Listed: the lock and the read
// in one round trip) and exclusive by AddDNC before it inserts: AddDNC
// waits for every claim under way that read the list without its entries,
// on any node, and returns after such a claim committed (its item is then
// in flight, as if the claim had run just before); every claim after it
// reads the entries. Without the lock AddDNC could return while such a
// claim was still to commit: a call started after the list said not to.
// Until December 2026 AddDNC took the lock of every pool that held an item
// of its contacts instead: one lock per pool in the server's shared lock
// table, so that contacts in 13,000 pools could not be added ("out of
// shared memory"); the list's lock is one, whatever the pools.
//
// Its order key (dncOrderKey) is above every pool's, campaign's and
// rule's, below the escalation lock's only: a claim, which holds its pool
// when it reads the list, waits for it, and a transaction that holds it
// only tries the locks of pools it has not taken yet, running again,
// taking them in order, when another transaction holds one (see txn.pool).
// So a transaction never waits for a pool while it holds the list's lock:
// AddDNC waits only for claims at work, not for a node that holds a pool
// and stalls, and the claims that read the list while an AddDNC waits
// (a lock waited for comes before the shared ones asked after it) wait
// only for it. Those of rules without dnc_check read no list and do not.
// The insert may then wait for a transaction that inserts the same
// contact: OptOut's (the engine's OptOut locks the contact's pools, which
// are few) needs no lock of the list, and another AddDNC waits for the
// list's lock first.
// Escalation IDs must grow in the order their transactions commit, or a
// consumer listing after the last ID it handled could step over one that
// commits later with a smaller ID. So InsertEscalation first takes the
// escalation lock (a transaction-level advisory lock with the schema's
// hash and -1 as keys, apart from the pools' and the campaigns'), held
// until the transaction ends, and takes the ID under it. The lock comes
// after every other lock in the order locks are taken
// (escalationsOrderKey): a transaction that holds it only tries the locks
// of pools, campaigns and the do-not-call list it has not taken yet, and
// runs again, taking everything in order, if another transaction holds one
// (see txn.pool).
// Escalations are rare (one per item at most), and only the transactions
// that record one wait for each other.

// escalationsOrderKey is the order key of the escalation lock: above every
// pool's and campaign's.
const escalationsOrderKey = math.MaxInt64

// dncOrderKey is the order key of the do-not-call list's lock: above every
// pool's, campaign's and rule's, below the escalation lock's.
const dncOrderKey = escalationsOrderKey - 1

// dncLockID is the second key of the do-not-call list's advisory lock:
// -2^31, which no other lock of the schema uses (campaigns 1 … 2^31-1, the
// migration lock 0, the escalation lock -1, rules -2^31+1 … -2).
const dncLockID = math.MinInt32

// lockDNCSQL takes the do-not-call list's lock ($1 the schema's lock
// namespace, $2 dncLockID), exclusive, waited for when $3 is true, only
// tried otherwise; lockDNCSharedSQL takes it shared. Their columns are
// those sendLock scans.
var (
	lockDNCSQL = `SELECT 0::bigint, CASE WHEN $3::bool
        THEN (SELECT true FROM pg_advisory_xact_lock($1::int, $2::int))
        ELSE pg_try_advisory_xact_lock($1::int, $2::int) END, ` + guardCol
	lockDNCSharedSQL = `SELECT 0::bigint, CASE WHEN $3::bool
        THEN (SELECT true FROM pg_advisory_xact_lock_shared($1::int, $2::int))
        ELSE pg_try_advisory_xact_lock_shared($1::int, $2::int) END, ` + guardCol
)

// dncHold is how a transaction holds the do-not-call list's lock.
type dncHold int8

const (
	dncNone dncHold = iota
	dncShared
	dncExclusive
)

const (
	lockEscalationsSQL = `SELECT pg_advisory_xact_lock($1::int, -1)`

	// poolsOfContactSQL finds the pools of a contact's items, to lock them
	// before the items are read: a walk of the pools and one seek per pool
	// in UNIQUE (pool_id, contact_uuid) (there is no index on contacts
	// alone, see 0004), in a lateral subquery that LIMIT keeps apart.
	// Joined, the plan walked that whole index with contact_uuid, its
	// second column, as the condition (PostgreSQL 15 has no skip scan):
	// every item of the store, where the seeks read a few pages a pool.
	// ORDER BY walks the pools' key (without it, they were a Seq Scan).
	poolsOfContactSQL = `SELECT p.id, p.uuid FROM pools p
CROSS JOIN LATERAL (SELECT FROM items i WHERE i.pool_id = p.id AND i.contact_uuid = $1 LIMIT 1) i ORDER BY p.id`
	// contactItemsSQL reads a contact's items in pool order, walking the
	// pools' key and seeking each pool's item as poolsOfContactSQL does.
	// A pool has one item of a contact at most, so pool order is the
	// order of the contract (pool, then ID). contactItemsLockedSQL keeps
	// the pools locked ($2): a seek per pool of $2.
	contactItemsSQL = `SELECT ` + itemCols + `, p.uuid FROM pools p
CROSS JOIN LATERAL (SELECT * FROM items WHERE pool_id = p.id AND contact_uuid = $1 LIMIT 1) i
ORDER BY p.id`
	contactItemsLockedSQL = `SELECT ` + itemCols + `, p.uuid FROM items i JOIN pools p ON p.id = i.pool_id
WHERE i.contact_uuid = $1 AND i.pool_id = ANY($2::bigint[]) ORDER BY i.pool_id`

	// campaignItemsSQL walks a campaign's pools (campaign_pools' key) and
	// seeks, in each but one, the item of each contact of $3 (each once)
	// in UNIQUE (pool_id, contact_uuid), in a lateral subquery as
	// itemsOfContactsSQL does (which says why: a join on "contact_uuid =
	// ANY($3)" walked every item of each pool, at every governed claim).
	campaignItemsSQL = `SELECT ` + itemCols + `, p.uuid FROM campaign_pools cp JOIN pools p ON p.id = cp.pool_id
CROSS JOIN unnest($3::uuid[]) c
CROSS JOIN LATERAL (SELECT * FROM items WHERE pool_id = cp.pool_id AND contact_uuid = c LIMIT 1) i
WHERE cp.campaign_id = (SELECT c.id FROM campaigns c WHERE c.uuid = $1) AND p.uuid <> $2
UNION ALL SELECT ` + keptCols + ` FROM kept_calls k` + keptCallJoin + `
WHERE k.campaign_id = (SELECT c.id FROM campaigns c WHERE c.uuid = $1) AND k.contact_uuid = ANY($3::uuid[])`

	// keptCols are a kept call as itemCols and a pool's UUID: a Completed
	// item of no pool, or an item in flight when its item is still in the
	// call it was in when its pool left (keptCallJoin; see
	// store.Tx.CampaignItems).
	keptCols = `0, k.contact_uuid, coalesce(live.status, 'Completed'), 0, k.attempts, 0, NULL, NULL, NULL, NULL, '', 0, NULL, 0,
    live.lease_expires_at, NULL, NULL, NULL, NULL, k.call_at, k.calls_today, 0,
    k.prev_call_at, k.prev_calls_today, k.older_call_at, k.older_calls_today, '00000000-0000-0000-0000-000000000000'::uuid`
	// keptCallJoin seeks, for a call kept under a lease (lease_token not
	// 0), its item by primary key: still in flight under that token, the
	// call goes on.
	keptCallJoin = `
LEFT JOIN items live ON k.lease_token <> 0 AND live.id = k.item_id AND live.token = k.lease_token
    AND live.status IN ('Processing', 'In_Call')`

	// releaseKeptCallSQL gives back an attempt (and $3, the day's call: 0
	// or 1) in the calls kept of item $1 under lease token $2.
	releaseKeptCallSQL = `UPDATE kept_calls SET attempts = attempts - 1, calls_today = greatest(calls_today - $3, 0), lease_token = 0
WHERE item_id = $1 AND lease_token = $2 AND lease_token <> 0 AND attempts > 0`

	// keepingCampaignsSQL reads the campaigns that keep the call of item
	// $1 under lease token $2, in kept_calls_lease.
	keepingCampaignsSQL = `SELECT c.uuid FROM kept_calls k JOIN campaigns c ON c.id = k.campaign_id
WHERE k.item_id = $1 AND k.lease_token = $2 AND k.lease_token <> 0`

	// keepCallsSQL copies the calls of pool $1's items of contacts $2
	// (each once) into kept_calls, once per campaign of the pool that may
	// still dispatch (not $3 or $4, Completed or Archived): a seek in
	// UNIQUE (pool_id, contact_uuid) per contact, as itemsOfContactsSQL
	// (which says why the lateral subquery). keepPoolCallsSQL copies those
	// of every item of the pool ($2 and $3 the finished statuses). Both
	// read the pool's campaigns from campaign_pools_pool, each by its key
	// in a lateral subquery: joined, with the statistics of a few
	// campaigns the plan walked every campaign.
	keepCallsSQL = `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today)
SELECT cp.campaign_id, i.id, i.contact_uuid, i.attempts, i.call_at, i.calls_today, i.prev_call_at, i.prev_calls_today,
    i.older_call_at, i.older_calls_today
FROM unnest($2::uuid[]) c
CROSS JOIN LATERAL (SELECT * FROM items WHERE pool_id = $1 AND contact_uuid = c LIMIT 1) i
JOIN campaign_pools cp ON cp.pool_id = $1
CROSS JOIN LATERAL (SELECT FROM campaigns k WHERE k.id = cp.campaign_id AND k.status NOT IN ($3, $4) LIMIT 1) k
WHERE i.attempts > 0 OR i.calls_today > 0 OR i.prev_calls_today > 0 OR i.older_calls_today > 0`
	keepPoolCallsSQL = `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today)
SELECT cp.campaign_id, i.id, i.contact_uuid, i.attempts, i.call_at, i.calls_today, i.prev_call_at, i.prev_calls_today,
    i.older_call_at, i.older_calls_today
FROM campaign_pools cp
    CROSS JOIN LATERAL (SELECT FROM campaigns k WHERE k.id = cp.campaign_id AND k.status NOT IN ($2, $3) LIMIT 1) k
    JOIN items i ON i.pool_id = cp.pool_id
WHERE cp.pool_id = $1 AND (i.attempts > 0 OR i.calls_today > 0 OR i.prev_calls_today > 0 OR i.older_calls_today > 0)`

	// campaignCallsSQL walks a campaign's pools and, in each, items_lease
	// from $2 on.
	campaignCallsSQL = `SELECT ` + itemCols + `, p.uuid FROM campaign_pools cp JOIN pools p ON p.id = cp.pool_id
JOIN items i ON i.pool_id = cp.pool_id AND i.status IN ('Processing', 'In_Call') AND i.lease_expires_at > $2
WHERE cp.campaign_id = (SELECT c.id FROM campaigns c WHERE c.uuid = $1)`

	addDNCSQL    = `INSERT INTO dnc (contact_uuid, added_at) SELECT c, $2 FROM unnest($1::uuid[]) c ON CONFLICT DO NOTHING`
	removeDNCSQL = `DELETE FROM dnc WHERE contact_uuid = ANY($1::uuid[])`
	onDNCSQL     = `SELECT contact_uuid FROM dnc WHERE contact_uuid = ANY($1::uuid[])`
	dncSQL       = `SELECT contact_uuid, added_at FROM dnc ORDER BY added_at, contact_uuid LIMIT $1 OFFSET $2`
	dncTotalSQL  = `SELECT count(*) FROM dnc`

	optOutSQL   = `INSERT INTO opt_outs (contact_uuid, opted_out_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`
	optedOutSQL = `SELECT contact_uuid FROM opt_outs WHERE contact_uuid = ANY($1::uuid[])`

	// listedSQL is Listed: two primary-key seeks per contact.
	listedSQL = `SELECT c, EXISTS (SELECT 1 FROM dnc d WHERE d.contact_uuid = c),
    EXISTS (SELECT 1 FROM opt_outs o WHERE o.contact_uuid = c)
FROM unnest($1::uuid[]) AS c`

	// insertEscalationSQL records an escalation unless its item has one:
	// the SELECT then yields no row, and no ID is taken from the sequence.
	// (The escalation lock makes the check and the insert one step; ON
	// CONFLICT covers a writer that does not take it.)
	insertEscalationSQL = `INSERT INTO escalations (item_id, pool_uuid, contact_uuid, campaign_uuid, rule_uuid,
    type, target, failed_attempts, escalated_at)
SELECT $1::bigint, $2::uuid, $3::uuid, $4::uuid, $5::uuid, $6::text, $7::text, $8::bigint, $9::bigint
WHERE NOT EXISTS (SELECT FROM escalations WHERE item_id = $1::bigint)
ON CONFLICT (item_id) DO NOTHING RETURNING id`

	escalationCols = `id, item_id, pool_uuid, contact_uuid, campaign_uuid, rule_uuid, type, target,
    failed_attempts, escalated_at`
	// escalationsSQL walks the primary key from After; escalationsOfPoolSQL
	// escalations_pool.
	escalationsSQL       = `SELECT ` + escalationCols + ` FROM escalations WHERE id > $1 ORDER BY id LIMIT $2`
	escalationsOfPoolSQL = `SELECT ` + escalationCols + ` FROM escalations WHERE pool_uuid = $1 AND id > $2
ORDER BY id LIMIT $3`
)

// ContactItems returns the items of a contact in every pool, in pool
// order. One index seek per pool: O(P log n) for P pools, however many
// items they hold (in a write transaction, twice: the pools to lock, then
// the items).
//
// In a write transaction it first locks every pool that has an item of
// the contact (in the order of their keys, as ItemsByID does), then reads
// the contact's items in the pools whose lock the transaction holds, and
// in those it created (no other transaction sees them before it commits,
// so they have no lock): what it returns stays true until the transaction
// ends. An item that another transaction adds meanwhile in a pool not
// locked here is left out, as if it were added after.
func (t *txn) ContactItems(ctx context.Context, contact uuid.UUID) ([]pool.Item, error) {
	const op = "contact items"
	var rows pgx.Rows
	var err error
	if t.readOnly {
		rows, err = t.query(ctx, contactItemsSQL, contact)
	} else {
		if err := t.lockPoolsFound(ctx, poolsOfContactSQL, contact); err != nil {
			return nil, wrap(op, err)
		}
		// Every pool with a state is locked or was created here
		// (InsertPool): the latter are in no lock held.
		held := make([]int64, 0, len(t.locked)+len(t.states))
		for _, k := range t.locked {
			held = append(held, k)
		}
		for _, st := range t.states {
			held = append(held, st.k)
		}
		rows, err = t.query(ctx, contactItemsLockedSQL, contact, held)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	return t.scanPoolItems(rows, op)
}

// CampaignItems returns the items of contacts in the pools of campaign id
// but except, in one statement. O(P·m log n) for P pools and m contacts.
//
// In a write transaction it takes the campaign's lock first (see the
// comment at the top of campaigns.go), so that claims under the campaign's
// rule, each of which reads this, run one after the other: a claim that
// holds the lock reads every dispatch that an earlier one committed, in
// any pool of the campaign, in a statement of its own (READ COMMITTED).
func (t *txn) CampaignItems(ctx context.Context, id, except uuid.UUID, contacts ...uuid.UUID) ([]pool.Item, error) {
	const op = "campaign items"
	contacts = distinct(contacts) // the statement seeks each once
	out := []pool.Item{}
	if !t.readOnly {
		// The read goes behind the lock, in its round trip, when the
		// lock is taken here.
		var x *behind
		if len(contacts) > 0 {
			x = &behind{sql: campaignItemsSQL, args: []any{id, except, contacts}, read: func(br pgx.BatchResults) error {
				rows, err := br.Query()
				if err == nil {
					out, err = t.readPoolItems(rows)
				}
				return err
			}}
		}
		_, done, err := t.lockCampaignBehind(ctx, id, x)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return []pool.Item{}, nil
		case err != nil:
			return nil, wrap(op, err)
		case done:
			return out, nil
		}
	}
	if len(contacts) == 0 {
		return out, nil
	}
	rows, err := t.query(ctx, campaignItemsSQL, id, except, contacts)
	if err != nil {
		return nil, wrap(op, err)
	}
	return t.scanPoolItems(rows, op)
}

// KeepCalls records the calls of pool poolID's items of contacts (all
// its items when none are given) for each campaign of the pool, in one
// statement, sent with the transaction's next one. O(C·m log n) for C
// campaigns and m contacts (m = the pool's items when none are given).
func (t *txn) KeepCalls(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) error {
	const op = "keep calls"
	if err := t.writable(op); err != nil {
		return err
	}
	st, err := t.pool(ctx, poolID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // no pool: no calls
	}
	if err != nil {
		return wrap(op, err)
	}
	if len(contacts) == 0 {
		err = t.deferExec(ctx, keepPoolCallsSQL, st.k, string(campaign.Completed), string(campaign.Archived))
	} else {
		err = t.deferExec(ctx, keepCallsSQL, st.k, distinct(contacts), string(campaign.Completed), string(campaign.Archived))
	}
	return wrap(op, err)
}

// ReleaseKeptCall gives back a released attempt in the calls kept of
// item itemID under lease token, in a statement sent with the
// transaction's next one. O(log k) for k calls kept under a lease.
func (t *txn) ReleaseKeptCall(ctx context.Context, itemID, token int64, day bool) error {
	const op = "release kept call"
	if err := t.writable(op); err != nil {
		return err
	}
	d := 0
	if day {
		d = 1
	}
	return wrap(op, t.deferExec(ctx, releaseKeptCallSQL, itemID, token, d))
}

// KeepingCampaigns returns the campaigns that keep the call of item
// itemID under lease token. O(log k) for k calls kept under a lease.
func (t *txn) KeepingCampaigns(ctx context.Context, itemID, token int64) ([]uuid.UUID, error) {
	const op = "keeping campaigns"
	rows, err := t.query(ctx, keepingCampaignsSQL, itemID, token)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, wrap(op, err)
	}
	if out == nil {
		out = []uuid.UUID{}
	}
	return out, nil
}

// CampaignCalls returns the items in flight in the pools of campaign id
// whose lease ends after after, in one statement. O(P log n + k) for P
// pools and k such items. In a write transaction it takes the campaign's
// lock first, as CampaignItems does, and no pool's. It fails with an error
// wrapping ErrClockSkew while this process's clock is further than
// MaxClockSkew from the server's: it judges which calls are still on.
func (t *txn) CampaignCalls(ctx context.Context, id uuid.UUID, after time.Time) ([]pool.Item, error) {
	const op = "campaign calls"
	if err := t.s.watch.err(); err != nil {
		return nil, wrap(op, err) // this clock would judge which calls are still on
	}
	at, err := nanos(after)
	if err != nil {
		return nil, wrap(op, err)
	}
	if !t.readOnly {
		if _, err := t.lockCampaign(ctx, id); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return []pool.Item{}, nil
			}
			return nil, wrap(op, err)
		}
	}
	rows, err := t.query(ctx, campaignCallsSQL, id, at)
	if err != nil {
		return nil, wrap(op, err)
	}
	return t.scanPoolItems(rows, op)
}

// scanPoolItems scans and closes rows of itemCols followed by the pool's
// UUID.
func (t *txn) scanPoolItems(rows pgx.Rows, op string) ([]pool.Item, error) {
	out, err := t.readPoolItems(rows)
	if err != nil {
		return nil, wrap(op, err)
	}
	return out, nil
}

// readPoolItems is scanPoolItems, its error not wrapped.
func (t *txn) readPoolItems(rows pgx.Rows) ([]pool.Item, error) {
	defer rows.Close()
	out := []pool.Item{}
	for rows.Next() {
		var poolID uuid.UUID
		it, err := scanItem(rows, uuid.Nil, &poolID)
		if err != nil {
			return nil, err
		}
		it.PoolUUID = poolID
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		t.noteErr(err)
		return nil, err
	}
	return out, nil
}

// AddDNC puts contacts on the do-not-call list in one statement, after it
// takes the list's lock, exclusive (see the top of this file). No contacts
// add none. O(m log n) for m contacts.
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
	sorted := slices.Clone(contacts)
	slices.SortFunc(sorted, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)
	if _, err := t.lockDNC(ctx, dncExclusive, nil); err != nil { // see the top of this file
		return 0, wrap(op, err)
	}
	tag, err := t.exec(ctx, addDNCSQL, sorted, n)
	if err != nil {
		return 0, wrap(op, err)
	}
	return int(tag.RowsAffected()), nil
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
	tag, err := t.exec(ctx, removeDNCSQL, contacts)
	if err != nil {
		return 0, wrap(op, err)
	}
	return int(tag.RowsAffected()), nil
}

// OnDNC returns which of contacts are on the do-not-call list, in one
// statement; in a write transaction, after the list's lock, shared, in the
// same round trip (see the top of this file). O(m log n) for m contacts.
func (t *txn) OnDNC(ctx context.Context, contacts ...uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	var c uuid.UUID
	err := t.readLists(ctx, true, onDNCSQL, contacts, []any{&c}, func() { out[c] = true })
	if err != nil {
		return nil, wrap("on dnc", err)
	}
	return out, nil
}

// OptedOut returns which of contacts have opted out, in one statement.
// O(m log n) for m contacts.
func (t *txn) OptedOut(ctx context.Context, contacts ...uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	var c uuid.UUID
	err := t.readLists(ctx, false, optedOutSQL, contacts, []any{&c}, func() { out[c] = true })
	if err != nil {
		return nil, wrap("opted out", err)
	}
	return out, nil
}

// Listed returns which of contacts are on the do-not-call list and which
// opted out, in one statement; as OnDNC, after the list's lock in a write
// transaction. O(m log n) for m contacts.
func (t *txn) Listed(ctx context.Context, contacts ...uuid.UUID) (dnc, optedOut map[uuid.UUID]bool, err error) {
	dnc, optedOut = map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	var c uuid.UUID
	var onDNC, opted bool
	err = t.readLists(ctx, true, listedSQL, contacts, []any{&c, &onDNC, &opted}, func() {
		if onDNC {
			dnc[c] = true
		}
		if opted {
			optedOut[c] = true
		}
	})
	if err != nil {
		return nil, nil, wrap("listed", err)
	}
	return dnc, optedOut, nil
}

// readLists runs query, which reads the lists for the contacts of an array
// ($1), and calls each after every row is scanned into dest. No contacts
// read nothing. A query that reads the do-not-call list (dnc), in a write
// transaction, goes behind the list's lock, shared, in the same round trip
// (see the top of this file); when the lock was held already, or only
// tried and not taken (the transaction then runs again), each may have
// seen rows of a run that does not count: the caller's maps are made
// afresh by the next call.
func (t *txn) readLists(ctx context.Context, dnc bool, query string, contacts []uuid.UUID, dest []any, each func()) error {
	if len(contacts) == 0 {
		return nil
	}
	read := func(rows pgx.Rows) error {
		_, err := pgx.ForEachRow(rows, dest, func() error { each(); return nil })
		return err
	}
	if dnc && !t.readOnly {
		done, err := t.lockDNC(ctx, dncShared, &behind{sql: query, args: []any{contacts}, read: func(br pgx.BatchResults) error {
			rows, err := br.Query()
			if err != nil {
				return err
			}
			return read(rows)
		}})
		if err != nil || done {
			return err
		}
	}
	rows, err := t.query(ctx, query, contacts)
	if err != nil {
		return err
	}
	if err := read(rows); err != nil {
		t.noteErr(err)
		return err
	}
	return nil
}

// lockDNC takes the do-not-call list's lock as h says (shared or
// exclusive), unless this transaction holds it so already (exclusive
// covers shared), with x, a read, behind the lock statement in the same
// round trip (see lockRule): done says whether x ran with the lock taken.
// The lock is waited for when its order key is above every lock the
// transaction holds (the escalation lock is the one above it), only tried
// otherwise: when another transaction holds it (or waits for it
// exclusive), the transaction runs again, taking its locks in order.
func (t *txn) lockDNC(ctx context.Context, h dncHold, x *behind) (done bool, err error) {
	if t.dlock >= h {
		return false, nil
	}
	if t.retry != nil {
		return false, t.retry
	}
	start, prevMax := time.Now(), t.maxKey
	lockSQL := lockDNCSQL
	if h == dncShared {
		lockSQL = lockDNCSharedSQL
	}
	_, ok, err := t.sendLock(ctx, x, lockSQL, int32(t.s.lockNS), int32(dncLockID), dncOrderKey > t.maxKey)
	if err != nil {
		return false, err
	}
	l := lockedPool{dnc: true, shared: h == dncShared}
	if !ok {
		t.restart = true
		t.retry = errRestart
		t.wanted = append(t.wanted, l)
		return false, errRestart
	}
	t.dlock = h
	t.maxKey = max(t.maxKey, dncOrderKey)
	if t.waitedAfterLock(start, prevMax, l) {
		return false, errRestart
	}
	return x != nil, nil
}

// DNC returns one page of the do-not-call list and its length. The page
// is O(log n + offset + per_page), the length O(n).
func (t *txn) DNC(ctx context.Context, q campaign.DNCQuery) ([]campaign.DNCEntry, int, error) {
	const op = "dnc"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("postgres: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	var total int
	if err := t.queryRow(ctx, []any{&total}, dncTotalSQL); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.query(ctx, dncSQL, q.PerPage, pool.Offset(q.Page, q.PerPage))
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out := make([]campaign.DNCEntry, 0, q.PerPage)
	var e campaign.DNCEntry
	var added int64
	if _, err := pgx.ForEachRow(rows, []any{&e.ContactUUID, &added}, func() error {
		e.AddedAt = fromNanos(added)
		out = append(out, e)
		return nil
	}); err != nil {
		t.noteErr(err)
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
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
	tag, err := t.exec(ctx, optOutSQL, contact, n)
	if err != nil {
		return false, wrap(op, err)
	}
	return tag.RowsAffected() > 0, nil
}

// lockEscalations takes the escalation lock, if this transaction does not
// hold it yet: waited for, since it comes after every other lock.
func (t *txn) lockEscalations(ctx context.Context) error {
	if t.elock {
		return nil
	}
	if t.retry != nil {
		return t.retry
	}
	start, prevMax := time.Now(), t.maxKey
	t.boundLockWait(ctx)
	if _, err := t.exec(ctx, lockEscalationsSQL, int32(t.s.lockNS)); err != nil {
		return err
	}
	t.elock = true
	t.maxKey = escalationsOrderKey
	if t.waitedAfterLock(start, prevMax, lockedPool{escalations: true}) {
		return errRestart
	}
	return nil
}

// InsertEscalation records an escalation unless its item has one, under
// the escalation lock. O(log n).
func (t *txn) InsertEscalation(ctx context.Context, e campaign.Escalation) (campaign.Escalation, bool, error) {
	const op = "insert escalation"
	if err := t.writable(op); err != nil {
		return e, false, err
	}
	at, err := nanos(e.At)
	if err != nil {
		return e, false, wrap(op, err)
	}
	if err := t.lockEscalations(ctx); err != nil {
		return e, false, wrap(op, err)
	}
	var id int64
	err = t.queryRow(ctx, []any{&id}, insertEscalationSQL, e.ItemID, e.PoolUUID, e.ContactUUID, e.CampaignUUID,
		e.RuleUUID, e.Type, e.Target, int64(e.FailedAttempts), at)
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
		return nil, fmt.Errorf("postgres: %s: query not normalized (after %d, limit %d)", op, q.After, q.Limit)
	}
	var (
		rows pgx.Rows
		err  error
	)
	if q.PoolUUID != nil {
		rows, err = t.query(ctx, escalationsOfPoolSQL, *q.PoolUUID, q.After, q.Limit)
	} else {
		rows, err = t.query(ctx, escalationsSQL, q.After, q.Limit)
	}
	if err != nil {
		return nil, wrap(op, err)
	}
	out := make([]campaign.Escalation, 0, min(q.Limit, 64))
	var e campaign.Escalation
	var at int64
	if _, err := pgx.ForEachRow(rows, []any{&e.ID, &e.ItemID, &e.PoolUUID, &e.ContactUUID, &e.CampaignUUID,
		&e.RuleUUID, &e.Type, &e.Target, &e.FailedAttempts, &at}, func() error {
		e.At = fromNanos(at)
		out = append(out, e)
		return nil
	}); err != nil {
		t.noteErr(err)
		return nil, wrap(op, err)
	}
	return out, nil
}

// distinct returns ids without their repeats, in the order of their first
// occurrence.
func distinct(ids []uuid.UUID) []uuid.UUID {
	seen := make(map[uuid.UUID]struct{}, len(ids))
	out := make([]uuid.UUID, 0, len(ids))
	for _, id := range ids {
		if _, ok := seen[id]; !ok {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}
