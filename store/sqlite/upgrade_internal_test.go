package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestMigrate_CountsWithoutTriggers upgrades a version 1 file, whose counts
// the triggers kept, to the latest version, where the store keeps them: the
// counts carry over, the item triggers are gone (a write is counted once,
// not twice), and writes after the upgrade keep the counts equal to a
// recount. On the way, 0003 rewrites constraints in place: the file passes
// integrity_check after it.
//
// Not parallel: it narrows the package's migrations to the first while it
// writes the old file (parallel tests start after it has put them back).
func TestMigrate_CountsWithoutTriggers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	// Version 1, written as its code did: plain statements, counts by
	// triggers. (Not through Open: today's statements do not prepare on
	// an old schema.)
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	all := history
	history = all[:1]
	err = migrate(ctx, db)
	history = all
	require.NoError(t, err)
	poolID := uuid.New()
	_, err = db.ExecContext(ctx, insertOldPool, poolID[:])
	require.NoError(t, err)
	for i := range 5 {
		c := uuid.New()
		_, err = db.ExecContext(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready) VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1)`, c[:], i)
		require.NoError(t, err)
	}
	_, err = db.ExecContext(ctx, `UPDATE items SET status = 'Completed', ready = 0 WHERE id IN (1, 2)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer st.Close()
	var triggers []string
	rows, err := st.wc.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		triggers = append(triggers, name)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"items_search_delete", "pools_counts_init"}, triggers)

	// Migration 0003 edited the tables' text in place: the file is sound,
	// its rows satisfy the constraints, none is an IN list any more, the
	// JSON check is gone and the foreign key of items is deferred.
	var check string
	require.NoError(t, st.wc.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)
	var inLists int
	require.NoError(t, st.wc.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema
WHERE type = 'table' AND (sql LIKE '%status IN (%' OR sql LIKE '%type IN (%')`).Scan(&inLists))
	require.Zero(t, inLists)
	var items string
	require.NoError(t, st.wc.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'items'`).Scan(&items))
	require.Contains(t, items, "DEFERRABLE INITIALLY DEFERRED")
	require.NotContains(t, items, "json_valid")

	counts := func() map[pool.Status]int {
		var out map[pool.Status]int
		require.NoError(t, st.Read(ctx, func(tx store.Tx) (err error) {
			out, err = tx.StatusCounts(ctx, poolID)
			return err
		}))
		return out
	}
	want := pool.ZeroCounts()
	want[pool.StatusPending], want[pool.StatusCompleted] = 3, 2
	require.Equal(t, want, counts(), "the counts carry over")

	// After the upgrade: a claim, a deletion and an insert, each counted once.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, poolID); err != nil {
			return err
		}
		due, err := tx.Due(ctx, poolID, pool.FIFO, time.Unix(0, 10), 1)
		if err != nil {
			return err
		}
		claimed := due[0]
		claimed.Status, claimed.Attempts, claimed.Token = pool.StatusProcessing, 1, 1
		claimed.LeaseExpiresAt = time.Unix(60, 0)
		if err := tx.UpdateItem(ctx, pool.StatusPending, claimed); err != nil {
			return err
		}
		if n, err := tx.DeleteItems(ctx, poolID, []int64{1}); err != nil || n != 1 {
			return fmt.Errorf("delete item 1: %d deleted, %v", n, err)
		}
		_, err = tx.InsertItems(ctx, poolID, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: time.Unix(0, 9)}})
		return err
	}))
	want[pool.StatusPending], want[pool.StatusProcessing], want[pool.StatusCompleted] = 3, 1, 1
	require.Equal(t, want, counts())

	// 0004: the old items have no contact fields; a new one has, and the
	// search finds it.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.InsertItems(ctx, poolID, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending,
			AddedAt: time.Unix(0, 11), Contact: pool.Contact{Name: "Ada Lovelace", PhoneNumber: "+15551234567"}}})
		return err
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		all, _, err := tx.Items(ctx, poolID, pool.ItemQuery{Page: 1, PerPage: 100})
		require.NoError(t, err)
		require.Len(t, all, 6)
		for _, it := range all[:5] {
			require.True(t, it.Contact.IsZero(), "an item from before 0004")
		}
		found, total, err := tx.Items(ctx, poolID, pool.ItemQuery{Search: "lovelace", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		require.Equal(t, "Ada Lovelace", found[0].Name)
		return nil
	}))
}

// TestMigrate_CallingRules upgrades a version 5 file (campaigns, no
// calling rules) holding items in every kind of state to the latest
// version: the items read back as they were, with no count of a calling
// day (CallAt, CallsToday, CallToken zero), from every reader; the counts carry over; the new tables (do-not-call
// list, opt-outs, escalations) and columns are usable at once.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_CallingRules(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v5.db")
	// Version 5, written as its code did: counts kept by the store, contact
	// fields indexed in item_search by the store.
	db, exec := fileAtVersion(t, path, 5)
	var version int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT max(version) FROM schema_version`).Scan(&version))
	require.Equal(t, 5, version)

	p, q := uuid.New(), uuid.New() // pool ids 1 and 2
	for _, id := range []uuid.UUID{p, q} {
		exec(insertOldPool, id[:])
	}
	shared := uuid.New() // a contact in both pools
	contacts := []uuid.UUID{shared, uuid.New(), uuid.New(), uuid.New()}
	// In pool 1: Pending (with contact fields), Retrying (due at 100),
	// Processing (lease ends at 50), Completed; in pool 2: the shared
	// contact, Pending.
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready, name, phone_number) VALUES (1, ?, 'Pending', 0, 0, 0, '', 1, 0, 1, 'Ada Lovelace', '+15551234567')`, shared[:])
	exec(`INSERT INTO item_search (rowid, body) VALUES (1, 'Ada Lovelace' || char(10) || '+15551234567')`)
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, started_at, next_retry_at,
    notes, added_at, token, ready) VALUES (1, ?, 'Retrying', 0, 1, 1, 10, 100, 'busy', 2, 1, 0)`, contacts[1][:])
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, started_at, notes,
    added_at, token, lease_expires_at, ready) VALUES (1, ?, 'Processing', 0, 1, 0, 20, '', 3, 1, 50, 0)`, contacts[2][:])
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, started_at, completed_at,
    notes, added_at, token, ready) VALUES (1, ?, 'Completed', 0, 1, 0, 5, 6, 'answered', 4, 1, 0)`, contacts[3][:])
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready) VALUES (2, ?, 'Pending', 0, 0, 0, '', 5, 0, 1)`, shared[:])
	exec(`UPDATE pool_counts SET n = CASE status WHEN 'Pending' THEN 1 WHEN 'Retrying' THEN 1
    WHEN 'Processing' THEN 1 WHEN 'Completed' THEN 1 ELSE 0 END WHERE pool_id = 1`)
	exec(`UPDATE pool_counts SET n = 1 WHERE pool_id = 2 AND status = 'Pending'`)
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	var versions []int
	rows, err := st.wc.QueryContext(ctx, `SELECT version FROM schema_version ORDER BY version`)
	require.NoError(t, err)
	for rows.Next() {
		var v int
		require.NoError(t, rows.Scan(&v))
		versions = append(versions, v)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []int{1, 2, 3, 4, 5, 6}, versions[:6], "every migration recorded once, in order")
	require.Len(t, versions, latestVersion())
	var check string
	require.NoError(t, st.wc.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)

	// Every reader returns the old items with a calling day of 0.
	zero := func(what string, items ...pool.Item) {
		t.Helper()
		require.NotEmpty(t, items, what)
		for _, it := range items {
			require.Zero(t, it.CallAt, "%s: item %d", what, it.ID)
			require.Zero(t, it.CallsToday, "%s: item %d", what, it.ID)
			require.Zero(t, it.CallToken, "%s: item %d", what, it.ID)
		}
	}
	var old []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		var total int
		old, total, err = tx.Items(ctx, p, pool.ItemQuery{Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 4, total)
		zero("Items", old...)
		require.Equal(t, []pool.Status{pool.StatusPending, pool.StatusRetrying, pool.StatusProcessing,
			pool.StatusCompleted}, []pool.Status{old[0].Status, old[1].Status, old[2].Status, old[3].Status})
		require.Equal(t, "Ada Lovelace", old[0].Name)
		require.Equal(t, 1, old[1].Attempts)
		require.Equal(t, "busy", old[1].Notes)
		require.Equal(t, time.Unix(0, 100).UTC(), *old[1].NextRetryAt)
		require.Equal(t, time.Unix(0, 50).UTC(), old[2].LeaseExpiresAt)
		for _, it := range old {
			got, err := tx.ItemByID(ctx, it.ID)
			require.NoError(t, err)
			require.Equal(t, it, got, "ItemByID")
		}
		found, _, err := tx.Items(ctx, p, pool.ItemQuery{Search: "lovelace", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, old[:1], found, "the search index carries over")
		mine, err := tx.ContactItems(ctx, shared)
		require.NoError(t, err)
		require.Len(t, mine, 2)
		require.Equal(t, old[0], mine[0], "ContactItems, pool 1 first")
		require.Equal(t, q, mine[1].PoolUUID)
		zero("ContactItems", mine...)
		expired, err := tx.Expired(ctx, p, time.Unix(0, 50), 10)
		require.NoError(t, err)
		require.Equal(t, old[2:3], expired, "Expired")
		counts, err := tx.StatusCounts(ctx, p)
		require.NoError(t, err)
		want := pool.ZeroCounts()
		want[pool.StatusPending], want[pool.StatusRetrying], want[pool.StatusProcessing], want[pool.StatusCompleted] = 1, 1, 1, 1
		require.Equal(t, want, counts, "the counts carry over")
		return nil
	}))

	// The new columns and tables take writes at once.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		due, err := tx.Due(ctx, p, pool.FIFO, time.Unix(0, 100), 10)
		require.NoError(t, err)
		require.Equal(t, old[:2], due, "Due: the Pending item and the Retrying one come due")
		zero("Due", due...)

		claimed := due[0]
		claimed.Status, claimed.Attempts, claimed.Token = pool.StatusProcessing, 1, 1
		claimed.LeaseExpiresAt = time.Unix(60, 0).UTC()
		claimed.CallAt, claimed.CallsToday, claimed.CallToken = time.Unix(30, 0).UTC(), 1, 1
		require.NoError(t, tx.UpdateItem(ctx, pool.StatusPending, claimed))
		got, err := tx.ItemByID(ctx, claimed.ID)
		require.NoError(t, err)
		require.Equal(t, claimed, got)
		retried := due[1]
		retried.CallAt, retried.CallsToday, retried.CallToken = time.Unix(20, 0).UTC(), 2, 1
		require.NoError(t, tx.UpdateItems(ctx, store.Change{From: pool.StatusRetrying, Item: retried}))
		got, err = tx.ItemByID(ctx, retried.ID)
		require.NoError(t, err)
		require.Equal(t, retried, got)

		n, err := tx.AddDNC(ctx, time.Unix(0, 7), contacts[1], shared)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		on, err := tx.OnDNC(ctx, contacts...)
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]bool{contacts[1]: true, shared: true}, on)
		added, err := tx.OptOut(ctx, contacts[3], time.Unix(0, 8))
		require.NoError(t, err)
		require.True(t, added)
		e, added, err := tx.InsertEscalation(ctx, campaign.Escalation{PoolUUID: p, ContactUUID: contacts[1],
			ItemID: old[1].ID, CampaignUUID: uuid.New(), RuleUUID: uuid.New(), FailedAttempts: 1, At: time.Unix(0, 9).UTC()})
		require.NoError(t, err)
		require.True(t, added)
		require.Positive(t, e.ID)
		return nil
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		list, total, err := tx.DNC(ctx, campaign.DNCQuery{Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 2, total)
		require.Len(t, list, 2)
		outs, err := tx.OptedOut(ctx, contacts...)
		require.NoError(t, err)
		require.Equal(t, map[uuid.UUID]bool{contacts[3]: true}, outs)
		es, err := tx.Escalations(ctx, campaign.EscalationQuery{Limit: 10, PoolUUID: &p})
		require.NoError(t, err)
		require.Len(t, es, 1)
		require.Equal(t, old[1].ID, es[0].ItemID)
		return nil
	}))

	// calls_today keeps its CHECK on the upgraded table.
	bad := old[3]
	bad.CallsToday = -1
	err = st.Write(ctx, func(tx store.Tx) error { return tx.UpdateItem(ctx, pool.StatusCompleted, bad) })
	require.Error(t, err, "a negative calls_today")
}

// TestMigrate_CallAt upgrades a version 6 file, whose items count their
// calling day by its date (call_day), to the latest version: a count
// becomes the noon (UTC) of its date, the instant of its latest call,
// which falls on that date in every zone within 12 hours of UTC; an item
// without a count has none; no counted dispatch is known (CallToken 0),
// so giving back an item in flight at the upgrade keeps its day's call.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_CallAt(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v6.db")
	db, exec := fileAtVersion(t, path, 6)
	p := uuid.New()
	exec(insertOldPool, p[:])
	counted, fresh := uuid.New(), uuid.New()
	// Day 20162 is 2025-03-15: two calls counted on it, the second still
	// in flight; and an item never called under a rule.
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, started_at, notes,
    added_at, token, lease_expires_at, ready, call_day, calls_today) VALUES (1, ?, 'Processing', 0, 2, 1, 20, '', 3, 2, 50, 0, 20162, 2)`, counted[:])
	exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready) VALUES (1, ?, 'Pending', 0, 0, 0, '', 5, 0, 1)`, fresh[:])
	exec(`UPDATE pool_counts SET n = 1 WHERE pool_id = 1 AND status IN ('Pending', 'Processing')`)
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	var got []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, _, err = tx.Items(ctx, p, pool.ItemQuery{Page: 1, PerPage: 10})
		return err
	}))
	require.Len(t, got, 2)
	require.Equal(t, time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC), got[0].CallAt)
	require.Equal(t, 2, got[0].CallsToday)
	require.Zero(t, got[0].CallToken)
	require.Zero(t, got[1].CallAt)
	require.Zero(t, got[1].CallsToday)
	released, err := got[0].Released(time.Unix(60, 0))
	require.NoError(t, err)
	require.Equal(t, 2, released.CallsToday, "a dispatch counted before the upgrade keeps its day's call")
}

// TestMigrate_PrevCallDay upgrades a version 9 file, whose items and kept
// calls count their latest calling day only, to the latest version: every
// item and kept call keeps its latest day's count and has no previous
// day's (NULL, 0), the new counts are stored from then on, and
// prev_calls_today keeps its CHECK on the upgraded tables.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_PrevCallDay(t *testing.T) {
	testMigrateAddsCallDay(t, callDayUpgrade{
		from: 9,
		item: `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready, call_at, calls_today, call_token) VALUES (1, ?, 'Completed', 0, 2, 1, '', 3, 2, 0, 7000000000, 2, 2)`,
		itemDays: []dayCount{{7, 2}},
		kept: `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today)
    VALUES (1, 99, ?, 1, 5000000000, 1)`,
		keptDays: []dayCount{{5, 1}},
	})
}

// TestMigrate_OlderCallDay upgrades a version 10 file, whose items and
// kept calls count their latest two calling days, to the latest version:
// every item and kept call keeps those counts and has no older day's
// (NULL, 0), the new counts are stored from then on, and
// older_calls_today keeps its CHECK on the upgraded tables.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_OlderCallDay(t *testing.T) {
	testMigrateAddsCallDay(t, callDayUpgrade{
		from: 10,
		item: `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready, call_at, calls_today, call_token, prev_call_at, prev_calls_today)
    VALUES (1, ?, 'Completed', 0, 4, 1, '', 3, 2, 0, 7000000000, 2, 2, 6000000000, 2)`,
		itemDays: []dayCount{{7, 2}, {6, 2}},
		kept: `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today, prev_call_at,
    prev_calls_today) VALUES (1, 99, ?, 2, 5000000000, 1, 4000000000, 1)`,
		keptDays: []dayCount{{5, 1}, {4, 1}},
	})
}

// callDayUpgrade is a file version whose items and kept calls count fewer
// calling days than the next version's: the migration after it adds the
// count of callDays[len(itemDays)].
type callDayUpgrade struct {
	from int // the version upgraded from
	// item inserts a Completed item of the pool with id 1 (? its contact)
	// counting itemDays; kept inserts a kept call of the campaign with
	// id 1 (? its contact) counting keptDays.
	item, kept         string
	itemDays, keptDays []dayCount // latest first, as callDays
}

// dayCount is the count of one calling day: its latest call at unix
// second at, n calls.
type dayCount struct {
	at int64
	n  int
}

// callDays are the calling days an item and a kept call count, latest
// first: the column of each day's count, the day's name in messages, and
// the item's fields that hold it.
var callDays = []struct {
	column, name string
	fields       func(*pool.Item) (*time.Time, *int)
}{
	{"calls_today", "latest", func(it *pool.Item) (*time.Time, *int) { return &it.CallAt, &it.CallsToday }},
	{"prev_calls_today", "previous", func(it *pool.Item) (*time.Time, *int) { return &it.PrevCallAt, &it.PrevCallsToday }},
	{"older_calls_today", "older", func(it *pool.Item) (*time.Time, *int) { return &it.OlderCallAt, &it.OlderCallsToday }},
}

// testMigrateAddsCallDay upgrades a file of version u.from holding an
// item and a kept call of a removed contact to the latest version: each
// keeps the counts it had and has none of the added day (NULL, 0), the
// added day's count is stored from then on and kept with the item, and
// its column keeps its CHECK on the upgraded tables.
func testMigrateAddsCallDay(t *testing.T, u callDayUpgrade) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.db", u.from))
	db, exec := searchFileAtVersion(t, path, u.from)
	p, k, contact, removed := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	exec(insertOldPool, p[:])
	exec(`INSERT INTO campaigns (uuid, name, status, timezone, created_at, updated_at, search)
    VALUES (?, 'old campaign', 'Draft', 'UTC', 0, 0, 'old campaign')`, k[:])
	exec(`INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES (1, 1, 1)`)
	exec(u.item, contact[:])
	exec(`UPDATE pool_counts SET n = 1 WHERE pool_id = 1 AND status = 'Completed'`)
	exec(u.kept, removed[:])
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	var it pool.Item
	var others []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		if it, err = tx.Item(ctx, p, contact); err != nil {
			return err
		}
		others, err = tx.CampaignItems(ctx, k, p, removed)
		return err
	}))
	added := callDays[len(u.itemDays)]
	requireCallDays(t, it, u.itemDays)
	require.Len(t, others, 1)
	require.Equal(t, removed, others[0].ContactUUID)
	requireCallDays(t, others[0], u.keptDays)

	// Stored from then on, and kept with the item.
	at, n := added.fields(&it)
	*at, *n = time.Unix(3, 0).UTC(), 1
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.UpdateItem(ctx, it.Status, it) }))
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.KeepCalls(ctx, p, contact) }))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		others, err = tx.CampaignItems(ctx, k, uuid.Nil, contact)
		return err
	}))
	require.Len(t, others, 2)
	for _, o := range others {
		at, n := added.fields(&o)
		require.Equal(t, time.Unix(3, 0).UTC(), *at)
		require.Equal(t, 1, *n)
	}

	// The added count keeps its CHECK on the upgraded tables.
	bad := it
	_, n = added.fields(&bad)
	*n = -1
	err = st.Write(ctx, func(tx store.Tx) error { return tx.UpdateItem(ctx, it.Status, bad) })
	require.Error(t, err, "a negative "+added.column)
	_, err = st.wc.ExecContext(ctx, `UPDATE kept_calls SET `+added.column+` = -1`)
	require.Error(t, err, "a negative "+added.column+" kept")
}

// requireCallDays checks that it counts days, latest first, and nothing
// on the day after them.
func requireCallDays(t *testing.T, it pool.Item, days []dayCount) {
	t.Helper()
	for i, d := range days {
		at, n := callDays[i].fields(&it)
		require.Equal(t, time.Unix(d.at, 0).UTC(), *at, "the %s day", callDays[i].name)
		require.Equal(t, d.n, *n, "the %s day", callDays[i].name)
	}
	added := callDays[len(days)]
	at, n := added.fields(&it)
	require.Zero(t, *at, "no %s day", added.name)
	require.Zero(t, *n, "no %s day", added.name)
}

// TestMigrate_SearchWords upgrades a version 8 file, whose item_search
// unicode61 tokenized, to the latest version: every existing item with
// contact fields is indexed again with store.SearchWords's words, so that
// the searches that differed from the PostgreSQL store's ("y" in "x²y",
// "ꭰ" in "Ꭰ") now find their items, Latin text is found as before, and the
// delete trigger removes an item's words from the new table. A connection
// without poolq_search_words cannot apply 0009: the migration fails and
// leaves the file as it was.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_SearchWords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v8.db")
	db, exec := fileAtVersion(t, path, 8) // the "sqlite" driver: no poolq_search_words
	p := uuid.New()
	exec(insertOldPool, p[:])
	contacts := []pool.Contact{
		{Name: "Flat x²y"},
		{Name: "Ꭰ Ꭱ"},
		{Name: "Zoë Ñúñez", Email: "zoe@exämple.org", PhoneNumber: "+442071234567"},
		{},
		{Name: "Ada Lovelace", Email: "ada@example.com", PhoneNumber: "+15551234567"},
	}
	for i, c := range contacts {
		id := uuid.New()
		exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready, name, email, phone_number) VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1, ?, ?, ?)`,
			id[:], i, nullText(c.Name), nullText(c.Email), nullText(c.PhoneNumber))
	}
	exec(`UPDATE pool_counts SET n = ? WHERE pool_id = 1 AND status = 'Pending'`, len(contacts))
	// As version 8 indexed them.
	exec(`INSERT INTO item_search (rowid, body)
SELECT i.id, concat_ws(char(10), i.name, i.email, i.phone_number) FROM items i
WHERE i.name IS NOT NULL OR i.email IS NOT NULL OR i.phone_number IS NOT NULL`)
	oldMatches := func(q string) (n int) {
		t.Helper()
		require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM item_search WHERE item_search MATCH ?`, q).Scan(&n))
		return n
	}
	require.Zero(t, oldMatches(`"y"*`), "version 8 kept x²y one word")
	require.Equal(t, 1, oldMatches(`"nunez"*`))

	// Without poolq_search_words, 0009 fails, and nothing changes.
	err := migrate(ctx, db)
	require.ErrorContains(t, err, "0009")
	require.ErrorContains(t, err, "no such function")
	var version int
	require.NoError(t, db.QueryRowContext(ctx, currentVersionSQL).Scan(&version))
	require.Equal(t, 8, version)
	require.Zero(t, oldMatches(`"y"*`))
	require.Equal(t, 1, oldMatches(`"nunez"*`), "the old index is still there")
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	var ddl string
	require.NoError(t, st.wc.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'item_search'`).Scan(&ddl))
	require.Contains(t, ddl, `tokenize = "ascii tokenchars '/'"`, "0009's 'ascii', with 0013's slash")
	search := func(s string) (names []string) {
		t.Helper()
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			got, total, err := tx.Items(ctx, p, pool.ItemQuery{Search: s, Page: 1, PerPage: 10})
			require.Len(t, got, total)
			for _, it := range got {
				names = append(names, it.Contact.Name)
			}
			return err
		}))
		return names
	}
	for _, tc := range []struct {
		search string
		want   []string
	}{
		{"y", []string{"Flat x²y"}},
		{"x²y", []string{"Flat x²y"}},
		{"ꭰ", []string{"Ꭰ Ꭱ"}},
		{"nunez", []string{"Zoë Ñúñez"}},
		{"ZOË exam", []string{"Zoë Ñúñez"}},
		{"+4420", []string{"Zoë Ñúñez"}},
		{"example", []string{"Zoë Ñúñez", "Ada Lovelace"}},
		{"ada@example.com", []string{"Ada Lovelace"}},
		{"1555", []string{"Ada Lovelace"}},
		{"velace", nil},
	} {
		require.Equal(t, tc.want, search(tc.search), "search %q", tc.search)
	}

	// The delete trigger of 0004 deletes from the new table, and items
	// added after the upgrade are indexed as the others.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		got, _, err := tx.Items(ctx, p, pool.ItemQuery{Search: "x²y", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Len(t, got, 1)
		if n, err := tx.DeleteItems(ctx, p, []int64{got[0].ID}); err != nil || n != 1 {
			return fmt.Errorf("delete item %d: %d deleted, %v", got[0].ID, n, err)
		}
		_, err = tx.InsertItems(ctx, p, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending,
			AddedAt: time.Unix(9, 0), Contact: pool.Contact{Name: "Unit ab\uE000cd"}}})
		return err
	}))
	require.Empty(t, search("y"))
	require.Equal(t, []string{"Unit ab\uE000cd"}, search("cd"))
	_, err = st.wc.ExecContext(ctx, `INSERT INTO item_search (item_search) VALUES ('integrity-check')`)
	require.NoError(t, err)
}

// TestMigrate_SearchByPool upgrades a version 12 file whose item_search
// holds the words of two pools' items together, as versions 9 to 12
// indexed them, to the latest version: every existing item with contact
// fields is indexed again under its pool's terms, so that a search in
// each pool finds exactly its own items, as before, and reads no entry of
// the other pool's; items added after the upgrade are found too, and the
// delete trigger removes an item's terms from the new table.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_SearchByPool(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v12.db")
	db, exec := searchFileAtVersion(t, path, 12)
	p, q := uuid.New(), uuid.New()
	exec(insertOldPool, p[:])
	exec(insertOldPool, q[:])
	contacts := map[int][]pool.Contact{
		1: {
			{Name: "Ada Lovelace", Email: "ada@example.com", PhoneNumber: "+15551234567"},
			{},
			{Name: "Grace Hopper", Email: "grace@navy.mil"},
			{Name: "Zoë Ñúñez", Email: "zoe@exämple.org", PhoneNumber: "+442071234567"},
		},
		2: {
			{Name: "Ada Byron", Email: "ada@example.org"},
			{Name: "Grace Lovelace"},
			{PhoneNumber: "+15559876543"},
		},
	}
	n := 0
	for k := 1; k <= 2; k++ {
		for _, c := range contacts[k] {
			id := uuid.New()
			n++
			exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token,
    ready, name, email, phone_number) VALUES (?, ?, 'Pending', 0, 0, 0, '', ?, 0, 1, ?, ?, ?)`,
				k, id[:], n, nullText(c.Name), nullText(c.Email), nullText(c.PhoneNumber))
		}
		exec(`UPDATE pool_counts SET n = ? WHERE pool_id = ? AND status = 'Pending'`, len(contacts[k]), k)
	}
	// As versions 9 to 12 indexed them: the words, without their pool.
	exec(`INSERT INTO item_search (rowid, body)
SELECT i.id, poolq_search_words(i.name, i.email, i.phone_number) FROM items i
WHERE i.name IS NOT NULL OR i.email IS NOT NULL OR i.phone_number IS NOT NULL`)
	var old int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM item_search WHERE item_search MATCH '"ada"*'`).Scan(&old))
	require.Equal(t, 2, old, "version 12 kept both pools' words together")
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	search := func(id uuid.UUID, s string) (names []string) {
		t.Helper()
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			got, total, err := tx.Items(ctx, id, pool.ItemQuery{Search: s, Page: 1, PerPage: 10})
			require.Len(t, got, total)
			for _, it := range got {
				name := it.Contact.Name
				if name == "" {
					name = it.Contact.PhoneNumber
				}
				names = append(names, name)
			}
			return err
		}))
		return names
	}
	for _, tc := range []struct {
		search string
		p, q   []string
	}{
		{"ada", []string{"Ada Lovelace"}, []string{"Ada Byron"}},
		{"lovelace", []string{"Ada Lovelace"}, []string{"Grace Lovelace"}},
		{"ada lovelace", []string{"Ada Lovelace"}, nil},
		{"grace lovelace", nil, []string{"Grace Lovelace"}},
		{"grace", []string{"Grace Hopper"}, []string{"Grace Lovelace"}},
		{"example", []string{"Ada Lovelace", "Zoë Ñúñez"}, []string{"Ada Byron"}},
		{"ada@example.org", nil, []string{"Ada Byron"}},
		{"nunez", []string{"Zoë Ñúñez"}, nil},
		{"+1555", []string{"Ada Lovelace"}, []string{"+15559876543"}},
		{"15559", nil, []string{"+15559876543"}},
		{"hopper", []string{"Grace Hopper"}, nil},
		{"byron", nil, []string{"Ada Byron"}},
		{"velace", nil, nil},
	} {
		require.Equal(t, tc.p, search(p, tc.search), "search %q in the first pool", tc.search)
		require.Equal(t, tc.q, search(q, tc.search), "search %q in the second pool", tc.search)
	}
	// Each pool's terms only, none without a pool.
	terms := func(match string) (n int) {
		t.Helper()
		require.NoError(t, st.wc.QueryRowContext(ctx, `SELECT count(*) FROM item_search WHERE item_search MATCH ?`, match).Scan(&n))
		return n
	}
	require.Zero(t, terms(`"ada"*`))
	require.Equal(t, 1, terms(`"1/ada"*`))
	require.Equal(t, 1, terms(`"2/ada"*`))

	// Items added after the upgrade are indexed as the others, and the
	// delete trigger of 0004 deletes from the new table.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		got, _, err := tx.Items(ctx, q, pool.ItemQuery{Search: "byron", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Len(t, got, 1)
		if n, err := tx.DeleteItems(ctx, q, []int64{got[0].ID}); err != nil || n != 1 {
			return fmt.Errorf("delete item %d: %d deleted, %v", got[0].ID, n, err)
		}
		_, err = tx.InsertItems(ctx, p, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending,
			AddedAt: time.Unix(9, 0), Contact: pool.Contact{Name: "Ada Byron"}}})
		return err
	}))
	require.Equal(t, []string{"Ada Lovelace", "Ada Byron"}, search(p, "ada"))
	require.Empty(t, search(q, "ada"))
	require.Empty(t, search(q, "byron"))
	require.Zero(t, terms(`"2/ada"*`))
	_, err = st.wc.ExecContext(ctx, `INSERT INTO item_search (item_search) VALUES ('integrity-check')`)
	require.NoError(t, err)
}

// fileAtVersion creates the file path at the schema version given, with
// the package's first migrations only (so not parallel: it narrows them
// while it runs), through the plain "sqlite" driver (no poolq_search_words:
// as an older poolq's connections). exec runs a statement on it, failing
// the test on an error.
func fileAtVersion(t *testing.T, path string, version int) (*sql.DB, func(query string, args ...any)) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	return db, migrateOld(t, db, version)
}

// searchFileAtVersion is fileAtVersion through the Store's own driver
// (openDB), whose connections have poolq_search_words: from version 9 on,
// which needs it, as the poolq of then did.
func searchFileAtVersion(t *testing.T, path string, version int) (*sql.DB, func(query string, args ...any)) {
	t.Helper()
	db := openDB(path)
	return db, migrateOld(t, db, version)
}

// migrateOld applies the package's first version migrations to db (not
// parallel: it narrows them while it runs) and returns a function that
// runs a statement on it, failing t on an error.
func migrateOld(t *testing.T, db *sql.DB, version int) func(query string, args ...any) {
	t.Helper()
	ctx := context.Background()
	db.SetMaxOpenConns(1)
	all := history
	history = all[:version]
	err := migrate(ctx, db)
	history = all
	require.NoError(t, err)
	return func(query string, args ...any) {
		t.Helper()
		_, err := db.ExecContext(ctx, query, args...)
		require.NoError(t, err)
	}
}

// insertOldPool inserts a pool (its uuid the argument) into a file of an
// older version, as the code of then did.
const insertOldPool = `INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries,
    is_active, created_at, updated_at, search) VALUES (?, 'old pool', 'x', 'FIFO', 10, 3, 1, 0, 0, 'old pool')`

// TestMigrate_WaitsForTheLock: an Open that must migrate while another
// connection holds the file's write lock (another process migrating it,
// for as long as that takes) waits for the lock beyond its busy timeout,
// as long as its context allows; one whose context ends first fails with
// the context's error, the file as it was.
//
// Not parallel: fileAtVersion narrows the package's migrations.
func TestMigrate_WaitsForTheLock(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v8.db")
	db, _ := fileAtVersion(t, path, 8)
	require.NoError(t, db.Close())

	holder, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer holder.Close()
	hold := func() *sql.Conn {
		conn, err := holder.Conn(ctx)
		require.NoError(t, err)
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		require.NoError(t, err)
		return conn
	}
	release := func(conn *sql.Conn) {
		_, err := conn.ExecContext(ctx, "ROLLBACK")
		require.NoError(t, err)
		require.NoError(t, conn.Close())
	}

	conn := hold()
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = Open(short, path, Options{BusyTimeout: 50 * time.Millisecond})
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var v int
	require.NoError(t, conn.QueryRowContext(ctx, currentVersionSQL).Scan(&v))
	require.Equal(t, 8, v)

	opened := make(chan error, 1)
	go func() {
		st, err := Open(ctx, path, Options{BusyTimeout: 50 * time.Millisecond})
		if err == nil {
			err = st.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned while the lock was held: %v", err)
	case <-time.After(500 * time.Millisecond): // ten busy timeouts
	}
	release(conn)
	require.NoError(t, <-opened)
	require.NoError(t, holder.QueryRowContext(ctx, currentVersionSQL).Scan(&v))
	require.Equal(t, latestVersion(), v)
}
