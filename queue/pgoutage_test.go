package queue_test

// The PostgreSQL server is down for longer than a lease under running
// nodes (pgrestart_test.go has the restarts shorter than a lease): the
// leases of the calls under way end while nothing can be written, and
// each node must stop its calls at their leases' ends by its own clock,
// before another node can claim their items again.

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/internal/leakcheck"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// EnvOutage names the environment variable that sets how long
// TestPostgres_OutageLongerThanALease keeps the server down (a Go
// duration: "1m"); 5 s by default, against leases of 2 s.
const EnvOutage = "POOLQ_OUTAGE"

// TestPostgres_OutageLongerThanALease: two engines, each on its own
// store, run Work over a Parallel pool (cap 3) and a FIFO pool of one
// schema, at Full durability, with leases of 2 s, while a goroutine adds
// items. Half the calls before the outage are long (they would run 30 s), so that calls are
// under way when the server is stopped (fast or immediately) for 5 s,
// longer than their leases, and started again. Then:
//
//   - every call under way when the server went down was stopped (its
//     context cancelled) by its lease's end, which is at most a lease
//     after the server went down: no extension could be written since;
//   - the engines go on by themselves: a handler starts within seconds of
//     the server's start, and the pools drain;
//   - the rules held across the nodes (requireCallsKeptTheRules: the cap,
//     FIFO's one call at a time and order, one call per contact at a
//     time), and what was acknowledged is there, no item beyond its
//     ceiling (requireAcknowledgedKept);
//   - no Add made while the server was down hung; Work returns at its
//     context's end, the engines close promptly, and no goroutine of the
//     engines, the stores or pgx is left.
//
// Not parallel (its subtests are, with each other): it counts goroutines.
func TestPostgres_OutageLongerThanALease(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a private PostgreSQL server for seconds; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	outage := 5 * time.Second
	if v := os.Getenv(EnvOutage); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, EnvOutage)
		outage = d
	}
	before := len(storeGoroutines())
	t.Cleanup(func() {
		if !waitUntil(10*time.Second, func() bool { return len(storeGoroutines()) <= before }) {
			t.Errorf("goroutines leaked: %d of the engines, the stores and pgx before, now:\n%s",
				before, strings.Join(storeGoroutines(), "\n\n"))
		}
	})
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			outageRun(t, mode, outage)
		})
	}
}

// storeGoroutines returns the stacks of the goroutines running code of
// the engine, of the PostgreSQL store, or of pgx and its pool.
func storeGoroutines() []string {
	var out []string
	for _, g := range leakcheck.Stacks() {
		for _, code := range []string{"poolq/queue.", "poolq/store/postgres.", "jackc/pgx", "jackc/puddle"} {
			if strings.Contains(g, code) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// outageCall is a restartCall with what the outage test needs more.
type outageCall struct {
	*restartCall
	long      bool      // it would run 30 s, unless cancelled
	cancelled time.Time // when its context ended, if it did
}

func outageRun(t *testing.T, mode string, outage time.Duration) {
	const (
		leaseTimeout = 2 * time.Second
		capPar       = 3
		maxRetries   = 3
		nPar, nFIFO  = 40, 12
		slack        = 300 * time.Millisecond // for a goroutine to be scheduled on a busy machine
	)
	c := pgtest.NewCluster(t)
	ctx := context.Background()
	opts := postgres.Options{Schema: "poolq", Durability: postgres.Full, MaxConns: 4}
	stores := []*postgres.Store{pgtest.OpenSchema(t, c.URL, opts), pgtest.OpenSchema(t, c.URL, opts)}
	qopts := queue.Options{LeaseTimeout: leaseTimeout, RetryDelay: time.Millisecond, PollInterval: 200 * time.Millisecond}
	engines := []*queue.Engine{openEngine(t, stores[0], qopts), openEngine(t, stores[1], qopts)}
	eng := engines[0]
	par, fifo, order := dialPools(t, eng, capPar, maxRetries, nPar, nFIFO)
	names := map[uuid.UUID]string{par.UUID: "par", fifo.UUID: "fifo"}

	var mu sync.Mutex
	var calls []*outageCall
	byLease := map[int64]*restartCall{}
	expired := 0         // EventExpired
	var down atomic.Bool // set as the server is stopped: the calls started since are short
	handler := func(hctx context.Context, l *queue.Lease) error {
		oc := &outageCall{restartCall: &restartCall{pool: names[l.PoolUUID], contact: l.ContactUUID, token: l.Token,
			attempt: l.Attempt, start: time.Now()}}
		d := time.Duration(20+rand.IntN(80)) * time.Millisecond
		if !down.Load() && l.Token%2 == 0 {
			oc.long, d = true, 30*time.Second
		}
		mu.Lock()
		calls = append(calls, oc)
		byLease[l.Token] = oc.restartCall
		mu.Unlock()
		var err error
		select {
		case <-time.After(d):
			if oc.pool == "par" && l.Token%4 == 1 {
				err = errors.New("busy")
			}
		case <-hctx.Done():
			err = hctx.Err()
		}
		mu.Lock()
		oc.end = time.Now()
		if err != nil && hctx.Err() != nil {
			oc.cancelled = oc.end
		}
		mu.Unlock()
		return err
	}
	var workErrs atomic.Int64
	onEvent := func(e queue.Event) {
		switch e.Kind {
		case queue.EventCompleted:
			mu.Lock()
			if rc := byLease[e.Lease.Token]; rc != nil && rc.contact == e.Lease.ContactUUID {
				rc.ackedCompleted = true
			}
			mu.Unlock()
		case queue.EventError:
			workErrs.Add(1)
		case queue.EventExpired:
			mu.Lock()
			expired++
			mu.Unlock()
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

	// Adds all along, the outage included: those acknowledged must be
	// there, and none may hang.
	adds := addAllAlong(ctx, eng, par.UUID, 100*time.Millisecond)

	// The outage, once long calls of both pools are under way.
	running := func(pool string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, oc := range calls {
			if oc.pool == pool && oc.long && oc.end.IsZero() {
				return true
			}
		}
		return false
	}
	// On a busy machine a lease may be lost before the outage (its
	// extension late), its long call with it: some call under way is
	// enough, though there are usually calls of both pools.
	require.True(t, waitUntil(20*time.Second, func() bool { return running("par") || running("fifo") }), "long calls under way")
	waitUntil(5*time.Second, func() bool { return running("par") && running("fifo") })
	down.Store(true)
	c.Stop(mode)
	downAt := time.Now()
	started := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
	time.Sleep(outage)
	before := started()
	c.Start()
	back := time.Now()
	require.True(t, waitUntil(20*time.Second, func() bool { return started() > before }),
		"no handler started within 20 s of the server's start")
	t.Logf("server down (%s) for %v; a handler started %v after its start", mode, back.Sub(downAt).Round(time.Millisecond),
		time.Since(back).Round(time.Millisecond))
	time.Sleep(time.Second) // Adds acknowledged after the outage too
	added, addErrs, slowestAdd := adds.stop()

	drainThenStop(t, eng, []uuid.UUID{par.UUID, fifo.UUID}, stop, &works, workDone)

	mu.Lock()
	defer mu.Unlock()
	// Every call under way as the server went down had its context
	// cancelled by its lease's end: no extension was written after downAt,
	// so that end is at most downAt + leaseTimeout by the node's clock.
	acrossOutage := 0
	for _, oc := range calls {
		if !oc.start.Before(downAt) || oc.end.Before(downAt) {
			continue
		}
		acrossOutage++
		require.False(t, oc.end.After(downAt.Add(leaseTimeout+slack)),
			"a call under way as the server went down ran %v past it, beyond its lease (%v)", oc.end.Sub(downAt), leaseTimeout)
		if oc.long {
			require.False(t, oc.cancelled.IsZero(), "a long call under way as the server went down was not cancelled")
		}
	}
	require.Positive(t, acrossOutage, "no call was under way as the server went down")
	require.Positive(t, len(addErrs)+int(workErrs.Load()), "no call failed: the outage was not seen")
	require.Less(t, slowestAdd, 10*time.Second, "an Add during the outage")
	rcs := make([]*restartCall, len(calls))
	for i, oc := range calls {
		rcs[i] = oc.restartCall
	}
	maxHeld := requireCallsKeptTheRules(t, rcs, map[string]int{"par": capPar, "fifo": 1}, order)
	acked := requireAcknowledgedKept(ctx, t, eng, []uuid.UUID{par.UUID, fifo.UUID}, maxRetries, added, rcs)
	closed := time.Now()
	for _, e := range engines {
		require.NoError(t, e.Close())
	}
	require.Less(t, time.Since(closed), 5*time.Second, "the engines' Close")
	t.Logf("%d calls (%d under way as the server went down, %d leases lost), %d acknowledged completions, %d Adds acknowledged and %d failed (the slowest took %v); at most %d / %d handlers at once",
		len(calls), acrossOutage, expired, acked, len(added), len(addErrs), slowestAdd.Round(time.Millisecond), maxHeld["par"], maxHeld["fifo"])
}

// TestPostgres_WorkStartsDuringAnOutage: Work started while the server is
// down waits for it, reporting EventError meanwhile, as a Work that runs
// through an outage does, instead of returning the error of its first
// read: a dialer started during an outage calls once the database is back.
// A pool that does not exist is still an error at the start
// (store.ErrNotFound), once the database answers.
func TestPostgres_WorkStartsDuringAnOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("stops a private PostgreSQL server; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	c := pgtest.NewCluster(t)
	ctx := context.Background()
	eng := openEngine(t, pgtest.OpenSchema(t, c.URL, postgres.Options{Schema: "poolq"}), queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "parallel", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	c.Stop("fast")

	called := make(chan struct{}, 1)
	var errs atomic.Int64
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	worked := make(chan error, 1)
	go func() {
		worked <- eng.Work(wctx, func(context.Context, *queue.Lease) error {
			select {
			case called <- struct{}{}:
			default:
			}
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: func(e queue.Event) {
			if e.Kind == queue.EventError {
				errs.Add(1)
			}
		}})
	}()
	select {
	case err := <-worked:
		t.Fatalf("Work returned during the outage: %v", err)
	case <-time.After(2 * time.Second):
	}
	require.Positive(t, errs.Load(), "Work reports that it cannot read")
	c.Start()
	select {
	case <-called:
	case err := <-worked:
		t.Fatalf("Work returned after the outage: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("no handler called within 15 s of the server's start")
	}
	stop()
	require.NoError(t, <-worked)

	nctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err = eng.Work(nctx, func(context.Context, *queue.Lease) error { return nil }, queue.WorkOptions{Pools: []uuid.UUID{uuid.New()}})
	require.ErrorIs(t, err, store.ErrNotFound, "a pool that does not exist")
}
