package queue_test

// Regression tests for the defects found in the machinery between the
// domain and SQL (the runner's hand-off, group commit, wake-ups, bounds),
// each through the public API, with a wrapping store.Store where the test
// must hold or break a write.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/lockholder"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// heldStore wraps a store: once armed, its next Write waits before it
// starts until released (hold), panics (panicNext) or fails without
// running (failNext).
type heldStore struct {
	store.Store

	mu      sync.Mutex
	hold    chan struct{} // the next Write waits until it is closed
	entered chan struct{} // closed when that Write is waiting
	inside  bool          // it waits inside its transaction, once fn has run
	panics  bool          // the next Write panics
	fails   error         // the next Write returns it
	failing atomic.Bool   // every Write fails, until it is cleared

	staleWake atomic.Bool // NextWake answers an hour in the past
}

// holdNext makes the next Write wait until the returned release is called,
// and returns a channel closed once that Write is waiting. Release may be
// called more than once, and is called when tb's test ends if it was not
// before: a check that fails between hold and release would otherwise
// leave the Write held, and the test's cleanup, the engine's Close that
// waits for it, hanging the whole package. Cleanups run last in, first
// out, so this one runs before the Close of an engine made earlier in the
// test (heldEngine, openEngine) or by a parent test.
func (s *heldStore) holdNext(tb testing.TB) (entered <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.entered = make(chan struct{}), make(chan struct{})
	h := s.hold
	var once sync.Once
	release = func() { once.Do(func() { close(h) }) }
	tb.Cleanup(release)
	return s.entered, release
}

// holdInside is holdNext for a Write that waits inside its transaction,
// once its fn has run and its commit has begun: group commit's operations
// have started, and a caller whose context ends then still gets its
// operation's result (see package groupcommit), where with holdNext they
// wait to start, and a caller that leaves abandons its operation. The
// Write runs on without its context's end (an operation alone in its
// transaction is rolled back when its caller is cancelled before its
// COMMIT is sent, not once it is: that is the moment held here).
func (s *heldStore) holdInside(tb testing.TB) (entered <-chan struct{}, release func()) {
	entered, release = s.holdNext(tb)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inside = true
	return entered, release
}

func (s *heldStore) panicNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.panics = true
}

// errUnavailable is what a heldStore's writes return while failing is set.
var errUnavailable = errors.New("heldStore: the database is unavailable")

// failNext makes the next Write return err without running.
func (s *heldStore) failNext(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = err
}

func (s *heldStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	hold, entered, inside, panics, fails := s.hold, s.entered, s.inside, s.panics, s.fails
	s.hold, s.entered, s.inside, s.panics, s.fails = nil, nil, false, false, nil
	s.mu.Unlock()
	if hold != nil && inside {
		return s.Store.Write(context.WithoutCancel(ctx), func(tx store.Tx) error {
			err := fn(tx)
			close(entered)
			<-hold
			return err
		})
	}
	if hold != nil {
		close(entered)
		<-hold
	}
	if panics {
		panic("heldStore: a write panicked")
	}
	if fails != nil {
		return fails
	}
	if s.failing.Load() {
		return errUnavailable
	}
	return s.Store.Write(ctx, fn)
}

func (s *heldStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	if !s.staleWake.Load() {
		return s.Store.Read(ctx, fn)
	}
	return s.Store.Read(ctx, func(tx store.Tx) error { return fn(staleWakeTx{tx}) })
}

// staleWakeTx says something in the pool changes an hour ago: a bound that
// is wrong, never caught up by a Dequeue that finds nothing.
type staleWakeTx struct{ store.Tx }

func (staleWakeTx) NextWake(context.Context, uuid.UUID) (time.Time, bool, error) {
	return time.Now().Add(-time.Hour), true, nil
}

// PoolWakes gives the same wrong bound: PoolWake.Next is NextWake's
// answer (a blocked Dequeue reads it at its polls).
func (tx staleWakeTx) PoolWakes(ctx context.Context, pools ...uuid.UUID) (map[uuid.UUID]store.PoolWake, error) {
	wakes, err := tx.Tx.PoolWakes(ctx, pools...)
	for id, w := range wakes {
		w.Next, w.HasNext = time.Now().Add(-time.Hour), true
		wakes[id] = w
	}
	return wakes, err
}

type heldBundle struct {
	ctx  context.Context
	path string
	st   *heldStore
	eng  *queue.Engine
}

// heldEngine returns an engine on the real clock over a heldStore on a
// fresh file.
func heldEngine(t *testing.T, opts queue.Options) *heldBundle {
	t.Helper()
	path := filepath.Join(t.TempDir(), "held.db")
	st := &heldStore{Store: openFileStore(t, path)}
	eng, err := queue.New(st, opts)
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return &heldBundle{ctx: context.Background(), path: path, st: st, eng: eng}
}

func (b *heldBundle) pool(t *testing.T, typ pool.Type, maxParallel int) pool.Pool {
	t.Helper()
	p, err := b.eng.CreatePool(b.ctx, pool.CreateParams{
		Name: "machinery", Description: "machinery tests", Type: typ, MaxParallelItems: &maxParallel,
	})
	require.NoError(t, err)
	return p
}

// TestEngine_WritePanicReleasesEveryone: a panic out of the store's Write
// gives every operation of its batch an error, never hangs them, and the
// next write works.
func TestEngine_WritePanicReleasesEveryone(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{})
	p := b.pool(t, pool.Parallel, 10)
	_, err := b.eng.Add(b.ctx, p.UUID, newItems(3)...)
	require.NoError(t, err)

	// A transaction held open, operations queued behind it, and the
	// transaction that runs them panics.
	entered, release := b.st.holdNext(t)
	added, errs := make(chan error, 1), make(chan error, 8)
	call := func(errs chan error, f func() error) {
		go func() {
			defer func() {
				if v := recover(); v != nil {
					errs <- fmt.Errorf("the caller panicked: %v", v)
				}
			}()
			errs <- f()
		}()
	}
	// The Add's result has a channel of its own: its caller may send it
	// after the batch that panicked has sent theirs.
	call(added, func() error { _, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...); return err })
	<-entered
	for range 3 {
		call(errs, func() error { _, err := b.eng.TryDequeue(b.ctx, p.UUID); return err })
	}
	require.Eventually(t, func() bool { return queue.Queued(b.eng) == 3 }, 5*time.Second, time.Millisecond)
	b.st.panicNext()
	release()

	require.NoError(t, <-added, "the held Add ran before the panic")
	for i := range 3 {
		select {
		case err := <-errs:
			require.Error(t, err, "operation %d of the batch that panicked", i)
			require.NotContains(t, err.Error(), "the caller panicked", "a store's panic is an error, not a panic in the caller")
		case <-time.After(5 * time.Second):
			t.Fatalf("operation %d of the batch that panicked never returned", i)
		}
	}
	// Nothing of the panicked batch was written; the next write works.
	d, err := b.eng.Pool(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 0, d.StatusCounts[pool.StatusProcessing])
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	l, err := b.eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err, "a write after the panic")
	require.NoError(t, b.eng.Complete(ctx, l, "after the panic"))
}

// busyFileEngine returns the path of a new SQLite file and an engine with
// opts over a store of it whose busy timeout is 20 ms, for tests where
// another process holds the file's write lock past it.
func busyFileEngine(t *testing.T, opts queue.Options) (string, *queue.Engine) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "busy.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{BusyTimeout: 20 * time.Millisecond, CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return path, openEngine(t, st, opts)
}

// TestEngine_BlockedDequeueOutwaitsTheBusyTimeout: a blocked Dequeue,
// DequeueN or DequeueCampaign behind another process that holds the file's
// write lock longer than the store's busy timeout (a large import, an
// upgrade's migration) goes on waiting while its context allows, and gets
// its item once the lock is given back. A single write still fails, with
// store.ErrLockTimeout.
func TestEngine_BlockedDequeueOutwaitsTheBusyTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, eng := busyFileEngine(t, queue.Options{})
	var err error
	one := 1
	pools := make([]pool.Pool, 3)
	for i := range pools {
		pools[i], err = eng.CreatePool(ctx, pool.CreateParams{Name: "busy pool", Description: "d", Type: pool.FIFO, MaxParallelItems: &one})
		require.NoError(t, err)
		_, err = eng.Add(ctx, pools[i].UUID, newItems(1)...)
		require.NoError(t, err)
	}
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "busy campaign"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, pools[2].UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	unlock := lockholder.Hold(t, path)
	_, err = eng.TryDequeue(ctx, pools[0].UUID)
	require.ErrorIs(t, err, store.ErrLockTimeout, "one write fails at the busy timeout")

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	got := make(chan error, 3)
	go func() { _, err := eng.Dequeue(wctx, pools[0].UUID); got <- err }()
	go func() { _, err := eng.DequeueN(wctx, pools[1].UUID, 1); got <- err }()
	go func() { _, err := eng.DequeueCampaign(wctx, c.UUID); got <- err }()
	time.Sleep(400 * time.Millisecond) // twenty busy timeouts
	unlock()
	for range 3 {
		require.NoError(t, <-got)
	}
}

// TestEngine_QueuedCallerLeavesAtItsDeadline: an operation waiting behind
// another caller's transaction, or behind another process's lock on the
// file, returns its context's error as soon as its context ends, and is
// never run.
func TestEngine_QueuedCallerLeavesAtItsDeadline(t *testing.T) {
	t.Parallel()

	t.Run("BehindATransaction", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		entered, release := b.st.holdNext(t)
		time.AfterFunc(3*time.Second, release) // a regression fails below rather than hang
		addDone := make(chan error, 1)
		go func() { _, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...); addDone <- err }()
		<-entered

		ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = b.eng.TryDequeue(ctx, p.UUID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second, "held until the other transaction ended")

		release()
		require.NoError(t, <-addDone)
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 0, d.StatusCounts[pool.StatusProcessing], "the abandoned dequeue never ran")
	})

	t.Run("BehindAnotherProcess", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)

		unlock := lockholder.Hold(t, b.path) // another process's write lock

		ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = b.eng.TryDequeue(ctx, p.UUID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second, "held for the busy timeout")

		unlock()
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err, "once the lock is gone")
		require.Equal(t, 1, l.Attempt, "the abandoned dequeue never ran")
	})
}

// TestEngine_WaitersOfUnknownPools: a Dequeue on a pool that does not
// exist, or no longer does, leaves nothing behind.
func TestEngine_WaitersOfUnknownPools(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{})
	for range 100 {
		_, err := b.eng.Dequeue(b.ctx, uuid.New())
		require.ErrorIs(t, err, store.ErrNotFound)
		_, err = b.eng.DequeueN(b.ctx, uuid.New(), 3)
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	p := b.pool(t, pool.FIFO, 1)
	errc := make(chan error, 1)
	go func() { _, err := b.eng.Dequeue(b.ctx, p.UUID); errc <- err }()
	require.Eventually(t, func() bool { return queue.Waiting(b.eng, p.UUID) == 1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, b.eng.DeletePool(b.ctx, p.UUID))
	require.ErrorIs(t, <-errc, store.ErrNotFound, "the blocked Dequeue learns that its pool is gone")
	require.Equal(t, 0, queue.WaitingPools(b.eng), "no waiter entry is left")
}

// TestEngine_WakeOnlyWhenSomethingCanGo: a Dequeue blocked on a full pool
// is not woken by writes that free no slot and make nothing due (Extend,
// MarkInCall, a lost lease's settlement, a skip, a new priority); a
// Complete wakes it and it claims.
func TestEngine_WakeOnlyWhenSomethingCanGo(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour})
	p := b.pool(t, pool.FIFO, 1)
	items := newItems(3)
	_, err := b.eng.Add(b.ctx, p.UUID, items...)
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	stale := *l
	stale.Token++ // a lease that is not the item's

	type result struct {
		l   *queue.Lease
		err error
	}
	got := make(chan result, 1)
	before := b.eng.Stats().Operations
	go func() {
		l, err := b.eng.Dequeue(b.ctx, p.UUID)
		got <- result{l, err}
	}()
	// Blocked: subscribed, and its first look (one operation) done.
	require.Eventually(t, func() bool {
		return queue.Waiting(b.eng, p.UUID) == 1 && b.eng.Stats().Operations == before+1
	}, 5*time.Second, time.Millisecond)
	before++

	quiet := []func() error{
		func() error { return b.eng.Extend(b.ctx, l, time.Hour) },
		func() error { return b.eng.MarkInCall(b.ctx, l) },
		func() error { return b.eng.Extend(b.ctx, l, time.Hour) },
		func() error {
			if err := b.eng.Complete(b.ctx, &stale, ""); !errors.Is(err, queue.ErrLeaseLost) {
				return fmt.Errorf("stale complete: %v", err)
			}
			return nil
		},
		func() error { _, err := b.eng.SetPriority(b.ctx, p.UUID, items[2].ContactUUID, 7); return err },
		func() error { _, err := b.eng.Skip(b.ctx, p.UUID, items[2].ContactUUID, "not today"); return err },
	}
	for i, f := range quiet {
		require.NoError(t, f(), "write %d", i)
	}
	require.NoError(t, b.eng.Complete(b.ctx, l, "done"))
	next := <-got
	require.NoError(t, next.err)
	require.Equal(t, items[1].ContactUUID, next.l.ContactUUID)
	// The quiet writes, the Complete and the one claim that follows it:
	// every dequeue attempt beyond that was a needless wake-up.
	require.Equal(t, uint64(len(quiet)+2), b.eng.Stats().Operations-before,
		"operations between the waiter blocking and its claim")
}

// TestEngine_StaleWakeBoundHasAFloor: a store whose next-wake time is
// wrong (in the past, never caught up) does not turn a blocked Dequeue into
// a write every millisecond.
func TestEngine_StaleWakeBoundHasAFloor(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{PollInterval: time.Second})
	p := b.pool(t, pool.FIFO, 1)
	b.st.staleWake.Store(true)
	before := b.eng.Stats().Operations
	ctx, cancel := context.WithTimeout(b.ctx, 500*time.Millisecond)
	defer cancel()
	_, err := b.eng.Dequeue(ctx, p.UUID)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	tries := b.eng.Stats().Operations - before
	require.GreaterOrEqual(t, tries, uint64(2), "it does look again at the (wrong) wake time")
	require.LessOrEqual(t, tries, uint64(20), "dequeue attempts in 500 ms with a wake time always past")
}

// TestEngine_ClaimsRunLate: in a group-commit batch, claims run after the
// other callers' writes, so that nothing long (a big Add, a wait for
// another node's lock) comes between what a claim decides at the clock
// and the commit. Seen here as a claim queued before an Add in one batch
// that finds the Add's item.
func TestEngine_ClaimsRunLate(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{})
	p := b.pool(t, pool.FIFO, 1)
	q := b.pool(t, pool.FIFO, 1)
	entered, release := b.st.holdNext(t)
	heldDone, claimed, added := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() { _, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...); heldDone <- err }()
	<-entered
	// An empty pool q: its claim queued first, the Add of its item second.
	go func() { _, err := b.eng.TryDequeue(b.ctx, q.UUID); claimed <- err }()
	require.Eventually(t, func() bool { return queue.Queued(b.eng) == 1 }, 5*time.Second, time.Millisecond)
	go func() { _, err := b.eng.Add(b.ctx, q.UUID, newItems(1)...); added <- err }()
	require.Eventually(t, func() bool { return queue.Queued(b.eng) == 2 }, 5*time.Second, time.Millisecond)
	release()
	require.NoError(t, <-heldDone)
	require.NoError(t, <-added)
	require.NoError(t, <-claimed, "the claim ran before the Add of its batch")
}

// TestEngine_Bounds: durations and times beyond what a store can hold are
// rejected at the API with a field error, before anything is written.
func TestEngine_Bounds(t *testing.T) {
	t.Parallel()
	const forever = time.Duration(math.MaxInt64)

	t.Run("Options", func(t *testing.T) {
		t.Parallel()
		st := openFileStore(t, "")
		for _, c := range []struct {
			opts queue.Options
			want []string
		}{
			{queue.Options{LeaseTimeout: forever}, []string{"lease_timeout"}},
			{queue.Options{RetryDelay: forever}, []string{"retry_delay"}},
			{queue.Options{LeaseTimeout: queue.MaxLeaseTimeout + time.Nanosecond}, []string{"lease_timeout"}},
			{queue.Options{RetryDelay: queue.MaxRetryDelay + time.Nanosecond}, []string{"retry_delay"}},
			// A bare number is nanoseconds: 600 meant as seconds ends
			// every lease before its call starts; 1 ns polls busily.
			{queue.Options{LeaseTimeout: 600, PollInterval: 1}, []string{"lease_timeout", "poll_interval"}},
			{queue.Options{LeaseTimeout: queue.MinLeaseTimeout - 1, PollInterval: queue.MinPollInterval - 1},
				[]string{"lease_timeout", "poll_interval"}},
			// 3600 meant as seconds is 3.6 µs: every failed call retried at
			// once, the contact called its max_retries + 1 times in a row.
			{queue.Options{RetryDelay: 3600}, []string{"retry_delay"}},
			{queue.Options{RetryDelay: queue.MinRetryDelay - 1}, []string{"retry_delay"}},
			// One group-commit transaction takes a lock per pool its
			// operations touch: on PostgreSQL, 13,000 concurrent Adds on
			// as many pools under MaxBatch 100,000 failed all but 3 with
			// "out of shared memory".
			{queue.Options{MaxBatch: 100_000}, []string{"max_batch"}},
			{queue.Options{MaxBatch: queue.MaxMaxBatch + 1}, []string{"max_batch"}},
			{queue.Options{LeaseTimeout: -1, RetryDelay: -1, PollInterval: -1, MaxBatch: -1},
				[]string{"lease_timeout", "retry_delay", "poll_interval", "max_batch"}},
		} {
			_, err := queue.New(st, c.opts)
			require.Equal(t, c.want, fieldsOf(t, err), "%+v", c.opts)
		}
		for _, opts := range []queue.Options{
			{LeaseTimeout: queue.MaxLeaseTimeout, RetryDelay: queue.MaxRetryDelay},
			{LeaseTimeout: queue.MinLeaseTimeout, RetryDelay: queue.MinRetryDelay, PollInterval: queue.MinPollInterval, MaxBatch: 1},
			{MaxBatch: queue.MaxMaxBatch},
		} {
			eng, err := queue.New(st, opts)
			require.NoError(t, err, "the bounds themselves: %+v", opts)
			eng.Close()
		}
	})

	t.Run("HeartbeatBounds", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{LeaseTimeout: time.Second})
		p := b.pool(t, pool.FIFO, 1)
		ok := func(hb time.Duration) {
			ctx, cancel := context.WithCancel(b.ctx)
			cancel() // stopped before it starts: nil, once the options are taken
			err := b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb})
			require.NoError(t, err, "heartbeat %v with a 1 s lease", hb)
		}
		ok(queue.MinHeartbeat)
		ok(500 * time.Millisecond)
		for _, hb := range []time.Duration{queue.MinHeartbeat - 1, 500*time.Millisecond + 1, time.Second - 1, time.Second, 2 * time.Second} {
			ctx, cancel := context.WithTimeout(b.ctx, 2*time.Second) // a regression runs, then returns nil
			defer cancel()
			err := b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb})
			require.Equal(t, []string{"heartbeat"}, fieldsOf(t, err), "heartbeat %v with a 1 s lease", hb)
		}
	})

	// A bare number is nanoseconds: a Grace of 30 meant as seconds gave
	// the give-backs of a claim that committed as Work stopped no time to
	// be written (each "not tried, Work's grace is over"), and their
	// contacts, never called, came back at their leases' ends as failed
	// attempts.
	t.Run("GraceBounds", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1)
		work := func(g time.Duration) error {
			ctx, cancel := context.WithCancel(b.ctx)
			cancel() // stopped before it starts: nil, once the options are taken
			return b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: g})
		}
		for _, g := range []time.Duration{queue.MinGrace, time.Hour} {
			require.NoError(t, work(g), "grace %v", g)
		}
		for _, g := range []time.Duration{30, 5000, queue.MinGrace - 1, -1} {
			require.Equal(t, []string{"grace"}, fieldsOf(t, work(g)), "grace %v", g)
		}
	})

	t.Run("ExtendAndFail", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.FIFO, 1)
		ids := newItems(1)
		_, err := b.eng.Add(b.ctx, p.UUID, ids...)
		require.NoError(t, err)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		exp := l.ExpiresAt

		require.Equal(t, []string{"duration"}, fieldsOf(t, b.eng.Extend(b.ctx, l, forever)))
		require.Equal(t, []string{"duration"}, fieldsOf(t, b.eng.Extend(b.ctx, l, queue.MaxLeaseTimeout+time.Nanosecond)))
		require.Equal(t, []string{"duration"}, fieldsOf(t, b.eng.Extend(b.ctx, l, queue.MinLeaseTimeout-1)),
			"a lease brought to its end at once would be handed out again while its call goes on")
		// A final failure is not retried: a retry time beside it is refused,
		// and so is a completion's note beside a failure (it would be lost).
		soon := time.Now().Add(time.Hour)
		require.Equal(t, []string{"retry_at"}, fieldsOf(t, b.eng.Fail(b.ctx, l, queue.Failure{Final: true, RetryAt: soon})))
		res, err := b.eng.Settle(b.ctx, queue.Outcome{Lease: l, Failure: &queue.Failure{Final: true, RetryAt: soon}, Note: "lost"})
		require.Nil(t, res)
		require.Equal(t, []string{"outcomes[0].failure.retry_at", "outcomes[0].note"}, fieldsOf(t, err))
		// A malformed lease and a bad argument are reported together.
		bad := *l
		bad.Token = 0
		require.Equal(t, []string{"token", "duration"}, fieldsOf(t, b.eng.Extend(b.ctx, &bad, 0)))
		require.Equal(t, []string{"token", "note"}, fieldsOf(t, b.eng.Complete(b.ctx, &bad, "\x00")))
		require.Equal(t, []string{"token", "note", "retry_at"}, fieldsOf(t, b.eng.Fail(b.ctx, &bad, queue.Failure{Note: "\x00", Final: true, RetryAt: soon})))
		far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
		require.Equal(t, []string{"retry_at"}, fieldsOf(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: far})))
		res, err = b.eng.Settle(b.ctx, queue.Outcome{Lease: l, Failure: &queue.Failure{RetryAt: far}})
		require.Nil(t, res)
		require.Equal(t, []string{"outcomes[0].failure.retry_at"}, fieldsOf(t, err))

		it, err := b.eng.Item(b.ctx, p.UUID, ids[0].ContactUUID)
		require.NoError(t, err)
		require.Equal(t, pool.StatusProcessing, it.Status, "nothing was written")
		require.True(t, exp.Equal(it.LeaseExpiresAt), "nothing was written")
		require.Equal(t, exp, l.ExpiresAt, "the lease is unchanged")

		// A retry time in the past, however far, is due now.
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}))
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err, "an item failed with a retry time long past is due")
		require.Equal(t, 2, l.Attempt)
	})

	t.Run("DequeueNCountsCombined", func(t *testing.T) {
		t.Parallel()
		b := heldEngine(t, queue.Options{})
		p := b.pool(t, pool.Parallel, 100)
		_, err := b.eng.Add(b.ctx, p.UUID, newItems(150)...)
		require.NoError(t, err)
		// Two claims of MaxInt items each, queued behind one transaction
		// so that they run combined: their sum overflows an int.
		entered, release := b.st.holdNext(t)
		addDone := make(chan error, 1)
		go func() { _, err := b.eng.Add(b.ctx, p.UUID, newItems(1)...); addDone <- err }()
		<-entered
		before := b.eng.Stats()
		type result struct {
			n   int
			err error
		}
		results := make(chan result, 2)
		for range 2 {
			go func() {
				ls, err := queue.TryDequeueN(b.ctx, b.eng, p.UUID, math.MaxInt)
				results <- result{len(ls), err}
			}()
		}
		require.Eventually(t, func() bool { return queue.Queued(b.eng) == 2 }, 5*time.Second, time.Millisecond)
		release()
		require.NoError(t, <-addDone)
		total := 0
		for range 2 {
			r := <-results
			if r.err != nil {
				require.ErrorIs(t, r.err, queue.ErrAtCapacity)
			}
			total += r.n
		}
		require.Equal(t, 100, total, "the two claims together fill the cap")
		after := b.eng.Stats()
		require.Equal(t, before.Transactions+1, after.Transactions, "the claims ran in one transaction")
		require.Equal(t, before.Reruns, after.Reruns, "no operation of the batch failed")
	})
}

// queueBehind starts f on a goroutine and waits until group commit has one
// more operation waiting (behind a held transaction).
func (b *heldBundle) queueBehind(t *testing.T, wg *sync.WaitGroup, f func()) {
	t.Helper()
	n := queue.Queued(b.eng)
	wg.Go(f)
	require.Eventually(t, func() bool { return queue.Queued(b.eng) == n+1 }, 5*time.Second, time.Millisecond)
}

// TestEngine_BatchedCallsAsOneAtATime queues dequeues, a cancelled add,
// settlements of one lease twice and a MarkInCall then Complete behind a
// held transaction: they share one transaction (the dequeues of the pool
// claimed together, the settlements together), and each gets what it would
// have got alone in some one-at-a-time order. (When an operation of a batch
// fails, the batch runs again one operation at a time, in arrival order:
// package groupcommit's tests cover that.)
func TestEngine_BatchedCallsAsOneAtATime(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{})
	p := b.pool(t, pool.Parallel, 5)
	items := newItems(8)
	_, err := b.eng.Add(b.ctx, p.UUID, items...)
	require.NoError(t, err)
	held, err := b.eng.DequeueN(b.ctx, p.UUID, 2) // items 0 and 1 in flight
	require.NoError(t, err)

	entered, release := b.st.holdNext(t)
	var wg sync.WaitGroup
	var leadErr error
	wg.Go(func() { _, leadErr = b.eng.Add(b.ctx, p.UUID, newItems(1)...) })
	<-entered
	before := b.eng.Stats()

	// Combined operations run at the place of the first of their kind: the
	// three dequeues first (room 3: items 2 and 3 to the first, 4 to the
	// second, ErrAtCapacity to the third), then the settlements. All were
	// waiting at once, so this is an order one-at-a-time calls could have
	// run in.
	var first, second []*queue.Lease
	var firstErr, secondErr, third error
	var c0, c0again, inCall, c1 error
	cctx, cancel := context.WithCancel(b.ctx)
	cancelledItem := newItems(1)
	cancelled := make(chan error, 1)
	b.queueBehind(t, &wg, func() { first, firstErr = queue.TryDequeueN(b.ctx, b.eng, p.UUID, 2) })
	b.queueBehind(t, &wg, func() { second, secondErr = b.eng.DequeueN(b.ctx, p.UUID, 1) })
	b.queueBehind(t, &wg, func() { c0 = b.eng.Complete(b.ctx, held[0], "first") })
	b.queueBehind(t, &wg, func() { _, third = b.eng.TryDequeue(b.ctx, p.UUID) })
	b.queueBehind(t, &wg, func() { _, err := b.eng.Add(cctx, p.UUID, cancelledItem...); cancelled <- err })
	b.queueBehind(t, &wg, func() { c0again = b.eng.Complete(b.ctx, held[0], "again") })
	l1 := *held[1]
	b.queueBehind(t, &wg, func() { inCall = b.eng.MarkInCall(b.ctx, &l1) })
	b.queueBehind(t, &wg, func() { c1 = b.eng.Complete(b.ctx, held[1], "after in call") })
	cancel()
	require.ErrorIs(t, <-cancelled, context.Canceled, "a caller whose context ends while it waits leaves at once")
	release()
	wg.Wait()

	require.NoError(t, leadErr)
	require.NoError(t, firstErr)
	require.NoError(t, secondErr)
	require.Equal(t, []uuid.UUID{items[2].ContactUUID, items[3].ContactUUID}, []uuid.UUID{first[0].ContactUUID, first[1].ContactUUID})
	require.Equal(t, items[4].ContactUUID, second[0].ContactUUID)
	require.ErrorIs(t, third, queue.ErrAtCapacity)
	require.NoError(t, c0)
	require.ErrorIs(t, c0again, queue.ErrLeaseLost, "a lease settled twice in one batch is lost the second time")
	require.NoError(t, inCall)
	require.NoError(t, c1, "MarkInCall then Complete of one lease in one batch both apply")

	after := b.eng.Stats()
	require.Equal(t, before.Transactions+1, after.Transactions, "one transaction for the batch")
	require.Equal(t, before.Reruns, after.Reruns, "no operation failed")
	_, err = b.eng.Item(b.ctx, p.UUID, cancelledItem[0].ContactUUID)
	require.ErrorIs(t, err, store.ErrNotFound, "the cancelled Add wrote nothing")
	for i, note := range []string{"first", "after in call"} {
		it, err := b.eng.Item(b.ctx, p.UUID, items[i].ContactUUID)
		require.NoError(t, err)
		require.Equal(t, pool.StatusCompleted, it.Status)
		require.Equal(t, note, it.Notes)
	}
	d, err := b.eng.Pool(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 3, d.StatusCounts[pool.StatusProcessing])
	require.Equal(t, 2, d.StatusCounts[pool.StatusCompleted])
	require.Equal(t, 4, d.StatusCounts[pool.StatusPending])
}

// bus carries the signals of the stores that share it, as a database's
// LISTEN/NOTIFY would: delivered after the signalling transaction commits.
type bus struct {
	mu       sync.Mutex
	watchers map[int]func(uuid.UUID)
	next     int
}

// signalStore is a store whose transactions can signal (store.Signaler)
// and which watches the bus (store.Watcher).
type signalStore struct {
	store.Store
	bus *bus
}

type signalTx struct {
	store.Tx
	pending *[]uuid.UUID
}

func (t signalTx) Signal(id uuid.UUID) { *t.pending = append(*t.pending, id) }

func (t signalTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	mark := len(*t.pending)
	err := t.Tx.Savepoint(ctx, func(tx store.Tx) error { return fn(signalTx{tx, t.pending}) })
	if err != nil {
		*t.pending = (*t.pending)[:mark] // rolled back with the savepoint
	}
	return err
}

func (s *signalStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	var pending []uuid.UUID
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		pending = pending[:0]
		return fn(signalTx{tx, &pending})
	})
	if err == nil {
		s.bus.mu.Lock()
		fns := make([]func(uuid.UUID), 0, len(s.bus.watchers))
		for _, fn := range s.bus.watchers {
			fns = append(fns, fn)
		}
		s.bus.mu.Unlock()
		for _, id := range pending {
			for _, fn := range fns {
				fn(id)
			}
		}
	}
	return err
}

func (s *signalStore) Watch(fn func(uuid.UUID)) func() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	if s.bus.watchers == nil {
		s.bus.watchers = map[int]func(uuid.UUID){}
	}
	k := s.bus.next
	s.bus.next++
	s.bus.watchers[k] = fn
	return func() {
		s.bus.mu.Lock()
		defer s.bus.mu.Unlock()
		delete(s.bus.watchers, k)
	}
}

// TestEngine_SignalsWakeOtherProcesses: two engines on one file, each with
// its own store, whose stores carry signals between them. A Dequeue blocked
// in one (with an hour's poll) is woken by the other's Add, by its
// Complete freeing the slot, and by its raising the cap.
func TestEngine_SignalsWakeOtherProcesses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	b := &bus{}
	opts := queue.Options{PollInterval: time.Hour}
	a := openEngine(t, &signalStore{Store: openFileStore(t, path), bus: b}, opts)
	other := openEngine(t, &signalStore{Store: openFileStore(t, path), bus: b}, opts)
	ctx := context.Background()
	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "shared", Description: "two processes", Type: pool.Parallel, MaxParallelItems: pqPtr(1)})
	require.NoError(t, err)

	blocked := func() <-chan *queue.Lease {
		got := make(chan *queue.Lease, 1)
		before := other.Stats().Operations
		go func() {
			l, err := other.Dequeue(ctx, p.UUID)
			if err != nil {
				l = nil
			}
			got <- l
		}()
		require.Eventually(t, func() bool { return other.Stats().Operations > before }, 5*time.Second, time.Millisecond)
		return got
	}
	await := func(got <-chan *queue.Lease, what string) *queue.Lease {
		select {
		case l := <-got:
			require.NotNil(t, l, what)
			return l
		case <-time.After(5 * time.Second):
			t.Fatalf("the other engine's Dequeue was not woken by %s", what)
			return nil
		}
	}

	got := blocked()
	_, err = a.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	held := await(got, "an Add")

	got = blocked() // the pool is full (cap 1)
	_, err = a.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxParallelItems: pqPtr(2)})
	require.NoError(t, err)
	second := await(got, "a raised cap")

	_, err = a.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	got = blocked() // full again (cap 2)
	require.NoError(t, a.Complete(ctx, held, "done"))
	await(got, "a Complete that freed a slot")
	require.NoError(t, other.Complete(ctx, second, "done"))
}

// TestWork_GivesBackAClaimThatCommittedAsItStopped: Work's
// claim is held in the store while Work's context ends; the claim then
// commits with a lease. No handler may start on it, and the lease must be
// given back (Pending, no attempt), not left in flight without a worker
// until it expires and counts as a failed attempt. No test reached this
// path (produce's release of the leases of a claim that committed as Work
// stopped).
func TestWork_GivesBackAClaimThatCommittedAsItStopped(t *testing.T) {
	t.Parallel()
	b := heldEngine(t, queue.Options{})
	p := b.pool(t, pool.FIFO, 1)
	c := uuid.New()
	_, err := b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	entered, release := b.st.holdInside(t)
	ctx, cancel := context.WithCancel(b.ctx)
	started := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			started <- struct{}{}
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 2 * time.Second})
	}()
	<-entered // the producer's claim has run; its transaction waits to commit
	cancel()
	release()
	require.NoError(t, <-errc)
	select {
	case <-started:
		t.Fatal("a handler started after Work's context ended")
	default:
	}
	it, err := b.eng.Item(b.ctx, p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, pool.StatusPending, it.Status, "the lease claimed as Work stopped is given back")
	require.Zero(t, it.Attempts)
}

// TestWork_ReleaseAtStopOfALostLeaseIsExpired: a lease claimed as Work
// stopped is given back; when the give-back finds the lease already lost
// (its end passed meanwhile), nothing was given back and the event is
// EventExpired, as everywhere else a lease turns out lost, not an
// EventError that asks the host to look into a failure.
func TestWork_ReleaseAtStopOfALostLeaseIsExpired(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b := heldEngine(t, queue.Options{Now: clk.Now, LeaseTimeout: time.Minute})
	p := b.pool(t, pool.FIFO, 1)
	_, err := b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)

	var mu sync.Mutex
	var events []queue.Event
	entered, release := b.st.holdInside(t)
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 2 * time.Second, OnEvent: func(ev queue.Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, ev)
		}})
	}()
	<-entered // the producer's claim has run; its transaction waits to commit
	giveBack, releaseGiveBack := b.st.holdNext(t)
	cancel()
	release()
	<-giveBack // the claim committed; its give-back waits in the store
	clk.Advance(2 * time.Minute)
	releaseGiveBack()
	require.NoError(t, <-errc)

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, events, 1, "one event for the lease: %v", events)
	require.Equal(t, queue.EventExpired, events[0].Kind, "the give-back found the lease lost: %v", events[0].Err)
	require.ErrorIs(t, events[0].Err, queue.ErrLeaseLost)
}
