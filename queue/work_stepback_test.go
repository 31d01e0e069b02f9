package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_Work_NoHandlerAfterStepBack: the clock steps back 10 s while
// a slow OnEvent holds a claimed lease's handler back past the lease's end
// (a lease of 200 ms, OnEvent 300 ms): the lease has ended, though the
// clock reads 10 s before its end. The handler must not start (the
// runner never starts a handler on a lease that ended): the lease is lost
// as one that ended before its handler started. Judged by the clock
// alone, the handler started, on a call every other node takes for ended
// (PostgreSQL's, their clocks right), and its watchdog gave it a whole
// lease more.
func TestEngine_Work_NoHandlerAfterStepBack(t *testing.T) {
	t.Parallel()
	const lease = 200 * time.Millisecond
	var off atomic.Int64
	b := realEngine(t, queue.Options{LeaseTimeout: lease, PollInterval: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(off.Load())) }})
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	rec := newRecorder(settledN(1))
	on := func(ev queue.Event) {
		if ev.Kind == queue.EventDispatched {
			off.Store(int64(-10 * time.Second))
			time.Sleep(lease + 100*time.Millisecond)
		}
		rec.on(ev)
	}
	var started atomic.Bool
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			started.Store(true)
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: on})
	}()
	<-rec.done
	cancel()
	require.NoError(t, <-errc)
	require.False(t, started.Load(), "a handler started on a lease that had ended")
	require.Equal(t, 1, rec.count(queue.EventExpired))
}
