package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestWork_GraceCountsFromTheStop: Work's Grace counts from when it was
// told to stop, and the give-backs of a claim that committed just then
// take from it. Here a handler runs a call that ends only when stopped,
// and the claim that commits as Work's context ends gives its two leases
// back to a database that fails each try slowly (600 ms; one try each:
// the next would start past the grace's end at this heartbeat): 1.2 s of
// the Grace of 2 s are spent, and the handler is stopped at its end, not a
// whole Grace after the give-backs.
func TestWork_GraceCountsFromTheStop(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	three := 3
	p, err := openEngine(t, st, queue.Options{}).CreatePool(ctx, pool.CreateParams{Name: "grace", Description: "d", Type: pool.Parallel, MaxParallelItems: &three})
	require.NoError(t, err)
	fs := &failWhenFullStore{Store: st, pool: p.UUID, full: 3}
	eng, err := queue.New(fs, queue.Options{LeaseTimeout: time.Minute, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	stopped := make(chan time.Time, 1)
	fs.after = func() { stopped <- time.Now(); cancel() } // the claim of the two others commits, then Work is told to stop
	started, handlerStopped := make(chan struct{}), make(chan time.Time, 1)
	const grace = 2 * time.Second
	work := make(chan error, 1)
	go func() {
		work <- eng.Work(wctx, func(hctx context.Context, l *queue.Lease) error {
			close(started) // one call only: the others are given back
			<-hctx.Done()  // a call that goes on until Work stops it
			handlerStopped <- time.Now()
			return hctx.Err()
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3, Grace: grace, Heartbeat: 30 * time.Second})
	}()
	<-started
	fs.armed.Store(true)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)

	var stop time.Time
	select {
	case stop = <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("Work never claimed the two items")
	}
	var at time.Time
	select {
	case at = <-handlerStopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler was not stopped")
	}
	<-work
	// A Grace counted again after the give-backs stops it 3.2 s after the
	// stop; the margin is for a loaded machine.
	require.Less(t, at.Sub(stop), grace+700*time.Millisecond, "the handler was stopped %v after Work was told to stop (Grace %v)", at.Sub(stop), grace)
	require.GreaterOrEqual(t, at.Sub(stop), grace-50*time.Millisecond, "the handler was stopped before the grace was spent")
}

// failWhenFullStore wraps a store: once armed, the first write after
// which pool holds full items in flight (a claim that filled it) calls
// after, and every write from then on fails slowly (600 ms, a lock
// timeout): the database gone busy as Work stops.
type failWhenFullStore struct {
	store.Store
	pool           uuid.UUID
	full           int
	armed, failing atomic.Bool
	after          func()
}

func (s *failWhenFullStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.failing.Load() {
		time.Sleep(600 * time.Millisecond)
		return store.ErrLockTimeout
	}
	err := s.Store.Write(ctx, fn)
	if err != nil || !s.armed.Load() {
		return err
	}
	var n int
	if rerr := s.Store.Read(ctx, func(tx store.Tx) (err error) {
		n, err = tx.InFlight(ctx, s.pool)
		return err
	}); rerr == nil && n >= s.full && s.armed.CompareAndSwap(true, false) {
		s.failing.Store(true)
		s.after()
	}
	return err
}
