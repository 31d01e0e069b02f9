package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
)

// Zones of BenchmarkSleepingZone, and the instant its clock reads: noon in
// New York on 2026-06-15 (16:00 UTC), which is 01:00 the next day in Tokyo.
// sleepingClock checks that one zone is inside the rule's window and the
// other outside, so a change of the zone data fails the benchmark instead
// of measuring something else.
const (
	awakeZone    = "America/New_York"
	sleepingZone = "Asia/Tokyo"
)

// BenchmarkSleepingZone measures claims on a pool most of whose contacts
// are asleep: a Parallel pool (cap 100) of awake contacts, alone or with
// sleeping ones, under a running campaign whose rule (campaignRule) allows
// 09:00–18:00 in the contact's zone, at a fixed instant (sleepingClock)
// that is mid-day for the awake zone and night for the sleeping one.
//
//   - awake=10000: 10,000 awake items.
//   - sleeping=1000000/awake=10000: the same 10,000 among 1,000,000
//     sleeping items, one awake item after every 100 sleeping ones in
//     insertion order, the sleeping ones at a higher priority: every
//     sleeping item comes before every awake one in the pool's order.
//
// Setup adds the items (eng.Add, 10,000 a call) and makes the first pass
// outside the timer: one TryDequeue (then Complete), which postpones every
// sleeping item to its next window start (Scheduled) a thousand a
// transaction before it reaches the first awake item. Its duration is
// reported as first-pass-s. The timed loop is BenchmarkClaim's: the
// latency of each TryDequeue (p50-µs, p99-µs), a Complete after each, and
// items/s of the whole cycle; the pool is topped up with 1,000 awake items
// outside the timer when its awake items run out. The target: p50 with
// the sleeping items within 2× of the awake ones alone. -short uses
// 100,000 sleeping items.
func BenchmarkSleepingZone(b *testing.B) {
	const awake = 10_000
	sleeping := []int{0, 1_000_000}
	if testing.Short() {
		sleeping[1] = 100_000
	}
	for _, n := range sleeping {
		name := fmt.Sprintf("awake=%d", awake)
		if n > 0 {
			name = fmt.Sprintf("sleeping=%d/awake=%d", n, awake)
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			eng, _ := openWith(b, sqlite.Normal, queue.Options{Now: sleepingClock(b)})
			p := mustPool(b, eng, pool.Parallel)
			addSleeping(b, eng, p.UUID, n, awake)
			runCampaign(b, eng, p.UUID)

			start := time.Now()
			l, err := eng.TryDequeue(ctx, p.UUID)
			if err != nil {
				b.Fatal(err)
			}
			firstPass := time.Since(start)
			if err := eng.Complete(ctx, l, ""); err != nil {
				b.Fatal(err)
			}
			d, err := eng.Pool(ctx, p.UUID)
			if err != nil {
				b.Fatal(err)
			}
			if got := d.StatusCounts[pool.StatusScheduled]; got != n {
				b.Fatalf("after the first pass: %d items Scheduled, want the %d sleeping ones", got, n)
			}
			if n > 0 {
				b.Logf("first pass: %d sleeping items postponed in %v (%.0f items/s)",
					n, firstPass.Round(time.Millisecond), float64(n)/firstPass.Seconds())
			}

			due := awake - 1
			lat := make([]time.Duration, 0, 4096)
			b.ReportAllocs()
			for b.Loop() { // the timer starts here
				if due == 0 { // keep the size: top up outside the timer
					b.StopTimer()
					addSleeping(b, eng, p.UUID, 0, 1_000)
					due = 1_000
					b.StartTimer()
				}
				start := time.Now()
				l, err := eng.TryDequeue(ctx, p.UUID)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Fatal(err)
				}
				if err := eng.Complete(ctx, l, ""); err != nil {
					b.Fatal(err)
				}
				due--
			}
			perSecond(b, b.N)
			reportPercentiles(b, lat)
			b.ReportMetric(firstPass.Seconds(), "first-pass-s")
		})
	}
}

// sleepingClock returns the fixed clock of BenchmarkSleepingZone, after
// checking that campaignRule's window holds it in awakeZone and not in
// sleepingZone.
func sleepingClock(b *testing.B) func() time.Time {
	b.Helper()
	awakeLoc, err := pool.LoadZone(awakeZone)
	if err != nil {
		b.Fatal(err)
	}
	sleepingLoc, err := pool.LoadZone(sleepingZone)
	if err != nil {
		b.Fatal(err)
	}
	r := campaignRule()
	start, err := campaign.ParseClock(*r.StartTime)
	if err != nil {
		b.Fatal(err)
	}
	end, err := campaign.ParseClock(*r.EndTime)
	if err != nil {
		b.Fatal(err)
	}
	w := campaign.Window{Start: start, End: end}
	now := time.Date(2026, 6, 15, 12, 0, 0, 0, awakeLoc).UTC()
	if !w.Contains(now, awakeLoc) || w.Contains(now, sleepingLoc) {
		b.Fatalf("%v: want inside %v in %s (%v) and outside in %s (%v)",
			now, w, awakeZone, now.In(awakeLoc), sleepingZone, now.In(sleepingLoc))
	}
	return func() time.Time { return now }
}

// addSleeping adds n items in sleepingZone at priority 1 and awake items
// in awakeZone at priority 0 to a pool, in insertion order an awake one
// after every n/awake sleeping ones, 10,000 a call.
func addSleeping(b *testing.B, eng *queue.Engine, id uuid.UUID, n, awake int) {
	b.Helper()
	every := n/awake + 1 // every'th item is awake
	const batch = 10_000
	items := make([]pool.NewItem, 0, batch)
	added := 0
	for i := 0; i < n+awake; i++ {
		it := pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{TimeZone: awakeZone}}
		if i%every != every-1 || added == awake {
			it.TimeZone, it.Priority = sleepingZone, 1
		} else {
			added++
		}
		items = append(items, it)
		if len(items) == batch || i == n+awake-1 {
			if _, err := eng.Add(context.Background(), id, items...); err != nil {
				b.Fatal(err)
			}
			items = items[:0]
		}
	}
	if added != awake {
		b.Fatalf("added %d awake items, want %d", added, awake)
	}
}

// fillZone adds n Pending items whose contacts are in zone to a pool, as
// fill does (priorities 0–9), in batches of 10k.
func fillZone(b *testing.B, eng *queue.Engine, id uuid.UUID, n int, zone string) {
	b.Helper()
	const batch = 10_000
	items := make([]pool.NewItem, 0, batch)
	for done := 0; done < n; {
		items = items[:0]
		for k := 0; k < batch && done < n; k++ {
			items = append(items, pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{TimeZone: zone}, Priority: done % 10})
			done++
		}
		if _, err := eng.Add(context.Background(), id, items...); err != nil {
			b.Fatal(err)
		}
	}
}
