package postgres

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/uuid"
)

// frozenPools are the pools whose lock a write of the Store waited for past
// [Options.LockTimeout]: another session holds it, in practice a node
// stopped in the middle of a transaction. A write then only tries such a
// pool's lock, and fails at once with [ErrLockTimeout] while it is still
// held, rather than wait as long again: the operations that share its
// group-commit batch would wait with it, for each operation on the pool,
// and so would the node's later batches that touch it (a blocked
// Dequeue's retries, Work's settlement and extension retries). A pool is
// forgotten when a try finds its lock free (or the pool gone), never by
// time alone: the writes that would refresh a time-limited memory come at
// the cadence of their callers (a Dequeue's looks, up to its engine's
// PollInterval, which has no upper bound; Work's retries, a quarter of
// its Heartbeat, up to an eighth of LeaseTimeout), and a memory that
// lapsed between two of them made each wait the full LockTimeout again.
// Keeping it costs little: only a try that meets another session's
// transaction on the pool, live but under way, fails where a wait would
// have lasted milliseconds (with ErrLockTimeout, which a write meets
// anyway when the pool is held for long), and the first try that finds
// the lock free ends it. Only pools found held past the lock timeout are
// ever noted: few. Safe for concurrent use.
type frozenPools struct {
	mu   sync.Mutex
	held map[uuid.UUID]struct{}
}

// note records that pool id's lock is held by another session.
func (f *frozenPools) note(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = make(map[uuid.UUID]struct{})
	}
	f.held[id] = struct{}{}
}

// isHeld reports whether pool id's lock was found held by another session
// and no try has found it free since.
func (f *frozenPools) isHeld(id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.held[id]
	return ok
}

// forget drops pool id.
func (f *frozenPools) forget(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, id)
}

// The statements that try a pool's lock by UUID, without waiting, and
// return its id and whether the lock is now held by this transaction (no
// row: no such pool).
const tryAdvisorySQL = `SELECT p.id, pg_try_advisory_xact_lock(($2::bigint << 32) | (p.id & 4294967295))
FROM pools p WHERE p.uuid = $1`

// tryFrozen is the start of lockPool for a pool in the Store's
// frozenPools: it tries the pool's lock and returns an error wrapping
// [ErrLockTimeout] when another session still holds it. When the lock is
// free, it is held from then on, and the pool forgotten.
func (t *txn) tryFrozen(ctx context.Context, id uuid.UUID) error {
	var k int64
	var ok bool
	var err error
	if t.s.opts.Locking == RowLock {
		err = t.queryRow(ctx, []any{&k, &ok}, lockRowTrySQL, id)
	} else {
		err = t.queryRow(ctx, []any{&k, &ok}, tryAdvisorySQL, id, t.s.lockNS)
	}
	if err != nil && !errorsIsNoRows(err) {
		return wrap("lock pool", err)
	}
	if err == nil && !ok {
		t.s.frozen.note(id)
		return fmt.Errorf("postgres: lock pool %s: %w (held by another session past the lock timeout, and still)", id, ErrLockTimeout)
	}
	t.s.frozen.forget(id) // free, or gone: lockPool goes on as usual
	return nil
}
