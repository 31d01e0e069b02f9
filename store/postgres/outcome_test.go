package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestCommitOutcome: the outcome of a COMMIT whose answer was lost is
// learned from the transaction's status on another connection: committed
// is success, aborted is the commit's own error (not ErrCommitUnknown: the
// write did not happen), a transaction still in progress is ended (its
// client will send nothing more) and so aborted; without the
// transaction's id, or once the Store is closed, the outcome is unknown.
// It is asked even when the caller's context has ended.
func TestCommitOutcome(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	lost := errors.New("connection reset (the commit's answer)")

	// begin starts a transaction on a connection of its own and returns
	// its id and backend.
	begin := func(t *testing.T) (pgx.Tx, *pgx.Conn, string, uint32) {
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close(context.Background()) })
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		var xid string
		require.NoError(t, tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid))
		return tx, conn, xid, conn.PgConn().PID()
	}

	t.Run("Committed", func(t *testing.T) {
		tx, _, xid, pid := begin(t)
		require.NoError(t, tx.Commit(ctx))
		require.NoError(t, postgres.CommitOutcome(ctx, st, xid, pid, lost))
	})
	t.Run("CommittedCallerGone", func(t *testing.T) {
		// The caller's context ended (why the answer was lost, maybe):
		// the outcome is asked all the same.
		tx, _, xid, pid := begin(t)
		require.NoError(t, tx.Commit(ctx))
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		require.NoError(t, postgres.CommitOutcome(cctx, st, xid, pid, lost))
	})
	t.Run("Aborted", func(t *testing.T) {
		tx, _, xid, pid := begin(t)
		require.NoError(t, tx.Rollback(ctx))
		err := postgres.CommitOutcome(ctx, st, xid, pid, lost)
		require.ErrorIs(t, err, lost)
		require.NotErrorIs(t, err, store.ErrCommitUnknown, "the transaction is known not to have committed")
	})
	t.Run("InProgressIsEnded", func(t *testing.T) {
		_, conn, xid, pid := begin(t)
		err := postgres.CommitOutcome(ctx, st, xid, pid, lost)
		require.ErrorIs(t, err, lost)
		require.NotErrorIs(t, err, store.ErrCommitUnknown, "ended before it committed: aborted")
		require.Error(t, conn.Ping(ctx), "its backend was terminated")
	})
	t.Run("InProgressAfterARestart", func(t *testing.T) {
		// The server has restarted since the lost commit's connection was
		// made: a transaction in progress with its id is another's (its
		// own did not survive), so the commit did not happen, and the
		// other is left alone; known at once, not after outcomeTimeout.
		_, conn, xid, pid := begin(t)
		start := time.Now()
		err := postgres.CommitOutcomeAfterRestart(ctx, st, xid, pid, lost)
		require.ErrorIs(t, err, lost)
		require.NotErrorIs(t, err, store.ErrCommitUnknown, "in progress on another run: not its commit")
		require.Less(t, time.Since(start), 2*time.Second)
		require.NoError(t, conn.Ping(ctx), "another's transaction: its backend is not ended")
	})
	t.Run("NoTransactionID", func(t *testing.T) {
		// Nothing to ask: unknown at once, not after asking for seconds.
		start := time.Now()
		err := postgres.CommitOutcome(ctx, st, "", 0, lost)
		require.ErrorIs(t, err, store.ErrCommitUnknown)
		require.ErrorIs(t, err, lost)
		require.Less(t, time.Since(start), 2*time.Second)
	})
	t.Run("StoreClosed", func(t *testing.T) {
		other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema()})
		_, _, xid, pid := begin(t)
		require.NoError(t, other.Close())
		err := postgres.CommitOutcome(ctx, other, xid, pid, lost)
		require.ErrorIs(t, err, store.ErrCommitUnknown)
		require.ErrorIs(t, err, store.ErrClosed)
		require.ErrorIs(t, err, lost)
	})
}
