package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestMigrate_CampaignsByStatus upgrades a version 14 file holding
// campaigns of every status, some under a rule: the upgrade (0015)
// indexes them by status in creation order. The listings by status find
// the same campaigns in the same order as before, now through
// campaigns_status (their plans on the upgraded file, no scan, no sort),
// and a rule's and DeleteRule's check are as they were.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_CampaignsByStatus(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v14.db")
	db, exec := searchFileAtVersion(t, path, 14)
	used, unused := uuid.New(), uuid.New()
	for _, r := range []uuid.UUID{used, unused} {
		exec(`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, retry_interval_minutes, start_time,
    end_time, dnc_check, remove_on_opt_out, created_at, updated_at, search)
    VALUES (?, 'old rule', 'call', 3, 2, 60, 540, 1020, 0, 0, 0, 0, 'OLD RULE')`, r[:])
	}
	// Twelve campaigns (search holds the name case-folded, as foldCase
	// folds it), created in reverse order of their ids: Paused ones 2, 5,
	// 8, 11; every other one under the used rule (id 1).
	statuses := []campaign.Status{campaign.Draft, campaign.InProcess, campaign.Paused}
	ids := make([]uuid.UUID, 12)
	for i := range ids {
		ids[i] = uuid.New()
		var rule any
		if i%2 == 0 {
			rule = 1
		}
		exec(`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
    VALUES (?, 'old campaign', ?, ?, 'UTC', ?, 0, 'OLD CAMPAIGN')`, ids[i][:], string(statuses[i%3]), rule, 100-i)
	}
	var paused, ruled []uuid.UUID
	for i := len(ids) - 1; i >= 0; i-- { // creation order
		if statuses[i%3] == campaign.Paused {
			paused = append(paused, ids[i])
		}
		if i%2 == 0 {
			ruled = append(ruled, ids[i])
		}
	}
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	e, err := queue.New(st, queue.Options{Now: func() time.Time { return time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) }})
	require.NoError(t, err)
	defer e.Close()

	list := func(q campaign.Query) ([]uuid.UUID, int) {
		t.Helper()
		pg, err := e.Campaigns(ctx, q)
		require.NoError(t, err)
		var out []uuid.UUID
		for _, c := range pg.Data {
			out = append(out, c.UUID)
		}
		return out, pg.Total
	}
	got, n := list(campaign.Query{Status: campaign.Paused})
	require.Equal(t, paused, got)
	require.Equal(t, 4, n)
	got, n = list(campaign.Query{Status: campaign.Paused, Search: "old", Page: 2, PerPage: 2})
	require.Equal(t, paused[2:], got, "the second page of two")
	require.Equal(t, 4, n)
	got, n = list(campaign.Query{RuleUUID: &used})
	require.Equal(t, ruled, got)
	require.Equal(t, 6, n)
	require.NoError(t, e.DeleteRule(ctx, unused))
	require.ErrorIs(t, e.DeleteRule(ctx, used), campaign.ErrConflict)

	// The index, as Open left it.
	count, page, args := campaignsSQL(campaign.Query{Status: campaign.Paused})
	for _, s := range []struct {
		sql  string
		args []any
		want string
	}{
		{count, args, "SEARCH c USING COVERING INDEX campaigns_status (status=?)"},
		{page, append(args, 15, 0), "SEARCH c USING INDEX campaigns_status (status=?)"},
	} {
		explained, err := st.wc.QueryContext(ctx, "EXPLAIN QUERY PLAN "+s.sql, s.args...)
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
		require.Contains(t, plan, s.want)
		for _, line := range plan {
			require.NotContains(t, line, "TEMP B-TREE", "%q", plan)
			require.NotEqual(t, "SCAN c", line, "%q", plan)
		}
	}
}
