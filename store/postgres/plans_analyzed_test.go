package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPlans_Analyzed: the plans TestPlans checks on tables without
// statistics hold once autovacuum (off on the test server) has analyzed
// the tables of a store as a dialer's looks after weeks of work: a pool
// of 50,000 items, 96% of them Completed or Failed, 300 Pending, 700
// waiting for a retry or a scheduled time, 100 in flight; 2,000 small
// pools; 3,000 campaigns, the big pool attached to 100 finished ones and
// governed by one In Process, the small pools to the others, 290 of them
// running. So do those of WriteStatements and the listings.
func TestPlans_Analyzed(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	st, k, u := analyzedStore(t, url, 2000, 3000, 290)
	checkPlans(t, st, postgres.HotStatements, k, u)
	checkPlans(t, st, postgres.WriteStatements, k, u)
	checkListingPlans(t, st)
}

// TestPlans_AnalyzedFew: so they do with the statistics of fewer pools
// and campaigns (20 and 200, the big pool's governor the one running),
// where walking a whole small table or index looks cheaper to the planner
// than a seek per row wanted: the statements are written so that the
// seek is the only plan.
func TestPlans_AnalyzedFew(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	st, k, u := analyzedStore(t, url, 20, 200, 0)
	checkPlans(t, st, postgres.HotStatements, k, u)
	checkPlans(t, st, postgres.WriteStatements, k, u)
}

// analyzedStore returns a store as TestPlans_Analyzed describes, with
// nPools small pools and nCampaigns campaigns, running of the small
// pools' In Process, every table analyzed, and its big pool's internal id
// and UUID.
func analyzedStore(t *testing.T, url string, nPools, nCampaigns, running int) (*postgres.Store, int64, string) {
	t.Helper()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	p := newTestPool("analyzed")
	var pools []uuid.UUID
	now := time.Now().UTC()
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		// Write may run this again from the start (a lock-order restart
		// under load): the pools of a run rolled back are not kept.
		pools = []uuid.UUID{p.UUID}
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		if _, err := tx.InsertItems(ctx, p.UUID, pendingItems(50_000)); err != nil {
			return err
		}
		for range nPools {
			o := newTestPool("small")
			if err := tx.InsertPool(ctx, o); err != nil {
				return err
			}
			if _, err := tx.InsertItems(ctx, o.UUID, pendingItems(5)); err != nil {
				return err
			}
			pools = append(pools, o.UUID)
		}
		for i := range nCampaigns {
			c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: campaign.Completed, TimeZone: "UTC",
				CreatedAt: now.Add(time.Duration(i) * time.Millisecond), UpdatedAt: now}
			if i == nCampaigns-1 || (i%10 == 0 && i/10 < running && i < nCampaigns-101) {
				c.Status = campaign.InProcess
			}
			if err := tx.InsertCampaign(ctx, c); err != nil {
				return err
			}
			id := pools[1+i%nPools]
			if i >= nCampaigns-101 {
				id = p.UUID
			}
			if _, err := tx.AttachPool(ctx, c.UUID, id); err != nil {
				return err
			}
		}
		return nil
	}))
	conn := postgres.SchemaConn(t, url, st.Schema())
	var k int64
	require.NoError(t, conn.QueryRow(ctx, "SELECT id FROM pools WHERE uuid = $1", p.UUID).Scan(&k))
	_, err := conn.Exec(ctx, `UPDATE items SET status = CASE
    WHEN id % 1000 < 6 THEN 'Pending'
    WHEN id % 1000 < 16 THEN 'Retrying'
    WHEN id % 1000 < 20 THEN 'Scheduled'
    WHEN id % 1000 = 20 THEN 'Processing'
    WHEN id % 1000 = 21 THEN 'In_Call'
    WHEN id % 1000 < 600 THEN 'Completed'
    ELSE 'Failed' END,
  ready = (id % 1000 < 6),
  attempts = (id % 1000 >= 6)::int, retry_count = (id % 1000 >= 6 AND id % 1000 < 20)::int,
  next_retry_at = CASE WHEN id % 1000 >= 6 AND id % 1000 < 20 THEN 2000000000000 + id * 1000 END,
  lease_expires_at = CASE WHEN id % 1000 IN (20, 21) THEN 2000000000000 + id END,
  token = (id % 1000 IN (20, 21))::int
WHERE pool_id = $1`, k)
	require.NoError(t, err)
	// 50 rules, one of them the rule of every campaign but three; a call
	// of each of the big pool's items kept for 150 campaigns; each of its
	// contacts on the DNC list, one in five opted out.
	for _, sql := range []string{
		`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, start_time, dnc_check,
    remove_on_opt_out, created_at, updated_at, search)
SELECT gen_random_uuid(), 'rule', 'call', 1, 1, 0, false, false, g, g, 'rule' FROM generate_series(1, 50) g`,
		// The three: every third of the campaigns by id, whatever ids a
		// run of the Write rolled back took (with 200, none had an id that
		// is a multiple of 1000: every campaign had one rule, and the
		// planner's choice between campaigns_rule and campaigns_status
		// was a tie that a loaded run's dead rows could turn).
		fmt.Sprintf(`UPDATE campaigns c SET rule_id = (SELECT min(id) FROM rules) + (n.rn %% %d = 0)::int
FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM campaigns) n WHERE n.id = c.id`, nCampaigns/3),
		// The first 150 campaigns by id, whatever ids a run of the Write
		// rolled back took.
		`INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today, lease_token)
SELECT c.id, i.id, i.contact_uuid, 1, 0, 0, (i.id % 100 = 0)::int
FROM items i JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM campaigns) c ON c.n = i.id % 150
WHERE i.pool_id = $1`,
		`INSERT INTO dnc (contact_uuid, added_at) SELECT contact_uuid, id FROM items WHERE pool_id = $1`,
		`INSERT INTO opt_outs (contact_uuid, opted_out_at) SELECT contact_uuid, id FROM items WHERE pool_id = $1 AND id % 5 = 0`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, k)
		}
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	var tables []string
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	for _, name := range tables {
		_, err := conn.Exec(ctx, fmt.Sprintf("ANALYZE %q", name))
		require.NoError(t, err, name)
	}
	var analyzed bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables
WHERE schemaname = current_schema() AND relname = 'items'`).Scan(&analyzed))
	require.True(t, analyzed, "items has statistics")
	return st, k, p.UUID.String()
}

// checkListingPlans checks the plans of the listings of campaigns and
// rules on st's connections: a page walks the index of its order up to
// its end (a Limit), no sort; the number of a rule's campaigns
// (DeleteRule's check) is a seek on campaigns_rule, and so is a page of
// them (the REST API's listing by rule, DeleteRule's page of one), in
// the page's order; the campaigns of a status (the REST API's filter,
// with a search or without), their page and their number, a seek on
// campaigns_status. Each of those seeks is the only plan the store's
// connections have without a sort or a scan of the table (their index
// dropped, what is left is such a plan): not a walk of campaigns_created
// that the planner weighs as about as cheap, which it did. (The number of
// every campaign or rule, or of those of a search alone, reads them all: a
// listing's cost, not checked here.)
func checkListingPlans(t *testing.T, st *postgres.Store) {
	t.Helper()
	ctx := context.Background()
	rule := uuid.New()
	_, campaignsPage, _ := postgres.CampaignsSQL(campaign.Query{})
	ruleCount, rulePage, _ := postgres.CampaignsSQL(campaign.Query{RuleUUID: &rule})
	statusCount, statusPage, _ := postgres.CampaignsSQL(campaign.Query{Status: campaign.Paused})
	_, searchPage, _ := postgres.CampaignsSQL(campaign.Query{Status: campaign.InProcess, Search: "camp"})
	_, rulesPage, _ := postgres.RulesSQL(campaign.RuleQuery{})
	bad := regexp.MustCompile(`Seq Scan|Bitmap|(^|-> +)Sort\b|Hash Join|Merge Join`)
	ruleArg := "'" + rule.String() + "'"
	for _, s := range []struct {
		name, sql, index string
		args             []string
		page             bool   // a page: under a Limit
		walk             bool   // its index walked whole, up to the page's end
		only             string // the index without which no plan is as cheap
	}{
		{"campaigns page", campaignsPage, "Index Scan using campaigns_created", []string{"15", "0"}, true, true, ""},
		{"campaigns of rule count", ruleCount, "Index Only Scan using campaigns_rule", []string{ruleArg}, false, false, "campaigns_rule"},
		{"campaigns of rule page", rulePage, "Index Scan using campaigns_rule", []string{ruleArg, "1", "0"}, true, false, "campaigns_rule"},
		{"campaigns of status count", statusCount, "using campaigns_status", []string{"'Paused'"}, false, false, "campaigns_status"},
		{"campaigns of status page", statusPage, "Index Scan using campaigns_status", []string{"'Paused'", "15", "0"}, true, false,
			"campaigns_status"},
		{"campaigns of status search page", searchPage, "Index Scan using campaigns_status",
			[]string{"'In Process'", "'camp'", "15", "0"}, true, false, "campaigns_status"},
		{"rules page", rulesPage, "Index Scan using rules_created", []string{"15", "0"}, true, true, ""},
	} {
		t.Run(s.name, func(t *testing.T) {
			plan, err := postgres.Plan(ctx, st, s.sql, s.args...)
			require.NoError(t, err)
			require.Contains(t, plan, s.index, "%s:\n%s", s.name, plan)
			require.NotRegexp(t, bad, plan, "%s:\n%s", s.name, plan)
			if s.page {
				require.True(t, strings.HasPrefix(plan, "Limit"), "%s: the walk ends with the page:\n%s", s.name, plan)
			}
			if !s.walk {
				require.Empty(t, walks(plan), "%s: a walk of every campaign:\n%s", s.name, plan)
			}
			if s.only != "" {
				other, err := postgres.PlanWithout(ctx, st, s.only, s.sql, s.args...)
				require.NoError(t, err)
				require.Regexp(t, bad, other, "%s: without %s, a plan as cheap as the seek:\n%s", s.name, s.only, other)
			}
		})
	}
}

// TestPlans_Listings: the plans checkListingPlans checks are the same
// before autovacuum has analyzed the tables and after, beside 3,000
// campaigns (1% In Process, none Paused, the others Completed), all but
// three under one of 50 rules.
func TestPlans_Listings(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	conn := postgres.SchemaConn(t, url, st.Schema())
	for _, sql := range []string{
		`INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls, start_time, dnc_check,
    remove_on_opt_out, created_at, updated_at, search)
SELECT gen_random_uuid(), 'rule', 'call', 1, 1, 0, false, false, g, g, 'rule' FROM generate_series(1, 50) g`,
		`INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
SELECT gen_random_uuid(), 'campaign', CASE WHEN g % 100 = 0 THEN 'In Process' ELSE 'Completed' END,
    (SELECT min(id) FROM rules) + (g % 1000 = 0)::int, 'UTC', g, g, 'campaign'
FROM generate_series(1, 3000) g`,
	} {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	t.Run("not analyzed", func(t *testing.T) { checkListingPlans(t, st) })
	_, err := conn.Exec(ctx, "ANALYZE rules, campaigns")
	require.NoError(t, err)
	t.Run("analyzed", func(t *testing.T) { checkListingPlans(t, st) })
}

// TestPlans_AnalyzedOnePool: the statements that walk a pool's items in
// id order (FIFO and LIFO claims, item listings) keep their index once the
// tables are analyzed while one pool holds every item, as a dialer's store
// does after it imported its list into its one pool, the oldest half of it
// waiting for a retry time. ANALYZE then finds one value of pool_id, and
// the planner took the walk of the pool's index (items_ready, items_pool,
// items_pool_status) for no cheaper than one of items_pkey in id order
// that filters each row, which it chose: a FIFO claim read every item not
// due ahead of the first due one (the waiting half, and every item it had
// completed), and a page of items by status every item of another status
// ahead of it. (The statements on pools and pool_counts walk their one
// row, which costs what a seek does: not checked here.)
func TestPlans_AnalyzedOnePool(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	st := pgtest.Open(t, url, postgres.Options{})
	k, p := onePoolOfItems(t, url, st)
	analyze(t, url, st.Schema())
	checkPlans(t, st, poolWalks(t), k, p.String())
}

// TestOpen_UpgradesVersion14PoolEstimates: a schema at version 14, whose
// one pool holds every item and whose statistics were taken so (the
// plans TestPlans_AnalyzedOnePool rules out), gets the plans right at the
// upgrade to 15, not at autovacuum's next ANALYZE of the table, which may
// be hours of dialling away: migration 15 analyzes the items with the
// pools' new estimate.
func TestOpen_UpgradesVersion14PoolEstimates(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	schema := st.Schema()
	k, p := onePoolOfItems(t, url, st)
	require.NoError(t, st.Close())
	// The schema as version 14 left it, analyzed: without migration 15's
	// estimate, and without its record.
	conn := postgres.SchemaConn(t, url, schema)
	for _, sql := range []string{
		"ALTER TABLE items ALTER COLUMN pool_id RESET (n_distinct)",
		"DELETE FROM schema_version WHERE version = 15",
	} {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	analyze(t, url, schema)

	up := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	checkPlans(t, up, poolWalks(t), k, p.String())
}

// onePoolOfItems fills st with one pool of 20,000 items, the oldest half
// Retrying a year away, and returns the pool's key and UUID.
func onePoolOfItems(t *testing.T, url string, st *postgres.Store) (int64, uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	p := newTestPool("one pool")
	later := time.Now().UTC().Add(365 * 24 * time.Hour)
	waiting := pendingItems(10_000)
	for i := range waiting {
		waiting[i].Status, waiting[i].Attempts, waiting[i].RetryCount, waiting[i].NextRetryAt = pool.StatusRetrying, 1, 1, &later
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		if _, err := tx.InsertItems(ctx, p.UUID, waiting); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, pendingItems(10_000))
		return err
	}))
	var k int64
	require.NoError(t, postgres.SchemaConn(t, url, st.Schema()).QueryRow(ctx, "SELECT id FROM pools WHERE uuid = $1", p.UUID).Scan(&k))
	return k, p.UUID
}

// analyze takes the statistics of schema's pools and items, as autovacuum
// would.
func analyze(t *testing.T, url, schema string) {
	t.Helper()
	_, err := postgres.SchemaConn(t, url, schema).Exec(context.Background(), "VACUUM (ANALYZE) items, pools, pool_counts")
	require.NoError(t, err)
}

// poolWalks are the statements that walk a pool's items in id order.
func poolWalks(t *testing.T) []struct {
	Name, SQL, Index string
	Args             []string
} {
	t.Helper()
	walks := postgres.HotStatements[:0:0]
	for _, s := range postgres.HotStatements {
		switch s.Name {
		case "due FIFO", "due LIFO", "pool due FIFO", "pool due LIFO", "list items", "list items by status":
			walks = append(walks, s)
		}
	}
	require.Len(t, walks, 6)
	return walks
}
