package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/poolq/poolq/store"
)

// ErrCommitUnknown is wrapped by the error of a write whose COMMIT was
// sent but whose answer never came (the connection failed or went silent
// past its bound, see [Options.LockTimeout]), when the Store could not
// learn the outcome on another connection either (the database
// unreachable for 5 s). The write may have committed or not:
// its caller must not assume that nothing happened. It is
// [store.ErrCommitUnknown].
var ErrCommitUnknown = store.ErrCommitUnknown

// outcomeTimeout bounds how long commitOutcome asks.
const outcomeTimeout = roundTripMargin

// xactStatusSQL returns the status of transaction $1 (committed, aborted
// or in progress), and ends the backend $2 while it still runs that
// transaction: its connection is lost to this process, and its client
// will never send anything more, so it would otherwise hold the
// transaction, and its locks, until the server noticed the connection's
// end or the idle session timeout. A backend ended before it committed
// aborts; one ending while it commits finishes the commit first.
const xactStatusSQL = `SELECT pg_xact_status($1::xid8),
	(SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $2 AND backend_xid = $1::xid8::xid)`

// lostCommit is the error of a COMMIT that the server did not answer:
// the connection failed (closed, reset, or silent past its round trip's
// bound, which pgx closes) after it was sent, so the transaction may have
// committed or not. xid is the transaction's id, read with BEGIN ("" for
// a transaction sent whole in one round trip: BEGIN, statements and
// COMMIT), pid its server process.
type lostCommit struct {
	xid string
	pid uint32
	err error
}

func (e *lostCommit) Error() string { return e.err.Error() }
func (e *lostCommit) Unwrap() error { return e.err }

// commitOutcome returns what a lost commit came to: nil if it committed
// after all (the answer was lost), the commit's error if it did not, and
// an error wrapping [ErrCommitUnknown] and the commit's error when that
// cannot be learned. It asks on a connection of the pool (the lost one
// released) for the status of the transaction's id, until it is committed
// or aborted, for at most outcomeTimeout.
func (s *Store) commitOutcome(ctx context.Context, lost *lostCommit) error {
	if lost.xid == "" {
		return fmt.Errorf("%w: %w", ErrCommitUnknown, lost.err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeTimeout)
	defer cancel()
	pause := time.Millisecond
	for {
		var status *string
		var ended *bool
		err := s.pool.QueryRow(ctx, xactStatusSQL, lost.xid, int32(lost.pid)).Scan(&status, &ended)
		switch {
		case err != nil:
		case status != nil && *status == "committed":
			return nil
		case status != nil && *status == "aborted":
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
