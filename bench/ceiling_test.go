package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	msqlite "modernc.org/sqlite"
)

// BenchmarkCeiling runs the dispatch cycle of Cycle/Serial and
// Cycle/Batch100 (NORMAL durability) without poolq: the same SQLite, the
// same connection settings, hand-written SQL on one held connection, in
// items/s. It answers the question the Cycle numbers raise: how much of
// their cost is the engine, and how much the writes themselves?
//
//   - Minimal: the jobs table the performance targets were set on (an id, a
//     state, attempts, a lease, a payload, one partial index on the due
//     set). A claim is one UPDATE … RETURNING, an ack one UPDATE.
//   - Schema: poolq's own file, made by sqlite.Open and filled by
//     Engine.Add, then closed and opened again as a plain database. A claim
//     and an ack make the writes the engine makes (the item's status,
//     attempts, start, token, lease and due flag; its completion; the pool's
//     status counts), in one statement each, with none of the engine's
//     reads (the pool, its dispatch state, the leases to check).
//   - Lean: Schema with two of issue 18's levers applied to the file: no
//     lease index (items_lease dropped: in-flight items are at most the
//     cap, readable through items_pool_status) and one due-set index, the
//     one the pool's order walks (items_ready_priority for Parallel,
//     items_ready for FIFO; a per-type index would be re-keyed on a type
//     switch). Same statements as Schema. (The third lever, the row split
//     in two, was measured in session 4: +15 % on Parallel, nothing on
//     FIFO; see bench/RESULTS.md.)
//
// Batch100 claims 100 items in one transaction and acks them in a second,
// Serial one item per transaction. b.N is the number of items, as in
// Cycle (rounded up to a whole batch), so that one -benchtime serves both.
func BenchmarkCeiling(b *testing.B) {
	for _, shape := range []struct {
		name  string
		batch int
	}{{"Serial", 1}, {"Batch100", 100}} {
		b.Run("Minimal/"+shape.name, func(b *testing.B) {
			db, conn := rawMinimal(b, batches(b.N, shape.batch)*shape.batch)
			defer db.Close()
			ceilingLoop(b, conn, shape.batch, minimalClaimSQL, minimalAckSQL, nil)
		})
		for _, lean := range []bool{false, true} {
			name := "Schema/"
			if lean {
				name = "Lean/"
			}
			b.Run(name+shape.name, func(b *testing.B) {
				typ := pool.Parallel
				claim, unused := schemaClaimParallelSQL, "items_ready"
				if shape.batch == 1 {
					typ, claim, unused = pool.FIFO, schemaClaimFIFOSQL, "items_ready_priority"
				}
				db, conn := rawPoolq(b, typ, batches(b.N, shape.batch)*shape.batch)
				defer db.Close()
				if lean {
					rawExec(b, conn, "DROP INDEX items_lease")
					rawExec(b, conn, "DROP INDEX "+unused)
				}
				ceilingLoop(b, conn, shape.batch, claim, schemaAckSQL, []string{schemaClaimCountsSQL, schemaAckCountsSQL})
			})
		}
	}
}

// batches returns the number of batches of size batch that hold n items,
// rounded up.
func batches(n, batch int) int { return (n + batch - 1) / batch }

const (
	minimalSchemaSQL = `CREATE TABLE jobs (
    id       INTEGER PRIMARY KEY,
    state    INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    lease    INTEGER,
    payload  TEXT
);
CREATE INDEX jobs_due ON jobs (id) WHERE state = 0`
	minimalClaimSQL = `UPDATE jobs SET state = 1, attempts = attempts + 1, lease = ?1
WHERE id IN (SELECT id FROM jobs WHERE state = 0 ORDER BY id LIMIT ?2)
RETURNING id, attempts, payload`
	minimalAckSQL = `UPDATE jobs SET state = 2, lease = NULL WHERE id IN (SELECT value FROM json_each(?1))`

	schemaClaim = `UPDATE OR FAIL items SET status = 'Processing', attempts = attempts + 1,
    started_at = coalesce(started_at, ?1), token = token + 1, lease_expires_at = ?1 + 600000000000, ready = 0
WHERE id IN (SELECT id FROM items WHERE pool_id = 1 AND ready = 1 AND (status = 'Pending' OR next_retry_at <= ?1)
    ORDER BY %s LIMIT ?2)
RETURNING id, contact_uuid, status, priority, attempts, retry_count, started_at, completed_at, failed_at,
    next_retry_at, notes, added_at, payload, token, lease_expires_at`
	schemaAckSQL = `UPDATE OR FAIL items SET status = 'Completed', completed_at = ?2, lease_expires_at = NULL
WHERE id IN (SELECT value FROM json_each(?1)) AND +status = 'Processing'`
	schemaClaimCountsSQL = `UPDATE OR FAIL pool_counts SET n = n + CASE status WHEN 'Pending' THEN -?1 ELSE ?1 END
WHERE pool_id = 1 AND status IN ('Pending', 'Processing')`
	schemaAckCountsSQL = `UPDATE OR FAIL pool_counts SET n = n + CASE status WHEN 'Processing' THEN -?1 ELSE ?1 END
WHERE pool_id = 1 AND status IN ('Processing', 'Completed')`
)

var (
	schemaClaimFIFOSQL     = fmt.Sprintf(schemaClaim, "id")
	schemaClaimParallelSQL = fmt.Sprintf(schemaClaim, "priority DESC, id")
)

// rawDSN is the writer's DSN of a Store at NORMAL durability, as far as
// it concerns a write transaction: SQLite's own checkpoint only as a
// backstop (20,000 pages), since rawOpen checkpoints in the background as
// the Store does. (Until session 31 the raw connections checkpointed
// inline every 1,000 pages, which the Store never does: that cost the
// baselines up to 2.5× on one-row commits, and made the engine look
// faster than its own ceiling.)
func rawDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=temp_store(memory)" +
		"&_pragma=synchronous(NORMAL)&_pragma=cache_size(-32768)&_pragma=journal_mode(WAL)" +
		"&_pragma=wal_autocheckpoint(20000)"
}

// rawCheckpointer is the Store's background checkpoint (store/sqlite's
// checkpoint.go) for a raw connection: every 100 ms it looks at the pages
// the connection's commits wrote to the log (counted by rawCommit), and at
// 1,000 or more runs a PASSIVE checkpoint on a connection of its own.
type rawCheckpointer struct {
	db    *sql.DB
	pages atomic.Int64
	stop  chan struct{}
	done  sync.WaitGroup
}

// rawCheckpointers maps the held connection of rawOpen to its checkpointer.
var rawCheckpointers sync.Map // *sql.Conn → *rawCheckpointer

func startRawCheckpointer(db *sql.DB) *rawCheckpointer {
	c := &rawCheckpointer{db: db, stop: make(chan struct{})}
	c.done.Go(func() {
		t := time.NewTicker(sqlite.DefaultCheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			seen := c.pages.Load()
			if seen < sqlite.CheckpointPages {
				continue
			}
			var busy, frames, copied int
			err := db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
			if err == nil && busy == 0 && frames == copied {
				c.pages.Add(-seen)
			}
		}
	})
	return c
}

// rawCommit commits conn's transaction and counts the pages it wrote to
// the log for the checkpointer, as the Store's writer does after each
// commit (a call into SQLite, no statement).
func rawCommit(b *testing.B, conn *sql.Conn) {
	b.Helper()
	rawExec(b, conn, "COMMIT")
	c, ok := rawCheckpointers.Load(conn)
	if !ok {
		b.Fatal("rawCommit: a connection not opened by rawOpen")
	}
	var n int
	err := conn.Raw(func(dc any) error {
		s, ok := dc.(interface {
			Status(msqlite.DBStatusOp, bool) (int, int, error)
		})
		if !ok {
			return fmt.Errorf("the driver's connection (%T) reports no status", dc)
		}
		var err error
		n, _, err = s.Status(msqlite.DBStatusCacheWrite, true)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	c.(*rawCheckpointer).pages.Add(int64(n))
}

// rawMinimal returns the minimal jobs table with n jobs waiting, on one
// held connection.
func rawMinimal(b *testing.B, n int) (*sql.DB, *sql.Conn) {
	b.Helper()
	ctx := context.Background()
	db, conn := rawOpen(b, filepath.Join(b.TempDir(), "minimal.db"))
	if _, err := conn.ExecContext(ctx, minimalSchemaSQL); err != nil {
		b.Fatal(err)
	}
	rawExec(b, conn, "BEGIN IMMEDIATE")
	ins, err := conn.PrepareContext(ctx, `INSERT INTO jobs (state, attempts, payload) VALUES (0, 0, NULL)`)
	if err != nil {
		b.Fatal(err)
	}
	for range n {
		if _, err := ins.ExecContext(ctx); err != nil {
			b.Fatal(err)
		}
	}
	ins.Close()
	rawCommit(b, conn)
	return db, conn
}

// rawPoolq returns a poolq file with one pool (key 1) of type typ holding n
// Pending items, filled as the Cycle benchmarks fill theirs, opened again
// without poolq.
func rawPoolq(b *testing.B, typ pool.Type, n int) (*sql.DB, *sql.Conn) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "poolq.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	eng, err := queue.New(st, queue.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p := mustPool(b, eng, typ)
	fill(b, eng, p.UUID, n)
	if err := eng.Close(); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	db, conn := rawOpen(b, path)
	var key, pending int
	if err := conn.QueryRowContext(ctx, `SELECT p.id, c.n FROM pools p JOIN pool_counts c ON c.pool_id = p.id
WHERE p.uuid = ? AND c.status = 'Pending'`, p.UUID[:]).Scan(&key, &pending); err != nil {
		b.Fatal(err)
	}
	if key != 1 || pending != n {
		b.Fatalf("pool key %d with %d Pending, want 1 with %d", key, pending, n)
	}
	return db, conn
}

// rawOpen opens the database at path with the Store writer's settings
// and returns it and one held connection, whose commits (rawCommit) are
// checkpointed in the background on the database's second connection.
// Every page of the file is read into the held connection's cache, as the
// Store's writer has them after filling the file.
func rawOpen(b *testing.B, path string) (*sql.DB, *sql.Conn) {
	b.Helper()
	db, err := sql.Open("sqlite", rawDSN(path))
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(2)
	conn, err := db.Conn(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var ok string
	if err := conn.QueryRowContext(context.Background(), "PRAGMA quick_check").Scan(&ok); err != nil || ok != "ok" {
		b.Fatalf("quick_check: %q, %v", ok, err)
	}
	c := startRawCheckpointer(db)
	rawCheckpointers.Store(conn, c)
	b.Cleanup(func() {
		close(c.stop)
		c.done.Wait()
		rawCheckpointers.Delete(conn)
		conn.Close()
	})
	return db, conn
}

func rawExec(b *testing.B, conn *sql.Conn, query string, args ...any) sql.Result {
	b.Helper()
	res, err := conn.ExecContext(context.Background(), query, args...)
	if err != nil {
		b.Fatalf("%s: %v", query, err)
	}
	return res
}

// ceilingLoop claims batch items batches(b.N, batch) times, each claim and each ack in a
// transaction of its own, and checks that every claim found batch items
// and every ack settled them all. counts, when given, are the statements
// that move the claimed and the acked items between status counts (and the
// ack then takes the time of completion too).
func ceilingLoop(b *testing.B, conn *sql.Conn, batch int, claimSQL, ackSQL string, counts []string) {
	ctx := context.Background()
	prepare := func(q string) *sql.Stmt {
		s, err := conn.PrepareContext(ctx, q)
		if err != nil {
			b.Fatalf("%s: %v", q, err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	claim, ack := prepare(claimSQL), prepare(ackSQL)
	var claimCounts, ackCounts *sql.Stmt
	if counts != nil {
		claimCounts, ackCounts = prepare(counts[0]), prepare(counts[1])
	}
	ids := make([]int64, 0, batch)
	var vals, ptrs []any // a claimed row, scanned
	rounds := batches(b.N, batch)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range rounds {
		now := time.Unix(0, 0).Add(time.Duration(i) * time.Millisecond).Add(100 * 365 * 24 * time.Hour).UnixNano()
		rawExec(b, conn, "BEGIN IMMEDIATE")
		rows, err := claim.QueryContext(ctx, now, batch)
		if err != nil {
			b.Fatal(err)
		}
		if ptrs == nil { // once: the columns of claimSQL do not change
			cols, err := rows.Columns()
			if err != nil {
				b.Fatal(err)
			}
			vals = make([]any, len(cols))
			ptrs = make([]any, len(cols))
			for k := range vals {
				ptrs[k] = &vals[k]
			}
		}
		ids = ids[:0]
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, vals[0].(int64))
		}
		if err := rows.Err(); err != nil {
			b.Fatal(err)
		}
		if len(ids) != batch {
			b.Fatalf("claimed %d, want %d", len(ids), batch)
		}
		if claimCounts != nil {
			if _, err := claimCounts.ExecContext(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		rawCommit(b, conn)

		list, err := json.Marshal(ids)
		if err != nil {
			b.Fatal(err)
		}
		rawExec(b, conn, "BEGIN IMMEDIATE")
		args := []any{string(list)}
		if counts != nil {
			args = append(args, now)
		}
		res, err := ack.ExecContext(ctx, args...)
		if err != nil {
			b.Fatal(err)
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(batch) {
			b.Fatalf("acked %d (%v), want %d", n, err, batch)
		}
		if ackCounts != nil {
			if _, err := ackCounts.ExecContext(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		rawCommit(b, conn)
	}
	perSecond(b, rounds*batch)
	if counts != nil {
		b.StopTimer()
		var done int
		if err := conn.QueryRowContext(ctx, `SELECT n FROM pool_counts WHERE pool_id = 1 AND status = 'Completed'`).Scan(&done); err != nil {
			b.Fatal(err)
		}
		if done != rounds*batch {
			b.Fatalf("%d Completed in pool_counts, want %d", done, rounds*batch)
		}
	}
}
