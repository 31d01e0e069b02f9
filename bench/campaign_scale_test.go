package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
)

// BenchmarkCampaignScale measures what a claim under a campaign costs as
// the data around it grows, not the pool (serial, one goroutine, claim
// then Complete, at NORMAL, on a file; the campaign has campaignRule):
//
//   - EmptyPools/N: DequeueCampaign of a campaign of N pools, one of them
//     holding the items, the others empty. The turn moves past the pool
//     that gave, so each claim looks at the N-1 empty pools first.
//   - FullPools/N: the same, the N-1 other pools each with an item in a
//     call (a lease held for the whole run) and one waiting: full, so
//     each claim looks at N-1 pools where nothing may be taken.
//   - FinishedCampaigns/N: TryDequeue of a pool attached to N campaigns
//     that ran and completed (a pool reused by a new campaign every day)
//     and to the running one.
func BenchmarkCampaignScale(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{2, 20, 200} {
		b.Run(fmt.Sprintf("EmptyPools/%d", n), func(b *testing.B) {
			eng := openCampaign(b)
			pools := make([]pool.Pool, n)
			ids := make([]uuid.UUID, n)
			for i := range pools {
				pools[i] = mustPool(b, eng, pool.FIFO)
				ids[i] = pools[i].UUID
			}
			fillZone(b, eng, ids[0], b.N, campaignZone)
			c := runCampaign(b, eng, ids...)
			b.ResetTimer()
			for range b.N {
				l, err := eng.DequeueCampaign(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if err := eng.Complete(ctx, l, ""); err != nil {
					b.Fatal(err)
				}
			}
			perSecond(b, b.N)
		})
	}
	for _, n := range []int{2, 20, 200} {
		b.Run(fmt.Sprintf("FullPools/%d", n), func(b *testing.B) {
			eng := openCampaign(b)
			ids := make([]uuid.UUID, n)
			for i := range ids {
				ids[i] = mustPool(b, eng, pool.FIFO).UUID
			}
			fillZone(b, eng, ids[0], b.N, campaignZone)
			for _, id := range ids[1:] {
				fillZone(b, eng, id, 2, campaignZone)
			}
			c := runCampaign(b, eng, ids...)
			for _, id := range ids[1:] {
				if _, err := eng.TryDequeue(ctx, id); err != nil { // held, never settled: the pool is full
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for range b.N {
				l, err := eng.DequeueCampaign(ctx, c)
				if err != nil {
					b.Fatal(err)
				}
				if l.PoolUUID != ids[0] {
					b.Fatalf("a lease of pool %s, full", l.PoolUUID)
				}
				if err := eng.Complete(ctx, l, ""); err != nil {
					b.Fatal(err)
				}
			}
			perSecond(b, b.N)
		})
	}
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("FinishedCampaigns/%d", n), func(b *testing.B) {
			eng := openCampaign(b)
			p := mustPool(b, eng, pool.FIFO)
			for range n {
				old, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "yesterday"})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := eng.AttachPools(ctx, old.UUID, p.UUID); err != nil {
					b.Fatal(err)
				}
				if _, err := eng.StartCampaign(ctx, old.UUID); err != nil {
					b.Fatal(err)
				}
				if _, err := eng.CompleteCampaign(ctx, old.UUID); err != nil {
					b.Fatal(err)
				}
			}
			fillZone(b, eng, p.UUID, b.N, campaignZone)
			runCampaign(b, eng, p.UUID)
			b.ResetTimer()
			cycleSerial(b, eng, p.UUID)
		})
	}
}
