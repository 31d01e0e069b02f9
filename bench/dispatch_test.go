package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
)

var durabilities = []sqlite.Durability{sqlite.Normal, sqlite.Full}

// BenchmarkCycle measures the dispatch cycle — claim an item, complete it —
// in items/s, at both durabilities:
//
//   - Serial: one goroutine, TryDequeue then Complete on a FIFO pool (two
//     write transactions per item, nothing to share them with);
//   - Workers16: 16 goroutines, Dequeue then Complete, on a Parallel pool
//     with a cap of 100 (group commit shares transactions among them);
//   - Batch100: one goroutine, DequeueN(100) then one Settle of the 100.
//
// b.N is the number of items; the pool is filled outside the timer.
func BenchmarkCycle(b *testing.B) {
	for _, d := range durabilities {
		b.Run("Serial/"+d.String(), func(b *testing.B) {
			eng, _ := open(b, d)
			p := mustPool(b, eng, pool.FIFO)
			fill(b, eng, p.UUID, b.N)
			cycleSerial(b, eng, p.UUID)
		})
	}
	for _, d := range durabilities {
		b.Run("Workers16/"+d.String(), func(b *testing.B) {
			eng, _ := open(b, d)
			p := mustPool(b, eng, pool.Parallel)
			fill(b, eng, p.UUID, b.N)
			cycleWorkers(b, eng, 16, func(ctx context.Context) (*queue.Lease, error) { return eng.Dequeue(ctx, p.UUID) })
		})
	}
	for _, d := range durabilities {
		b.Run("Batch100/"+d.String(), func(b *testing.B) {
			ctx := context.Background()
			eng, _ := open(b, d)
			p := mustPool(b, eng, pool.Parallel) // cap 100
			fill(b, eng, p.UUID, b.N)
			outs := make([]queue.Outcome, 0, 100)
			b.ReportAllocs()
			b.ResetTimer()
			for left := b.N; left > 0; {
				ls, err := eng.DequeueN(ctx, p.UUID, min(left, 100))
				if err != nil {
					b.Fatal(err)
				}
				outs = outs[:0]
				for _, l := range ls {
					outs = append(outs, queue.Outcome{Lease: l})
				}
				results, err := eng.Settle(ctx, outs...)
				if err != nil {
					b.Fatal(err)
				}
				if err := errors.Join(results...); err != nil {
					b.Fatal(err)
				}
				left -= len(ls)
			}
			perSecond(b, b.N)
		})
	}
}

// cycleSerial times b.N cycles of TryDequeue then Complete on pool id, from
// one goroutine, and reports items/s.
func cycleSerial(b *testing.B, eng *queue.Engine, id uuid.UUID) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		l, err := eng.TryDequeue(ctx, id)
		if err != nil {
			b.Fatal(err)
		}
		if err := eng.Complete(ctx, l, ""); err != nil {
			b.Fatal(err)
		}
	}
	perSecond(b, b.N)
}

// cycleWorkers times b.N cycles of claim then Complete from n goroutines,
// and reports items/s and ops/tx.
func cycleWorkers(b *testing.B, eng *queue.Engine, n int, claim func(context.Context) (*queue.Lease, error)) {
	before := eng.Stats()
	b.ReportAllocs()
	b.ResetTimer()
	runCycle(b, []*queue.Engine{eng}, n, func(ctx context.Context, eng *queue.Engine) (int, error) {
		l, err := claim(ctx)
		if err != nil {
			return 0, err
		}
		return 1, eng.Complete(ctx, l, "")
	})
	perSecond(b, b.N)
	reportBatching(b, before, eng.Stats())
}

// reportBatching reports the operations per write transaction between two
// Stats: how much group commit shared.
func reportBatching(b *testing.B, before, after queue.Stats) {
	tx := after.Transactions - before.Transactions
	if tx > 0 {
		b.ReportMetric(float64(after.Operations-before.Operations)/float64(tx), "ops/tx")
	}
}

// BenchmarkAdd measures adding items, in items/s:
//
//   - Bulk/n=…: one Add call of n items (one transaction);
//   - BulkContacts: one Add of 100k items with contact fields (indexed
//     for search too).
//   - Single16: Add calls of one item each from 16 goroutines (group
//     commit shares their transactions).
//
// -short skips the 1M batch.
func BenchmarkAdd(b *testing.B) {
	sizes := []int{1_000, 100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:2]
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("Bulk/n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			eng, _ := open(b, sqlite.Normal)
			p := mustPool(b, eng, pool.FIFO)
			items := make([]pool.NewItem, n)
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				for k := range items {
					items[k] = pool.NewItem{ContactUUID: uuid.New(), Priority: k % 10}
				}
				b.StartTimer()
				res, err := eng.Add(ctx, p.UUID, items...)
				if err != nil {
					b.Fatal(err)
				}
				if res.ContactsAdded != n {
					b.Fatalf("added %d, want %d", res.ContactsAdded, n)
				}
			}
			perSecond(b, b.N*n)
		})
	}
	// Bulk adds of items with contact fields (name, phone, email, zone),
	// which the store also indexes for search.
	b.Run("BulkContacts/n=100000", func(b *testing.B) {
		ctx := context.Background()
		eng, _ := open(b, sqlite.Normal)
		p := mustPool(b, eng, pool.FIFO)
		const n = 100_000
		items := make([]pool.NewItem, n)
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			for k := range items {
				items[k] = contactItem(k)
			}
			b.StartTimer()
			res, err := eng.Add(ctx, p.UUID, items...)
			if err != nil {
				b.Fatal(err)
			}
			if res.ContactsAdded != n {
				b.Fatalf("added %d, want %d", res.ContactsAdded, n)
			}
		}
		perSecond(b, b.N*n)
	})
	b.Run("Single16", func(b *testing.B) {
		ctx := context.Background()
		eng, _ := open(b, sqlite.Normal)
		p := mustPool(b, eng, pool.FIFO)
		contacts := make([]uuid.UUID, b.N)
		for i := range contacts {
			contacts[i] = uuid.New()
		}
		before := eng.Stats()
		b.ReportAllocs()
		b.ResetTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			wg.Go(func() {
				for {
					i := next.Add(1) - 1
					if i >= int64(b.N) {
						return
					}
					if _, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contacts[i]}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
		perSecond(b, b.N)
		reportBatching(b, before, eng.Stats())
	})
}

// BenchmarkClaim proves that claiming the next item is an index seek: the
// latency of TryDequeue (p50/p99, each claim followed by a Complete outside
// the percentiles; ns/op and items/s are of the whole claim + Complete
// cycle) on a pool of 10k items against one of 1M, and when half of the
// items wait for a retry time a year away: those each order meets first,
// were they due (the oldest for FIFO, the newest for LIFO, kept so by each
// top-up, the highest priority for Parallel). -short uses 100k for 1M.
func BenchmarkClaim(b *testing.B) {
	for _, typ := range []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel} {
		for _, n := range claimSizes() {
			for _, delayed := range []bool{false, true} {
				b.Run(claimName(typ, n, delayed), func(b *testing.B) {
					eng, st := open(b, sqlite.Normal)
					newClaimPool(b, eng, st, typ, n, delayed).cycle(b)
				})
			}
		}
	}
}

// claimSizes are the pool sizes of BenchmarkClaim and BenchmarkPostgresClaim:
// 10k and 1M items, 10k and 100k with -short.
func claimSizes() []int {
	if testing.Short() {
		return []int{10_000, 100_000}
	}
	return []int{10_000, 1_000_000}
}

// claimName names a sub-benchmark of BenchmarkClaim or BenchmarkPostgresClaim.
func claimName(typ pool.Type, n int, delayed bool) string {
	name := fmt.Sprintf("%s/items=%d", typ, n)
	if delayed {
		name += "/half-delayed"
	}
	return name
}

// claimPool is a pool of BenchmarkClaim: its due items kept within 1,000
// of what it started with as it is claimed from, by top-ups of 1,000
// outside the timer. (Topped up only once empty, a pool of 10,000 was
// measured as it shrank to nothing, then between 1,000 and none, beside
// one of a million that stayed a million.)
type claimPool struct {
	eng   *queue.Engine
	st    store.Store
	id    uuid.UUID
	zone  string // the zone of the contacts added, none if empty
	onTop bool   // the delayed items come after the due ones, and after each top-up's
	due   int    // due items left
	full  int    // due items at the start
}

// newClaimPool creates a pool of type typ and adds n items to it, half of
// them Retrying a year away if delayed, where the pool's order meets them
// first: before the due ones for FIFO (the oldest) and Parallel (their
// priority is higher), after them for LIFO (the newest).
func newClaimPool(b *testing.B, eng *queue.Engine, st store.Store, typ pool.Type, n int, delayed bool) *claimPool {
	b.Helper()
	c := &claimPool{eng: eng, st: st, id: mustPool(b, eng, typ).UUID, onTop: delayed && typ == pool.LIFO, due: n}
	if delayed {
		c.due = n / 2
	}
	c.full = c.due
	if delayed && !c.onTop {
		addDelayed(b, st, c.id, n-c.due)
	}
	c.add(b, c.due)
	if c.onTop {
		addDelayed(b, st, c.id, n-c.due)
	}
	return c
}

// add adds n Pending items to the pool, in c's zone.
func (c *claimPool) add(b *testing.B, n int) {
	b.Helper()
	if c.zone != "" {
		fillZone(b, c.eng, c.id, n, c.zone)
		return
	}
	fill(b, c.eng, c.id, n)
}

// cycle times b.N cycles of TryDequeue then Complete on the pool, and
// reports items/s of the cycles and the p50 and p99 of the claims alone.
func (c *claimPool) cycle(b *testing.B) {
	ctx := context.Background()
	lat := make([]time.Duration, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		if c.due == 0 || c.due+1_000 <= c.full { // keep the size: top up outside the timer
			b.StopTimer()
			c.add(b, 1_000)
			if c.onTop {
				addDelayed(b, c.st, c.id, 1_000)
			}
			c.due += 1_000
			b.StartTimer()
		}
		start := time.Now()
		l, err := c.eng.TryDequeue(ctx, c.id)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		if err := c.eng.Complete(ctx, l, ""); err != nil {
			b.Fatal(err)
		}
		c.due--
	}
	perSecond(b, b.N) // claim + Complete cycles, one item each
	reportPercentiles(b, lat)
}

// BenchmarkMemory reports the engine's memory with 10k and 1M items in a
// pool (-short: 100k), after dispatching: Go heap in use and the process's
// resident set (which includes SQLite's page cache, kept by the C-to-Go
// translation outside the Go heap). One op is one dispatch cycle; the
// numbers are read after the loop, with a GC first.
func BenchmarkMemory(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if testing.Short() {
		sizes = []int{10_000, 100_000}
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			ctx := context.Background()
			eng, _ := open(b, sqlite.Normal)
			p := mustPool(b, eng, pool.Parallel)
			fill(b, eng, p.UUID, n+b.N)
			b.ResetTimer()
			for range b.N {
				l, err := eng.TryDequeue(ctx, p.UUID)
				if err != nil {
					b.Fatal(err)
				}
				if err := eng.Complete(ctx, l, ""); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			perSecond(b, b.N)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
			if rss, ok := residentMiB(); ok {
				b.ReportMetric(rss, "rss-MiB")
			}
		})
	}
}

// residentMiB returns the process's resident set size from /proc (Linux).
func residentMiB() (float64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return 0, false
			}
			return kb / 1024, true
		}
	}
	return 0, false
}
