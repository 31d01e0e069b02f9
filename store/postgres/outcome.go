package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
)

// ErrCommitUnknown is wrapped by the error of a write whose COMMIT was
// sent but whose answer never came (the connection failed or went silent
// past its bound, see [Options.LockTimeout]), when the Store could not
// learn the outcome on another connection either (the database
// unreachable for 5 s, or the server restarted since and the
// transaction's id reads committed: see serverRun). The write may have
// committed or not:
// its caller must not assume that nothing happened. It is
// [store.ErrCommitUnknown].
var ErrCommitUnknown = store.ErrCommitUnknown

// outcomeTimeout bounds how long commitOutcome asks.
const outcomeTimeout = roundTripMargin

// xactStatusSQL returns the status of transaction $1 (committed, aborted
// or in progress) and whether the server has been another since the
// transaction's connection was made (see serverRun: $3 and $4 are what
// serverRunSQL read then, if $5, else unknown and taken for the same), and ends the backend $2 while it still runs that
// transaction: its connection is lost to this process, and its client
// will never send anything more, so it would otherwise hold the
// transaction, and its locks, until the server noticed the connection's
// end or the idle session timeout. A backend ended before it committed
// aborts; one ending while it commits finishes the commit first. On
// another server run, the backend and the transaction id may be another
// session's: it is left alone.
const xactStatusSQL = `WITH run (started, stats_reset) AS (SELECT ` + serverRunCols + `),
	other AS (SELECT $5::bool AND (started <> $3 OR stats_reset IS DISTINCT FROM $4) AS restarted FROM run)
SELECT pg_xact_status($1::xid8),
	(SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $2 AND backend_xid = $1::xid8::xid
		AND NOT (SELECT restarted FROM other)),
	(SELECT restarted FROM other)`

// serverRunSQL reads what tells one run of the database server from the
// next (see serverRun), on each new connection of the Store's pool.
const serverRunSQL = `SELECT ` + serverRunCols

// serverRunCols are serverRunSQL's columns: when the postmaster started,
// and when the shared statistics were last reset, which the server does
// when it recovers from a crash, also one that it recovers from without a
// new postmaster (a backend that died, killed by the OOM killer, say).
const serverRunCols = `pg_postmaster_start_time(), pg_stat_get_bgwriter_stat_reset_time()`

// serverRun tells a run of the database server from the next: a server
// that crashed forgets the transaction ids whose log it had not written
// (nor flushed: synchronous_commit off), and hands them out again after
// its recovery, so the status of a lost transaction's id, asked on
// another run, may be another transaction's. It is read when a connection
// is made (every connection of an earlier run ended with it) and kept in
// the connection's CustomData under serverRunKey; a clean restart, a
// failover to a standby, or an operator's pg_stat_reset_shared('bgwriter')
// make another too, which only makes commitOutcome more careful.
type serverRun struct {
	started    time.Time
	statsReset *time.Time // NULL in no version poolq runs on, but compared as it comes
}

const serverRunKey = "poolq.serverRun"

// backendPIDKey is the key, in a connection's CustomData, of its server
// process (see readServerRun).
const backendPIDKey = "poolq.backendPID"

// readServerRun reads the server's run on a new connection (pgxpool's
// AfterConnect, one round trip a connection, with the server process
// running the connection's session) and keeps both in the connection. A
// run it cannot read (the functions' EXECUTE revoked from the Store's
// role, say) is left unknown, and the connection used all the same.
// commitOutcome's question (xactStatusSQL) calls the same functions,
// and the server refuses it likewise on the Store's connections (their
// generic plans call them whatever $5 says): a lost commit's outcome is
// then unknown, never taken from a status that may be another
// transaction's (TestCommitOutcome_Failover/RunUnreadable).
//
// The server process is read, not taken from the key the connection got
// at its start: a pooler (PgBouncer) gives its clients keys of its own,
// and commitOutcome, ending a process by that number, would end none, or
// another (TestPgBouncer_LostCommitEnded). In session mode, the only one
// Open accepts, the process is the connection's for its life.
func readServerRun(ctx context.Context, conn *pgx.Conn) error {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_backend_pid()`)
	b.Queue(serverRunSQL)
	br := conn.SendBatch(ctx, b)
	defer br.Close()
	var pid uint32
	if err := br.QueryRow().Scan(&pid); err != nil {
		return nil // the connection's key stands in (see connBackendPID)
	}
	conn.PgConn().CustomData()[backendPIDKey] = pid
	var r serverRun
	if err := br.QueryRow().Scan(&r.started, &r.statsReset); err == nil {
		conn.PgConn().CustomData()[serverRunKey] = r
	}
	return nil
}

// connBackendPID returns the server process of conn's session, as
// readServerRun read it, else the one its key names.
func connBackendPID(conn *pgx.Conn) uint32 {
	if pid, ok := conn.PgConn().CustomData()[backendPIDKey].(uint32); ok {
		return pid
	}
	return conn.PgConn().PID()
}

// connServerRun returns the server's run that conn was made in, nil when
// unknown (a connection not made by the pool).
func connServerRun(conn *pgx.Conn) *serverRun {
	if r, ok := conn.PgConn().CustomData()[serverRunKey].(serverRun); ok {
		return &r
	}
	return nil
}

// lostCommit is the error of a COMMIT that the server did not answer:
// the connection failed (closed, reset, or silent past its round trip's
// bound, which pgx closes) after it was sent, so the transaction may have
// committed or not. xid is the transaction's id, read with BEGIN ("" for
// a transaction sent whole in one round trip: BEGIN, statements and
// COMMIT), pid its server process, run the server's run its connection
// was made in (nil: unknown).
type lostCommit struct {
	xid string
	pid uint32
	run *serverRun
	err error
}

// lostCommitOf returns the lostCommit of w's transaction, whose COMMIT
// failed with err.
func lostCommitOf(w *writeConn, err error) *lostCommit {
	return &lostCommit{xid: w.xid, pid: connBackendPID(w.c), run: connServerRun(w.c), err: err}
}

func (e *lostCommit) Error() string { return e.err.Error() }
func (e *lostCommit) Unwrap() error { return e.err }

// commitOutcome returns what a lost commit came to: nil if it committed
// after all (the answer was lost), the commit's error if it did not, and
// an error wrapping [ErrCommitUnknown] and the commit's error when that
// cannot be learned. It asks on a connection of the pool (the lost one
// released) for the status of the transaction's id, until it is committed
// or aborted, for at most outcomeTimeout.
//
// When the server has been another since the lost connection was made (it
// restarted: see serverRun), an id that is in progress or aborted is
// another transaction's or its own that did not commit, either way not a
// commit of its own, but a committed one may be another's: the outcome is
// then unknown. (Had its commit survived, the server's recovery would
// have seen its id, and handed it out to no other.)
func (s *Store) commitOutcome(ctx context.Context, lost *lostCommit) error {
	if lost.xid == "" {
		return fmt.Errorf("%w: %w", ErrCommitUnknown, lost.err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	var started time.Time
	var statsReset *time.Time
	if lost.run != nil {
		started, statsReset = lost.run.started, lost.run.statsReset
	}
	pause := time.Millisecond
	for {
		var status *string
		var ended, restarted *bool
		err := s.pool.QueryRow(ctx, xactStatusSQL, lost.xid, int32(lost.pid), started, statsReset, lost.run != nil).
			Scan(&status, &ended, &restarted)
		another := err == nil && restarted != nil && *restarted
		switch {
		case err != nil:
		case status != nil && *status == "committed" && another:
			return fmt.Errorf("%w: %w (transaction %s: the database server restarted since, and may have given its id to another)",
				ErrCommitUnknown, lost.err, lost.xid)
		case status != nil && *status == "committed":
			return nil
		case status != nil && *status == "aborted", another:
			return lost.err
		default:
			err = errors.New("still in progress")
		}
		if s.closed.Load() {
			return fmt.Errorf("%w: %w (transaction %s: %w)", ErrCommitUnknown, lost.err, lost.xid, store.ErrClosed)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w (transaction %s: %v)", ErrCommitUnknown, lost.err, lost.xid, err)
		case <-time.After(pause):
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}
