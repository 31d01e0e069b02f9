package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_RoleIdleSessionTimeout: a DBA's idle_session_timeout for
// the service's role (PostgreSQL 14 and later: the server ends a session
// idle outside a transaction that long), here 300 ms. The store's sessions
// run without it, as they run without the role's statement_timeout:
//
//   - a call after a pause shorter than a second (pgx's pool checks only
//     the connections idle for longer) does not fail with "terminating
//     connection due to idle-session timeout";
//   - the listener's session, idle between notifications by design, is not
//     ended every 300 ms (each time, the signals sent until it listens again
//     are lost, and it waits longer before each attempt, up to 2 s), and a
//     Dequeue blocked on this node wakes within milliseconds of another
//     node's Add (PollInterval is an hour).
func TestPostgres_RoleIdleSessionTimeout(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var version int
	require.NoError(t, conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version))
	if version < 140000 {
		t.Skip("idle_session_timeout is PostgreSQL 14's")
	}
	schema := pgtest.Schema(t, url)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	role := "poolq_is_" + strings.TrimPrefix(schema, "poolq_test_")
	roleURL := pgtest.LoginRole(t, url, role,
		"GRANT USAGE, CREATE ON SCHEMA "+schema+" TO %s", "ALTER ROLE %s SET idle_session_timeout = '300ms'")

	st := pgtest.OpenSchema(t, roleURL, postgres.Options{Schema: schema, MaxConns: 2})
	opts := queue.Options{PollInterval: time.Hour}
	eng := openEngine(t, st, opts)
	other := openEngine(t, pgtest.OpenSchema(t, url, postgres.Options{Schema: schema}), opts)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "idle", Description: "a role's idle_session_timeout", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(4)...)
	require.NoError(t, err)

	listener := func() (pid int) {
		t.Helper()
		err := conn.QueryRow(ctx, `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND usename = $2`,
			"poolq listener "+schema, role).Scan(&pid)
		if err != nil {
			return 0
		}
		return pid
	}
	require.Eventually(t, func() bool { return listener() != 0 }, 5*time.Second, 5*time.Millisecond, "the listener connects")
	pid := listener()

	// Calls 600 ms apart: their connections idle longer than the role's
	// timeout, not long enough for pgx's pool to check them.
	for i := range 4 {
		time.Sleep(600 * time.Millisecond)
		l, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err, "claim %d, after 600 ms idle", i)
		require.NoError(t, eng.Complete(ctx, l, ""), "complete %d", i)
	}
	require.Equal(t, pid, listener(), "the listener's session after 2.4 s (the role's idle_session_timeout: 300 ms)")

	got := blockedDequeue(t, eng, p.UUID)
	time.Sleep(600 * time.Millisecond)
	t0 := time.Now()
	_, err = other.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	wokenWithin(t, "an Add on the other node", got, t0, time.Second)
}
