package queue_test

import (
	"context"
	"errors"
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

// slowFailStore: once fails is set to n, its next n Writes fail with err,
// without running, each after delay (the database unreachable: a
// connection attempt that times out).
type slowFailStore struct {
	store.Store
	fails atomic.Int32
	delay time.Duration
	err   error
}

func (s *slowFailStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	for {
		n := s.fails.Load()
		if n <= 0 {
			return s.Store.Write(ctx, fn)
		}
		if s.fails.CompareAndSwap(n, n-1) {
			time.Sleep(s.delay)
			return s.err
		}
	}
}

// TestEngine_Work_HeartbeatRetriesTwoFailedExtensions: two extensions that
// fail in a row do not lose the lease of a long call: each is tried again a
// quarter of Heartbeat later, so with Heartbeat half the lease (its
// largest) the third try is written well before the lease's end, and the
// call, longer than the lease, completes. (Trying again half a Heartbeat
// later would put the third try at the lease's end plus the failures'
// latency: the watchdog would stop the call, EventExpired, and its item
// come back as a failed attempt. Heartbeat/RetriesAFailedExtension, with
// one failure, does not tell the two apart.)
//
// Timing (lease 5 s, Heartbeat 2.5 s, each failure takes 250 ms): the
// first extension is tried at 2.5 s and fails at 2.75 s; the second at
// 3.375 s, failing at 3.625 s; the third at 4.25 s, 750 ms before the
// lease's end, the margin a loaded machine has to write it. Half a
// Heartbeat apart, the third would be tried at 5.5 s, 500 ms after the
// watchdog (and a loaded machine only makes it later).
func TestEngine_Work_HeartbeatRetriesTwoFailedExtensions(t *testing.T) {
	t.Parallel()
	const lease, hb = 5 * time.Second, 2500 * time.Millisecond
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { sq.Close() })
	down := errors.New("slowFailStore: the database is unreachable")
	st := &slowFailStore{Store: sq, delay: 250 * time.Millisecond, err: down}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: lease, PollInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	one := 1
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "heartbeat", Description: "d", Type: pool.FIFO, MaxParallelItems: &one})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	rec := newRecorder(settledN(3)) // the two failed extensions, then the completion (or the expiry)
	var calls atomic.Int32
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- eng.Work(wctx, func(hctx context.Context, l *queue.Lease) error {
			if calls.Add(1) == 1 {
				// The next two writes are the first extension and its
				// retry: the only worker is busy, nothing else writes.
				st.fails.Store(2)
			}
			select {
			case <-time.After(lease + time.Second): // past the lease's first end
				return nil
			case <-hctx.Done():
				return hctx.Err()
			}
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: hb, Grace: time.Second, OnEvent: rec.on})
	}()
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("no settlement in 30 s: events %v, handler calls %d", rec.kinds(), calls.Load())
	}
	cancel()
	select {
	case err := <-errc:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatalf("Work did not return 30 s after its context ended: events %v", rec.kinds())
	}

	require.Zero(t, rec.count(queue.EventExpired), "lease lost: events %v", rec.kinds())
	require.Equal(t, 2, rec.count(queue.EventError), "events %v", rec.kinds())
	require.Equal(t, 1, rec.count(queue.EventCompleted), "events %v", rec.kinds())
	rec.mu.Lock()
	for _, ev := range rec.events {
		switch ev.Kind {
		case queue.EventError:
			require.ErrorIs(t, ev.Err, down)
		case queue.EventCompleted:
			require.Greater(t, ev.Elapsed, lease, "the call outlasted the lease's first end")
		}
	}
	rec.mu.Unlock()
	require.Equal(t, int32(1), calls.Load())
	it, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status, "notes %q", it.Notes)
	require.Equal(t, 1, it.Attempts)
}
