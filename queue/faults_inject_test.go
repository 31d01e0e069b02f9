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
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
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
// call that returns nil met no fault. Each call is made from one
// goroutine, through the engine's group commit, whose error paths are
// the same for every call: under -short (CI's race run, after the plain
// run has made them all) a quarter of the calls are made, which was 65 s
// of the race run's test time with all of them.
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
			if testing.Short() && i%4 != 0 {
				t.Skip("-short (CI's race run) makes a quarter of the calls; the plain run makes them all")
			}
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

// schemaTables returns a connection to url (closed when t ends), schema
// quoted, and the quoted names of its tables: for the tests that put
// triggers on every table of a store's schema.
func schemaTables(t *testing.T, url, schema string) (conn *pgx.Conn, quoted string, tables []string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	rows, err := conn.Query(ctx, `SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = $1`, schema)
	require.NoError(t, err)
	tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return conn, pgx.Identifier{schema}.Sanitize(), tables
}

// addPGFaultTriggers adds to the store's schema, on every table, triggers
// that fail the row write that draws 0 from the sequence poolq_fault_seq
// (not transactional: the fault fires once, whatever rolls back), and
// returns arm, which makes the k-th row write from now fail, and fired,
// which reports whether the fault armed last has fired.
func addPGFaultTriggers(t *testing.T, url, schema string) (arm func(k int), fired func() bool) {
	t.Helper()
	ctx := context.Background()
	conn, s, tables := schemaTables(t, url, schema)
	_, err := conn.Exec(ctx, `CREATE SEQUENCE `+s+`.poolq_fault_seq MINVALUE -1000000000 START -1000000000`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE FUNCTION `+s+`.poolq_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('`+s+`.poolq_fault_seq') = 0 THEN RAISE EXCEPTION 'injected fault'; END IF;
	IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
	RETURN NEW;
END $$`)
	require.NoError(t, err)
	for _, tb := range tables {
		_, err = conn.Exec(ctx, `CREATE TRIGGER poolq_fault BEFORE INSERT OR UPDATE OR DELETE ON `+s+`.`+tb+
			` FOR EACH ROW EXECUTE FUNCTION `+s+`.poolq_fault()`)
		require.NoError(t, err)
	}
	arm = func(k int) {
		_, err := conn.Exec(ctx, `SELECT setval('`+s+`.poolq_fault_seq', $1, true)`, -k)
		require.NoError(t, err)
	}
	fired = func() bool {
		var v int64
		require.NoError(t, conn.QueryRow(ctx, `SELECT last_value FROM `+s+`.poolq_fault_seq`).Scan(&v))
		return v >= 0
	}
	return arm, fired
}

// TestPostgres_FaultInABatchFailsOnlyItsCall: a row write that fails in a
// group-commit batch (a trigger's exception at the k-th row write, for
// every k) fails the one call it belongs to, which leaves nothing behind;
// every other call of the batch gets through with all its effect.
func TestPostgres_FaultInABatchFailsOnlyItsCall(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	pst := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	batchFaults(t, pst, func() (func(int), func() bool) { return addPGFaultTriggers(t, url, pst.Schema()) }, true)
}

// TestSQLite_FaultInABatchFailsOnlyItsCall is
// TestPostgres_FaultInABatchFailsOnlyItsCall on SQLite, where the fault's
// count rolls back with what it counted: a batch run again meets it again,
// and a call rolled back to its savepoint leaves the count to the next, so
// that one fault may fail several calls, each leaving nothing.
func TestSQLite_FaultInABatchFailsOnlyItsCall(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "faults.db")
	st := openFileStore(t, path)
	batchFaults(t, st, func() (func(int), func() bool) {
		db := addFaultTriggers(t, path)
		arm := func(k int) {
			_, err := db.ExecContext(context.Background(), `UPDATE poolq_fault SET left = ?, fired = 0`, k)
			require.NoError(t, err)
		}
		return arm, nil
	}, false)
}

// batchFaults runs a batch of calls behind a held transaction on st with
// a fault armed at the k-th row write, for k = 1, 2, … until none fails.
// onePerFault: a fault fails one call at most (fired says whether it did).
func batchFaults(t *testing.T, st store.Store, setup func() (arm func(int), fired func() bool), onePerFault bool) {
	ctx := context.Background()
	hs := &heldStore{Store: st}
	c := newClock()
	eng := openEngine(t, hs, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	b := &testBundle{ctx: ctx, eng: eng, clock: c}
	p1 := b.pool(t, pool.FIFO, 1, 3)
	p2 := b.pool(t, pool.Parallel, 100, 3)
	b.add(t, p2.UUID, 100)
	p3 := b.pool(t, pool.Parallel, 10, 3)
	w := b.add(t, p3.UUID, 1)[0]
	p4 := b.pool(t, pool.FIFO, 1, 3)
	inFlight, err := eng.TryDequeue(ctx, p2.UUID)
	require.NoError(t, err)
	arm, fired := setup()

	for k := 1; ; k++ {
		require.Less(t, k, 99)
		l, err := eng.TryDequeue(ctx, p2.UUID)
		require.NoError(t, err)
		contact, dnc := uuid.New(), uuid.New()
		ruleName, poolName := fmt.Sprintf("rule %d", k), fmt.Sprintf("pool %d", k)
		calls := []struct {
			name   string
			err    error
			call   func() error
			effect func() bool
		}{
			{name: "Add", call: func() error { _, err := eng.Add(ctx, p1.UUID, pool.NewItem{ContactUUID: contact}); return err },
				effect: func() bool { _, err := eng.Item(ctx, p1.UUID, contact); return err == nil }},
			{name: "Complete", call: func() error { return eng.Complete(ctx, l, "ok") },
				effect: func() bool { return b.item(t, p2.UUID, l.ContactUUID).Status == pool.StatusCompleted }},
			{name: "CreateRule", call: func() error {
				_, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: ruleName})
				return err
			}, effect: func() bool {
				rs, err := eng.Rules(ctx, campaign.RuleQuery{PerPage: pool.MaxPerPage, Search: ruleName})
				require.NoError(t, err)
				for _, r := range rs.Data {
					if r.Name == ruleName {
						return true
					}
				}
				return false
			}},
			{name: "AddDNC", call: func() error { _, err := eng.AddDNC(ctx, dnc); return err },
				effect: func() bool { on, err := eng.IsDNC(ctx, dnc); require.NoError(t, err); return on }},
			{name: "SetPriority", call: func() error { _, err := eng.SetPriority(ctx, p3.UUID, w, k); return err },
				effect: func() bool { return b.item(t, p3.UUID, w).Priority == k }},
			{name: "UpdatePool", call: func() error {
				_, err := eng.UpdatePool(ctx, p4.UUID, pool.UpdateParams{Name: &poolName})
				return err
			}, effect: func() bool { d, err := eng.Pool(ctx, p4.UUID); require.NoError(t, err); return d.Name == poolName }},
			{name: "SkipInFlight", call: func() error { _, err := eng.Skip(ctx, p2.UUID, inFlight.ContactUUID, "no"); return err },
				effect: func() bool { return b.item(t, p2.UUID, inFlight.ContactUUID).Status != pool.StatusProcessing }},
		}
		arm(k)
		entered, release := hs.holdNext(t)
		var wg sync.WaitGroup
		wg.Go(func() { _, err := eng.Add(ctx, p1.UUID, newItems(1)...); _ = err }) // the lead: its own transaction
		<-entered
		for i := range calls {
			n := queue.Queued(eng)
			wg.Go(func() { calls[i].err = calls[i].call() })
			require.Eventually(t, func() bool { return queue.Queued(eng) == n+1 }, 5*time.Second, time.Millisecond)
		}
		release()
		wg.Wait()
		hit := fired != nil && fired()
		arm(-1) // off
		failed := 0
		whole := strings.Contains(fmt.Sprint(calls[len(calls)-1].err), "injected fault")
		for _, cl := range calls {
			if whole {
				// The fault hit the statements that end the transaction
				// (the batch's count changes, sent with COMMIT): it
				// failed as a whole, and every call with it
				// (groupcommit's doc).
				require.ErrorContains(t, cl.err, "injected fault", "k=%d %s", k, cl.name)
				require.False(t, cl.effect(), "k=%d %s", k, cl.name)
				continue
			}
			if cl.name == "SkipInFlight" {
				require.ErrorIs(t, cl.err, queue.ErrInFlight, "k=%d", k)
				require.False(t, cl.effect(), "k=%d: the refused skip wrote", k)
				continue
			}
			if cl.err != nil {
				failed++
				require.ErrorContains(t, cl.err, "injected fault", "k=%d %s", k, cl.name)
			}
			require.Equal(t, cl.err == nil, cl.effect(), "k=%d %s: err %v", k, cl.name, cl.err)
		}
		if !whole && onePerFault {
			require.LessOrEqual(t, failed, 1, "k=%d: one fault failed %d calls", k, failed)
		}
		if fired != nil && !hit || fired == nil && failed == 0 && !whole {
			t.Logf("%d row writes in the batches", k-1)
			break
		}
	}
}
