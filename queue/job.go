package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// job is one lease of Work and the handler running on it.
//
// Its state moves once from running to settling (the handler returned) or
// lost (the lease ended first), so that a lease is settled at most once by
// the runner: the handler's goroutine settles a settling job, and a job
// lost at its end by this node's clock (the watchdog, atEnd), whose lease
// may yet be ours, once its handler returns (see handle); a job the store
// said was lost is not settled at all.
type job struct {
	lease  Lease
	ctx    context.Context // the handler's, cancelled when the lease is lost or Work's grace ends
	cancel context.CancelFunc
	// start is when the job began, by the monotonic clock: just after
	// the claim that wrote its lease's end (see runner.left).
	start time.Time
	// stopped is set, before ctx is cancelled, when Work's grace ends
	// with the handler still running (see runner.settlement).
	stopped atomic.Bool

	mu    sync.Mutex
	state jobState
	// atEnd is set with state jobLost when the watchdog, not the store,
	// found the lease lost.
	atEnd bool
	// reported is made when state becomes jobLost, and closed once lose
	// has logged and reported it: handle waits for it, so that no event
	// of a job comes after Work returns (the watchdog runs lose on a
	// goroutine of its own).
	reported chan struct{}
}

type jobState int

const (
	jobRunning jobState = iota
	jobSettling
	jobLost
)

// claim moves j from running to s and reports whether it did; atEnd is
// recorded with a move to jobLost.
func (j *job) claim(s jobState, atEnd bool) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != jobRunning {
		return false
	}
	j.state = s
	if s == jobLost {
		j.atEnd = atEnd
		j.reported = make(chan struct{})
	}
	return true
}

// awaitLost waits until the loss of j, if it was lost, has been reported,
// and reports whether it was lost at its end by this node's clock rather
// than by the store's word.
func (j *job) awaitLost() (atEnd bool) {
	j.mu.Lock()
	reported, atEnd := j.reported, j.atEnd
	j.mu.Unlock()
	if reported != nil {
		<-reported
	}
	return atEnd
}

// handle runs the handler on j's lease, keeps the lease alive meanwhile,
// and settles it with the handler's result. A lease that has ended before
// the handler could start is not handled at all, and one whose calling
// window has closed meanwhile, or whose Work's grace has ended, is given
// back.
func (r *runner) handle(j *job) {
	defer j.cancel()
	l := &j.lease
	// The event first: OnEvent is the host's code, and may take long
	// enough for the lease to end; nothing but this goroutine's own work
	// comes between the check and the handler's start.
	r.opts.OnEvent(Event{Kind: EventDispatched, Lease: *l})
	if r.left(l, j.start) <= 0 {
		if j.claim(jobLost, false) {
			err := fmt.Errorf("lease ended before its handler started: %w", ErrLeaseLost)
			r.log.Warn("poolq: lease ended before its handler started", "pool", l.PoolUUID, "contact", l.ContactUUID)
			r.opts.OnEvent(Event{Kind: EventExpired, Lease: *l, Err: err})
			close(j.reported)
		}
		return
	}
	// The claim found the rule's calling window open at its instant; the
	// handler would start the call now, which may be after the window
	// closed (a slow OnEvent, a starved goroutine): then the lease goes
	// back unattempted, as a claim that committed late does (see
	// lateClaimSlack), and the next claim schedules the item. No watchdog
	// runs yet: the job is this goroutine's alone.
	if l.outsideWindow(r.e.now()) {
		r.notStarted(j, "its calling window closed after the claim")
		return
	}
	// Work's grace ended while OnEvent ran: the shutdown has stopped every
	// handler, and this one's call would begin after it. The lease goes
	// back unattempted, as those of a claim that committed as Work
	// stopped. (A grace that ends from here on stops the handler as any
	// other.)
	if j.stopped.Load() {
		r.notStarted(j, "Work's grace ended before it started")
		return
	}

	stop, beaten := make(chan struct{}), make(chan time.Time, 1)
	go r.heartbeat(j, stop, beaten)
	err := r.call(j)
	stopped := "" // read now: the grace may end while the result is written
	if j.stopped.Load() {
		stopped = "stopped at shutdown"
	}
	// The result is ours to write from the moment the handler returned,
	// before the heartbeat is waited for: an extension under way when the
	// lease's end passes must not let the watchdog take the lease from a
	// handler that is done (the extension may yet be written, and the
	// result with it); if it is not, the settlement finds the lease lost.
	settling := j.claim(jobSettling, false)
	close(stop)
	expires := <-beaten

	if !settling && !j.awaitLost() {
		return // the store said the lease is lost: it is no longer ours
	}
	// The handler is done: its worker is free while the settlement is
	// written, so that the next claim can join the settlement's
	// transaction instead of waiting for it to commit.
	r.finish(j)
	if !settling {
		// The watchdog stopped the handler at the lease's end by this
		// node's clock, but an extension under way then may have been
		// written after it: the lease may be ours still, and the item
		// would stay in flight, held by no one, until the extended end,
		// then count a failed attempt. The result is written as a stopped
		// handler's (a cancelled call given back unattempted); the token
		// decides, and a lease that did end is refused (ErrLeaseLost,
		// reported already).
		r.settle(j, err, "stopped at its lease's end", expires, true)
		return
	}
	r.settle(j, err, stopped, expires, false)
}

// settle writes the handler's result herr on j's lease, which lasts until
// expires; stopped, when it is not empty, says why the runner had stopped
// the handler when it returned (Work's grace ended, or its lease); lost
// says the job was reported lost already, so that a settlement refused for
// its lease reports nothing more. A write that fails for a reason other
// than the lease or the input (the database busy or unreachable for a
// moment) is tried again a quarter of Heartbeat later, until it is
// written, the lease would end before the next try, or Work's grace has
// ended: a call that went through must not come back as a failed attempt,
// and be made again, because one write failed. (So the result of a
// handler that returns after the grace, a stopped one's, is tried once: a
// shutdown does not wait for the database.)
func (r *runner) settle(j *job, herr error, stopped string, expires time.Time, lost bool) {
	l := &j.lease
	bg := context.WithoutCancel(j.ctx) // the settlement runs even if the handler's context ended
	attrs := []any{"pool", l.PoolUUID, "contact", l.ContactUUID, "attempt", l.Attempt}
	for {
		ctx, cancel := r.writeCtx(bg)
		ev, err := r.settlement(ctx, j, herr, stopped)
		cancel()
		ev.Lease, ev.Elapsed = *l, time.Since(j.start)
		if err != nil {
			if lost && errors.Is(err, ErrLeaseLost) {
				r.log.Debug("poolq: lease lost at its end, as reported", append(attrs, "err", err)...)
				return
			}
			r.settleError(l, err, ev.Elapsed, attrs)
			if !r.settleAgain(err, expires) {
				return
			}
			continue
		}
		if ev.Kind == EventRetried || ev.Kind == EventFailed {
			r.log.Debug("poolq: attempt failed", append(attrs, "status", ev.Item.Status, "err", herr)...)
		}
		r.opts.OnEvent(ev)
		return
	}
}

// notStarted gives back j's lease, whose handler is not started (why says
// why), and reports the outcome.
func (r *runner) notStarted(j *job, why string) {
	l := &j.lease
	r.log.Warn("poolq: handler not started, "+why, "pool", l.PoolUUID, "contact", l.ContactUUID)
	switch err := r.giveBackUnstarted(j); {
	case errors.Is(err, ErrLeaseLost):
		// Ended or settled elsewhere (the host's OnEvent may settle it):
		// nothing was given back.
		r.opts.OnEvent(Event{Kind: EventExpired, Lease: *l, Err: err})
	case err != nil:
		r.storeClosed(err)
		r.log.Warn("poolq: give back failed", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
		r.opts.OnEvent(Event{Kind: EventError, Lease: *l, Err: err})
	default:
		r.opts.OnEvent(Event{Kind: EventReleased, Lease: *l})
	}
}

// giveBackUnstarted releases j's lease, unattempted: its handler was not
// started (see notStarted). A release that
// fails for a reason other than the lease is tried again, giveBackTries
// times in all, giveBackPause apart, while the lease lasts and Work's
// grace has not ended: a lease given back by no one comes back at its end
// as a failed attempt, a contact never called counted as called. Each try
// is bounded as a result's is (writeCtx): a shutdown does not wait for
// another process's lock. It returns nil once the item is given back, an
// error wrapping ErrLeaseLost when the lease had ended or been settled
// elsewhere (nothing was written), or the last try's error.
func (r *runner) giveBackUnstarted(j *job) error {
	l := &j.lease
	bg := context.WithoutCancel(j.ctx) // the lease is held whatever the handler's context says
	for try := 1; ; try++ {
		ctx, cancel := r.writeCtx(bg)
		err := r.e.Release(ctx, l)
		cancel()
		if err == nil || try == giveBackTries || failsForGood(err) || !r.e.now().Add(giveBackPause).Before(l.ExpiresAt) {
			return err
		}
		t := time.NewTimer(giveBackPause)
		select {
		case <-t.C:
		case <-r.graceEnded:
			t.Stop()
			return err
		}
	}
}

// settlement writes herr, the handler's result, on j's lease, and returns
// the event it makes (without its lease and elapsed time): nil completes
// the item; an error fails it — except the cancellation of a handler that
// the runner stopped (stopped says why, and the handler returned an error
// wrapping context.Canceled, its context's say, not marked Final or
// RetryAt): that
// item is given back unattempted, as at Release, unless its call had
// connected (In_Call), and then it is a failed attempt. So a call cut
// short at shutdown counts against the ceiling once the contact has
// spoken, and a handler that finished its call when asked to stop still
// completes its item: neither is dialled again for nothing.
func (r *runner) settlement(ctx context.Context, j *job, herr error, stopped string) (Event, error) {
	l := &j.lease
	if herr == nil {
		return Event{Kind: EventCompleted}, r.e.Complete(ctx, l, "")
	}
	f := failureOf(herr)
	if stopped != "" && errors.Is(herr, context.Canceled) && !f.Final && f.RetryAt.IsZero() {
		f.Note = noteOf(stopped + ": " + herr.Error())
		it, released, err := r.e.giveBack(ctx, l, f)
		if released {
			return Event{Kind: EventReleased, Item: it}, err
		}
		return failed(it, herr), err
	}
	if f.RetryAt.After(r.e.now().Add(MaxRetryDelay)) {
		// Fail refuses such a time, and the attempt, unwritten, would
		// expire and be retried after RetryDelay: the contact called long
		// before the handler asked. Failing for good is the nearest the
		// engine can come to "not before then".
		f = Failure{Final: true, Note: noteOf(fmt.Sprintf("failed for good: retry time %s is more than %v ahead: %s",
			f.RetryAt.UTC().Format(time.RFC3339), MaxRetryDelay, f.Note))}
	}
	it, err := r.e.fail(ctx, l, f)
	return failed(it, herr), err
}

// failed is the event of a failed attempt that left the item it: retried
// when it is waiting for another attempt, failed when it is finished
// (Failed, or Skipped: the contact opted out under a rule).
func failed(it pool.Item, herr error) Event {
	if it.Status.Waiting() {
		return Event{Kind: EventRetried, Item: it, Err: herr}
	}
	return Event{Kind: EventFailed, Item: it, Err: herr}
}

// settleAgain waits a quarter of Heartbeat and reports whether a
// settlement that failed with err should be tried again: not when the
// lease is lost, the engine or the store closed or the input refused
// (trying again cannot help), nor when the lease ends before the next try
// or Work's grace ends meanwhile. (The engine does not close while Work runs: Close
// waits for it.)
func (r *runner) settleAgain(err error, expires time.Time) bool {
	if failsForGood(err) {
		return false
	}
	wait := r.opts.Heartbeat / 4
	if !r.e.now().Add(wait).Before(expires) {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.graceEnded:
		return false
	}
}

// failsForGood reports whether a settlement that failed with err would
// fail again however often it was tried: the lease lost, the engine
// closed, the store closed under it (the host closed it before the
// engine), the input refused.
func failsForGood(err error) bool {
	return errors.Is(err, ErrLeaseLost) || errors.Is(err, ErrClosed) || errors.Is(err, store.ErrClosed) ||
		errors.Is(err, validate.ErrInvalid)
}

func (r *runner) settleError(l *Lease, err error, elapsed time.Duration, attrs []any) {
	r.storeClosed(err)
	kind := EventError
	if errors.Is(err, ErrLeaseLost) {
		kind = EventExpired
	}
	r.log.Warn("poolq: settle failed", append(attrs, "err", err)...)
	r.opts.OnEvent(Event{Kind: kind, Lease: *l, Err: err, Elapsed: elapsed})
}

// call runs the handler and returns its result as an error that is safe
// to read: a panic, or a runtime.Goexit (t.FailNow in a test double),
// becomes an error, and so does a result whose own methods panic (a typed
// nil pointer returned as an error): see examine. The handler runs on a
// goroutine of its own, so that a Goexit ends that goroutine, not the job.
func (r *runner) call(j *job) error {
	done := make(chan error, 1)
	go func() {
		returned := false
		defer func() {
			if returned {
				return
			}
			v := recover()
			what := "panicked"
			if v == nil {
				v, what = "runtime.Goexit", "exited its goroutine"
			}
			r.log.Error("poolq: handler "+what, "pool", j.lease.PoolUUID, "contact", j.lease.ContactUUID,
				"panic", v, "stack", string(debug.Stack()))
			done <- fmt.Errorf("panic: %v", v)
		}()
		l := j.lease // the handler's own copy
		err := r.h(j.ctx, &l)
		returned = true
		done <- examine(err)
	}()
	return <-done
}

// examine returns herr if the runner can read it, and otherwise an error
// that says why not, which wraps nothing: the runner calls its Error, Is,
// As and Unwrap methods, which are the host's code, and one that panics (a
// nil *MyError returned as an error) would end the process with every call
// under way; a chain that wraps itself would keep errors.Is and errors.As
// walking it for ever, the job never settled, Work and Close never
// returning.
func examine(herr error) (out error) {
	if herr == nil {
		return nil
	}
	defer func() {
		if v := recover(); v != nil {
			out = fmt.Errorf("the handler's error (%T) panicked when read: %v", herr, v)
		}
	}()
	if !boundedChain(herr) {
		return fmt.Errorf("the handler's error (%T) wraps itself, or more than %d errors: %s", herr, maxErrChain, herr.Error())
	}
	_ = failureOf(herr)
	_ = errors.Is(herr, context.Canceled)
	return herr
}

// heartbeat extends j's lease until stop is closed, and stops the
// handler when the lease is lost. It sends on stopped, when it ends, when
// the lease lasts until.
//
// An extension is due Heartbeat after the lease was given or last
// extended, measured on the lease's own expiry (ExpiresAt minus
// LeaseTimeout), so that the time before the handler started, and each
// extension's own latency, count against it; after one that failed, the
// next is tried a quarter of Heartbeat later. The lease is lost when an
// extension finds it settled or expired, or when its end as last extended
// passes without an extension written (the database unreachable from
// here, an extension that hangs, or extensions refused: see
// store.ClockChecker): past it the item may be another
// worker's, on this node or another, so the handler must stop.
func (r *runner) heartbeat(j *job, stop <-chan struct{}, stopped chan<- time.Time) {
	l := j.lease // its own copy: Extend writes its ExpiresAt
	defer func() { stopped <- l.ExpiresAt }()
	ctx := context.WithoutCancel(j.ctx)
	lease, every := r.e.opts.LeaseTimeout, r.opts.Heartbeat
	written := j.start // when the lease's end was last written, by the monotonic clock
	left := func() time.Duration { return r.left(&l, written) }
	due := func() time.Duration { return max(left()-(lease-every), 0) }
	watchdog := time.AfterFunc(left(), func() { // l is not its to read: lose reads j's
		r.lose(j, nil, true, fmt.Errorf("lease ended before it could be extended: %w", ErrLeaseLost))
	})
	defer watchdog.Stop()
	t := time.NewTimer(due())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ectx, cancel := r.writeCtx(ctx)
		sent := time.Now() // the end is written from a later instant: counting from here errs early
		err := r.e.Extend(ectx, &l, lease)
		cancel()
		switch {
		case err == nil:
			written = sent
			watchdog.Reset(left())
			t.Reset(due())
		case errors.Is(err, ErrLeaseLost):
			r.lose(j, &l, false, err)
			return
		default:
			r.log.Error("poolq: extend failed", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
			r.opts.OnEvent(Event{Kind: EventError, Lease: l, Err: err})
			t.Reset(every / 4)
		}
	}
}

// left returns how long is left of l, a lease of Work whose end was last
// written (by its claim or an extension, for LeaseTimeout) just before
// written, an instant of the monotonic clock: until its end by the clock,
// and never more than LeaseTimeout after written. So a clock stepped back
// since the write puts neither the check before a handler starts, nor the
// watchdog, nor the next extension off by the step: the lease ends on
// time for the other nodes, by their clocks (and a store whose nodes'
// clocks differ refuses to extend it from a clock far behind, see
// store.ClockChecker).
func (r *runner) left(l *Lease, written time.Time) time.Duration {
	return min(l.ExpiresAt.Sub(r.e.now()), r.e.opts.LeaseTimeout-time.Since(written))
}

// lose marks j's lease lost and cancels its handler, unless its handler
// has returned (the lease is being settled); l (nil: j's, which only the
// job's owner writes, and now that is lose) is the lease the event reports;
// atEnd says the watchdog found it lost, not the store.
func (r *runner) lose(j *job, l *Lease, atEnd bool, err error) {
	if j.claim(jobLost, atEnd) {
		defer close(j.reported)
		if l == nil {
			l = &j.lease
		}
		j.cancel()
		r.log.Warn("poolq: lease lost while handling", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
		r.opts.OnEvent(Event{Kind: EventExpired, Lease: *l, Err: err, Elapsed: time.Since(j.start)})
	}
}
