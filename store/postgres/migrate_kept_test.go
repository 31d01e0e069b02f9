package postgres_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_UpgradesVersion12KeptCalls opens a schema left at version 12
// holding calls kept for campaigns of every status, as the poolq of then
// kept them (for finished campaigns too), beside 20,000 kept calls of the
// running campaign: those of the Completed and Archived campaigns are
// deleted, one kept in a call (lease_token) included; those of the others
// stay as they were, and dispatch under the running campaign's rule still
// counts them (its contact's max_total_calls reached, the item is failed,
// and the claim goes on to the next). The migration's DELETE seeks the
// finished campaigns' rows in kept_calls_contact, the table analyzed: no
// sequential scan nor a walk of the whole index, planned as Open plans it
// (the store's planner settings).
func TestOpen_UpgradesVersion12KeptCalls(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 12))
	conn := postgres.SchemaConn(t, url, schema)
	exec := func(sql string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	key := func(sql string, args ...any) int64 {
		t.Helper()
		var k int64
		require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&k), sql)
		return k
	}

	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) // inside the rule's window, 09:00–17:00 UTC
	x, y, w := uuid.New(), uuid.New(), uuid.New()
	p := newTestPool("version 12 pool")
	p.Type = pool.FIFO
	pk := key(`INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries, is_active, created_at,
    updated_at, search) VALUES ($1, $2, $3, 'FIFO', $4, $5, true, 0, 0, $2) RETURNING id`,
		p.UUID, p.Name, p.Description, p.MaxParallelItems, p.MaxRetries)
	exec(`INSERT INTO pool_counts (pool_id, pending) VALUES ($1, 2)`, pk)
	rk := key(`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, retry_interval_minutes, start_time,
    end_time, dnc_check, remove_on_opt_out, created_at, updated_at, search)
    VALUES ($1, 'old rule', 'call', 3, 2, 60, 540, 1020, false, false, 0, 0, 'old rule') RETURNING id`, uuid.New())
	// In Process (under the rule, governing the pool), Completed,
	// Archived, Paused, Draft.
	statuses := []campaign.Status{campaign.InProcess, campaign.Completed, campaign.Archived, campaign.Paused, campaign.Draft}
	ck := make([]int64, len(statuses))
	for i, st := range statuses {
		var rule *int64
		if st == campaign.InProcess {
			rule = &rk
		}
		ck[i] = key(`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
    VALUES ($1, 'old campaign', $2, $3, 'UTC', $4, 0, 'old campaign') RETURNING id`, uuid.New(), string(st), rule, i)
	}
	exec(`INSERT INTO campaign_pools (campaign_id, pool_id, seq, governs) VALUES ($1, $2, 1, true)`, ck[0], pk)
	for i, c := range []uuid.UUID{x, y} {
		exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token, ready)
    VALUES ($1, $2, 'Pending', 0, 0, 0, '', $3, 0, true)`, pk, c, i)
	}
	type keptRow struct{ campaign, item, attempts, token int64 }
	rows := []struct {
		keptRow
		contact uuid.UUID
	}{
		{keptRow{ck[0], 901, 2, 0}, x}, // x has had its 2 calls in the running campaign
		{keptRow{ck[1], 902, 1, 0}, x},
		{keptRow{ck[1], 903, 3, 0}, w},
		{keptRow{ck[2], 904, 1, 0}, x},
		{keptRow{ck[2], 905, 1, 7}, w}, // kept in a call: in kept_calls_lease too
		{keptRow{ck[3], 906, 1, 0}, w},
		{keptRow{ck[4], 907, 1, 0}, w},
	}
	for _, k := range rows {
		exec(`INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, calls_today, lease_token)
    VALUES ($1, $2, $3, $4, 0, $5)`, k.campaign, k.item, k.contact, k.attempts, k.token)
	}
	const bulk = 20_000 // the running campaign's: the large table the DELETE must not scan
	exec(`INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, calls_today)
    SELECT $1, 1000000 + g, gen_random_uuid(), 1, 0 FROM generate_series(1, $2) g`, ck[0], bulk)
	exec(`ANALYZE kept_calls`)
	exec(`ANALYZE campaigns`)
	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	e, err := queue.New(st, queue.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer e.Close()

	kept, err := conn.Query(ctx, `SELECT campaign_id, item_id, attempts, lease_token FROM kept_calls
    WHERE item_id < 1000000 ORDER BY item_id`)
	require.NoError(t, err)
	left, err := pgx.CollectRows(kept, func(r pgx.CollectableRow) (keptRow, error) {
		var k keptRow
		return k, r.Scan(&k.campaign, &k.item, &k.attempts, &k.token)
	})
	require.NoError(t, err)
	require.Equal(t, []keptRow{rows[0].keptRow, rows[5].keptRow, rows[6].keptRow}, left,
		"the finished campaigns' kept calls are gone, the others' as they were")
	require.Equal(t, int64(bulk), key(`SELECT count(*) FROM kept_calls WHERE item_id > 1000000 AND campaign_id = $1`, ck[0]))

	l, err := e.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, y, l.ContactUUID, "x's kept calls still count: its item is failed, and y claimed")
	items, err := e.Items(ctx, p.UUID, pool.ItemQuery{Status: pool.StatusFailed})
	require.NoError(t, err)
	require.Len(t, items.Data, 1)
	require.Equal(t, x, items.Data[0].ContactUUID)
	require.Equal(t, campaign.NoteContactCeiling, items.Data[0].Notes)

	// The migration's DELETE, planned as Open planned it (the table
	// analyzed before the upgrade).
	explained, err := postgres.PlannerConn(t, url, schema).Query(ctx, "EXPLAIN "+postgres.MigrationSQL(13))
	require.NoError(t, err)
	plan, err := pgx.CollectRows(explained, pgx.RowTo[string])
	require.NoError(t, err)
	text := strings.Join(plan, "\n")
	seek := regexp.MustCompile(`Index Scan using kept_calls_contact on kept_calls .*\n\s*Index Cond: \(campaign_id = `)
	require.Regexp(t, seek, text, "a seek per finished campaign, not a walk of the index:\n%s", text)
	require.NotContains(t, text, "Seq Scan on kept_calls", text)
}
