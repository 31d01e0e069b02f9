package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestMigrate_FinishedKeptCalls upgrades a version 13 file holding calls
// kept for campaigns of every status, as the poolq of then kept them (for
// finished campaigns too): those of the Completed and Archived campaigns
// are deleted, one kept in a call (lease_token) included; those of the
// others stay as they were, and dispatch under the running campaign's rule
// still counts them (its contact's max_total_calls reached, the item is
// failed, and the claim goes on to the next). The migration's DELETE
// searches kept_calls_contact, never scans kept_calls.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_FinishedKeptCalls(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v13.db")
	db, exec := searchFileAtVersion(t, path, 13)
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) // inside the rule's window, 09:00–17:00 UTC
	p, r, x, y, w := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	exec(insertOldPool, p[:])
	exec(`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, retry_interval_minutes, start_time,
    end_time, dnc_check, remove_on_opt_out, created_at, updated_at, search)
    VALUES (?, 'old rule', 'call', 3, 2, 60, 540, 1020, 0, 0, 0, 0, 'old rule')`, r[:])
	// Campaigns 1 … 5: In Process (under the rule, governing the pool),
	// Completed, Archived, Paused, Draft.
	statuses := []campaign.Status{campaign.InProcess, campaign.Completed, campaign.Archived, campaign.Paused, campaign.Draft}
	for i, st := range statuses {
		var rule any
		if st == campaign.InProcess {
			rule = 1
		}
		k := uuid.New()
		exec(`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
    VALUES (?, 'old campaign', ?, ?, 'UTC', ?, 0, 'old campaign')`, k[:], string(st), rule, i)
	}
	exec(`INSERT INTO campaign_pools (campaign_id, pool_id, seq, governs) VALUES (1, 1, 1, 1)`)
	for i, c := range []uuid.UUID{x, y} {
		exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, notes, added_at, token, ready)
    VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1)`, c[:], i)
	}
	exec(`UPDATE pool_counts SET n = 2 WHERE pool_id = 1 AND status = 'Pending'`)
	type keptRow struct{ campaign, item, attempts, token int64 }
	rows := []struct {
		keptRow
		contact uuid.UUID
	}{
		{keptRow{1, 901, 2, 0}, x}, // x has had its 2 calls in the running campaign
		{keptRow{2, 902, 1, 0}, x},
		{keptRow{2, 903, 3, 0}, w},
		{keptRow{3, 904, 1, 0}, x},
		{keptRow{3, 905, 1, 7}, w}, // kept in a call: in kept_calls_lease too
		{keptRow{4, 906, 1, 0}, w},
		{keptRow{5, 907, 1, 0}, w},
	}
	for _, k := range rows {
		exec(`INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, calls_today, lease_token)
    VALUES (?, ?, ?, ?, 0, ?)`, k.campaign, k.item, k.contact[:], k.attempts, k.token)
	}
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	e, err := queue.New(st, queue.Options{Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer e.Close()

	left, err := st.wc.QueryContext(ctx, `SELECT campaign_id, item_id, attempts, lease_token FROM kept_calls ORDER BY item_id`)
	require.NoError(t, err)
	var got []keptRow
	for left.Next() {
		var k keptRow
		require.NoError(t, left.Scan(&k.campaign, &k.item, &k.attempts, &k.token))
		got = append(got, k)
	}
	require.NoError(t, left.Err())
	require.NoError(t, left.Close())
	require.Equal(t, []keptRow{rows[0].keptRow, rows[5].keptRow, rows[6].keptRow}, got,
		"the finished campaigns' kept calls are gone, the others' as they were")

	l, err := e.TryDequeue(ctx, p)
	require.NoError(t, err)
	require.Equal(t, y, l.ContactUUID, "x's kept calls still count: its item is failed, and y claimed")
	items, err := e.Items(ctx, p, pool.ItemQuery{Status: pool.StatusFailed})
	require.NoError(t, err)
	require.Len(t, items.Data, 1)
	require.Equal(t, x, items.Data[0].ContactUUID)
	require.Equal(t, campaign.NoteContactCeiling, items.Data[0].Notes)

	// The migration's DELETE, planned on the upgraded file.
	explained, err := st.wc.QueryContext(ctx, "EXPLAIN QUERY PLAN "+history[13].SQL)
	require.NoError(t, err)
	var plan []string
	for explained.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, explained.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, explained.Err())
	require.NoError(t, explained.Close())
	require.True(t, slices.ContainsFunc(plan, func(line string) bool {
		return strings.HasPrefix(line, "SEARCH kept_calls USING ") && strings.HasSuffix(line, "INDEX kept_calls_contact (campaign_id=?)")
	}), "a seek per campaign: %q", plan)
	for _, line := range plan {
		require.False(t, strings.HasPrefix(line, "SCAN kept_calls"), "%q", plan)
	}
}
