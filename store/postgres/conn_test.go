package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// sends counts what a connection sends: each query, statement or batch is
// one round trip (once its statements are prepared on the connection).
type sends struct{ n atomic.Int64 }

func (s *sends) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *sends) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (s *sends) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	s.n.Add(1)
	return ctx
}
func (s *sends) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (s *sends) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// tracedConnWithTable is connWithTable with the sends counted (the
// table's creation not included).
func tracedConnWithTable(t *testing.T) (*pgx.Conn, *sends) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(pgtest.URL(t))
	require.NoError(t, err)
	tr := &sends{}
	cfg.Tracer = tr
	c, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close(context.Background()) })
	_, err = c.Exec(ctx, `CREATE TEMP TABLE t (n int CHECK (n < 100))`)
	require.NoError(t, err)
	tr.n.Store(0)
	return c, tr
}

// TestWriteConn_Deferred: a deferred statement is sent in front of the
// next one, whichever way that one is sent, in the same round trip, and
// that one sees its effect; one deferred at the end goes with COMMIT.
func TestWriteConn_Deferred(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	count := `SELECT count(*) FROM t`
	for name, next := range map[string]func(w *postgres.WriteConn) (int, error){
		"Exec": func(w *postgres.WriteConn) (int, error) {
			tag, err := w.Exec(ctx, `UPDATE t SET n = n + 1`)
			return int(tag.RowsAffected()), err
		},
		"Query": func(w *postgres.WriteConn) (int, error) {
			rows, err := w.Query(ctx, count)
			if err != nil {
				return 0, err
			}
			n, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
			return n, err
		},
		"QueryRow": func(w *postgres.WriteConn) (int, error) {
			var n int
			return n, w.QueryRow(ctx, count).Scan(&n)
		},
		"SendBatch": func(w *postgres.WriteConn) (int, error) {
			b := &pgx.Batch{}
			b.Queue(count)
			br := w.SendBatch(ctx, b)
			var n int
			err := br.QueryRow().Scan(&n)
			if cerr := br.Close(); err == nil {
				err = cerr
			}
			return n, err
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, tr := tracedConnWithTable(t)
			w := postgres.NewWriteConn(c)
			w.Defer(`INSERT INTO t VALUES ($1)`, 1) // the first: BEGIN goes with it
			require.Zero(t, tr.n.Load(), "nothing sent yet")
			w.Defer(`INSERT INTO t VALUES ($1)`, 2)
			n, err := next(w)
			require.NoError(t, err)
			require.Equal(t, 2, n, "the next statement sees both rows")
			require.Equal(t, int64(1), tr.n.Load(), "BEGIN, both and the next statement sent together")

			w.Defer(`INSERT INTO t VALUES ($1)`, 3) // inside the transaction now
			n, err = next(w)
			require.NoError(t, err)
			require.Equal(t, 3, n, "the next statement sees it")
			require.Equal(t, int64(2), tr.n.Load(), "sent with the next statement")

			w.Defer(`INSERT INTO t VALUES ($1)`, 4)
			require.NoError(t, w.Commit(ctx, &pgx.Batch{}))
			require.Equal(t, int64(3), tr.n.Load(), "the last one went with COMMIT")
			require.Equal(t, byte('I'), c.PgConn().TxStatus(), "committed")
			require.Equal(t, 4, rowsOf(t, c))
		})
	}
}

// TestWriteConn_DeferredFails: a deferred statement that fails fails the
// call that sent it, whose own statement does not run, and leaves the
// transaction for rollback; at the end, it fails the commit. Rollback
// drops what was deferred and not sent.
func TestWriteConn_DeferredFails(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var check *pgconn.PgError
	c, _ := tracedConnWithTable(t)
	w := postgres.NewWriteConn(c)
	_, err := w.Exec(ctx, `INSERT INTO t VALUES (1)`)
	require.NoError(t, err)
	w.Defer(`INSERT INTO t VALUES (100)`) // breaks the CHECK
	_, err = w.Exec(ctx, `INSERT INTO t VALUES (2)`)
	require.ErrorAs(t, err, &check)
	require.Equal(t, "23514", check.Code, "the deferred statement's error")
	require.Equal(t, byte('E'), c.PgConn().TxStatus(), "failed, for rollback")
	require.NoError(t, w.Rollback(ctx))
	require.Zero(t, rowsOf(t, c))

	// At the commit.
	_, err = w.Exec(ctx, `INSERT INTO t VALUES (1)`)
	require.NoError(t, err)
	w.Defer(`INSERT INTO t VALUES (100)`)
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO t VALUES (2)`)
	require.ErrorAs(t, w.Commit(ctx, b), &check)
	require.Equal(t, byte('E'), c.PgConn().TxStatus(), "not committed")
	require.NoError(t, w.Rollback(ctx))
	require.Zero(t, rowsOf(t, c))

	// Flush sends them now, and says how they went.
	require.NoError(t, w.Flush(ctx), "nothing deferred: nothing to send")
	require.Equal(t, byte('I'), c.PgConn().TxStatus(), "not even BEGIN")
	w.Defer(`INSERT INTO t VALUES (1)`)
	require.NoError(t, w.Flush(ctx))
	require.Equal(t, byte('T'), c.PgConn().TxStatus())
	w.Defer(`INSERT INTO t VALUES (100)`)
	require.ErrorAs(t, w.Flush(ctx), &check)
	require.NoError(t, w.Rollback(ctx))

	// Rollback drops the unsent ones.
	w.Defer(`INSERT INTO t VALUES (1)`)
	require.NoError(t, w.Rollback(ctx))
	require.NoError(t, w.Commit(ctx, &pgx.Batch{}), "nothing left to send")
	_, err = w.Exec(ctx, `INSERT INTO t VALUES (2)`)
	require.NoError(t, err)
	require.NoError(t, w.Commit(ctx, &pgx.Batch{}))
	var ns []int
	rows, err := c.Query(ctx, `SELECT n FROM t`)
	require.NoError(t, err)
	ns, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{2}, ns, "the dropped statement never ran")
}
