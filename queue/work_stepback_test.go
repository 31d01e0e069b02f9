package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_Work_NoHandlerAfterStepBack: the clock steps back 10 s while
// a slow OnEvent holds a claimed lease's handler back past the lease's end
// (a lease of 200 ms, OnEvent 300 ms): the lease has ended, though the
// clock reads 10 s before its end. The handler must not start (the
// runner never starts a handler on a lease that ended): the lease is lost
// as one that ended before its handler started. Judged by the clock
// alone, the handler started, on a call every other node takes for ended
// (PostgreSQL's, their clocks right), and its watchdog gave it a whole
// lease more. Stepped ahead 10 s instead, with no time gone by, the lease
// has ended by the clock: the handler does not start either.
func TestEngine_Work_NoHandlerAfterStepBack(t *testing.T) {
	t.Parallel()
	const lease = 200 * time.Millisecond
	for _, tc := range []struct {
		name  string
		step  time.Duration
		sleep time.Duration // OnEvent's, after the step
	}{
		{"Back", -10 * time.Second, lease + 100*time.Millisecond},
		{"Ahead", 10 * time.Second, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var off atomic.Int64
			b := realEngine(t, queue.Options{LeaseTimeout: lease, PollInterval: time.Hour,
				Now: func() time.Time { return time.Now().Add(time.Duration(off.Load())) }})
			p := b.pool(t, pool.FIFO, 1, 3)
			b.add(t, p.UUID, 1)
			rec := newRecorder(settledN(1))
			on := func(ev queue.Event) {
				if ev.Kind == queue.EventDispatched {
					off.Store(int64(tc.step))
					time.Sleep(tc.sleep)
				}
				rec.on(ev)
			}
			var started atomic.Bool
			ctx, cancel := context.WithCancel(b.ctx)
			errc := make(chan error, 1)
			go func() {
				errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
					started.Store(true)
					return nil
				}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: on})
			}()
			<-rec.done
			cancel()
			require.NoError(t, <-errc)
			require.False(t, started.Load(), "a handler started on a lease that had ended")
			require.Equal(t, 1, rec.count(queue.EventExpired))
		})
	}
}

// behindStore is a store that refuses extensions (store.ClockChecker)
// while behind is set, as PostgreSQL's does while its clock is too far
// behind the server's.
type behindStore struct {
	store.Store
	behind *atomic.Bool
}

var errBehind = errors.New("clock behind")

// behindEngine opens an engine with leases of lease on an in-memory
// store that refuses extensions while behind is set, whose clock is the
// process's moved by off.
func behindEngine(t *testing.T, lease time.Duration) (b *testBundle, behind *atomic.Bool, off *atomic.Int64) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	behind, off = new(atomic.Bool), new(atomic.Int64)
	eng, err := queue.New(behindStore{st, behind}, queue.Options{LeaseTimeout: lease, PollInterval: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(off.Load())) }})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return &testBundle{ctx: ctx, eng: eng, st: st}, behind, off
}

func (s behindStore) ClockBehind() error {
	if s.behind.Load() {
		return errBehind
	}
	return nil
}

// TestEngine_Work_WatchdogAfterStepBack: the clock steps back 10 s while
// a slow OnEvent holds a claimed lease's handler back for most of the
// lease (1.5 s of 2 s), and the store refuses the extensions from then
// on. The handler starts, with half a second of its lease left, and is
// stopped at the lease's end (EventExpired): half a second after it
// started, not a whole lease (2 s) after, which the clock, 10 s before
// the end, would have given it.
func TestEngine_Work_WatchdogAfterStepBack(t *testing.T) {
	t.Parallel()
	const lease = 2 * time.Second
	b, behind, off := behindEngine(t, lease)
	ctx, eng := b.ctx, b.eng
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	rec := newRecorder(func(evs []queue.Event) bool { return evs[len(evs)-1].Kind == queue.EventExpired })
	on := func(ev queue.Event) {
		if ev.Kind == queue.EventDispatched {
			off.Store(int64(-10 * time.Second))
			behind.Store(true)
			time.Sleep(lease * 3 / 4)
		}
		rec.on(ev)
	}
	var ran atomic.Int64 // how long the handler ran
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- eng.Work(wctx, func(hctx context.Context, _ *queue.Lease) error {
			start := time.Now()
			select {
			case <-hctx.Done():
			case <-time.After(10 * time.Second):
			}
			ran.Store(int64(time.Since(start)))
			return hctx.Err()
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: on})
	}()
	select {
	case <-rec.done:
	case <-time.After(15 * time.Second):
		t.Fatal("no event after the dispatch")
	}
	cancel()
	require.NoError(t, <-errc)
	// Of the first lease: the handler gives it back when stopped (its
	// context's error), and under load Work may claim the item again
	// before the cancel above lands; that lease's events are not this
	// test's.
	first := rec.first(queue.EventDispatched)
	require.Equal(t, 1, rec.countOf(queue.EventExpired, first.Token), "the lease lost at its end; events: %v", rec.kinds())
	require.Positive(t, rec.countOf(queue.EventError, first.Token), "no extension refused; events: %v", rec.kinds())
	require.Less(t, time.Duration(ran.Load()), lease*3/4, "the handler ran past its lease's end (%v left when it started)", lease/4)
}

// TestEngine_ExtendWhileBehind: while the store says this clock is too
// far behind, Extend refuses a live lease with the store's error and
// leaves its end as it was, in the lease and in the store, and extends it
// once the clock is right again; a lease whose end has passed is lost
// (ErrLeaseLost), not refused: a host told "clock behind" keeps its call
// until the end it had, and that end has passed. (A lease judged ended
// inside Extend's own check, by a claim from another pool of its
// campaign: TestEngine_ExtendBehindAClaimAhead_ClockRefused.)
func TestEngine_ExtendWhileBehind(t *testing.T) {
	t.Parallel()
	b, behind, off := behindEngine(t, time.Minute)
	ctx, eng := b.ctx, b.eng
	p := b.pool(t, pool.Parallel, 2, 3)
	b.add(t, p.UUID, 2)
	live, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	ended, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	before, err := eng.Item(ctx, p.UUID, live.Item.ContactUUID)
	require.NoError(t, err)
	behind.Store(true)
	end := live.ExpiresAt
	err = eng.Extend(ctx, live, 5*time.Minute)
	require.ErrorIs(t, err, errBehind)
	require.NotErrorIs(t, err, queue.ErrLeaseLost)
	require.Equal(t, end, live.ExpiresAt, "a refused extension moved the lease's end")
	it, err := eng.Item(ctx, p.UUID, live.Item.ContactUUID)
	require.NoError(t, err)
	require.Equal(t, pool.StatusProcessing, it.Status)
	require.True(t, it.LeaseExpiresAt.Equal(before.LeaseExpiresAt), "a refused extension moved the stored end")

	behind.Store(false)
	require.NoError(t, eng.Extend(ctx, live, 5*time.Minute), "the live lease, once the clock is right again")
	require.True(t, live.ExpiresAt.After(end))

	behind.Store(true)
	off.Store(int64(2 * time.Minute)) // the other lease's end has passed
	err = eng.Extend(ctx, ended, 5*time.Minute)
	require.ErrorIs(t, err, queue.ErrLeaseLost, "an ended lease must be lost, not refused for the clock")
	require.NotErrorIs(t, err, errBehind)
}
