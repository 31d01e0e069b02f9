package queue_test

// The engine's tests on the PostgreSQL store: the rapid model (on one store,
// and on three stores of one schema taking turns, as three nodes would),
// the calling-rules machine on three stores taking turns, the concurrency
// cap test over three engines each with its own pool of
// connections, and the wake-up of a Dequeue blocked in one engine by
// another's Add, through LISTEN/NOTIFY, before and after the listener's
// connection is killed. They need POOLQ_TEST_POSTGRES (see package
// store/postgres/pgtest) and skip without it. postgres_kill_test.go kills
// one of three processes dialling one database.

import (
	"context"
	"errors"
	"sync/atomic"
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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestPostgres_Model(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	t.Run("OneStore", func(t *testing.T) {
		t.Parallel()
		schemas := pgtest.NewSchemas(t, url)
		modelCheck(t, func(t *rapid.T) store.Store {
			return schemas.Open(t, postgres.Options{MaxConns: 2})
		})
	})
	// Three stores on one schema, each with its own connections, take
	// turns at every transaction: what one committed, the next must see,
	// as three nodes would.
	t.Run("ThreeStores", func(t *testing.T) {
		t.Parallel()
		schemas := pgtest.NewSchemas(t, url)
		modelCheck(t, func(t *rapid.T) store.Store {
			return newTurnStore(schemas.Nodes(t, postgres.Options{MaxConns: 2}, 3))
		})
	})
}

// TestPostgres_CallingRules runs the calling-rules machine on three stores
// of one schema taking turns, as three nodes would: windows, day caps,
// the lists and escalations hold whichever node makes each step.
func TestPostgres_CallingRules(t *testing.T) {
	if testing.Short() {
		t.Skip("a sequential state machine; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	url := pgtest.URL(t)
	t.Parallel()
	schemas := pgtest.NewSchemas(t, url)
	rulesCheck(t, func(t *rapid.T) store.Store {
		return newTurnStore(schemas.Nodes(t, postgres.Options{MaxConns: 2}, 3))
	})
}

// turnStore runs each transaction on the next of its stores in turn.
type turnStore struct {
	stores []store.Store
	next   atomic.Uint64
}

// newTurnStore returns a turnStore over nodes.
func newTurnStore(nodes []*postgres.Store) *turnStore {
	s := &turnStore{}
	for _, st := range nodes {
		s.stores = append(s.stores, st)
	}
	return s
}

func (s *turnStore) pick() store.Store { return s.stores[s.next.Add(1)%uint64(len(s.stores))] }

func (s *turnStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.pick().Read(ctx, fn)
}

func (s *turnStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.pick().Write(ctx, fn)
}

func (s *turnStore) Close() error { return nil } // each store is closed by its own cleanup

// pgEngines opens n engines, each on its own store (its own pool of
// connections) on one new schema.
func pgEngines(t *testing.T, url string, n int, opts queue.Options) ([]*queue.Engine, []*postgres.Store) {
	t.Helper()
	first := pgtest.Open(t, url, postgres.Options{})
	stores := []*postgres.Store{first}
	for len(stores) < n {
		stores = append(stores, pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema()}))
	}
	engines := make([]*queue.Engine, n)
	for i, st := range stores {
		engines[i] = openEngine(t, st, opts)
	}
	return engines, stores
}

// TestPostgres_ConcurrentThreeEngines runs the cap test over three engines,
// each on its own store and connections, on one schema: the cap, the
// ceiling and the fencing hold across them because every claim locks the
// pool in the database.
func TestPostgres_ConcurrentThreeEngines(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	engines, _ := pgEngines(t, url, 3, queue.Options{
		LeaseTimeout: time.Minute,      // no lease expires during the run
		RetryDelay:   time.Millisecond, // failed items come back at once
		PollInterval: 20 * time.Millisecond,
	})
	ccRun(t, engines, 18, 5, 2, 150)
}

// TestPostgres_WakeAcrossEngines blocks a Dequeue in one engine (with an
// hour's poll) and wakes it with another engine's Add, through
// LISTEN/NOTIFY; then kills the listener's connection and checks that it
// connects again by itself and wakes the next Dequeue too.
func TestPostgres_WakeAcrossEngines(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	engines, stores := pgEngines(t, url, 2, queue.Options{PollInterval: time.Hour})
	waiter, adder := engines[0], engines[1]
	p, err := adder.CreatePool(ctx, pool.CreateParams{Name: "wake", Description: "across engines", Type: pool.Parallel})
	require.NoError(t, err)

	listening := func() bool { return listeners(t, url, stores[0].Schema()) == 2 } // one per store
	wake := func(what string) {
		t.Helper()
		got := make(chan ccResult, 1)
		before := waiter.Stats().Operations
		go func() {
			l, err := waiter.Dequeue(ctx, p.UUID)
			got <- ccResult{l, err, time.Now()}
		}()
		// Its first look is done: from then on only a wake-up (or the
		// hour's poll) brings it back.
		require.Eventually(t, func() bool { return waiter.Stats().Operations > before }, 5*time.Second, time.Millisecond)
		time.Sleep(5 * time.Millisecond)
		t0 := time.Now()
		_, err := adder.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		select {
		case r := <-got:
			require.NoError(t, r.err)
			d := r.at.Sub(t0)
			t.Logf("%s: woken %v after the other engine's Add", what, d)
			require.Less(t, d, time.Second, "%s: the Dequeue took %v to wake", what, d)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the Dequeue was not woken by the other engine's Add", what)
		}
	}
	require.Eventually(t, listening, 10*time.Second, 5*time.Millisecond, "the listeners listen")
	wake("listening")

	// Kill every listener connection of the schema, and wait for them to
	// be back.
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var killed int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE application_name = $1) k`, "poolq listener "+stores[0].Schema()).Scan(&killed)
	require.NoError(t, err)
	require.Equal(t, 2, killed, "each store has its listener")
	require.Eventually(t, listening, 10*time.Second, 5*time.Millisecond, "the listeners connect again")
	wake("after the listener's connection was killed")
}

// TestPostgres_LeaseCountsFromTheLock: a claim or an extension that waits
// for its pool behind another node's transaction still gets a lease of
// the whole LeaseTimeout (or d), counted from when it got the pool, not
// from when its transaction began: a lease shortened by the wait, or over
// before it was handed out, would let the contact be called again while
// the first call goes on. And an extension whose lease ended while it
// waited is lost: another node may have taken the call for ended.
func TestPostgres_LeaseCountsFromTheLock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	const lease = 3 * time.Second
	eng := openEngine(t, st, queue.Options{LeaseTimeout: lease})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "held up", Description: "behind another node"})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	// holdItems keeps the items table from every other transaction for
	// 1.5 s, another node's long transaction, and returns a channel closed
	// once it is over (conn is free again).
	holdItems := func() <-chan struct{} {
		t.Helper()
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{st.Schema(), "items"}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`)
		require.NoError(t, err)
		over := make(chan struct{})
		time.AfterFunc(1500*time.Millisecond, func() { _ = tx.Rollback(ctx); close(over) })
		return over
	}

	over := holdItems()
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	left := time.Until(l.ExpiresAt)
	require.Greater(t, left, lease-500*time.Millisecond, "the claim waited 1.5 s for the pool: its lease has %v left", left)
	<-over

	over = holdItems()
	require.NoError(t, eng.Extend(ctx, l, lease))
	<-over
	left = time.Until(l.ExpiresAt)
	require.Greater(t, left, lease-500*time.Millisecond, "the extension waited 1.5 s for the pool: its lease has %v left", left)

	time.Sleep(time.Until(l.ExpiresAt) - time.Second) // a second of lease left
	over = holdItems()
	stale := *l
	require.ErrorIs(t, eng.Extend(ctx, &stale, lease), queue.ErrLeaseLost, "the lease ended while the extension waited")
	<-over

	items := allItems(ctx, t, eng, p.UUID, 10)
	require.Len(t, items, 1)
	require.Equal(t, 1, items[0].Attempts)
	require.True(t, items[0].Status.InFlight(), "no write since: the expiry is applied by the next write")
	require.Equal(t, l.ExpiresAt, items[0].LeaseExpiresAt, "the lost extension wrote nothing")
}

// TestPostgres_ClaimsJudgedAfterTheBatchWaits: two claims share a
// transaction; the second waits 1.5 s for its pool behind another node.
// What the first decided (its lease's end, here) it decided before that
// wait: the store runs the transaction again with both pools locked first,
// and the first claim's 1 s lease counts from after the wait, not from
// before it (it was handed out over).
func TestPostgres_ClaimsJudgedAfterTheBatchWaits(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	eng := openEngine(t, st, queue.Options{LeaseTimeout: time.Second})
	mk := func(name string) pool.Pool { return parallelPoolOfOne(t, eng, name) }
	p, q, r := mk("pool P"), mk("pool Q"), mk("pool R")

	hold := func(id uuid.UUID, d time.Duration) <-chan error { return holdPool(t, other, id, d) }
	heldR := hold(r.UUID, time.Second)           // holds this engine's first transaction up
	heldQ := hold(q.UUID, 2500*time.Millisecond) // the second claim's pool, longer
	added := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, r.UUID, newItems(1)...); added <- err }()
	time.Sleep(200 * time.Millisecond) // the Add's transaction waits for R
	type claim struct {
		l   *queue.Lease
		err error
	}
	first, second := make(chan claim, 1), make(chan claim, 1)
	go func() { l, err := eng.TryDequeue(ctx, p.UUID); first <- claim{l, err} }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 1 }, 5*time.Second, time.Millisecond)
	go func() { l, err := eng.TryDequeue(ctx, q.UUID); second <- claim{l, err} }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 2 }, 5*time.Second, time.Millisecond)

	waits := st.Stats().Waits
	c := <-first
	require.NoError(t, c.err)
	left := time.Until(c.l.ExpiresAt)
	require.Greater(t, left, 500*time.Millisecond,
		"the first claim's 1 s lease was judged before its transaction waited for the second's pool: %v left", left)
	require.NoError(t, (<-second).err)
	require.Greater(t, st.Stats().Waits, waits, "the transaction ran again after its wait")
	require.NoError(t, <-added)
	require.NoError(t, <-heldR)
	require.NoError(t, <-heldQ)
}

// TestPostgres_FrozenNodeHoldsUpOneWait: another node holds pool Q past
// the lock timeout (stopped mid-batch). This engine's Add to Q shares a
// transaction with a claim of pool P: the Add fails after one lock
// timeout, and the claim is not held up by a second wait (the batch's
// rerun does not run the Add again), so the engine's other pools go on.
func TestPostgres_FrozenNodeHoldsUpOneWait(t *testing.T) {
	pgtest.URL(t) // skips without PostgreSQL
	t.Parallel()
	ctx := context.Background()
	const lockTimeout = 2 * time.Second
	eng, ps, hold := heldNode(t, lockTimeout, queue.Options{}, "pool P", "pool Q", "pool R")
	p, q, r := ps[0], ps[1], ps[2]
	heldQ := hold(q.UUID, 3*lockTimeout) // the frozen node
	heldR := hold(r.UUID, 500*time.Millisecond)
	first := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, r.UUID, newItems(1)...); first <- err }() // holds the engine's writes up
	time.Sleep(200 * time.Millisecond)
	added, claimed := make(chan error, 1), make(chan time.Time, 1)
	go func() { _, err := eng.Add(ctx, q.UUID, newItems(1)...); added <- err }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 1 }, 5*time.Second, time.Millisecond)
	go func() {
		_, err := eng.TryDequeue(ctx, p.UUID)
		assert.NoError(t, err)
		claimed <- time.Now()
	}()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 2 }, 5*time.Second, time.Millisecond)
	require.NoError(t, <-first)
	start := time.Now() // the batch of the Add to Q and the claim begins
	require.ErrorIs(t, <-added, store.ErrLockTimeout)
	took := (<-claimed).Sub(start)
	require.Less(t, took, lockTimeout*7/4, "the claim waited for the frozen node's pool twice: %v", took)
	require.NoError(t, <-heldR)
	require.NoError(t, <-heldQ)
}

// TestPostgres_FrozenPoolFailsOnlyItsSettlements: settlements of two pools
// share a batch; another node holds one pool past the lock timeout. Its
// settlement fails with ErrLockTimeout, the other pool's commits (a
// combined call that timed out is not run again, so settlements are
// combined per pool).
func TestPostgres_FrozenPoolFailsOnlyItsSettlements(t *testing.T) {
	pgtest.URL(t) // skips without PostgreSQL
	t.Parallel()
	ctx := context.Background()
	const lockTimeout = time.Second
	eng, ps, hold := heldNode(t, lockTimeout, queue.Options{}, "pool free", "pool busy", "pool R")
	free, busy, r := ps[0], ps[1], ps[2]
	lFree, err := eng.TryDequeue(ctx, free.UUID)
	require.NoError(t, err)
	lBusy, err := eng.TryDequeue(ctx, busy.UUID)
	require.NoError(t, err)
	heldBusy := hold(busy.UUID, 4*lockTimeout) // a frozen node
	heldR := hold(r.UUID, 500*time.Millisecond)
	first := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, r.UUID, newItems(1)...); first <- err }() // holds the engine's writes up
	time.Sleep(200 * time.Millisecond)
	doneFree, doneBusy := make(chan error, 1), make(chan error, 1)
	go func() { doneFree <- eng.Complete(ctx, lFree, "answered") }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 1 }, 5*time.Second, time.Millisecond)
	go func() { doneBusy <- eng.Complete(ctx, lBusy, "answered") }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 2 }, 5*time.Second, time.Millisecond)
	require.NoError(t, <-first)
	require.ErrorIs(t, <-doneBusy, store.ErrLockTimeout)
	require.NoError(t, <-doneFree, "the Complete of a pool nobody else holds")
	require.NoError(t, <-heldR)
	require.NoError(t, <-heldBusy)
	it, err := eng.Item(ctx, free.UUID, lFree.ContactUUID)
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status)
}

// TestPostgres_FrozenPoolBelowAnotherInABatch: an Add to pool Q and a
// Dequeue on pool P share a batch, in that order, P's lock sorting below
// Q's, so the store runs the batch again taking both locks up front; another
// node holds P past the lock timeout. The Add to Q commits (P's lock
// timeout is P's alone), and the Dequeue on P goes on waiting and claims
// once P is free: it never returns the store's internal restart error.
func TestPostgres_FrozenPoolBelowAnotherInABatch(t *testing.T) {
	pgtest.URL(t) // skips without PostgreSQL
	t.Parallel()
	ctx := context.Background()
	const lockTimeout = time.Second
	eng, ps, hold := heldNode(t, lockTimeout, queue.Options{}, "pool P", "pool Q", "pool R") // P's lock sorts below Q's
	p, q, r := ps[0], ps[1], ps[2]
	heldP := hold(p.UUID, 5*lockTimeout/2) // a frozen node
	heldR := hold(r.UUID, 300*time.Millisecond)
	first := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, r.UUID, newItems(1)...); first <- err }() // holds the engine's writes up
	time.Sleep(100 * time.Millisecond)
	added, claimed := make(chan error, 1), make(chan error, 1)
	go func() { _, err := eng.Add(ctx, q.UUID, newItems(1)...); added <- err }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 1 }, 5*time.Second, time.Millisecond)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		l, err := eng.Dequeue(dctx, p.UUID)
		if err == nil && l == nil {
			err = errors.New("no lease")
		}
		claimed <- err
	}()
	require.Eventually(t, func() bool { return queue.Queued(eng) == 2 }, 5*time.Second, time.Millisecond)
	require.NoError(t, <-first)
	errAdded, errClaimed := <-added, <-claimed
	require.NoError(t, errClaimed, "the Dequeue on the frozen pool, once it is free")
	require.NoError(t, errAdded, "the Add to a pool nobody else holds")
	require.NoError(t, <-heldR)
	require.NoError(t, <-heldP)
	its, err := eng.Items(ctx, q.UUID, pool.ItemQuery{})
	require.NoError(t, err)
	require.Equal(t, 2, its.Total, "the Add to Q committed")
}

// TestPostgres_FrozenPoolWaitedForOnce: four Adds to pool P and one to pool
// Q share a batch; another node holds P past the lock timeout. The first
// Add to P waits it out; the others, run again in savepoints, fail at once
// rather than each wait as long again, so the Add to Q commits after one
// lock timeout, not four.
func TestPostgres_FrozenPoolWaitedForOnce(t *testing.T) {
	pgtest.URL(t) // skips without PostgreSQL
	t.Parallel()
	ctx := context.Background()
	const lockTimeout = 600 * time.Millisecond
	eng, ps, hold := heldNode(t, lockTimeout, queue.Options{}, "pool P", "pool Q", "pool R")
	p, q, r := ps[0], ps[1], ps[2]
	heldP := hold(p.UUID, 5*lockTimeout) // a frozen node
	heldR := hold(r.UUID, 300*time.Millisecond)
	first := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, r.UUID, newItems(1)...); first <- err }() // holds the engine's writes up
	time.Sleep(100 * time.Millisecond)
	const addsToP = 4
	addedP := make(chan error, addsToP)
	for i := range addsToP {
		go func() { _, err := eng.Add(ctx, p.UUID, newItems(1)...); addedP <- err }()
		require.Eventually(t, func() bool { return queue.Queued(eng) == i+1 }, 5*time.Second, time.Millisecond)
	}
	addedQ := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, q.UUID, newItems(1)...); addedQ <- err }()
	require.Eventually(t, func() bool { return queue.Queued(eng) == addsToP+1 }, 5*time.Second, time.Millisecond)
	require.NoError(t, <-first)
	start := time.Now() // the batch begins
	require.NoError(t, <-addedQ)
	took := time.Since(start)
	for range addsToP {
		require.ErrorIs(t, <-addedP, store.ErrLockTimeout)
	}
	require.Less(t, took, 2*lockTimeout, "the Adds to the frozen pool each waited for it: %v", took)
	require.NoError(t, <-heldR)
	require.NoError(t, <-heldP)
}

// TestPostgres_FrozenPoolDequeueHoldsNothingUp: a Dequeue blocked on a pool
// that another node holds past the lock timeout looks again and again (it
// waits on); once it has waited the timeout out, its looks only try the
// pool's lock, so the writes of the node's other pools, which share their
// batches, go on at their usual speed. It claims once the pool is free.
// The engine's PollInterval is the default (1 s), as long as the lock
// timeout: until December 2026 the store forgot the pool a lock timeout
// after a look found it held, and each look, a PollInterval later, waited
// the timeout out again, with the Adds of its batch.
func TestPostgres_FrozenPoolDequeueHoldsNothingUp(t *testing.T) {
	pgtest.URL(t) // skips without PostgreSQL
	t.Parallel()
	ctx := context.Background()
	const lockTimeout = time.Second // its half bounds an Add: room for a loaded machine
	eng, ps, hold := heldNode(t, lockTimeout, queue.Options{}, "pool P", "pool Q")
	p, q := ps[0], ps[1]
	heldP := hold(p.UUID, 5*lockTimeout) // a frozen node
	claimed := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := eng.Dequeue(dctx, p.UUID)
		claimed <- err
	}()
	time.Sleep(3 * lockTimeout / 2) // the Dequeue's first look waits the timeout out
	slowest, at := slowestAdds(t, eng, q.UUID, time.Now(), 2*lockTimeout)
	require.Less(t, slowest, lockTimeout/2, "a write of another pool waited for the frozen one (%v in)", at)
	require.NoError(t, <-heldP)
	require.NoError(t, <-claimed, "the Dequeue claims once the pool is free")
}

// TestPostgres_UpdateRuleWaitsForAClaimUnderIt: a claim under a rule
// (here, another node's transaction that holds the campaign's pool and
// has read the rule, as a claim does) commits before the rule's update,
// and none under the old values after it returns. A transaction that holds
// the pool without reading the rule (an Add, a Complete) does not hold
// the update up: the update takes the rule's lock, not the pools' (until
// December 2026 it took every pool of every campaign of the rule, and a
// rule of 13 full campaigns could not be updated: "out of shared memory").
func TestPostgres_UpdateRuleWaitsForAClaimUnderIt(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	eng := openEngine(t, st, queue.Options{})
	r, _, p := runningCampaign(t, eng)

	const held = time.Second
	done := holdPool(t, other, p.UUID, held, r.UUID) // a claim under the old rule, under way
	start := time.Now()
	_, err := eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: new(1)})
	require.NoError(t, err)
	require.Greater(t, time.Since(start), held*8/10, "the update did not wait for the claim under way on its pool")
	require.NoError(t, <-done)

	done = holdPool(t, other, p.UUID, held) // a write of the pool that reads no rule
	start = time.Now()
	_, err = eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: new(2)})
	require.NoError(t, err)
	require.Less(t, time.Since(start), held/2, "the update waited for a write of its pool that read no rule")
	require.NoError(t, <-done)
}

// runningCampaign returns a rule, a campaign In Process under it and the
// campaign's one pool, empty.
func runningCampaign(t *testing.T, eng *queue.Engine) (campaign.Rule, campaign.Campaign, pool.Pool) {
	t.Helper()
	return campaignUnder(t, eng, campaign.CreateRuleParams{Name: "three a day"})
}

// campaignUnder is runningCampaign under a rule made of rp.
func campaignUnder(t *testing.T, eng *queue.Engine, rp campaign.CreateRuleParams) (campaign.Rule, campaign.Campaign, pool.Pool) {
	t.Helper()
	ctx := context.Background()
	r, err := eng.CreateRule(ctx, rp)
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool", Description: "d"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	c, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	return r, c, p
}

// TestPostgres_UpdateCampaignZoneTakesThePools: a running campaign's new
// default zone takes its pools, as a rule's update does; a new name does
// not.
func TestPostgres_UpdateCampaignZoneTakesThePools(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	eng := openEngine(t, st, queue.Options{})
	_, c, p := runningCampaign(t, eng)

	const held = time.Second
	done := holdPool(t, other, p.UUID, held)
	start := time.Now()
	_, err := eng.UpdateCampaign(ctx, c.UUID, campaign.UpdateParams{Name: new("renamed")})
	require.NoError(t, err)
	require.Less(t, time.Since(start), held/2, "a new name waited for the pool")
	_, err = eng.UpdateCampaign(ctx, c.UUID, campaign.UpdateParams{TimeZone: new("America/New_York")})
	require.NoError(t, err)
	require.Greater(t, time.Since(start), held*8/10, "the new zone did not wait for the claim under way on its pool")
	require.NoError(t, <-done)
}

// listeners returns the number of the schema's listener connections that
// are listening (one per store open on it), -1 when it cannot tell: those
// idle after their LISTEN, or after the ping that follows it once no
// notification came for a while (pgx's "-- ping").
func listeners(t *testing.T, url, schema string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
WHERE application_name = $1 AND state = 'idle' AND (query LIKE 'LISTEN %' OR query = '-- ping')`,
		"poolq listener "+schema).Scan(&n)
	if err != nil {
		return -1
	}
	return n
}

// TestPostgres_DequeueCampaignLearnsItFinished: a DequeueCampaign on one
// node returns when another node completes its campaign, through
// LISTEN/NOTIFY, not at its poll.
func TestPostgres_DequeueCampaignLearnsItFinished(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	engines, stores := pgEngines(t, url, 2, queue.Options{PollInterval: time.Hour})
	waiter, other := engines[0], engines[1]
	_, c, p := runningCampaign(t, other)
	got := make(chan error, 1)
	go func() { _, err := waiter.DequeueCampaign(ctx, c.UUID); got <- err }()
	// Subscribed to the campaign's pool (after its first read of the
	// campaign), and its store's listener listening: a notification
	// before either would be lost (until the poll).
	require.Eventually(t, func() bool { return queue.Waiting(waiter, p.UUID) == 1 }, 5*time.Second, time.Millisecond)
	require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // asleep
	_, err := other.CompleteCampaign(ctx, c.UUID)
	require.NoError(t, err)
	select {
	case err := <-got:
		require.ErrorIs(t, err, campaign.ErrWrongStatus)
	case <-time.After(10 * time.Second):
		t.Fatal("the DequeueCampaign did not learn that another node completed its campaign")
	}
}

// TestPostgres_WindowJudgedAfterTheLock: a claim that waits for its pool
// behind another node's transaction judges the calling window at the time
// it got the pool, not at the time its transaction began: the window
// closed during the wait, so the item is put off to the next window, not
// dialled after it closed.
func TestPostgres_WindowJudgedAfterTheLock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 1, 2, 17, 59, 50, 0, time.UTC)}
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	eng := openEngine(t, st, queue.Options{Now: clk.Now, PollInterval: time.Hour})
	b := &testBundle{ctx: ctx, eng: eng, clock: clk}
	p, _ := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{StartTime: pqPtr("09:00"), EndTime: pqPtr("18:00")})
	contact := b.addIn(t, p.UUID, "")

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `LOCK TABLE `+pgx.Identifier{st.Schema(), "items"}.Sanitize()+` IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { _, err := eng.TryDequeue(ctx, p.UUID); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("the claim did not wait for the other transaction: %v", err)
	case <-time.After(300 * time.Millisecond): // begun at 17:59:50, waiting
	}
	clk.Advance(25 * time.Second) // 18:00:15: the window has closed
	require.NoError(t, tx.Rollback(ctx))
	require.ErrorIs(t, <-done, queue.ErrEmpty, "dialled at 18:00:15, after the window closed")
	it := b.item(t, p.UUID, contact)
	require.Equal(t, pool.StatusScheduled, it.Status)
	require.Equal(t, 0, it.Attempts)
	require.Equal(t, time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC), it.NextRetryAt.UTC())
}

// parallelPoolOfOne makes a Parallel pool named name holding one item.
func parallelPoolOfOne(t *testing.T, eng *queue.Engine, name string) pool.Pool {
	t.Helper()
	ctx := context.Background()
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: name, Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	return p
}

// heldNode opens an engine with opts on a new schema, whose store waits at
// most lockTimeout for a pool's lock (0: the default), and makes there
// Parallel pools with a cap of one, named names, in order (their locks sort
// in that order). hold holds a pool's lock from another node's store for d
// (see holdPool).
func heldNode(t *testing.T, lockTimeout time.Duration, opts queue.Options, names ...string) (eng *queue.Engine, pools []pool.Pool, hold func(id uuid.UUID, d time.Duration) <-chan error) {
	t.Helper()
	eng, other := nodeBesideOther(t, lockTimeout, opts)
	for _, name := range names {
		pools = append(pools, parallelPoolOfOne(t, eng, name))
	}
	return eng, pools, func(id uuid.UUID, d time.Duration) <-chan error { return holdPool(t, other, id, d) }
}

// nodeBesideOther opens an engine with opts on a new schema, whose store
// waits at most lockTimeout for a pool's lock (0: the default), and
// another node's store on the same schema, whose sessions may stay idle in
// a transaction for ever: a test's hold may outlast the default 30 s
// IdleInTransactionTimeout.
func nodeBesideOther(t *testing.T, lockTimeout time.Duration, opts queue.Options) (*queue.Engine, store.Store) {
	t.Helper()
	url := pgtest.URL(t)
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4, LockTimeout: lockTimeout})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2, IdleInTransactionTimeout: -1})
	return openEngine(t, st, opts), other
}

// holdPool has another node (a write transaction of st, on its own
// connection) hold pool id's lock for d, having read rules (holding their
// locks, shared, as a claim under them does), and returns once it holds
// them; the channel gets the transaction's result.
func holdPool(t *testing.T, st store.Store, id uuid.UUID, d time.Duration, rules ...uuid.UUID) <-chan error {
	t.Helper()
	return holdPoolUntil(t, st, id, func() { time.Sleep(d) }, rules...)
}

// holdPoolUntil is holdPool holding the locks until wait returns.
func holdPoolUntil(t *testing.T, st store.Store, id uuid.UUID, wait func(), rules ...uuid.UUID) <-chan error {
	t.Helper()
	ctx := context.Background()
	locked, done := make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, id); err != nil {
				return err
			}
			for _, r := range rules {
				if _, err := tx.Rule(ctx, r); err != nil {
					return err
				}
			}
			close(locked)
			wait()
			return nil
		})
	}()
	<-locked
	return done
}

// TestPostgres_ConcurrentContactsAcrossPools runs contactsRun over three
// engines on one schema: a claim under the campaign's rule takes the
// campaign's lock, so that no two nodes call one contact at once from two
// of its pools.
func TestPostgres_ConcurrentContactsAcrossPools(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	engines, _ := pgEngines(t, url, 3, queue.Options{LeaseTimeout: time.Minute, PollInterval: 5 * time.Millisecond})
	contactsRun(t, engines, 12, 20, 6)
}

// TestPostgres_WatchEscalationsAcrossNodes: WatchEscalations on one node
// learns of an escalation another node records at once (the commit's
// NOTIFY), not at its next poll (an hour here). Until December 2026
// another process's escalations waited for the poll, 1 s by default, and
// a longer PollInterval, safe for the Dequeues, delayed them as long.
func TestPostgres_WatchEscalationsAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	engines, stores := pgEngines(t, url, 2, queue.Options{PollInterval: time.Hour})
	watcher, other := engines[0], engines[1]
	require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)
	_, _, p := campaignUnder(t, other, campaign.CreateRuleParams{Name: "escalate at once", EscalationAfterFailedAttempts: new(1)})
	items := newItems(2)
	_, err := other.Add(ctx, p.UUID, items...)
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan campaign.Escalation, 10)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchEscalations(wctx, 0, func(e campaign.Escalation) error { seen <- e; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 2 {
		time.Sleep(300 * time.Millisecond) // the watch has looked, and waits
		l, err := other.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, other.Fail(ctx, l, queue.Failure{Note: "no answer", Final: true}))
		select {
		case e := <-seen:
			require.Equal(t, l.ContactUUID, e.ContactUUID, "escalation %d", i)
		case <-time.After(5 * time.Second):
			t.Fatalf("escalation %d, recorded by another node, not seen within 5 s (PollInterval is an hour)", i)
		}
	}
}
