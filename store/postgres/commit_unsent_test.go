package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWrite_CommitNeverSent: the connection of a write transaction is
// terminated (pg_terminate_backend: a DBA's, an idle timeout's) before its
// COMMIT is sent, and its function goes on after a failed statement (as
// group commit's does: each operation's error is its own, and a failed
// SAVEPOINT is that operation's). The COMMIT then never leaves this
// process, so the write cannot have committed: its error says so at once
// (the commit's own error), not store.ErrCommitUnknown, and not after
// asking the server for 5 s.
func TestWrite_CommitNeverSent(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	app := "poolq_unsent_" + strings.ReplaceAll(uuid.NewString()[:8], "-", "")
	st := pgtest.Open(t, pgtest.WithParams(url, "application_name="+app), postgres.Options{MaxConns: 1})
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer admin.Close(ctx)
	kill := func() {
		t.Helper()
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&n))
		require.Equal(t, 1, n, "the store's connection")
		require.Eventually(t, func() bool {
			var left int
			return admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`, app).Scan(&left) == nil && left == 0
		}, 5*time.Second, time.Millisecond, "its backend exits")
	}
	read := func(tx store.Tx) error {
		_, err := tx.Pool(ctx, uuid.New())
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	}

	for _, statements := range []int{1, 2} {
		// A first statement on the connection, then the kill while it
		// is idle in the pool (or, with 2, in the transaction).
		require.NoError(t, st.Write(ctx, read))
		var stmtErr error
		start := time.Now()
		err = st.Write(ctx, func(tx store.Tx) error {
			if statements == 2 {
				if err := read(tx); err != nil {
					return err
				}
			}
			kill()
			stmtErr = read(tx)
			return nil // the failure is one operation's
		})
		require.Error(t, stmtErr, "%d: the statement after the kill", statements)
		require.Error(t, err, "%d: the write", statements)
		require.NotErrorIs(t, err, store.ErrCommitUnknown, "%d: the COMMIT was never sent", statements)
		require.Less(t, time.Since(start), 2*time.Second, "%d: the write failed after %v", statements, time.Since(start))
		t.Logf("%d: %v (the statement: %v)", statements, err, stmtErr)
	}
}
