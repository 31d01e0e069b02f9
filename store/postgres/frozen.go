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
// pool's lock, and fails at once with [ErrLockTimeout] while that same
// transaction still holds it, rather than wait as long again: the
// operations that share its group-commit batch would wait with it, for
// each operation on the pool, and so would the node's later batches that
// touch it (a blocked Dequeue's looks, Work's settlement and extension
// retries).
//
// The memory is of the holder, not of a time. The first try that finds
// the lock held keeps its holder's identity (the transaction's virtual ID
// for an advisory lock, the row's xmax for a row lock); a pool is
// forgotten when a try finds its lock free, the pool gone, or another
// transaction holding it. That transaction is a live one, and the write
// waits for it as for any (up to LockTimeout, after which the pool is
// noted again). A memory that lapsed with time failed both ways: the
// writes that find a frozen pool held come at their callers' pace (a
// Dequeue's looks, up to its engine's PollInterval, which has no upper
// bound; Work's retries, a quarter of its Heartbeat), and each one after a
// lapse waited the full LockTimeout again; and one that never lapsed
// locked a node out of a busy pool after one long wait behind live nodes,
// its tries meeting one live transaction after another. Only pools found
// held past the lock timeout are ever noted: few. Safe for concurrent use.
type frozenPools struct {
	mu   sync.Mutex
	held map[uuid.UUID]string // the holder found by the last try; "" until a try
}

// note records that pool id's lock is held by another session past the
// lock timeout, its holder to be read by the next try.
func (f *frozenPools) note(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.held == nil {
		f.held = make(map[uuid.UUID]string)
	}
	f.held[id] = ""
}

// isHeld reports whether pool id is noted.
func (f *frozenPools) isHeld(id uuid.UUID) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.held[id]
	return ok
}

// stillHeld reports whether a try that found pool id's lock held by holder
// ("" when it could not tell) found the transaction that held it past the
// lock timeout, and keeps holder as that transaction when it was not known
// yet. Otherwise it forgets the pool.
func (f *frozenPools) stillHeld(id uuid.UUID, holder string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	noted, ok := f.held[id]
	if ok && holder != "" && (noted == "" || noted == holder) {
		f.held[id] = holder
		return true
	}
	delete(f.held, id)
	return false
}

// forget drops pool id.
func (f *frozenPools) forget(id uuid.UUID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.held, id)
}

// The statements that try a pool's lock by UUID, without waiting, and
// return its id, whether the lock is now held by this transaction, and
// when it is not, its holder ("" if none is found: it was just released);
// no row: no such pool. An advisory lock's holder is the virtual ID of the
// transaction that holds it (pg_locks, which any role may read; a bigint
// key is classid, its high half, objid, its low half, objsubid 1); a row
// lock's, the row's xmax, the ID of the transaction that locked it.
const (
	tryAdvisorySQL = `SELECT p.id, pg_try_advisory_xact_lock(k.k), coalesce((SELECT min(l.virtualtransaction)
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = (k.k >> 32)::oid AND l.objid = (k.k & 4294967295)::oid AND l.objsubid = 1), '')
FROM pools p, LATERAL (SELECT ($2::bigint << 32) | (p.id & 4294967295) AS k) k WHERE p.uuid = $1`
	tryRowFrozenSQL = `SELECT p.id, EXISTS (SELECT FROM pools l WHERE l.id = p.id FOR NO KEY UPDATE SKIP LOCKED),
    CASE WHEN p.xmax = '0'::xid THEN '' ELSE p.xmax::text END
FROM pools p WHERE p.uuid = $1`
)

// tryFrozen is the start of lockPool for a pool in the Store's
// frozenPools: it tries the pool's lock and returns an error wrapping
// [ErrLockTimeout] when the transaction that held it past the lock timeout
// still holds it. When the lock is free, it is held from then on, and the
// pool forgotten; when another transaction holds it, the pool is
// forgotten, and lockPool waits for the lock as usual.
func (t *txn) tryFrozen(ctx context.Context, id uuid.UUID) error {
	var k int64
	var ok bool
	var holder string
	var err error
	if t.s.opts.Locking == RowLock {
		err = t.queryRow(ctx, []any{&k, &ok, &holder}, tryRowFrozenSQL, id)
	} else {
		err = t.queryRow(ctx, []any{&k, &ok, &holder}, tryAdvisorySQL, id, t.s.lockNS)
	}
	if err != nil && !errorsIsNoRows(err) {
		return wrap("lock pool", err)
	}
	if err == nil && !ok && t.s.frozen.stillHeld(id, holder) {
		return fmt.Errorf("postgres: lock pool %s: %w (held by another session past the lock timeout, and still)", id, ErrLockTimeout)
	}
	t.s.frozen.forget(id) // free, gone, or held by another, live transaction: lockPool goes on as usual
	return nil
}
