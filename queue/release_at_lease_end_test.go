package queue_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestWork_ReleaseAtShutdownStopsAtLeaseEnd: the give-back of a lease
// claimed as Work stopped, tried again while the database is down, stops
// at the lease's end, not at the end of Work's grace: past it there is
// nothing left to give back (the item comes back as the lease ends), and
// trying on only holds the shutdown, up to Grace, for nothing. With a
// lease of 1 s and a Grace of 10 s, Work returns about a second after the
// claim; the bound, lease and 3 s after the claim, leaves a loaded machine
// 3 s (and would be missed by 6 s if the give-back ran until the grace's
// end). The time counts from the claim's commit, as the lease does, not
// from Work's start, which a loaded machine may make slow. Each try that
// failed is reported (EventError), at most one a quarter Heartbeat while
// the lease lasted; nothing is given back, and nothing is reported expired
// (no try found the lease lost: none reached the database).
func TestWork_ReleaseAtShutdownStopsAtLeaseEnd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st} // every write after the claim fails: the database down
	const lease, grace, hb = time.Second, 10 * time.Second, 200 * time.Millisecond
	eng, err := queue.New(fs, queue.Options{LeaseTimeout: lease, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	one := 1
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "shutdown", Description: "d", Type: pool.FIFO, MaxParallelItems: &one})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	claimed := make(chan time.Time, 1)
	fs.after = func() { // the claim has committed: Work is told to stop, and the writes fail from now on
		claimed <- time.Now()
		cancel()
	}
	fs.armed.Store(true)
	var mu sync.Mutex
	var kinds []queue.EventKind
	var errs []error
	on := func(ev queue.Event) {
		mu.Lock()
		defer mu.Unlock()
		kinds = append(kinds, ev.Kind)
		if ev.Kind == queue.EventError {
			errs = append(errs, ev.Err)
		}
	}
	// events says what was reported, for a failure's message: the errors
	// counted, the other events listed (the give-back retried until the
	// grace's end reports some 200 errors).
	events := func() string {
		mu.Lock()
		defer mu.Unlock()
		var others []queue.EventKind
		for _, k := range kinds {
			if k != queue.EventError {
				others = append(others, k)
			}
		}
		return fmt.Sprintf("%d errors, others %v", len(errs), others)
	}
	done := make(chan error, 1)
	go func() {
		done <- eng.Work(wctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: grace, Heartbeat: hb, OnEvent: on})
	}()
	var start time.Time // the claim's commit: the lease counts from just before it
	select {
	case start = <-claimed:
	case err := <-done:
		t.Fatalf("Work returned before it claimed: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no claim in 30 s")
	}
	const bound = lease + 3*time.Second
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(time.Until(start.Add(bound))):
		t.Fatalf("Work still running %v after its claim (lease %v, Grace %v): the give-back went on past the lease's end; events: %s",
			bound, lease, grace, events())
	}
	took := time.Since(start)
	require.Less(t, took, bound, "Work returned %v after its claim, with lease %v, Grace %v", took, lease, grace)

	mu.Lock()
	defer mu.Unlock()
	require.NotContains(t, kinds, queue.EventDispatched, "no handler starts on a lease claimed as Work stopped: %v", kinds)
	require.NotContains(t, kinds, queue.EventReleased, "the database is down: %v", kinds)
	require.NotContains(t, kinds, queue.EventExpired, "no try reached the database: %v", kinds)
	require.NotEmpty(t, errs, "the failed give-back is reported")
	// One try, then one every quarter Heartbeat while the lease lasted (a
	// loaded machine makes them fewer, never more); until the grace's end
	// they would be some 200.
	require.LessOrEqual(t, len(errs), int(lease/(hb/4))+2, "tries of the give-back: %v", errs)
	for _, err := range errs {
		require.ErrorIs(t, err, errBusy)
	}
	it, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	require.True(t, it.Status.InFlight(), "nothing could be written: the item stays in flight until its lease ends (%s)", it.Status)
}
