package bench

import (
	"context"
	"path/filepath"
	"runtime"
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
func open(b testing.TB, d sqlite.Durability) (*queue.Engine, *sqlite.Store) {
	b.Helper()
	return openWith(b, d, queue.Options{})
}

// openWith is open with the engine's options (a clock, say).
func openWith(b testing.TB, d sqlite.Durability, opts queue.Options) (*queue.Engine, *sqlite.Store) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), sqlite.Options{Durability: d})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	eng, err := queue.New(st, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return eng, st
}

func mustPool(b testing.TB, eng *queue.Engine, typ pool.Type) pool.Pool {
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
func fill(b testing.TB, eng *queue.Engine, id uuid.UUID, n int) {
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

// addDelayed writes n Retrying items due in a year straight through the
// store, SQLite's or PostgreSQL's (making them through a million failed
// dispatches would take minutes): the worst case for a queue that scans
// past waiting items.
func addDelayed(b *testing.B, st store.Store, id uuid.UUID, n int) {
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
// Add on another goroutine (p50/p99 reported): the Add comes 1 ms after the
// Dequeue's first look, once it sleeps.
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
		before := eng.Stats().Operations
		go func() {
			l, err := eng.Dequeue(ctx, p.UUID)
			res <- result{time.Now(), l, err}
		}()
		for eng.Stats().Operations == before {
			runtime.Gosched() // until its first look, after which a wake-up cannot be missed
		}
		time.Sleep(time.Millisecond) // and it sleeps
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
	// No items/s here: each iteration waits for Dequeue to block first, so
	// a rate would measure the wait.
	reportPercentiles(b, lat)
}
