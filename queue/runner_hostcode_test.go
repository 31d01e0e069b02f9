package queue_test

// The runner calls the host's code — the handler, the errors it returns,
// OnEvent, the Logger — on its own goroutines. Whatever that code does
// (takes long, panics, calls runtime.Goexit, returns a typed nil), no
// contact is called twice, no lease is left without an owner, the process
// lives on, and nothing of Work runs after it returns.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestEngine_Work_SlowOnEventBeforeStart: an OnEvent that takes longer than
// the lease does not start the handler on a lease that ended meanwhile
// (and that another worker may hold).
func TestEngine_Work_SlowOnEventBeforeStart(t *testing.T) {
	t.Parallel()
	const lease = 300 * time.Millisecond
	b := realEngine(t, queue.Options{LeaseTimeout: lease, RetryDelay: time.Millisecond})
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 1)

	var started atomic.Int32
	var expired atomic.Int32
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	// The hook returns once another worker holds the contact (taken), so
	// that the runner cannot claim it again first however late its
	// goroutines run on a loaded machine; 30 s at most, not to hang.
	dispatched, taken := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
			started.Add(1)
			<-hctx.Done()
			return hctx.Err()
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: 100 * time.Millisecond,
			OnEvent: func(ev queue.Event) {
				switch ev.Kind {
				case queue.EventDispatched:
					if ev.Lease.Attempt == 1 {
						close(dispatched)
						select { // a slow hook: it outlasts the lease
						case <-taken:
						case <-time.After(30 * time.Second):
						}
					}
				case queue.EventExpired:
					expired.Add(1)
				}
			}})
	}()
	<-dispatched
	dctx, dcancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer dcancel()
	other, err := b.eng.Dequeue(dctx, p.UUID) // another worker takes the expired lease back
	require.NoError(t, err)
	require.Equal(t, ids[0], other.ContactUUID)
	require.Equal(t, 2, other.Attempt)
	require.NoError(t, b.eng.Extend(b.ctx, other, time.Hour)) // held until the end: Work cannot claim it again
	close(taken)
	require.Eventually(t, func() bool { return expired.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the first lease is reported expired")
	cancel()
	require.NoError(t, <-errc)
	require.Zero(t, started.Load(), "the handler started on a lease that had ended: two calls to one contact")
}

// TestEngine_Work_SlowOnEventPastGrace: an OnEvent(EventDispatched) that
// returns after Work's grace has ended does not start the handler, whose
// call would begin after the shutdown stopped every other one: the lease
// goes back unattempted (EventReleased), as those of a claim that
// committed as Work stopped. (The handler started, its context cancelled
// already: one that did not look at it made its call.)
func TestEngine_Work_SlowOnEventPastGrace(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{LeaseTimeout: time.Minute})
	p := b.pool(t, pool.Parallel, 1, 3)
	ids := b.add(t, p.UUID, 1)
	const grace = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	var called atomic.Int32
	var events crashOutput
	err := b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
		called.Add(1) // a handler that dials whatever its context says
		return nil
	}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 1, Grace: grace,
		OnEvent: func(ev queue.Event) {
			fmt.Fprintf(&events, "%s %v\n", ev.Kind, ev.Err)
			if ev.Kind == queue.EventDispatched {
				cancel()                        // the dialer is asked to stop
				time.Sleep(grace + time.Second) // a slow hook: the grace ends meanwhile
			}
		}})
	require.NoError(t, err)
	require.Zero(t, called.Load(), "the handler started after Work's grace had ended:\n%s", events.String())
	require.Equal(t, "dispatched <nil>\nreleased <nil>\n", events.String())
	it, err := b.eng.Item(b.ctx, p.UUID, ids[0])
	require.NoError(t, err)
	require.Equal(t, pool.StatusPending, it.Status)
	require.Zero(t, it.Attempts, "given back, unattempted")
}

// TestEngine_Work_HandlerGoexit: a handler that ends its goroutine with
// runtime.Goexit (t.FailNow in a test double) fails its attempt like a
// panic; its lease is not kept alive by a heartbeat nobody stops.
func TestEngine_Work_HandlerGoexit(t *testing.T) {
	t.Parallel()
	const lease = 300 * time.Millisecond
	b := realEngine(t, queue.Options{LeaseTimeout: lease})
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 1)
	rec := newRecorder(settledN(1))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			runtime.Goexit()
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: 100 * time.Millisecond, OnEvent: rec.on})
	}()
	select {
	case <-rec.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the attempt was never settled")
	}
	cancel()
	require.NoError(t, <-errc)
	require.Equal(t, 1, rec.count(queue.EventRetried), "a Goexit is a failed attempt")
	it := b.item(t, p.UUID, ids[0])
	require.Equal(t, pool.StatusRetrying, it.Status)
	require.Contains(t, it.Notes, "runtime.Goexit")
}

// callError is an error type a handler may return as a typed nil pointer.
type callError struct{ code int }

func (e *callError) Error() string { return "call failed: " + string(rune('0'+e.code)) }

// TestEngine_Work_HostCodePanics: a handler returning a typed nil error
// (whose Error panics) and an OnEvent that panics do not end the process:
// the attempt fails with a note that says why, the others go on, and Work
// returns as usual.
func TestEngine_Work_HostCodePanics(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{LeaseTimeout: time.Minute, RetryDelay: time.Hour})
	p := b.pool(t, pool.Parallel, 10, 3)
	ids := b.add(t, p.UUID, 4)
	rec := newRecorder(settledN(4))
	var n atomic.Int32
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
			if n.Add(1)%2 == 0 {
				return nil
			}
			var err *callError // the classic slip: a nil *callError is a non-nil error
			return err
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 2, OnEvent: func(ev queue.Event) {
			rec.on(ev)
			if ev.Kind == queue.EventCompleted {
				panic("a metrics exporter's bug")
			}
		}})
	}()
	select {
	case <-rec.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the attempts were never all settled")
	}
	cancel()
	require.NoError(t, <-errc)
	require.Equal(t, 2, rec.count(queue.EventCompleted))
	require.Equal(t, 2, rec.count(queue.EventRetried))
	retried := 0
	for _, c := range ids {
		it := b.item(t, p.UUID, c)
		if it.Status == pool.StatusRetrying {
			retried++
			require.Contains(t, it.Notes, "panicked when read")
		}
	}
	require.Equal(t, 2, retried)
}

// selfWrapping is a host error whose chain loops: its Unwrap returns
// itself (a wrapper built around a pointer to itself by mistake).
type selfWrapping struct{ msg string }

func (e *selfWrapping) Error() string { return e.msg }
func (e *selfWrapping) Unwrap() error { return e }

// TestEngine_Work_HandlerErrorWrapsItself: the runner reads a handler's
// error's chain (errors.As, errors.Is) to settle the attempt. One that
// loops kept those calls walking it for ever: the attempt never settled,
// and Work and Close never returned. It fails the attempt now, with a note
// that says why.
//
// The loop may be anywhere in the chain, also behind an Unwrap() []error
// (errors.Join), which errors.Is and errors.As walk too.
func TestEngine_Work_HandlerErrorWrapsItself(t *testing.T) {
	t.Parallel()
	for name, herr := range map[string]func() error{
		"Itself": func() error { return &selfWrapping{msg: "busy"} },
		"InAJoin": func() error {
			return fmt.Errorf("call: %w", errors.Join(errors.New("busy"), &selfWrapping{msg: "loop"}))
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := realEngine(t, queue.Options{LeaseTimeout: time.Minute, RetryDelay: time.Hour})
			p := b.pool(t, pool.Parallel, 10, 3)
			ids := b.add(t, p.UUID, 1)
			rec := newRecorder(settledN(1))
			ctx, cancel := context.WithCancel(b.ctx)
			errc := make(chan error, 1)
			go func() {
				errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
					return herr()
				}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 100 * time.Millisecond, OnEvent: rec.on})
			}()
			select {
			case <-rec.done:
			case <-time.After(5 * time.Second):
				t.Fatal("the attempt was never settled: the handler's error is still being read") // Close, at cleanup, hangs too
			}
			cancel()
			require.NoError(t, <-errc)
			require.Equal(t, 1, rec.count(queue.EventRetried))
			it := b.item(t, p.UUID, ids[0])
			require.Equal(t, pool.StatusRetrying, it.Status)
			require.Contains(t, it.Notes, "wraps itself")
			require.Contains(t, it.Notes, "busy")
		})
	}
}

// slowWarn is a log handler whose warnings take long: it holds the
// watchdog's report open past the handler's return.
type slowWarn struct{ slog.Handler }

func (h slowWarn) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn {
		time.Sleep(200 * time.Millisecond)
	}
	return nil
}

func (slowWarn) Enabled(context.Context, slog.Level) bool { return true }

// TestEngine_Work_NoEventAfterReturn: the watchdog reports a lease it
// found ended on a goroutine of its own; Work waits for that report, so
// OnEvent is never called after Work returned (a host may close what its
// hook writes to then).
func TestEngine_Work_NoEventAfterReturn(t *testing.T) {
	t.Parallel()
	const lease, hb = 300 * time.Millisecond, 100 * time.Millisecond
	b := heldEngine(t, queue.Options{LeaseTimeout: lease})
	p := b.pool(t, pool.FIFO, 1)
	_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)

	var returned, late atomic.Int32
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
			b.st.failing.Store(true) // every extension fails from now on: the watchdog ends the lease
			close(started)
			<-hctx.Done()
			return hctx.Err()
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, Grace: 5 * time.Second,
			Logger: slog.New(slowWarn{slog.DiscardHandler}),
			OnEvent: func(ev queue.Event) {
				if returned.Load() == 1 {
					late.Add(1)
				}
			}})
	}()
	<-started
	cancel()
	require.NoError(t, <-errc)
	returned.Store(1)
	time.Sleep(500 * time.Millisecond)
	b.st.failing.Store(false)
	require.Zero(t, late.Load(), "OnEvent called after Work returned")
}

// panickyLog is a log handler that panics on every record: a Logger with
// a bug.
type panickyLog struct{}

func (panickyLog) Enabled(context.Context, slog.Level) bool  { return true }
func (panickyLog) Handle(context.Context, slog.Record) error { panic("a log handler's bug") }
func (h panickyLog) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h panickyLog) WithGroup(string) slog.Handler           { return h }

// TestEngine_Work_LoggerPanics: a Logger that panics (here as Work shuts
// down, when it logs that it stops) does not end Work early: Close and
// Work still wait for the running handler, whose result is written, and
// the process lives on.
func TestEngine_Work_LoggerPanics(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{})
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 1)
	started, hangUp := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	work := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				work <- fmt.Errorf("Work panicked: %v", v)
			}
		}()
		work <- b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error {
			close(started)
			<-hangUp
			finished.Store(true)
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: time.Minute, Logger: slog.New(panickyLog{})})
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	closed := make(chan error, 1)
	go func() { closed <- b.eng.Close() }()
	select {
	case err := <-work:
		t.Fatalf("Work returned (%v) while its handler still ran", err)
	case <-closed:
		t.Fatal("Close returned while a handler still ran")
	case <-time.After(200 * time.Millisecond):
	}
	close(hangUp)
	require.NoError(t, <-closed)
	require.True(t, finished.Load(), "Close returned before the handler did")
	require.ErrorIs(t, <-work, queue.ErrClosed)

	after := openEngine(t, b.st, queue.Options{})
	it, err := after.Item(b.ctx, p.UUID, ids[0])
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status, "the handler's result was written")
}

// TestEngine_Work_SlowOnEventPastWindow: the claim at 16:59:59 judges the
// rule's window [09:00, 17:00) open; an OnEvent(EventDispatched) that takes
// 5 minutes (a slow audit hook) must not let the handler start the call at
// 17:04:59, outside it, though the lease (10 minutes) lasts: the lease is
// given back unattempted, its day's call with it, and the next claim
// schedules the item for the window's next start. A quick OnEvent, or a
// slow one while the window stays open, starts the handler as always.
// (The handler started: only the lease's end was checked before it.)
func TestEngine_Work_SlowOnEventPastWindow(t *testing.T) {
	t.Parallel()
	for _, stName := range []string{"SQLite", "PostgreSQL"} {
		for _, sub := range []struct {
			name  string
			claim time.Time     // the claim's instant
			hook  time.Duration // how long OnEvent(EventDispatched) takes, by the engine's clock
		}{
			{"SlowOnEvent", time.Date(2026, 1, 2, 16, 59, 59, 0, time.UTC), 5 * time.Minute},
			{"QuickOnEvent", time.Date(2026, 1, 2, 16, 59, 59, 0, time.UTC), 0},
			// Slow, but the window still open: the call starts (a hook
			// that is always slow must not stop every call).
			{"SlowOnEventInsideWindow", time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), 5 * time.Minute},
		} {
			t.Run(stName+"/"+sub.name, func(t *testing.T) {
				t.Parallel()
				var st store.Store
				if stName == "PostgreSQL" {
					st = pgtest.Open(t, pgtest.URL(t), postgres.Options{})
				} else {
					st = openFileStore(t, "")
				}
				b, clk, p, c := windowPool(t, st, sub.claim)
				eng := b.eng

				ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
				defer cancel()
				var mu sync.Mutex
				var kinds []queue.EventKind
				var released pool.Item
				var startedAt time.Time
				err := eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
					mu.Lock()
					startedAt = clk.Now() // the call is dialled now
					mu.Unlock()
					cancel()
					return nil
				}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: func(ev queue.Event) {
					mu.Lock()
					defer mu.Unlock()
					kinds = append(kinds, ev.Kind)
					switch ev.Kind {
					case queue.EventDispatched:
						clk.Advance(sub.hook)
					case queue.EventReleased:
						released = ev.Lease.Item
						cancel()
					}
				}})
				require.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()

				it, err := eng.Item(b.ctx, p.UUID, c)
				require.NoError(t, err)
				if sub.name != "SlowOnEvent" {
					require.Equal(t, sub.claim.Add(sub.hook), startedAt, "the call starts once OnEvent returns")
					require.Equal(t, []queue.EventKind{queue.EventDispatched, queue.EventCompleted}, kinds)
					require.Equal(t, pool.StatusCompleted, it.Status)
					require.Equal(t, 1, it.Attempts)
					require.Equal(t, 1, it.CallsToday)
					return
				}
				require.True(t, startedAt.IsZero(), "the call started at %s, outside the window [09:00, 17:00)", startedAt.Format("15:04:05"))
				require.Equal(t, []queue.EventKind{queue.EventDispatched, queue.EventReleased}, kinds)
				require.Equal(t, pool.StatusPending, released.Status, "given back as it was before the claim")
				require.Zero(t, released.Attempts, "given back, unattempted")
				require.Zero(t, released.CallsToday, "the day's call given back")

				// The next claim, at 17:04:59, finds the window closed.
				_, err = eng.TryDequeue(b.ctx, p.UUID)
				require.ErrorIs(t, err, queue.ErrEmpty)
				it, err = eng.Item(b.ctx, p.UUID, c)
				require.NoError(t, err)
				require.Equal(t, pool.StatusScheduled, it.Status)
				require.NotNil(t, it.NextRetryAt)
				require.Equal(t, time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC), it.NextRetryAt.UTC(), "the window's next start")
				require.Zero(t, it.Attempts)
				require.Zero(t, it.CallsToday)
			})
		}
	}
}

// A lease the host settles from OnEvent(EventDispatched), its calling window
// closed meanwhile: the runner's give-back finds the lease settled elsewhere,
// writes nothing, and says so (EventExpired), not that it gave the item back.
func TestEngine_Work_SettledInOnEventPastWindow(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 1, 2, 16, 59, 59, 0, time.UTC)}
	eng := openEngine(t, openFileStore(t, ""), queue.Options{LeaseTimeout: 10 * time.Minute, RetryDelay: testRetry, Now: clk.Now})
	b := &testBundle{ctx: context.Background(), eng: eng, clock: clk}
	p, _ := b.governed(t, pool.Parallel, "UTC", campaign.CreateRuleParams{
		StartTime: pqPtr("09:00"), EndTime: pqPtr("17:00"), MaxCallsPerDay: pqPtr(1)})
	c := b.addIn(t, p.UUID, "")

	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	var mu sync.Mutex
	var kinds []queue.EventKind
	started := false
	err := eng.Work(ctx, func(context.Context, *queue.Lease) error {
		mu.Lock()
		started = true
		mu.Unlock()
		return nil
	}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: func(ev queue.Event) {
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, ev.Kind)
		switch ev.Kind {
		case queue.EventDispatched:
			l := ev.Lease
			require.NoError(t, eng.Complete(b.ctx, &l, "settled by the host's hook"))
			clk.Advance(5 * time.Minute)
		default:
			cancel()
		}
	}})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.False(t, started, "no handler on a lease settled before it started")
	require.Equal(t, []queue.EventKind{queue.EventDispatched, queue.EventExpired}, kinds)
	it, err := eng.Item(b.ctx, p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status, "the host's settlement stands")
}

// windowPool opens an engine over st whose clock reads at, with a Parallel
// pool governed by a running campaign whose rule calls 09:00–17:00 UTC,
// once a day, and one contact in it.
func windowPool(t *testing.T, st store.Store, at time.Time) (*testBundle, *clock, pool.Pool, uuid.UUID) {
	t.Helper()
	clk := &clock{t: at}
	eng := openEngine(t, st, queue.Options{LeaseTimeout: 10 * time.Minute, RetryDelay: testRetry, Now: clk.Now})
	b := &testBundle{ctx: context.Background(), eng: eng, clock: clk}
	p, _ := b.governed(t, pool.Parallel, "UTC", campaign.CreateRuleParams{
		StartTime: pqPtr("09:00"), EndTime: pqPtr("17:00"), MaxCallsPerDay: pqPtr(1)})
	return b, clk, p, b.addIn(t, p.UUID, "")
}
