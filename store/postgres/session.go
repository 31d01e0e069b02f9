package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// sessionSettings returns the statement that gives a new connection of
// the Store its settings: the schema on its search_path, the durability's
// synchronous_commit, UTC, the planner's settings (see planner), and,
// with timeouts (the pool's connections, not the migrations'), its
// idle_in_transaction_session_timeout, lock_timeout and statement_timeout
// (see Options), plus idle_session_timeout off on a server that has it
// (see idleSessionOff). One round trip (several statements of the simple
// protocol).
//
// They are set once connected, never sent in the connection's startup
// packet: a pooler refuses a startup parameter it does not know
// (PgBouncer: "unsupported startup parameter", for all of these but the
// time zone), and the way around it that PgBouncer documents
// (ignore_startup_parameters) drops them, which left the Store's
// connections in the role's search_path, another schema
// (TestPgBouncer_IgnoredStartupParameters). Set in the session, they hold
// for the connection's life, through a pooler in session mode too; Open
// refuses one in transaction mode (see checkOwnSession).
func (s *Store) sessionSettings(version string, timeouts bool) string {
	set := map[string]string{
		"search_path":        pgx.Identifier{s.opts.Schema}.Sanitize(),
		"synchronous_commit": s.opts.Durability.synchronousCommit(),
		"timezone":           "'UTC'",
	}
	for k, v := range planner {
		set[k] = v
	}
	if timeouts {
		set["idle_in_transaction_session_timeout"] = millis(s.opts.IdleInTransactionTimeout)
		set["lock_timeout"] = millis(s.opts.LockTimeout)
		// A role's or database's default statement_timeout (a common DBA
		// policy) shorter than LockTimeout would end a wait for another
		// node's lock before it, with an error of no documented kind, and a
		// blocked Dequeue with it: the round trips' own bound stands in.
		set["statement_timeout"] = "0"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(set)) {
		fmt.Fprintf(&b, "SET %s = %s; ", k, set[k])
	}
	if timeouts {
		b.WriteString(idleSessionOff(version))
	}
	return strings.TrimSuffix(b.String(), "; ")
}

// sessionProbeWait bounds how long checkOwnSession waits for its
// notification: a session of the connection's own has it within
// milliseconds of the NOTIFY's commit.
const sessionProbeWait = 5 * time.Second

// checkOwnSession returns an error wrapping [ErrTransactionPooling] unless
// conn's statements outside a transaction run in one server session, the
// connection's own, for its life: the Store's settings are made once per
// connection (sessionSettings) and its listener LISTENs once. A
// connection to the server itself passes at once: the server process it
// reports at its start (its backend key) is the one running its
// statements. A pooler reports its own key; it passes when conn, having
// LISTENed on a channel of its own, hears a NOTIFY sent on another
// connection: a pooler in session mode keeps conn's server session while
// conn is idle, and passes the notification on within milliseconds. One in
// transaction or statement mode gives the session back to its pool once
// the LISTEN ends, and conn, idle, hears nothing, whichever session runs
// the NOTIFY (the listening one, if the pool hands it out again, delivers
// it to the other connection). It runs before anything is set or written,
// so that a refused Open leaves no setting in the pooler's shared
// sessions (the LISTEN aside, on a channel nobody uses).
func checkOwnSession(ctx context.Context, conn *pgx.Conn, cfg *pgx.ConnConfig) error {
	// Not a prepared statement of pgx's cache: one prepared in one session
	// of a pool in transaction mode is not in the next, and pgx names them
	// by their text, so the nodes opening at once would meet each other's
	// ("prepared statement … already exists"). The unnamed statement lives
	// within the round trip; pgx's simple protocol would refuse a database
	// whose encoding is not UTF8 before checkServer says so.
	var pid uint32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()", pgx.QueryExecModeExec).Scan(&pid); err != nil {
		return fmt.Errorf("read the server process: %w", err)
	}
	if pid == conn.PgConn().PID() {
		return nil // the server itself
	}
	var key [8]byte
	_, _ = rand.Read(key[:])
	name := "poolq_session_" + hex.EncodeToString(key[:])
	channel := pgx.Identifier{name}.Sanitize()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return fmt.Errorf("check the session (LISTEN): %w", err)
	}
	other, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("check the session: connect: %w", err)
	}
	defer other.Close(context.WithoutCancel(ctx))
	if _, err := other.Exec(ctx, "NOTIFY "+channel); err != nil {
		return fmt.Errorf("check the session (NOTIFY): %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, sessionProbeWait)
	defer cancel()
	err = hearOwn(wctx, conn, name)
	switch {
	case err == nil:
		// conn's own session: its LISTEN ends here. A refused conn's
		// LISTEN is left to the pooler's session that ran it: an UNLISTEN
		// would run in whichever session is free, after waiting for one
		// (past ctx and the 5 s above, on a busy pool), and is not needed
		// for a channel nobody uses.
		_, _ = conn.Exec(ctx, "UNLISTEN "+channel)
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("check the session: %w", ctx.Err())
	case errors.Is(wctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%w: a connection to this URL runs its statements in the server sessions of a pool "+
			"(a NOTIFY did not reach its LISTEN within %v); connect to PostgreSQL directly, "+
			"or through the pooler in session mode (PgBouncer: pool_mode = session)", ErrTransactionPooling, sessionProbeWait)
	default:
		return fmt.Errorf("check the session: %w", err)
	}
}

// hearOwn waits for a notification on channel on conn, and passes over
// any other: through a pooler in transaction or statement mode the server
// session that runs conn's statement may be another connection's
// listener, and hand conn that connection's notification (two nodes
// opening at once: the likely cause of a check that passed through
// PgBouncer in statement mode in a CI run, 2026-12-07).
func hearOwn(ctx context.Context, conn *pgx.Conn, channel string) error {
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == channel {
			return nil
		}
	}
}
