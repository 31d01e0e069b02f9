package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPlans checks the plans the store's connections run the statements
// of dispatch and settlement with: each an index seek or walk on the index
// named, never a sequential scan or a sort, so that their cost does not
// grow with the pool. The store runs generic plans (planned once, whatever
// the values bound), which is what EXPLAIN EXECUTE shows here; the table
// is filled and not analyzed, as right after a bulk add.
func TestPlans(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	p := newTestPool("plans")
	items := pendingItems(5000)
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, items)
		return err
	}))
	var k int64
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		return postgres.QueryRow(ctx, tx, fmt.Sprintf("SELECT id FROM pools WHERE uuid = '%s'", p.UUID), &k)
	}))
	checkPlans(t, st, postgres.HotStatements, k, p.UUID.String())
}

// checkPlans checks the plans of stmts (postgres.HotStatements,
// postgres.WriteStatements) on st's connections, pool k (internal id) and
// u (UUID) their arguments.
func checkPlans(t *testing.T, st *postgres.Store, stmts []struct {
	Name, SQL, Index string
	Args             []string
}, k int64, u string) {
	t.Helper()
	ctx := context.Background()
	mode, err := postgres.Setting(ctx, st, "plan_cache_mode")
	require.NoError(t, err)
	require.Equal(t, "force_generic_plan", mode, "what EXPLAIN EXECUTE shows is what runs")
	bad := regexp.MustCompile(`Seq Scan|Bitmap|(^|-> +)Sort\b|Hash Join|Merge Join`)
	for _, s := range stmts {
		t.Run(s.Name, func(t *testing.T) {
			args := make([]string, len(s.Args))
			for i, a := range s.Args {
				a = strings.ReplaceAll(a, "$K", fmt.Sprint(k))
				args[i] = strings.ReplaceAll(a, "$U", "'"+u+"'")
			}
			plan, err := postgres.Plan(ctx, st, s.SQL, args...)
			require.NoError(t, err)
			require.Contains(t, plan, s.Index, "the plan uses its index:\n%s", plan)
			require.NotRegexp(t, bad, plan, "no scan of the table, no sort:\n%s", plan)
			// Nor a walk of a whole index, which is no Seq Scan but reads
			// as much: an ORDER BY's index walked with the WHERE as a
			// Filter (the claim's read of a pool's campaigns did so, with
			// campaigns_created).
			require.Empty(t, walks(plan), "an index scan without an Index Cond:\n%s", plan)
		})
	}
}

// TestPlans_Bounds: the first entry of a pool's retry set and lease set is
// read by walking the index to its first row, whatever the planner thinks
// of the set's size. Here the table was analyzed while every item was
// Pending (autovacuum after a bulk add), and then half the pool came to
// wait for a retry and some calls began: a min() over the set, planned for
// a row or two, read all 10,000 of them at every claim that promoted one.
func TestPlans_Bounds(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	p := newTestPool("bounds")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, pendingItems(20_000))
		return err
	}))
	conn := postgres.SchemaConn(t, url, st.Schema())
	var k int64
	require.NoError(t, conn.QueryRow(ctx, "SELECT id FROM pools WHERE uuid = $1", p.UUID).Scan(&k))
	for _, sql := range []string{
		"ALTER TABLE items SET (autovacuum_enabled = false)",
		"ANALYZE items",
		`UPDATE items SET status = 'Retrying', ready = false, attempts = 1, retry_count = 1,
    next_retry_at = 1000000000000 + id WHERE pool_id = $1 AND id % 2 = 0`,
		`UPDATE items SET status = 'Processing', ready = false, attempts = 1, token = 1,
    lease_expires_at = 1000000000000 + id WHERE pool_id = $1 AND id % 200 = 1`,
	} {
		var args []any
		if strings.Contains(sql, "$1") {
			args = append(args, k)
		}
		_, err := conn.Exec(ctx, sql, args...)
		require.NoError(t, err, sql)
	}
	whole := regexp.MustCompile(`Aggregate|Seq Scan|Bitmap`)
	for _, s := range postgres.BoundStatements {
		plan, err := postgres.Plan(ctx, st, s.SQL, fmt.Sprint(k))
		require.NoError(t, err, s.Name)
		require.Contains(t, plan, s.Index, "%s:\n%s", s.Name, plan)
		require.Contains(t, plan, "Limit", "%s: stops at the first entry:\n%s", s.Name, plan)
		require.NotRegexp(t, whole, plan, "%s: reads the whole set:\n%s", s.Name, plan)
	}
}
