package queue_test

// A pool another node holds past the lock timeout (frozen) must not hold
// up the node's other pools at the cadence of the engine's writes to it.
// The store remembers such a pool and only tries its lock; until December
// 2026 it forgot it a time after a write last found it held (LockTimeout,
// then 30 s), and the writes that would have refreshed the memory come at
// their callers' cadence, however long: a blocked Dequeue's looks (up to
// PollInterval), Work's result and extension retries (a quarter of
// Heartbeat, 50 s with the default lease). Each write after a lapse waited
// the full LockTimeout again, with every operation of its batch.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// frozenNode opens an engine with opts over a store whose LockTimeout is
// lockTimeout, and another node (nodeBesideOther). freeze holds pool id's
// lock from that node, for longer than the default 30 s
// IdleInTransactionTimeout if need be, until the returned release is
// called (idempotent), or the test ends.
func frozenNode(t *testing.T, lockTimeout time.Duration, opts queue.Options) (eng *queue.Engine, freeze func(id uuid.UUID) (release func())) {
	t.Helper()
	eng, other := nodeBesideOther(t, lockTimeout, opts)
	return eng, func(id uuid.UUID) func() {
		t.Helper()
		free := make(chan struct{})
		done := holdPoolUntil(t, other, id, func() { <-free })
		var once sync.Once
		release := func() {
			once.Do(func() {
				close(free)
				require.NoError(t, <-done, "the frozen node's transaction")
			})
		}
		t.Cleanup(release)
		return release
	}
}

// slowestAdds adds an item to pool q every 20 ms for d and returns the
// slowest Add's time and when (since start) it began.
func slowestAdds(t *testing.T, eng *queue.Engine, q uuid.UUID, start time.Time, d time.Duration) (slowest, at time.Duration) {
	t.Helper()
	ctx := context.Background()
	for until := time.Now().Add(d); time.Now().Before(until); {
		began := time.Now()
		_, err := eng.Add(ctx, q, newItems(1)...)
		require.NoError(t, err)
		if took := time.Since(began); took > slowest {
			slowest, at = took, began.Sub(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return slowest, at
}

// TestPostgres_FrozenPoolSettleRetryHoldsNothingUp: Work's handler returns
// while another node holds its pool's lock (frozen). The result's write
// waits LockTimeout, once, as designed, and fails; Work writes it again a
// quarter of Heartbeat later (here 35 s: Heartbeat may be up to half of
// LeaseTimeout, and defaults to a third of it, so with the default 10 min
// lease the retries come 50 s apart). That retry only tries the pool's
// lock: the node's Adds to its other pools, which share its batch, go on
// at their usual speed. (Before, the store had forgotten the pool 30 s
// after the first write found it held, and each retry waited the full
// LockTimeout again, for as long as the lease lasted.) Work's own claims
// do not touch the pool meanwhile: it is full, and Work over two pools
// reads which may give before claiming. The heartbeat's extension retries
// (every Heartbeat/4) are the same case.
func TestPostgres_FrozenPoolSettleRetryHoldsNothingUp(t *testing.T) {
	pgtest.URL(t) // skips without PostgreSQL
	if testing.Short() {
		t.Skip("40 s: its retry must come later than the store's old 30 s memory; -short leaves it out")
	}
	t.Parallel()
	ctx := context.Background()
	const lockTimeout = 2 * time.Second // its half bounds an Add, over 40 s of them: room for a loaded machine
	eng, freeze := frozenNode(t, lockTimeout, queue.Options{LeaseTimeout: 5 * time.Minute})
	p := parallelPoolOfOne(t, eng, "pool P") // one item due; a cap of one: full once claimed
	r, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool R", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	q := parallelPoolOfOne(t, eng, "pool Q")

	var (
		mu       sync.Mutex
		release  func()
		returned time.Time
		events   []queue.EventKind
	)
	h := func(_ context.Context, l *queue.Lease) error {
		mu.Lock()
		defer mu.Unlock()
		release = freeze(l.PoolUUID) // the other node freezes holding the pool
		returned = time.Now()
		return nil
	}
	wctx, stop := context.WithCancel(ctx)
	worked := make(chan error, 1)
	go func() {
		worked <- eng.Work(wctx, h, queue.WorkOptions{
			Pools: []uuid.UUID{p.UUID, r.UUID}, Workers: 1, Heartbeat: 140 * time.Second, // retries 35 s apart
			Grace: time.Second,
			OnEvent: func(ev queue.Event) {
				mu.Lock()
				defer mu.Unlock()
				events = append(events, ev.Kind)
			},
		})
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return !returned.IsZero()
	}, 10*time.Second, 5*time.Millisecond, "the handler ran")
	mu.Lock()
	start := returned
	mu.Unlock()
	time.Sleep(time.Until(start.Add(3 * lockTimeout / 2))) // the result's first write waits the timeout out, as designed
	// Its second try comes 35 s after the first failed.
	slowest, at := slowestAdds(t, eng, q.UUID, start, 40*time.Second)
	mu.Lock()
	release()
	evs := append([]queue.EventKind(nil), events...)
	mu.Unlock()
	stop()
	t.Logf("events: %v; Work returned %v; the slowest Add took %v, %v after the handler returned", evs, <-worked, slowest, at)
	require.Less(t, slowest, lockTimeout/2,
		"an Add to another pool waited %v for the frozen pool, %v after the handler returned: the store forgot the pool before Work wrote the result again (Heartbeat/4 = 35 s later)",
		slowest, at)
}
