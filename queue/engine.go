package queue

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// Engine manages pools and dispatches their items over a [store.Store]. It
// is safe for concurrent use. The store is the only copy of every state
// change; the engine keeps in memory only the operations waiting for a
// transaction, the wake-up channels of blocked Dequeues, the counters of
// [Engine.Stats], and [Engine.DequeueCampaign]'s round-robin turn per
// campaign. The turns are a hint, not a state: a new engine starts each
// campaign at its first pool, and two engines over one store keep turns of
// their own.
type Engine struct {
	st   store.Store
	opts Options
	gc   *groupcommit.Committer
	wake wakeups
	// grace is the store's LeaseGrace (store.LeaseGracer), zero without
	// one: a lease's end as stored is its holder's deadline plus grace.
	grace time.Duration
	// clockBehind is the store's ClockBehind (store.ClockChecker), nil
	// without one.
	clockBehind func() error

	// Close closes closing (stopDispatch ends stopping, whose Done it
	// is), waits for the Work calls and the claims under way (works) to
	// return, then closes closed. Between the two, nothing new is
	// dispatched and no new Work starts, but writes go on: the running
	// handlers' results are written, and a claim that commits after
	// closing gives its leases back. The claims' own reads end with
	// stopping (see readUntilClosing).
	closing      <-chan struct{}
	stopping     context.Context
	stopDispatch context.CancelFunc
	closed       chan struct{}
	// readsEnd ends with closed (endReads): the reads under way then are
	// cancelled (see read).
	readsEnd context.Context
	endReads context.CancelFunc
	once     sync.Once
	worksMu  sync.Mutex // orders works.Add against the close of closing
	works    sync.WaitGroup
	unwatch  func() // stops the store's Watcher, if it has one

	turnsMu sync.Mutex
	turns   map[uuid.UUID]int // per campaign: the pool DequeueCampaign tries first

	// resubscribing, set by tests only, runs while a campaign's waiter
	// (Work's producer, DequeueCampaign) changes the pools it is
	// subscribed to: between dropping the old ones and subscribing the new.
	resubscribing func()
}

// New returns an Engine over st. The caller keeps ownership of st: Close does
// not close it. Options are validated; zero fields take their defaults. A
// nil st, or a nil pointer to a store (a nil *sqlite.Store), is refused
// with a field error ("store") among the options' ([validate.Errors]).
func New(st store.Store, opts Options) (*Engine, error) {
	var v validate.Validator
	v.Check(!isNil(st), "store", validate.RuleRequired, "is required (not nil)")
	opts = opts.withDefaults()
	v.Merge("", opts.validate())
	var grace time.Duration
	if g, ok := st.(store.LeaseGracer); ok && !isNil(st) {
		grace = g.LeaseGrace()
		v.Check(grace >= 0 && grace <= MaxLeaseTimeout, "store", validate.RuleRange,
			fmt.Sprintf("its LeaseGrace must be between 0 and %v (got %v)", MaxLeaseTimeout, grace))
	}
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("queue: new engine: %w", err)
	}
	e := &Engine{st: st, opts: opts, grace: grace, closed: make(chan struct{}), unwatch: func() {}}
	if c, ok := st.(store.ClockChecker); ok {
		e.clockBehind = c.ClockBehind
	}
	e.stopping, e.stopDispatch = context.WithCancel(context.Background())
	e.closing = e.stopping.Done()
	e.readsEnd, e.endReads = context.WithCancel(context.Background())
	e.gc = groupcommit.New(st, groupcommit.Options{MaxBatch: opts.MaxBatch, Now: e.now})
	if w, ok := st.(store.Watcher); ok {
		// Other processes' signals wake this one's Dequeues; uuid.Nil
		// says some may have been lost (the store began to listen, or
		// listens again): every waiter looks again.
		e.unwatch = w.Watch(func(id uuid.UUID) {
			if id == uuid.Nil {
				e.wake.notifyAll()
				return
			}
			e.wake.notify(id)
		})
	}
	return e, nil
}

// isNil reports whether st is nil, or holds a nil pointer (or another nil
// value of a kind that can be nil): a store whose first method call would
// panic. New runs once: reflect's cost does not matter there.
func isNil(st store.Store) bool {
	if st == nil {
		return true
	}
	switch v := reflect.ValueOf(st); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan:
		return v.IsNil()
	}
	return false
}

// Close stops the engine. First it stops dispatch: blocked Dequeues return
// ErrClosed (a read of theirs under way is cancelled, so that a database
// gone silent does not hold them, or Close, up), and so does every later
// claim and Work whose arguments are valid. Each Work running then stops as when its context ends (it waits
// up to its Grace for the running handlers, then cancels them) and writes
// its handlers' results; Close waits for every Work to return, so that a
// call under way is neither lost nor made again because the engine closed.
// Then it waits for the writes under way to end (not for a write still
// waiting to begin, for another process's lock on a SQLite file, whose
// callers have all left: it stops waiting at once), and every later call
// with valid arguments returns ErrClosed (arguments are checked first:
// invalid ones still return their validation error). Every read still
// under way then (a Pool, an Items, a WatchEscalations' look) is cancelled
// and returns ErrClosed, so that one sent into a database gone silent
// holds up neither its caller nor the store's Close: the store may be
// closed once Close returns. It does not close the store.
//
// A claim under way when Close begins (a Dequeue's, a DequeueN's) that
// commits anyway gives its leases back, unattempted, in one write tried
// once, and returns ErrClosed; Close waits for it (on a database gone
// silent, for one write's round-trip bound). Until the Work calls and such claims have
// returned, other writes go on (Complete, Fail, Extend, … of leases held
// outside Work, an Add); Close does not wait for leases held outside Work:
// settle them before calling it. A handler that ignores its context's
// cancellation holds Close up, as it holds up Work. So Close must not be
// called from a handler or from WorkOptions.OnEvent: it would wait for
// itself; cancel Work's context instead.
//
// The store must outlive the engine: close it after Close returns, never
// before. A store closed first is handled (Work stops claiming, a result
// that cannot be written is not tried again, and Close returns without
// waiting out Grace), but nothing can be written to it any more: the
// results of the calls under way are lost, and their items stay in flight
// until their leases expire, then count as failed attempts.
//
// Close is safe to call more than once and from several goroutines; each
// call returns once the engine is closed.
func (e *Engine) Close() error {
	e.once.Do(func() {
		e.worksMu.Lock()
		e.stopDispatch() // closes closing
		e.worksMu.Unlock()
		e.works.Wait()
		close(e.closed)
		e.endReads() // a read sent into a silent connection would hold the store's Close
		e.unwatch()
	})
	e.gc.Close()
	return nil
}

// readUntilClosing is read for the reads of a claim or a Work call, which
// Close waits for: fn's context ends too when Close begins, and a read
// that failed once Close had begun returns ErrClosed. A write's round trip
// is bounded, but a read is bounded by its context only, and one sent into
// a connection gone silent (no FIN, no RST) would hold Close up for as
// long.
func (e *Engine) readUntilClosing(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	if ctx == nil {
		return errNilContext // as read says, before WithCancel panics
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.stopping, cancel)()
	err := e.read(ctx, fn)
	if err != nil && e.isClosing() {
		return ErrClosed
	}
	return err
}

// beginWork registers a Work call or a claim, which must call
// e.works.Done when it returns, and reports whether it may run: not once
// Close has begun.
func (e *Engine) beginWork() bool {
	e.worksMu.Lock()
	defer e.worksMu.Unlock()
	if e.isClosing() {
		return false
	}
	e.works.Add(1)
	return true
}

// signal tells the other processes sharing the store, if it can, that the
// write transaction tx may let a Dequeue blocked on pool id through (see
// [store.Signaler]). The engine's own Dequeues are woken after the commit,
// by wake.notify.
func signal(tx *wtx, id uuid.UUID) {
	if s, ok := tx.Tx.(store.Signaler); ok {
		s.Signal(id)
	}
}

// isClosing reports whether Close has begun: nothing is dispatched any
// more.
func (e *Engine) isClosing() bool {
	select {
	case <-e.closing:
		return true
	default:
		return false
	}
}

func (e *Engine) isClosed() bool {
	select {
	case <-e.closed:
		return true
	default:
		return false
	}
}

// now reads the clock in UTC, without the monotonic reading.
func (e *Engine) now() time.Time { return e.opts.Now().UTC().Round(0) }

// lockedNow is the instant the writes of a claim or an extension in a
// transaction of instant txNow are judged at, once the transaction holds
// the pool: the clock read now, or txNow if that is later. The
// transaction's instant is read as it begins, but on PostgreSQL a
// transaction takes a pool's lock after that, and may wait for it (up to
// the store's lock timeout) behind another node. Judged at txNow, a claim
// that waited would start a call after its calling window closed, or on a
// day whose count it did not check, and its lease would be shorter by the
// wait, or over before it was handed out (the contact called again while
// the first call goes on). Later is only ever safe: a lease that ends
// later, a window checked at the time of the call. A clock that moved
// less than lockWaitSlack since txNow leaves it as it is, and the claim's
// writes stay judged at the instant its first reads were made at (a claim
// judged at a later one reads its due items again): on SQLite the instant
// is read once the write lock is held, and the clock moves only with the
// transaction's own work, which is what the slack covers.
func (e *Engine) lockedNow(txNow time.Time) time.Time {
	if now := e.now(); now.Sub(txNow) > lockWaitSlack {
		return now
	}
	return txNow
}

// lockWaitSlack is how far the clock may move in a transaction before its
// claims are judged at a later instant than its own (see lockedNow): far
// below what a calling window (minutes) or a lease (minutes by default)
// measure, and above the few milliseconds a claim of a hundred items
// takes on a busy machine (with a millisecond, BenchmarkCycle/Batch100
// read its due items twice in some claims: 4 more allocations an item).
const lockWaitSlack = 50 * time.Millisecond

// wtx is a write transaction as the engine's operations see it: the
// store's, and the instant it runs at.
type wtx = groupcommit.Tx

// read runs fn in a read transaction after checking the engine is open.
// Close does not wait for reads, and the host may close the store once it
// returned: a read that fails after Close fails with ErrClosed, as every
// call with valid arguments after Close does, not with the closed store's
// error.
func (e *Engine) read(ctx context.Context, fn func(context.Context, store.Tx) error) (err error) {
	if ctx == nil {
		return errNilContext
	}
	if e.isClosed() {
		return ErrClosed
	}
	// A panic in the read (the store's, fn's) is an error, as it is in a
	// write (see package groupcommit): one out of Work's claiming loop
	// would end Work on the host's goroutine with its handlers running,
	// their results never written.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("queue: read transaction panicked: %v", v)
		}
	}()
	// The read ends with Close, its statements too (fn must run them on
	// the ctx it is given): the host may close the store once Close
	// returned, and a read under way would hold the store's Close (a
	// PostgreSQL store waits for its connections) for as long as it lasts:
	// forever on a connection gone silent, with a context that has no end.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.readsEnd, cancel)()
	err = e.st.Read(ctx, func(tx store.Tx) error { return fn(ctx, tx) })
	if err != nil && e.isClosed() {
		return ErrClosed
	}
	return err
}

// write runs fn through group commit, in a write transaction shared with
// the concurrent callers' operations (see package groupcommit). fn must
// use the ctx it is given, which is not cancelled.
func (e *Engine) write(ctx context.Context, fn func(context.Context, *wtx) error) error {
	if ctx == nil {
		return errNilContext
	}
	if e.isClosed() {
		return ErrClosed
	}
	var flags uint64
	err := e.gc.Write(ctx, func(ctx context.Context, tx *wtx) error {
		err := fn(ctx, tx)
		flags = tx.Flags // of the run that committed, when it did
		return err
	})
	if err == nil {
		e.announce(flags)
	}
	return closedErr(err)
}

// writeCombined is write for an operation that group commit may combine
// with the others of cb.Key.
func (e *Engine) writeCombined(ctx context.Context, cb *groupcommit.Combiner, req any) error {
	if ctx == nil {
		return errNilContext
	}
	if e.isClosed() {
		return ErrClosed
	}
	var flags uint64
	run := cb.Run
	err := e.gc.WriteCombined(ctx, &groupcommit.Combiner{Key: cb.Key, Late: cb.Late, Run: func(ctx context.Context, tx *wtx, reqs []any) error {
		err := run(ctx, tx, reqs)
		flags = tx.Flags
		return err
	}}, req)
	if err == nil {
		e.announce(flags)
	}
	return closedErr(err)
}

// Flags of a write transaction (wtx.Flags): what its callers announce
// after the commit.
const (
	flagEscalated uint64 = 1 << iota // an escalation was recorded: wake WatchEscalations
)

// announce wakes, after a commit, those waiting for what flags say it
// wrote. The caller whose operation set a flag announces it after its
// commit; another caller of the same transaction may announce it too,
// which costs a spurious look at most.
func (e *Engine) announce(flags uint64) {
	if flags&flagEscalated != 0 {
		e.wake.notify(escalationsKey)
	}
}

// closedErr is err, with group commit's ErrClosed as the engine's.
func closedErr(err error) error {
	if errors.Is(err, groupcommit.ErrClosed) {
		return ErrClosed
	}
	return err
}

// errNilContext is the error of a call given a nil context, once its
// other arguments are valid: every call reads or writes through read,
// write or writeCombined, which return it before anything else.
var errNilContext = validate.Errors{{Field: "ctx", Rule: validate.RuleRequired, Message: "is required (not nil: use context.Background())"}}

// checkID rejects the nil UUID as a pool id with a field error.
func checkID(field string, id uuid.UUID) error {
	var v validate.Validator
	v.Check(id != uuid.Nil, field, validate.RuleRequired, "is required (not the nil UUID)")
	return v.Err()
}

// checkIDAnd is checkID with, in the same [validate.Errors], the field
// errors of errs (the other arguments' checks), so that a call reports
// every bad field at once.
func checkIDAnd(field string, id uuid.UUID, errs ...error) error {
	var v validate.Validator
	v.Check(id != uuid.Nil, field, validate.RuleRequired, "is required (not the nil UUID)")
	for _, err := range errs {
		v.Merge("", err)
	}
	return v.Err()
}

// checkIDs rejects nil UUIDs: the pool's ("uuid") and the contacts'
// ("contact_uuid", or "contact_uuids[i]" for several).
func checkIDs(poolID uuid.UUID, contacts ...uuid.UUID) error {
	var v validate.Validator
	checkIDsInto(&v, poolID, contacts...)
	return v.Err()
}

// checkIDsInto adds checkIDs' errors to v.
func checkIDsInto(v *validate.Validator, poolID uuid.UUID, contacts ...uuid.UUID) {
	v.Check(poolID != uuid.Nil, "uuid", validate.RuleRequired, "is required (not the nil UUID)")
	for i, c := range contacts {
		field := "contact_uuid"
		if len(contacts) > 1 {
			field = fmt.Sprintf("contact_uuids[%d]", i)
		}
		v.Check(c != uuid.Nil, field, validate.RuleRequired, "is required (not the nil UUID)")
	}
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// Stats are counters of an Engine's write path since New. Operations /
// Transactions is the average size of a group-commit batch.
type Stats struct {
	// Transactions is the number of write transactions run (a batch whose
	// run was redone with savepoints counts once).
	Transactions uint64
	// Operations is the number of write operations (dispatches,
	// settlements, adds, pool changes) run in them. An operation whose
	// caller left before it started is not run, and not counted.
	Operations uint64
	// Reruns is the number of times a batch was run again because an
	// operation in it failed: a second time, with a savepoint per
	// operation, and once more without each operation whose failure ended
	// the whole transaction; and, after a commit that failed with nothing
	// written, once for each operation run alone (see the package doc).
	Reruns uint64
}

// Stats returns the engine's counters. It is safe to call at any time.
func (e *Engine) Stats() Stats {
	s := e.gc.Stats()
	return Stats{Transactions: s.Transactions, Operations: s.Operations, Reruns: s.Reruns}
}
