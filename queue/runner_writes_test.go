package queue_test

import (
	"context"
	"errors"
	"slices"
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
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// stallStore: once armed, the next write of items (Tx.UpdateItems) sleeps
// d inside its transaction, after the settlement it writes was judged: a
// slow commit, or slow writes behind it in the same batch.
type stallStore struct {
	store.Store
	armed    atomic.Bool
	d        time.Duration
	stalling chan struct{}
}

type stallTx struct {
	store.Tx
	s *stallStore
}

func (s *stallStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(&stallTx{tx, s}) })
}

func (t *stallTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(in store.Tx) error { return fn(&stallTx{in, t.s}) })
}

// UpdateItems stalls the first extension written once armed: a change of
// an item in flight that leaves it in flight (Extend). Only an extension:
// on a loaded machine another write (a claim, the first extension) may
// come between the arming and the one the test means.
func (t *stallTx) UpdateItems(ctx context.Context, changes ...store.Change) error {
	extends := slices.ContainsFunc(changes, func(c store.Change) bool {
		return c.From == pool.StatusProcessing && c.Item.Status == pool.StatusProcessing
	})
	if extends && t.s.armed.CompareAndSwap(true, false) {
		close(t.s.stalling)
		time.Sleep(t.s.d)
	}
	return t.Tx.UpdateItems(ctx, changes...)
}

// TestWork_ExtensionAcrossLeaseEnd: the handler's call ends well (nil)
// while the heartbeat's extension, judged before the lease's end, is being
// written, and commits after that end. The watchdog fires meanwhile, but
// the result is the runner's to write since the handler returned: it is
// written, on the extended lease. (It dropped the result once, and left the
// renewed lease with nobody: the item came back as a failed attempt, the
// contact whose call went well called again.)
func TestWork_ExtensionAcrossLeaseEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	// The heartbeat extends at 1 s, to 3 s; the stall makes it commit at
	// 2.2 s: 200 ms past the lease's first end (a delay only makes that
	// later), 800 ms before its new one, for the runner to write the
	// result (a loaded machine's margin: with 200 ms, a run under -race
	// beside other tests missed it).
	ss := &stallStore{Store: st, d: 1200 * time.Millisecond, stalling: make(chan struct{})}
	const lease = 2 * time.Second
	eng, err := queue.New(ss, queue.Options{LeaseTimeout: lease, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	one := 1
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "stall", Description: "d", Type: pool.FIFO, MaxParallelItems: &one})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	var mu sync.Mutex
	var kinds []queue.EventKind
	settled := make(chan struct{})
	var once sync.Once
	var calls atomic.Int32
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- eng.Work(wctx, func(hctx context.Context, l *queue.Lease) error {
			calls.Add(1)
			ss.armed.Store(true) // the next write is the heartbeat's Extend (at 1 s)
			<-ss.stalling        // the extension is being written
			return nil           // the call went well, long before the lease's end
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: time.Second, Grace: time.Second,
			OnEvent: func(ev queue.Event) {
				mu.Lock()
				kinds = append(kinds, ev.Kind)
				mu.Unlock()
				if ev.Kind != queue.EventDispatched {
					once.Do(func() { close(settled) })
				}
			}})
	}()
	<-settled
	time.Sleep(time.Second) // the renewed lease has ended
	cancel()
	require.NoError(t, <-done)
	it, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, pool.StatusCompleted, it.Status,
		"events %v; item %s attempts %d retry_count %d notes %q; handler calls %d",
		kinds, it.Status, it.Attempts, it.RetryCount, it.Notes, calls.Load())
}

// TestWork_WatchdogThenExtensionCommits: the heartbeat's extension, judged
// before the lease's end, commits after it; the watchdog, at that end,
// stops the handler, which returns only then. The lease is still the
// runner's (renewed by its own extension), so the handler's result is
// written on it: nil completes the item, a cancelled call is given back
// unattempted. (The runner dropped both once: the item stayed in flight
// under the renewed lease, held by no one — a FIFO pool stalled — then
// came back as a failed attempt, a contact whose call went well called
// again, one never called counted as called.)
func TestWork_WatchdogThenExtensionCommits(t *testing.T) {
	t.Parallel()
	for _, sub := range []struct {
		name   string
		result func(hctx context.Context) error
		want   pool.Status // after the handler's first call
		events []queue.EventKind
	}{
		{"CallWentWell", func(context.Context) error { return nil }, pool.StatusCompleted,
			[]queue.EventKind{queue.EventDispatched, queue.EventExpired, queue.EventCompleted}},
		{"CallNotMade", func(hctx context.Context) error { return hctx.Err() }, pool.StatusPending,
			[]queue.EventKind{queue.EventDispatched, queue.EventExpired, queue.EventReleased}},
	} {
		for _, stName := range []string{"SQLite", "PostgreSQL"} {
			t.Run(sub.name+"/"+stName, func(t *testing.T) {
				t.Parallel()
				ctx := context.Background()
				var st store.Store
				if stName == "PostgreSQL" {
					st = pgtest.Open(t, pgtest.URL(t), postgres.Options{})
				} else {
					sq, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
					require.NoError(t, err)
					t.Cleanup(func() { sq.Close() })
					st = sq
				}
				// The extension at 400 ms stalls 1 s: it commits at 1.4 s,
				// 200 ms after the lease's first end (the watchdog), with a
				// new end at 2.6 s.
				ss := &stallStore{Store: st, d: time.Second, stalling: make(chan struct{})}
				eng, err := queue.New(ss, queue.Options{LeaseTimeout: 1200 * time.Millisecond, PollInterval: 10 * time.Millisecond, RetryDelay: time.Hour})
				require.NoError(t, err)
				t.Cleanup(func() { eng.Close() })
				p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "stall", Description: "d", Type: pool.FIFO})
				require.NoError(t, err)
				c := uuid.New()
				_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
				require.NoError(t, err)

				var mu sync.Mutex
				var kinds []queue.EventKind
				settled := make(chan struct{})
				var calls atomic.Int32
				wctx, cancel := context.WithCancel(ctx)
				defer cancel()
				done := make(chan error, 1)
				go func() {
					done <- eng.Work(wctx, func(hctx context.Context, l *queue.Lease) error {
						if calls.Add(1) > 1 { // given back, dispatched again: stopped with Work
							<-hctx.Done()
							return hctx.Err()
						}
						ss.armed.Store(true) // the next write is the heartbeat's Extend (at 400 ms)
						<-ss.stalling
						<-hctx.Done() // the watchdog, at the lease's first end
						return sub.result(hctx)
					}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: 400 * time.Millisecond, Grace: 200 * time.Millisecond,
						OnEvent: func(ev queue.Event) {
							mu.Lock()
							defer mu.Unlock()
							kinds = append(kinds, ev.Kind)
							if ev.Kind == sub.events[2] {
								close(settled)
							}
						}})
				}()
				select {
				case <-settled:
				case <-time.After(time.Minute):
					mu.Lock()
					defer mu.Unlock()
					t.Fatalf("no settlement: events %v, handler calls %d", kinds, calls.Load())
				}
				cancel()
				require.NoError(t, <-done)
				it, err := eng.Item(ctx, p.UUID, c)
				require.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				// The result's event may come after the next dispatch's: the
				// worker is free once the handler returned.
				require.Equal(t, sub.events[:2], kinds[:2])
				require.Contains(t, kinds[2:], sub.events[2])
				require.Equal(t, sub.want, it.Status, "events %v; notes %q", kinds, it.Notes)
				wantAttempts := 0 // given back, unattempted (and again at shutdown if dispatched again)
				if sub.want == pool.StatusCompleted {
					wantAttempts = 1
				}
				require.Equal(t, wantAttempts, it.Attempts, "notes %q", it.Notes)
			})
		}
	}
}

// failingStore: once armed, its next Write runs and commits, then calls
// after; the Writes after that fail without running, after delay (a wait
// for another node's lock), with err (errBusy when nil): only the first of
// them with once (the database busy for a moment, as SQLITE_BUSY past
// busy_timeout or a lost connection), else all (the database down).
type failingStore struct {
	store.Store
	armed, failing atomic.Bool
	once           bool
	delay          time.Duration
	err            error
	after          func()
}

func (s *failingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.failing.Load() && (!s.once || s.failing.CompareAndSwap(true, false)) {
		time.Sleep(s.delay)
		if s.err != nil {
			return s.err
		}
		return errBusy
	}
	err := s.Store.Write(ctx, fn)
	if s.armed.CompareAndSwap(true, false) {
		s.failing.Store(true)
		s.after()
	}
	return err
}

var errBusy = errors.New("failingStore: database busy")

// TestWork_ReleaseAtShutdownRetried: Work's context ends while its
// producer's claim commits, and the producer gives the lease back; the
// first try fails (the database busy for a moment), and it tries again.
// (It tried once, and the lease was left with no worker: it ended as a
// failed attempt of a call never made, the contact Failed under
// max_retries 0 without ever being called.)
func TestWork_ReleaseAtShutdownRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st, once: true}
	// The give-back is tried again only while the lease lasts: a lease a
	// starved machine does not exhaust between the claim and the second
	// try (with 200 ms, one in ten runs under 8 CPU burners gave up).
	const lease = 2 * time.Second
	eng, err := queue.New(fs, queue.Options{LeaseTimeout: lease, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	one, zero := 1, 0
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "shutdown", Description: "d", Type: pool.FIFO,
		MaxParallelItems: &one, MaxRetries: &zero})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	fs.after = cancel // the claim has committed: Work is told to stop
	fs.armed.Store(true)
	var calls atomic.Int32
	var mu sync.Mutex
	var kinds []queue.EventKind
	err = eng.Work(wctx, func(context.Context, *queue.Lease) error { calls.Add(1); return nil },
		queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: func(ev queue.Event) {
			mu.Lock()
			kinds = append(kinds, ev.Kind)
			mu.Unlock()
		}})
	require.NoError(t, err)
	it, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	time.Sleep(lease + 50*time.Millisecond) // the lease ends
	_, derr := eng.TryDequeue(ctx, p.UUID)
	later, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	require.False(t, it.Status.InFlight(),
		"after Work returned: %s (events %v, handler calls %d); after the lease: %s, attempts %d, notes %q (TryDequeue: %v)",
		it.Status, kinds, calls.Load(), later.Status, later.Attempts, later.Notes, derr)
}

// TestWork_ReleaseAtShutdownWithinGrace: the give-backs of a claim that
// committed as Work stopped, tried again while the database is down, all
// end within one Grace, which they take from: Work returns in about Grace,
// not once per lease. (Each tried for a Grace of its own once, one after
// the other, before Work's grace began.)
func TestWork_ReleaseAtShutdownWithinGrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st}
	eng, err := queue.New(fs, queue.Options{LeaseTimeout: 10 * time.Second, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	three := 3
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "shutdown", Description: "d", Type: pool.Parallel, MaxParallelItems: &three})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(3)...)
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	fs.after = cancel // the claim of three commits, then Work is told to stop and every write fails
	fs.armed.Store(true)
	const grace = 400 * time.Millisecond
	start := time.Now()
	var released, errs atomic.Int32
	err = eng.Work(wctx, func(context.Context, *queue.Lease) error { return nil },
		queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3, Grace: grace, Heartbeat: 40 * time.Millisecond,
			OnEvent: func(ev queue.Event) {
				switch ev.Kind {
				case queue.EventReleased:
					released.Add(1)
				case queue.EventError:
					errs.Add(1)
				}
			}})
	took := time.Since(start)
	require.NoError(t, err)
	// One Grace each, one after the other, would be 3 Graces; the margin
	// of a whole Grace is for a loaded machine under -race.
	require.Less(t, took, 2*grace, "Work took %v with Grace %v", took, grace)
	require.Zero(t, released.Load())
	require.Greater(t, errs.Load(), int32(3), "each give-back was tried more than once")
}

// TestWork_ReleaseAtShutdownSlowFailuresWithinGrace: give-backs that fail
// slowly (each waits 300 ms) stop once Work's grace is over: no try starts
// after it, so Work returns in about Grace and one try, not one try per
// lease; the leases not tried are reported.
func TestWork_ReleaseAtShutdownSlowFailuresWithinGrace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st, delay: 300 * time.Millisecond, err: store.ErrLockTimeout}
	eng, err := queue.New(fs, queue.Options{LeaseTimeout: 10 * time.Second, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	five := 5
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "shutdown", Description: "d", Type: pool.Parallel, MaxParallelItems: &five})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(5)...)
	require.NoError(t, err)
	wctx, cancel := context.WithCancel(ctx)
	fs.after = cancel
	fs.armed.Store(true)
	const grace = 300 * time.Millisecond
	var errs atomic.Int32
	start := time.Now()
	err = eng.Work(wctx, func(context.Context, *queue.Lease) error { return nil },
		queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 5, Grace: grace, Heartbeat: 40 * time.Millisecond,
			OnEvent: func(ev queue.Event) {
				if ev.Kind == queue.EventError {
					errs.Add(1)
				}
			}})
	took := time.Since(start)
	require.NoError(t, err)
	// Within Grace the first lease's try (300 ms) ends, and no other
	// starts: about 300 ms. One try per lease would be 1.5 s; the bound
	// between leaves 800 ms for a loaded machine under -race. (The try
	// was 200 ms and the bound Grace and 300 ms: 190 ms to spare.)
	require.Less(t, took, grace+fs.delay+500*time.Millisecond, "Work took %v with Grace %v", took, grace)
	require.GreaterOrEqual(t, errs.Load(), int32(5), "every lease not given back is reported")
}
