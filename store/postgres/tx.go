package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/store"
)

// txn is a [store.Tx] (and a [store.Signaler]) on one pgx transaction.
//
// In a write transaction every method that names a pool first locks it
// (lockPool): from then until the commit no other transaction writes the
// pool's row, its counts or its items, so what this one reads of them stays
// true, and the pool's state (poolState) is kept in memory for the rest of
// the transaction. Nothing is kept once it ends.
type txn struct {
	s        *Store
	tx       querier
	readOnly bool

	keys   map[uuid.UUID]int64      // internal ids of the pools seen (read transactions)
	locked map[uuid.UUID]int64      // the pools whose lock is held, by UUID: their internal id
	clocks map[uuid.UUID]int64      // the campaigns whose lock is held (see campaigns.go)
	rlocks map[uuid.UUID]lockedPool // the rules whose lock is held, and how (see LockRule)
	elock  bool                     // the escalation lock is held (see contacts.go)
	dlock  dncHold                  // how the do-not-call list's lock is held (see contacts.go)
	maxKey int64                    // the largest lock order key held, noLock for none
	states map[uuid.UUID]*poolState // what this transaction knows of pools (see state.go)
	deltas map[int64]*counts        // count changes not yet in pool_counts, by pool id
	signal map[uuid.UUID]bool       // the pools to NOTIFY at commit

	inSavepoint bool
	broken      error // a savepoint could not be undone: the transaction must not commit

	// retry is set when the transaction must run again: a statement met a
	// serialization failure or a deadlock, or (restart) a pool lock out of
	// order was taken. wanted is the lock it could not take.
	retry   error
	restart bool
	wanted  []lockedPool
	// restartOnWait is set when a wait for a lock taken after another one
	// makes the transaction run again (see waitedAfterLock).
	restartOnWait bool
	// pclocks are the campaigns whose lock prelock took, by UUID: the
	// previous run's ids, until their first use reads them again into
	// clocks. lockSet keeps them, so that a run that goes round before
	// using one still takes it first in the next run.
	pclocks map[uuid.UUID]int64
	// prlocks are the rules whose lock prelock took, as pclocks are the
	// campaigns': LockRule or Rule reads the rule's id again at its first
	// use.
	prlocks map[uuid.UUID]lockedPool
	// timedOut are the pools whose lock a run of this Write waited for up
	// front (prelock) past the lock timeout: no later run takes them, and
	// an operation on one fails at once with ErrLockTimeout (see lockPool),
	// so that only the operations on those pools fail, not the whole Write.
	timedOut []uuid.UUID
	// bounded says that the transaction's lock waits end at bound, its
	// one caller's deadline, sooner than the lock timeout (see
	// writeOnce): such a wait's end does not show that another session
	// holds the lock past the lock timeout.
	bounded bool
	bound   time.Time
	boundMs int64 // the time to bound when the transaction began, in ms (see boundLockWait)
}

// setLockTimeoutLeftSQL sets the lock timeout of the transaction to what
// is left, measured on the server from the transaction's start (now()),
// of $1 ms (see boundLockWait).
const setLockTimeoutLeftSQL = `SELECT set_config('lock_timeout',
    greatest(1, $1::bigint - (extract(epoch FROM clock_timestamp() - now()) * 1000)::bigint)::text, true)`

// boundLockWait has the next lock statement's wait end at the caller's
// bound, in a bounded transaction: the server's lock_timeout applies to
// each wait on its own, so the one set at the transaction's start let a
// second wait run past the bound, until its round trip was cut (the
// connection closed, the error not ErrLockTimeout). The time left is
// measured on the server, whose clock the bound is not read by: from the
// transaction's start, when boundMs were left.
func (t *txn) boundLockWait(ctx context.Context) {
	if t.bounded {
		_ = t.deferExec(ctx, setLockTimeoutLeftSQL, t.boundMs)
	}
}

var (
	_ store.Tx       = (*txn)(nil)
	_ store.Signaler = (*txn)(nil)
)

// lockedPool is a lock of a write transaction: a pool's, (campaign) a
// campaign's, (rule) a rule's, (escalations) the escalation lock, or (dnc)
// the do-not-call list's; the UUID and internal id of the pool, campaign
// or rule. A rule's lock and the list's are exclusive (LockRule, AddDNC)
// or (shared) shared (Rule, OnDNC; see LockRule and contacts.go).
type lockedPool struct {
	id          uuid.UUID
	k           int64
	campaign    bool
	rule        bool
	shared      bool
	escalations bool
	dnc         bool
}

// noLock is the order key of no lock: below every lock's.
const noLock = math.MinInt64

// lockWaitSlack is how long a statement that takes a lock may run before
// it counts as having waited for another transaction.
const lockWaitSlack = 50 * time.Millisecond

// waitedAfterLock marks the transaction to run again, and reports so, when
// a statement that took a lock began at start, ran longer than
// lockWaitSlack (it waited for the lock, behind another node), and the
// transaction held a lock before it: prevMax, the largest key it held
// before the statement, is not noLock. What the transaction's callers
// decided before the wait, they decided at an instant the wait has left
// behind: a claim's lease would be handed out shortened by the wait, or
// after its calling window closed. The next run takes every lock first
// (prelock), before its callers read their instant. Only while
// restartOnWait is set (a bounded number of runs); the first lock's wait
// is the callers' to judge (the engine reads the clock again after it).
//
// Only a lock above prevMax can have been waited for: one at or below it
// was only tried (see lockPool), and one this transaction already held (a
// previous run's lock, taken by prelock and taken again at its first use)
// is granted at once. A statement that took such a lock and ran slowly
// was slow for another reason (a starved CPU, a table lock met by the
// statements sent behind it): it does not count, since running again
// would take the same locks in the same way and gain nothing.
//
// l is the lock taken: wanted by the next run even if a savepoint's
// rollback makes this one forget it held it.
func (t *txn) waitedAfterLock(start time.Time, prevMax int64, l lockedPool) bool {
	if !t.restartOnWait || prevMax == noLock || t.orderKey(l) <= prevMax || time.Since(start) <= lockWaitSlack {
		return false
	}
	t.restart = true
	t.retry = errRestart
	t.wanted = append(t.wanted, l)
	t.s.stats.waits.Add(1)
	return true
}

func newTxn(s *Store, tx querier, readOnly bool) *txn {
	return &txn{s: s, tx: tx, readOnly: readOnly, maxKey: noLock}
}

// noteErr records err if it asks for the transaction to run again. A
// savepoint may swallow the error of its function (group commit gives it
// to one caller): the mark stays, and Write runs everything again.
func (t *txn) noteErr(err error) {
	if err != nil && t.retry == nil && retryable(err) {
		t.retry = err
	}
}

func (t *txn) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.tx.Exec(ctx, sql, args...)
	t.noteErr(err)
	return tag, err
}

// deferExec has sql sent with the transaction's next statement or its
// commit, when the transaction is run by hand (writeConn); else it runs it
// now. Its error, if any, is then the error of that later call.
func (t *txn) deferExec(ctx context.Context, sql string, args ...any) error {
	if w, ok := t.tx.(*writeConn); ok {
		w.deferExec(sql, args...)
		return nil
	}
	_, err := t.exec(ctx, sql, args...)
	return err
}

// dropDeferred forgets the deferred statements not sent yet.
func (t *txn) dropDeferred() {
	if w, ok := t.tx.(*writeConn); ok {
		w.drop()
	}
}

// flush sends the deferred statements now (see writeConn).
func (t *txn) flush(ctx context.Context) error {
	w, ok := t.tx.(*writeConn)
	if !ok {
		return nil
	}
	err := w.flush(ctx)
	t.noteErr(err)
	return err
}

func (t *txn) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	rows, err := t.tx.Query(ctx, sql, args...)
	t.noteErr(err)
	return rows, err
}

// queryRow runs a query returning at most one row and scans it into dest;
// no row is pgx.ErrNoRows ([store.ErrNotFound] through translate).
func (t *txn) queryRow(ctx context.Context, dest []any, sql string, args ...any) error {
	err := t.tx.QueryRow(ctx, sql, args...).Scan(dest...)
	t.noteErr(err)
	return err
}

// writable returns an error wrapping [store.ErrReadOnly] in a read
// transaction.
func (t *txn) writable(op string) error {
	if t.readOnly {
		return fmt.Errorf("postgres: %s: %w", op, store.ErrReadOnly)
	}
	return nil
}

// orderKey returns the key that orders lock l among the others a
// transaction takes: lockKey for a pool, campaignOrderKey for a campaign,
// ruleOrderKey for a rule, escalationsOrderKey for the escalation lock,
// dncOrderKey for the do-not-call list's.
func (t *txn) orderKey(l lockedPool) int64 {
	switch {
	case l.campaign:
		return campaignOrderKey(l.k)
	case l.rule:
		return ruleOrderKey(l.k)
	case l.escalations:
		return escalationsOrderKey
	case l.dnc:
		return dncOrderKey
	}
	return t.lockKey(l.k)
}

// lockKey returns the key of the lock of pool k: the advisory lock's key
// (the schema's hash above the id's low 32 bits), or the id itself for a
// row lock. Locks are taken in the order of their keys (see orderKey).
func (t *txn) lockKey(k int64) int64 {
	if t.s.opts.Locking == RowLock {
		return k
	}
	return t.s.lockNS<<32 | k&math.MaxUint32
}

const keySQL = `SELECT id FROM pools WHERE uuid = $1`

// key returns the internal id of pool id, or [store.ErrNotFound] naming
// the pool. In a write transaction it locks the pool (see pool).
func (t *txn) key(ctx context.Context, id uuid.UUID) (int64, error) {
	if !t.readOnly {
		st, err := t.pool(ctx, id)
		if err != nil {
			return 0, err
		}
		return st.k, nil
	}
	if k, ok := t.keys[id]; ok {
		return k, nil
	}
	var k int64
	if err := t.queryRow(ctx, []any{&k}, keySQL, id); err != nil {
		return 0, notFoundPool(id, err)
	}
	if t.keys == nil {
		t.keys = make(map[uuid.UUID]int64)
	}
	t.keys[id] = k
	return k, nil
}

// notFoundPool names the pool in a not-found error.
func notFoundPool(id uuid.UUID, err error) error {
	if err = translate(err); err == store.ErrNotFound {
		return fmt.Errorf("pool %s: %w", id, err)
	}
	return err
}

// The statements that lock a pool by UUID and return its id, and the
// schema guard's value (guardCol). $2 is the largest lock key the
// transaction holds: a lock above it is waited for, one below only tried
// (see lockPool).
const advisoryKeyExpr = `(($3::bigint << 32) | (p.id & 4294967295))`

var (
	lockAdvisorySQL = `SELECT p.id, CASE WHEN ` + advisoryKeyExpr + ` > $2
        THEN (SELECT true FROM pg_advisory_xact_lock(` + advisoryKeyExpr + `))
        ELSE pg_try_advisory_xact_lock(` + advisoryKeyExpr + `) END, ` + guardCol + `
FROM pools p WHERE p.uuid = $1`
	// The row lock waits only for a pool above the largest held; when it
	// finds no row, lockRowTrySQL tells a missing pool from one below.
	lockRowSQL = `SELECT id, true, ` + guardCol + ` FROM pools WHERE uuid = $1 AND id > $2 FOR NO KEY UPDATE`
)

const lockRowTrySQL = `SELECT p.id, EXISTS (SELECT FROM pools l WHERE l.id = p.id FOR NO KEY UPDATE SKIP LOCKED)
FROM pools p WHERE p.uuid = $1`

// pool returns the state of pool id in a write transaction, locking the
// pool first if this transaction does not hold its lock yet, or
// [store.ErrNotFound].
//
// Locks are taken in the order of their keys, so that two transactions
// never wait for each other: a lock above every one held is waited for;
// one below is only tried, and when another transaction holds it, the
// transaction is marked to run again (errRestart), taking every lock it
// needed in order from the start.
func (t *txn) pool(ctx context.Context, id uuid.UUID) (*poolState, error) {
	if st := t.states[id]; st != nil {
		return st, nil
	}
	st, _, err := t.lockPool(ctx, id, nil)
	return st, err
}

// behind is a statement a pool's lock batch carries behind the lock (see
// lockPool), and the reading of its results.
type behind struct {
	sql  string
	args []any
	read func(pgx.BatchResults) error
}

// lockPool is pool for a pool whose lock this transaction does not hold.
// With x, the batch that takes the lock also runs x behind the lock; done
// says whether it ran with the lock taken. When it did not, x's work is
// the caller's to do again: the lock was only tried, or taken apart (a row
// lock below one held), or the transaction must run again (errRestart).
//
// x may read in any transaction, but may write only in one that holds no
// lock yet (t.maxKey == noLock): its lock statement waits for the lock,
// and where x could still have run without it (a pool made between the
// batch's statements) the transaction runs again, so that done is false
// only with an error, and what x wrote is rolled back.
func (t *txn) lockPool(ctx context.Context, id uuid.UUID, x *behind) (st *poolState, done bool, err error) {
	if t.retry != nil {
		return nil, false, t.retry
	}
	if slices.Contains(t.timedOut, id) {
		return nil, false, fmt.Errorf("postgres: lock pool %s: %w (waited for earlier in this write)", id, ErrLockTimeout)
	}
	if t.s.frozen.isHeld(id) {
		if err := t.tryFrozen(ctx, id); err != nil {
			return nil, false, err
		}
	}
	var (
		k     int64
		ok    bool
		found bool // the lock statement found the pool
	)
	t.boundLockWait(ctx)
	b := &pgx.Batch{}
	if t.s.opts.Locking == RowLock {
		b.Queue(lockRowSQL, id, t.maxKey)
	} else {
		b.Queue(lockAdvisorySQL, id, t.maxKey, t.s.lockNS)
	}
	start, prevMax := time.Now(), t.maxKey
	b.Queue(poolStateSQL, id)
	b.Queue(attachedSQL, id)
	b.Queue(governorsOfPoolSQL, id)
	if x != nil {
		b.Queue(x.sql, x.args...)
	}
	br := t.tx.SendBatch(ctx, b)
	fail := func(what string, err error) (*poolState, bool, error) {
		t.noteErr(err)
		br.Close()
		return nil, false, wrap(what, err)
	}
	var guard int
	err = br.QueryRow().Scan(&k, &ok, &guard)
	if err == nil {
		found = true
	} else if !errorsIsNoRows(err) {
		if errors.Is(translate(err), ErrLockTimeout) && !t.bounded {
			t.s.frozen.note(id)
		}
		return fail("lock pool", err)
	}
	var s poolState
	err = br.QueryRow().Scan(s.dest()...)
	if err == nil {
		s.finish()
		st = &s
	} else if !errorsIsNoRows(err) {
		return fail("read pool", err)
	}
	s.governors, s.attached, err = t.readGovernors(br)
	if err != nil {
		return fail("read pool governors", err)
	}
	s.hasGovernors = true
	if x != nil {
		if err := x.read(br); err != nil {
			return fail("lock pool", err)
		}
	}
	if err := br.Close(); err != nil {
		t.noteErr(err)
		return nil, false, wrap("lock pool", err)
	}
	done = x != nil && found && ok
	switch {
	case found:
	case t.s.opts.Locking == RowLock:
		// No row above the largest held lock: a missing pool, or one below.
		if err := t.queryRow(ctx, []any{&k, &ok}, lockRowTrySQL, id); err != nil {
			return nil, false, notFoundPool(id, err)
		}
		if x != nil && t.maxKey == noLock {
			// Made between the batch's statements (x ran without the
			// lock, and may have written): run again.
			ok = false
		}
		st = nil // read before the lock
	case x == nil || t.maxKey != noLock:
		return nil, false, notFoundPool(id, pgx.ErrNoRows)
	default:
		// The advisory lock found no pool, and x, which may write, ran
		// without it: if the pool was made between the batch's
		// statements, x may have written to it. Run again if it is there.
		if err := t.queryRow(ctx, []any{&k}, keySQL, id); err != nil {
			return nil, false, notFoundPool(id, err)
		}
		ok = false
	}
	if !ok {
		t.restart = true
		t.retry = errRestart
		t.wanted = append(t.wanted, lockedPool{id: id, k: k})
		return nil, false, errRestart
	}
	if t.locked == nil {
		t.locked = make(map[uuid.UUID]int64)
	}
	t.locked[id] = k
	t.maxKey = max(t.maxKey, t.lockKey(k))
	if t.waitedAfterLock(start, prevMax, lockedPool{id: id, k: k}) {
		return nil, false, errRestart
	}
	if st == nil {
		s, err := t.readState(ctx, id)
		if err != nil {
			return nil, false, err
		}
		st = s
	}
	if st.k != k {
		// The pool was deleted and made again under the same UUID between
		// the lock and the read: run again, to lock the new one.
		t.restart = true
		t.retry = errRestart
		return nil, false, errRestart
	}
	t.addPending(st)
	t.setState(st)
	return st, done, nil
}

// isPoolLock reports whether l is a pool's lock (not a campaign's, a
// rule's, the escalation lock or the do-not-call list's).
func isPoolLock(l lockedPool) bool { return !l.campaign && !l.rule && !l.escalations && !l.dnc }

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

func errorsIsNoRows(err error) bool { return translate(err) == store.ErrNotFound }

// readState reads the state of a pool whose lock is held.
func (t *txn) readState(ctx context.Context, id uuid.UUID) (*poolState, error) {
	var st poolState
	err := t.tx.QueryRow(ctx, poolStateSQL, id).Scan(st.dest()...)
	t.noteErr(err)
	if err != nil {
		return nil, notFoundPool(id, err)
	}
	st.finish()
	return &st, nil
}

func (t *txn) setState(st *poolState) {
	if t.states == nil {
		t.states = make(map[uuid.UUID]*poolState, 1)
	}
	t.states[st.p.UUID] = st
}

// lockSet returns the locks this transaction held or wanted, for the next
// run to take first, in order.
func (t *txn) lockSet() []lockedPool {
	out := slices.Clone(t.wanted)
	for id, k := range t.locked {
		out = append(out, lockedPool{id: id, k: k})
	}
	for id, k := range t.clocks {
		out = append(out, lockedPool{id: id, k: k, campaign: true})
	}
	for id, k := range t.pclocks {
		if _, ok := t.clocks[id]; !ok { // not used in this run yet
			out = append(out, lockedPool{id: id, k: k, campaign: true})
		}
	}
	for _, l := range t.rlocks {
		out = append(out, l)
	}
	for id, l := range t.prlocks {
		if _, ok := t.rlocks[id]; !ok { // not used in this run yet
			out = append(out, l)
		}
	}
	if t.elock {
		out = append(out, lockedPool{escalations: true})
	}
	if t.dlock != dncNone {
		out = append(out, lockedPool{dnc: true, shared: t.dlock == dncShared})
	}
	// A rule's lock, or the list's, wanted both ways is taken exclusive:
	// sorted first, it is the one CompactFunc keeps.
	slices.SortFunc(out, func(a, b lockedPool) int {
		return cmp.Or(cmp.Compare(t.orderKey(a), t.orderKey(b)), compareBool(a.shared, b.shared))
	})
	return slices.CompactFunc(out, func(a, b lockedPool) bool {
		return a.k == b.k && a.campaign == b.campaign && a.rule == b.rule && a.escalations == b.escalations && a.dnc == b.dnc
	})
}

// prelock takes the locks of a previous run in order, each waited for.
// The pools' states are read when they are first used. When a pool's lock
// is waited for past the lock timeout, the transaction is marked to run
// again without it, and with the pool in timedOut.
func (t *txn) prelock(ctx context.Context, locks []lockedPool) error {
	if len(locks) == 0 {
		return nil
	}
	t.boundLockWait(ctx)
	b := &pgx.Batch{}
	for i, l := range locks {
		if i > 0 && t.bounded {
			b.Queue(setLockTimeoutLeftSQL, t.boundMs) // each wait its own (see boundLockWait)
		}
		switch {
		case l.campaign:
			b.Queue(`SELECT pg_advisory_xact_lock($1::int, $2::int)`, int32(t.s.lockNS), campaignLockID(l.k))
		case l.rule && l.shared:
			b.Queue(`SELECT pg_advisory_xact_lock_shared($1::int, $2::int)`, int32(t.s.lockNS), ruleLockID(l.k))
		case l.rule:
			b.Queue(`SELECT pg_advisory_xact_lock($1::int, $2::int)`, int32(t.s.lockNS), ruleLockID(l.k))
		case l.escalations:
			b.Queue(lockEscalationsSQL, int32(t.s.lockNS))
		case l.dnc && l.shared:
			b.Queue(`SELECT pg_advisory_xact_lock_shared($1::int, $2::int)`, int32(t.s.lockNS), int32(dncLockID))
		case l.dnc:
			b.Queue(`SELECT pg_advisory_xact_lock($1::int, $2::int)`, int32(t.s.lockNS), int32(dncLockID))
		case t.s.opts.Locking == RowLock:
			b.Queue(`SELECT FROM pools WHERE id = $1 FOR NO KEY UPDATE`, l.k)
		default:
			b.Queue(`SELECT pg_advisory_xact_lock($1)`, t.lockKey(l.k))
		}
	}
	br := t.tx.SendBatch(ctx, b)
	for i, l := range locks {
		if i > 0 && t.bounded {
			if _, err := br.Exec(); err != nil {
				br.Close()
				t.noteErr(err)
				return wrap("lock pools", err)
			}
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			t.noteErr(err)
			if isPoolLock(l) && errors.Is(translate(err), ErrLockTimeout) && !t.bounded {
				// Another session holds this pool past the lock timeout:
				// run again without it, so that the operations on the other
				// pools go on and those on this one fail (see lockPool).
				t.s.frozen.note(l.id)
				t.timedOut = append(t.timedOut, l.id)
				t.wanted = slices.Delete(slices.Clone(locks), i, i+1)
				t.restart = true
				t.retry = errRestart
			}
			return wrap("lock pools", err)
		}
	}
	err := br.Close()
	t.noteErr(err)
	if err != nil {
		return wrap("lock pools", err)
	}
	t.locked = make(map[uuid.UUID]int64, len(locks))
	for _, l := range locks {
		switch {
		case l.campaign:
			// Held, but its id is read again by UUID at the campaign's
			// first use (the lock statement, which then finds the lock
			// held by this transaction): a campaign the previous run
			// created has a new id in this one. Until then, pclocks
			// keeps it for the next run's lock set.
			if t.pclocks == nil {
				t.pclocks = make(map[uuid.UUID]int64, 1)
			}
			t.pclocks[l.id] = l.k
		case l.rule:
			if t.prlocks == nil { // as pclocks
				t.prlocks = make(map[uuid.UUID]lockedPool, 1)
			}
			t.prlocks[l.id] = l
		case l.escalations:
			t.elock = true
		case l.dnc && l.shared:
			t.dlock = max(t.dlock, dncShared)
		case l.dnc:
			t.dlock = dncExclusive
		default:
			t.locked[l.id] = l.k
		}
		t.maxKey = max(t.maxKey, t.orderKey(l))
	}
	return nil
}

// Signal asks every process watching the store to wake the dequeues of
// pool id once this transaction commits (see [store.Signaler]): a NOTIFY
// sent with the commit. A savepoint rolled back forgets the signals given
// inside it.
func (t *txn) Signal(id uuid.UUID) {
	if t.readOnly {
		return
	}
	if t.signal == nil {
		t.signal = make(map[uuid.UUID]bool, 1)
	}
	t.signal[id] = true
}

const notifySQL = `SELECT pg_notify($1, x) FROM unnest($2::text[]) x`

// commitBatch returns the statements that end the transaction before its
// COMMIT: the pending count changes and the notifications (see
// writeConn.commit, which sends them and COMMIT in one round trip).
func (t *txn) commitBatch() *pgx.Batch {
	b := &pgx.Batch{}
	t.queueCounts(b)
	if len(t.signal) > 0 {
		ids := make([]string, 0, len(t.signal))
		for id := range t.signal {
			ids = append(ids, id.String())
		}
		slices.Sort(ids)
		b.Queue(notifySQL, t.s.channel, ids)
	}
	return b
}

const (
	savepointSQL  = `SAVEPOINT poolq_op`
	releaseSQL    = `RELEASE SAVEPOINT poolq_op`
	rollbackToSQL = `ROLLBACK TO SAVEPOINT poolq_op`
)

// Savepoint runs fn in a savepoint (see [store.Tx.Savepoint]). If undoing
// fn's writes fails, the whole transaction is marked broken, and Write rolls
// it back.
func (t *txn) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	const op = "savepoint"
	if err := t.writable(op); err != nil {
		return err
	}
	if t.inSavepoint {
		return fmt.Errorf("postgres: %s: savepoints do not nest", op)
	}
	if t.retry != nil {
		return t.retry
	}
	if _, err := t.exec(ctx, savepointSQL); err != nil {
		return wrap(op, err)
	}
	// What a rollback to the savepoint brings back: pending counts, the
	// signals, and the locks (those taken inside are released with it).
	deltas := make(map[int64]*counts, len(t.deltas))
	for k, c := range t.deltas {
		cc := *c
		deltas[k] = &cc
	}
	signals := maps.Clone(t.signal)
	locked, clocks, rlocks, elock, dlock, maxKey := maps.Clone(t.locked), maps.Clone(t.clocks), maps.Clone(t.rlocks), t.elock, t.dlock, t.maxKey
	t.inSavepoint = true
	ferr := fn(t)
	t.inSavepoint = false
	if ferr == nil && t.retry == nil {
		// fn's deferred writes go now, so that their failure is fn's.
		ferr = wrap(op, t.flush(ctx))
	}
	if ferr == nil && t.retry == nil {
		if _, err := t.exec(ctx, releaseSQL); err != nil {
			t.broken = wrap(op, err)
			return t.broken
		}
		return nil
	}
	// Undo fn's writes; the states go with them (they are read again,
	// with the pending counts added), and the rest comes back as it was.
	// The writes fn deferred are dropped unsent (SAVEPOINT sent the
	// earlier ones): one that would fail must not fail the rollback.
	t.dropDeferred()
	t.states = nil
	t.deltas, t.signal, t.locked, t.clocks, t.rlocks, t.elock, t.dlock, t.maxKey = deltas, signals, locked, clocks, rlocks, elock, dlock, maxKey
	if _, err := t.exec(ctx, rollbackToSQL); err != nil {
		t.broken = fmt.Errorf("postgres: transaction unusable after a failed savepoint rollback: %w", err)
		return t.broken
	}
	if _, err := t.exec(ctx, releaseSQL); err != nil {
		t.broken = fmt.Errorf("postgres: transaction unusable after a failed savepoint rollback: %w", err)
		return t.broken
	}
	if ferr == nil {
		ferr = t.retry
	}
	return ferr
}

// The times an int64 of unix nanoseconds can hold: years 1677 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos returns t as unix nanoseconds, or an error when t is out of the
// range they can hold.
func nanos(t time.Time) (int64, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("time %v out of range (%v to %v)", t, minTime.UTC(), maxTime.UTC())
	}
	return t.UnixNano(), nil
}

// nullNanos returns *t as unix nanoseconds, or nil (NULL) for a nil t.
func nullNanos(t *time.Time) (*int64, error) {
	if t == nil {
		return nil, nil
	}
	n, err := nanos(*t)
	return &n, err
}

// zeroNullNanos returns t as unix nanoseconds, or nil (NULL) for a zero t.
func zeroNullNanos(t time.Time) (*int64, error) {
	if t.IsZero() {
		return nil, nil
	}
	n, err := nanos(t)
	return &n, err
}

// fromNanos returns the UTC time of n unix nanoseconds.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// fromNullNanos returns the UTC time of n, or nil for NULL.
func fromNullNanos(n *int64) *time.Time {
	if n == nil {
		return nil
	}
	t := fromNanos(*n)
	return &t
}
