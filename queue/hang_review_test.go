package queue_test

// Calls that must not outlive Close or their context, in blocking
// situations the other tests do not reach (see the hang review's table).

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// hangBound is how long a call may take to return once Close (or its
// context's end) should have released it: generous on a loaded machine,
// far below a silent connection's "forever".
const hangBound = 5 * time.Second

// returnsWithin waits up to hangBound for got, and fails the test (after
// release, which unblocks the call so that the test ends) otherwise.
func returnsWithin(t *testing.T, what string, release func(), got <-chan error) error {
	t.Helper()
	start := time.Now()
	select {
	case err := <-got:
		t.Logf("%s returned after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(hangBound):
		release()
		err := <-got
		t.Fatalf("%s still blocked %v after it should have returned (returned only once the network was closed: %v)", what, hangBound, err)
		return nil
	}
}

// returnsIn waits up to bound for got, and fails the test otherwise (after
// waiting for the call to return, and logging how long it took).
func returnsIn(t *testing.T, what string, bound time.Duration, got <-chan error) error {
	t.Helper()
	start := time.Now()
	select {
	case err := <-got:
		t.Logf("%s returned after %v: %v", what, time.Since(start).Round(time.Millisecond), err)
		return err
	case <-time.After(bound):
		err := <-got
		t.Fatalf("%s still running %v after its context was cancelled; it returned after %v: %v", what, bound, time.Since(start).Round(time.Millisecond), err)
		return nil
	}
}

// TestPostgres_WatchEscalationsAtCloseWhileSilent: WatchEscalations
// promises to return ErrClosed when the engine is closed, as a blocked
// Dequeue does. One whose poll reads a connection gone silent (no FIN, no
// RST) when Close is called must return too, not once its own context
// ends (here: never). Dequeue's and Work's reads end with Close
// (readUntilClosing); is WatchEscalations' read?
func TestPostgres_WatchEscalationsAtCloseWhileSilent(t *testing.T) {
	t.Parallel()
	px, pst := proxiedStore(t, connFailOptions)
	st := &freezeOnRead{Store: pst, px: px, hit: make(chan struct{})}
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		got <- eng.WatchEscalations(context.Background(), 0, func(campaign.Escalation) error { return nil })
	}()
	time.Sleep(200 * time.Millisecond) // it reads, and polls again and again
	st.arm.Store(true)
	st.waitHit(t)
	time.Sleep(100 * time.Millisecond) // the read is sent into the silence
	closed := make(chan error, 1)
	go func() { closed <- eng.Close() }()
	require.NoError(t, returnsWithin(t, "Engine.Close", px.close, closed))
	err = returnsWithin(t, "WatchEscalations after Close", px.close, got)
	require.ErrorIs(t, err, queue.ErrClosed)
}

// freezeInRead wraps a PostgreSQL store: once armed, the network goes
// silent (the proxy frozen) inside the next Read, just before its Items
// statement: after the transaction began and its first statements ran, on
// the statements' own context.
type freezeInRead struct {
	*postgres.Store
	px  *faultProxy
	arm atomic.Bool
	hit chan struct{}
}

func (s *freezeInRead) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Read(ctx, func(tx store.Tx) error {
		if s.arm.CompareAndSwap(true, false) {
			return fn(freezingTx{Tx: tx, s: s})
		}
		return fn(tx)
	})
}

type freezingTx struct {
	store.Tx
	s *freezeInRead
}

func (f freezingTx) Items(ctx context.Context, id uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error) {
	f.s.px.frozen.Store(true)
	close(f.s.hit)
	return f.Tx.Items(ctx, id, q)
}

// TestPostgres_ReadUnderWayAtCloseWhileSilent: Engine.Close says it does
// not wait for reads, that the host may close the store once it returned,
// and that a read still under way then returns ErrClosed. A read (Items,
// with a context that has no end, as a host's background job may use)
// sent into a connection gone silent (no FIN, no RST): once Engine.Close
// and Store.Close have been called, the read must return, and not hold the
// store's Close (pgxpool's Close waits for every acquired connection to be
// released) for as long as the silence lasts. The silence begins as the
// read's transaction begins (atBegin), or after its first statement.
// (Store.Close itself then still waits up to 15 s: pgx's asyncClose of the
// connection cut short sends a cancel request into the silence.)
func TestPostgres_ReadUnderWayAtCloseWhileSilent(t *testing.T) {
	for _, atBegin := range []bool{true, false} {
		t.Run(fmt.Sprintf("atBegin=%v", atBegin), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			px, pst := proxiedStore(t, connFailOptions)
			var st store.Store
			var arm func()
			var hit chan struct{}
			if atBegin {
				f := &freezeOnRead{Store: pst, px: px, hit: make(chan struct{})}
				st, arm, hit = f, func() { f.arm.Store(true) }, f.hit
			} else {
				f := &freezeInRead{Store: pst, px: px, hit: make(chan struct{})}
				st, arm, hit = f, func() { f.arm.Store(true) }, f.hit
			}
			eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute})
			require.NoError(t, err)
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "silent", Description: "silent read", Type: pool.Parallel})
			require.NoError(t, err)
			arm()
			got := make(chan error, 1)
			go func() { _, err := eng.Items(ctx, p.UUID, pool.ItemQuery{}); got <- err }()
			select {
			case <-hit:
			case <-time.After(10 * time.Second):
				t.Fatal("the read never came")
			}
			time.Sleep(100 * time.Millisecond) // the read is sent into the silence
			closed := make(chan error, 1)
			go func() { closed <- eng.Close() }()
			require.NoError(t, returnsWithin(t, "Engine.Close", px.close, closed))
			stClosed := make(chan error, 1)
			go func() { stClosed <- pst.Close() }()
			err = returnsWithin(t, "the read after Engine.Close and Store.Close", px.close, got)
			require.ErrorIs(t, err, queue.ErrClosed)
			// Store.Close: up to 15 s more (pgx), ended by the proxy's
			// close in the cleanup.
		})
	}
}

// largeAddItems is the size of the large Add below: a dialer's list
// import, about 5 s of writing on SQLite on a loaded two-core machine.
const largeAddItems = 600_000

// largeBound is how long a large write may go on after its caller's
// context was cancelled: generous on a loaded machine, far below the
// seconds it takes to run to its end.
const largeBound = 2 * time.Second

// writeEntered wraps a store: once armed, the next Write closes entered as
// it begins (its transaction then runs as usual).
type writeEntered struct {
	store.Store
	arm     atomic.Bool
	entered chan struct{}
}

func (s *writeEntered) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.arm.CompareAndSwap(true, false) {
		close(s.entered)
	}
	return s.Store.Write(ctx, fn)
}

// largeAddLeaves: an Add of largeAddItems contacts, alone in its
// transaction (nothing else is written meanwhile), whose context is
// cancelled 300 ms after its transaction began. It must return within
// largeBound of the cancellation (with the context's error, nothing
// written), not once it has inserted every row.
func largeAddLeaves(t *testing.T, st store.Store) {
	t.Helper()
	if testing.Short() {
		t.Skip("a large Add: seconds")
	}
	ctx := context.Background()
	ws := &writeEntered{Store: st, entered: make(chan struct{})}
	eng := openEngine(t, ws, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "import", Description: "a large import"})
	require.NoError(t, err)
	items := newItems(largeAddItems)
	cctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	ws.arm.Store(true)
	start := time.Now()
	go func() { _, err := eng.Add(cctx, p.UUID, items...); got <- err }()
	<-ws.entered
	t.Logf("the Add's transaction began %v after the call", time.Since(start).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond) // the Add inserts its rows
	cancel()
	err = returnsIn(t, "the cancelled Add", largeBound, got)
	require.ErrorIs(t, err, context.Canceled)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Zero(t, d.ContactsCount, "a cancelled Add wrote nothing")
}

// TestSQLite_LargeAddLeavesWhenCancelled: largeAddLeaves on a SQLite file.
func TestSQLite_LargeAddLeavesWhenCancelled(t *testing.T) {
	t.Parallel()
	largeAddLeaves(t, openFileStore(t, ""))
}

// TestPostgres_LargeAddLeavesWhenCancelled: largeAddLeaves on PostgreSQL.
func TestPostgres_LargeAddLeavesWhenCancelled(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	largeAddLeaves(t, pgtest.Open(t, url, postgres.Options{}))
}

// largePoolItems is the size of the pool largePoolOpsLeave duplicates and
// deletes: about 3 s for each on SQLite on a loaded two-core machine.
const largePoolItems = 400_000

// largePoolOpsLeave: DuplicatePool, then DeletePool, of a pool of
// largePoolItems items, each alone in its transaction, whose context is
// cancelled 300 ms after its transaction began. Each must return within
// largeBound of the cancellation, with the context's error, nothing
// written.
func largePoolOpsLeave(t *testing.T, st store.Store) {
	t.Helper()
	if testing.Short() {
		t.Skip("a large pool: seconds")
	}
	ctx := context.Background()
	ws := &writeEntered{Store: st}
	eng := openEngine(t, ws, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "large", Description: "a large pool"})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(largePoolItems)...)
	require.NoError(t, err)
	for _, op := range []struct {
		name string
		call func(context.Context) error
	}{
		{"DuplicatePool", func(ctx context.Context) error {
			_, err := eng.DuplicatePool(ctx, p.UUID, pool.DuplicateParams{})
			return err
		}},
		{"DeletePool", func(ctx context.Context) error { return eng.DeletePool(ctx, p.UUID) }},
	} {
		ws.entered = make(chan struct{})
		ws.arm.Store(true)
		cctx, cancel := context.WithCancel(ctx)
		got := make(chan error, 1)
		go func() { got <- op.call(cctx) }()
		<-ws.entered
		time.Sleep(300 * time.Millisecond) // it copies, or deletes, its rows
		cancel()
		err := returnsIn(t, "the cancelled "+op.name, largeBound, got)
		require.ErrorIs(t, err, context.Canceled, op.name)
	}
	pg, err := eng.Pools(ctx, pool.PoolQuery{})
	require.NoError(t, err)
	require.Len(t, pg.Data, 1, "nothing written: no copy, the pool still there")
	require.Equal(t, largePoolItems, pg.Data[0].ContactsCount)
}

// TestSQLite_LargePoolOpsLeaveWhenCancelled: largePoolOpsLeave on a
// SQLite file.
func TestSQLite_LargePoolOpsLeaveWhenCancelled(t *testing.T) {
	t.Parallel()
	largePoolOpsLeave(t, openFileStore(t, ""))
}

// TestPostgres_LargePoolOpsLeaveWhenCancelled: largePoolOpsLeave on
// PostgreSQL.
func TestPostgres_LargePoolOpsLeaveWhenCancelled(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	largePoolOpsLeave(t, pgtest.Open(t, url, postgres.Options{}))
}

// panicWrite wraps a store: once hold is set, the next Write waits until
// freeIt is closed, and the Write after it panics inside its transaction
// (after the store began it, in the function that takes the pools' locks
// and writes).
type panicWrite struct {
	store.Store
	hold, panics    atomic.Bool
	entered, freeIt chan struct{}
}

func (s *panicWrite) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.hold.CompareAndSwap(true, false) {
		close(s.entered)
		<-s.freeIt
		defer s.panics.Store(true)
	}
	return s.Store.Write(ctx, func(tx store.Tx) error {
		if s.panics.CompareAndSwap(true, false) {
			panic("a write panics inside its transaction")
		}
		return fn(tx)
	})
}

// TestPostgres_WritePanicReleasesEveryone: on PostgreSQL, a panic inside
// the transaction of a batch of several callers (claims and an Add,
// queued behind a held write) gives each of them an error, promptly,
// nothing of it written, and the next writes (the pool's lock, the
// connection) work. (TestEngine_WritePanicReleasesEveryone is the SQLite
// store's.)
func TestPostgres_WritePanicReleasesEveryone(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := &panicWrite{Store: pgtest.Open(t, url, postgres.Options{MaxConns: 4}), entered: make(chan struct{}), freeIt: make(chan struct{})}
	eng := openEngine(t, st, queue.Options{})
	ten := 10
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "panics", Description: "d", Type: pool.Parallel, MaxParallelItems: &ten})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(3)...)
	require.NoError(t, err)

	st.hold.Store(true)
	var free sync.Once
	freeIt := func() { free.Do(func() { close(st.freeIt) }) }
	t.Cleanup(freeIt) // before the engine's Close, which waits for the held write
	first := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, p.UUID, newItems(1)...); first <- err }()
	<-st.entered
	errs := make(chan error, 4)
	for range 3 {
		go func() { _, err := eng.TryDequeue(ctx, p.UUID); errs <- err }()
	}
	go func() { _, err := eng.Add(ctx, p.UUID, newItems(1)...); errs <- err }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 4 }, 5*time.Second, time.Millisecond)
	freeIt() // the held Add commits; the batch of the four panics
	require.NoError(t, returnsWithin(t, "the held Add", func() {}, first))
	for i := range 4 {
		err := returnsWithin(t, fmt.Sprintf("operation %d of the batch that panicked", i), func() {}, errs)
		require.ErrorContains(t, err, "panicked")
	}
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 4, d.ContactsCount, "the panicked batch's Add wrote nothing")
	require.Zero(t, d.StatusCounts[pool.StatusProcessing], "the panicked batch's claims wrote nothing")
	// The next writes work: the pool's lock and the connection were let go.
	wctx, cancel := context.WithTimeout(ctx, hangBound)
	defer cancel()
	l, err := eng.TryDequeue(wctx, p.UUID)
	require.NoError(t, err, "a claim after the panic")
	require.NoError(t, eng.Complete(wctx, l, "after the panic"))
}

// TestAdd_LargeBatchChecksLeaveWhenCancelled: an Add of a large batch
// stops checking it once its context ends, ended before the call or while
// the items are checked (a million contacts take seconds), and returns the
// context's error, nothing written; it took as long as the whole check
// before.
func TestAdd_LargeBatchChecksLeaveWhenCancelled(t *testing.T) {
	if testing.Short() {
		t.Skip("a large batch: seconds of checks")
	}
	t.Parallel()
	// Items whose checks outweigh their making, so that the times below
	// are the checks': each a 48 KiB payload (the same bytes).
	payload := json.RawMessage(`[` + strings.Repeat(`{"account":"A-1","tags":["vip"]},`, 1500) + `0]`)
	items := make([]pool.NewItem, 4_000)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: uuid.New(), Payload: payload,
			Contact: pool.Contact{Name: "Ann Example", PhoneNumber: "+15551234567", Email: "ann@example.com", TimeZone: "America/New_York"}}
	}
	start := time.Now()
	_, err := pool.PrepareItems(items)
	require.NoError(t, err)
	whole := time.Since(start)

	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "import", Description: "a large import"})
	require.NoError(t, err)
	ended, cancel := context.WithCancel(ctx)
	cancel()
	midway, cancelMidway := context.WithTimeout(ctx, whole/10)
	defer cancelMidway()
	for _, c := range []struct {
		name  string
		ctx   context.Context
		bound time.Duration
	}{{"ended before the call", ended, whole / 4}, {"ending while checked", midway, whole / 2}} {
		start := time.Now()
		_, err := eng.Add(c.ctx, p.UUID, items...)
		took := time.Since(start)
		t.Logf("%s: the Add returned after %v (the whole check: %v): %v", c.name, took.Round(time.Millisecond), whole.Round(time.Millisecond), err)
		require.ErrorIs(t, err, c.ctx.Err(), c.name)
		require.Less(t, took, c.bound, "%s: the Add checked on after its context ended", c.name)
	}
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Zero(t, d.ContactsCount, "a cancelled Add wrote nothing")
}
