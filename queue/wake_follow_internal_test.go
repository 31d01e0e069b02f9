package queue

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// woken reports whether ch holds a token, and takes it.
func woken(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWakeups_Follow: the waiters of a pool that follows others are woken
// by their changes as by its own, only by the pools the last follow named,
// and the entries go with the pool's last waiter (the invariant of
// wakeups), whatever follow set.
func TestWakeups_Follow(t *testing.T) {
	var w wakeups
	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	w.follow(b, []uuid.UUID{a}) // no waiter of b: nothing to wake, nothing kept
	followers, followed := w.following()
	require.Zero(t, followers+followed, "follow kept entries for a pool with no waiter")

	chB, chB2, chA := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{}, 1)
	offB := w.subscribe(chB, b)
	offB2 := w.subscribe(chB2, b, d)
	offA := w.subscribe(chA, a)
	w.follow(b, []uuid.UUID{a, c})
	w.notify(a)
	require.True(t, woken(chB) && woken(chB2), "a change of a followed pool wakes every waiter of the follower")
	require.True(t, woken(chA), "and the pool's own")
	w.notify(c)
	require.True(t, woken(chB) && woken(chB2))
	require.False(t, woken(chA), "a follower's pool is not woken by the pool it follows")
	w.notify(b)
	require.True(t, woken(chB))
	require.False(t, woken(chA), "following is one way")
	woken(chB2)

	w.follow(b, []uuid.UUID{c}) // the next claim: its items wait for c alone
	w.notify(a)
	require.False(t, woken(chB), "a pool the last follow did not name still wakes it")
	w.notify(c)
	require.True(t, woken(chB))
	woken(chB2)
	w.follow(b, nil) // a claim that passed nothing over
	w.notify(c)
	require.False(t, woken(chB))
	followers, followed = w.following()
	require.Zero(t, followers+followed, "an empty follow left entries")

	w.follow(b, []uuid.UUID{a, c})
	offB()
	w.notify(a)
	require.True(t, woken(chB2), "b's other waiter still follows")
	offB2() // b's last waiter, and d's
	w.notify(a)
	require.False(t, woken(chB) || woken(chB2))
	followers, followed = w.following()
	require.Zero(t, followers+followed, "entries kept for a pool with no waiter")
	_, pools := w.waiting(uuid.Nil)
	require.Equal(t, 1, pools, "a's waiter")
	offA()
	_, pools = w.waiting(uuid.Nil)
	require.Zero(t, pools)
}
