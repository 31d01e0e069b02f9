package queue_test

// Close while Work runs: a host that closes the engine (a deferred Close,
// a signal handler) without stopping Work first must not lose the calls
// under way. Their results, unwritten, would come back at their leases'
// end as failed attempts: a contact whose call went well called again.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// closing starts Work over p with one worker, waits until its handler h
// has started, then calls Close twice at once, and returns what Work and
// the two Closes return, as they do.
func closing(t *testing.T, b *testBundle, p uuid.UUID, grace time.Duration, h queue.Handler) (work, closes chan error) {
	t.Helper()
	started := make(chan struct{})
	work = make(chan error, 1)
	go func() {
		work <- b.eng.Work(b.ctx, func(hctx context.Context, l *queue.Lease) error {
			close(started)
			return h(hctx, l)
		}, queue.WorkOptions{Pools: []uuid.UUID{p}, Workers: 1, Grace: grace})
	}()
	select {
	case <-started:
	case err := <-work:
		t.Fatalf("Work returned before its handler started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	closes = make(chan error, 2)
	for range 2 {
		go func() { closes <- b.eng.Close() }()
	}
	return work, closes
}

// stillOpen fails t if ch delivers within d.
func stillOpen(t *testing.T, d time.Duration, what string, ch chan error) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned (%v) while a handler still ran", what, err)
	case <-time.After(d):
	}
}

func TestEngine_CloseStopsWork(t *testing.T) {
	t.Parallel()

	// Close stops dispatch at once, but waits for the call under way and
	// writes its result before the engine closes.
	t.Run("CallUnderWayIsWritten", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{PollInterval: 10 * time.Millisecond})
		p := b.pool(t, pool.Parallel, 5, 3)
		ids := b.add(t, p.UUID, 1)
		held := b.pool(t, pool.FIFO, 1, 3)
		heldID := b.add(t, held.UUID, 1)[0]
		lease, err := b.eng.TryDequeue(b.ctx, held.UUID) // held outside Work, as by a call-status webhook
		require.NoError(t, err)
		empty := b.pool(t, pool.FIFO, 1, 3)
		blocked := make(chan error, 1)
		go func() { _, err := b.eng.Dequeue(b.ctx, empty.UUID); blocked <- err }()

		hangUp := make(chan struct{})
		work, closes := closing(t, b, p.UUID, time.Minute, func(context.Context, *queue.Lease) error {
			<-hangUp
			return nil // the call went well
		})
		select {
		case err := <-blocked:
			require.ErrorIs(t, err, queue.ErrClosed, "a blocked Dequeue returns as Close begins")
		case <-time.After(5 * time.Second):
			t.Fatal("a blocked Dequeue did not return when Close began")
		}
		// Nothing is dispatched any more, and no Work starts...
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrClosed)
		b.add(t, p.UUID, 1)
		_, err = b.eng.DequeueN(b.ctx, p.UUID, 2)
		require.ErrorIs(t, err, queue.ErrClosed)
		err = b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
		require.ErrorIs(t, err, queue.ErrClosed)
		// ...but a lease held outside Work is still settled.
		require.NoError(t, b.eng.Complete(b.ctx, lease, "answered"))
		stillOpen(t, 200*time.Millisecond, "Close", closes)
		stillOpen(t, 10*time.Millisecond, "Work", work)

		close(hangUp)
		for range 2 {
			require.NoError(t, <-closes)
		}
		require.ErrorIs(t, <-work, queue.ErrClosed)
		_, err = b.eng.Pool(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrClosed, "every call after Close")

		after := openEngine(t, b.st, queue.Options{})
		it, err := after.Item(b.ctx, p.UUID, ids[0])
		require.NoError(t, err)
		require.Equal(t, pool.StatusCompleted, it.Status, "the call's result was written")
		it, err = after.Item(b.ctx, held.UUID, heldID)
		require.NoError(t, err)
		require.Equal(t, pool.StatusCompleted, it.Status)
	})

	// A handler still running when Work's grace ends is stopped as at
	// any shutdown: one that had not connected gives its item back,
	// unattempted, before the engine closes.
	t.Run("GraceEndsThenGivesBack", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 1)
		work, closes := closing(t, b, p.UUID, queue.MinGrace, func(hctx context.Context, l *queue.Lease) error {
			<-hctx.Done()
			return hctx.Err()
		})
		for range 2 {
			require.NoError(t, <-closes)
		}
		require.ErrorIs(t, <-work, queue.ErrClosed)
		after := openEngine(t, b.st, queue.Options{})
		it, err := after.Item(b.ctx, p.UUID, ids[0])
		require.NoError(t, err)
		require.Equal(t, pool.StatusPending, it.Status, "given back, not left in flight to expire")
		require.Zero(t, it.Attempts)
	})
}

// TestEngine_CloseDuringAClaim: a claim already under way when Close
// begins, that commits anyway, gives its leases back and returns
// ErrClosed, and Close waits for it. Handed out, such a lease could not be
// settled once the engine closed: its item would come back at the lease's
// end as a failed attempt, its contact called again.
func TestEngine_CloseDuringAClaim(t *testing.T) {
	t.Parallel()

	t.Run("DequeueN", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.Parallel, 5)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(3)...)
		require.NoError(t, err)
		entered, release := b.st.holdNext(t)
		claimed := make(chan error, 1)
		go func() { _, err := b.eng.DequeueN(b.ctx, p.UUID, 3); claimed <- err }()
		<-entered // the claim's transaction is under way, held
		closed := make(chan error, 1)
		go func() { closed <- b.eng.Close() }()
		stillOpen(t, 100*time.Millisecond, "Close", closed) // it waits for the claim
		release()
		require.ErrorIs(t, <-claimed, queue.ErrClosed)
		require.NoError(t, <-closed)
		after := openEngine(t, b.st, queue.Options{})
		items := allItems(b.ctx, t, after, p.UUID, 10)
		require.Len(t, items, 3)
		for _, it := range items {
			require.Equal(t, pool.StatusPending, it.Status, "given back")
			require.Zero(t, it.Attempts, "unattempted")
		}
	})

	// Work's next claim, queued behind its last settlement, commits after
	// Close began: its lease is given back, not started.
	t.Run("Work", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.Parallel, 5)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(3)...)
		require.NoError(t, err)
		var calls atomic.Int32
		entered, release := make(chan (<-chan struct{}), 1), make(chan func(), 1)
		work := make(chan error, 1)
		go func() {
			work <- b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error {
				if calls.Add(1) == 1 {
					e, r := b.st.holdNext(t) // this result's write, and the next claim behind it
					entered <- e
					release <- r
				}
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 1})
		}()
		<-<-entered
		closed := make(chan error, 1)
		go func() { closed <- b.eng.Close() }()
		stillOpen(t, 100*time.Millisecond, "Close", closed)
		(<-release)()
		require.ErrorIs(t, <-work, queue.ErrClosed)
		require.NoError(t, <-closed)
		require.EqualValues(t, 1, calls.Load(), "a handler started after Close began")
		after := openEngine(t, b.st, queue.Options{})
		counts := countStatuses(allItems(b.ctx, t, after, p.UUID, 10))
		require.Equal(t, 1, counts[pool.StatusCompleted], counts)
		require.Equal(t, 2, counts[pool.StatusPending], "given back: %v", counts)
	})
}

// TestEngine_CloseAfterStore: a host that closes the store before the
// engine (deferred Closes run in the wrong order) gets a prompt Close, not
// one that waits Work's whole Grace trying again writes that can never
// succeed. The handler's result cannot be written then: its lease is left
// to expire.
func TestEngine_CloseAfterStore(t *testing.T) {
	t.Parallel()
	t.Run("ResultUnwritten", func(t *testing.T) {
		t.Parallel()
		closeAfterStoreWithHandler(t)
	})

	// Work's claims fail for good once the store is closed: Work stops
	// claiming and returns the store's error by itself, instead of
	// reporting an EventError every PollInterval until the engine closes.
	t.Run("WorkStopsClaiming", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{PollInterval: 10 * time.Millisecond})
		p := b.pool(t, pool.Parallel, 5, 3)
		var errs atomic.Int32
		work := make(chan error, 1)
		go func() {
			work <- b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error { return nil },
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 30 * time.Second, OnEvent: func(ev queue.Event) {
					if ev.Kind == queue.EventError {
						errs.Add(1)
					}
				}})
		}()
		require.True(t, waitUntil(5*time.Second, func() bool { return queue.Waiting(b.eng, p.UUID) == 1 }), "Work is waiting")
		require.NoError(t, b.st.Close())
		// Work's next look, a PollInterval later, finds the store closed.
		select {
		case err := <-work:
			require.ErrorIs(t, err, store.ErrClosed)
			require.NotErrorIs(t, err, queue.ErrClosed, "the engine is open")
		case <-time.After(5 * time.Second):
			t.Fatalf("Work went on with its store closed (%d EventErrors)", errs.Load())
		}
		begin := time.Now()
		require.NoError(t, b.eng.Close())
		require.Less(t, time.Since(begin), 5*time.Second)
	})
}

func closeAfterStoreWithHandler(t *testing.T) {
	const grace = 30 * time.Second
	b := realEngine(t, queue.Options{PollInterval: 10 * time.Millisecond})
	p := b.pool(t, pool.Parallel, 5, 3)
	b.add(t, p.UUID, 1)
	started, hangUp := make(chan struct{}), make(chan struct{})
	work := make(chan error, 1)
	go func() {
		work <- b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error {
			close(started)
			<-hangUp
			return nil // the call went well, but the store is gone
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 2, Grace: grace})
	}()
	select {
	case <-started:
	case err := <-work:
		t.Fatalf("Work returned before its handler started: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	require.NoError(t, b.st.Close())
	close(hangUp)

	begin := time.Now()
	require.NoError(t, b.eng.Close())
	took := time.Since(begin)
	require.Less(t, took, 5*time.Second, "Close waited for writes to a closed store (Grace %v)", grace)
	select {
	case err := <-work:
		require.Error(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Work did not return once Close had")
	}
}
