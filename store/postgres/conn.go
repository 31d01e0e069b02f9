package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// querier is what a [txn] sends its statements through: a pgx.Tx (read
// transactions) or a writeConn (write transactions).
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// writeConn is a write transaction run by hand on one connection, so that
// its BEGIN travels with its first statements and its COMMIT with its last
// ones (the count changes and the NOTIFY): two round trips fewer than a
// pgx.Tx, whose Begin and Commit are each a round trip of their own, in
// transactions of about ten (see bench/RESULTS.md, session 9).
//
// The transaction begins with the first statement sent, BEGIN in the same
// round trip (a batch); commit ends it; rollback ends it otherwise, and
// must be called on every other way out. A connection given back to the
// pool still inside a transaction (a rollback that failed, say) is closed
// by the pool, never reused.
//
// A statement whose caller needs nothing from it but success (the writes
// of items: their checks are in the SQL) may be deferred: it is sent in
// front of the transaction's next statement, or with its COMMIT, in the
// same round trip. Its error is the error of the call that sent it (that
// call's own statement was not run: the server skips the rest of a batch
// after an error), and the transaction is then left for rollback. flush
// sends the deferred statements alone, for a caller that must know their
// outcome now.
type writeConn struct {
	c        *pgx.Conn
	begun    bool               // BEGIN has been sent, and neither COMMIT nor ROLLBACK since
	deferred []*pgx.QueuedQuery // not sent yet, in order
}

var _ querier = (*writeConn)(nil)

const (
	beginSQL  = `BEGIN ISOLATION LEVEL READ COMMITTED`
	commitSQL = `COMMIT`
)

// ready reports whether a statement can go alone: the transaction has
// begun and nothing is deferred.
func (w *writeConn) ready() bool { return w.begun && len(w.deferred) == 0 }

// deferExec queues sql to be sent in front of the next statement, or with
// the commit (see writeConn).
func (w *writeConn) deferExec(sql string, args ...any) {
	w.deferred = append(w.deferred, &pgx.QueuedQuery{SQL: sql, Arguments: args})
}

// drop forgets the deferred statements: those of a savepoint rolled back.
func (w *writeConn) drop() { w.deferred = nil }

// flush sends the deferred statements now, and returns the first error.
func (w *writeConn) flush(ctx context.Context) error {
	if len(w.deferred) == 0 {
		return nil
	}
	return w.SendBatch(ctx, &pgx.Batch{}).Close()
}

func (w *writeConn) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if w.ready() {
		return w.c.Exec(ctx, sql, args...)
	}
	br := w.first(ctx, sql, args...)
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

func (w *writeConn) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if w.ready() {
		return w.c.Query(ctx, sql, args...)
	}
	br := w.first(ctx, sql, args...)
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (w *writeConn) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if w.ready() {
		return w.c.QueryRow(ctx, sql, args...)
	}
	br := w.first(ctx, sql, args...)
	return batchRow{row: br.QueryRow(), br: br}
}

// first sends sql as a batch of one, with BEGIN and the deferred
// statements in front of it.
func (w *writeConn) first(ctx context.Context, sql string, args ...any) pgx.BatchResults {
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	return w.SendBatch(ctx, b)
}

// batchRows are the rows of the one query of a batch (with BEGIN or
// deferred statements in front of it): closing them closes the batch.
type batchRows struct {
	pgx.Rows
	br  pgx.BatchResults
	err error // of closing the batch
}

// Next closes the batch after the last row, as pgx closes rows read to
// their end.
func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if r.br != nil {
		r.err = r.br.Close()
		r.br = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is the row of the one query of a batch (with BEGIN or deferred
// statements in front of it): scanning it closes the batch.
type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

// SendBatch sends b, with BEGIN in front of it when it is the
// transaction's first statement, and the deferred statements; the results
// are b's alone. When one of those in front fails, every result of b is
// its error.
func (w *writeConn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if w.ready() {
		return w.c.SendBatch(ctx, b)
	}
	all, n := w.lead(b)
	br := w.c.SendBatch(ctx, all)
	for range n {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return pgx.FailedBatchResults(b, err)
		}
	}
	return br
}

// lead returns b with what must go in front of it (BEGIN if the
// transaction has not begun, then the deferred statements) and how many
// those are, and counts them as sent.
func (w *writeConn) lead(b *pgx.Batch) (*pgx.Batch, int) {
	q := make([]*pgx.QueuedQuery, 0, 1+len(w.deferred)+len(b.QueuedQueries))
	if !w.begun {
		q = append(q, &pgx.QueuedQuery{SQL: beginSQL})
		w.begun = true
	}
	q = append(q, w.deferred...)
	w.deferred = nil
	n := len(q)
	return &pgx.Batch{QueuedQueries: append(q, b.QueuedQueries...)}, n
}

// errCommitRolledBack is returned by commit when the server answered
// COMMIT with ROLLBACK: the transaction had failed.
var errCommitRolledBack = errors.New("postgres: commit: the transaction was rolled back")

// commit sends the deferred statements, b's and COMMIT in one round trip.
// A transaction that sent nothing commits without a statement when nothing
// is deferred and b is empty. When a statement fails, the server skips
// the rest, COMMIT included, and the transaction is left for rollback.
func (w *writeConn) commit(ctx context.Context, b *pgx.Batch) error {
	if !w.begun && len(w.deferred) == 0 && b.Len() == 0 {
		return nil // nothing was sent: nothing to commit
	}
	all, _ := w.lead(b)
	all.Queue(commitSQL)
	br := w.c.SendBatch(ctx, all)
	var tag pgconn.CommandTag
	var err error
	for range all.Len() {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	w.begun = false
	if tag.String() != "COMMIT" {
		return fmt.Errorf("%w (the server answered %q)", errCommitRolledBack, tag.String())
	}
	return nil
}

// rollback ends the transaction if one was begun and not committed; the
// deferred statements are dropped.
func (w *writeConn) rollback(ctx context.Context) error {
	w.drop()
	if !w.begun {
		return nil
	}
	_, err := w.c.Exec(ctx, "ROLLBACK")
	if err == nil {
		w.begun = false
	}
	return err
}
