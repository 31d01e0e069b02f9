package sqlite_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// writePlanCases are the statements of Add (its inserts, the search
// index of the items just added, the counts), of the contact lists (DNC
// and opt-out inserts and reads), of a campaign's pools and a rule's
// campaigns' pools, of attaching and detaching (the calls kept for a
// campaign) and of the kept calls' reads. Pool 1 is the big pool.
var writePlanCases = []planCase{
	{"InsertItems", sqlite.InsertItemsSQL, make([]any, 54), nil},
	{"InsertNewItems", sqlite.InsertNewItemsSQL, make([]any, 10), nil},
	{"InsertNewContactItems", sqlite.InsertNewContactItemsSQL, make([]any, 18), nil},
	{"IndexContacts", sqlite.IndexContactsSQL, []any{2, 0}, []string{"items_pool"}},
	{"UpdateCounts", sqlite.UpdateCountsSQL, []any{1, "Pending", -1, 1, "Processing", 1}, []string{"PRIMARY KEY"}},
	{"AddDNC", sqlite.AddDNCSQL, []any{contactJSON, 1}, nil},
	{"RemoveDNC", sqlite.RemoveDNCSQL, []any{contactJSON}, []string{"PRIMARY KEY"}},
	{"OptOut", sqlite.OptOutSQL, []any{contact16, 1}, nil},
	{"OptedOut", sqlite.OptedOutSQL, []any{contactJSON}, []string{"PRIMARY KEY"}},
	{"Listed", sqlite.ListedSQL, []any{contactJSON}, []string{"PRIMARY KEY", "PRIMARY KEY"}},
	{"ListedOne", sqlite.ListedOneSQL, []any{contact16}, []string{"PRIMARY KEY", "PRIMARY KEY"}},
	{"CampaignPools", sqlite.CampaignPoolsSQL, []any{1}, []string{"campaign_pools_seq", "INTEGER PRIMARY KEY"}},
	// UpdateRule's, under the write lock: the rule's campaigns, not
	// every pool's attachments.
	{"RulePools", sqlite.RulePoolsSQL, []any{contact16, "In Process", "Paused", 0},
		[]string{"campaigns_rule", "sqlite_autoindex_rules_1", "campaign_pools_seq", "INTEGER PRIMARY KEY", "items_lease"}},
	{"AttachPool", sqlite.AttachPoolSQL, []any{1, 2, "In Process", "Paused"}, []string{"campaign_pools_seq", "INTEGER PRIMARY KEY"}},
	{"Governs", sqlite.GovernsSQL, []any{1, contact16}, []string{"PRIMARY KEY", "sqlite_autoindex_campaigns_1"}},
	// DetachPool's: the items of the pool detached, not every item.
	// (SQLite plans with the values bound: a pool that holds most of
	// the items may be read in a scan of the table.)
	{"KeepDetachedCalls", sqlite.KeepDetachedCallsSQL, []any{1, 2, "Completed", "Archived"},
		[]string{"INTEGER PRIMARY KEY", "items_pool_status"}},
	{"DropKeptCalls", sqlite.DropKeptCallsSQL, []any{1, 2}, []string{"kept_calls_contact", "kept_calls_contact", "items_pool"}},
	{"KeepPoolCalls", sqlite.KeepPoolCallsSQL, []any{contact16, "Completed", "Archived"},
		[]string{"sqlite_autoindex_pools_1", "campaign_pools_pool", "INTEGER PRIMARY KEY", "items_pool_status"}},
	{"ReleaseKeptCall", sqlite.ReleaseKeptCallSQL, []any{1, 1, 1}, []string{"kept_calls_lease"}},
	{"KeepingCampaigns", sqlite.KeepingCampaignsSQL, []any{1, 1}, []string{"kept_calls_lease", "INTEGER PRIMARY KEY"}},
	{"CampaignCalls", sqlite.CampaignCallsSQL, []any{contact16, 1},
		[]string{"sqlite_autoindex_campaigns_1", "campaign_pools_seq", "INTEGER PRIMARY KEY", "items_lease"}},
	{"CampaignItemsOne", sqlite.CampaignItemsOneSQL, []any{contact16, contact16, contact16},
		[]string{"sqlite_autoindex_campaigns_1", "campaign_pools_seq", "INTEGER PRIMARY KEY", "sqlite_autoindex_items_1",
			"sqlite_autoindex_campaigns_1", "kept_calls_contact", "INTEGER PRIMARY KEY"}},
	{"InsertEscalation", sqlite.InsertEscalationSQL, make([]any, 9), []string{"sqlite_autoindex_escalations_1"}},
}

// writePlanData are the rows TestSchema_WritePlansAnalyzed adds to
// skewedStore's: 50 rules, 3,000 campaigns, 2,997 of them under one of
// them, a call of each of the big pool's 50,000 items kept for 150
// campaigns, and every contact of the big pool on the DNC list, one in
// five opted out.
var writePlanData = []string{
	`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, start_time, dnc_check,
    remove_on_opt_out, created_at, updated_at, search)
SELECT randomblob(16), 'rule', 'call', 1, 1, 0, 0, 0, n, n, 'rule'
FROM (WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 50) SELECT n FROM g)`,
	`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
SELECT randomblob(16), 'campaign', CASE WHEN n % 100 = 0 THEN 'In Process' ELSE 'Completed' END,
    CASE WHEN n % 1000 = 0 THEN 2 ELSE 1 END, 'UTC', n, n, 'campaign'
FROM (WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 3000) SELECT n FROM g)`,
	`INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today, lease_token)
SELECT 1 + id % 150, id, contact_uuid, 1, 0, 0, id % 100 = 0 FROM items WHERE pool_id = 1`,
	`INSERT INTO dnc (contact_uuid, added_at) SELECT contact_uuid, id FROM items WHERE pool_id = 1`,
	`INSERT INTO opt_outs (contact_uuid, opted_out_at) SELECT contact_uuid, id FROM items WHERE pool_id = 1 AND id % 5 = 0`,
}

var (
	contact16   = []byte("0123456789abcdef")
	contactJSON = `["30313233343536373839616263646566"]`
)

func init() {
	// The same seeks, in another index or order, once the file has
	// statistics.
	for name, indexes := range map[string][]string{
		"KeepDetachedCalls": {"INTEGER PRIMARY KEY", "items_pool"},
		"KeepPoolCalls":     {"sqlite_autoindex_pools_1", "campaign_pools_pool", "INTEGER PRIMARY KEY", "items_pool"},
	} {
		analyzedPlans[name] = indexes
	}
}

// TestSchema_WritePlansAnalyzed: the plans of writePlanCases, and of the
// listings of campaigns and rules, are the same seeks before and after
// ANALYZE or PRAGMA optimize, on skewedStore's file with 3,000 more
// campaigns, 2,997 of them under one of 50 rules, a call of each of the
// big pool's 50,000 items kept for 150 campaigns, and every contact of the
// big pool on the DNC list, one in five opted out.
func TestSchema_WritePlansAnalyzed(t *testing.T) {
	if raceEnabled {
		t.Skip("a plan test: one goroutine's SQL, run without -race (see raceEnabled)")
	}
	t.Parallel()
	ctx := context.Background()
	for _, stmt := range []string{"ANALYZE", "PRAGMA optimize"} {
		t.Run(stmt, func(t *testing.T) {
			t.Parallel()
			st, _ := skewedStore(t)
			w := sqlite.WriterConn(st)
			for _, q := range writePlanData {
				_, err := w.ExecContext(ctx, q)
				require.NoError(t, err, q)
			}
			t.Run("Before", func(t *testing.T) {
				checkPlans(t, w, writePlanCases, false)
				checkListingPlans(t, w)
			})
			_, err := w.ExecContext(ctx, stmt)
			require.NoError(t, err)
			var n int
			require.NoError(t, w.QueryRowContext(ctx, `SELECT count(DISTINCT tbl) FROM sqlite_stat1 WHERE tbl IN ('items', 'campaigns')`).Scan(&n))
			require.Equal(t, 2, n, "items and campaigns have statistics")
			t.Run("After", func(t *testing.T) {
				checkPlans(t, w, writePlanCases, true)
				checkListingPlans(t, w)
			})
		})
	}
}

// checkListingPlans checks the plans of the listings of campaigns and
// rules on conn: a page walks the index of its order, no sort; the
// campaigns of a rule (DeleteRule's count and page included) are a seek
// on campaigns_rule, their page a sort of those alone; the campaigns of a
// status (the REST API's filter, with a search or without) a seek on
// campaigns_status, in the page's order, and so is their count. A count
// of every campaign or rule, or of those of a search alone, reads them
// all: a listing's cost, not checked here.
func checkListingPlans(t *testing.T, conn *sql.Conn) {
	t.Helper()
	rule := uuid.New()
	campaigns := func(q campaign.Query) (string, string, []any) { return sqlite.CampaignsSQL(q) }
	count, page, args := campaigns(campaign.Query{})
	_ = count
	byRuleCount, byRulePage, ruleArgs := campaigns(campaign.Query{RuleUUID: &rule})
	byStatusCount, byStatusPage, statusArgs := campaigns(campaign.Query{Status: campaign.Paused})
	_, searchPage, searchArgs := campaigns(campaign.Query{Status: campaign.InProcess, Search: "camp"})
	_, rulesPage, rulesArgs := sqlite.RulesSQL(campaign.RuleQuery{})
	for _, tc := range []struct {
		name  string
		query string
		args  []any
		main  string // the plan's line for the table listed
		sorts bool   // the rows main finds are sorted
	}{
		{"CampaignsPage", page, append(args, 15, 0), "SCAN c USING INDEX campaigns_created", false},
		{"CampaignsOfRuleCount", byRuleCount, ruleArgs, "SEARCH c USING COVERING INDEX campaigns_rule (rule_id=?)", false},
		{"CampaignsOfRulePage", byRulePage, append(ruleArgs, 1, 0), "SEARCH c USING INDEX campaigns_rule (rule_id=?)", true},
		{"CampaignsOfStatusCount", byStatusCount, statusArgs, "SEARCH c USING COVERING INDEX campaigns_status (status=?)", false},
		{"CampaignsOfStatusPage", byStatusPage, append(statusArgs, 15, 0), "SEARCH c USING INDEX campaigns_status (status=?)", false},
		{"CampaignsOfStatusSearchPage", searchPage, append(searchArgs, 15, 0), "SEARCH c USING INDEX campaigns_status (status=?)", false},
		{"RulesPage", rulesPage, append(rulesArgs, 15, 0), "SCAN r USING INDEX rules_created", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan := queryPlan(t, conn, tc.query, tc.args...)
			require.Contains(t, plan, tc.main)
			for _, line := range plan {
				if line != tc.main {
					require.False(t, strings.HasPrefix(line, "SCAN "), "%s: %q", tc.name, plan)
				}
				if !tc.sorts {
					require.NotContains(t, line, "TEMP B-TREE", "%s: %q", tc.name, plan)
				}
			}
		})
	}
}

// TestSchema_PlansAnalyzedWhenQuiet: the plans of planCases and
// writePlanCases stay seeks when the statistics were taken at a quiet
// hour (an operator's ANALYZE with nothing in flight, no call kept, no
// rule, no list), and the work came after: skewedStore's file with its
// leases ended for the ANALYZE and back after it, then
// TestSchema_WritePlansAnalyzed's campaigns, kept calls and lists. With
// items_lease and kept_calls empty in sqlite_stat1, CampaignItems walked
// every pool, every kept call and, for each, every lease of the store.
func TestSchema_PlansAnalyzedWhenQuiet(t *testing.T) {
	if raceEnabled {
		t.Skip("a plan test: one goroutine's SQL, run without -race (see raceEnabled)")
	}
	t.Parallel()
	ctx := context.Background()
	st, _ := skewedStore(t)
	w := sqlite.WriterConn(st)
	exec := func(qs ...string) {
		t.Helper()
		for _, q := range qs {
			_, err := w.ExecContext(ctx, q)
			require.NoError(t, err, q)
		}
	}
	exec(`CREATE TEMP TABLE leases AS SELECT id, status, token, lease_expires_at FROM items WHERE status IN ('Processing', 'In_Call')`,
		`UPDATE items SET status = 'Completed', token = 0, lease_expires_at = NULL WHERE id IN (SELECT id FROM leases)`,
		"ANALYZE",
		`UPDATE items SET (status, token, lease_expires_at) = (SELECT l.status, l.token, l.lease_expires_at FROM leases l WHERE l.id = items.id)
WHERE id IN (SELECT id FROM leases)`)
	var leases int
	require.NoError(t, w.QueryRowContext(ctx, `SELECT count(*) FROM items WHERE lease_expires_at IS NOT NULL`).Scan(&leases))
	require.Equal(t, 100, leases, "the leases are back")
	exec(writePlanData...)
	t.Run("Reads", func(t *testing.T) { checkPlans(t, w, planCases, true) })
	t.Run("Writes", func(t *testing.T) { checkPlans(t, w, writePlanCases, true) })
}
