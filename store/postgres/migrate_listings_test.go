package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_UpgradesVersion13CampaignListings opens a schema left at
// version 13 holding campaigns of every status, some under a rule: the
// upgrade (0014) indexes them by status and a rule's in creation order.
// The listings find the same campaigns in the same order as before, now
// through the new indexes (their plans on the upgraded schema); an unused
// rule is deleted, a used one is refused.
func TestOpen_UpgradesVersion13CampaignListings(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 13))
	conn := postgres.SchemaConn(t, url, schema)
	key := func(sql string, args ...any) int64 {
		t.Helper()
		var k int64
		require.NoError(t, conn.QueryRow(ctx, sql, args...).Scan(&k), sql)
		return k
	}
	newRule := func(name string) (uuid.UUID, int64) {
		id := uuid.New()
		return id, key(`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, start_time,
    dnc_check, remove_on_opt_out, created_at, updated_at, search)
    VALUES ($1, $2, 'call', 3, 2, 540, false, false, 0, 0, $2) RETURNING id`, id, name)
	}
	used, usedKey := newRule("used rule")
	unused, _ := newRule("unused rule")
	// Twelve campaigns (search holds the name case-folded, as foldCase
	// folds it), created in reverse order of their ids: Paused ones
	// 2, 5, 8, 11; every other one under the used rule.
	statuses := []campaign.Status{campaign.Draft, campaign.InProcess, campaign.Paused}
	ids := make([]uuid.UUID, 12)
	var paused, ruled []uuid.UUID
	for i := range ids {
		ids[i] = uuid.New()
		var rule *int64
		if i%2 == 0 {
			rule = &usedKey
		}
		st := statuses[i%3]
		key(`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
    VALUES ($1, 'old campaign', $2, $3, 'UTC', $4, 0, 'OLD CAMPAIGN') RETURNING id`, ids[i], string(st), rule, 100-i)
	}
	for i := len(ids) - 1; i >= 0; i-- { // creation order
		if statuses[i%3] == campaign.Paused {
			paused = append(paused, ids[i])
		}
		if i%2 == 0 {
			ruled = append(ruled, ids[i])
		}
	}

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
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

	// The indexes, as Open left them.
	rule := uuid.New()
	_, rulePage, _ := postgres.CampaignsSQL(campaign.Query{RuleUUID: &rule})
	statusCount, statusPage, _ := postgres.CampaignsSQL(campaign.Query{Status: campaign.Paused})
	for _, s := range []struct {
		sql, index string
		args       []string
	}{
		{rulePage, "Index Scan using campaigns_rule", []string{"'" + rule.String() + "'", "1", "0"}},
		{statusCount, "using campaigns_status", []string{"'Paused'"}},
		{statusPage, "Index Scan using campaigns_status", []string{"'Paused'", "15", "0"}},
	} {
		plan, err := postgres.Plan(ctx, st, s.sql, s.args...)
		require.NoError(t, err)
		require.Contains(t, plan, s.index, plan)
		require.Empty(t, walks(plan), plan)
		require.NotContains(t, plan, "Sort", plan)
	}
}
