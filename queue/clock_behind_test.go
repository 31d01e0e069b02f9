package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// An item settled to be due at once (given back by Release after a
// failure, or failed with a retry time already past) is due for a clock a
// little behind the one that settled it: a clock stepped back, or another
// node's. Otherwise that clock finds the newer item of a FIFO pool due
// and calls it first.
func TestEngine_DueAtOnceForAClockBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 2)
	first := b.clock.Now()

	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, ids[0], l.ContactUUID)
	b.clock.Advance(30 * time.Second) // a call
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now().Add(-time.Hour)}))
	it := b.item(t, p.UUID, ids[0])
	require.Equal(t, pool.StatusScheduled, it.Status)
	require.Equal(t, first, *it.NextRetryAt, "a retry time before the first dispatch is the first dispatch")

	b.clock.Advance(-2 * time.Second) // a step back
	l, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, ids[0], l.ContactUUID, "the failed (older) item is due at once: it goes first")

	b.clock.Advance(10 * time.Second)
	require.NoError(t, b.eng.Release(b.ctx, l))
	it = b.item(t, p.UUID, ids[0])
	require.Equal(t, pool.StatusRetrying, it.Status)
	require.Equal(t, first, *it.NextRetryAt, "due since the first dispatch")

	b.clock.Advance(-2 * time.Second)
	l, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, ids[0], l.ContactUUID, "the released (older) item is due at once: it goes first")
}

// The same across two engines on one file, one's clock 20 ms behind the
// other's: the one behind dispatches the item the other gave back.
func TestEngine_DueAtOnceForAnotherEngineBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := openFileStore(t, "")
	var elapsed atomic.Int64
	base := time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)
	now := func(skew time.Duration) func() time.Time {
		return func() time.Time { return base.Add(time.Duration(elapsed.Load()) + skew) }
	}
	ahead := openEngine(t, st, queue.Options{Now: now(20 * time.Millisecond), RetryDelay: time.Minute})
	behind := openEngine(t, st, queue.Options{Now: now(0), RetryDelay: time.Minute})
	p, err := ahead.CreatePool(ctx, pool.CreateParams{Name: "skew", Description: "clocks apart", Type: pool.FIFO})
	require.NoError(t, err)
	items := newItems(2)
	_, err = ahead.Add(ctx, p.UUID, items...)
	require.NoError(t, err)

	l, err := ahead.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	elapsed.Add(int64(30 * time.Second))
	require.NoError(t, ahead.Fail(ctx, l, queue.Failure{RetryAt: now(0)()})) // due at once
	l, err = behind.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, items[0].ContactUUID, l.ContactUUID, "FIFO: the failed item goes before the newer one")
	require.NoError(t, behind.Release(ctx, l))

	l, err = ahead.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, items[0].ContactUUID, l.ContactUUID)
	elapsed.Add(int64(5 * time.Second))
	require.NoError(t, ahead.Release(ctx, l))
	l, err = behind.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, items[0].ContactUUID, l.ContactUUID, "FIFO: the released item goes before the newer one")
}

// A claim whose clock reads an earlier local date than the contact's
// latest counted call (another node's clock behind, or this one stepped
// back across the contact's midnight) counts, on its date, every calling
// day on that date or later, and counts its call on the later date rather
// than start a new day: neither date's calls are forgotten, whichever
// clock was wrong. Here the clock stepped back finds Jan 2's call and
// Jan 3's at the cap of 2 and waits for Jan 3 by its own clock; Jan 3
// then takes one call more, its cap.
func TestEngine_DayCapForAClockBehind(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, _ := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{
		MaxCallsPerDay: new(2), MaxTotalCalls: new(10), RetryIntervalMinutes: new(1),
		StartTime: new("00:00"), EndTime: new("23:59"),
	})
	b.addIn(t, p.UUID, "")
	setTo := func(at time.Time) { b.clock.Advance(at.Sub(b.clock.Now())) }
	var calls []time.Time
	call := func() {
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		if errors.Is(err, queue.ErrEmpty) {
			return
		}
		require.NoError(t, err)
		calls = append(calls, b.clock.Now())
		// "Call me back now": due at once.
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "call back", RetryAt: b.clock.Now().Add(-time.Hour)}))
	}
	start := b.clock.Now()
	require.Equal(t, 2, start.Day(), "the first dispatch, on Jan 2")
	call()
	setTo(time.Date(2026, 1, 3, 0, 0, 30, 0, time.UTC))
	call()                                                // the first call of Jan 3
	setTo(time.Date(2026, 1, 2, 23, 58, 50, 0, time.UTC)) // a clock 100 s behind
	call()                                                // Jan 2's call and Jan 3's: at the cap
	setTo(time.Date(2026, 1, 3, 0, 1, 0, 0, time.UTC))
	call()
	setTo(time.Date(2026, 1, 3, 0, 2, 0, 0, time.UTC))
	call()
	require.Equal(t, []time.Time{
		start, time.Date(2026, 1, 3, 0, 0, 30, 0, time.UTC), time.Date(2026, 1, 3, 0, 1, 0, 0, time.UTC),
	}, calls, "the clock behind refused at the cap; two calls on Jan 3, its cap")
	setTo(time.Date(2026, 1, 4, 0, 0, 0, 0, time.UTC))
	call()
	require.Len(t, calls, 4, "a new day")
}

// steppedClock is the real clock plus an offset a test steps, as NTP or an
// operator steps a host's wall clock (timers, on the monotonic clock, do
// not move).
type steppedClock struct{ off atomic.Int64 }

func (c *steppedClock) Now() time.Time       { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *steppedClock) Step(d time.Duration) { c.off.Add(int64(d)) }

// TestWork_HeartbeatAfterAClockSteppedBack: the wall clock steps back an
// hour as a handler starts, and is corrected 30 ms later. The heartbeat
// keeps its cadence (at most a lease ahead), so the lease, given at the
// true time, is extended before it ends. (It computed its first extension
// and its watchdog from the stepped clock, an hour off: the lease ended
// unextended, the next claim handed the contact out again while its first
// call went on, and no watchdog stopped that call.)
func TestWork_HeartbeatAfterAClockSteppedBack(t *testing.T) {
	t.Parallel()
	clk := &steppedClock{}
	b := realEngine(t, queue.Options{Now: clk.Now, LeaseTimeout: 600 * time.Millisecond, RetryDelay: 50 * time.Millisecond,
		PollInterval: 20 * time.Millisecond})
	p := b.pool(t, pool.Parallel, 2, 5)
	_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)

	var running, calls, most atomic.Int32
	var stepped atomic.Bool
	firstDone := make(chan struct{})
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	h := func(hctx context.Context, l *queue.Lease) error {
		n := calls.Add(1)
		r := running.Add(1)
		defer running.Add(-1)
		for m := most.Load(); r > m && !most.CompareAndSwap(m, r); m = most.Load() {
		}
		if n > 1 {
			return nil
		}
		time.Sleep(30 * time.Millisecond)
		clk.Step(time.Hour) // corrected: back at the true time
		// A call of 2 s: the 600 ms lease must be extended all along.
		select {
		case <-hctx.Done():
		case <-time.After(2 * time.Second):
		}
		close(firstDone)
		return nil
	}
	onEvent := func(ev queue.Event) {
		if ev.Kind == queue.EventDispatched && stepped.CompareAndSwap(false, true) {
			clk.Step(-time.Hour) // as the handler is about to start
		}
	}
	done := make(chan error, 1)
	go func() {
		done <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 2, OnEvent: onEvent})
	}()
	<-firstDone
	cancel()
	require.NoError(t, <-done)
	require.Equal(t, int32(1), most.Load(), "the contact was called again while its first call went on")
	require.Equal(t, int32(1), calls.Load(), "one call: the lease was extended while the handler ran")
}
