package queue_test

// The PostgreSQL server restarts, or crashes, under running nodes: two
// engines run Work on a private server (pgtest.Cluster, not the shared
// one of POOLQ_TEST_POSTGRES), which is stopped mid-run, fast (a clean
// restart) or immediately (a crash, recovered at the next start), and
// started again a second later. The engines go on by themselves, and the
// guarantees hold across the outage; at Normal durability a crash may
// lose the last commits, and a claim it lost is fenced off.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_ServerRestart: two engines, each on its own store, run Work
// over a Parallel pool (cap 3) and a FIFO pool of one schema, at Full
// durability, while a third goroutine adds items and a Dequeue of a third
// pool, empty, waits (PollInterval an hour: only a notification wakes
// it). The server is stopped mid-run, fast or immediately, and started
// again after a second. Then:
//
//   - the engines go on by themselves: a handler starts again within
//     seconds of the start, and the waiting Dequeue is woken by an Add made
//     after it (its store's listener connected again);
//   - no call made while the server was down hung: every Add returned,
//     with an error, within seconds;
//   - the pools drain; at no instant did more handlers run than a pool's
//     cap, nor two on one contact; the FIFO pool's items went out in
//     insertion order; no item went beyond its ceiling; every Completed
//     event (acknowledged) and every Add acknowledged is there;
//   - Work returns nil at its context's end, promptly.
func TestPostgres_ServerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a private PostgreSQL server; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			serverRestartRun(t, mode)
		})
	}
}

// restartCall is one handler's run, as logged.
type restartCall struct {
	pool           string // par or fifo
	contact        uuid.UUID
	token          int64
	attempt        int
	start, end     time.Time
	ackedCompleted bool
}

func serverRestartRun(t *testing.T, mode string) {
	const (
		leaseTimeout = 3 * time.Second
		capPar       = 3
		maxRetries   = 2
		nPar, nFIFO  = 60, 20
	)
	c := pgtest.NewCluster(t)
	ctx := context.Background()
	opts := postgres.Options{Schema: "poolq", Durability: postgres.Full, MaxConns: 4}
	stores := []*postgres.Store{pgtest.OpenSchema(t, c.URL, opts), pgtest.OpenSchema(t, c.URL, opts)}
	qopts := queue.Options{LeaseTimeout: leaseTimeout, RetryDelay: time.Millisecond, PollInterval: time.Hour}
	engines := []*queue.Engine{openEngine(t, stores[0], qopts), openEngine(t, stores[1], qopts)}
	eng := engines[0]
	par, fifo, order := dialPools(t, eng, capPar, maxRetries, nPar, nFIFO)
	idle, err := eng.CreatePool(ctx, pool.CreateParams{Name: "idle", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	names := map[uuid.UUID]string{par.UUID: "par", fifo.UUID: "fifo"}

	var mu sync.Mutex
	var calls []*restartCall
	byLease := map[int64]*restartCall{} // by token: tokens of one schema's items do not repeat in practice
	var workErrs []error
	handler := func(hctx context.Context, l *queue.Lease) error {
		rc := &restartCall{pool: names[l.PoolUUID], contact: l.ContactUUID, token: l.Token, attempt: l.Attempt, start: time.Now()}
		mu.Lock()
		calls = append(calls, rc)
		byLease[l.Token] = rc
		mu.Unlock()
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		rc.end = time.Now()
		mu.Unlock()
		if rc.pool == "par" && l.Token%4 == 0 {
			return errors.New("busy")
		}
		return nil
	}
	onEvent := func(e queue.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch e.Kind {
		case queue.EventCompleted:
			if rc := byLease[e.Lease.Token]; rc != nil && rc.contact == e.Lease.ContactUUID {
				rc.ackedCompleted = true
			}
		case queue.EventError:
			workErrs = append(workErrs, e.Err)
		}
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var works sync.WaitGroup
	workDone := make([]error, len(engines))
	for i, e := range engines {
		works.Go(func() {
			workDone[i] = e.Work(wctx, handler, queue.WorkOptions{Pools: []uuid.UUID{par.UUID, fifo.UUID}, Workers: 4,
				Grace: time.Second, OnEvent: onEvent})
		})
	}

	// A Dequeue of the idle pool, on the other engine, waiting through the
	// outage.
	woken := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err := engines[1].Dequeue(dctx, idle.UUID)
		woken <- err
	}()

	// Adds all along, the outage included: those acknowledged must be
	// there, and none may hang.
	adds := addAllAlong(ctx, eng, par.UUID, 50*time.Millisecond)

	started := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	require.True(t, waitUntil(20*time.Second, func() bool { return started() > 20 }), "the engines dispatch")
	t.Logf("stopping the server (%s) after %d calls", mode, started())
	c.Stop(mode)
	time.Sleep(time.Second)
	c.Start()
	back := time.Now()
	before := started()
	require.True(t, waitUntil(20*time.Second, func() bool { return started() > before }),
		"no handler started within 20 s of the server's start")
	t.Logf("a handler started %v after the server's start", time.Since(back).Round(time.Millisecond))

	// The waiting Dequeue wakes at an Add of another engine: its listener
	// listens again.
	require.True(t, waitUntil(20*time.Second, func() bool { return listeners(t, c.URL, "poolq") == 2 }),
		"the listeners listen again")
	_, err = eng.Add(ctx, idle.UUID, newItems(1)...)
	require.NoError(t, err)
	select {
	case err := <-woken:
		require.NoError(t, err, "the Dequeue waiting through the outage")
	case <-time.After(10 * time.Second):
		t.Fatal("the Dequeue waiting through the outage was not woken by an Add after it")
	}
	added, addErrs, slowestAdd := adds.stop()

	// Drain (the leases in flight at the outage come back at their end).
	drainThenStop(t, eng, []uuid.UUID{par.UUID, fifo.UUID}, stop, &works, workDone)

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, append(addErrs, workErrs...), "no call failed: the outage was not seen")
	require.Less(t, slowestAdd, 10*time.Second, "an Add during the outage")
	kinds := map[string]int{}
	for _, err := range addErrs {
		kinds[errKind(err)]++
	}
	t.Logf("%d Adds acknowledged, %d failed (%v), the slowest took %v; Work reported %d errors",
		len(added), len(addErrs), kinds, slowestAdd.Round(time.Millisecond), len(workErrs))

	maxHeld := requireCallsKeptTheRules(t, calls, map[string]int{"par": capPar, "fifo": 1}, order)
	acked := requireAcknowledgedKept(ctx, t, eng, []uuid.UUID{par.UUID, fifo.UUID}, maxRetries, added, calls)
	t.Logf("%d calls, %d acknowledged completions; at most %d / %d handlers at once", len(calls), acked, maxHeld["par"], maxHeld["fifo"])
}

// requireCallsKeptTheRules checks the handlers' runs of a restart test:
// every handler returned; at no instant did more run than caps names for
// their pool ("par", "fifo"), and each pool ran some; no contact was called
// twice at once, and each later dispatch of a contact had a larger token;
// the FIFO pool's first dispatches went out in insertion order (order). It
// returns the most handlers of each pool that ran at once.
func requireCallsKeptTheRules(t *testing.T, calls []*restartCall, caps map[string]int, order map[uuid.UUID]int) map[string]int {
	t.Helper()
	type edge struct {
		at    time.Time
		delta int
		pool  string
	}
	var edges []edge
	for _, rc := range calls {
		require.False(t, rc.end.IsZero(), "a handler never returned")
		edges = append(edges, edge{rc.start, 1, rc.pool}, edge{rc.end, -1, rc.pool})
	}
	sort.SliceStable(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta
	})
	held, maxHeld := map[string]int{}, map[string]int{}
	for _, e := range edges {
		held[e.pool] += e.delta
		maxHeld[e.pool] = max(maxHeld[e.pool], held[e.pool])
	}
	for name, limit := range caps {
		require.LessOrEqual(t, maxHeld[name], limit, "handlers of pool %s at once", name)
		require.Positive(t, maxHeld[name], "no handler of pool %s ran", name)
	}
	perContact := map[uuid.UUID][]*restartCall{}
	for _, rc := range calls {
		perContact[rc.contact] = append(perContact[rc.contact], rc)
	}
	for contact, rcs := range perContact {
		slices.SortFunc(rcs, func(a, b *restartCall) int { return a.start.Compare(b.start) })
		for i := 1; i < len(rcs); i++ {
			require.False(t, rcs[i].start.Before(rcs[i-1].end), "%s called twice at once", contact)
			require.Greater(t, rcs[i].token, rcs[i-1].token, "%s: a later dispatch's token", contact)
		}
	}

	// FIFO order, of first dispatches: an item whose lease ended (its
	// settlement not written before its end) is due again only after its
	// retry delay, and the next item may go first.
	var fifoCalls []*restartCall
	for _, rc := range calls {
		if rc.pool == "fifo" && rc.attempt == 1 {
			fifoCalls = append(fifoCalls, rc)
		}
	}
	slices.SortFunc(fifoCalls, func(a, b *restartCall) int { return a.start.Compare(b.start) })
	last := -1
	for _, rc := range fifoCalls {
		require.Greater(t, order[rc.contact], last, "FIFO: item %d after item %d", order[rc.contact], last)
		last = order[rc.contact]
	}
	return maxHeld
}

// requireAcknowledgedKept checks the end state of a restart test's pools:
// the status counts match a recount, no item went beyond its ceiling
// (maxRetries + 1 attempts), every acknowledged Add (added) is there, and
// every call whose completion was acknowledged left its item Completed
// with its token. It returns the number of acknowledged completions.
func requireAcknowledgedKept(ctx context.Context, t *testing.T, eng *queue.Engine, pools []uuid.UUID, maxRetries int,
	added []uuid.UUID, calls []*restartCall) int {
	t.Helper()
	items := map[uuid.UUID]pool.Item{}
	for _, id := range pools {
		list := allItems(ctx, t, eng, id, 100)
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, countStatuses(list), d.StatusCounts, "status counts vs a recount")
		for _, it := range list {
			require.LessOrEqual(t, it.Attempts, maxRetries+1, "%s: attempts beyond the ceiling", it.ContactUUID)
			items[it.ContactUUID] = it
		}
	}
	for _, contact := range added {
		_, ok := items[contact]
		require.True(t, ok, "an acknowledged Add of %s is lost", contact)
	}
	acked := 0
	for _, rc := range calls {
		if rc.ackedCompleted {
			acked++
			it := items[rc.contact]
			require.Equal(t, pool.StatusCompleted, it.Status, "%s: acknowledged Complete", rc.contact)
			require.Equal(t, rc.token, it.Token, "%s: completed with token %d, dispatched again since", rc.contact, rc.token)
		}
	}
	return acked
}

// errKind names the kind of an error of a call made while the server was
// down, for the log.
func errKind(err error) string {
	switch {
	case errors.Is(err, postgres.ErrCommitUnknown):
		return "commit unknown"
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline"
	}
	return fmt.Sprintf("%.60s", err.Error())
}

// TestPostgres_ServerCrashLosesTheLastCommits: at Normal durability
// (synchronous_commit off) a crash of the server loses the commits whose
// log it had not written yet (here all of them: wal_writer_delay is 10 s,
// its largest, instead of 200 ms, and the server has just started, so
// that its WAL writer does not write the log before the crash). A claim
// lost that way is fenced off: the item is due again, its next claim
// draws another token, and the lost lease gets ErrLeaseLost, never
// settling the later dispatch. At Full durability the claim survives the
// crash, and its lease settles the item; at Normal durability it survives
// a clean restart (a fast shutdown writes the log first).
func TestPostgres_ServerCrashLosesTheLastCommits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    postgres.Durability
		mode string
	}{{postgres.Normal, "immediate"}, {postgres.Full, "immediate"}, {postgres.Normal, "fast"}} {
		d := tc.d
		t.Run(d.String()+"/"+tc.mode, func(t *testing.T) {
			t.Parallel()
			c := pgtest.NewCluster(t, "wal_writer_delay=10000")
			ctx := context.Background()
			st := pgtest.OpenSchema(t, c.URL, postgres.Options{Schema: "poolq", Durability: d})
			eng := openEngine(t, st, queue.Options{LeaseTimeout: time.Minute})
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "fifo", Description: "d", Type: pool.FIFO})
			require.NoError(t, err)
			_, err = eng.Add(ctx, p.UUID, newItems(1)...)
			require.NoError(t, err)
			// The pool and its item on disk, and the WAL writer's next
			// round 10 s away.
			c.Stop("fast")
			c.Start()
			waitOutPings()
			lost, err := eng.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)

			c.Stop(tc.mode)
			c.Start()
			waitOutPings()
			it, err := eng.Item(ctx, p.UUID, lost.ContactUUID)
			require.NoError(t, err)
			if d == postgres.Full || tc.mode == "fast" {
				require.Equal(t, pool.StatusProcessing, it.Status, "an acknowledged claim")
				require.Equal(t, lost.Token, it.Token)
				require.NoError(t, eng.Complete(ctx, lost, "answered"))
				return
			}
			require.Equal(t, pool.StatusPending, it.Status, "the crash lost the claim's commit")
			require.Equal(t, 0, it.Attempts)
			next, err := eng.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)
			require.Equal(t, lost.ContactUUID, next.ContactUUID)
			require.NotEqual(t, lost.Token, next.Token, "the next claim reissued the lost claim's token")
			require.ErrorIs(t, eng.Extend(ctx, lost, time.Minute), queue.ErrLeaseLost)
			require.ErrorIs(t, eng.Complete(ctx, lost, "answered"), queue.ErrLeaseLost)
			require.NoError(t, eng.Fail(ctx, next, queue.Failure{Final: true, Note: "no answer"}))
			it, err = eng.Item(ctx, p.UUID, lost.ContactUUID)
			require.NoError(t, err)
			require.Equal(t, pool.StatusFailed, it.Status, "settled by the later dispatch's lease alone")
			require.Equal(t, next.Token, it.Token)
		})
	}
}

// waitOutPings waits, after a server's restart, until a store's
// connections have been idle for more than a second: its pool (pgxpool)
// pings those before it hands them out, and hands out one idle for less
// as it is, which then fails the call ("conn closed") if the server ended
// it. A real outage lasts longer.
func waitOutPings() { time.Sleep(1100 * time.Millisecond) }

// TestPostgres_ServerCrashLostClaimUnderWork: at Normal durability the
// crash loses a claim whose handler runs in Work (set up as in
// TestPostgres_ServerCrashLosesTheLastCommits). The item is due again (any
// node may claim it while the first call goes on); Work learns that its
// lease is lost at its next heartbeat after the server is back, cancels
// the handler (EventExpired) and writes nothing of it, and claims the item
// again: a new token, and the lost claim's attempt not counted.
func TestPostgres_ServerCrashLostClaimUnderWork(t *testing.T) {
	t.Parallel()
	c := pgtest.NewCluster(t, "wal_writer_delay=10000")
	ctx := context.Background()
	eng := openEngine(t, pgtest.OpenSchema(t, c.URL, postgres.Options{Schema: "poolq"}), queue.Options{LeaseTimeout: time.Minute})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "fifo", Description: "d", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	c.Stop("fast")
	c.Start()
	waitOutPings()

	const heartbeat = 500 * time.Millisecond
	started, cancelled := make(chan *queue.Lease, 10), make(chan time.Time, 10)
	var mu sync.Mutex
	var events []queue.EventKind
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	worked := make(chan error, 1)
	go func() {
		worked <- eng.Work(wctx, func(hctx context.Context, l *queue.Lease) error {
			started <- l
			<-hctx.Done()
			cancelled <- time.Now()
			return hctx.Err()
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: heartbeat, Grace: time.Second,
			OnEvent: func(e queue.Event) { mu.Lock(); events = append(events, e.Kind); mu.Unlock() }})
	}()
	lost := <-started

	c.Stop("immediate")
	c.Start()
	back := time.Now()
	select {
	case at := <-cancelled:
		t.Logf("the handler of the lost claim was cancelled %v after the server's start", at.Sub(back).Round(time.Millisecond))
		require.Less(t, at.Sub(back), 5*heartbeat+2*time.Second, "the handler of the lost claim, cancelled")
	case <-time.After(10 * time.Second):
		t.Fatal("the handler of the lost claim was not cancelled")
	}
	var again *queue.Lease
	select {
	case again = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the item was not claimed again")
	}
	require.Equal(t, lost.ContactUUID, again.ContactUUID)
	require.NotEqual(t, lost.Token, again.Token, "the next claim reissued the lost claim's token")
	require.Equal(t, 1, again.Attempt, "the lost claim's attempt is counted: the crash lost it")
	it, err := eng.Item(ctx, p.UUID, lost.ContactUUID)
	require.NoError(t, err)
	require.Equal(t, again.Token, it.Token)
	require.ErrorIs(t, eng.Complete(ctx, lost, "answered"), queue.ErrLeaseLost)
	stop()
	require.NoError(t, <-worked)
	mu.Lock()
	defer mu.Unlock()
	require.Contains(t, events, queue.EventExpired, "Work reports the lost lease")
	require.Equal(t, queue.EventDispatched, events[0])
}

// drainThenStop waits until every item of pools is terminal (the leases in
// flight at an outage come back at their end), then stops the Work calls
// (stop, then works) and requires them to return within 10 s, each with no
// error (workDone).
func drainThenStop(t *testing.T, eng *queue.Engine, pools []uuid.UUID, stop func(), works *sync.WaitGroup, workDone []error) {
	t.Helper()
	terminal := func(id uuid.UUID) bool {
		d, err := eng.Pool(context.Background(), id)
		require.NoError(t, err)
		s := d.StatusCounts
		return s[pool.StatusCompleted]+s[pool.StatusFailed]+s[pool.StatusSkipped] == d.ContactsCount
	}
	require.True(t, waitUntil(60*time.Second, func() bool {
		for _, id := range pools {
			if !terminal(id) {
				return false
			}
		}
		return true
	}), "the pools did not drain")
	stopped := time.Now()
	stop()
	works.Wait()
	require.Less(t, time.Since(stopped), 10*time.Second, "Work's shutdown")
	for i, err := range workDone {
		require.NoError(t, err, "engine %d's Work", i)
	}
}

// dialPools creates the two pools of the restart and outage tests, a
// Parallel one of cap capPar with nPar items and a FIFO one with nFIFO,
// both with maxRetries, and returns them with each FIFO contact's place.
func dialPools(t *testing.T, eng *queue.Engine, capPar, maxRetries, nPar, nFIFO int) (par, fifo pool.Pool, order map[uuid.UUID]int) {
	t.Helper()
	ctx := context.Background()
	par, err := eng.CreatePool(ctx, pool.CreateParams{Name: "parallel", Description: "d", Type: pool.Parallel,
		MaxParallelItems: pqPtr(capPar), MaxRetries: pqPtr(maxRetries)})
	require.NoError(t, err)
	fifo, err = eng.CreatePool(ctx, pool.CreateParams{Name: "fifo", Description: "d", Type: pool.FIFO, MaxRetries: pqPtr(maxRetries)})
	require.NoError(t, err)
	_, err = eng.Add(ctx, par.UUID, newItems(nPar)...)
	require.NoError(t, err)
	fifoItems := newItems(nFIFO)
	_, err = eng.Add(ctx, fifo.UUID, fifoItems...)
	require.NoError(t, err)
	order = map[uuid.UUID]int{}
	for i, it := range fifoItems {
		order[it.ContactUUID] = i
	}
	return par, fifo, order
}

// adder adds an item to a pool at each tick until it is stopped: the Adds
// under an outage test, whose acknowledged ones must be there after it,
// and none of which may hang.
type adder struct {
	added   []uuid.UUID // the acknowledged Adds' contacts
	errs    []error
	slowest time.Duration
	halt    chan struct{}
	done    chan struct{}
}

// addAllAlong starts adding an item to pool p every interval.
func addAllAlong(ctx context.Context, eng *queue.Engine, p uuid.UUID, interval time.Duration) *adder {
	a := &adder{halt: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		for {
			select {
			case <-a.halt:
				return
			case <-time.After(interval):
			}
			it := newItems(1)
			start := time.Now()
			_, err := eng.Add(ctx, p, it...)
			a.slowest = max(a.slowest, time.Since(start))
			if err != nil {
				a.errs = append(a.errs, err)
				continue
			}
			a.added = append(a.added, it[0].ContactUUID)
		}
	}()
	return a
}

// stop stops the Adds and returns what they did.
func (a *adder) stop() (added []uuid.UUID, errs []error, slowest time.Duration) {
	close(a.halt)
	<-a.done
	return a.added, a.errs, a.slowest
}
