package queue_test

// The runner calls the host's code — the handler, the errors it returns,
// OnEvent, the Logger — on its own goroutines. Whatever that code does
// (takes long, panics, calls runtime.Goexit, returns a typed nil), no
// contact is called twice, no lease is left without an owner, the process
// lives on, and nothing of Work runs after it returns.

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
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
						time.Sleep(lease + 100*time.Millisecond) // a slow hook
					}
				case queue.EventExpired:
					expired.Add(1)
				}
			}})
	}()
	time.Sleep(lease + 50*time.Millisecond)
	dctx, dcancel := context.WithTimeout(b.ctx, 2*time.Second)
	defer dcancel()
	other, err := b.eng.Dequeue(dctx, p.UUID) // another worker takes the expired lease back
	require.NoError(t, err)
	require.Equal(t, ids[0], other.ContactUUID)
	require.Equal(t, 2, other.Attempt)
	require.Eventually(t, func() bool { return expired.Load() == 1 }, 5*time.Second, time.Millisecond,
		"the first lease is reported expired")
	cancel()
	require.NoError(t, <-errc)
	require.Zero(t, started.Load(), "the handler started on a lease that had ended: two calls to one contact")
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
