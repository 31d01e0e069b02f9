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
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// walks returns the index scans of plan that have no Index Cond: walks of
// a whole index, whatever the statement's WHERE.
func walks(plan string) []string {
	scan := regexp.MustCompile(`Index (Only )?Scan`)
	lines := strings.Split(plan, "\n")
	var out []string
	for i, l := range lines {
		if !scan.MatchString(l) {
			continue
		}
		depth := len(l) - len(strings.TrimLeft(l, " "))
		cond := false
		for _, m := range lines[i+1:] {
			if strings.Contains(m, "->") || len(m)-len(strings.TrimLeft(m, " ")) <= depth {
				break // the next node
			}
			cond = cond || strings.Contains(m, "Index Cond")
		}
		if !cond {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// TestPlans_RuleCampaigns: UpdateRule lists its rule's In Process and
// Paused campaigns (lockRulePools: Campaigns by rule and status, in the
// write transaction that holds the rule's lock, which every start, resume,
// assignment and attach of the rule's campaigns waits for), and DeleteRule
// asks whether any campaign has the rule. Those reads must seek the rule's
// campaigns, not walk every campaign of the store. Here 3,000 campaigns
// are under another rule, a few under r.
//
// They walk campaigns_created (the ORDER BY's index) across every campaign
// of the store, filtering on rule_id and status: campaigns_rule gives the
// rule's campaigns, not in that order, and the store's connections set
// enable_sort off, analyzed or not (the count, with no ORDER BY, seeks
// campaigns_rule). An UpdateRule thus reads every campaign twice (In
// Process, Paused), more with pages, however few the rule has: the cost
// 7c8a800 took out of the rule's campaigns (r-scale's F5) is still in the
// store's, on PostgreSQL.
func TestPlans_RuleCampaigns(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	now := time.Now().UTC()
	other, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "other rule"}, now)
	require.NoError(t, err)
	r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "rule r"}, now)
	require.NoError(t, err)
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertRule(ctx, other); err != nil {
			return err
		}
		if err := tx.InsertRule(ctx, r); err != nil {
			return err
		}
		for i := range 3000 {
			rule, status := &other.UUID, campaign.Completed
			if i%500 == 499 {
				rule, status = &r.UUID, campaign.InProcess
			}
			c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: status, RuleUUID: rule, TimeZone: "UTC",
				CreatedAt: now.Add(time.Duration(i) * time.Millisecond), UpdatedAt: now}
			if err := tx.InsertCampaign(ctx, c); err != nil {
				return err
			}
		}
		return nil
	}))
	queries := map[string]campaign.Query{
		"UpdateRule's In Process": {RuleUUID: &r.UUID, Status: campaign.InProcess, Page: 1, PerPage: pool.MaxPerPage},
		"UpdateRule's Paused":     {RuleUUID: &r.UUID, Status: campaign.Paused, Page: 1, PerPage: pool.MaxPerPage},
		"DeleteRule's":            {RuleUUID: &r.UUID, Page: 1, PerPage: 1},
	}
	check := func(when string) {
		for name, q := range queries {
			stmts, err := postgres.CampaignsStatements(ctx, st, q)
			require.NoError(t, err, name)
			require.NotEmpty(t, stmts, name)
			for _, s := range stmts {
				plan, err := postgres.Plan(ctx, st, s.SQL, s.Args...)
				require.NoError(t, err, "%s: %s", name, s.SQL)
				require.Empty(t, walks(plan), "%s listing, %s: a walk of every campaign, not a seek of the rule's:\n%s", name, when, plan)
			}
		}
	}
	check("not analyzed")

	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = st.Schema()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "ANALYZE campaigns, rules, campaign_pools")
	require.NoError(t, err)
	check("analyzed")
}
