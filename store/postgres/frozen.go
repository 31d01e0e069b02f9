package postgres

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/google/uuid"
)

// frozenPools are the pools whose lock a write of the Store waited for past
// [Options.LockTimeout]: another session holds it, in practice a node
// stopped in the middle of a transaction. A write then only tries such a
// pool's lock, and fails at once with [ErrLockTimeout] while it is still
// held, rather than wait as long again: the operations that share its
// group-commit batch would wait with it, for each operation on the pool,
// and so would the node's later batches that touch it (a blocked
// Dequeue's retries). A pool is forgotten when a try finds its lock free,
// or when no write has found it held for frozenFor (the next write waits
// for it again). Safe for concurrent use.
type frozenPools struct {
	mu    sync.Mutex
	until map[uuid.UUID]time.Time
}

// frozenMemory is the least time a pool stays in frozenPools after a write
// last found its lock held: LockTimeout if longer (see frozenFor).
const frozenMemory = 30 * time.Second

// frozenFor is how long a pool stays in frozenPools after a write last
// found its lock held by another session: LockTimeout, and at least
// frozenMemory. The memory must outlast the pause between two looks of a
// Dequeue blocked on the pool (up to its engine's PollInterval, 1 s by
// default, plus its read and write under load): a pool forgotten between
// them is waited for again at each look, LockTimeout each time, and the
// operations of the look's batch, on other pools, wait with it. With a
// LockTimeout of 1 s and the default PollInterval every look waited, and
// the node's writes to its other pools stalled about half the time.
// Longer memory costs little: a try that finds the lock free forgets the
// pool at once, and only a try that meets another session's transaction
// on the pool, live but under way, fails where a wait would have lasted
// milliseconds (with ErrLockTimeout, which a write meets anyway when the
// pool is held for long).
func (s *Store) frozenFor() time.Duration { return max(s.opts.LockTimeout, frozenMemory) }

// note records that pool id's lock is held by another session, for d,
// and drops the pools whose time has passed (few: only pools found held
// past the lock timeout are ever noted).
func (f *frozenPools) note(id uuid.UUID, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.until == nil {
		f.until = make(map[uuid.UUID]time.Time)
	}
	maps.DeleteFunc(f.until, func(_ uuid.UUID, u time.Time) bool { return !now.Before(u) })
	f.until[id] = now.Add(d)
}

// held reports whether pool id's lock was found held by another session
// less than the noted time ago.
func (f *frozenPools) held(id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.until[id]
	if ok && !time.Now().Before(u) {
		delete(f.until, id)
		ok = false
	}
	return ok
}

// forget drops pool id.
func (f *frozenPools) forget(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.until, id)
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
		t.s.frozen.note(id, t.s.frozenFor())
		return fmt.Errorf("postgres: lock pool %s: %w (held by another session past the lock timeout, and still)", id, ErrLockTimeout)
	}
	t.s.frozen.forget(id) // free, or gone: lockPool goes on as usual
	return nil
}
