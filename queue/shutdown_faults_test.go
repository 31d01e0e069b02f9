package queue_test

// Faults met by the reads of dispatch and by Close: Work's claiming loop
// and a blocked Dequeue read the store (the pause's NextWake, the
// campaigns' refresh) with their caller's context, outside the write
// path's round-trip bounds and its recovery of panics; and the batches of
// group commit whose COMMIT reply is lost.

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/stretchr/testify/require"
)

// readPanicStore wraps a store: once armed, its Reads panic.
type readPanicStore struct {
	store.Store
	panics atomic.Bool
}

func (s *readPanicStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.panics.Load() {
		panic("readPanicStore: a read panicked")
	}
	return s.Store.Read(ctx, fn)
}

// TestEngine_Work_StoreReadPanics: a panic out of the store's Read in
// Work's claiming loop (the pause between claims reads the pools' next
// wake) must not end Work while a handler still runs: the host that
// recovers it would have a call under way with no Work, and Close would
// not wait for it, so its result is never written and its contact comes
// back, at the lease's end, as a failed attempt to be called again.
func TestEngine_Work_StoreReadPanics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &readPanicStore{Store: openFileStore(t, filepath.Join(t.TempDir(), "rp.db"))}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "read panics", Description: "read panics", Type: pool.Parallel})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	inCall, hangUp := make(chan struct{}), make(chan struct{})
	var running atomic.Bool
	handler := func(hctx context.Context, l *queue.Lease) error {
		running.Store(true)
		defer running.Store(false)
		close(inCall)
		<-hangUp
		return nil
	}
	ended := make(chan error, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				ended <- fmt.Errorf("work panicked: %v", v)
			}
		}()
		ended <- eng.Work(ctx, handler, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 2})
	}()
	<-inCall
	st.panics.Store(true) // the producer's next pause reads, with a worker free

	var werr error
	select {
	case werr = <-ended:
	case <-time.After(2 * time.Second):
		// Work still runs: what it should (its handler runs). Stop it.
		st.panics.Store(false)
		close(hangUp)
		require.NoError(t, eng.Close())
		return
	}
	stillRunning := running.Load()
	t.Logf("Work ended (%v) with its handler running: %v", werr, stillRunning)
	close(hangUp)
	st.panics.Store(false)
	require.NoError(t, eng.Close())
	it, err := eng2Item(t, st, p.UUID, c)
	require.NoError(t, err)
	t.Logf("the item after Close: %s", it.Status)
	require.False(t, stillRunning, "Work ended (%v) while its handler still ran: the call is no Work's any more", werr)
	require.Equal(t, pool.StatusCompleted, it.Status, "the handler's result was written")
}

// eng2Item reads an item through a new engine over st (the first one is
// closed).
func eng2Item(t *testing.T, st store.Store, poolID, contact uuid.UUID) (pool.Item, error) {
	t.Helper()
	e, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer e.Close()
	time.Sleep(50 * time.Millisecond) // let the handler's settlement try, and fail
	return e.Item(context.Background(), poolID, contact)
}

// freezeOnRead wraps a PostgreSQL store: once armed, the network goes
// silent (the proxy frozen) just as the next Read begins.
type freezeOnRead struct {
	*postgres.Store
	px  *faultProxy
	arm atomic.Bool
	hit chan struct{}
}

func (s *freezeOnRead) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.arm.CompareAndSwap(true, false) {
		s.px.frozen.Store(true)
		close(s.hit)
	}
	return s.Store.Read(ctx, fn)
}

// waitHit waits for the read that freezes the connection; one that never
// comes (a mutant that stops the pauses' reads) fails the test rather than
// hang it.
func (s *freezeOnRead) waitHit(t *testing.T) {
	t.Helper()
	select {
	case <-s.hit:
	case <-time.After(10 * time.Second):
		t.Fatal("no read came in 10 s: the connection was never frozen")
	}
}

// TestPostgres_CloseWhileWorkReadsSilent: the database goes silent (no
// FIN, no RST) while Work runs on an empty pool, as its producer reads the
// pool's next wake between claims. Engine.Close, which stops Work as the
// end of its context does and waits for it, must return within a bounded
// time, as it does when the silence meets a write (the round trip's
// bound): the producer's read runs on Work's context, which Close does not
// end, and the store bounds reads by their context only.
func TestPostgres_CloseWhileWorkReadsSilent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, pst := proxiedStore(t, connFailOptions)
	st := &freezeOnRead{Store: pst, px: px, hit: make(chan struct{})}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "silent", Description: "silent read", Type: pool.Parallel})
	require.NoError(t, err)
	werr := make(chan error, 1)
	go func() {
		werr <- eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
	}()
	time.Sleep(200 * time.Millisecond) // Work claims and pauses, again and again
	st.arm.Store(true)
	st.waitHit(t)
	time.Sleep(100 * time.Millisecond) // the read is sent into the silence
	require.NoError(t, within(t, "Close while Work reads a silent connection", px.close, func() error { return eng.Close() }))
	t.Logf("Work: %v", <-werr)
}

// TestPostgres_BlockedDequeueAtCloseWhileSilent: Close promises that a
// blocked Dequeue returns ErrClosed. One whose pause between looks reads a
// connection gone silent (no FIN, no RST) does not return until its own
// context ends: the read is bounded by nothing else.
func TestPostgres_BlockedDequeueAtCloseWhileSilent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, pst := proxiedStore(t, connFailOptions)
	st := &freezeOnRead{Store: pst, px: px, hit: make(chan struct{})}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "silent", Description: "silent read", Type: pool.Parallel})
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() { _, err := eng.Dequeue(ctx, p.UUID); got <- err }()
	time.Sleep(200 * time.Millisecond) // the Dequeue looks and pauses, again and again
	st.arm.Store(true)
	st.waitHit(t)
	time.Sleep(100 * time.Millisecond) // the read is sent into the silence
	require.NoError(t, within(t, "Close", px.close, func() error { return eng.Close() }))
	err = within(t, "the blocked Dequeue after Close", px.close, func() error { return <-got })
	require.ErrorIs(t, err, queue.ErrClosed)
}

// cutOnWrite wraps a PostgreSQL store: the Write numbered holdAt waits
// until released; the one after it arms the proxy to lose its COMMIT's
// reply and go down (downOnCut).
type cutOnWrite struct {
	*postgres.Store
	px      *faultProxy
	calls   atomic.Int32
	holdAt  atomic.Int32
	entered chan struct{}
	release chan struct{}
	up      bool // the database stays reachable: the outcome is learned
}

func (s *cutOnWrite) Write(ctx context.Context, fn func(store.Tx) error) error {
	n := s.calls.Add(1)
	if h := s.holdAt.Load(); h != 0 && n == h {
		close(s.entered)
		<-s.release
	} else if h != 0 && n == h+1 {
		s.px.downOnCut.Store(!s.up)
		s.px.cutCommit.Store(true)
	}
	return s.Store.Write(ctx, fn)
}

// TestPostgres_BatchOutcomeUnknown: a group-commit batch carrying a
// Complete, a claim and an Add loses its COMMIT's reply, and the database
// is unreachable from then on. Every caller learns that its write may
// have committed; once the database is back, the claim's lease has been
// given back, the Complete stands and cannot be applied twice.
func TestPostgres_BatchOutcomeUnknown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, pst := proxiedStore(t, connFailOptions)
	st := &cutOnWrite{Store: pst, px: px, entered: make(chan struct{}), release: make(chan struct{})}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "batch", Description: "batch lost", Type: pool.Parallel})
	require.NoError(t, err)
	q, err := eng.CreatePool(ctx, pool.CreateParams{Name: "adds", Description: "batch lost", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	l1, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	st.holdAt.Store(st.calls.Load() + 1)
	held := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, q.UUID, newItems(1)...); held <- err }()
	<-st.entered
	completed, claimed, added := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	var l2 *queue.Lease
	go func() { completed <- eng.Complete(ctx, l1, "answered") }()
	go func() { var err error; l2, err = eng.TryDequeue(ctx, p.UUID); claimed <- err }()
	go func() { _, err := eng.Add(ctx, q.UUID, newItems(1)...); added <- err }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 3 }, 5*time.Second, time.Millisecond)
	close(st.release)
	require.NoError(t, <-held)
	for what, ch := range map[string]chan error{"Complete": completed, "claim": claimed, "Add": added} {
		err := within(t, what, px.close, func() error { return <-ch })
		require.ErrorIs(t, err, store.ErrCommitUnknown, "%s", what)
	}
	require.Nil(t, l2)
	require.EqualValues(t, 1, px.cuts.Load())

	px.refuse.Store(false)
	require.Eventually(t, func() bool {
		d, err := eng.Pool(ctx, p.UUID)
		return err == nil && d.StatusCounts[pool.StatusProcessing] == 0
	}, 15*time.Second, 20*time.Millisecond, "the claim's lease was not given back")
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	t.Logf("pool after: %v", d.StatusCounts)
	require.Equal(t, 1, d.StatusCounts[pool.StatusCompleted], "the Complete committed")
	require.Equal(t, 1, d.StatusCounts[pool.StatusPending], "the claim given back")
	require.ErrorIs(t, eng.Complete(ctx, l1, "again"), queue.ErrLeaseLost)
	l3, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 1, l3.Attempt, "given back unattempted")
}

// TestPostgres_BatchRerunCommitLost: a batch in which one operation fails
// (an Add to a pool that does not exist) runs again with savepoints, and
// that run's COMMIT reply is lost after the server committed. The store
// learns it committed: the Complete returns nil, the claim its lease, the
// failed Add its own error.
func TestPostgres_BatchRerunCommitLost(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, pst := proxiedStore(t, connFailOptions)
	st := &cutOnWrite{Store: pst, px: px, entered: make(chan struct{}), release: make(chan struct{}), up: true}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "batch", Description: "batch lost", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	l1, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	st.holdAt.Store(st.calls.Load() + 1)
	held := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, p.UUID, newItems(1)...); held <- err }()
	<-st.entered
	completed, claimed, added := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	var l2 *queue.Lease
	go func() { _, err := eng.Add(ctx, uuid.New(), newItems(1)...); added <- err }()
	go func() { completed <- eng.Complete(ctx, l1, "answered") }()
	go func() { var err error; l2, err = eng.TryDequeue(ctx, p.UUID); claimed <- err }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 3 }, 5*time.Second, time.Millisecond)
	before := eng.Stats().Reruns
	close(st.release)
	require.NoError(t, <-held)
	require.NoError(t, within(t, "Complete", px.close, func() error { return <-completed }))
	require.NoError(t, within(t, "claim", px.close, func() error { return <-claimed }))
	require.ErrorIs(t, within(t, "Add", px.close, func() error { return <-added }), store.ErrNotFound)
	require.EqualValues(t, 1, px.cuts.Load())
	require.EqualValues(t, 1, eng.Stats().Reruns-before, "the batch ran again with savepoints")
	require.NotNil(t, l2)
	it, err := eng.Item(ctx, p.UUID, l2.ContactUUID)
	require.NoError(t, err)
	require.Equal(t, pool.StatusProcessing, it.Status)
	require.NoError(t, eng.Complete(ctx, l2, "answered"))
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 2, d.StatusCounts[pool.StatusCompleted])
}

// TestPostgres_CloseAfterUnknownClaimWhileSilent: a DequeueN's claim of
// several leases loses its COMMIT's reply, and the database goes silent
// (no FIN, no RST) before the outcome is learned: ErrCommitUnknown, and the
// leases are being given back in the background. Close must return in a
// bounded time that does not grow with the number of leases: the
// give-back tries every lease left once more after Close began, each try
// waiting out the write's round-trip bound.
func TestPostgres_CloseAfterUnknownClaimWhileSilent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, st := proxiedStore(t, connFailOptions)
	eng, err := queue.New(st, queue.Options{LeaseTimeout: 10 * time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "unknown claim", Description: "silent", Type: pool.Parallel, MaxParallelItems: new(10)})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(8)...)
	require.NoError(t, err)

	px.holdCommit.Store(true)
	got := make(chan error, 1)
	go func() { _, err := eng.DequeueN(ctx, p.UUID, 8); got <- err }()
	require.Eventually(t, func() bool { return px.cuts.Load() == 1 }, 10*time.Second, time.Millisecond)
	px.frozen.Store(true) // silent from the commit on: the outcome cannot be learned
	err = within(t, "DequeueN", px.close, func() error { return <-got })
	require.ErrorIs(t, err, store.ErrCommitUnknown)
	time.Sleep(time.Second) // the give-back's first try is under way
	require.NoError(t, within(t, "Close", px.close, func() error { return eng.Close() }))
}

// closeOnCommit wraps a PostgreSQL store: once armed, the next write that
// commits begins the engine's Close and silences the network (no FIN, no
// RST) before the write returns to its caller.
type closeOnCommit struct {
	*postgres.Store
	px     *faultProxy
	arm    atomic.Bool
	closed chan error
	eng    *queue.Engine
}

func (s *closeOnCommit) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Write(ctx, fn)
	if err == nil && s.arm.CompareAndSwap(true, false) {
		go func() { s.closed <- s.eng.Close() }()
		time.Sleep(100 * time.Millisecond) // Close has begun: it waits for this claim
		s.px.frozen.Store(true)
	}
	return err
}

// TestPostgres_CloseAfterAClaimAtCloseWhileSilent: a DequeueN's claim of
// several leases commits just as Close begins, and the database goes
// silent (no FIN, no RST). The claim gives its leases back before Close
// ends (see giveBackAtClose): Close must return in a bounded time that
// does not grow with the number of leases, each give-back waiting out a
// write's round-trip bound (5.5 s here), once.
func TestPostgres_CloseAfterAClaimAtCloseWhileSilent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, pst := proxiedStore(t, connFailOptions)
	st := &closeOnCommit{Store: pst, px: px, closed: make(chan error, 1)}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: 10 * time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	st.eng = eng
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "claim at close", Description: "silent", Type: pool.Parallel, MaxParallelItems: new(10)})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(8)...)
	require.NoError(t, err)

	st.arm.Store(true)
	start := time.Now()
	leases, err := eng.DequeueN(ctx, p.UUID, 8)
	t.Logf("DequeueN returned after %v: %d leases, %v", time.Since(start).Round(time.Millisecond), len(leases), err)
	require.ErrorIs(t, err, queue.ErrClosed)
	require.Empty(t, leases)
	require.NoError(t, within(t, "Close", px.close, func() error { return <-st.closed }))
	// One round trip's bound (5.5 s) and the margin of a loaded machine;
	// a try of each lease in turn took 8 of them, three tries each 24.
	require.Less(t, time.Since(start), 20*time.Second, "Close waited for the give-backs one lease at a time")
}
