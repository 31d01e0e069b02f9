package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/store"
)

// SQLSTATE codes the store acts on.
const (
	codeNoDataFound          = "P0002" // raised by poolq_expect_rows (migration 0005)
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeLockNotAvailable     = "55P03" // lock_timeout
	codeSchemaMigrated       = "PQ001" // raised by the schema guard of an older version (see guardCol)
)

// ErrLockTimeout is wrapped by the error of a write that waited for a lock
// held by another session (another node's lock on a pool) longer than
// [Options.LockTimeout]. Nothing of the write was committed. It is
// [store.ErrLockTimeout].
var ErrLockTimeout = store.ErrLockTimeout

// ErrLockingMismatch is returned by [Open] when the schema's nodes lock a
// pool another way than [Options.Locking] says (see [Locking]).
var ErrLockingMismatch = errors.New("postgres: another Locking than the schema's")

// ErrNotPoolq is wrapped by [Open]'s error for a schema that holds a
// schema_version table without poolq's pools, items and pool_counts:
// another application's (Flyway's name before its version 5, say), whose
// versions are not poolq's. Open changes nothing in it.
var ErrNotPoolq = errors.New("postgres: not a poolq schema: its schema_version table is another application's")

// ErrNotUTF8 is returned by [Open] when the database does not store its
// text as UTF-8 (its server_encoding): poolq's names and notes are Unicode,
// and their limits count characters, which a SQL_ASCII database counts as
// bytes and a LATIN1 one cannot hold.
var ErrNotUTF8 = errors.New("postgres: the database's encoding is not UTF8")

// ErrTransactionPooling is returned by [Open] when its URL leads to a
// connection pooler in transaction or statement mode (PgBouncer's
// pool_mode = transaction or statement), which runs a connection's
// transactions on whichever server session is free: the Store needs a
// session of its own for each of its connections (its settings, its
// search_path among them, and its listener's LISTEN). Connect to the
// server directly, or through a pooler in session mode.
var ErrTransactionPooling = errors.New("postgres: a pooler in transaction mode: the Store needs a session of its own")

// translate maps driver errors to the store's sentinels, by SQLSTATE: a
// missing row is [store.ErrNotFound], and so is a write of items that did
// not find them all (P0002, from poolq_expect_rows), a uniqueness violation
// [store.ErrConflict], a lock wait past lock_timeout [ErrLockTimeout] (all
// still wrapping the driver's error). Other errors are
// returned as they are. It is the one place that inspects driver errors,
// with retryable and serverAnswered.
func translate(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == codeUniqueViolation {
		return fmt.Errorf("%w: %w", store.ErrConflict, err)
	}
	if errors.As(err, &pe) && pe.Code == codeNoDataFound {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	if errors.As(err, &pe) && pe.Code == codeLockNotAvailable {
		return fmt.Errorf("%w: %w", ErrLockTimeout, err)
	}
	if errors.As(err, &pe) && pe.Code == codeSchemaMigrated {
		return fmt.Errorf("%w (migrated while this node ran): %w", store.ErrSchemaTooNew, err)
	}
	return err
}

// foreignKeyViolation reports whether err is a foreign key's refusal: a
// rule deleted while another transaction gives it to a campaign, or the
// other way round.
func foreignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeForeignKeyViolation
}

// retryable reports whether err ends a transaction that may succeed if run
// again from the start: a serialization failure or a deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected)
}

// serverAnswered reports whether err, the error of a COMMIT, is the
// server's answer (an error it reported, or ROLLBACK): the transaction did
// not commit. Any other error (the connection failed) leaves the outcome
// to be learned (see commitOutcome).
func serverAnswered(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) || errors.Is(err, errCommitRolledBack)
}

// errRestart ends a write transaction that must take a pool's lock out of
// order (below a lock it holds) and found it taken: it runs again, taking
// every lock it needed in order first.
var errRestart = errors.New("postgres: a pool lock is taken out of order: restart the transaction")

// endedErr returns err, the error of a Write that did not commit, marked
// with ctx's error when ctx ended: the Write's statements end then, by
// closing their connection (pgx's way), and what fails next (a rollback to
// a savepoint, say) reports only "conn closed". Its callers, group commit
// among them, learn from the mark that nothing was written because they
// left (see store.Store's Write). The original error stays in the chain.
func endedErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); err != nil && cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// wrap translates err and prefixes it with the operation: "postgres: op:
// …". It returns nil for a nil err.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("postgres: %s: %w", op, translate(err))
}
