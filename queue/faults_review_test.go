package queue_test

// Review (r-faults): failure atomicity of the engine's mutating calls under
// faults (a backend terminated or a statement cancelled mid-transaction, a
// lock held past its timeout, a context ending while the call waits): each
// failed call returns an error and leaves everything the engine shows
// exactly as it was (stateOf), and the engine goes on working after it.

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// faultOp is one mutating call of the engine, run against a fixture that a
// failed call leaves as it was (so the calls may run one after the other).
type faultOp struct {
	name string
	call func(ctx context.Context) error
}

// faultOps builds a fixture in b and returns a call of every mutating
// method on it.
func faultOps(t *testing.T, b *testBundle) []faultOp {
	t.Helper()
	ctx := b.ctx
	eng := b.eng
	p := b.pool(t, pool.Parallel, 10, 3)
	ids := b.add(t, p.UUID, 6)
	ls, err := eng.DequeueN(ctx, p.UUID, 5)
	require.NoError(t, err)
	require.Len(t, ls, 5)
	var waiting uuid.UUID
	for _, id := range ids {
		leased := false
		for _, l := range ls {
			leased = leased || l.ContactUUID == id
		}
		if !leased {
			waiting = id
		}
	}
	q := b.pool(t, pool.FIFO, 1, 3)
	done := b.add(t, q.UUID, 1)[0]
	l, err := eng.TryDequeue(ctx, q.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Complete(ctx, l, "done"))
	empty := b.pool(t, pool.FIFO, 1, 3)
	spare := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, spare.UUID, 2)
	r := b.rule(t, campaign.CreateRuleParams{})
	unused := b.rule(t, campaign.CreateRuleParams{Name: "unused"})
	c := b.campaignOf(t, r.UUID, q.UUID)
	other := b.campaignOf(t, uuid.Nil)
	onDNC := uuid.New()
	_, err = eng.AddDNC(ctx, onDNC)
	require.NoError(t, err)

	ignore := func(_ any, err error) error { return err }
	return []faultOp{
		{"CreatePool", func(ctx context.Context) error {
			return ignore(eng.CreatePool(ctx, pool.CreateParams{Name: "new pool", Description: "d"}))
		}},
		{"UpdatePool", func(ctx context.Context) error {
			return ignore(eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{Name: pqPtr("renamed"), MaxParallelItems: pqPtr(20)}))
		}},
		{"DeletePool", func(ctx context.Context) error { return eng.DeletePool(ctx, empty.UUID) }},
		{"DuplicatePool", func(ctx context.Context) error {
			return ignore(eng.DuplicatePool(ctx, p.UUID, pool.DuplicateParams{}))
		}},
		{"Add", func(ctx context.Context) error { return ignore(eng.Add(ctx, p.UUID, newItems(3)...)) }},
		{"Skip", func(ctx context.Context) error { return ignore(eng.Skip(ctx, p.UUID, waiting, "skip")) }},
		{"Requeue", func(ctx context.Context) error { return ignore(eng.Requeue(ctx, q.UUID, done)) }},
		{"Remove", func(ctx context.Context) error { return ignore(eng.Remove(ctx, p.UUID, waiting)) }},
		{"SetPriority", func(ctx context.Context) error { return ignore(eng.SetPriority(ctx, p.UUID, waiting, 9)) }},
		{"TryDequeue", func(ctx context.Context) error { return ignore(eng.TryDequeue(ctx, spare.UUID)) }},
		{"DequeueN", func(ctx context.Context) error { return ignore(eng.DequeueN(ctx, p.UUID, 3)) }},
		{"Complete", func(ctx context.Context) error { return eng.Complete(ctx, ls[0], "ok") }},
		{"Fail", func(ctx context.Context) error { return eng.Fail(ctx, ls[1], queue.Failure{Note: "busy"}) }},
		{"Release", func(ctx context.Context) error { return eng.Release(ctx, ls[2]) }},
		{"Extend", func(ctx context.Context) error { return eng.Extend(ctx, ls[3], 5*time.Minute) }},
		{"MarkInCall", func(ctx context.Context) error { return eng.MarkInCall(ctx, ls[4]) }},
		{"Settle", func(ctx context.Context) error {
			return ignore(eng.Settle(ctx, queue.Outcome{Lease: ls[0]}, queue.Outcome{Lease: ls[1], Failure: &queue.Failure{Note: "no answer"}}))
		}},
		{"CreateRule", func(ctx context.Context) error {
			return ignore(eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "another rule"}))
		}},
		{"UpdateRule", func(ctx context.Context) error {
			return ignore(eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(7)}))
		}},
		{"DeleteRule", func(ctx context.Context) error { return eng.DeleteRule(ctx, unused.UUID) }},
		{"CreateCampaign", func(ctx context.Context) error {
			return ignore(eng.CreateCampaign(ctx, campaign.CreateParams{Name: "another campaign"}))
		}},
		{"UpdateCampaign", func(ctx context.Context) error {
			return ignore(eng.UpdateCampaign(ctx, c.UUID, campaign.UpdateParams{Name: pqPtr("renamed campaign")}))
		}},
		{"AssignRule", func(ctx context.Context) error { return ignore(eng.AssignRule(ctx, other.UUID, r.UUID)) }},
		{"AttachPools", func(ctx context.Context) error { return ignore(eng.AttachPools(ctx, c.UUID, spare.UUID)) }},
		{"DetachPool", func(ctx context.Context) error { return ignore(eng.DetachPool(ctx, c.UUID, q.UUID)) }},
		{"StartCampaign", func(ctx context.Context) error { return ignore(eng.StartCampaign(ctx, c.UUID)) }},
		{"DeleteCampaign", func(ctx context.Context) error { return eng.DeleteCampaign(ctx, other.UUID) }},
		{"AddDNC", func(ctx context.Context) error { return ignore(eng.AddDNC(ctx, uuid.New())) }},
		{"RemoveDNC", func(ctx context.Context) error { return ignore(eng.RemoveDNC(ctx, onDNC)) }},
		{"OptOut", func(ctx context.Context) error { return ignore(eng.OptOut(ctx, waiting)) }},
	}
}

// pgBundle is a testBundle over a new PostgreSQL schema.
func pgBundle(t *testing.T, url string) (*testBundle, *postgres.Store) {
	t.Helper()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	return &testBundle{ctx: context.Background(), eng: eng, clock: c}, st
}

// TestPostgres_FaultMidTransactionWritesNothing: every mutating call whose
// transaction is cut in the middle (its statement waits for a table lock
// another session holds; then its backend is terminated, or its statement
// cancelled) returns an error and leaves the database as it was; the
// engine goes on working.
func TestPostgres_FaultMidTransactionWritesNothing(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, fault := range []string{"pg_terminate_backend", "pg_cancel_backend"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			b, st := pgBundle(t, url)
			ops := faultOps(t, b)
			ctx := context.Background()
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			var tables []string
			rows, err := conn.Query(ctx, `SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables WHERE schemaname = $1`, st.Schema())
			require.NoError(t, err)
			tables, err = pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			for i, op := range ops {
				if fault == "pg_terminate_backend" && i%4 != 0 {
					continue // a new connection each: a quarter of the calls, to stay fast
				}
				before := stateOf(t, b)
				tx, err := conn.Begin(ctx)
				require.NoError(t, err)
				for _, tb := range tables {
					_, err = tx.Exec(ctx, `LOCK TABLE `+tb+` IN EXCLUSIVE MODE`)
					require.NoError(t, err)
				}
				errc := make(chan error, 1)
				go func() { errc <- op.call(ctx) }()
				pid := awaitWaiters(t, tx, 1, 10*time.Second, op.name)[0]
				var ok bool
				require.NoError(t, tx.QueryRow(ctx, `SELECT `+fault+`($1)`, pid).Scan(&ok))
				require.True(t, ok)
				require.NoError(t, tx.Rollback(ctx))
				err = <-errc
				if err == nil {
					t.Errorf("%s: no error after %s", op.name, fault)
					continue
				}
				require.Equal(t, before, stateOf(t, b), "%s: %s wrote something (error: %v)", op.name, fault, err)
			}
			// The engine goes on working.
			for _, op := range ops {
				if op.name == "CreatePool" || op.name == "Complete" || op.name == "AddDNC" {
					require.NoError(t, op.call(ctx), op.name)
				}
			}
		})
	}
}

// TestEngine_FaultBeforeTheWriteWritesNothing: every mutating call whose
// context has ended before it is made returns the context's error and
// writes nothing, on both stores.
func TestEngine_FaultBeforeTheWriteWritesNothing(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		ops := faultOps(t, b)
		cancelled, cancel := context.WithCancel(b.ctx)
		cancel()
		expired, cancel2 := context.WithDeadline(b.ctx, time.Now().Add(-time.Second))
		defer cancel2()
		for _, op := range ops {
			before := stateOf(t, b)
			err := op.call(cancelled)
			require.ErrorIs(t, err, context.Canceled, op.name)
			err = op.call(expired)
			require.ErrorIs(t, err, context.DeadlineExceeded, op.name)
			require.Equal(t, before, stateOf(t, b), "%s wrote something", op.name)
		}
	})
}

// TestSQLite_FaultBehindAnotherProcessWritesNothing: every mutating call
// that meets another process's write lock on the file fails (with
// store.ErrLockTimeout past the busy timeout, or its context's error when
// that ends first) and writes nothing.
func TestSQLite_FaultBehindAnotherProcessWritesNothing(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "held.db")
	// The busy timeout and the two contexts far apart (10× and 20×): on a loaded
	// machine the driver notices a context's end late, and with 20 ms
	// against 5 ms the busy timeout could end the wait first.
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{CheckCache: true, BusyTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	b := &testBundle{ctx: context.Background(), eng: eng, st: st, clock: c}
	ops := faultOps(t, b)
	for _, op := range ops {
		before := stateOf(t, b)
		release := holdFileLock(t, path)
		ctx, cancel := context.WithTimeout(b.ctx, time.Second)
		err := op.call(ctx)
		cancel()
		want := store.ErrLockTimeout
		if op.name == "DequeueN" { // a blocked DequeueN looks again until its context ends
			want = context.DeadlineExceeded
		}
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", op.name, err, want)
		}
		ctx, cancel = context.WithTimeout(b.ctx, 5*time.Millisecond)
		err = op.call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: %v, want context.DeadlineExceeded", op.name, err)
		}
		release()
		require.Equal(t, before, stateOf(t, b), "%s wrote something", op.name)
	}
}

// holdFileLock takes the file's write lock on a connection of its own,
// another process's as far as the store can tell, waiting for it up to 5 s
// (the engine may be finishing a transaction), and returns its release.
func holdFileLock(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
	require.NoError(t, err)
	return func() {
		_, err := conn.ExecContext(ctx, "ROLLBACK")
		require.NoError(t, err)
		require.NoError(t, conn.Close())
		require.NoError(t, db.Close())
	}
}

// TestEngine_FailingOpsInABatchLeaveNothing: in one group-commit batch,
// calls that fail after their transaction wrote something (the pool's
// expired lease applied, then the item found in flight) leave nothing of
// themselves behind, and do not fail or change the batch's other calls.
func TestEngine_FailingOpsInABatchLeaveNothing(t *testing.T) {
	t.Parallel()
	run := func(t *testing.T, inner store.Store) {
		ctx := context.Background()
		hs := &heldStore{Store: inner}
		c := newClock()
		eng := openEngine(t, hs, queue.Options{LeaseTimeout: time.Minute, RetryDelay: testRetry, Now: c.Now})
		b := &testBundle{ctx: ctx, eng: eng, clock: c}
		p := b.pool(t, pool.Parallel, 10, 3)
		b.add(t, p.UUID, 3)
		_, err := eng.TryDequeue(ctx, p.UUID) // its lease expires below
		require.NoError(t, err)
		c.Advance(50 * time.Second)
		lf, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		c.Advance(20 * time.Second)
		q := b.pool(t, pool.Parallel, 10, 3)
		b.add(t, q.UUID, 2)
		lq, err := eng.TryDequeue(ctx, q.UUID)
		require.NoError(t, err)
		before, err := eng.Pool(ctx, p.UUID)
		require.NoError(t, err)
		beforeItems := allItems(ctx, t, eng, p.UUID, pool.MaxPerPage)

		entered, release := hs.holdNext(t)
		var wg sync.WaitGroup
		wg.Go(func() { _, err := eng.Add(ctx, q.UUID, newItems(1)...); assert.NoError(t, err) })
		<-entered
		behind := func(f func()) {
			n := queue.Queued(eng)
			wg.Go(f)
			require.Eventually(t, func() bool { return queue.Queued(eng) == n+1 }, 5*time.Second, time.Millisecond)
		}
		errs := make([]error, 7)
		behind(func() { _, errs[0] = eng.Skip(ctx, p.UUID, lf.ContactUUID, "x") })
		behind(func() { _, errs[1] = eng.AddDNC(ctx, uuid.New()) })
		behind(func() { _, errs[2] = eng.Remove(ctx, p.UUID, lf.ContactUUID) })
		behind(func() { errs[3] = eng.Complete(ctx, lq, "ok") })
		behind(func() { errs[4] = eng.DeletePool(ctx, p.UUID) })
		behind(func() { _, errs[5] = eng.SetPriority(ctx, p.UUID, lf.ContactUUID, 4) })
		behind(func() {
			_, errs[6] = eng.CreatePool(ctx, pool.CreateParams{Name: "made in the batch", Description: "d"})
		})
		release()
		wg.Wait()
		for _, i := range []int{0, 2, 4, 5} {
			require.ErrorIs(t, errs[i], queue.ErrInFlight, "call %d", i)
		}
		for _, i := range []int{1, 3, 6} {
			require.NoError(t, errs[i], "call %d", i)
		}
		after, err := eng.Pool(ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, before, after, "the failed calls changed the pool")
		require.Equal(t, beforeItems, allItems(ctx, t, eng, p.UUID, pool.MaxPerPage), "the failed calls changed its items")
		it := b.item(t, q.UUID, lq.ContactUUID)
		require.Equal(t, pool.StatusCompleted, it.Status)
	}
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		run(t, openFileStore(t, ""))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		run(t, pgtest.Open(t, url, postgres.Options{MaxConns: 4}))
	})
}

// TestEngine_ReturnedNilIsInTheDatabase: what the calls that returned nil
// wrote is all there once the engine and its store are closed and the
// database opened again, on both stores (the engine keeps nothing that is
// not in the database).
func TestEngine_ReturnedNilIsInTheDatabase(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, st store.Store, reopen func() store.Store) {
		c := newClock()
		opts := queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now}
		eng, err := queue.New(st, opts)
		require.NoError(t, err)
		b := &testBundle{ctx: context.Background(), eng: eng, clock: c}
		ok := 0
		for _, op := range faultOps(t, b) {
			if op.call(b.ctx) == nil {
				ok++
			}
		}
		require.Greater(t, ok, 20)
		before := stateOf(t, b)
		require.NoError(t, eng.Close())
		require.NoError(t, st.Close())
		b.eng = openEngine(t, reopen(), opts)
		require.Equal(t, before, stateOf(t, b))
	}
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "reopen.db")
		check(t, openFileStore(t, path), func() store.Store { return openFileStore(t, path) })
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
		check(t, st, func() store.Store {
			return pgtest.OpenSchema(t, url, postgres.Options{MaxConns: 4, Schema: st.Schema()})
		})
	})
}

// TestPostgres_StoreClosedMidWrite: the host closes the store while a
// call's transaction waits for another session's lock. The call either
// returns nil, its write in the database, or an error, nothing written;
// Close waits for it, and every later call fails with store.ErrClosed.
func TestPostgres_StoreClosedMidWrite(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	c := newClock()
	opts := queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now}
	eng := openEngine(t, st, opts)
	b := &testBundle{ctx: ctx, eng: eng, clock: c}
	ops := faultOps(t, b)
	var op faultOp
	for _, o := range ops {
		if o.name == "Complete" {
			op = o
		}
	}
	before := stateOf(t, b)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{st.Schema(), "items"}.Sanitize()+" IN EXCLUSIVE MODE")
	require.NoError(t, err)
	errc := make(chan error, 1)
	go func() { errc <- op.call(ctx) }()
	awaitWaiters(t, tx, 1, 10*time.Second, "Complete")
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	time.Sleep(100 * time.Millisecond)
	require.NoError(t, tx.Rollback(ctx))
	err = <-errc
	require.NoError(t, <-closed)
	t.Logf("Complete: %v", err)
	_, err2 := eng.CreatePool(ctx, pool.CreateParams{Name: "after close", Description: "d"})
	require.ErrorIs(t, err2, store.ErrClosed)

	st2 := pgtest.OpenSchema(t, url, postgres.Options{MaxConns: 4, Schema: st.Schema()})
	b2 := &testBundle{ctx: ctx, eng: openEngine(t, st2, opts), clock: c}
	after := stateOf(t, b2)
	if err != nil {
		require.Equal(t, before, after, "the Complete failed (%v) but wrote", err)
	} else {
		require.NotEqual(t, before, after, "the Complete returned nil but wrote nothing")
	}
}

// TestEngine_BlockingDequeuesWithAnEndedContext: Dequeue, DequeueN and
// DequeueCampaign with a context that has ended, on a pool (a running
// campaign) with items due, return the context's error at once and claim
// nothing, on both stores.
func TestEngine_BlockingDequeuesWithAnEndedContext(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.Parallel, 10, 3)
		b.add(t, p.UUID, 3)
		r := b.rule(t, campaign.CreateRuleParams{})
		c := b.campaignOf(t, r.UUID, p.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		cancelled, cancel := context.WithCancel(b.ctx)
		cancel()
		before := stateOf(t, b)
		for name, call := range map[string]func() error{
			"Dequeue":         func() error { _, err := b.eng.Dequeue(cancelled, p.UUID); return err },
			"DequeueN":        func() error { _, err := b.eng.DequeueN(cancelled, p.UUID, 2); return err },
			"DequeueCampaign": func() error { _, err := b.eng.DequeueCampaign(cancelled, c.UUID); return err },
		} {
			start := time.Now()
			err := call()
			require.ErrorIs(t, err, context.Canceled, name)
			require.Less(t, time.Since(start), time.Second, name)
			require.Equal(t, before, stateOf(t, b), "%s claimed", name)
		}
	})
}
