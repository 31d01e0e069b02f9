package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/poolq/poolq/pool"
)

// job is one lease of Work and the handler running on it.
//
// Its state moves once from running to settling (the handler returned),
// lost (the lease ended first) or released (abandoned at shutdown); whoever
// moves it owns the lease's settlement, so a lease is settled at most once
// by the runner.
type job struct {
	lease  Lease
	ctx    context.Context // the handler's, cancelled when the lease is lost or abandoned
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

// handle runs the handler on j's lease, keeps the lease alive meanwhile,
// and settles it with the handler's result. A lease that has ended before
// the handler could start is not handled at all.
func (r *runner) handle(j *job) {
	defer j.cancel()
	l := &j.lease
	if !r.e.now().Before(l.ExpiresAt) {
		if j.claim(jobLost) {
			err := fmt.Errorf("lease ended before its handler started: %w", ErrLeaseLost)
			r.log.Warn("poolq: lease ended before its handler started", "pool", l.PoolUUID, "contact", l.ContactUUID)
			r.opts.OnEvent(Event{Kind: EventExpired, Lease: *l, Err: err})
		}
		return
	}
	r.opts.OnEvent(Event{Kind: EventDispatched, Lease: *l})

	stop, stopped := make(chan struct{}), make(chan struct{})
	go r.heartbeat(j, stop, stopped)
	err := r.call(j)
	close(stop)
	<-stopped

	if !j.claim(jobSettling) {
		return // lost or released meanwhile: the lease is no longer ours
	}
	// The handler is done: its worker is free while the settlement is
	// written, so that the next claim can join the settlement's
	// transaction instead of waiting for it to commit.
	r.finish(j)
	bg := context.WithoutCancel(j.ctx) // the settlement runs even if the handler's context ended
	elapsed := time.Since(j.start)
	attrs := []any{"pool", l.PoolUUID, "contact", l.ContactUUID, "attempt", l.Attempt}
	if err == nil {
		if serr := r.e.Complete(bg, l, ""); serr != nil {
			r.settleError(l, serr, elapsed, attrs)
			return
		}
		r.opts.OnEvent(Event{Kind: EventCompleted, Lease: *l, Elapsed: elapsed})
		return
	}
	it, serr := r.e.fail(bg, l, failureOf(err))
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
func (r *runner) call(j *job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("poolq: handler panicked", "pool", j.lease.PoolUUID, "contact", j.lease.ContactUUID,
				"panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	l := j.lease // the handler's own copy
	return r.h(j.ctx, &l)
}

// heartbeat extends j's lease until stop is closed, and cancels the
// handler when the lease is lost. An extension is due Heartbeat after the
// lease was given or last extended, measured on the lease's own expiry
// (ExpiresAt minus LeaseTimeout), so that the time before the handler
// started, and each extension's own latency, count against it; after one
// that failed, the next is tried a quarter of Heartbeat later.
func (r *runner) heartbeat(j *job, stop <-chan struct{}, stopped chan<- struct{}) {
	defer close(stopped)
	ctx := context.WithoutCancel(j.ctx)
	l := j.lease // its own copy: Extend writes its ExpiresAt
	lease, every := r.e.opts.LeaseTimeout, r.opts.Heartbeat
	due := func() time.Duration { return max(l.ExpiresAt.Sub(r.e.now())-(lease-every), 0) }
	t := time.NewTimer(due())
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		err := r.e.Extend(ctx, &l, lease)
		switch {
		case err == nil:
			t.Reset(due())
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
			t.Reset(every / 4)
		}
	}
}
