package groupcommit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// lockedStore's Writes wait before they begin, as one behind another
// process's lock does, until unlock, ctx's end, or lockWait (the store's
// lock timeout).
type lockedStore struct {
	store.Store
	unlocked chan struct{}
	waiting  atomic.Int32 // Writes waiting for the lock
}

const lockWait = 10 * time.Second

func (s *lockedStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.waiting.Add(1)
	t := time.NewTimer(lockWait)
	defer t.Stop()
	select {
	case <-s.unlocked:
	case <-ctx.Done():
		s.waiting.Add(-1)
		return fmt.Errorf("begin write: %w", ctx.Err())
	case <-t.C:
		s.waiting.Add(-1)
		return fmt.Errorf("begin write: %w", store.ErrLockTimeout)
	}
	s.waiting.Add(-1)
	return s.Store.Write(ctx, fn)
}

// TestCommitter_WriteEndsWhenItsCallersLeft: a transaction waiting to
// begin (behind another process's lock) stops waiting once every caller of
// its batch has left, and not before: the callers who come next do not
// wait behind it, and Close returns at once. Alone or in a batch, none of
// the operations of callers that left runs.
func TestCommitter_WriteEndsWhenItsCallersLeft(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	ls := &lockedStore{Store: b.st, unlocked: make(chan struct{})}
	c := groupcommit.New(ls, groupcommit.Options{})
	t.Cleanup(c.Close)
	waits := func(n int32) bool {
		return ls.waiting.Load() == n
	}
	// Alone: its caller leaves at its deadline, and so does the Write.
	ran := func(context.Context, *groupcommit.Tx) error { return fmt.Errorf("an operation whose caller left ran") }
	ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Write(ctx, ran), context.DeadlineExceeded)
	require.Eventually(t, func() bool { return waits(0) }, 5*time.Second, time.Millisecond,
		"the Write of a caller that left still waits for the lock")

	// A batch of three behind a first caller: the first caller leaves, the
	// batch's Write begins to wait; it goes on waiting while one of its
	// callers is still there.
	first, leaveFirst := context.WithCancel(b.ctx)
	var wg sync.WaitGroup
	wg.Go(func() { require.ErrorIs(t, c.Write(first, ran), context.Canceled) })
	require.Eventually(t, func() bool { return waits(1) }, 5*time.Second, time.Millisecond)
	leave := make([]context.CancelFunc, 3)
	for i := range leave {
		var ctx context.Context
		ctx, leave[i] = context.WithCancel(b.ctx)
		n := c.Queued()
		wg.Go(func() { require.ErrorIs(t, c.Write(ctx, ran), context.Canceled) })
		require.Eventually(t, func() bool { return c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
	}
	leaveFirst()
	require.Eventually(t, func() bool { return c.Queued() == 0 && waits(1) }, 5*time.Second, time.Millisecond,
		"the batch's Write did not begin once the first caller left")
	leave[0]()
	leave[2]()
	time.Sleep(50 * time.Millisecond)
	require.True(t, waits(1), "the batch's Write ended with a caller still waiting")
	leave[1]()
	require.Eventually(t, func() bool { return waits(0) }, 5*time.Second, time.Millisecond,
		"the batch's Write waits for the lock once its callers all left")
	wg.Wait()

	// A caller that stays gets its result once the lock is given back.
	id := uuid.New()
	done := make(chan error, 1)
	go func() { done <- c.Write(b.ctx, insert(id)) }()
	require.Eventually(t, func() bool { return waits(1) }, 5*time.Second, time.Millisecond)
	close(ls.unlocked)
	require.NoError(t, <-done)
	require.True(t, b.exists(t, id))
	pools, err := countPools(b)
	require.NoError(t, err)
	require.Equal(t, 1, pools, "only the caller that stayed wrote")
}

// TestCommitter_CloseAfterItsCallersLeft: Close does not wait for a
// transaction still waiting to begin (behind another process's lock)
// whose callers have all left.
func TestCommitter_CloseAfterItsCallersLeft(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	ls := &lockedStore{Store: b.st, unlocked: make(chan struct{})}
	c := groupcommit.New(ls, groupcommit.Options{})
	ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, c.Write(ctx, insert(uuid.New())), context.DeadlineExceeded)
	start := time.Now()
	c.Close()
	require.Less(t, time.Since(start), time.Second, "Close waited for the lock of a transaction whose callers left")
}

// TestCommitter_NoTransactionForABatchLeftInTheQueue: a batch whose
// callers all left while it waited in the queue (behind a transaction)
// begins no transaction: a Write for nobody could wait for another
// process's lock, and Close with it.
func TestCommitter_NoTransactionForABatchLeftInTheQueue(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	before := b.c.Stats().Transactions // the held one's counted
	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		ctx, cancel := context.WithCancel(b.ctx)
		left := make(chan error, 1)
		b.queue(t, &wg, func() { left <- b.c.Write(ctx, insert(id)) })
		cancel()
		require.ErrorIs(t, <-left, context.Canceled)
	}
	release()
	wg.Wait()
	b.c.Close() // the loop has taken the batch left behind, and is gone
	require.Equal(t, before, b.c.Stats().Transactions, "a transaction began for a batch whose callers had all left")
	for _, id := range ids {
		require.False(t, b.exists(t, id))
	}
}
