package bench

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
)

// BenchmarkCampaign measures dispatch under a running campaign against the
// same cycle on a plain pool, in one run so that their ratio means
// something (the target: within 10 %). Governed is a pool attached to a
// campaign In Process with a rule: every write on it also reads its
// campaigns and the rule. Plain is a pool attached to none (its dispatch
// seeks its campaigns and finds none). The cycles are BenchmarkCycle's, at
// NORMAL:
//
//   - Serial/…: one goroutine, TryDequeue then Complete, FIFO;
//   - Workers16/…: 16 goroutines, Dequeue then Complete, Parallel cap 100;
//   - Workers16/DequeueCampaign: the same through DequeueCampaign, the
//     campaign's pools taken in turn (here, one).
func BenchmarkCampaign(b *testing.B) {
	for _, cycle := range []string{"Serial", "Workers16"} {
		for _, governed := range []bool{false, true} {
			name := cycle + "/Plain"
			if governed {
				name = cycle + "/Governed"
			}
			b.Run(name, func(b *testing.B) {
				eng, _ := open(b, sqlite.Normal)
				typ := pool.FIFO
				if cycle == "Workers16" {
					typ = pool.Parallel
				}
				p := mustPool(b, eng, typ)
				fill(b, eng, p.UUID, b.N)
				if governed {
					runCampaign(b, eng, p.UUID)
				}
				if cycle == "Serial" {
					cycleSerial(b, eng, p.UUID)
					return
				}
				cycleWorkers(b, eng, 16, func(ctx context.Context) (*queue.Lease, error) { return eng.Dequeue(ctx, p.UUID) })
			})
		}
	}
	b.Run("Workers16/DequeueCampaign", func(b *testing.B) {
		eng, _ := open(b, sqlite.Normal)
		p := mustPool(b, eng, pool.Parallel)
		fill(b, eng, p.UUID, b.N)
		c := runCampaign(b, eng, p.UUID)
		cycleWorkers(b, eng, 16, func(ctx context.Context) (*queue.Lease, error) { return eng.DequeueCampaign(ctx, c) })
	})
}

// runCampaign attaches pools to a new campaign In Process, whose rule
// allows every item more attempts than the benchmark makes, and returns it.
func runCampaign(b *testing.B, eng *queue.Engine, pools ...uuid.UUID) uuid.UUID {
	b.Helper()
	ctx := context.Background()
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "bench rule", MaxTotalCalls: new(5)})
	if err != nil {
		b.Fatal(err)
	}
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "bench campaign", RuleUUID: &r.UUID})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := eng.AttachPools(ctx, c.UUID, pools...); err != nil {
		b.Fatal(err)
	}
	if _, err := eng.StartCampaign(ctx, c.UUID); err != nil {
		b.Fatal(err)
	}
	return c.UUID
}

// BenchmarkCampaignFairness measures the round robin of DequeueCampaign:
// a campaign with a pool of 100,000 items (FIFO, never empty here) and a
// pool that gets one item per iteration; each iteration adds that item and
// claims (completing each claim) until it comes. claims/small-item is how
// many claims that took on average: 2 at most if the pools alternate,
// ~100,000 if the big pool came first.
func BenchmarkCampaignFairness(b *testing.B) {
	ctx := context.Background()
	eng, _ := open(b, sqlite.Normal)
	big, small := mustPool(b, eng, pool.FIFO), mustPool(b, eng, pool.FIFO)
	fill(b, eng, big.UUID, 100_000)
	c := runCampaign(b, eng, big.UUID, small.UUID)
	b.ResetTimer()
	claims := 0
	for range b.N {
		want := uuid.New()
		if _, err := eng.Add(ctx, small.UUID, pool.NewItem{ContactUUID: want}); err != nil {
			b.Fatal(err)
		}
		for {
			l, err := eng.DequeueCampaign(ctx, c)
			if err != nil {
				b.Fatal(err)
			}
			claims++
			if err := eng.Complete(ctx, l, ""); err != nil {
				b.Fatal(err)
			}
			if l.ContactUUID == want {
				break
			}
			if claims > 100*b.N {
				b.Fatalf("%d claims for %d small items: the small pool starves", claims, b.N)
			}
		}
	}
	b.ReportMetric(float64(claims)/float64(b.N), "claims/small-item")
	b.ReportMetric(float64(claims)/b.Elapsed().Seconds(), "items/s")
}
