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
	url := pgtest.URL(t)
	t.Parallel()
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
	mode, err := postgres.Setting(ctx, st, "plan_cache_mode")
	require.NoError(t, err)
	require.Equal(t, "force_generic_plan", mode, "what EXPLAIN EXECUTE shows is what runs")
	bad := regexp.MustCompile(`Seq Scan|Bitmap|(^|-> +)Sort\b|Hash Join|Merge Join`)
	for _, s := range postgres.HotStatements {
		args := make([]string, len(s.Args))
		for i, a := range s.Args {
			a = strings.ReplaceAll(a, "$K", fmt.Sprint(k))
			args[i] = strings.ReplaceAll(a, "$U", "'"+p.UUID.String()+"'")
		}
		plan, err := postgres.Plan(ctx, st, s.SQL, args...)
		require.NoError(t, err, s.Name)
		require.Contains(t, plan, s.Index, "%s: the plan uses its index:\n%s", s.Name, plan)
		require.NotRegexp(t, bad, plan, "%s: no scan of the table, no sort:\n%s", s.Name, plan)
	}
}
