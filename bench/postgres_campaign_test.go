package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
)

// BenchmarkPostgresCampaign is BenchmarkCampaign's 16-worker cycle on
// PostgreSQL (Dequeue then Complete, a Parallel pool with a cap of 100),
// with one engine and with three (three nodes on the pool): Plain is a
// pool of no campaign; Governed one under a running campaign with
// campaignRule, its contacts in campaignZone at noon. A claim under a rule
// takes the campaign's lock (store.Tx.CampaignItems) and reads the
// contacts' items in its other pools (here none) and both lists.
//
// Beside50k is Governed with a second pool of 50,000 items attached to
// the campaign: each claim reads its contacts' items in that pool too, a
// seek per contact whatever the pool's size.
//
// WithAddDNC is Engines=3/Governed with a fourth goroutine, on the second
// engine, putting one contact on the do-not-call list every 10 ms while
// the cycles run: items/s is the cycles', and dnc-p50-µs and dnc-p99-µs
// the AddDNC calls' latency. An AddDNC waits for the claims under way that
// read the list, and the claims that read it while it waits wait for it.
func BenchmarkPostgresCampaign(b *testing.B) {
	loc, err := pool.LoadZone(campaignZone)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 3} {
		for _, governed := range []bool{false, true} {
			name := fmt.Sprintf("Workers16/Engines=%d/Plain", n)
			if governed {
				name = fmt.Sprintf("Workers16/Engines=%d/Governed", n)
			}
			b.Run(name, func(b *testing.B) {
				engines := pgOpen(b, n, postgres.Options{}, queue.Options{Now: campaignClock(loc)})
				eng := engines[0]
				p := mustPool(b, eng, pool.Parallel)
				fillZone(b, eng, p.UUID, b.N, campaignZone)
				contactLists(b, eng)
				if governed {
					runCampaign(b, eng, p.UUID)
				}
				b.ReportAllocs()
				b.ResetTimer()
				runCycle(b, engines, 16, dequeueComplete(p.UUID))
				perSecond(b, b.N)
			})
		}
	}
	b.Run("Workers16/Engines=3/WithAddDNC", func(b *testing.B) {
		engines := pgOpen(b, 3, postgres.Options{}, queue.Options{Now: campaignClock(loc)})
		eng := engines[0]
		p := mustPool(b, eng, pool.Parallel)
		fillZone(b, eng, p.UUID, b.N, campaignZone)
		contactLists(b, eng)
		runCampaign(b, eng, p.UUID)
		ctx, cancel := context.WithCancel(context.Background())
		lat := make(chan []time.Duration, 1)
		go func() {
			var ds []time.Duration
			defer func() { lat <- ds }()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				start := time.Now()
				if _, err := engines[1].AddDNC(ctx, uuid.New()); err != nil {
					if ctx.Err() == nil {
						b.Error(err)
					}
					return
				}
				ds = append(ds, time.Since(start))
			}
		}()
		b.ReportAllocs()
		b.ResetTimer()
		runCycle(b, engines, 16, dequeueComplete(p.UUID))
		perSecond(b, b.N)
		cancel()
		ds := <-lat
		reportNamedPercentiles(b, ds, "dnc")
	})
	b.Run("Workers16/Engines=1/Beside50k", func(b *testing.B) {
		engines := pgOpen(b, 1, postgres.Options{}, queue.Options{Now: campaignClock(loc)})
		eng := engines[0]
		p, other := mustPool(b, eng, pool.Parallel), mustPool(b, eng, pool.Parallel)
		fillZone(b, eng, p.UUID, b.N, campaignZone)
		fillZone(b, eng, other.UUID, 50_000, campaignZone)
		contactLists(b, eng)
		runCampaign(b, eng, p.UUID, other.UUID)
		b.ReportAllocs()
		b.ResetTimer()
		runCycle(b, engines, 16, dequeueComplete(p.UUID))
		perSecond(b, b.N)
	})
}
