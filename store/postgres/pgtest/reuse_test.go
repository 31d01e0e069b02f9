package pgtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestSchemas_ReusedEmpty: the checks of a test get one schema in turn,
// each finding it empty of what the one before wrote (the first reads the
// schema's tables from the catalog, the later ones reuse that list), and
// the schema is dropped when the test that made the Schemas ends.
func TestSchemas_ReusedEmpty(t *testing.T) {
	url := pgtest.URL(t)
	var schema string
	t.Run("Test", func(t *testing.T) {
		schemas := pgtest.NewSchemas(t, url)
		for i := range 3 {
			t.Run("Check", func(t *testing.T) {
				st := schemas.Open(t, postgres.Options{MaxConns: 2})
				if i == 0 {
					schema = st.Schema()
				}
				require.Equal(t, schema, st.Schema(), "check %d: a new schema, not the one the check before emptied", i)
				for table, n := range rowCounts(t, url, schema) {
					require.Zero(t, n, "check %d: %s holds rows of the check before", i, table)
				}
				fill(t, st)
				full := rowCounts(t, url, schema)
				for _, table := range []string{"pools", "items", "rules", "campaigns", "campaign_pools"} {
					require.NotZero(t, full[table], "check %d: the check wrote no row in %s", i, table)
				}
			})
		}
	})
	require.False(t, schemaExists(t, url, schema), "the schema outlived the test that made the Schemas")
}

// fill writes a pool with items, one of them dispatched, a rule and a
// running campaign drawing from the pool.
func fill(t *testing.T, st *postgres.Store) {
	ctx := context.Background()
	noon := time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC) // inside the default rule's window
	eng, err := queue.New(st, queue.Options{Now: func() time.Time { return noon }})
	require.NoError(t, err)
	defer eng.Close()
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "reuse", Description: "reused schema"})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "reuse rule"})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "reuse campaign", RuleUUID: &r.UUID})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = eng.DequeueCampaign(dctx, c.UUID)
	require.NoError(t, err)
}

// rowCounts returns the number of rows of every table of schema but
// schema_version and settings, which a store needs from its first Open on.
func rowCounts(t *testing.T, url, schema string) map[string]int {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables
		WHERE schemaname = $1 AND tablename NOT IN ('schema_version', 'settings')`, schema)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables, "schema %s has no tables", schema)
	counts := map[string]int{}
	for _, table := range tables {
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, table}.Sanitize()).Scan(&n))
		counts[table] = n
	}
	return counts
}

func schemaExists(t *testing.T, url, schema string) bool {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n))
	return n > 0
}

// TestSchemas_NodesKeptForTheNextCheck: the stores of a check are handed
// to the next check that asks for as many with the same options, still
// open, on the schema emptied; a check that asks for other options gets
// other stores. Every store is closed, and every schema dropped, when the
// test that made the Schemas ends.
func TestSchemas_NodesKeptForTheNextCheck(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	var all []*postgres.Store
	schemas := map[string]bool{}
	t.Run("Test", func(t *testing.T) {
		s := pgtest.NewSchemas(t, url)
		opts := postgres.Options{MaxConns: 2}
		var first []*postgres.Store
		for i := range 3 {
			t.Run("Check", func(t *testing.T) {
				nodes := s.Nodes(t, opts, 2)
				require.Len(t, nodes, 2)
				require.Equal(t, nodes[0].Schema(), nodes[1].Schema(), "two nodes on one schema")
				if i == 0 {
					first = nodes
				}
				require.Same(t, first[0], nodes[0], "check %d: new stores, not the ones of the check before", i)
				require.Same(t, first[1], nodes[1], "check %d: new stores, not the ones of the check before", i)
				for table, n := range rowCounts(t, url, nodes[0].Schema()) {
					require.Zero(t, n, "check %d: %s holds rows of the check before", i, table)
				}
				fill(t, nodes[i%2])
				schemas[nodes[0].Schema()] = true
			})
		}
		t.Run("OtherOptions", func(t *testing.T) {
			nodes := s.Nodes(t, postgres.Options{MaxConns: 3}, 2)
			require.NotSame(t, first[0], nodes[0])
			require.NotSame(t, first[1], nodes[1])
			for table, n := range rowCounts(t, url, nodes[0].Schema()) {
				require.Zero(t, n, "%s holds rows of another check", table)
			}
			schemas[nodes[0].Schema()] = true
			all = append(all, nodes...)
		})
		t.Run("SchemaAlone", func(t *testing.T) {
			schema := s.Schema(t)
			for table, n := range rowCounts(t, url, schema) {
				require.Zero(t, n, "%s holds rows of another check", table)
			}
			schemas[schema] = true
		})
		// More sets of options than the Schemas keeps schemas for: a
		// check then gets another set's schema, with new stores.
		for conns := 4; conns <= 6; conns++ {
			t.Run("ManyOptions", func(t *testing.T) {
				nodes := s.Nodes(t, postgres.Options{MaxConns: conns}, 2)
				for _, st := range append(all, first...) {
					require.NotSame(t, st, nodes[0], "MaxConns %d: the store of other options", conns)
					require.NotSame(t, st, nodes[1], "MaxConns %d: the store of other options", conns)
				}
				schemas[nodes[0].Schema()] = true
				all = append(all, nodes...)
			})
		}
		all = append(all, first...)
	})
	for _, st := range all {
		require.ErrorIs(t, st.Read(ctx, func(store.Tx) error { return nil }), store.ErrClosed, "a store outlived the test that made the Schemas")
	}
	for schema := range schemas {
		require.False(t, schemaExists(t, url, schema), "schema %s outlived the test that made the Schemas", schema)
	}
}
