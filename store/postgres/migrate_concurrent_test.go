package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_ConcurrentOnOldVersion: several nodes (each with its pool)
// open a schema an older poolq left at once, under every default
// isolation level: each missing migration runs once, every node opens,
// and the pool written before the upgrade is there for each.
func TestOpen_ConcurrentOnOldVersion(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	for _, iso := range []string{"", "&default_transaction_isolation=serializable"} {
		for _, k := range []int{1, 6, postgres.LatestVersion() - 1} {
			t.Run(fmt.Sprintf("v%d%s", k, iso), func(t *testing.T) {
				t.Parallel()
				url := base + iso
				ctx := context.Background()
				schema := pgtest.Schema(t, url)
				require.NoError(t, postgres.MigrateTo(ctx, url, schema, k))
				conn, err := pgx.Connect(ctx, url)
				require.NoError(t, err)
				defer conn.Close(ctx)
				p := newTestPool("before the upgrade")
				_, err = conn.Exec(ctx, `INSERT INTO `+schema+`.pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, 'test', 'Parallel', 10, 3, true, 0, 0, 'x')`,
					p.UUID, p.Name)
				require.NoError(t, err)
				_, err = conn.Exec(ctx, `INSERT INTO `+schema+`.pool_counts (pool_id) SELECT id FROM `+schema+`.pools`)
				require.NoError(t, err)

				var wg sync.WaitGroup
				stores := make([]*postgres.Store, 5)
				errs := make([]error, len(stores))
				for i := range stores {
					wg.Go(func() {
						stores[i], errs[i] = postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 2})
					})
				}
				wg.Wait()
				for i, st := range stores {
					require.NoError(t, errs[i], "open %d", i)
					defer st.Close()
				}
				for _, st := range stores {
					require.NoError(t, st.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }))
				}
				var versions, first int
				require.NoError(t, conn.QueryRow(ctx, "SELECT count(*), min(version) FROM "+schema+".schema_version").Scan(&versions, &first))
				require.Equal(t, postgres.LatestVersion(), versions, "each migration recorded once")
				require.Equal(t, 1, first)
			})
		}
	}
}
