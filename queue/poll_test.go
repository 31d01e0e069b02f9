package queue_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestEngine_PoolDeletedElsewhereAtThePoll: a waiter on a pool that
// another process sharing the file deletes (no wake-up reaches this one)
// learns it at its next poll, whose read finds the pool gone: a Dequeue
// returns store.ErrNotFound, a Work on it (alone, or with another pool)
// drops it with an EventError wrapping store.ErrNotFound. A poll that took
// the missing pool for one with nothing to give would sleep on it for
// ever.
func TestEngine_PoolDeletedElsewhereAtThePoll(t *testing.T) {
	for _, kind := range waiterKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			here, there := sharedFile(t)
			p := here.pool(t, pool.FIFO, 1, 3)
			other := here.pool(t, pool.FIFO, 1, 3)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			gone := make(chan error, 1)
			onEvent := func(ev queue.Event) {
				if ev.Kind == queue.EventError && errors.Is(ev.Err, store.ErrNotFound) {
					select {
					case gone <- ev.Err:
					default:
					}
				}
			}
			h := func(context.Context, *queue.Lease) error { return nil }
			startWaiter(ctx, here.eng, kind, p.UUID, other.UUID, h, onEvent, gone)
			require.Eventually(t, func() bool { return queue.Waiting(here.eng, p.UUID) > 0 }, 5*time.Second, time.Millisecond)
			time.Sleep(100 * time.Millisecond) // its first look, then polls
			require.NoError(t, there.eng.DeletePool(there.ctx, p.UUID))
			select {
			case err := <-gone:
				require.ErrorIs(t, err, store.ErrNotFound)
			case <-time.After(5 * time.Second):
				t.Fatal("the waiter did not learn that its pool was deleted in the other process")
			}
		})
	}
}

// TestWork_LookAfterAWorkersEndIsNoPoll: a Work on one pool whose poll
// found items to give (added by another process sharing the file: no
// wake-up reaches it) claims the next one as each handler returns with no
// read first: a look after a worker's end asks no read, as a woken look,
// only the poll itself does. A look that stayed a poll would cost a busy
// Work on one pool a read transaction a lease.
func TestWork_LookAfterAWorkersEndIsNoPoll(t *testing.T) {
	t.Parallel()
	const items = 20
	path := filepath.Join(t.TempDir(), "shared.db")
	opts := queue.Options{PollInterval: 50 * time.Millisecond}
	cs := &txCountStore{Store: openFileStore(t, path)}
	here := &testBundle{ctx: context.Background(), eng: openEngine(t, cs, opts)}
	there := &testBundle{ctx: context.Background(), eng: openEngine(t, openFileStore(t, path), opts)}
	p := here.pool(t, pool.Parallel, 10, 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var handled, readsAtFirst atomic.Int64
	h := func(context.Context, *queue.Lease) error {
		if handled.Add(1) == 1 {
			readsAtFirst.Store(cs.reads.Load())
		}
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		errc <- here.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: time.Second})
	}()
	require.Eventually(t, func() bool { return queue.Waiting(here.eng, p.UUID) > 0 }, 5*time.Second, time.Millisecond)
	time.Sleep(100 * time.Millisecond) // its first look, then polls
	there.add(t, p.UUID, items)
	require.Eventually(t, func() bool { return handled.Load() == items }, 10*time.Second, time.Millisecond)
	reads := cs.reads.Load() - readsAtFirst.Load()
	t.Logf("%d read transactions from the first handler's start to the last's", reads)
	// A few, for looks that raced the handlers' results (0 to 3 seen in
	// 20 runs); a read a claim would be about one a lease.
	require.Less(t, reads, int64(items/2), "a look after a worker's end reads as a poll does")
	cancel()
	require.NoError(t, <-errc)
}

// TestEngine_PollSleepsUntilTheNextWake: a Dequeue whose safety poll
// finds its pool's next retry time still to come (here half a second
// after the poll) sleeps until that time, not a whole PollInterval more,
// and claims the item then.
func TestEngine_PollSleepsUntilTheNextWake(t *testing.T) {
	t.Parallel()
	const poll = 2 * time.Second
	b := realEngine(t, queue.Options{PollInterval: poll})
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	retry := time.Now().Add(poll + poll/4)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: retry}))
	ctx, cancel := context.WithTimeout(b.ctx, 4*poll)
	defer cancel()
	_, err = b.eng.Dequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Less(t, time.Since(retry), poll/2, "claimed a PollInterval after the retry time, not at it")
}

// sharedFile opens two engines on one SQLite file, as two processes
// sharing it: no wake-up of one reaches the other, whose waiters learn of
// its writes at their polls, every 20 ms here.
func sharedFile(t *testing.T) (here, there *testBundle) {
	path := filepath.Join(t.TempDir(), "shared.db")
	opts := queue.Options{PollInterval: 20 * time.Millisecond}
	here = &testBundle{ctx: context.Background(), eng: openEngine(t, openFileStore(t, path), opts)}
	there = &testBundle{ctx: context.Background(), eng: openEngine(t, openFileStore(t, path), opts)}
	return here, there
}

// waiterKinds are the ways of waiting on a pool that the tests of polls
// cover: a Dequeue, a Work on the pool alone, a Work on it after another
// pool (see startWaiter).
var waiterKinds = []string{"Dequeue", "WorkOnePool", "WorkTwoPools"}

// startWaiter starts a waiter of kind (one of waiterKinds) on pool p of
// eng, until ctx ends. A Dequeue sends its error to got; a Work runs h
// with onEvent, on p alone or on other and then p.
func startWaiter(ctx context.Context, eng *queue.Engine, kind string, p, other uuid.UUID,
	h queue.Handler, onEvent func(queue.Event), got chan<- error) {
	switch kind {
	case "Dequeue":
		go func() { _, err := eng.Dequeue(ctx, p); got <- err }()
	case "WorkOnePool", "WorkTwoPools":
		pools := []uuid.UUID{p}
		if kind == "WorkTwoPools" {
			pools = []uuid.UUID{other, p}
		}
		go func() { _ = eng.Work(ctx, h, queue.WorkOptions{Pools: pools, OnEvent: onEvent}) }()
	default:
		panic("startWaiter: no waiter of kind " + kind)
	}
}
