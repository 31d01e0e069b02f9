package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_WaitsForTheMigrationDespiteRoleTimeouts: Options.LockTimeout
// says "the migrations at Open are not bounded by it (the nodes that open
// at once wait for the one that migrates)". A DBA's defaults for the role
// (ALTER ROLE … SET lock_timeout, statement_timeout, common policy) must
// not bound that wait either: a node that opens while another migrates
// (here: holds the schema's migration lock for a second, five times the
// role's timeout) waits, then opens; it does not fail, and leave the
// service's other replicas to crash-loop for as long as a long migration
// runs.
func TestOpen_WaitsForTheMigrationDespiteRoleTimeouts(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, setting := range []string{"lock_timeout", "statement_timeout"} {
		t.Run(setting, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			schema := pgtest.Schema(t, url)
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			// A schema a DBA made for the service (no right on the
			// database to change: its ACL is shared by every test).
			_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
			require.NoError(t, err)
			role := "poolq_to_" + strings.TrimPrefix(schema, "poolq_test_")
			roleURL := pgtest.LoginRole(t, url, role, "GRANT USAGE, CREATE ON SCHEMA "+schema+" TO %s",
				"ALTER ROLE %s SET "+setting+" = '200ms'")

			// Another node migrating: it holds the schema's migration lock.
			holder, err := conn.Begin(ctx)
			require.NoError(t, err)
			_, err = holder.Exec(ctx, "SELECT pg_advisory_xact_lock($1::int, 0)", postgres.MigrationLock(schema))
			require.NoError(t, err)

			opened := openAndClose(roleURL, schema)
			// Waiting for the lock, and still after the role's 200 ms.
			waitForMigrationLockWaiter(t, url, schema, opened)
			select {
			case err := <-opened:
				t.Fatalf("Open returned while another node held the migration lock: %v", err)
			case <-time.After(time.Second):
			}
			require.NoError(t, holder.Commit(ctx))
			require.NoError(t, <-opened)
		})
	}
}
