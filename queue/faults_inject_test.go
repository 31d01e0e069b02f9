package queue_test

// Review (r-faults): a statement that fails in the middle of a write
// transaction (an I/O error, a constraint the host added) must fail the
// call and leave nothing of it. On SQLite a failed statement does not end
// the transaction: a call that swallowed the error would commit the rest
// of its writes. Faults are injected with triggers on every table that
// fail the k-th row written (RAISE(FAIL)), for k = 1, 2, … until the call
// gets through.

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// addFaultTriggers adds to the file at path, on every table, triggers
// that count down the rows written in poolq_fault.left and fail the one
// that brings it to 0 (RAISE(FAIL): the count and poolq_fault.fired stay
// unless the transaction rolls back). It returns a connection to the file.
func addFaultTriggers(t *testing.T, path string) *sql.DB {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	require.NoError(t, err)
	var tables []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		tables = append(tables, n)
	}
	require.NoError(t, rows.Err())
	require.NotEmpty(t, tables)
	_, err = db.ExecContext(ctx, `CREATE TABLE poolq_fault (left INTEGER NOT NULL, fired INTEGER NOT NULL)`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO poolq_fault VALUES (-1, 0)`)
	require.NoError(t, err)
	for _, tb := range tables {
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			_, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE TRIGGER "poolq_fault_%s_%s" BEFORE %s ON "%s"
BEGIN
	UPDATE poolq_fault SET left = left - 1 WHERE left > 0;
	UPDATE poolq_fault SET fired = fired + 1, left = -1 WHERE left = 0;
	SELECT RAISE(FAIL, 'injected fault') WHERE changes() = 1;
END`, tb, ev, ev, tb))
			if err != nil { // a virtual table (full-text search) takes none
				break
			}
		}
	}
	return db
}

// TestSQLite_StatementFaultWritesNothing: every mutating call whose k-th
// row write fails returns an error and leaves the database as it was; a
// call that returns nil met no fault.
func TestSQLite_StatementFaultWritesNothing(t *testing.T) {
	t.Parallel()
	fixture := func(t *testing.T) (*testBundle, []faultOp, *sql.DB) {
		path := filepath.Join(t.TempDir(), "faults.db")
		st, err := sqlite.Open(context.Background(), path, sqlite.Options{CheckCache: true})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		c := newClock()
		eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
		b := &testBundle{ctx: context.Background(), eng: eng, st: st, clock: c}
		db := addFaultTriggers(t, path)
		return b, faultOps(t, b), db
	}
	_, ops, _ := fixture(t)
	for i := range ops {
		t.Run(ops[i].name, func(t *testing.T) {
			t.Parallel()
			b, ops, db := fixture(t)
			op := ops[i]
			for k := 1; ; k++ {
				require.Less(t, k, 10_000)
				before := stateOf(t, b)
				_, err := db.ExecContext(b.ctx, `UPDATE poolq_fault SET left = ?, fired = 0`, k)
				require.NoError(t, err)
				err = op.call(b.ctx)
				var fired int
				require.NoError(t, db.QueryRowContext(b.ctx, `SELECT fired FROM poolq_fault`).Scan(&fired))
				_, err2 := db.ExecContext(b.ctx, `UPDATE poolq_fault SET left = -1, fired = 0`)
				require.NoError(t, err2)
				if err == nil {
					require.Zero(t, fired, "%s returned nil after the fault at row write %d: its error was swallowed", op.name, k)
					break
				}
				// (RAISE(FAIL) in a cascade may surface as the foreign key's
				// failure instead.)
				require.Equal(t, before, stateOf(t, b), "%s: the fault at row write %d (%v) left writes behind", op.name, k, err)
			}
		})
	}
}
