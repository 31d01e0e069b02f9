package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// DefaultGrace is how long Work waits for running handlers after its context
// ends, unless WorkOptions.Grace says otherwise.
const DefaultGrace = 30 * time.Second

// Handler processes one leased item for [Engine.Work]. Its result settles
// the item: nil completes it; an error fails it with the error's text as the
// note — retried after the engine's RetryDelay, or at the time carried by
// [RetryAt], or failed for good when wrapped by [Final] — and a panic fails it
// with the panic recorded in the note. The handler may call
// [Engine.MarkInCall] on the lease; it must not settle the lease itself
// (Complete, Fail, Release), and it must return soon after ctx is done.
type Handler func(ctx context.Context, l *Lease) error

type retryAtError struct {
	at  time.Time
	err error
}

func (e *retryAtError) Error() string {
	if e.err == nil {
		return "retry at " + e.at.UTC().Format(time.RFC3339)
	}
	return e.err.Error()
}

func (e *retryAtError) Unwrap() error { return e.err }

// RetryAt returns an error that, returned by a [Handler], fails the attempt
// and schedules the next one at t (status Scheduled) instead of after the
// engine's RetryDelay. err, which may be nil, is the note. The pool's retry
// ceiling still applies: with no attempts left the item fails for good.
func RetryAt(t time.Time, err error) error { return &retryAtError{at: t, err: err} }

type finalError struct{ err error }

func (e *finalError) Error() string {
	if e.err == nil {
		return "final failure"
	}
	return e.err.Error()
}

func (e *finalError) Unwrap() error { return e.err }

// Final returns an error that, returned by a [Handler], fails the item for
// good (status Failed) whatever attempts are left: a wrong number, an
// opt-out. err is the note.
func Final(err error) error { return &finalError{err: err} }

// FailureOf maps a handler's error to the [Failure] Work records: its text
// as the note, the time of a [RetryAt] and the finality of a [Final] found
// anywhere in its chain.
func FailureOf(err error) Failure {
	f := Failure{Note: err.Error()}
	var ra *retryAtError
	if errors.As(err, &ra) {
		f.RetryAt = ra.at
	}
	var fe *finalError
	if errors.As(err, &fe) {
		f.Final = true
	}
	return f
}

// EventKind names what happened to a leased item in [Engine.Work].
type EventKind string

// The events of Work.
const (
	EventDispatched EventKind = "dispatched" // an item was leased and handed to the handler
	EventCompleted  EventKind = "completed"  // the handler returned nil; the item is Completed
	EventRetried    EventKind = "retried"    // the handler failed; the item will be tried again (Retrying or Scheduled)
	EventFailed     EventKind = "failed"     // the handler failed; the item is Failed for good
	EventExpired    EventKind = "expired"    // the lease was lost while the handler ran (it expired or was settled elsewhere)
	EventReleased   EventKind = "released"   // the item was given back at shutdown, attempt not counted
	EventError      EventKind = "error"      // the engine could not dispatch or settle; Err says why
)

// Event reports one step of [Engine.Work] to WorkOptions.OnEvent.
type Event struct {
	Kind EventKind
	// Lease is the lease concerned (zero for an EventError while
	// dispatching).
	Lease Lease
	// Item is the item after the event, when the engine returned it
	// (completed, retried, failed).
	Item pool.Item
	// Err is the handler's error (retried, failed), or the engine's
	// (error, expired).
	Err error
	// Elapsed is how long the handler ran (completed, retried, failed,
	// expired, released).
	Elapsed time.Duration
}

// WorkOptions configures [Engine.Work]. Zero fields take their defaults.
type WorkOptions struct {
	// Pools are the pools to work on; at least one. A worker takes the next
	// item from them in turn (round robin), so a busy pool does not starve
	// the others; each pool's own order and cap still hold.
	Pools []uuid.UUID
	// Workers is the number of handler goroutines. Defaults to 1.
	Workers int
	// Grace is how long Work waits for running handlers once its context
	// ends, before it cancels their contexts and releases their items.
	// Defaults to DefaultGrace (30 seconds).
	Grace time.Duration
	// Heartbeat is how often a running handler's lease is extended (by the
	// engine's LeaseTimeout). Defaults to a third of LeaseTimeout.
	Heartbeat time.Duration
	// Logger receives the runner's logs. Defaults to discarding them.
	Logger *slog.Logger
	// OnEvent, when set, is called for every [Event], from the worker
	// goroutines: it must be safe for concurrent use and quick.
	OnEvent func(Event)
}

func (o WorkOptions) withDefaults(lease time.Duration) WorkOptions {
	if o.Workers == 0 {
		o.Workers = 1
	}
	if o.Grace == 0 {
		o.Grace = DefaultGrace
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = lease / 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	return o
}

func (o WorkOptions) validate(h Handler) error {
	var v validate.Validator
	v.Check(h != nil, "handler", validate.RuleRequired, "is required")
	v.Check(len(o.Pools) > 0, "pools", validate.RuleRequired, "at least one pool is required")
	for i, id := range o.Pools {
		v.Check(id != uuid.Nil, fmt.Sprintf("pools[%d]", i), validate.RuleRequired, "is required (not the nil UUID)")
	}
	v.IntRange("workers", o.Workers, 1, 10_000)
	v.Check(o.Grace >= 0, "grace", validate.RuleRange, "must not be negative")
	v.Check(o.Heartbeat > 0, "heartbeat", validate.RuleRange, "must be positive")
	return v.Err()
}

// Work runs h over the items of opts.Pools with opts.Workers goroutines until
// ctx ends, then shuts down: it stops dispatching, waits up to opts.Grace for
// running handlers, cancels the contexts of those still running, releases
// their items (attempt not counted), waits for them to return, and returns
// nil. While a handler runs, its lease is extended every opts.Heartbeat, so a
// long call is never handed to a second worker; if the lease is lost anyway
// (EventExpired), the handler's context is cancelled and its result ignored.
//
// Idle workers do not all poll: one of them at a time looks for items, with
// one DequeueN for as many leases as there are idle workers, and hands the
// others over, so an Add wakes one goroutine and costs one claim.
//
// Work returns [validate.Errors] for bad options, [store.ErrNotFound] when a
// pool does not exist at the start, and [ErrClosed] when the engine is closed
// while it runs (items in hand are then left to expire). Close the engine
// only after Work has returned.
func (e *Engine) Work(ctx context.Context, h Handler, opts WorkOptions) error {
	opts = opts.withDefaults(e.opts.LeaseTimeout)
	if err := opts.validate(h); err != nil {
		return fmt.Errorf("work: %w", err)
	}
	pools := make([]uuid.UUID, 0, len(opts.Pools))
	seen := map[uuid.UUID]bool{}
	for _, id := range opts.Pools {
		if !seen[id] {
			seen[id] = true
			pools = append(pools, id)
		}
	}
	err := e.read(ctx, func(tx store.Tx) error {
		for _, id := range pools {
			if _, err := tx.Pool(ctx, id); err != nil {
				return fmt.Errorf("pool %s: %w", id, err)
			}
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: a normal shutdown with nothing to wait for
		}
		return fmt.Errorf("work: %w", err)
	}
	r := &runner{
		e: e, h: h, opts: opts, pools: pools, log: opts.Logger, jobs: map[*job]struct{}{},
		seek: make(chan struct{}, 1), handoff: make(chan *Lease, 2*opts.Workers),
	}
	var wg sync.WaitGroup
	for i := range opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx, i)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	select {
	case <-done: // every worker stopped by itself: the engine was closed
		return fmt.Errorf("work: %w", ErrClosed)
	case <-ctx.Done():
	}
	r.log.Info("poolq: work stopping", "grace", opts.Grace)
	grace := time.NewTimer(opts.Grace)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		r.abandonAll(context.WithoutCancel(ctx))
		<-done
	}
	r.releaseHandedOff(context.WithoutCancel(ctx))
	if e.isClosed() {
		return fmt.Errorf("work: %w", ErrClosed)
	}
	return nil
}

// runner is the state of one Work call.
type runner struct {
	e     *Engine
	h     Handler
	opts  WorkOptions
	pools []uuid.UUID
	log   *slog.Logger

	mu   sync.Mutex
	jobs map[*job]struct{} // handlers running now

	seek    chan struct{} // capacity 1: held by the idle worker looking for items
	handoff chan *Lease   // leases the seeker claimed for other idle workers
	idle    atomic.Int32  // workers waiting for a lease
}

// job is one running handler. state moves once from running to settling
// (the handler returned), lost (the heartbeat lost the lease) or released
// (abandoned at shutdown); whoever moves it owns the lease's settlement.
type job struct {
	lease  Lease
	cancel context.CancelFunc
	start  time.Time

	mu    sync.Mutex
	state jobState
}

type jobState int

const (
	jobRunning jobState = iota
	jobSettling
	jobLost
	jobReleased
)

// claim moves j from running to s and reports whether it did.
func (j *job) claim(s jobState) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != jobRunning {
		return false
	}
	j.state = s
	return true
}

// worker runs handlers until ctx ends. At most one idle worker at a time —
// the seeker — looks for items; it claims as many as there are idle workers
// (one DequeueN) and hands the others over. So an Add wakes one goroutine
// and costs one claim, not a claim attempt per idle worker.
func (r *runner) worker(ctx context.Context, n int) {
	next := n % len(r.pools) // workers start on different pools
	for {
		var l *Lease
		select {
		case l = <-r.handoff: // leases claimed for idle workers come first
		default:
		}
		if l == nil {
			r.idle.Add(1)
			select {
			case l = <-r.handoff:
				r.idle.Add(-1)
			case r.seek <- struct{}{}:
				r.idle.Add(-1)
				ls, i, err := r.next(ctx, next, int(r.idle.Load())+1)
				<-r.seek
				if err != nil {
					return // ctx ended or the engine closed
				}
				next = (i + 1) % len(r.pools)
				l = ls[0]
				for _, x := range ls[1:] {
					select {
					case r.handoff <- x:
					default: // cannot happen with the buffer's size; never strand a lease
						r.release(context.WithoutCancel(ctx), x, 0)
					}
				}
			case <-ctx.Done():
				r.idle.Add(-1)
				return
			case <-r.e.closed:
				r.idle.Add(-1)
				return
			}
		}
		if ctx.Err() != nil { // shutting down: do not start new work
			r.release(context.WithoutCancel(ctx), l, 0)
			return
		}
		r.handle(ctx, l)
	}
}

// releaseHandedOff releases the leases claimed for workers that stopped
// before taking them.
func (r *runner) releaseHandedOff(ctx context.Context) {
	for {
		select {
		case l := <-r.handoff:
			r.release(ctx, l, 0)
		default:
			return
		}
	}
}

// next returns up to n leases from the first pool, starting at index from,
// that has a due item and room, waiting for one when none has. It returns
// an error only when ctx ends or the engine is closed.
func (r *runner) next(ctx context.Context, from, n int) ([]*Lease, int, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	cases := make([]reflect.SelectCase, 0, len(r.pools)+3)
	for {
		cases = cases[:0]
		for _, id := range r.pools {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.e.signal(id))})
		}
		wait := r.e.opts.PollInterval
		for k := range r.pools {
			i := (from + k) % len(r.pools)
			ls, err := r.e.DequeueN(ctx, r.pools[i], n)
			switch {
			case err == nil:
				return ls, i, nil
			case errors.Is(err, ErrEmpty), errors.Is(err, ErrAtCapacity):
				if w, err := r.e.waitFor(ctx, r.pools[i]); err == nil {
					wait = min(wait, w)
				}
			case errors.Is(err, ErrClosed):
				return nil, 0, err
			case ctx.Err() != nil:
				return nil, 0, ctx.Err()
			default:
				r.log.Error("poolq: dequeue failed", "pool", r.pools[i], "err", err)
				r.opts.OnEvent(Event{Kind: EventError, Err: err})
			}
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		cases = append(cases,
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
			reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.e.closed)},
		)
		chosen, _, _ := reflect.Select(cases)
		switch chosen {
		case len(cases) - 2:
			return nil, 0, ctx.Err()
		case len(cases) - 1:
			return nil, 0, ErrClosed
		}
	}
}

// handle runs the handler on l, keeps the lease alive meanwhile, and settles
// it with the handler's result.
func (r *runner) handle(ctx context.Context, l *Lease) {
	bg := context.WithoutCancel(ctx) // settlements outlive the Work context
	hctx, cancel := context.WithCancel(bg)
	defer cancel()
	j := &job{lease: *l, cancel: cancel, start: time.Now()}
	r.mu.Lock()
	r.jobs[j] = struct{}{}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.jobs, j)
		r.mu.Unlock()
	}()
	r.opts.OnEvent(Event{Kind: EventDispatched, Lease: *l})

	stop, stopped := make(chan struct{}), make(chan struct{})
	go r.heartbeat(bg, j, stop, stopped)
	err := r.call(hctx, l)
	close(stop)
	<-stopped

	if !j.claim(jobSettling) {
		return // lost or released meanwhile: the lease is no longer ours
	}
	elapsed := time.Since(j.start)
	attrs := []any{"pool", l.PoolUUID, "contact", l.ContactUUID, "attempt", l.Attempt}
	if err == nil {
		switch serr := r.e.Complete(bg, l, ""); {
		case serr == nil:
			r.opts.OnEvent(Event{Kind: EventCompleted, Lease: *l, Elapsed: elapsed})
		default:
			r.settleError(l, serr, elapsed, attrs)
		}
		return
	}
	it, serr := r.e.fail(bg, l, FailureOf(err))
	if serr != nil {
		r.settleError(l, serr, elapsed, attrs)
		return
	}
	kind := EventRetried
	if it.Status == pool.StatusFailed {
		kind = EventFailed
	}
	r.log.Debug("poolq: attempt failed", append(attrs, "status", it.Status, "err", err)...)
	r.opts.OnEvent(Event{Kind: kind, Lease: *l, Item: it, Err: err, Elapsed: elapsed})
}

func (r *runner) settleError(l *Lease, err error, elapsed time.Duration, attrs []any) {
	kind := EventError
	if errors.Is(err, ErrLeaseLost) {
		kind = EventExpired
	}
	r.log.Warn("poolq: settle failed", append(attrs, "err", err)...)
	r.opts.OnEvent(Event{Kind: kind, Lease: *l, Err: err, Elapsed: elapsed})
}

// call runs the handler, turning a panic into an error.
func (r *runner) call(ctx context.Context, l *Lease) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("poolq: handler panicked", "pool", l.PoolUUID, "contact", l.ContactUUID,
				"panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return r.h(ctx, l)
}

// heartbeat extends j's lease every Heartbeat until stop is closed. When the
// lease is lost it cancels the handler.
func (r *runner) heartbeat(ctx context.Context, j *job, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	t := time.NewTicker(r.opts.Heartbeat)
	defer t.Stop()
	l := j.lease // our own copy: Extend writes its ExpiresAt
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		err := r.e.Extend(ctx, &l, r.e.opts.LeaseTimeout)
		switch {
		case err == nil:
		case errors.Is(err, ErrLeaseLost):
			if j.claim(jobLost) {
				j.cancel()
				r.log.Warn("poolq: lease lost while handling", "pool", l.PoolUUID, "contact", l.ContactUUID)
				r.opts.OnEvent(Event{Kind: EventExpired, Lease: l, Err: err, Elapsed: time.Since(j.start)})
			}
			return
		default:
			r.log.Error("poolq: extend failed", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
			r.opts.OnEvent(Event{Kind: EventError, Lease: l, Err: err})
		}
	}
}

// abandonAll cancels every running handler and releases its item.
func (r *runner) abandonAll(ctx context.Context) {
	r.mu.Lock()
	jobs := make([]*job, 0, len(r.jobs))
	for j := range r.jobs {
		jobs = append(jobs, j)
	}
	r.mu.Unlock()
	for _, j := range jobs {
		if !j.claim(jobReleased) {
			continue
		}
		j.cancel()
		l := j.lease
		r.release(ctx, &l, time.Since(j.start))
	}
}

func (r *runner) release(ctx context.Context, l *Lease, elapsed time.Duration) {
	if err := r.e.Release(ctx, l); err != nil {
		r.log.Warn("poolq: release at shutdown failed", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
		r.opts.OnEvent(Event{Kind: EventError, Lease: *l, Err: err})
		return
	}
	r.opts.OnEvent(Event{Kind: EventReleased, Lease: *l, Elapsed: elapsed})
}
