package queue

// Deterministic tests of group commit: a store whose Write can be held open
// lets the test queue operations behind a running transaction, then see
// them run together in the next one.

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// gatedStore holds the next Write, once armed, until release is closed.
type gatedStore struct {
	store.Store
	armed   atomic.Bool
	entered chan struct{} // closed when the held Write has started
	release chan struct{}
}

func (g *gatedStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return g.Store.Write(ctx, fn)
}

func (g *gatedStore) arm() {
	g.entered, g.release = make(chan struct{}), make(chan struct{})
	g.armed.Store(true)
}

func newGated(t *testing.T) (*Engine, *gatedStore) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gc.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	g := &gatedStore{Store: st}
	eng, err := New(g, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return eng, g
}

// queued returns how many operations wait behind the running batch.
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// TestGroupCommit_OneTransaction queues dequeues, adds, a failing operation
// and a cancelled one behind a held transaction, and checks that they run
// in one transaction (redone with savepoints because of the failure), each
// with the result it would have had alone, in arrival order.
func TestGroupCommit_OneTransaction(t *testing.T) {
	ctx := context.Background()
	eng, g := newGated(t)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "batched", Description: "group commit", Type: pool.Parallel})
	require.NoError(t, err)
	contacts := make([]uuid.UUID, 4)
	items := make([]pool.NewItem, len(contacts))
	for i := range contacts {
		contacts[i] = uuid.New()
		items[i] = pool.NewItem{ContactUUID: contacts[i]}
	}
	_, err = eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	before := eng.Stats()

	// The leader: an Add whose transaction is held open.
	g.arm()
	late := uuid.New()
	var wg sync.WaitGroup
	var leadErr error
	wg.Go(func() { _, leadErr = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: late}) })
	<-g.entered

	// Behind it, in this order: three dequeues, an Add to an unknown pool
	// (fails), an Add whose ctx is cancelled while it waits, two dequeues.
	type result struct {
		l   *Lease
		err error
	}
	results := make([]result, 5)
	var missingErr, cancelledErr error
	cctx, cancel := context.WithCancel(ctx)
	cancelledContact := uuid.New()
	enqueue := func(want int, f func()) {
		wg.Go(f)
		require.Eventually(t, func() bool { return eng.gc.queued() == want }, 5*time.Second, time.Millisecond)
	}
	for i := range 3 {
		enqueue(i+1, func() { results[i].l, results[i].err = eng.TryDequeue(ctx, p.UUID) })
	}
	enqueue(4, func() { _, missingErr = eng.Add(ctx, uuid.New(), pool.NewItem{ContactUUID: uuid.New()}) })
	enqueue(5, func() { _, cancelledErr = eng.Add(cctx, p.UUID, pool.NewItem{ContactUUID: cancelledContact}) })
	for i := 3; i < 5; i++ {
		enqueue(i+3, func() { results[i].l, results[i].err = eng.TryDequeue(ctx, p.UUID) })
	}
	cancel()
	close(g.release)
	wg.Wait()

	require.NoError(t, leadErr)
	require.ErrorIs(t, missingErr, store.ErrNotFound)
	require.ErrorIs(t, cancelledErr, context.Canceled)
	// Five dequeues of a Parallel pool (cap 10) with five due items, in
	// arrival order: the four first added, then the leader's.
	want := append(append([]uuid.UUID{}, contacts...), late)
	for i, r := range results {
		require.NoError(t, r.err, "dequeue %d", i)
		require.Equal(t, want[i], r.l.ContactUUID, "dequeue %d got the item of the order", i)
	}
	after := eng.Stats()
	require.Equal(t, before.Transactions+2, after.Transactions, "the leader alone, then one batch")
	require.Equal(t, before.Operations+8, after.Operations)
	require.Equal(t, before.Reruns+1, after.Reruns, "the failed Add made the batch run again with savepoints")

	// The cancelled Add wrote nothing; every dequeue is in the database.
	_, err = eng.Item(ctx, p.UUID, cancelledContact)
	require.ErrorIs(t, err, store.ErrNotFound)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 5, d.ContactsCount)
	require.Equal(t, 5, d.StatusCounts[pool.StatusProcessing])
}

// TestGroupCommit_PanicIsOneCallersError checks that an operation that
// panics, or writes and then fails, fails alone: its writes are undone, the
// others in its batch commit, and the committer keeps working.
func TestGroupCommit_PanicIsOneCallersError(t *testing.T) {
	ctx := context.Background()
	eng, g := newGated(t)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "panics", Description: "group commit"})
	require.NoError(t, err)

	g.arm()
	var wg sync.WaitGroup
	var errs [3]error
	wg.Go(func() { _, errs[0] = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}) })
	<-g.entered
	wg.Go(func() {
		errs[1] = eng.write(ctx, func(context.Context, *wtx) error { panic("boom") })
	})
	require.Eventually(t, func() bool { return eng.gc.queued() == 1 }, 5*time.Second, time.Millisecond)
	wg.Go(func() { _, errs[2] = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}) })
	require.Eventually(t, func() bool { return eng.gc.queued() == 2 }, 5*time.Second, time.Millisecond)
	undone := uuid.New()
	var halfErr error
	wg.Go(func() {
		halfErr = eng.write(ctx, func(ctx context.Context, tx *wtx) error {
			it := pool.NewItem{ContactUUID: undone}.Item(p.UUID, eng.now())
			if _, err := tx.InsertItems(ctx, p.UUID, []pool.Item{it}); err != nil {
				return err
			}
			return errors.New("changed my mind")
		})
	})
	require.Eventually(t, func() bool { return eng.gc.queued() == 3 }, 5*time.Second, time.Millisecond)
	close(g.release)
	wg.Wait()

	require.NoError(t, errs[0])
	require.ErrorContains(t, errs[1], "boom")
	require.NoError(t, errs[2])
	require.ErrorContains(t, halfErr, "changed my mind")
	_, err = eng.Item(ctx, p.UUID, undone)
	require.ErrorIs(t, err, store.ErrNotFound, "the failed operation's insert was undone")
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 2, d.ContactsCount)
}

// TestGroupCommit_MaxBatch checks that a batch takes at most MaxBatch
// operations, and that MaxBatch 1 is one transaction per call.
func TestGroupCommit_MaxBatch(t *testing.T) {
	for _, maxBatch := range []int{1, 3} {
		st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{})
		require.NoError(t, err)
		defer st.Close()
		g := &gatedStore{Store: st}
		eng, err := New(g, Options{MaxBatch: maxBatch})
		require.NoError(t, err)
		defer eng.Close()
		ctx := context.Background()
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "capped", Description: "group commit"})
		require.NoError(t, err)
		before := eng.Stats()

		g.arm()
		var wg sync.WaitGroup
		var failed atomic.Int32
		add := func() {
			if _, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); err != nil {
				failed.Add(1)
			}
		}
		wg.Go(add)
		<-g.entered
		for i := range 7 {
			wg.Go(add)
			require.Eventually(t, func() bool { return eng.gc.queued() == i+1 }, 5*time.Second, time.Millisecond)
		}
		close(g.release)
		wg.Wait()
		require.Zero(t, failed.Load())
		after := eng.Stats()
		// 1 held + 7 queued: batches of at most maxBatch after the first.
		wantTx := 1 + (7+maxBatch-1)/maxBatch
		require.Equal(t, uint64(wantTx), after.Transactions-before.Transactions, "MaxBatch %d", maxBatch)
		require.Equal(t, uint64(8), after.Operations-before.Operations)
	}
}

// TestGroupCommit_FailedCommit checks that when the shared transaction
// itself fails, every operation in it gets the error.
func TestGroupCommit_FailedCommit(t *testing.T) {
	boom := errors.New("disk on fire")
	c := &committer{st: failingStore{err: boom}, maxBatch: 8, now: time.Now}
	var ran atomic.Int32
	err := c.write(context.Background(), func(context.Context, *wtx) error { ran.Add(1); return nil })
	require.ErrorIs(t, err, boom)
	require.Equal(t, int32(0), ran.Load(), "the failing store ran nothing")
}

type failingStore struct {
	store.Store
	err error
}

func (f failingStore) Write(context.Context, func(store.Tx) error) error { return f.err }

// TestGroupCommit_Combined queues dequeues and settlements of one pool
// behind a held transaction: they run combined (one claim, one settle), and
// each gets what it would have got alone, in arrival order.
func TestGroupCommit_Combined(t *testing.T) {
	ctx := context.Background()
	eng, g := newGated(t)
	p, err := eng.CreatePool(ctx, pool.CreateParams{
		Name: "combined", Description: "group commit", Type: pool.Parallel, MaxParallelItems: ptrTo(5),
	})
	require.NoError(t, err)
	contacts := make([]uuid.UUID, 8)
	items := make([]pool.NewItem, len(contacts))
	for i := range contacts {
		contacts[i] = uuid.New()
		items[i] = pool.NewItem{ContactUUID: contacts[i]}
	}
	_, err = eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	held, err := eng.DequeueN(ctx, p.UUID, 2) // contacts 0 and 1 in flight
	require.NoError(t, err)
	before := eng.Stats()

	g.arm()
	var wg sync.WaitGroup
	var leadErr error
	wg.Go(func() { _, leadErr = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}) })
	<-g.entered
	queued := 0
	enqueue := func(f func()) {
		wg.Go(f)
		queued++
		require.Eventually(t, func() bool { return eng.gc.queued() == queued }, 5*time.Second, time.Millisecond)
	}
	// Combined operations run at the place of the first of their kind: the
	// three dequeues first (room 3: contacts 2 and 3 to the first, 4 to the
	// second, ErrAtCapacity to the third), then the four settlements. All
	// were waiting at once, so this is an order one-at-a-time calls could
	// have run in.
	var first, second []*Lease
	var third error
	var firstErr, secondErr error
	enqueue(func() { first, firstErr = eng.DequeueN(ctx, p.UUID, 2) })
	enqueue(func() { second, secondErr = eng.DequeueN(ctx, p.UUID, 1) })
	var c0, c0again, inCall, c1 error
	enqueue(func() { c0 = eng.Complete(ctx, held[0], "first") })
	enqueue(func() { _, third = eng.TryDequeue(ctx, p.UUID) })
	enqueue(func() { c0again = eng.Complete(ctx, held[0], "again") })
	l1 := *held[1]
	enqueue(func() { inCall = eng.MarkInCall(ctx, &l1) })
	enqueue(func() { c1 = eng.Complete(ctx, held[1], "after in call") })
	close(g.release)
	wg.Wait()

	require.NoError(t, leadErr)
	require.NoError(t, firstErr)
	require.NoError(t, secondErr)
	require.Equal(t, []uuid.UUID{contacts[2], contacts[3]}, []uuid.UUID{first[0].ContactUUID, first[1].ContactUUID})
	require.Equal(t, contacts[4], second[0].ContactUUID)
	require.ErrorIs(t, third, ErrAtCapacity)
	require.NoError(t, c0)
	require.ErrorIs(t, c0again, ErrLeaseLost, "a lease settled twice in one batch is lost the second time")
	require.NoError(t, inCall)
	require.NoError(t, c1, "MarkInCall then Complete of one lease in one batch both apply")

	after := eng.Stats()
	require.Equal(t, before.Transactions+2, after.Transactions, "the leader alone, then one batch")
	require.Zero(t, after.Reruns-before.Reruns)
	it, err := eng.Item(ctx, p.UUID, contacts[0])
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status)
	require.Equal(t, "first", it.Notes)
	it, err = eng.Item(ctx, p.UUID, contacts[1])
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status)
	require.Equal(t, "after in call", it.Notes)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 3, d.StatusCounts[pool.StatusProcessing])
	require.Equal(t, 2, d.StatusCounts[pool.StatusCompleted])
	require.Equal(t, 4, d.StatusCounts[pool.StatusPending])
}

func ptrTo[T any](v T) *T { return &v }
