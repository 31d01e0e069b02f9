package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

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
// transactions of about ten (bench/RESULTS.md has what that saves).
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
//
// Each round trip is bounded by timeout (see [Store.roundTripTimeout]):
// past it pgx closes the connection, whatever the server does, and the
// call fails. The transaction's id (xid) is read with BEGIN, so that the
// outcome of a commit whose answer never came can be asked on another
// connection (see [Store.commitOutcome]).
type writeConn struct {
	c        *pgx.Conn
	timeout  time.Duration      // bounds each round trip; 0: no bound
	begun    bool               // BEGIN has been sent, and neither COMMIT nor ROLLBACK since
	xid      string             // the transaction's id (an xid8, as text), once read with BEGIN
	deferred []*pgx.QueuedQuery // not sent yet, in order
	// until, when not zero, ends the round trips of the statements before
	// COMMIT too, stmtSlack after it: the wait bound of the one caller the
	// transaction runs for (see writeOnce), who does not wait longer for a
	// server gone silent. Its COMMIT's round trip is not ended there (its
	// outcome must then be learned); its ROLLBACK's is (see rollback).
	until time.Time
	// caller, when not nil, ends the round trips of the statements before
	// COMMIT too, when it ends: the context of a Write that can end (the
	// one caller of a group commit write, who left: see store.Store's
	// Write). A statement that waits for another session's lock would
	// otherwise hold the transaction, and its caller's turn, up to
	// LockTimeout. Its COMMIT's round trip is not ended (see until); its
	// ROLLBACK's is.
	caller context.Context
}

// stmtSlack is how long after until a statement's round trip ends: the
// server's own end of a lock wait at until (its lock_timeout) comes first,
// and leaves the connection usable.
const stmtSlack = 100 * time.Millisecond

var _ querier = (*writeConn)(nil)

const (
	beginSQL = `BEGIN ISOLATION LEVEL READ COMMITTED`
	// xidSQL gives the transaction its id at once (it would otherwise get
	// one at its first write, which often travels with COMMIT), so that
	// the id is known before COMMIT is sent.
	xidSQL    = `SELECT pg_current_xact_id()::text`
	commitSQL = `COMMIT`
)

// bound returns ctx bounded by the deadline of one round trip, and the
// function that releases it.
func (w *writeConn) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return withBound(ctx, w.timeout)
}

// withBound returns ctx with a deadline d from now, or ctx itself when d
// is 0 (no bound).
func withBound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// stmtBound is bound for a statement's round trip, ended stmtSlack after
// until too, if set, and with caller, if set.
func (w *writeConn) stmtBound(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := w.bound(ctx)
	if !w.until.IsZero() {
		var cancelUntil context.CancelFunc
		ctx, cancelUntil = context.WithDeadline(ctx, w.until.Add(stmtSlack))
		cancel = chain(cancelUntil, cancel)
	}
	if w.caller != nil {
		var cancelCaller context.CancelFunc
		ctx, cancelCaller = context.WithCancel(ctx)
		unhook := context.AfterFunc(w.caller, cancelCaller)
		cancel = chain(func() { unhook(); cancelCaller() }, cancel)
	}
	return ctx, cancel
}

// chain returns a function that calls first, then then.
func chain(first, then context.CancelFunc) context.CancelFunc {
	return func() { first(); then() }
}

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
		ctx, cancel := w.stmtBound(ctx)
		defer cancel()
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
		ctx, cancel := w.stmtBound(ctx)
		rows, err := w.c.Query(ctx, sql, args...)
		if err != nil {
			cancel()
			return nil, err
		}
		return &batchRows{Rows: rows, cancel: cancel}, nil
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
		ctx, cancel := w.stmtBound(ctx)
		return batchRow{row: w.c.QueryRow(ctx, sql, args...), cancel: cancel}
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

// batchRows are the rows of a query: of the one query of a batch (with
// BEGIN or deferred statements in front of it), closing them closes the
// batch; of a query alone, it releases its round trip's deadline.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults   // or nil
	cancel context.CancelFunc // or nil
	err    error              // of closing the batch
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
	if r.cancel != nil {
		r.cancel()
		r.cancel = nil
	}
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// batchRow is the row of a query: of the one query of a batch (with
// BEGIN or deferred statements in front of it), scanning it closes the
// batch; of a query alone, it releases its round trip's deadline.
type batchRow struct {
	row    pgx.Row
	br     pgx.BatchResults   // or nil
	cancel context.CancelFunc // or nil
}

func (r batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if r.br != nil {
		if cerr := r.br.Close(); err == nil {
			err = cerr
		}
	}
	if r.cancel != nil {
		r.cancel()
	}
	return err
}

// SendBatch sends b, with BEGIN in front of it when it is the
// transaction's first statement, and the deferred statements; the results
// are b's alone. When one of those in front fails, every result of b is
// its error.
func (w *writeConn) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	ctx, cancel := w.stmtBound(ctx)
	if w.ready() {
		return boundResults{w.c.SendBatch(ctx, b), cancel}
	}
	all, lead := w.lead(b)
	br := w.c.SendBatch(ctx, all)
	if err := w.readLead(br, lead); err != nil {
		br.Close()
		cancel()
		return pgx.FailedBatchResults(b, err)
	}
	return boundResults{br, cancel}
}

// boundResults are the results of a batch alone: closing them releases
// its round trip's deadline.
type boundResults struct {
	pgx.BatchResults
	cancel context.CancelFunc
}

func (r boundResults) Close() error {
	err := r.BatchResults.Close()
	r.cancel()
	return err
}

// lead returns b with what must go in front of it (BEGIN and xidSQL if
// the transaction has not begun, then the deferred statements) and those,
// and counts them as sent.
func (w *writeConn) lead(b *pgx.Batch) (*pgx.Batch, []*pgx.QueuedQuery) {
	q := make([]*pgx.QueuedQuery, 0, 2+len(w.deferred)+len(b.QueuedQueries))
	if !w.begun {
		q = append(q, &pgx.QueuedQuery{SQL: beginSQL}, &pgx.QueuedQuery{SQL: xidSQL})
		w.begun = true
	}
	q = append(q, w.deferred...)
	w.deferred = nil
	return &pgx.Batch{QueuedQueries: append(slices.Clip(q), b.QueuedQueries...)}, q
}

// readLead reads the results of lead's statements, the transaction's id
// among them, and returns the first error.
func (w *writeConn) readLead(br pgx.BatchResults, lead []*pgx.QueuedQuery) error {
	for _, q := range lead {
		var err error
		if q.SQL == xidSQL {
			err = br.QueryRow().Scan(&w.xid)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			return err
		}
	}
	return nil
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
	ctx, cancel := w.bound(ctx)
	defer cancel()
	all, lead := w.lead(b)
	all.Queue(commitSQL)
	br := w.c.SendBatch(ctx, all)
	var tag pgconn.CommandTag
	err := w.readLead(br, lead)
	for i := len(lead); i < all.Len() && err == nil; i++ {
		tag, err = br.Exec()
	}
	cerr := br.Close()
	if err == nil && tag.String() == "COMMIT" {
		// Committed, whatever follows: the server ends a session it was
		// told to end (pg_terminate_backend, a fast shutdown) after the
		// next message it reads, which may be this batch's Sync, once the
		// COMMIT's tag is sent; its FATAL error then ends the round trip.
		// The connection, closed, is not reused.
		w.begun = false
		return nil
	}
	if err == nil {
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
// deferred statements are dropped. Its round trip is bounded as a
// statement's (stmtBound): a caller who stops waiting for a silent
// connection's statements does not wait for its ROLLBACK either. One cut
// short costs the connection only (the pool closes a connection left in a
// transaction), whose end ends the transaction on the server.
func (w *writeConn) rollback(ctx context.Context) error {
	w.drop()
	if !w.begun {
		return nil
	}
	ctx, cancel := w.stmtBound(ctx)
	defer cancel()
	_, err := w.c.Exec(ctx, "ROLLBACK")
	if err == nil {
		w.begun = false
	}
	return err
}

// idleSessionOff returns the statement that turns the server's
// idle_session_timeout off for a session of a server of version (the
// server_version it reports at a connection's start), "" on a server
// without it
// (before PostgreSQL 14, which ends no idle session). A DBA's default for
// the role or the database (a policy against idle clients) would end the
// Store's sessions: the listener's, idle between notifications by design
// (each time, the signals sent until it listens again are lost), and the
// pool's between calls, where a connection idle for less than a second is
// handed out unchecked, and the call given it fails (57P05). The Store
// bounds its idle connections itself: at most MaxConns, and pgxpool closes
// those idle for 30 minutes. The version decides, as a SET of a setting the
// server does not know fails.
func idleSessionOff(version string) string {
	major := 0 // of "15.4 (Debian …)", "14beta1"
	for _, r := range version {
		if r < '0' || r > '9' {
			break
		}
		major = 10*major + int(r-'0')
	}
	if major < 14 {
		return ""
	}
	return "SET idle_session_timeout = 0"
}

// afterConnect readies a new connection of the Store's pool (pgxpool's
// AfterConnect): it gives it the Store's settings, idle_session_timeout
// off among them (see sessionSettings), and reads the server's run (see
// readServerRun).
func (s *Store) afterConnect(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, s.sessionSettings(conn.PgConn().ParameterStatus("server_version"), true)); err != nil {
		return fmt.Errorf("postgres: set the session: %w", err)
	}
	return readServerRun(ctx, conn)
}
