package queue_test

// A dialer runs for weeks: what a call leaves behind adds up. These tests
// repeat the calls that keep state while they run (a blocked Dequeue
// whose context ends, a Work started and stopped, a pool made, used and
// deleted, an engine opened and closed over one store) and check that the
// engine's waiters and the goroutines come back to where they were. Not
// parallel: they count goroutines.

import (
	"context"
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

func TestEngine_LongRunLeavesNothing(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		requireNoGoroutineLeak(t)
		longRun(t, openFileStore(t, ""))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		requireNoGoroutineLeak(t)
		longRun(t, pgtest.Open(t, url, postgres.Options{}))
	})
}

func longRun(t *testing.T, st store.Store) {
	ctx := context.Background()
	// rounds is n, or a tenth of it under -short: CI's race run looks
	// at the concurrency of a few rounds, and the plain run counts what
	// all of them leave.
	rounds := func(n int) int {
		if testing.Short() {
			return n / 10
		}
		return n
	}
	eng, err := queue.New(st, queue.Options{PollInterval: time.Hour})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "long run", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	blocked := func(f func(ctx context.Context) error) error {
		t.Helper()
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- f(cctx) }()
		require.True(t, waitUntil(5*time.Second, func() bool { return queue.Waiting(eng, p.UUID) > 0 }), "the call waits")
		cancel()
		return <-done
	}
	for range rounds(200) {
		err := blocked(func(ctx context.Context) error { _, err := eng.Dequeue(ctx, p.UUID); return err })
		require.ErrorIs(t, err, context.Canceled)
	}
	for range rounds(50) {
		err := blocked(func(ctx context.Context) error {
			return eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
				queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 4})
		})
		require.NoError(t, err)
	}
	for range rounds(100) {
		q, err := eng.CreatePool(ctx, pool.CreateParams{Name: "churned", Description: "d", Type: pool.Parallel})
		require.NoError(t, err)
		_, err = eng.Add(ctx, q.UUID, newItems(2)...)
		require.NoError(t, err)
		l, err := eng.TryDequeue(ctx, q.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Complete(ctx, l, ""))
		require.NoError(t, eng.DeletePool(ctx, q.UUID))
	}
	require.Zero(t, queue.WaitingPools(eng), "a waiter left subscribed")
	for range rounds(20) {
		other, err := queue.New(st, queue.Options{PollInterval: time.Hour})
		require.NoError(t, err)
		_, err = other.Pool(ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, other.Close())
	}
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
}
