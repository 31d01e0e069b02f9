package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// A blocked Dequeue sleeps until its pool's next lease deadline. An Extend
// that brings a lease's end closer moves that deadline: the waiter wakes
// at the new end, not at the old one or at the safety poll.
func TestEngine_WakesWhenExtendShortensALease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{PollInterval: 10 * time.Second})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "extend", Description: "a shorter lease", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := eng.Dequeue(ctx, p.UUID)
		done <- err
	}()
	require.True(t, waitUntil(2*time.Second, func() bool { return queue.Waiting(eng, p.UUID) == 1 }))
	time.Sleep(100 * time.Millisecond) // asleep until the lease's end, ten minutes away, or the poll

	start := time.Now()
	require.NoError(t, eng.Extend(ctx, l, queue.MinLeaseTimeout))
	select {
	case err := <-done:
		require.NoError(t, err)
		t.Logf("the blocked Dequeue claimed %v after the Extend", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Dequeue slept past the shortened lease's end")
	}
}

// TestEngine_WaiterLeavingKeepsTheOthers: two Dequeues block on one
// empty pool; one leaves (its context ends). The other must still be woken
// by an Add at once, not at the safety poll: wake.go promises that no
// wake-up is missed. Nothing tested that one waiter's unsubscribe leaves
// the other waiters of its pool subscribed.
func TestEngine_WaiterLeavingKeepsTheOthers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{PollInterval: time.Minute})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "waiters", Description: "two", Type: pool.FIFO})
	require.NoError(t, err)

	leaving, leave := context.WithCancel(ctx)
	left := make(chan error, 1)
	go func() { _, err := eng.Dequeue(leaving, p.UUID); left <- err }()
	done := make(chan error, 1)
	go func() { _, err := eng.Dequeue(ctx, p.UUID); done <- err }()
	require.True(t, waitUntil(2*time.Second, func() bool { return queue.Waiting(eng, p.UUID) == 2 }))
	leave()
	require.ErrorIs(t, <-left, context.Canceled)
	time.Sleep(50 * time.Millisecond)

	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the Dequeue still waiting was not woken by the Add (the other waiter's leaving unsubscribed it)")
	}
}
