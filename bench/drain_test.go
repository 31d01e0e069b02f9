package bench

import (
	"context"
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
			p := mustPool(b, eng, pool.Parallel)
			fill(b, eng, p.UUID, b.N)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var done atomic.Int64
			handler := func(context.Context, *queue.Lease) error { return nil }
			opts := queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 16, OnEvent: func(ev queue.Event) {
				if ev.Kind == queue.EventCompleted && done.Add(1) == int64(b.N) {
					cancel()
				}
			}}
			before := eng.Stats()
			b.ReportAllocs()
			b.ResetTimer()
			if err := eng.Work(ctx, handler, opts); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if n := done.Load(); n != int64(b.N) {
				b.Fatalf("%d items completed, want %d", n, b.N)
			}
			perSecond(b, b.N)
			reportBatching(b, before, eng.Stats())
		})
	}
}
