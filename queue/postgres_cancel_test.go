package queue_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_CallerLeavesALockWaitWhenCancelled: another node's
// transaction holds a pool's lock (and a rule's) for far less than the
// store's LockTimeout (30 s) but far more than the callers stay. A call
// whose context is cancelled (no deadline: a request whose client went
// away, a Work stopping), and whose write runs alone, returns at once with
// an error wrapping context.Canceled, and nothing of it is written. (Until
// December 2026 it waited with the lock, up to LockTimeout: only a
// deadline ended the wait.)
func TestPostgres_CallerLeavesALockWaitWhenCancelled(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	w := newLockWait(t, url)
	waitHeld := w.hold(t, 4*time.Second)
	w.leaveEach(t, "its cancellation", context.Canceled, func() (context.Context, context.CancelFunc) {
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(leaveAfter, cancel)
		return cctx, func() { timer.Stop(); cancel() }
	})
	waitHeld()
	w.requireNothingWritten(t)

	// The connection of a cancelled wait was not handed out in a state
	// that fails the next caller: calls go through once the pool is free.
	for range 3 {
		_, err := w.eng.Add(ctx, w.p.UUID, newItems(1)...)
		require.NoError(t, err)
	}
	require.NoError(t, w.eng.Complete(ctx, w.l, "answered"))
}

// TestPostgres_WorkStopsBehindAnotherNodesLock: Work's claim waits for a
// pool whose lock another node's transaction holds (5 s, far less than
// LockTimeout) when Work's context is cancelled. Work returns within its
// grace (100 ms) and a little more, not once the other node lets go, and
// it claimed nothing: no handler ran, no item is in flight. (Until
// December 2026 it returned 5 s after its cancellation: the claim under
// way finished its wait, up to LockTimeout.)
func TestPostgres_WorkStopsBehindAnotherNodesLock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	eng, other, p := behindLock(t, url, 3)

	const hold = 5 * time.Second
	held := holdPool(t, other, p.UUID, hold)
	var handled atomic.Int32
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- eng.Work(wctx, func(ctx context.Context, l *queue.Lease) error {
			handled.Add(1)
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 2, Grace: 100 * time.Millisecond})
	}()
	time.Sleep(500 * time.Millisecond) // Work's first claim waits for the lock
	took := stopWork(t, cancel, done)
	require.Less(t, took, time.Second, "Work held past its grace behind another node's lock")
	require.NoError(t, <-held)
	require.Zero(t, handled.Load(), "a handler ran")
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 3, d.StatusCounts[pool.StatusPending], "Work's claim was written: %v", d.StatusCounts)
}

// TestPostgres_WorkResultBehindAnotherNodesLock: Work stops while its
// handler's call goes on and another node's transaction holds the pool's
// lock (5 s, far less than LockTimeout). The handler returns when its
// context is cancelled at the grace's end; its result, alone in its
// transaction, waits for the lock a second at most (stopWriteWait), and
// Work returns: its item is left in flight, to come back at its lease's
// end. (A result given up is a call that may be made again: the price of
// a shutdown that does not wait for the other node, which the README
// states.)
func TestPostgres_WorkResultBehindAnotherNodesLock(t *testing.T) {
	workResultsBehindLock(t, 1, 5*time.Second)
}

// TestPostgres_WorkResultsBehindAnotherNodesLock is
// TestPostgres_WorkResultBehindAnotherNodesLock with three calls on the
// line: their results, written as Work stops, share a transaction, whose
// wait for the lock ends once every one of them has given up, a second
// after the grace's end, instead of lasting as long as the other node
// holds the lock (up to LockTimeout).
func TestPostgres_WorkResultsBehindAnotherNodesLock(t *testing.T) {
	workResultsBehindLock(t, 3, 8*time.Second)
}

// workResultsBehindLock stops a Work with calls handlers on the line
// while another node holds their pool's lock for hold, and checks that
// Work returns within 3 s, none of their results written.
func workResultsBehindLock(t *testing.T, calls int, hold time.Duration) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	eng, other, p := behindLock(t, url, calls)

	var started sync.WaitGroup
	started.Add(calls)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- eng.Work(wctx, func(ctx context.Context, l *queue.Lease) error {
			started.Done()
			<-ctx.Done() // on the line until Work's grace ends
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: calls, Grace: 100 * time.Millisecond})
	}()
	started.Wait()
	held := holdPool(t, other, p.UUID, hold)
	took := stopWork(t, cancel, done)
	require.Less(t, took, 3*time.Second, "Work held behind another node's lock (grace 100 ms, writes give up a second after it)")
	require.NoError(t, <-held)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, calls, d.StatusCounts[pool.StatusProcessing], "a result was written, or an item given back: %v", d.StatusCounts)
}

// behindLock returns an engine on a new schema with a Parallel pool P of n
// items, and a second store on that schema (another node), whose
// transactions can hold P's lock (holdPool).
func behindLock(t *testing.T, url string, n int) (*queue.Engine, store.Store, pool.Pool) {
	t.Helper()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	eng := openEngine(t, st, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(n)...)
	require.NoError(t, err)
	return eng, other, p
}

// stopWork cancels a Work (cancel is its context's) whose result comes on
// done, and returns how long it took to return with nil.
func stopWork(t *testing.T, cancel context.CancelFunc, done <-chan error) time.Duration {
	t.Helper()
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		took := time.Since(start)
		t.Logf("Work returned %v after its cancellation", took)
		require.NoError(t, err)
		return took
	case <-time.After(time.Minute):
		t.Fatal("Work did not return")
		return 0
	}
}
