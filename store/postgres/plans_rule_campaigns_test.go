package postgres_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
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

// TestPlans_RuleCampaigns: UpdateRule reads the pools of its rule's In
// Process and Paused campaigns that hold a lease that ended
// (lockRulePools, through RulePools, in the write transaction that holds
// the rule's lock). That read must seek the rule's campaigns, not walk
// every campaign of the store. Here 3,000 campaigns, each with a pool, are under another rule, a
// few under r.
//
// It listed them with Campaigns (by rule and status, ORDER BY created_at,
// uuid), which walked campaigns_created (the ORDER BY's index) across
// every campaign of the store, filtering on rule_id and status:
// campaigns_rule gives the rule's campaigns, not in that order, and the
// store's connections set enable_sort off, analyzed or not. An UpdateRule
// thus read every campaign twice (In Process, Paused), more with pages,
// however few the rule had. RulePools has no ORDER BY. (A listing of
// campaigns by rule, the REST API's and DeleteRule's, walked
// campaigns_created too until 0014 gave campaigns_rule the listing's
// order: checkListingPlans.)
func TestPlans_RuleCampaigns(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
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
		pools := make([]uuid.UUID, 100)
		for i := range pools {
			p := newTestPool("attached")
			if err := tx.InsertPool(ctx, p); err != nil {
				return err
			}
			pools[i] = p.UUID
		}
		// Each campaign with a pool: 3,000 attachments.
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
			if _, err := tx.AttachPool(ctx, c.UUID, pools[i%len(pools)]); err != nil {
				return err
			}
		}
		return nil
	}))
	check := func(when string) {
		plan, err := postgres.Plan(ctx, st, postgres.RulePoolsSQL, "'"+r.UUID.String()+"'",
			"'"+string(campaign.InProcess)+"'", "'"+string(campaign.Paused)+"'", "0")
		require.NoError(t, err)
		require.Contains(t, plan, "campaigns_rule", "%s: a seek of the rule's campaigns:\n%s", when, plan)
		require.Empty(t, walks(plan), "%s: a walk of every campaign, not a seek of the rule's:\n%s", when, plan)
		require.NotContains(t, plan, "Seq Scan", "%s:\n%s", when, plan)
	}
	check("not analyzed")

	conn := postgres.SchemaConn(t, url, st.Schema())
	_, err = conn.Exec(ctx, "ANALYZE campaigns, rules, campaign_pools")
	require.NoError(t, err)
	check("analyzed")
}
