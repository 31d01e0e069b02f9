package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// DefaultGrace is how long Work waits for running handlers after its context
// ends, unless WorkOptions.Grace says otherwise.
const DefaultGrace = 30 * time.Second

// MaxWorkers bounds WorkOptions.Workers.
const MaxWorkers = 10_000

// MinGrace bounds WorkOptions.Grace from below. The give-backs of the
// leases of a claim that committed as Work stopped are written within
// Grace: a few milliseconds left them no time on a loaded machine, and
// their contacts, never called, came back at their leases' ends as failed
// attempts (a Grace of 30 written as a bare number is 30 ns, not 30 s).
const MinGrace = 100 * time.Millisecond

// stopWriteWait is how long, once Work's grace has ended, a write of its
// jobs (a handler's result, an extension) may still wait to begin: for
// another process's lock on a SQLite file, or for a transaction of this
// process behind one. It counts from the grace's end, or from the write's
// start when it starts later (the result of a handler stopped at the
// grace's end). Past it the write gives up, nothing of it written (see
// runner.writeCtx).
const stopWriteWait = time.Second

// MinHeartbeat bounds WorkOptions.Heartbeat from below (half of
// MinLeaseTimeout bounds it from above, with the shortest lease).
const MinHeartbeat = 10 * time.Millisecond

// WorkOptions configures [Engine.Work]. Zero fields take their defaults.
type WorkOptions struct {
	// Pools are the pools to work on. Claims go to them in turn (round
	// robin), so a busy pool does not starve the others; each pool's own
	// order and cap still hold. A pool deleted while Work runs is dropped
	// from them, with one EventError (wrapping store.ErrNotFound).
	Pools []uuid.UUID
	// Campaigns are campaigns whose pools to work on too, as they are
	// attached at each claim; a campaign's pools are claimed from while it
	// is In Process (see [Engine.DequeueCampaign]), and only while it
	// governs them: a pool detached and attached to a campaign that is not
	// among these gives nothing (unless it is among Pools). Pools and
	// Campaigns together name at least one.
	Campaigns []uuid.UUID
	// Workers is how many handlers run at most at once, 1 to MaxWorkers.
	// Defaults to 1.
	Workers int
	// Grace is how long Work waits for running handlers once its context
	// ends, before it cancels their contexts (see Work for what becomes of
	// their items). At least MinGrace (100 ms): the shortest Grace stops
	// the handlers still running almost at once, and still leaves the
	// shutdown's give-backs time to be written. Defaults to DefaultGrace
	// (30 seconds). Under a service manager that kills the process some
	// time after SIGTERM (systemd's TimeoutStopSec, 90 s by default;
	// Kubernetes' terminationGracePeriodSeconds, 30 s by default: DefaultGrace), make
	// Grace a few seconds shorter, so that the stopped handlers' items are
	// written before the kill: a killed process's items come back only when
	// their leases expire, as failed attempts.
	Grace time.Duration
	// Heartbeat is how often a running handler's lease is extended (by the
	// engine's LeaseTimeout), counted from when the lease was claimed or
	// last extended, so that a handler that starts late does not lose it;
	// an extension that fails is tried again a quarter of Heartbeat later.
	// From MinHeartbeat to half the engine's LeaseTimeout: an extension
	// must have time to be written before the lease ends (a Heartbeat
	// just under the lease would lose every call longer than one lease,
	// cancelling it mid-call), and one every few nanoseconds would fill
	// the database with extensions. Defaults to a third of LeaseTimeout.
	Heartbeat time.Duration
	// Logger receives the runner's logs. Defaults to discarding them. A
	// panic in its handler is recovered and the record dropped (nothing
	// is left to log it to): a logging bug must not take the calls under
	// way down with the process, nor end Work before its handlers
	// return.
	Logger *slog.Logger
	// OnEvent, when set, is called for every [Event], from the handlers'
	// goroutines: it must be safe for concurrent use and quick. A panic in
	// it is recovered and logged (Logger, level Error): a metrics hook
	// must not take the calls under way down with the process. It must
	// return: a runtime.Goexit in it (t.FailNow or require in a test)
	// ends the runner's goroutine that called it, and may leave a lease to
	// come back at its end as a failed attempt. It is not called once Work
	// has returned. A slow one delays the handler's start: its lease may
	// end meanwhile (EventExpired), or its calling window close (the lease
	// is given back: EventReleased).
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
	o.Logger = slog.New(recoveredLog{o.Logger.Handler()})
	if o.OnEvent == nil {
		o.OnEvent = func(Event) {}
	}
	o.OnEvent = recovered(o.OnEvent, o.Logger)
	return o
}

func (o WorkOptions) validate(h Handler, lease time.Duration) error {
	var v validate.Validator
	v.Check(h != nil, "handler", validate.RuleRequired, "is required")
	v.Check(len(o.Pools)+len(o.Campaigns) > 0, "pools", validate.RuleRequired, "at least one pool or campaign is required")
	for i, id := range o.Pools {
		v.Check(id != uuid.Nil, fmt.Sprintf("pools[%d]", i), validate.RuleRequired, "is required (not the nil UUID)")
	}
	for i, id := range o.Campaigns {
		v.Check(id != uuid.Nil, fmt.Sprintf("campaigns[%d]", i), validate.RuleRequired, "is required (not the nil UUID)")
	}
	v.IntRange("workers", o.Workers, 1, MaxWorkers)
	v.Check(o.Grace >= MinGrace, "grace", validate.RuleRange,
		fmt.Sprintf("must be at least %v (got %v)", MinGrace, o.Grace))
	v.Check(o.Heartbeat >= MinHeartbeat && o.Heartbeat <= lease/2, "heartbeat", validate.RuleRange,
		fmt.Sprintf("must be between %v and half the lease timeout, %v (got %v)", MinHeartbeat, lease/2, o.Heartbeat))
	return v.Err()
}

// Work runs h over the items of opts.Pools, at most opts.Workers at a time,
// until ctx ends, then shuts down and returns nil.
//
// While a handler runs, its lease is extended every opts.Heartbeat, so a
// long call is never handed to a second worker; if the lease is lost anyway
// (EventExpired: settled elsewhere, or its end passed with no extension
// written: the database unreachable from here, or the store refusing them
// while this clock is too far behind, see store.ClockChecker; the end is
// counted on the monotonic clock from the last write), the handler's context is
// cancelled. Its result is then ignored when the store said the lease was
// lost; when only its end passed, an extension still under way may have
// been written after it, so the result is written as a stopped handler's
// (below) and, if the lease was still this worker's, its event follows the
// EventExpired; otherwise the store refuses it and nothing more is
// reported. A handler never starts on a lease that
// has already ended, nor outside the calling window of the rule its claim
// was judged under: a lease whose window closed between the claim and the
// handler's start (a slow OnEvent) is given back, unattempted
// (EventReleased), and the next claim schedules its item. A handler's result that cannot be written (EventError:
// the database busy or unreachable) is written again every quarter
// Heartbeat while the lease lasts, until Work's grace ends at the latest,
// so that a call that went through does not come back, at the lease's end,
// as a failed attempt to be made again. (A write whose commit was lost on
// its way back, and did commit, is then found settled: the next try reports
// EventExpired.)
//
// The shutdown stops claiming, waits up to opts.Grace for the running
// handlers, then cancels the contexts of those still running and waits for
// them to return, extending their leases meanwhile, and writes their
// results. A handler stopped this way that returns its context's error (an
// error wrapping context.Canceled, without [Final] or [RetryAt]) gives its
// item back unattempted (EventReleased), unless its call had connected
// ([Engine.MarkInCall]): a call that happened is a failed attempt, retried
// as usual. Any other result is written as at any other time (nil
// completes the item: the call ended well). Nothing is given back while its
// handler still runs, so a contact is never called by another worker while
// this one's call goes on, nor called again because the dialer was
// stopping. These results are written once, not tried
// again: one that cannot be written leaves its item in flight until its
// lease ends, then a failed attempt. Once the grace has ended, a write of
// Work still waiting to begin (a result, an extension: behind another
// process's lock on a SQLite file) gives up a second after the grace's
// end, or a second after it was tried when that is later, nothing of it
// written, and its item stays in flight until its lease ends, a failed
// attempt then. A stopped handler's result is tried once the extension
// under way, if any, has ended: so on SQLite Work returns within its
// Grace and two seconds of its context's end (with handlers that return
// when their context is cancelled), however long another process holds
// the file's lock, not once busy timeouts have passed. On PostgreSQL the
// same bound holds for Work's writes behind another node's lock: a write
// alone in its transaction ends its wait with its context, and writes
// that share one (group commit) end it once each has given up. A
// transaction that also carries another caller's write, one still
// waiting, waits with it, up to the store's LockTimeout.
//
// One goroutine claims: as many items as there are free workers, in one
// claim per pool, and it starts a goroutine per lease; it sleeps while every
// worker is busy, or until something can go. So an Add wakes one goroutine
// and costs one claim, and a claimed lease is never left without a handler.
// A worker is free again as soon as its handler returns: the next claim is
// made while the handler's result is written, and group commit usually
// puts both in one transaction. So, for that moment, the items in flight
// may be more than the handlers running (never more than the pool's cap,
// which the claim checks in the database).
//
// Cost: each look at more than one pool, and each look at one pool that no
// wake-up asked for (the poll, a retry time or deadline come), reads, in
// one read transaction, which of the pools may give an item (a few index
// seeks a pool, whatever its items; with
// Campaigns, the campaigns are read first, in another), then claims, a
// write transaction each, only in those, in turn, until the free workers
// have leases: the pools with nothing due and no lease ended, however
// many, cost no write. So a Work whose pools have nothing to give costs
// one read transaction a PollInterval. A look that claimed in some pool
// reads the next wakes of the pools again, in one more read transaction
// (one that claimed in none sleeps on its first read), and sleeps until
// the earliest of the pools' next wakes (at most the engine's
// PollInterval), or until something changes in them or in the campaigns
// (an Add, a settlement, a start).
//
// [Engine.Close] stops Work as the end of ctx does, and waits for it to
// return: the handlers' results are written before the engine closes. The
// leases of a claim that committed as Work stopped start no handler: they
// are given back (EventReleased), or reported EventExpired when the
// give-back finds one lost already; so is a lease whose
// OnEvent(EventDispatched) returns after the grace has ended.
//
// Work returns [validate.Errors] for bad options, [store.ErrNotFound] when a
// pool does not exist at the start (a start that cannot read the pools,
// the database unreachable, reports EventError and tries again every
// PollInterval, 1 s at most, until ctx ends), [ErrClosed] when Close has begun
// (before it started, or while it ran), and an error wrapping
// [store.ErrClosed] when the store was closed under it (also after ctx
// ended, when a result or a give-back then met the store closed): the
// store must outlive the engine (see [Engine.Close]). Work then stops claiming at
// once, and shuts down as above, but its handlers' results cannot be
// written: their items stay in flight until their leases expire.
func (e *Engine) Work(ctx context.Context, h Handler, opts WorkOptions) error {
	opts = opts.withDefaults(e.opts.LeaseTimeout)
	if err := opts.validate(h, e.opts.LeaseTimeout); err != nil {
		return fmt.Errorf("work: %w", err)
	}
	if ctx == nil {
		return fmt.Errorf("work: %w", errNilContext)
	}
	if !e.beginWork() {
		return fmt.Errorf("work: %w", ErrClosed)
	}
	defer e.works.Done()
	pools := distinct(opts.Pools)
	for {
		err := e.readUntilClosing(ctx, func(rctx context.Context, tx store.Tx) error {
			for _, id := range pools {
				if _, err := tx.Pool(rctx, id); err != nil {
					return fmt.Errorf("pool %s: %w", id, err)
				}
			}
			for _, id := range opts.Campaigns {
				if _, err := tx.Campaign(rctx, id); err != nil {
					return fmt.Errorf("campaign %s: %w", id, err)
				}
			}
			return nil
		})
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil // stopped before it started: a normal shutdown with nothing to wait for
		}
		if isNotFound(err) || endsDispatch(err) {
			return fmt.Errorf("work: %w", err) // ErrClosed once Close has begun
		}
		// The database unreachable or failing for a moment (a restart, a
		// failover): Work waits for it, as it does once it runs.
		opts.Logger.Error("poolq: work: read the pools", "err", err)
		opts.OnEvent(Event{Kind: EventError, Err: err})
		t := time.NewTimer(min(e.opts.PollInterval, time.Second))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-e.closing:
			t.Stop()
			return fmt.Errorf("work: %w", ErrClosed)
		}
	}
	r := &runner{
		e: e, h: h, opts: opts, pools: pools, log: opts.Logger,
		jobs: map[*job]struct{}{}, ended: make(chan struct{}, 1), graceEnded: make(chan struct{}),
		floors: make([]backoff, len(pools)), campaigns: distinct(opts.Campaigns), own: pools,
	}
	r.cut, r.cutWrites = context.WithCancel(context.Background())
	defer r.cutWrites()
	stopped := r.produce(ctx) // nil: ctx ended; ErrClosed: Close began; else the store closed
	r.log.Info("poolq: work stopping", "grace", opts.Grace)
	done := make(chan struct{})
	go func() { r.handlers.Wait(); close(done) }()
	left := opts.Grace
	if !r.stopping.IsZero() { // the give-backs of a claim that committed as Work stopped took some
		left = max(opts.Grace-time.Since(r.stopping), 0)
	}
	grace := time.NewTimer(left)
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		r.stopAll()
		cut := time.AfterFunc(stopWriteWait, r.cutWrites)
		defer cut.Stop()
		<-done
	}
	if e.isClosing() || errors.Is(stopped, ErrClosed) {
		return fmt.Errorf("work: %w", ErrClosed)
	}
	if stopped != nil {
		return fmt.Errorf("work: %w", stopped)
	}
	if err := r.lost.Load(); err != nil {
		// The store was closed under Work after its context ended: the
		// results it could not write are lost, which nil would hide.
		return fmt.Errorf("work: %w", *err)
	}
	return nil
}

// runner is the state of one Work call.
//
// Invariants: only produce starts jobs, and it claims at most as many
// leases as there are free workers (Workers minus the jobs whose handler
// has not returned), so never more than Workers handlers run; every lease
// it claims is, before it does anything else, either given a goroutine of
// its own or released.
type runner struct {
	e     *Engine
	h     Handler
	opts  WorkOptions
	pools []uuid.UUID
	log   *slog.Logger

	mu         sync.Mutex
	jobs       map[*job]struct{} // the jobs whose handler has not returned
	graceEnded chan struct{}     // closed by stopAll: settlements are not tried again
	ended      chan struct{}     // capacity 1: a handler returned, a worker is free
	handlers   sync.WaitGroup    // the jobs' goroutines

	// cut ends (cutWrites) stopWriteWait after the grace's end: the
	// writes of the jobs still waiting to begin then give up (writeCtx).
	cut       context.Context
	cutWrites context.CancelFunc

	// Used by produce alone.
	own       []uuid.UUID                  // opts.Pools, without repeats
	campaigns []uuid.UUID                  // opts.Campaigns, without repeats
	next      int                          // the pool whose turn it is to be claimed from first
	floors    []backoff                    // per pool: the floor under sleeps (see backoff)
	locked    backoff                      // the pause after claims that met another's lock past the store's timeout (see pause)
	lockedOut bool                         // the last claim met such a lock
	held      []uuid.UUID                  // the pools held by their campaigns at the last claim (see pause)
	polled    bool                         // the last sleep ended at its timer, not at a wake-up (see claim)
	unclaimed map[uuid.UUID]store.PoolWake // what the last claim read, when it claimed in no pool (see pause)
	via       map[uuid.UUID]uuid.UUID      // the campaign a pool is worked for (none: one of opts.Pools, worked whatever governs it)
	stopping  time.Time                    // when produce gave back the leases of a claim that committed as Work stopped

	// lost is the first error wrapping store.ErrClosed that a settlement
	// or a give-back met: a result or a release the store, closed under
	// Work, could not take.
	lost atomic.Pointer[error]
}

// storeClosed records err if it says the store was closed under Work.
func (r *runner) storeClosed(err error) {
	if errors.Is(err, store.ErrClosed) {
		r.lost.CompareAndSwap(nil, &err)
	}
}

// distinct returns ids without repeats, in order.
func distinct(ids []uuid.UUID) []uuid.UUID {
	out := make([]uuid.UUID, 0, len(ids))
	seen := map[uuid.UUID]bool{}
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// refresh sets r.pools to the pools of opts.Pools and those of the
// campaigns of opts.Campaigns In Process now, and reports whether they
// changed. A campaign deleted since is left out.
func (r *runner) refresh(ctx context.Context) (bool, error) {
	if len(r.campaigns) == 0 {
		return false, nil
	}
	pools := append([]uuid.UUID{}, r.own...)
	via := map[uuid.UUID]uuid.UUID{}
	err := r.e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) error {
		for _, id := range r.campaigns {
			c, err := tx.Campaign(ctx, id)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			if c.Status.Dispatches() {
				pools = append(pools, c.PoolUUIDs...)
				for _, p := range c.PoolUUIDs {
					if !slices.Contains(r.own, p) {
						via[p] = c.UUID
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	pools = distinct(pools)
	r.via = via // a pool may have moved from one of the campaigns to another
	if sameIDs(pools, r.pools) {
		return false, nil
	}
	r.pools, r.floors, r.next = pools, make([]backoff, len(pools)), 0
	return true, nil
}

// produce claims leases for the free workers and starts a job for each,
// until ctx ends (it returns nil), Close begins ([ErrClosed]) or the store
// is found closed (its error, see endsDispatch).
func (r *runner) produce(ctx context.Context) error {
	wake := make(chan struct{}, 1)
	// Subscribed before the first look, so no wake-up is missed: to the
	// campaigns (a start, an attach) for the whole run, and to the pools,
	// again whenever they change. A pool's change made while its
	// subscription changes is seen by the claim that follows; a
	// campaign's would be lost, hence its subscription never lapses.
	defer r.e.wake.subscribe(wake, r.campaigns...)()
	unsubscribe := r.e.wake.subscribe(wake, r.pools...)
	defer func() { unsubscribe() }()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		free := r.opts.Workers - r.running()
		if free == 0 {
			select {
			case <-r.ended:
				continue
			case <-ctx.Done():
				return nil
			case <-r.e.closing:
				return ErrClosed
			}
		}
		if changed, err := r.refresh(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if endsDispatch(err) {
				return err
			}
			r.log.Error("poolq: read the campaigns' pools", "err", err)
			r.opts.OnEvent(Event{Kind: EventError, Err: err})
		} else if changed {
			unsubscribe()
			if r.e.resubscribing != nil {
				r.e.resubscribing()
			}
			unsubscribe = r.e.wake.subscribe(wake, r.pools...)
		}
		leases, err := r.claim(ctx, free)
		r.polled = false // a look made after a worker's end is no poll
		if err == nil && ctx.Err() != nil {
			err = ctx.Err() // shutting down: claimed leases are given back, not started
		} else if err == nil && r.e.isClosing() {
			err = ErrClosed // so is Close, as the end of ctx does
		}
		if err != nil {
			// Grace counts from here: the give-backs take from it.
			r.stopping = time.Now()
			until := r.stopping.Add(r.opts.Grace)
			for _, l := range leases {
				r.release(context.WithoutCancel(ctx), l, until)
			}
			if endsDispatch(err) {
				return err
			}
			return nil // ctx ended
		}
		if len(leases) > 0 {
			for _, l := range leases {
				r.start(ctx, l)
			}
			continue
		}
		timer.Reset(r.pause(ctx))
		select {
		case <-wake:
		case <-timer.C:
			r.polled = true
		case <-ctx.Done():
			return nil
		case <-r.e.closing:
			return ErrClosed
		}
	}
}

// endsDispatch reports whether err, a claim's or a read's of Work, ends
// its claiming for good: the engine closing ([ErrClosed]), or the store
// closed under it ([store.ErrClosed]: the host closed it before the
// engine), from which nothing can be claimed again.
func endsDispatch(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, store.ErrClosed)
}

// running returns how many jobs are running.
func (r *runner) running() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.jobs)
}

// claim claims up to n leases from the pools in turn, starting with the one
// whose turn it is, without waiting. It returns the leases claimed, and an
// error only when ctx ended or the engine or the store closed (see
// endsDispatch), with the leases claimed before that, which the caller must
// give back.
//
// It first reads, in one read transaction (store.Tx.PoolWakes: a few index
// seeks a pool), which pools may give something, and claims only in those:
// a claim is a write transaction (SQLite's one writer, PostgreSQL's pool
// lock), and one in each pool with nothing due, at every look, would cost
// a write per empty pool, and one in each full pool a write that ends in
// ErrAtCapacity. The read errs only towards a claim: a pool is passed over
// (mayGive) when its due set holds no item or its items in flight fill its
// cap, and neither a retry time (in a pool not full) nor a lease's end has
// come (see store.PoolWake), and what comes due or frees a slot after the
// read wakes produce, subscribed to the pools before it. A pool absent
// from the answer has been deleted: it is forgotten, as one whose claim
// finds it gone. When the read fails, every pool is claimed in, as if each
// might give.
func (r *runner) claim(ctx context.Context, n int) ([]*Lease, error) {
	var leases []*Lease
	var gone []uuid.UUID // pools deleted since Work started
	wasHeld := slices.Clone(r.held)
	r.held, r.unclaimed, r.lockedOut = r.held[:0], nil, false
	if len(r.pools) == 0 {
		return nil, nil // a campaign not In Process, or without pools
	}
	defer func() { r.forget(gone) }()
	// The read pays for itself when it can save a claim in another pool,
	// or when nothing was signalled since the last look (a poll: most
	// often nothing changed). Work on one pool, woken by a change, claims
	// in it: a write that finds out as much.
	// A poll also asks, of the pools the last claim found held by their
	// campaigns and that have items to give, whether they still are (see
	// stillHeld): their items stay due, and a claim in each, at each
	// poll, would be a write that ends in ErrHeld.
	var wakes map[uuid.UUID]store.PoolWake
	var held []uuid.UUID
	var err error
	if len(r.pools) > 1 || r.polled {
		err = r.e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) (err error) {
			held = nil // a read run again starts afresh
			if wakes, err = tx.PoolWakes(ctx, r.pools...); err != nil || !r.polled {
				return err
			}
			now := r.e.now()
			for _, id := range wasHeld {
				if w, ok := wakes[id]; ok && mayGive(w, now) {
					h, err := stillHeld(ctx, tx, id)
					if err != nil {
						return err
					}
					if h {
						held = append(held, id)
					}
				}
			}
			return nil
		})
	}
	switch {
	case err == nil:
	case endsDispatch(err):
		return nil, err
	case ctx.Err() != nil:
		return nil, ctx.Err()
	default:
		wakes = nil // every pool is claimed in
		r.log.Error("poolq: read which pools may give", "err", err)
		r.opts.OnEvent(Event{Kind: EventError, Err: err})
	}
	now := r.e.now() // after the read: a retry or lease that ends meanwhile is claimed now
	claimed := false // in some pool: what the read says of it may have changed
	defer func() {
		if !claimed {
			r.unclaimed = wakes
		}
	}()
	for k := range r.pools {
		i := (r.next + k) % len(r.pools)
		if wakes != nil {
			w, found := wakes[r.pools[i]]
			if !found {
				gone = append(gone, r.pools[i])
				continue
			}
			if !mayGive(w, now) {
				continue // nothing due, or the pool full, and no lease ended: a claim would find nothing
			}
			if slices.Contains(held, r.pools[i]) {
				r.held = append(r.held, r.pools[i]) // still held: a claim would find as much
				continue
			}
		}
		claimed = true
		ls, err := r.e.tryDequeue(ctx, r.pools[i], n-len(leases), r.via[r.pools[i]]) // nothing if it left its campaign
		switch {
		case err == nil:
			leases = append(leases, ls...)
			r.next = (i + 1) % len(r.pools)
			if len(leases) == n {
				return leases, nil
			}
		case errors.Is(err, ErrHeld):
			r.held = append(r.held, r.pools[i])
		case isNothing(err):
		case isNotFound(err):
			gone = append(gone, r.pools[i])
		case endsDispatch(err):
			return leases, err
		case ctx.Err() != nil:
			return leases, ctx.Err()
		default:
			r.lockedOut = r.lockedOut || isLockTimeout(err)
			r.log.Error("poolq: dequeue failed", "pool", r.pools[i], "err", err)
			r.opts.OnEvent(Event{Kind: EventError, Err: err})
		}
	}
	return leases, nil
}

// forget drops pools deleted while Work runs from the pools it works on,
// and reports each once.
func (r *runner) forget(gone []uuid.UUID) {
	if len(gone) == 0 {
		return
	}
	for _, id := range gone {
		r.log.Warn("poolq: pool deleted, no longer worked on", "pool", id)
		r.opts.OnEvent(Event{Kind: EventError, Err: fmt.Errorf("pool %s: %w", id, store.ErrNotFound)})
	}
	keep := func(ids []uuid.UUID) []uuid.UUID { // a new slice: own and pools may share an array
		out := make([]uuid.UUID, 0, len(ids))
		for _, id := range ids {
			if !slices.Contains(gone, id) {
				out = append(out, id)
			}
		}
		return out
	}
	r.own, r.pools = keep(r.own), keep(r.pools)
	r.floors, r.next = make([]backoff, len(r.pools)), 0
}

// pause returns how long produce may sleep when no pool had an item to
// give: until the earliest retry time or lease deadline of the pools, at
// most PollInterval. A pool its campaigns hold has none: what frees it (a
// start, a resume, a detach) wakes produce, and until then its past retry
// times, which no claim promotes, must not make produce look again and
// again.
//
// The next wakes of the pools are read in one read transaction (the claim
// may have changed what it read of them: a lease ended, a retry found due
// and left at the pool's cap, which the next wake no longer counts); a
// pool whose read fails waits PollInterval at most, as one that has
// nothing to wait for. After a claim that met another's lock past the
// store's timeout, the pause is short (see runner.locked). A held pool
// that the claim passed over (nothing due) is not known to be held: its
// next wake, still to come, counts, and the look it brings claims in the
// pool and finds it held.
func (r *runner) pause(ctx context.Context) time.Duration {
	var ids []uuid.UUID
	for _, id := range r.pools {
		if !slices.Contains(r.held, id) {
			ids = append(ids, id)
		}
	}
	wakes := r.unclaimed // the claim's read, when it claimed in no pool: nothing has changed it
	if len(ids) > 0 && wakes == nil {
		err := r.e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) (err error) {
			wakes, err = tx.PoolWakes(ctx, ids...)
			return err
		})
		if err != nil {
			wakes = nil
		}
	}
	wait := r.e.opts.PollInterval
	for i, id := range r.pools {
		if slices.Contains(r.held, id) {
			continue // what frees it (a start, a resume, a detach) wakes produce
		}
		w, ok := wakes[id]
		if !ok {
			continue // its read failed, or it was deleted since
		}
		if !w.HasNext {
			r.floors[i].reset()
			continue
		}
		wait = min(wait, r.floors[i].pause(w.Next.Sub(r.e.now()), r.e.opts.PollInterval))
	}
	if !r.lockedOut {
		r.locked.reset()
		return wait
	}
	// Another process or node held a pool's lock past the store's
	// timeout: its items may be due all along, and what gives the lock
	// back wakes no one here (another process on a SQLite file). Looked at
	// again soon, as Dequeue does: a growing pause, in case the timeout is
	// short.
	return min(wait, r.locked.pause(0, r.e.opts.PollInterval))
}

// start runs l's job on a goroutine of its own. The handler's context
// outlives ctx (Work's), which ends the claiming; the job cancels it.
func (r *runner) start(ctx context.Context, l *Lease) {
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	j := &job{lease: *l, ctx: hctx, cancel: cancel, start: time.Now()}
	r.mu.Lock()
	r.jobs[j] = struct{}{}
	r.mu.Unlock()
	r.handlers.Add(1)
	go func() {
		defer r.handlers.Done()
		defer r.finish(j)
		r.handle(j)
	}()
}

// finish removes a job whose handler returned (or never started) and
// tells produce that a worker is free. A job's goroutine calls it again
// when it ends: the second call changes nothing.
func (r *runner) finish(j *job) {
	r.mu.Lock()
	_, ok := r.jobs[j]
	delete(r.jobs, j)
	r.mu.Unlock()
	if !ok {
		return
	}
	select {
	case r.ended <- struct{}{}:
	default: // a token is there already
	}
}

// stopAll stops every running handler (its context cancelled, stopped set
// first: see settlement) and stops the settlements being tried again.
// Each job goes on as usual: its lease is extended until its handler
// returns, then its result is written. Work calls it at most once.
func (r *runner) stopAll() {
	close(r.graceEnded)
	r.mu.Lock()
	defer r.mu.Unlock()
	for j := range r.jobs {
		j.stopped.Store(true)
		j.cancel()
	}
}

// writeCtx returns ctx for one try of a write of a job (an extension, a
// result), and its cancel. Once the grace has ended, the try waits at most
// stopWriteWait to begin, counted from the grace's end (cut) or from its
// own start when it starts later; then it gives up, nothing written: the
// shutdown does not wait for another process's lock (the busy timeout,
// up to an hour). A write that has begun runs to its end, as every write
// does.
func (r *runner) writeCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	select {
	case <-r.graceEnded:
		return context.WithTimeout(ctx, stopWriteWait)
	default:
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(r.cut, cancel)
	return ctx, func() { stop(); cancel() }
}

// recovered returns fn with its panics recovered and logged to log.
func recovered(fn func(Event), log *slog.Logger) func(Event) {
	return func(ev Event) {
		defer func() {
			if v := recover(); v != nil {
				log.Error("poolq: OnEvent panicked", "event", ev.Kind, "panic", v, "stack", string(debug.Stack()))
			}
		}()
		fn(ev)
	}
}

// recoveredLog is a log handler with the panics of h, the host's,
// recovered: the record is dropped (a log that panics has nowhere to
// report it), a level reads as disabled, and the handler stays as it was
// when WithAttrs or WithGroup panics. The runner logs on its goroutines
// and as Work shuts down, where a panic would end the process or Work
// before its handlers return.
type recoveredLog struct{ h slog.Handler }

func (l recoveredLog) Enabled(ctx context.Context, level slog.Level) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return l.h.Enabled(ctx, level)
}

func (l recoveredLog) Handle(ctx context.Context, r slog.Record) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("poolq: log handler panicked: %v", v)
		}
	}()
	return l.h.Handle(ctx, r)
}

func (l recoveredLog) WithAttrs(attrs []slog.Attr) (h slog.Handler) {
	defer func() {
		if recover() != nil {
			h = l
		}
	}()
	return recoveredLog{l.h.WithAttrs(attrs)}
}

func (l recoveredLog) WithGroup(name string) (h slog.Handler) {
	defer func() {
		if recover() != nil {
			h = l
		}
	}()
	return recoveredLog{l.h.WithGroup(name)}
}

// release gives back unattempted l, a lease claimed as Work stopped. A
// write that fails for a reason other than the lease or the input (the
// database busy or unreachable for a moment) is tried again a quarter of
// Heartbeat later, until the lease would end before the next try or the
// time until (the end of Work's grace, on the wall clock) would pass: a
// lease given back by no one comes back at its end as a failed attempt, a
// contact never called counted as called. No try starts after until, and
// a try still waiting for its turn then gives up (one that has begun runs
// to its end, as every write does): the shutdown stays within Grace.
func (r *runner) release(ctx context.Context, l *Lease, until time.Time) {
	ctx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	for ctx.Err() == nil {
		err := r.e.Release(ctx, l)
		if err == nil {
			r.opts.OnEvent(Event{Kind: EventReleased, Lease: *l})
			return
		}
		if errors.Is(err, ErrLeaseLost) {
			// Its end passed, or it was settled elsewhere: nothing to
			// give back, as a lease lost anywhere else in Work.
			r.opts.OnEvent(Event{Kind: EventExpired, Lease: *l, Err: err})
			return
		}
		r.log.Warn("poolq: release at shutdown failed", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
		r.opts.OnEvent(Event{Kind: EventError, Lease: *l, Err: err})
		r.storeClosed(err)
		if failsForGood(err) {
			return
		}
		wait := r.opts.Heartbeat / 4
		if !r.e.now().Add(wait).Before(l.ExpiresAt) || time.Now().Add(wait).After(until) {
			return
		}
		time.Sleep(wait)
	}
	err := fmt.Errorf("release at shutdown: not tried, Work's grace is over: %w", ctx.Err())
	r.log.Warn("poolq: release at shutdown failed", "pool", l.PoolUUID, "contact", l.ContactUUID, "err", err)
	r.opts.OnEvent(Event{Kind: EventError, Lease: *l, Err: err})
}
