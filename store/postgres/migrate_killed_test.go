package postgres_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_AfterANodeDiedMigrating: a node dies (its socket closed, as by
// SIGKILL, without a word to the server) half-way through migrating a
// version 8 schema: it has taken the migration lock, run 0009 and recorded
// it, not committed. A node that was waiting for the lock then migrates
// the schema itself, every version recorded once, and opens.
func TestOpen_AfterANodeDiedMigrating(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 8))

	cfg, err := pgx.ParseConfig(url)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = schema
	dying, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	tx, err := dying.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1::int, 0)", postgres.MigrationLock(schema))
	require.NoError(t, err)
	m9, err := os.ReadFile("migrations/0009_settings.sql")
	require.NoError(t, err)
	_, err = tx.Exec(ctx, string(m9))
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "INSERT INTO schema_version (version, applied_at) VALUES (9, 0)")
	require.NoError(t, err)

	opened := openAndClose(url, schema)
	waitForMigrationLockWaiter(t, url, schema, opened)
	require.NoError(t, dying.PgConn().Conn().Close()) // SIGKILL: the socket closes, no Terminate
	select {
	case err := <-opened:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Open still waits after the migrating node died")
	}

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT version FROM "+schema+".schema_version ORDER BY version")
	require.NoError(t, err)
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	want := make([]int, postgres.LatestVersion())
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, versions)
}

// waitForMigrationLockWaiter waits until a session waits for schema's
// migration lock (pg_locks: an advisory lock of two int keys, not granted),
// so that a test proves a wait, not an Open slow to reach the lock; it
// fails the test if Open (opened) returns first.
func waitForMigrationLockWaiter(t *testing.T, url, schema string, opened <-chan error) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	key := int64(uint32(postgres.MigrationLock(schema))) // classid holds the key's bits
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
WHERE locktype = 'advisory' AND NOT granted AND classid::bigint = $1 AND objid = 0 AND objsubid = 2`, key).Scan(&n))
		if n > 0 {
			return
		}
		select {
		case err := <-opened:
			t.Fatalf("Open returned before it waited for the migration lock: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "no session waits for the migration lock after 30 s")
	}
}

// openAndClose opens schema at url in a goroutine, closes it, and sends
// the first error (nil for none) on the channel it returns.
func openAndClose(url, schema string) <-chan error {
	opened := make(chan error, 1)
	go func() {
		st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema, MaxConns: 2})
		if err == nil {
			err = st.Close()
		}
		opened <- err
	}()
	return opened
}
