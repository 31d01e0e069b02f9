package queue_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// realEngine is an engine on the real clock, for the runner's timers.
func realEngine(t interface {
	require.TestingT
	Helper()
	Cleanup(func())
}, opts queue.Options) *testBundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	eng, err := queue.New(st, opts)
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return &testBundle{ctx: ctx, eng: eng, st: st}
}

// recorder collects a Work run's events.
type recorder struct {
	mu     sync.Mutex
	events []queue.Event
	cond   func([]queue.Event) bool
	done   chan struct{}
}

func newRecorder(cond func([]queue.Event) bool) *recorder {
	return &recorder{cond: cond, done: make(chan struct{})}
}

func (r *recorder) on(ev queue.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	if r.cond != nil && r.cond(r.events) {
		r.cond = nil
		close(r.done)
	}
}

func (r *recorder) count(k queue.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// countOf is count for the events of the lease with token alone.
func (r *recorder) countOf(k queue.EventKind, token int64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, ev := range r.events {
		if ev.Kind == k && ev.Lease.Token == token {
			n++
		}
	}
	return n
}

// first returns the lease of the first event of kind k (the zero Lease
// if there is none).
func (r *recorder) first(k queue.EventKind) queue.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Kind == k {
			return ev.Lease
		}
	}
	return queue.Lease{}
}

// kinds returns the events recorded, as kind and token, for a failure's
// message.
func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, fmt.Sprintf("%s(token %d)", ev.Kind, ev.Lease.Token))
	}
	return out
}

func settledN(n int) func([]queue.Event) bool {
	return func(evs []queue.Event) bool {
		k := 0
		for _, ev := range evs {
			if ev.Kind != queue.EventDispatched {
				k++
			}
		}
		return k >= n
	}
}

// checkNoLeak waits for the goroutine count to come back to before.
func checkNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

func TestEngine_Work(t *testing.T) {
	// Not parallel: it counts goroutines.

	t.Run("Outcomes", func(t *testing.T) {
		b := realEngine(t, queue.Options{RetryDelay: time.Hour})
		p := b.pool(t, pool.Parallel, 4, 3)
		ids := b.add(t, p.UUID, 5)
		before := runtime.NumGoroutine() // the store's own goroutines are running already
		retryAt := time.Now().Add(2 * time.Hour).UTC().Round(0)
		outcome := map[uuid.UUID]error{
			ids[0]: nil,
			ids[1]: errors.New("busy"),
			ids[2]: queue.RetryAt(retryAt, errors.New("call back")),
			ids[3]: queue.Final(errors.New("wrong number")),
		}
		rec := newRecorder(settledN(5))
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
				if l.ContactUUID == ids[4] {
					panic("boom")
				}
				return outcome[l.ContactUUID]
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3, OnEvent: rec.on})
		}()
		<-rec.done
		cancel()
		require.NoError(t, <-errc)

		require.Equal(t, pool.StatusCompleted, b.item(t, p.UUID, ids[0]).Status)
		busy := b.item(t, p.UUID, ids[1])
		require.Equal(t, pool.StatusRetrying, busy.Status)
		require.Equal(t, "busy", busy.Notes)
		cb := b.item(t, p.UUID, ids[2])
		require.Equal(t, pool.StatusScheduled, cb.Status)
		require.Equal(t, retryAt, *cb.NextRetryAt)
		require.Equal(t, "call back", cb.Notes)
		wrong := b.item(t, p.UUID, ids[3])
		require.Equal(t, pool.StatusFailed, wrong.Status)
		require.Equal(t, "wrong number", wrong.Notes)
		panicked := b.item(t, p.UUID, ids[4])
		require.Equal(t, pool.StatusRetrying, panicked.Status)
		require.Equal(t, "panic: boom", panicked.Notes)

		require.Equal(t, 5, rec.count(queue.EventDispatched))
		require.Equal(t, 1, rec.count(queue.EventCompleted))
		require.Equal(t, 3, rec.count(queue.EventRetried))
		require.Equal(t, 1, rec.count(queue.EventFailed))
		checkNoLeak(t, before)
	})

	t.Run("HeartbeatKeepsLongCall", func(t *testing.T) {
		// An extension can be lease-hb late before the lease ends: more
		// than a starved machine delays it (with a 150 ms lease, two in
		// ten runs under 8 CPU burners lost it).
		const lease, hb = 2 * time.Second, 100 * time.Millisecond
		b := realEngine(t, queue.Options{LeaseTimeout: lease})
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 1)
		before := runtime.NumGoroutine() // the store's own goroutines are running already
		rec := newRecorder(settledN(1))
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
				select { // past the end of the lease as given, however late the handler started
				case <-time.After(time.Until(l.ExpiresAt) + 2*hb):
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, OnEvent: rec.on})
		}()
		<-rec.done
		cancel()
		require.NoError(t, <-errc)
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusCompleted, it.Status)
		require.Equal(t, 1, it.Attempts)
		require.Zero(t, rec.count(queue.EventExpired))
		checkNoLeak(t, before)
	})

	t.Run("LeaseLostCancelsHandler", func(t *testing.T) {
		b := realEngine(t, queue.Options{LeaseTimeout: time.Second})
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 1)
		rec := newRecorder(func(evs []queue.Event) bool { return len(evs) >= 2 })
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		leased := make(chan queue.Lease, 1)
		cancelled := make(chan struct{})
		go func() {
			errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
				leased <- *l
				<-hctx.Done() // a hung handler: only the lost lease stops it
				close(cancelled)
				return hctx.Err()
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: 20 * time.Millisecond, OnEvent: rec.on})
		}()
		// The lease is settled elsewhere (a webhook, an operator): the next
		// heartbeat finds it lost and cancels the handler.
		l := <-leased
		require.NoError(t, b.eng.Fail(b.ctx, &l, queue.Failure{Note: "settled elsewhere"}))
		for _, ch := range []<-chan struct{}{rec.done, cancelled} {
			select {
			case <-ch:
			case <-time.After(30 * time.Second):
				t.Fatal("the lost lease did not stop the handler in 30 s")
			}
		}
		cancel()
		require.NoError(t, <-errc)
		require.Equal(t, 1, rec.count(queue.EventExpired))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, 1, it.RetryCount, "settled once, by the other party")
		require.Equal(t, "settled elsewhere", it.Notes, "the handler's result is ignored")
	})

	t.Run("ShutdownReleasesAfterGrace", func(t *testing.T) {
		b := realEngine(t, queue.Options{})
		p := b.pool(t, pool.Parallel, 2, 3)
		ids := b.add(t, p.UUID, 3)
		before := runtime.NumGoroutine() // the store's own goroutines are running already
		started := make(chan struct{}, 3)
		rec := newRecorder(nil)
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
				started <- struct{}{}
				<-hctx.Done() // ignores shutdown until its context is cancelled
				return hctx.Err()
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3, Grace: 100 * time.Millisecond, OnEvent: rec.on})
		}()
		<-started
		<-started
		start := time.Now()
		cancel()
		require.NoError(t, <-errc)
		require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond, "waited the grace period")
		require.Equal(t, 2, rec.count(queue.EventReleased))
		for _, id := range ids {
			it := b.item(t, p.UUID, id)
			require.Equal(t, pool.StatusPending, it.Status, "released items are due again")
			require.Zero(t, it.Attempts, "a release is not an attempt")
		}
		checkNoLeak(t, before)
	})

	t.Run("ShutdownWaitsForHandlers", func(t *testing.T) {
		b := realEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 2)
		started := make(chan struct{})
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
				close(started)
				time.Sleep(50 * time.Millisecond) // finishes within the grace period
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 5 * time.Second})
		}()
		<-started
		cancel()
		require.NoError(t, <-errc)
		require.Equal(t, pool.StatusCompleted, b.item(t, p.UUID, ids[0]).Status)
		require.Equal(t, pool.StatusPending, b.item(t, p.UUID, ids[1]).Status, "no new dispatch after shutdown")
	})

	t.Run("SeveralPools", func(t *testing.T) {
		b := realEngine(t, queue.Options{})
		// A cap of 2: with one worker, a pool is never at its cap while
		// its last item's settlement is being written (see below).
		p1 := b.pool(t, pool.Parallel, 2, 3)
		p2 := b.pool(t, pool.Parallel, 2, 3)
		b.add(t, p1.UUID, 20)
		b.add(t, p2.UUID, 20)
		var mu sync.Mutex
		var order []uuid.UUID
		rec := newRecorder(settledN(40))
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
				mu.Lock()
				order = append(order, l.PoolUUID)
				mu.Unlock()
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p1.UUID, p2.UUID, p1.UUID}, OnEvent: rec.on})
		}()
		<-rec.done
		cancel()
		require.NoError(t, <-errc)
		// One worker alternates between the pools: neither waits for the
		// other to drain (claimed from p1 first every time, p1 would take
		// all ten). The worker is free as soon as its handler returns, and
		// the next claim may run before the last settlement commits: with
		// serial pools (a cap of 1) that found the pool at its cap and took
		// the other's item, again and again on a loaded machine while one
		// settlement waited for the CPU (runs saw 6/4 and 3/7). A cap of 2
		// leaves room for one settlement not yet written.
		first := map[uuid.UUID]int{}
		for _, id := range order[:10] {
			first[id]++
		}
		require.GreaterOrEqual(t, first[p1.UUID], 4, order[:10])
		require.GreaterOrEqual(t, first[p2.UUID], 4, order[:10])
	})

	t.Run("EngineClosed", func(t *testing.T) {
		b := realEngine(t, queue.Options{PollInterval: 10 * time.Millisecond})
		p := b.pool(t, pool.FIFO, 1, 3)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error { return nil },
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
		}()
		require.Eventually(t, func() bool { return queue.Waiting(b.eng, p.UUID) == 1 }, 5*time.Second, time.Millisecond,
			"Work is waiting for items")
		require.NoError(t, b.eng.Close())
		require.ErrorIs(t, <-errc, queue.ErrClosed)
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		b := realEngine(t, queue.Options{})
		err := b.eng.Work(b.ctx, nil, queue.WorkOptions{Workers: -1, Grace: -1, Pools: []uuid.UUID{uuid.Nil}})
		require.ElementsMatch(t, []string{"handler", "pools[0]", "workers", "grace"}, fieldsOf(t, err))
		err = b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error { return nil }, queue.WorkOptions{})
		require.Equal(t, []string{"pools"}, fieldsOf(t, err))
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		b := realEngine(t, queue.Options{})
		err := b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Pools: []uuid.UUID{uuid.New()}})
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestFailureOf(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name string
		err  error
		want queue.Failure
	}{
		{"Plain", errors.New("busy"), queue.Failure{Note: "busy"}},
		{"RetryAt", queue.RetryAt(at, errors.New("later")), queue.Failure{RetryAt: at, Note: "later"}},
		{"RetryAtNil", queue.RetryAt(at, nil), queue.Failure{RetryAt: at, Note: "retry at 2026-05-01T12:00:00Z"}},
		// A zero time names no time: the note must not name year 1.
		{"RetryAtZeroNil", queue.RetryAt(time.Time{}, nil), queue.Failure{Note: "retry after the retry delay"}},
		{"Final", queue.Final(errors.New("wrong number")), queue.Failure{Final: true, Note: "wrong number"}},
		{"Wrapped", errors.Join(queue.Final(errors.New("x"))), queue.Failure{Final: true, Note: "x"}},
		// Final wins: a failure Fail would refuse (Final with RetryAt) would
		// leave the attempt to expire.
		{"FinalRetryAt", queue.RetryAt(at, queue.Final(errors.New("gone"))), queue.Failure{Final: true, Note: "gone"}},
		{"RetryAtFinal", queue.Final(queue.RetryAt(at, errors.New("gone"))), queue.Failure{Final: true, Note: "gone"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.Equal(t, c.want, queue.FailureOf(c.err))
		})
	}
}

func TestEngine_Work_ContextDoneAtStart(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{})
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 1)
	ctx, cancel := context.WithCancel(b.ctx)
	cancel()
	err := b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
		queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
	require.NoError(t, err, "a context that ended first is a normal shutdown")
	require.Equal(t, pool.StatusPending, b.item(t, p.UUID, ids[0]).Status, "nothing dispatched")
}

// TestEngine_Work_OneClaimPerAdd checks that idle workers do not stampede:
// with 16 workers idle on an empty pool, adding one item costs one claim,
// not a claim attempt by each idle worker, and a burst of items is claimed
// for several idle workers at once.
func TestEngine_Work_OneClaimPerAdd(t *testing.T) {
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	p, err := b.eng.CreatePool(b.ctx, pool.CreateParams{
		Name: "idle", Description: "no stampede", Type: pool.Parallel, MaxParallelItems: new(100),
	})
	require.NoError(t, err)
	started := make(chan uuid.UUID, 64)
	release := make(chan struct{})
	h := func(ctx context.Context, l *queue.Lease) error {
		started <- l.ContactUUID
		<-release
		return nil
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 16}) }()
	defer func() {
		close(release)
		cancel()
		require.NoError(t, <-done)
	}()
	await := func(n int) {
		for range n {
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				t.Fatal("an added item did not reach an idle worker")
			}
		}
	}

	// Between reading the counter after one handler's start and after the
	// next: the Add and the claim, and at most four looks that find the
	// pool empty — after each claim, and after each wake-up that raced a
	// claim — the first two of which may fall after the first reading, the
	// last two before the second. With every idle worker looking for
	// itself it was one look each: sixteen.
	_, err = b.eng.Add(b.ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	await(1)
	for i := range 5 {
		before := b.eng.Stats().Operations
		_, err = b.eng.Add(b.ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		await(1)
		require.LessOrEqual(t, b.eng.Stats().Operations-before, uint64(6), "operations for Add %d", i+2)
	}

	// Ten items at once reach ten idle workers in a claim or two.
	before := b.eng.Stats().Operations
	_, err = b.eng.Add(b.ctx, p.UUID, newItems(10)...)
	require.NoError(t, err)
	await(10)
	require.LessOrEqual(t, b.eng.Stats().Operations-before, uint64(7), "operations for a burst of 10")
}

// TestEngine_Work_EveryClaimedLeaseHasAWorker: with N workers and N due
// items, N handlers run — none of the claimed leases waits without a
// worker — even when the items arrive while others run.
func TestEngine_Work_EveryClaimedLeaseHasAWorker(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	p := b.pool(t, pool.Parallel, 10, 3)
	running := make(chan uuid.UUID, 8)
	release := make(chan struct{})
	h := func(ctx context.Context, l *queue.Lease) error {
		running <- l.ContactUUID
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() { done <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3}) }()
	defer func() {
		close(release)
		cancel()
		require.NoError(t, <-done)
	}()

	b.add(t, p.UUID, 1)
	<-running
	b.add(t, p.UUID, 2)
	for i := range 2 {
		select {
		case <-running:
		case <-time.After(3 * time.Second):
			t.Fatalf("handler %d of 3 never started; in flight: %d", i+2, b.counts(t, p.UUID)[pool.StatusProcessing])
		}
	}
	require.Equal(t, 3, b.counts(t, p.UUID)[pool.StatusProcessing])
}

// TestEngine_Work_LongCallsRunOnce: calls that outlive the lease they were
// given, kept alive by the heartbeat, are never handed to a second worker,
// and no handler starts on a lease that has ended.
func TestEngine_Work_LongCallsRunOnce(t *testing.T) {
	t.Parallel()
	// The lease lasts far longer than the heartbeat: an extension can be
	// lease-hb late before the lease ends, more than a starved machine
	// delays it (with a 300 ms lease, one in ten runs under 8 CPU burners
	// lost it and called a contact twice). Leases that do end have tests of
	// their own (_SlowOnEventBeforeStart, _LeaseEndStopsHandler).
	const lease, hb = 2 * time.Second, 100 * time.Millisecond
	const patience = 30 * time.Second // a bound for a loaded machine, not an expected time
	b := realEngine(t, queue.Options{LeaseTimeout: lease, RetryDelay: 10 * time.Millisecond})
	p := b.pool(t, pool.Parallel, 10, 3)
	ids := b.add(t, p.UUID, 1)
	var mu sync.Mutex
	calls := map[uuid.UUID]int{}
	var expiredAtStart atomic.Int32
	h := func(ctx context.Context, l *queue.Lease) error {
		if !time.Now().Before(l.ExpiresAt) {
			expiredAtStart.Add(1)
		}
		mu.Lock()
		calls[l.ContactUUID]++
		mu.Unlock()
		select { // past the end of the lease as given, however late the handler started
		case <-time.After(time.Until(l.ExpiresAt) + 2*hb):
		case <-ctx.Done():
		}
		return nil
	}
	rec := newRecorder(settledN(3))
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3, Heartbeat: hb, OnEvent: rec.on})
	}()
	require.Eventually(t, func() bool { return rec.count(queue.EventDispatched) == 1 }, patience, time.Millisecond)
	ids = append(ids, b.add(t, p.UUID, 2)...)
	select {
	case <-rec.done:
	case <-time.After(patience):
		t.Fatal("three calls did not end")
	}
	cancel()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range ids {
		require.Equal(t, 1, calls[id], "calls of contact %s", id)
		require.Equal(t, pool.StatusCompleted, b.item(t, p.UUID, id).Status)
	}
	require.Zero(t, expiredAtStart.Load(), "handlers started on an ended lease")
	require.Zero(t, rec.count(queue.EventExpired))
}

// TestEngine_Work_HandlersAtMostWorkers: a worker is free again as soon as
// its handler returns, while its settlement is written; with short
// handlers (so settlements and claims overlap all the time) no
// more than Workers handlers ever run at once, and every item is handled
// exactly once.
func TestEngine_Work_HandlersAtMostWorkers(t *testing.T) {
	t.Parallel()
	const workers, items = 4, 300
	b := realEngine(t, queue.Options{})
	p := b.pool(t, pool.Parallel, 100, 3)
	b.add(t, p.UUID, items)
	var (
		now, peak atomic.Int64
		mu        sync.Mutex
		calls     = map[uuid.UUID]int{}
	)
	h := func(ctx context.Context, l *queue.Lease) error {
		n := now.Add(1)
		defer now.Add(-1)
		for {
			m := peak.Load()
			if n <= m || peak.CompareAndSwap(m, n) {
				break
			}
		}
		mu.Lock()
		calls[l.ContactUUID]++
		mu.Unlock()
		time.Sleep(200 * time.Microsecond) // long enough for a claim to overtake it
		return nil
	}
	rec := newRecorder(settledN(items))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: workers, OnEvent: rec.on})
	}()
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("only %d of %d items settled", rec.count(queue.EventCompleted), items)
	}
	cancel()
	require.NoError(t, <-errc)
	require.LessOrEqual(t, peak.Load(), int64(workers), "handlers running at once")
	require.Len(t, calls, items)
	for c, n := range calls {
		require.Equal(t, 1, n, "calls of contact %s", c)
	}
	require.Equal(t, items, b.counts(t, p.UUID)[pool.StatusCompleted])
}

// TestEngine_Work_Heartbeat: the heartbeat keeps a long call's lease
// however late its handler started, and after an extension that failed.
func TestEngine_Work_Heartbeat(t *testing.T) {
	t.Parallel()
	const lease, hb = time.Second, 500 * time.Millisecond
	// RetriesAFailedExtension keeps the same proportions, scaled up: its
	// margin, lease-hb-hb/4, is the time a loaded machine has to write
	// the second try (with 375 ms, one in ten runs under 8 CPU burners
	// lost the lease).
	const slowLease, slowHB = 4 * time.Second, 2 * time.Second
	long := func(d time.Duration) queue.Handler {
		return func(ctx context.Context, l *queue.Lease) error {
			select {
			case <-time.After(d):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}

	// A handler that starts late (on a loaded machine its goroutine runs
	// late; here OnEvent is slow): the time since the claim counts, so the
	// first extension is due Heartbeat after the claim, not Heartbeat after
	// the handler started, which would be past the lease's end.
	t.Run("CountsFromTheClaim", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{LeaseTimeout: lease})
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 1)
		rec := newRecorder(settledN(1))
		const late = lease - hb + 100*time.Millisecond
		on := func(ev queue.Event) {
			if ev.Kind == queue.EventDispatched {
				time.Sleep(late)
			}
			rec.on(ev)
		}
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			// Two extensions: the late first one, and the next, Heartbeat after it.
			errc <- b.eng.Work(ctx, long(lease+200*time.Millisecond),
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, OnEvent: on})
		}()
		<-rec.done
		cancel()
		require.NoError(t, <-errc)
		require.Zero(t, rec.count(queue.EventExpired), "lease lost")
		require.Zero(t, rec.count(queue.EventError))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusCompleted, it.Status)
		require.Equal(t, 1, it.Attempts)
	})

	// An extension that fails (the database busy, a connection dropped) is
	// tried again a quarter of Heartbeat later, not a whole Heartbeat, which
	// would be the lease's end.
	t.Run("RetriesAFailedExtension", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{LeaseTimeout: slowLease})
		p := b.pool(t, pool.FIFO, 1)
		res, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		require.Equal(t, 1, res.ContactsAdded)
		transient := errors.New("transient")
		rec := newRecorder(settledN(2)) // the failed extension, then the completion
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
				b.st.failNext(transient) // the next write is the first extension: nothing else runs
				return long(slowLease+slowHB/4)(ctx, l)
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: slowHB, OnEvent: rec.on})
		}()
		<-rec.done
		cancel()
		require.NoError(t, <-errc)
		require.Zero(t, rec.count(queue.EventExpired), "lease lost")
		require.Equal(t, 1, rec.count(queue.EventError))
		require.Equal(t, 1, rec.count(queue.EventCompleted))
		rec.mu.Lock()
		for _, ev := range rec.events {
			if ev.Kind == queue.EventError {
				require.ErrorIs(t, ev.Err, transient)
			}
		}
		rec.mu.Unlock()
	})
}

// TestEngine_Work_SettlementRetried: a call that went through is not
// called again because its settlement failed for a moment: the runner
// writes the result again while the lease lasts, and gives up at the end
// of Work's grace rather than hold the shutdown.
func TestEngine_Work_SettlementRetried(t *testing.T) {
	t.Parallel()
	const hb = 40 * time.Millisecond

	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "Complete", true: "Fail"}[fail]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := heldEngine(t, queue.Options{LeaseTimeout: time.Minute})
			p := b.pool(t, pool.FIFO, 1)
			c := uuid.New()
			_, err := b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: c})
			require.NoError(t, err)
			var calls atomic.Int32
			var settleErrors atomic.Int32
			rec := newRecorder(func(evs []queue.Event) bool {
				for _, ev := range evs {
					if ev.Kind == queue.EventCompleted || ev.Kind == queue.EventRetried {
						return true
					}
				}
				return false
			})
			on := func(ev queue.Event) {
				// The settlement has failed three times: the database is back.
				if ev.Kind == queue.EventError && ev.Lease.ContactUUID == c && settleErrors.Add(1) == 3 {
					b.st.failing.Store(false)
				}
				rec.on(ev)
			}
			ctx, cancel := context.WithCancel(b.ctx)
			errc := make(chan error, 1)
			go func() {
				errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
					calls.Add(1)
					b.st.failing.Store(true) // from now on every write fails, the settlement's included
					if fail {
						return errors.New("busy")
					}
					return nil
				}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, OnEvent: on})
			}()
			select {
			case <-rec.done:
			case <-time.After(10 * time.Second):
				t.Fatal("the settlement was not written")
			}
			cancel()
			require.NoError(t, <-errc)
			require.Equal(t, int32(1), calls.Load(), "calls")
			require.Equal(t, int32(3), settleErrors.Load(), "settlements failed")
			require.Zero(t, rec.count(queue.EventExpired))
			it, err := b.eng.Item(b.ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, 1, it.Attempts)
			if fail {
				require.Equal(t, pool.StatusRetrying, it.Status)
				require.Equal(t, "busy", it.Notes)
			} else {
				require.Equal(t, pool.StatusCompleted, it.Status)
			}
		})
	}

	// The database stays unavailable past the lease's end: the settlement
	// is given up when the lease would end before the next try (the expiry
	// will count the attempt), so a shutdown does not wait for it.
	t.Run("GivesUpAtLeaseEnd", func(t *testing.T) {
		t.Parallel()
		const lease = 400 * time.Millisecond
		b := heldEngine(t, queue.Options{LeaseTimeout: lease})
		p := b.pool(t, pool.FIFO, 1)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		handled := make(chan struct{})
		go func() {
			errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
				b.st.failing.Store(true)
				close(handled)
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, Grace: time.Minute})
		}()
		<-handled
		time.Sleep(2 * lease)
		start := time.Now()
		cancel()
		require.NoError(t, <-errc)
		require.Less(t, time.Since(start), 30*time.Second, "Work waited for a settlement past its lease")
		b.st.failing.Store(false)
	})

	// The database stays unavailable: Work still returns at the end of its
	// grace, not at the lease's end (a minute).
	t.Run("GivesUpAtGrace", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{LeaseTimeout: time.Minute})
		p := b.pool(t, pool.FIFO, 1)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		rec := newRecorder(func(evs []queue.Event) bool { // two failed tries of the settlement
			n := 0
			for _, ev := range evs {
				if ev.Kind == queue.EventError && ev.Lease.ContactUUID != uuid.Nil {
					n++
				}
			}
			return n >= 2
		})
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
				b.st.failing.Store(true)
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, Grace: 200 * time.Millisecond, OnEvent: rec.on})
		}()
		select {
		case <-rec.done:
		case <-time.After(10 * time.Second):
			t.Fatal("the settlement was not tried again")
		}
		start := time.Now()
		cancel()
		require.NoError(t, <-errc)
		require.Less(t, time.Since(start), 10*time.Second, "Work returned at its grace")
		require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "Work waited its grace")
		b.st.failing.Store(false)
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 1, d.StatusCounts[pool.StatusProcessing], "left to its lease")
	})
}

// TestEngine_Work_LeaseEndStopsHandler: when the lease cannot be extended
// (the database unreachable from this node, or an extension that hangs),
// the handler is stopped at the lease's end as last extended: past it, the
// item may be another worker's, on this node or another.
func TestEngine_Work_LeaseEndStopsHandler(t *testing.T) {
	t.Parallel()
	const lease, hb = time.Second, 200 * time.Millisecond
	for _, name := range []string{"ExtensionsFail", "ExtensionHangs"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := heldEngine(t, queue.Options{LeaseTimeout: lease})
			p := b.pool(t, pool.FIFO, 1)
			_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
			require.NoError(t, err)
			rec := newRecorder(nil)
			held := make(chan func(), 1) // releases the hanging extension
			defer func() {
				b.st.failing.Store(false)
				select {
				case release := <-held:
					release()
				default:
				}
			}()
			type stopped struct {
				after time.Duration
				err   error
			}
			result := make(chan stopped, 1)
			ctx, cancel := context.WithCancel(b.ctx)
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
					if name == "ExtensionsFail" {
						b.st.failing.Store(true)
					} else {
						_, release := b.st.holdNext(t)
						held <- release
					}
					select {
					case <-hctx.Done():
						result <- stopped{time.Until(l.ExpiresAt), hctx.Err()}
					case <-time.After(10 * time.Second):
						result <- stopped{time.Until(l.ExpiresAt), nil}
					}
					return nil
				}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, OnEvent: rec.on})
			}()
			r := <-result
			require.Error(t, r.err, "the handler ran on past its lease")
			require.LessOrEqual(t, r.after, time.Duration(0), "stopped before the lease ended")
			require.Greater(t, r.after, -lease/2, "stopped long after the lease ended")
			b.st.failing.Store(false)
			select {
			case release := <-held:
				release()
			default:
			}
			cancel()
			require.NoError(t, <-errc)
			require.Equal(t, 1, rec.count(queue.EventExpired))
			require.Zero(t, rec.count(queue.EventCompleted), "the result of a lost lease is ignored")
		})
	}
}

// TestEngine_Work_PoolDeleted: a pool deleted while Work runs on it is
// reported once and dropped; the other pools go on.
func TestEngine_Work_PoolDeleted(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: 10 * time.Millisecond})
	gone := b.pool(t, pool.FIFO, 1, 3)
	kept := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, kept.UUID, 1)
	rec := newRecorder(settledN(1))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Pools: []uuid.UUID{gone.UUID, kept.UUID}, OnEvent: rec.on})
	}()
	<-rec.done
	require.NoError(t, b.eng.DeletePool(b.ctx, gone.UUID))
	time.Sleep(300 * time.Millisecond) // thirty polls
	ids := b.add(t, kept.UUID, 3)
	require.Eventually(t, func() bool {
		return b.counts(t, kept.UUID)[pool.StatusCompleted] == 4
	}, 10*time.Second, 5*time.Millisecond, "the other pool goes on")
	cancel()
	require.NoError(t, <-errc)
	require.Len(t, ids, 3)
	require.Equal(t, 1, rec.count(queue.EventError), "the deleted pool reported once")
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, ev := range rec.events {
		if ev.Kind == queue.EventError {
			require.ErrorIs(t, ev.Err, store.ErrNotFound)
		}
	}
}

// TestEngine_Work_StopsAtGrace: the handlers still running when Work's
// grace ends are cancelled, and their items written only once they have
// returned, as their results say.
func TestEngine_Work_StopsAtGrace(t *testing.T) {
	t.Parallel()
	// run starts Work over p with one worker per item, waits until every
	// item's handler has started, stops Work, and returns once Work has;
	// hb is Work's Heartbeat (0: the default).
	run := func(t *testing.T, b *testBundle, p uuid.UUID, n int, hb time.Duration, h queue.Handler) *recorder {
		t.Helper()
		started := make(chan struct{}, n)
		rec := newRecorder(nil)
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
				started <- struct{}{}
				return h(hctx, l)
			}, queue.WorkOptions{Pools: []uuid.UUID{p}, Workers: n, Heartbeat: hb, Grace: queue.MinGrace, OnEvent: rec.on})
		}()
		for range n {
			select {
			case <-started:
			case err := <-errc:
				t.Fatalf("Work returned before the handlers started: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("the handlers did not start")
			}
		}
		cancel()
		require.NoError(t, <-errc)
		return rec
	}

	// A handler that takes a while to hang up: its item stays in flight,
	// its lease kept alive for longer than the lease, and nobody else can
	// claim it meanwhile; once it returns its context's error, the item is
	// given back.
	t.Run("NothingGivenBackWhileTheHandlerRuns", func(t *testing.T) {
		t.Parallel()
		// An extension can be lease-hb late before the lease ends: more
		// than a starved machine delays it (with a 300 ms lease, one in ten
		// runs under 8 CPU burners lost it, and counted an attempt).
		const lease, hb = 2 * time.Second, 100 * time.Millisecond
		b := realEngine(t, queue.Options{LeaseTimeout: lease})
		p := b.pool(t, pool.Parallel, 2, 3)
		ids := b.add(t, p.UUID, 1)
		var during []string
		rec := run(t, b, p.UUID, 1, hb, func(hctx context.Context, l *queue.Lease) error {
			given := l.ExpiresAt // the lease's end as given, which the hang-up outlasts
			<-hctx.Done()
			for end := given.Add(2 * hb); time.Now().Before(end); time.Sleep(hb) {
				it, err := b.eng.Item(b.ctx, p.UUID, ids[0])
				_, derr := b.eng.TryDequeue(b.ctx, p.UUID)
				during = append(during, fmt.Sprintf("%s, %v, %v", it.Status, err, derr))
			}
			return hctx.Err()
		})
		for _, s := range during {
			require.Equal(t, "Processing, <nil>, "+queue.ErrEmpty.Error(), s, "while the handler hangs up: %q", during)
		}
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusPending, it.Status)
		require.Zero(t, it.Attempts, "a call that never connected is not an attempt")
		require.Equal(t, 1, rec.count(queue.EventReleased))
		require.Zero(t, rec.count(queue.EventExpired), "the lease lapsed while the handler ran")
	})

	// A handler that finishes its call when asked to stop completes its
	// item: the call went through, and must not be made again.
	t.Run("CallThatEndedWellCompletes", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 1)
		rec := run(t, b, p.UUID, 1, 0, func(hctx context.Context, l *queue.Lease) error {
			<-hctx.Done()
			return nil // the contact said goodbye
		})
		require.Equal(t, pool.StatusCompleted, b.item(t, p.UUID, ids[0]).Status)
		require.Equal(t, 1, rec.count(queue.EventCompleted))
		require.Zero(t, rec.count(queue.EventReleased))
	})

	// A call that had connected, cut short, is an attempt; one that had
	// not is given back (its context's error wrapped or not); a handler's
	// own error, or a Final around its context's, is a failure as at any
	// other time.
	t.Run("ConnectedCallIsAnAttempt", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{RetryDelay: time.Hour})
		p := b.pool(t, pool.Parallel, 5, 3)
		ids := b.add(t, p.UUID, 5)
		connected, dialling, wrapped, own, final := ids[0], ids[1], ids[2], ids[3], ids[4]
		rec := run(t, b, p.UUID, 5, 0, func(hctx context.Context, l *queue.Lease) error {
			if l.ContactUUID == connected { // recorded even if the grace ends meanwhile (see Handler)
				if err := b.eng.MarkInCall(context.WithoutCancel(hctx), l); err != nil {
					return err
				}
			}
			<-hctx.Done()
			switch l.ContactUUID {
			case wrapped:
				return fmt.Errorf("dialling: %w", hctx.Err())
			case own:
				return errors.New("hung up")
			case final:
				return queue.Final(fmt.Errorf("number withdrawn: %w", hctx.Err()))
			}
			return hctx.Err()
		})

		it := b.item(t, p.UUID, connected)
		require.Equal(t, pool.StatusRetrying, it.Status, "the contact picked up: an attempt")
		require.Equal(t, 1, it.Attempts)
		require.Equal(t, 1, it.RetryCount)
		require.True(t, it.NextRetryAt.After(time.Now().Add(50*time.Minute)), "retried after the retry delay, not at once")
		require.Contains(t, it.Notes, "stopped at shutdown")
		for _, id := range []uuid.UUID{dialling, wrapped} {
			it := b.item(t, p.UUID, id)
			require.Equal(t, pool.StatusPending, it.Status)
			require.Zero(t, it.Attempts)
		}
		it = b.item(t, p.UUID, own)
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, 1, it.Attempts)
		require.Equal(t, "hung up", it.Notes)
		require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, final).Status, "the handler's Final stands")
		require.Equal(t, 2, rec.count(queue.EventReleased))
		require.Equal(t, 2, rec.count(queue.EventRetried))
	})
}

// TestEngine_Work_OptedOutDuringCall: a contact who opts out during a call
// that then fails is Skipped under a rule that removes opted-out contacts,
// and the runner reports it as failed for good, not as retried.
func TestEngine_Work_OptedOutDuringCall(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{})
	p, _ := b.governed(t, pool.Parallel, "UTC", campaign.CreateRuleParams{
		StartTime: new("00:00"), EndTime: new("23:59"), RemoveOnOptOut: new(true),
	})
	c := b.addIn(t, p.UUID, "")
	rec := newRecorder(settledN(1))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(hctx context.Context, l *queue.Lease) error {
			if _, err := b.eng.OptOut(hctx, l.ContactUUID); err != nil {
				return err
			}
			return errors.New("the contact asked not to be called again")
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: rec.on})
	}()
	<-rec.done
	cancel()
	require.NoError(t, <-errc)
	require.Equal(t, pool.StatusSkipped, b.item(t, p.UUID, c).Status)
	require.Equal(t, 1, rec.count(queue.EventFailed))
	require.Zero(t, rec.count(queue.EventRetried))
}

// TestEngine_Work_RetryAtTooFar: a handler's RetryAt further ahead than
// Fail accepts fails its item for good. Left unwritten, the attempt
// expired and was retried after RetryDelay: the contact called again
// almost at once, though the handler had asked for much later.
func TestEngine_Work_RetryAtTooFar(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{LeaseTimeout: 300 * time.Millisecond, RetryDelay: 10 * time.Millisecond})
	p := b.pool(t, pool.FIFO, 1, 3)
	id := b.add(t, p.UUID, 1)[0]
	var calls atomic.Int32
	rec := newRecorder(settledN(1))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			calls.Add(1)
			return queue.RetryAt(time.Now().Add(queue.MaxRetryDelay+24*time.Hour), errors.New("call back next year"))
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: rec.on})
	}()
	select {
	case <-rec.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the attempt was never settled")
	}
	time.Sleep(500 * time.Millisecond) // past the lease: an unwritten attempt would have expired
	cancel()
	require.NoError(t, <-errc)
	require.EqualValues(t, 1, calls.Load(), "the contact was called again")
	require.Equal(t, 1, rec.count(queue.EventFailed))
	require.Zero(t, rec.count(queue.EventError))
	it := b.item(t, p.UUID, id)
	require.Equal(t, pool.StatusFailed, it.Status)
	require.Equal(t, 1, it.Attempts)
	require.Contains(t, it.Notes, "failed for good: retry time")
	require.Contains(t, it.Notes, "call back next year")
}

// TestWork_OnADraftCampaignDialsNothing: WorkOptions.Campaigns
// says a campaign's pools are claimed from while it is In Process. A pool
// attached to a Draft campaign A and to a running campaign B dispatches
// (under B); Work asked to work A alone must not dial it. The existing
// tests start the campaign Work is given, so nothing checked the status
// filter of runner.refresh.
func TestWork_OnADraftCampaignDialsNothing(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: 20 * time.Millisecond})
	p := b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p.UUID, 2)
	a := b.campaignOf(t, uuid.Nil, p.UUID)
	running := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, running.UUID)
	require.NoError(t, err)
	rec := newRecorder(nil)
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Campaigns: []uuid.UUID{a.UUID}, OnEvent: rec.on})
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	require.NoError(t, <-done)
	require.Zero(t, rec.count(queue.EventDispatched), "Work on a Draft campaign dialled the pool of another, running one")
}
