package bench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store/sqlite"
)

// BenchmarkAddOne is the single-Add path: one goroutine, one item per
// Add, each its own transaction (NORMAL durability), in items/s, beside
// what SQLite itself pays for the same durable step.
//
//   - Engine: Engine.Add of one new contact.
//   - RawMinimal: BEGIN IMMEDIATE; one INSERT into the minimal jobs table
//     of BenchmarkCeiling; COMMIT, on one held connection with the same
//     pragmas: the floor of any queue on this SQLite.
//   - RawSchema: the same on poolq's own file: the item's INSERT (every
//     index of items) and the pool's Pending count, in one transaction,
//     without any of the engine's reads or checks.
func BenchmarkAddOne(b *testing.B) {
	ctx := context.Background()
	b.Run("Engine", func(b *testing.B) {
		eng, _ := open(b, sqlite.Normal)
		p := mustPool(b, eng, pool.FIFO)
		contacts := make([]uuid.UUID, b.N)
		for i := range contacts {
			contacts[i] = uuid.New()
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			res, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contacts[i]})
			if err != nil {
				b.Fatal(err)
			}
			if res.ContactsAdded != 1 {
				b.Fatalf("added %d", res.ContactsAdded)
			}
		}
		perSecond(b, b.N)
	})
	b.Run("RawMinimal", func(b *testing.B) {
		db, conn := rawOpen(b, filepath.Join(b.TempDir(), "minimal.db"))
		defer db.Close()
		rawExec(b, conn, minimalSchemaSQL)
		ins, err := conn.PrepareContext(ctx, `INSERT INTO jobs (state, attempts, payload) VALUES (0, 0, NULL)`)
		if err != nil {
			b.Fatal(err)
		}
		defer ins.Close()
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			rawExec(b, conn, "BEGIN IMMEDIATE")
			if _, err := ins.ExecContext(ctx); err != nil {
				b.Fatal(err)
			}
			rawExec(b, conn, "COMMIT")
		}
		perSecond(b, b.N)
	})
	b.Run("RawSchema", func(b *testing.B) {
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
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			rawExec(b, conn, "BEGIN IMMEDIATE")
			if _, err := ins.ExecContext(ctx, contacts[i][:], int64(i)); err != nil {
				b.Fatal(err)
			}
			if _, err := count.ExecContext(ctx); err != nil {
				b.Fatal(err)
			}
			rawExec(b, conn, "COMMIT")
		}
		perSecond(b, b.N)
	})
}
