package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
)

// open returns an engine over a fresh SQLite file in a temp dir: the real
// deployment shape (WAL, separate read pool), not :memory:.
func open(b *testing.B, d sqlite.Durability) (*queue.Engine, *sqlite.Store) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	eng, err := queue.New(st, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return eng, st
}

func mustPool(b *testing.B, eng *queue.Engine, typ pool.Type) pool.Pool {
	b.Helper()
	p, err := eng.CreatePool(context.Background(), pool.CreateParams{
		Name: "bench pool", Description: "benchmark", Type: typ, MaxParallelItems: new(100),
	})
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// fill adds n Pending items to a pool in batches of 10k.
func fill(b *testing.B, eng *queue.Engine, id uuid.UUID, n int) {
	b.Helper()
	const batch = 10_000
	items := make([]pool.NewItem, 0, batch)
	for done := 0; done < n; {
		items = items[:0]
		for k := 0; k < batch && done < n; k++ {
			items = append(items, pool.NewItem{ContactUUID: uuid.New(), Priority: done % 10})
			done++
		}
		if _, err := eng.Add(context.Background(), id, items...); err != nil {
			b.Fatal(err)
		}
	}
}

func perSecond(b *testing.B, items int) {
	b.ReportMetric(float64(items)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkPool measures the pool half of the engine: one operation per
// iteration, each its own transaction.
func BenchmarkPool(b *testing.B) {
	ctx := context.Background()
	b.Run("Create", func(b *testing.B) {
		eng, _ := open(b, sqlite.Normal)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := eng.CreatePool(ctx, pool.CreateParams{Name: "bench pool", Description: "benchmark"}); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b, b.N)
	})
	b.Run("Update", func(b *testing.B) {
		eng, _ := open(b, sqlite.Normal)
		p := mustPool(b, eng, pool.FIFO)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxParallelItems: new(1 + i%100)}); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b, b.N)
	})
	b.Run("Get", func(b *testing.B) {
		eng, _ := open(b, sqlite.Normal)
		p := mustPool(b, eng, pool.FIFO)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := eng.Pool(ctx, p.UUID); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b, b.N)
	})
	b.Run("List", func(b *testing.B) {
		eng, _ := open(b, sqlite.Normal)
		for range 100 {
			mustPool(b, eng, pool.FIFO)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := eng.Pools(ctx, pool.PoolQuery{PerPage: 15, Search: "bench"}); err != nil {
				b.Fatal(err)
			}
		}
		perSecond(b, b.N)
	})
}

// BenchmarkAdd measures bulk Add: one call, one transaction per batch.
func BenchmarkAdd(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprintf("batch=%d", n), func(b *testing.B) {
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
				if _, err := eng.Add(ctx, p.UUID, items...); err != nil {
					b.Fatal(err)
				}
			}
			perSecond(b, b.N*n)
		})
	}
}

// BenchmarkCycle measures one worker's dispatch cycle, TryDequeue then
// Complete (two write transactions per item), on a FIFO pool.
func BenchmarkCycle(b *testing.B) {
	ctx := context.Background()
	for _, d := range []sqlite.Durability{sqlite.Normal, sqlite.Full} {
		b.Run(d.String(), func(b *testing.B) {
			eng, _ := open(b, d)
			p := mustPool(b, eng, pool.FIFO)
			fill(b, eng, p.UUID, 10_000)
			left := 10_000
			b.ReportAllocs()
			for b.Loop() {
				if left == 0 {
					b.StopTimer()
					fill(b, eng, p.UUID, 10_000)
					left = 10_000
					b.StartTimer()
				}
				l, err := eng.TryDequeue(ctx, p.UUID)
				if err != nil {
					b.Fatal(err)
				}
				if err := eng.Complete(ctx, l, ""); err != nil {
					b.Fatal(err)
				}
				left--
			}
			perSecond(b, b.N)
		})
	}
}

// BenchmarkClaim proves that claiming the next item is an index seek: the
// cost of TryDequeue + Complete on a pool of 10k items is the cost on a pool
// of 1M, and stays so when half of the items (the oldest, which FIFO meets
// first) wait for a retry time in the future. Compare ns/op across the
// sizes of one type.
func BenchmarkClaim(b *testing.B) {
	ctx := context.Background()
	sizes := []int{10_000, 1_000_000}
	if testing.Short() {
		sizes = []int{10_000, 100_000}
	}
	for _, typ := range []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel} {
		for _, n := range sizes {
			for _, delayed := range []bool{false, true} {
				name := fmt.Sprintf("%s/items=%d", typ, n)
				if delayed {
					name += "/half-delayed"
				}
				b.Run(name, func(b *testing.B) {
					eng, st := open(b, sqlite.Normal)
					p := mustPool(b, eng, typ)
					if delayed {
						addDelayed(b, st, p.UUID, n/2)
						fill(b, eng, p.UUID, n/2)
					} else {
						fill(b, eng, p.UUID, n)
					}
					due := n
					if delayed {
						due = n / 2
					}
					b.ReportAllocs()
					for b.Loop() {
						if due == 0 { // keep the size: top up outside the timer
							b.StopTimer()
							fill(b, eng, p.UUID, 1_000)
							due = 1_000
							b.StartTimer()
						}
						l, err := eng.TryDequeue(ctx, p.UUID)
						if err != nil {
							b.Fatal(err)
						}
						if err := eng.Complete(ctx, l, ""); err != nil {
							b.Fatal(err)
						}
						due--
					}
					perSecond(b, b.N)
				})
			}
		}
	}
}

// addDelayed writes n Retrying items due in a year straight through the
// store (making them through a million failed dispatches would take
// minutes): the worst case for a queue that scans past waiting items.
func addDelayed(b *testing.B, st *sqlite.Store, id uuid.UUID, n int) {
	b.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	later := now.Add(365 * 24 * time.Hour)
	const batch = 10_000
	for done := 0; done < n; {
		items := make([]pool.Item, 0, batch)
		for k := 0; k < batch && done < n; k++ {
			it := pool.NewItem{ContactUUID: uuid.New(), Priority: 100}.Item(id, now) // would go first if due
			it.Status, it.Attempts, it.RetryCount, it.NextRetryAt = pool.StatusRetrying, 1, 1, &later
			items = append(items, it)
			done++
		}
		err := st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.InsertItems(ctx, id, items)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWake measures how long a blocked Dequeue takes to return after an
// Add on another goroutine (p50/p99 reported).
func BenchmarkWake(b *testing.B) {
	ctx := context.Background()
	eng, _ := open(b, sqlite.Normal)
	p := mustPool(b, eng, pool.FIFO)
	type result struct {
		at  time.Time
		l   *queue.Lease
		err error
	}
	lat := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		res := make(chan result, 1)
		go func() {
			l, err := eng.Dequeue(ctx, p.UUID)
			res <- result{time.Now(), l, err}
		}()
		time.Sleep(200 * time.Microsecond) // let it block
		start := time.Now()
		if _, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); err != nil {
			b.Fatal(err)
		}
		r := <-res
		if r.err != nil {
			b.Fatal(r.err)
		}
		lat = append(lat, r.at.Sub(start))
		if err := eng.Complete(ctx, r.l, ""); err != nil {
			b.Fatal(err)
		}
	}
	// No items/s here: each iteration sleeps to let Dequeue block first, so
	// a rate would measure the sleep.
	reportPercentiles(b, lat)
}
