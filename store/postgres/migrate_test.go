package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_UpgradesVersion1 opens a schema left at version 1 (before items
// had contact fields) holding a pool and its items: Open brings it to the
// latest version in place, the items keep everything they had and have no
// contact fields, and the items added afterwards have theirs, and are
// found by a search.
func TestOpen_UpgradesVersion1(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 1))

	conn := postgres.SchemaConn(t, url, schema)
	var version int
	require.NoError(t, conn.QueryRow(ctx, "SELECT max(version) FROM schema_version").Scan(&version))
	require.Equal(t, 1, version)

	// A pool with two Pending items and a Completed one, as version 1
	// stored them.
	p := newTestPool("from version 1")
	p.CreatedAt = time.Unix(0, p.CreatedAt.UnixNano()).UTC()
	p.UpdatedAt = p.CreatedAt
	var k int64
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id`,
		p.UUID, p.Name, p.Description, string(p.Type), p.MaxParallelItems, p.MaxRetries, p.IsActive,
		p.CreatedAt.UnixNano(), "from version 1\ntest").Scan(&k))
	_, err := conn.Exec(ctx, `INSERT INTO pool_counts (pool_id, pending, completed) VALUES ($1, 2, 1)`, k)
	require.NoError(t, err)
	old := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	added := p.CreatedAt.Add(time.Second)
	for i, c := range old {
		status, ready, completed := "Pending", true, (*int64)(nil)
		if i == 2 {
			n := added.Add(time.Minute).UnixNano()
			status, ready, completed = "Completed", false, &n
		}
		_, err = conn.Exec(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    completed_at, notes, added_at, payload, token, ready) VALUES ($1, $2, $3, $4, 0, 0, $5, '', $6, $7, 0, $8)`,
			k, c, status, i, completed, added.UnixNano(), []byte(`{"n":1}`), ready)
		require.NoError(t, err)
	}

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	var versions []int
	rows, err := conn.Query(ctx, "SELECT version FROM schema_version ORDER BY version")
	require.NoError(t, err)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	want := make([]int, postgres.LatestVersion())
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, versions, "every migration recorded once, in order")

	var items []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, err := tx.Pool(ctx, p.UUID)
		if err != nil {
			return err
		}
		require.Equal(t, 3, got.ContactsCount)
		items, _, err = tx.Items(ctx, p.UUID, pool.ItemQuery{Page: 1, PerPage: 10})
		return err
	}))
	require.Len(t, items, 3)
	for i, it := range items {
		require.Equal(t, old[i], it.ContactUUID)
		require.Zero(t, it.Contact, "an item of version 1 has no contact fields")
		require.JSONEq(t, `{"n":1}`, string(it.Payload))
	}
	require.Equal(t, pool.StatusCompleted, items[2].Status)

	// New items have contact fields; an old contact added again keeps
	// none; a search finds the new ones only.
	ada := pool.Contact{Name: "Ada Lovelace", Email: "ada@example.com", PhoneNumber: "+15551234567", TimeZone: "Europe/London"}
	fresh := []pool.Item{
		{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: added, Contact: ada},
		{ContactUUID: old[0], Status: pool.StatusPending, AddedAt: added, Contact: pool.Contact{Name: "Old Contact"}},
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		n, err := tx.InsertItems(ctx, p.UUID, fresh)
		require.Equal(t, 1, n)
		return err
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, total, err := tx.Items(ctx, p.UUID, pool.ItemQuery{Search: "lovelace", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		require.Equal(t, ada, got[0].Contact)
		require.Greater(t, got[0].ID, items[2].ID)
		got, total, err = tx.Items(ctx, p.UUID, pool.ItemQuery{Search: "old", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Zero(t, total)
		require.Empty(t, got)
		it, err := tx.Item(ctx, p.UUID, old[0])
		require.NoError(t, err)
		require.Zero(t, it.Contact)
		return nil
	}))
}

// TestOpen_UpgradesVersion3 opens a schema left at version 3 (campaigns,
// no calling rules) holding items in every kind of state: Open brings it
// to the latest version in place, the items read back as they were, with
// no count of a calling day (CallAt, CallsToday, CallToken zero), from
// every reader; the counts carry over; the
// new tables (do-not-call list, opt-outs, escalations) and columns are
// usable at once.
func TestOpen_UpgradesVersion3(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 3))

	conn := postgres.SchemaConn(t, url, schema)
	var version int
	require.NoError(t, conn.QueryRow(ctx, "SELECT max(version) FROM schema_version").Scan(&version))
	require.Equal(t, 3, version)

	// Two pools, as version 3 stored them: p holds a Pending item, a
	// Retrying one (due at 100), a Processing one (lease ends at 50) and a
	// Completed one; q the first one's contact, Pending.
	var keys []int64
	var ps []uuid.UUID
	for _, name := range []string{"from version 3", "another"} {
		p := newTestPool(name)
		var k int64
		require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $2)
    RETURNING id`, p.UUID, p.Name, p.Description, "FIFO", p.MaxParallelItems, p.MaxRetries, p.IsActive,
			p.CreatedAt.UnixNano()).Scan(&k))
		keys, ps = append(keys, k), append(ps, p.UUID)
	}
	p, q := ps[0], ps[1]
	_, err := conn.Exec(ctx, `INSERT INTO pool_counts (pool_id, pending, retrying, processing, completed)
    VALUES ($1, 1, 1, 1, 1), ($2, 1, 0, 0, 0)`, keys[0], keys[1])
	require.NoError(t, err)
	shared := uuid.New()
	contacts := []uuid.UUID{shared, uuid.New(), uuid.New(), uuid.New()}
	for _, row := range []struct {
		k                  int64
		contact            uuid.UUID
		status             string
		attempts           int
		started, completed *int64
		next, lease        *int64
		notes              string
		added, token       int64
		ready              bool
	}{
		{k: keys[0], contact: shared, status: "Pending", added: 1, ready: true},
		{k: keys[0], contact: contacts[1], status: "Retrying", attempts: 1, started: ptr[int64](10), next: ptr[int64](100),
			notes: "busy", added: 2, token: 1},
		{k: keys[0], contact: contacts[2], status: "Processing", attempts: 1, started: ptr[int64](20), lease: ptr[int64](50),
			added: 3, token: 1},
		{k: keys[0], contact: contacts[3], status: "Completed", attempts: 1, started: ptr[int64](5), completed: ptr[int64](6),
			notes: "answered", added: 4, token: 1},
		{k: keys[1], contact: shared, status: "Pending", added: 5, ready: true},
	} {
		_, err = conn.Exec(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    started_at, completed_at, next_retry_at, notes, added_at, token, lease_expires_at, ready)
    VALUES ($1, $2, $3, 0, $4, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
			row.k, row.contact, row.status, row.attempts, row.started, row.completed, row.next, row.notes, row.added,
			row.token, row.lease, row.ready)
		require.NoError(t, err)
	}

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	rows, err := conn.Query(ctx, "SELECT version FROM schema_version ORDER BY version")
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	want := make([]int, postgres.LatestVersion())
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, versions, "every migration recorded once, in order")

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
		var err error
		old, total, err = tx.Items(ctx, p, pool.ItemQuery{Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 4, total)
		zero("Items", old...)
		require.Equal(t, []pool.Status{pool.StatusPending, pool.StatusRetrying, pool.StatusProcessing,
			pool.StatusCompleted}, []pool.Status{old[0].Status, old[1].Status, old[2].Status, old[3].Status})
		require.Equal(t, "busy", old[1].Notes)
		require.Equal(t, time.Unix(0, 100).UTC(), *old[1].NextRetryAt)
		require.Equal(t, time.Unix(0, 50).UTC(), old[2].LeaseExpiresAt)
		for _, it := range old {
			got, err := tx.ItemByID(ctx, it.ID)
			require.NoError(t, err)
			require.Equal(t, it, got, "ItemByID")
		}
		mine, err := tx.ContactItems(ctx, shared)
		require.NoError(t, err)
		require.Len(t, mine, 2)
		require.Equal(t, old[0], mine[0], "ContactItems, p first")
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

	// The new columns and tables take writes at once. The function
	// returns its errors rather than assert them: the store may run it
	// again (a lock statement slow under load counts as a wait, see
	// waitedAfterLock), and a restart is returned to it as an error.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		mine, err := tx.ContactItems(ctx, shared)
		if err != nil {
			return err
		}
		require.Len(t, mine, 2, "ContactItems in a write transaction")
		zero("ContactItems", mine...)
		due, err := tx.Due(ctx, p, pool.FIFO, time.Unix(0, 100), 10)
		if err != nil {
			return err
		}
		require.Equal(t, old[:2], due, "Due: the Pending item and the Retrying one come due")

		claimed := due[0]
		claimed.Status, claimed.Attempts, claimed.Token = pool.StatusProcessing, 1, 1
		claimed.LeaseExpiresAt = time.Unix(60, 0).UTC()
		claimed.CallAt, claimed.CallsToday, claimed.CallToken = time.Unix(30, 0).UTC(), 1, 1
		if err := tx.UpdateItem(ctx, pool.StatusPending, claimed); err != nil {
			return err
		}
		got, err := tx.ItemByID(ctx, claimed.ID)
		if err != nil {
			return err
		}
		require.Equal(t, claimed, got)
		retried := due[1]
		retried.CallAt, retried.CallsToday, retried.CallToken = time.Unix(20, 0).UTC(), 2, 1
		if err := tx.UpdateItems(ctx, store.Change{From: pool.StatusRetrying, Item: retried}); err != nil {
			return err
		}
		got, err = tx.ItemByID(ctx, retried.ID)
		if err != nil {
			return err
		}
		require.Equal(t, retried, got)

		n, err := tx.AddDNC(ctx, time.Unix(0, 7), contacts[1], shared)
		if err != nil {
			return err // the list's lock, after the pools': a slow statement counts as a wait, to run again
		}
		require.Equal(t, 2, n)
		on, err := tx.OnDNC(ctx, contacts...)
		if err != nil {
			return err
		}
		require.Equal(t, map[uuid.UUID]bool{contacts[1]: true, shared: true}, on)
		added, err := tx.OptOut(ctx, contacts[3], time.Unix(0, 8))
		if err != nil {
			return err
		}
		require.True(t, added)
		e, added, err := tx.InsertEscalation(ctx, campaign.Escalation{PoolUUID: p, ContactUUID: contacts[1],
			ItemID: old[1].ID, CampaignUUID: uuid.New(), RuleUUID: uuid.New(), FailedAttempts: 1, At: time.Unix(0, 9).UTC()})
		if err != nil {
			return err
		}
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

func ptr[T any](v T) *T { return &v }

// TestOpen_UpgradesVersion5 opens a schema left at version 5, whose items
// count their calling day by its date (call_day): a count becomes the noon
// (UTC) of its date, the instant of its latest call, which falls on that
// date in every zone within 12 hours of UTC; an item without a count has
// none; no counted dispatch is known (CallToken 0).
func TestOpen_UpgradesVersion5(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 5))
	conn := postgres.SchemaConn(t, url, schema)
	p := newTestPool("from version 5")
	var k int64
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $2)
    RETURNING id`, p.UUID, p.Name, p.Description, "FIFO", p.MaxParallelItems, p.MaxRetries, p.IsActive,
		p.CreatedAt.UnixNano()).Scan(&k))
	_, err := conn.Exec(ctx, `INSERT INTO pool_counts (pool_id, pending, processing) VALUES ($1, 1, 1)`, k)
	require.NoError(t, err)
	// Day 20162 is 2025-03-15: two calls counted on it, the second in
	// flight; and an item never called under a rule.
	_, err = conn.Exec(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    started_at, notes, added_at, token, lease_expires_at, ready, call_day, calls_today)
    VALUES ($1, $2, 'Processing', 0, 2, 1, 20, '', 3, 2, 50, false, 20162, 2)`, k, uuid.New())
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready) VALUES ($1, $2, 'Pending', 0, 0, 0, '', 5, 0, true)`, k, uuid.New())
	require.NoError(t, err)

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	var got []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, _, err = tx.Items(ctx, p.UUID, pool.ItemQuery{Page: 1, PerPage: 10})
		return err
	}))
	require.Len(t, got, 2)
	require.Equal(t, time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC), got[0].CallAt)
	require.Equal(t, 2, got[0].CallsToday)
	require.Zero(t, got[0].CallToken)
	require.Zero(t, got[1].CallAt)
	require.Zero(t, got[1].CallsToday)
}

// TestOpen_UpgradesVersion9 opens a schema left at version 9, whose items
// and kept calls count their latest calling day only: every item and kept
// call keeps its latest day's count and has no previous day's (NULL, 0),
// the new counts are stored from then on, and prev_calls_today keeps its
// CHECK on the upgraded tables.
func TestOpen_UpgradesVersion9(t *testing.T) {
	testUpgradeAddsCallDay(t, callDayUpgrade{
		from: 9,
		item: `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready, call_at, calls_today, call_token)
    VALUES ($1, $2, 'Completed', 0, 2, 1, '', 3, 2, false, 7000000000, 2, 2)`,
		itemDays: []dayCount{{7, 2}},
		kept: `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today)
    VALUES ($1, 99, $2, 1, 5000000000, 1)`,
		keptDays: []dayCount{{5, 1}},
	})
}

// TestOpen_UpgradesVersion10 opens a schema left at version 10, whose
// items and kept calls count their latest two calling days: every item
// and kept call keeps those counts and has no older day's (NULL, 0), the
// new counts are stored from then on, and older_calls_today keeps its
// CHECK on the upgraded tables.
func TestOpen_UpgradesVersion10(t *testing.T) {
	testUpgradeAddsCallDay(t, callDayUpgrade{
		from: 10,
		item: `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready, call_at, calls_today, call_token, prev_call_at, prev_calls_today)
    VALUES ($1, $2, 'Completed', 0, 4, 1, '', 3, 2, false, 7000000000, 2, 2, 6000000000, 2)`,
		itemDays: []dayCount{{7, 2}, {6, 2}},
		kept: `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today,
    prev_call_at, prev_calls_today) VALUES ($1, 99, $2, 2, 5000000000, 1, 4000000000, 1)`,
		keptDays: []dayCount{{5, 1}, {4, 1}},
	})
}

// callDayUpgrade is a schema version whose items and kept calls count
// fewer calling days than the next version's: the migration after it adds
// the count of callDays[len(itemDays)].
type callDayUpgrade struct {
	from int // the version upgraded from
	// item inserts a Completed item ($1 its pool's id, $2 its contact)
	// counting itemDays; kept inserts a kept call ($1 its campaign's id,
	// $2 its contact) counting keptDays.
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

// testUpgradeAddsCallDay opens a schema left at version u.from holding an
// item and a kept call of a removed contact: after the upgrade each keeps
// the counts it had and has none of the added day (NULL, 0), the added
// day's count is stored from then on and kept with the item, and its
// column keeps its CHECK on the upgraded tables.
func testUpgradeAddsCallDay(t *testing.T, u callDayUpgrade) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, u.from))
	conn := postgres.SchemaConn(t, url, schema)
	p := newTestPool(fmt.Sprintf("from version %d", u.from))
	var pk, ck int64
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $2)
    RETURNING id`, p.UUID, p.Name, p.Description, "FIFO", p.MaxParallelItems, p.MaxRetries, p.IsActive,
		p.CreatedAt.UnixNano()).Scan(&pk))
	_, err := conn.Exec(ctx, `INSERT INTO pool_counts (pool_id, completed) VALUES ($1, 1)`, pk)
	require.NoError(t, err)
	k, contact, removed := uuid.New(), uuid.New(), uuid.New()
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO campaigns (uuid, name, status, timezone, created_at, updated_at,
    search) VALUES ($1, 'old campaign', 'Draft', 'UTC', 0, 0, 'old campaign') RETURNING id`, k).Scan(&ck))
	_, err = conn.Exec(ctx, `INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES ($1, $2, 1)`, ck, pk)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, u.item, pk, contact)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, u.kept, ck, removed)
	require.NoError(t, err)

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	var it pool.Item
	var others []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		if it, err = tx.Item(ctx, p.UUID, contact); err != nil {
			return err
		}
		others, err = tx.CampaignItems(ctx, k, p.UUID, removed)
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
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.KeepCalls(ctx, p.UUID, contact) }))
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
	_, err = conn.Exec(ctx, `UPDATE kept_calls SET `+added.column+` = -1`)
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
