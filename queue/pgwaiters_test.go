package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// awaitWaiters polls, in the test's goroutine, until at least n server
// processes wait for a lock that tx's process holds, and returns them
// (the lowest pid first); it fails the test after wait.
//
// The server keeps what a transaction first reads of pg_stat_activity
// until the transaction ends: a process that connects later is not in
// it. A test holding its locks in tx, waiting for a call that opens a
// new connection, saw no waiter ever (the flake of
// TestPostgres_FaultMidTransactionWritesNothing in CI's race run): so
// each poll clears that snapshot first. It polls here rather than in
// require.Eventually, whose condition runs in another goroutine that may
// still be using tx's connection when a failed test closes it.
func awaitWaiters(t *testing.T, tx pgx.Tx, n int, wait time.Duration, what string) []int32 {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(wait)
	for {
		_, err := tx.Exec(ctx, `SELECT pg_stat_clear_snapshot()`)
		require.NoError(t, err)
		rows, err := tx.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid)) ORDER BY pid`)
		require.NoError(t, err)
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		require.NoError(t, err)
		if len(pids) >= n {
			return pids
		}
		if time.Now().After(deadline) {
			require.FailNow(t, "waiters not seen", "%s: %d processes wait for the lock after %v, want %d", what, len(pids), wait, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAwaitWaiters_SeesALaterConnection: a process that connects after the
// transaction holding the lock has looked once, and then waits for the
// lock, is seen.
func TestAwaitWaiters_SeesALaterConnection(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	table := pgx.Identifier{schema, "t"}.Sanitize()
	holder, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer holder.Close(ctx)
	_, err = holder.Exec(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()+`; CREATE TABLE `+table+` (k int)`)
	require.NoError(t, err)
	tx, err := holder.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `LOCK TABLE `+table+` IN EXCLUSIVE MODE`)
	require.NoError(t, err)
	var seen int
	require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity`).Scan(&seen), "the transaction reads pg_stat_activity once")

	late, err := pgx.Connect(ctx, url) // after that read
	require.NoError(t, err)
	defer late.Close(context.Background())
	var pid int32
	require.NoError(t, late.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	done := make(chan error, 1)
	go func() { _, err := late.Exec(ctx, `INSERT INTO `+table+` VALUES (1)`); done <- err }()
	require.Equal(t, []int32{pid}, awaitWaiters(t, tx, 1, 10*time.Second, "the later connection's insert"))
	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, <-done)
}
