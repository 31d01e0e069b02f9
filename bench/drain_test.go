package bench

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
)

// BenchmarkDrain measures what bench/peers calls the drain: Engine.Work
// with 16 workers and a handler that does nothing, over a Parallel pool
// (cap 100) filled with b.N items outside the timer, until every item is
// Completed. It reports items/s and the operations per write transaction.
// The peers' drain is this workload side by side with River and backlite.
func BenchmarkDrain(b *testing.B) {
	for _, d := range durabilities {
		b.Run("Work16/"+d.String(), func(b *testing.B) {
			eng, _ := open(b, d)
			drain(b, []*queue.Engine{eng})
		})
	}
}

// drain fills a Parallel pool (cap 100) with b.N items outside the timer
// and runs Engine.Work with 16 workers and a no-op handler on each engine
// until every item is Completed. It reports items/s (all engines together)
// and the operations per write transaction.
func drain(b *testing.B, engines []*queue.Engine) {
	p := mustPool(b, engines[0], pool.Parallel)
	fill(b, engines[0], p.UUID, b.N)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Int64
	var failure atomic.Value // the first event that is neither a dispatch nor a completion
	handler := func(context.Context, *queue.Lease) error { return nil }
	opts := queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 16, OnEvent: func(ev queue.Event) {
		switch ev.Kind {
		case queue.EventDispatched:
		case queue.EventCompleted:
			if done.Add(1) == int64(b.N) {
				cancel()
			}
		default: // a settlement failed: that item would never be counted, and the run never end
			failure.CompareAndSwap(nil, fmt.Sprintf("%s: %v", ev.Kind, ev.Err))
			cancel()
		}
	}}
	before := stats(engines)
	b.ReportAllocs()
	b.ResetTimer()
	errs := make(chan error, len(engines))
	for _, eng := range engines {
		go func() { errs <- eng.Work(ctx, handler, opts) }()
	}
	for range engines {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if f := failure.Load(); f != nil {
		b.Fatalf("event %s", f)
	}
	if n := done.Load(); n != int64(b.N) {
		b.Fatalf("%d items completed, want %d", n, b.N)
	}
	perSecond(b, b.N)
	reportBatching(b, before, stats(engines))
}
