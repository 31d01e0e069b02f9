package queue_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_Work_HandlersAtMostWorkersAcrossPools: one look over several
// pools claims no more than the workers left free, also when the first
// pool gives fewer than that and the next are asked for the rest
// (TestEngine_Work_HandlersAtMostWorkers has one pool).
func TestEngine_Work_HandlersAtMostWorkersAcrossPools(t *testing.T) {
	t.Parallel()
	const workers, per = 2, 10
	b := realEngine(t, queue.Options{})
	var ids []uuid.UUID
	for _, n := range []int{1, per, per} { // the first pool gives fewer than the free workers
		p := b.pool(t, pool.Parallel, 100, 3)
		b.add(t, p.UUID, n)
		ids = append(ids, p.UUID)
	}
	var running, peak atomic.Int64
	h := func(ctx context.Context, l *queue.Lease) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := peak.Load(); n > m && !peak.CompareAndSwap(m, n); m = peak.Load() {
		}
		time.Sleep(20 * time.Millisecond)
		return nil
	}
	rec := newRecorder(settledN(1 + 2*per))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() { errc <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: ids, Workers: workers, OnEvent: rec.on}) }()
	select {
	case <-rec.done:
	case <-time.After(60 * time.Second):
		t.Fatal("not every item settled in 60 s")
	}
	cancel()
	require.NoError(t, <-errc)
	require.LessOrEqual(t, peak.Load(), int64(workers), "handlers at once")
}

// TestEngine_Work_OwnCancelIsAFailedAttempt: a handler that returns
// context.Canceled of its own (a call it cancelled), while Work did not
// stop it, made an attempt: the item fails it and waits for its retry. Only
// the cancellation of a stop gives the item back unattempted; taking every
// canceled error for one would call the contact again without counting.
func TestEngine_Work_OwnCancelIsAFailedAttempt(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{})
	p := b.pool(t, pool.FIFO, 1, 3)
	c := b.add(t, p.UUID, 1)[0]
	rec := newRecorder(settledN(1))
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(ctx context.Context, l *queue.Lease) error {
			return fmt.Errorf("dial: %w", context.Canceled)
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: rec.on})
	}()
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the item was not settled in 30 s")
	}
	cancel()
	require.NoError(t, <-errc)
	require.Equal(t, 1, rec.count(queue.EventRetried))
	require.Zero(t, rec.count(queue.EventReleased))
	require.Equal(t, 1, b.item(t, p.UUID, c).Attempts)
}
