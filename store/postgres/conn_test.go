package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// connWithTable returns a connection of its own, with an empty temporary
// table t (n int): a session's, gone with it.
func connWithTable(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, pgtest.URL(t))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(context.Background()) })
	_, err = c.Exec(ctx, `CREATE TEMP TABLE t (n int CHECK (n < 100))`)
	require.NoError(t, err)
	return c
}

func rowsOf(t *testing.T, c *pgx.Conn) int {
	t.Helper()
	var n int
	require.NoError(t, c.QueryRow(context.Background(), `SELECT count(*) FROM t`).Scan(&n))
	return n
}

// TestWriteConn_FirstStatementBegins: whichever way the first statement is
// sent, it runs inside the transaction that BEGIN, sent with it, opened;
// rollback undoes it and leaves the connection idle.
func TestWriteConn_FirstStatementBegins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, first := range map[string]func(w *postgres.WriteConn) error{
		"Exec": func(w *postgres.WriteConn) error {
			_, err := w.Exec(ctx, `INSERT INTO t VALUES ($1)`, 1)
			return err
		},
		"Query": func(w *postgres.WriteConn) error {
			rows, err := w.Query(ctx, `INSERT INTO t VALUES ($1) RETURNING n`, 1)
			if err != nil {
				return err
			}
			for rows.Next() { // read to the end, not closed: the batch closes itself
			}
			return rows.Err()
		},
		"QueryRow": func(w *postgres.WriteConn) error {
			var n int
			return w.QueryRow(ctx, `INSERT INTO t VALUES ($1) RETURNING n`, 1).Scan(&n)
		},
		"SendBatch": func(w *postgres.WriteConn) error {
			b := &pgx.Batch{}
			b.Queue(`INSERT INTO t VALUES ($1)`, 1)
			b.Queue(`INSERT INTO t VALUES ($1)`, 2)
			return w.SendBatch(ctx, b).Close()
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := connWithTable(t)
			w := postgres.NewWriteConn(c)
			require.NoError(t, first(w))
			require.Equal(t, byte('T'), c.PgConn().TxStatus(), "in a transaction")
			_, err := w.Exec(ctx, `INSERT INTO t VALUES (3)`) // the next statement goes alone
			require.NoError(t, err)
			require.NoError(t, w.Rollback(ctx))
			require.Equal(t, byte('I'), c.PgConn().TxStatus(), "idle after the rollback")
			require.Zero(t, rowsOf(t, c), "the rollback undid every statement")
		})
	}
}

// TestWriteConn_Commit: the last statements and COMMIT go together; a
// transaction that sent nothing commits without a statement.
func TestWriteConn_Commit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := connWithTable(t)
	w := postgres.NewWriteConn(c)
	require.NoError(t, w.Commit(ctx, &pgx.Batch{}), "nothing sent")
	require.Equal(t, byte('I'), c.PgConn().TxStatus())

	_, err := w.Exec(ctx, `INSERT INTO t VALUES (1)`)
	require.NoError(t, err)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO t VALUES (2)`)
	require.NoError(t, w.Commit(ctx, b))
	require.Equal(t, byte('I'), c.PgConn().TxStatus(), "committed")
	require.NoError(t, w.Rollback(ctx), "after a commit, rollback does nothing")
	require.Equal(t, 2, rowsOf(t, c))

	// Only the batch, BEGIN in front of it.
	b = &pgx.Batch{}
	b.Queue(`INSERT INTO t VALUES (3)`)
	require.NoError(t, w.Commit(ctx, b))
	require.Equal(t, 3, rowsOf(t, c))
}

// TestWriteConn_CommitFails: a statement of the last batch that fails
// leaves COMMIT unsent and the transaction for rollback, which undoes it
// all; COMMIT of a transaction that failed before is answered ROLLBACK,
// and commit says so.
func TestWriteConn_CommitFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := connWithTable(t)
	w := postgres.NewWriteConn(c)
	_, err := w.Exec(ctx, `INSERT INTO t VALUES (1)`)
	require.NoError(t, err)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO t VALUES (100)`) // breaks the CHECK
	b.Queue(`INSERT INTO t VALUES (2)`)
	require.Error(t, w.Commit(ctx, b))
	require.Equal(t, byte('E'), c.PgConn().TxStatus(), "failed, not committed")
	require.NoError(t, w.Rollback(ctx))
	require.Equal(t, byte('I'), c.PgConn().TxStatus())
	require.Zero(t, rowsOf(t, c))

	_, err = w.Exec(ctx, `INSERT INTO t VALUES (1)`)
	require.NoError(t, err)
	_, err = w.Exec(ctx, `INSERT INTO t VALUES (100)`)
	require.Error(t, err)
	require.ErrorIs(t, w.Commit(ctx, &pgx.Batch{}), postgres.ErrCommitRolledBack)
	require.Equal(t, byte('I'), c.PgConn().TxStatus())
	require.NoError(t, w.Rollback(ctx), "nothing left to roll back")
	require.Zero(t, rowsOf(t, c))
}
