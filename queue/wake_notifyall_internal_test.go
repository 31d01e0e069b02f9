package queue

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestWakeups_NotifyAllWakesEveryPool: notifyAll (a store's listener that
// may have lost signals, listening again) wakes the waiters of every pool,
// each once, not those of one pool: the listener tests block one Dequeue
// on one pool, which an early stop of the walk over the pools passed.
func TestWakeups_NotifyAllWakesEveryPool(t *testing.T) {
	var w wakeups
	chans := make([]chan struct{}, 5)
	for i := range chans {
		chans[i] = make(chan struct{}, 1)
		defer w.subscribe(chans[i], uuid.New())()
	}
	both := make(chan struct{}, 1) // one waiter of two pools
	defer w.subscribe(both, uuid.New(), uuid.New())()
	w.notifyAll()
	for i, ch := range chans {
		require.True(t, woken(ch), "the waiter of pool %d was not woken", i)
	}
	require.True(t, woken(both))
	require.False(t, woken(both), "one token a channel")
}
