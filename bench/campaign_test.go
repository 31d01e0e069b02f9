package bench

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
)

// BenchmarkCampaign measures dispatch under a running campaign against the
// same cycle on a plain pool, in one run so that their ratio means
// something (the target: within 15 %). Governed is a pool attached to a
// campaign In Process whose rule has a calling window (09:00–18:00) that
// every item is inside, a day cap above what the benchmark asks
// (campaignRule), and dnc_check and remove_on_opt_out: every claim reads
// the pool's campaigns and the rule, reads its due items in batches, looks
// their contacts up in the do-not-call and opt-out lists (10,000 and 100
// other contacts, so the lookups are seeks in real indexes) and computes
// each one's window and day count in its zone. Plain is a pool attached to
// none (its dispatch seeks its campaigns and finds none), with the same
// items and lists. Both engines read campaignClock, mid-day in the
// contacts' zone whenever the benchmark runs. The cycles are
// BenchmarkCycle's, at NORMAL:
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
				eng := openCampaign(b)
				typ := pool.FIFO
				if cycle == "Workers16" {
					typ = pool.Parallel
				}
				p := mustPool(b, eng, typ)
				fillZone(b, eng, p.UUID, b.N, campaignZone)
				contactLists(b, eng)
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
		eng := openCampaign(b)
		p := mustPool(b, eng, pool.Parallel)
		fillZone(b, eng, p.UUID, b.N, campaignZone)
		contactLists(b, eng)
		c := runCampaign(b, eng, p.UUID)
		cycleWorkers(b, eng, 16, func(ctx context.Context) (*queue.Lease, error) { return eng.DequeueCampaign(ctx, c) })
	})
}

// campaignZone is the zone of the campaign benchmarks' contacts, and
// their campaigns' default.
const campaignZone = "America/New_York"

// openCampaign is open at NORMAL with campaignClock, so that campaignRule's
// window is open whatever the time of day.
func openCampaign(b *testing.B) *queue.Engine {
	b.Helper()
	loc, err := pool.LoadZone(campaignZone)
	if err != nil {
		b.Fatal(err)
	}
	eng, _ := openWith(b, sqlite.Normal, queue.Options{Now: campaignClock(loc)})
	return eng
}

// campaignClock returns a clock that reads noon of today in loc when it
// is made and then advances with the real clock: inside a 09:00–18:00
// window in loc for six hours, far longer than a benchmark.
func campaignClock(loc *time.Location) func() time.Time {
	start := time.Now()
	y, m, d := start.In(loc).Date()
	noon := time.Date(y, m, d, 12, 0, 0, 0, loc)
	return func() time.Time { return noon.Add(time.Since(start)).UTC() }
}

// contactLists puts 10,000 contacts on the do-not-call list and opts 100
// out: none of them in a pool, so no item is skipped, but a rule's lookups
// search populated indexes.
func contactLists(b *testing.B, eng *queue.Engine) {
	b.Helper()
	ctx := context.Background()
	dnc := make([]uuid.UUID, queue.MaxContactsPerCall)
	for i := range dnc {
		dnc[i] = uuid.New()
	}
	if _, err := eng.AddDNC(ctx, dnc...); err != nil {
		b.Fatal(err)
	}
	for range 100 {
		if _, err := eng.OptOut(ctx, uuid.New()); err != nil {
			b.Fatal(err)
		}
	}
}

// campaignRule is the rule of the campaign benchmarks: a 09:00–18:00
// window, 10 attempts a day and 5 in all (more than any benchmark makes of
// an item), the do-not-call and opt-out checks on (their defaults, set
// here so that a change of default does not change the benchmark).
func campaignRule() campaign.CreateRuleParams {
	return campaign.CreateRuleParams{
		Name: "bench rule", MaxCallsPerDay: new(10), MaxTotalCalls: new(5),
		StartTime: new("09:00"), EndTime: new("18:00"),
		DNCCheck: new(true), RemoveOnOptOut: new(true),
	}
}

// runCampaign attaches pools to a new campaign In Process, with
// campaignRule and campaignZone as its default zone, and returns it.
func runCampaign(b *testing.B, eng *queue.Engine, pools ...uuid.UUID) uuid.UUID {
	b.Helper()
	ctx := context.Background()
	r, err := eng.CreateRule(ctx, campaignRule())
	if err != nil {
		b.Fatal(err)
	}
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "bench campaign", RuleUUID: &r.UUID, TimeZone: campaignZone})
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
	eng := openCampaign(b)
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
	// The rate of claims of a loop that also adds an item each time.
	b.ReportMetric(float64(claims)/b.Elapsed().Seconds(), "claims/s-with-adds")
}
