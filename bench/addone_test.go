package bench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store/sqlite"
)

// BenchmarkAddOne is the single-Add path: one goroutine, one item per
// Add, each its own transaction (NORMAL durability), in items/s, beside
// what SQLite itself pays for the same durable step.
//
//   - Engine: Engine.Add of one new contact.
//   - EngineCtx: the same under a context that can end (as a request's
//     does), which the engine and the driver watch while it waits.
//   - RawMinimal: BEGIN IMMEDIATE; one INSERT into the minimal jobs table
//     of BenchmarkCeiling; COMMIT, on one held connection with the same
//     pragmas: the floor of any queue on this SQLite.
//   - RawSchema: the same on poolq's own file: the item's INSERT (every
//     index of items) and the pool's Pending count, in one transaction,
//     without any of the engine's reads or checks.
//
// Each runs back to back, and (Idle5ms) with the machine idle for 5 ms
// before every add, outside the timer, as an enqueue arrives at a service
// that is waiting for work: the add's latency p50 and p99 are reported
// instead of items/s. The difference between the two is the cost of
// starting from idle (a vCPU woken, caches cold), which no queue on this
// machine escapes.
func BenchmarkAddOne(b *testing.B) {
	ctx := context.Background()
	for _, gap := range []time.Duration{0, 5 * time.Millisecond} {
		suffix := ""
		if gap > 0 {
			suffix = "/Idle5ms"
		}
		for _, name := range []string{"Engine", "EngineCtx"} {
			b.Run(name+suffix, func(b *testing.B) {
				ctx := ctx
				if name == "EngineCtx" {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					defer cancel()
				}
				eng, _ := open(b, sqlite.Normal)
				p := mustPool(b, eng, pool.FIFO)
				contacts := make([]uuid.UUID, b.N)
				for i := range contacts {
					contacts[i] = uuid.New()
				}
				addLoop(b, gap, func(i int) {
					res, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contacts[i]})
					if err != nil {
						b.Fatal(err)
					}
					if res.ContactsAdded != 1 {
						b.Fatalf("added %d", res.ContactsAdded)
					}
				})
			})
		}
		b.Run("RawMinimal"+suffix, func(b *testing.B) {
			db, conn := rawOpen(b, filepath.Join(b.TempDir(), "minimal.db"))
			defer db.Close()
			rawExec(b, conn, minimalSchemaSQL)
			ins, err := conn.PrepareContext(ctx, `INSERT INTO jobs (state, attempts, payload) VALUES (0, 0, NULL)`)
			if err != nil {
				b.Fatal(err)
			}
			defer ins.Close()
			addLoop(b, gap, func(int) {
				rawExec(b, conn, "BEGIN IMMEDIATE")
				if _, err := ins.ExecContext(ctx); err != nil {
					b.Fatal(err)
				}
				rawCommit(b, conn)
			})
		})
		b.Run("RawSchema"+suffix, func(b *testing.B) {
			db, conn := rawPoolq(b, pool.FIFO, 0)
			defer db.Close()
			ins, err := conn.PrepareContext(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts,
    retry_count, notes, added_at, token, ready) VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1)`)
			if err != nil {
				b.Fatal(err)
			}
			defer ins.Close()
			count, err := conn.PrepareContext(ctx, `UPDATE pool_counts SET n = n + 1 WHERE pool_id = 1 AND status = 'Pending'`)
			if err != nil {
				b.Fatal(err)
			}
			defer count.Close()
			contacts := make([]uuid.UUID, b.N)
			for i := range contacts {
				contacts[i] = uuid.New()
			}
			addLoop(b, gap, func(i int) {
				rawExec(b, conn, "BEGIN IMMEDIATE")
				if _, err := ins.ExecContext(ctx, contacts[i][:], int64(i)); err != nil {
					b.Fatal(err)
				}
				if _, err := count.ExecContext(ctx); err != nil {
					b.Fatal(err)
				}
				rawCommit(b, conn)
			})
		})
	}
}

// addLoop times b.N calls of add and reports items/s; with a gap, it
// sleeps that long before each call with the timer stopped, and reports
// the calls' latency p50 and p99 instead.
func addLoop(b *testing.B, gap time.Duration, add func(i int)) {
	b.ReportAllocs()
	b.ResetTimer()
	var lat []time.Duration
	for i := range b.N {
		if gap > 0 {
			b.StopTimer()
			time.Sleep(gap)
			b.StartTimer()
		}
		start := time.Now()
		add(i)
		if gap > 0 {
			lat = append(lat, time.Since(start))
		}
	}
	if gap == 0 {
		// With gaps, b.N over the timed time would be one over the mean
		// latency, not a rate anything reaches: the percentiles say it.
		perSecond(b, b.N)
	}
	reportPercentiles(b, lat)
}
