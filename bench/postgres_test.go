package bench

// Benchmarks on the PostgreSQL store (store/postgres), each in a schema of
// its own: the dispatch cycle (16 workers; DequeueN(100) + Settle), the
// Work drain, adds, the wake-up of a Dequeue by another engine's Add, the
// cycle under a campaign's rule (postgres_campaign_test.go), and a claim
// and a pool's reads at 10k and 1M items (postgres_scale_test.go). They
// need POOLQ_TEST_POSTGRES (see store/postgres/pgtest) and skip without it:
//
//	POOLQ_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	    go test -run '^$' -bench Postgres -skip 'PostgresAdd/Bulk/n=100000|PostgresClaim|PostgresPoolOps' -benchtime 5000x ./bench
//
// PostgresAdd/Bulk/n=100000 adds 100,000 rows an iteration: give it its
// own run, at -benchtime 3x; PostgresClaim and PostgresPoolOps fill pools
// of a million items, minutes of setup (bench/RESULTS.md has the commands
// of the published numbers).

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
)

// pgOpen returns n engines, each on its own store (its own pool of
// connections, as n nodes would have) on one new schema.
func pgOpen(b *testing.B, n int, opts postgres.Options, qopts queue.Options) []*queue.Engine {
	b.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 8
	}
	first, st := pgOpenStore(b, opts, qopts)
	engines := []*queue.Engine{first}
	opts.Schema = st.Schema()
	for range n - 1 {
		engines = append(engines, pgEngine(b, pgtest.OpenSchema(b, pgtest.URL(b), opts), qopts))
	}
	return engines
}

// pgOpenStore returns an engine on a store of its own (8 connections
// unless opts says otherwise) on a new schema, and the store.
func pgOpenStore(b *testing.B, opts postgres.Options, qopts queue.Options) (*queue.Engine, *postgres.Store) {
	b.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 8
	}
	st := pgtest.Open(b, pgtest.URL(b), opts)
	return pgEngine(b, st, qopts), st
}

// pgEngine returns an engine on st, closed when the benchmark ends.
func pgEngine(b *testing.B, st *postgres.Store, qopts queue.Options) *queue.Engine {
	b.Helper()
	eng, err := queue.New(st, qopts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close() })
	return eng
}

var pgDurabilities = []postgres.Durability{postgres.Normal, postgres.Full}

// BenchmarkPostgresCycle measures the dispatch cycle on PostgreSQL in
// items/s (all engines together):
//
//   - Serial: one goroutine, TryDequeue then Complete on a FIFO pool, each
//     a transaction of its own (the round trips of a lone claim and a
//     lone settlement);
//   - Workers16: 16 goroutines per engine, Dequeue then Complete, on a
//     Parallel pool with a cap of 100; Engines=3 runs three engines (three
//     nodes, 48 goroutines) on the same pool; NoGroupCommit turns group
//     commit off (MaxBatch 1); RowLock locks the pool's row rather than an
//     advisory lock;
//   - Batch100: one goroutine per engine, DequeueN(100) then one Settle of
//     what it got.
//
// b.N is the number of items; the pool is filled outside the timer.
func BenchmarkPostgresCycle(b *testing.B) {
	type variant struct {
		name    string
		engines int
		opts    postgres.Options
		qopts   queue.Options
	}
	var workers []variant
	for _, d := range pgDurabilities {
		workers = append(workers,
			variant{"Engines=1/" + d.String(), 1, postgres.Options{Durability: d}, queue.Options{}},
			variant{"Engines=3/" + d.String(), 3, postgres.Options{Durability: d}, queue.Options{}},
			variant{"Engines=1/NoGroupCommit/" + d.String(), 1, postgres.Options{Durability: d}, queue.Options{MaxBatch: 1}},
			variant{"Engines=1/RowLock/" + d.String(), 1, postgres.Options{Durability: d, Locking: postgres.RowLock}, queue.Options{}},
			variant{"Engines=3/RowLock/" + d.String(), 3, postgres.Options{Durability: d, Locking: postgres.RowLock}, queue.Options{}},
		)
	}
	for _, d := range pgDurabilities {
		b.Run("Serial/"+d.String(), func(b *testing.B) {
			engines := pgOpen(b, 1, postgres.Options{Durability: d}, queue.Options{})
			p := mustPool(b, engines[0], pool.FIFO)
			fill(b, engines[0], p.UUID, b.N)
			cycleSerial(b, engines[0], p.UUID)
		})
	}
	for _, v := range workers {
		b.Run("Workers16/"+v.name, func(b *testing.B) {
			engines := pgOpen(b, v.engines, v.opts, v.qopts)
			p := mustPool(b, engines[0], pool.Parallel)
			fill(b, engines[0], p.UUID, b.N)
			before := stats(engines)
			b.ReportAllocs()
			b.ResetTimer()
			runCycle(b, engines, 16, dequeueComplete(p.UUID))
			perSecond(b, b.N)
			reportBatching(b, before, stats(engines))
		})
	}
	for _, d := range pgDurabilities {
		for _, n := range []int{1, 3} {
			b.Run(fmt.Sprintf("Batch100/Engines=%d/%s", n, d), func(b *testing.B) {
				engines := pgOpen(b, n, postgres.Options{Durability: d}, queue.Options{})
				p := mustPool(b, engines[0], pool.Parallel) // cap 100
				fill(b, engines[0], p.UUID, b.N)
				b.ReportAllocs()
				b.ResetTimer()
				runCycle(b, engines, 1, func(ctx context.Context, eng *queue.Engine) (int, error) {
					ls, err := eng.DequeueN(ctx, p.UUID, 100)
					if err != nil {
						return 0, err
					}
					outs := make([]queue.Outcome, len(ls))
					for i, l := range ls {
						outs[i] = queue.Outcome{Lease: l}
					}
					results, err := eng.Settle(ctx, outs...)
					if err != nil {
						return 0, err
					}
					return len(ls), errors.Join(results...)
				})
				perSecond(b, b.N)
			})
		}
	}
}

// BenchmarkPostgresEmptyClaim measures a TryDequeue that finds nothing
// due (ErrEmpty), alone in its transaction: a claim that writes nothing,
// the round trips of a poll, per durability. The transaction still takes
// an id (read with BEGIN, see store/postgres's writeConn), so its commit
// writes a commit record, which Full flushes.
func BenchmarkPostgresEmptyClaim(b *testing.B) {
	for _, d := range pgDurabilities {
		b.Run(d.String(), func(b *testing.B) {
			eng := pgOpen(b, 1, postgres.Options{Durability: d}, queue.Options{})[0]
			p := mustPool(b, eng, pool.FIFO)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := eng.TryDequeue(ctx, p.UUID); !errors.Is(err, queue.ErrEmpty) {
					b.Fatal(err)
				}
			}
			perSecond(b, b.N)
		})
	}
}

// dequeueComplete is runCycle's step of the 16-worker cycles: Dequeue
// from pool id, then Complete.
func dequeueComplete(id uuid.UUID) func(context.Context, *queue.Engine) (int, error) {
	return func(ctx context.Context, eng *queue.Engine) (int, error) {
		l, err := eng.Dequeue(ctx, id)
		if err != nil {
			return 0, err
		}
		return 1, eng.Complete(ctx, l, "")
	}
}

// BenchmarkPostgresDrain is BenchmarkDrain on PostgreSQL (the peers'
// drain in-process): Engine.Work with 16 workers per engine over one
// Parallel pool; Engines=3 runs three engines (three nodes, each its own
// connections) on the pool.
func BenchmarkPostgresDrain(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("Work16/Engines=%d", n), func(b *testing.B) {
			drain(b, pgOpen(b, n, postgres.Options{}, queue.Options{}))
		})
	}
}

// stats sums the engines' write statistics.
func stats(engines []*queue.Engine) queue.Stats {
	var s queue.Stats
	for _, e := range engines {
		es := e.Stats()
		s.Transactions += es.Transactions
		s.Operations += es.Operations
	}
	return s
}

// runCycle runs workers goroutines per engine, each calling step until b.N
// items are done (step returns how many it settled).
func runCycle(b *testing.B, engines []*queue.Engine, workers int, step func(context.Context, *queue.Engine) (int, error)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for _, eng := range engines {
		for range workers {
			wg.Go(func() {
				for ctx.Err() == nil {
					n, err := step(ctx, eng)
					if ctx.Err() != nil {
						return
					}
					if err != nil {
						failed.Store(err)
						cancel()
						return
					}
					if done.Add(int64(n)) >= int64(b.N) {
						cancel()
					}
				}
			})
		}
	}
	wg.Wait()
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	if n := done.Load(); n != int64(b.N) {
		b.Fatalf("%d items settled, want %d", n, b.N)
	}
}

// BenchmarkPostgresAdd measures adding items on PostgreSQL, in items/s:
//
//   - Bulk/n=…: one Add call of n items (one transaction);
//   - Single16: Add calls of one item each from 16 goroutines (group
//     commit shares their transactions).
func BenchmarkPostgresAdd(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		b.Run(fmt.Sprintf("Bulk/n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			eng := pgOpen(b, 1, postgres.Options{}, queue.Options{})[0]
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
	for _, d := range pgDurabilities {
		b.Run("Single16/"+d.String(), func(b *testing.B) {
			eng := pgOpen(b, 1, postgres.Options{Durability: d}, queue.Options{})[0]
			p := mustPool(b, eng, pool.FIFO)
			contacts := make([]uuid.UUID, b.N)
			for i := range contacts {
				contacts[i] = uuid.New()
			}
			before := eng.Stats()
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			runCycle(b, []*queue.Engine{eng}, 16, func(ctx context.Context, eng *queue.Engine) (int, error) {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					<-ctx.Done()
					return 0, nil
				}
				_, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contacts[i]})
				return 1, err
			})
			perSecond(b, b.N)
			reportBatching(b, before, eng.Stats())
		})
	}
}

// BenchmarkPostgresWake measures how long a Dequeue blocked in one engine
// takes to return after an Add made through another engine (another node:
// its own store and connections), woken by LISTEN/NOTIFY, with an hour's
// poll (p50/p99 reported).
func BenchmarkPostgresWake(b *testing.B) {
	ctx := context.Background()
	engines := pgOpen(b, 2, postgres.Options{}, queue.Options{PollInterval: time.Hour})
	waiter, adder := engines[0], engines[1]
	p := mustPool(b, adder, pool.FIFO)
	type result struct {
		at  time.Time
		l   *queue.Lease
		err error
	}
	// One wake-up: a Dequeue blocked in waiter, then an Add through adder.
	wake := func() time.Duration {
		res := make(chan result, 1)
		before := waiter.Stats().Operations
		go func() {
			l, err := waiter.Dequeue(ctx, p.UUID)
			res <- result{time.Now(), l, err}
		}()
		for waiter.Stats().Operations == before {
			time.Sleep(50 * time.Microsecond) // until its first look, after which a wake-up cannot be missed
		}
		time.Sleep(time.Millisecond) // and it sleeps
		start := time.Now()
		if _, err := adder.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); err != nil {
			b.Fatal(err)
		}
		var r result
		select {
		case r = <-res:
		case <-time.After(10 * time.Second):
			b.Fatal("the Dequeue was not woken within 10 s")
		}
		if r.err != nil {
			b.Fatal(r.err)
		}
		if err := waiter.Complete(ctx, r.l, ""); err != nil {
			b.Fatal(err)
		}
		return r.at.Sub(start)
	}
	// The listener connects in the background: add until a blocked
	// Dequeue returns, then settle what was added meanwhile.
	warm, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	adding := make(chan struct{})
	go func() {
		defer close(adding)
		for warm.Err() == nil {
			if _, err := adder.Add(warm, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); err != nil && warm.Err() == nil {
				b.Error(err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	l, err := waiter.Dequeue(warm, p.UUID)
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the listener is up: the Dequeue came back
	cancel()
	<-adding // an Add under way at cancel may still commit: drained below, not met by the first wake
	for ; err == nil; l, err = waiter.TryDequeue(ctx, p.UUID) {
		if err := waiter.Complete(ctx, l, ""); err != nil {
			b.Fatal(err)
		}
	}
	if !errors.Is(err, queue.ErrEmpty) {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		lat = append(lat, wake())
	}
	reportPercentiles(b, lat)
}
