package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// The engine keeps at most one governing campaign per pool by checking,
// inside the write transaction that starts a campaign or attaches a pool to
// a governing one, the campaigns of each pool concerned (queue's
// transition, AttachPools and checkFree). These tests run the engine's
// steps on two stores of one schema, as two nodes, with the interleavings
// that would break the rule if the store did not serialize them.

// errHeld is the conflict of the tests' check.
var errHeld = errors.New("pool governed by another campaign")

// checkFree is the engine's check: no campaign but self governs pool p.
func checkFree(ctx context.Context, tx store.Tx, p, self uuid.UUID) error {
	cs, err := tx.PoolCampaigns(ctx, p)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if c.UUID != self && c.Status.Governs() {
			return fmt.Errorf("pool %s: campaign %s: %w", p, c.UUID, errHeld)
		}
	}
	return nil
}

// start is the engine's StartCampaign: read the campaign and its pools,
// check each pool, store the new status. pause, when not nil, is called
// after the campaign is read and before the pools are checked.
func start(ctx context.Context, tx store.Tx, id uuid.UUID, pause func()) error {
	c, err := tx.Campaign(ctx, id)
	if err != nil {
		return err
	}
	if pause != nil {
		pause()
	}
	for _, p := range c.PoolUUIDs {
		if err := checkFree(ctx, tx, p, c.UUID); err != nil {
			return err
		}
	}
	c.Status = campaign.InProcess
	return tx.UpdateCampaign(ctx, c)
}

// attach is the engine's AttachPools for one pool: read the campaign,
// the pool, check the pool if the campaign governs, attach.
func attach(ctx context.Context, tx store.Tx, id, p uuid.UUID) error {
	c, err := tx.Campaign(ctx, id)
	if err != nil {
		return err
	}
	if _, err := tx.Pool(ctx, p); err != nil {
		return err
	}
	if c.Status.Governs() {
		if err := checkFree(ctx, tx, p, c.UUID); err != nil {
			return err
		}
	}
	_, err = tx.AttachPool(ctx, id, p)
	return err
}

// governing returns the governing campaigns of each pool.
func governing(t *testing.T, st store.Store, pools ...uuid.UUID) map[uuid.UUID][]uuid.UUID {
	t.Helper()
	ctx := context.Background()
	out := map[uuid.UUID][]uuid.UUID{}
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		for _, p := range pools {
			cs, err := tx.PoolCampaigns(ctx, p)
			if err != nil {
				return err
			}
			for _, c := range cs {
				if c.Status.Governs() {
					out[p] = append(out[p], c.UUID)
				}
			}
		}
		return nil
	}))
	return out
}

type campaignFixture struct {
	a, b  *postgres.Store
	pools []uuid.UUID
	url   string
	bApp  string // the application_name of b's sessions
	// noDetector says the sessions of a and b never run the server's
	// deadlock detection (see newCampaignFixture).
	noDetector bool
}

// TestCampaigns runs each interleaving with each way of locking a pool.
func TestCampaigns(t *testing.T) {
	url := pgtest.URL(t)
	for _, l := range []postgres.Locking{postgres.AdvisoryLock, postgres.RowLock} {
		for name, fn := range map[string]func(*testing.T, func(*testing.T, int) *campaignFixture){
			"AttachWhileStarting":  testAttachWhileStarting,
			"StartBothSharingPool": testStartBothSharingAPool,
			"StartWhileAttaching":  testStartWhileAttaching,
			"LocksOutOfOrder":      testCampaignLocksOutOfOrder,
			"CreateBehindAPool":    testCreateCampaignBehindAPool,
			"DeleteWhilePoolGoes":  testDeleteCampaignWhilePoolGoes,
		} {
			t.Run(l.String()+"/"+name, func(t *testing.T) {
				t.Parallel()
				fn(t, func(t *testing.T, n int) *campaignFixture { return newCampaignFixture(t, url, l, n) })
			})
		}
	}
}

// newCampaignFixture opens two stores on one schema, with n pools, their
// sessions without the server's deadlock detector where the test's role
// allows it (see withoutDeadlockDetector).
func newCampaignFixture(t *testing.T, url string, l postgres.Locking, n int) *campaignFixture {
	ctx := context.Background()
	opts := postgres.Options{Locking: l}
	url, noDetector := withoutDeadlockDetector(t, url, &opts)
	a := pgtest.Open(t, url, opts)
	opts.Schema = a.Schema()
	bApp := a.Schema() + "_b"
	f := &campaignFixture{a: a, b: pgtest.OpenSchema(t, pgtest.WithParams(url, "application_name="+bApp), opts),
		url: url, bApp: bApp, noDetector: noDetector}
	for i := range n {
		p := newTestPool(fmt.Sprintf("pool %d", i))
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		f.pools = append(f.pools, p.UUID)
	}
	return f
}

// campaign stores a campaign in status s with these pools.
func (f *campaignFixture) campaign(t *testing.T, s campaign.Status, pools ...uuid.UUID) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: s, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, f.a.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertCampaign(ctx, c); err != nil {
			return err
		}
		for _, p := range pools {
			if _, err := tx.AttachPool(ctx, c.UUID, p); err != nil {
				return err
			}
		}
		return nil
	}))
	return c.UUID
}

// runPaused runs first on store a until it calls its pause, then second on
// store b, checks that second waits for a lock (first's), and lets first
// go on once it does. It returns both errors.
func (f *campaignFixture) runPaused(t *testing.T, first func(tx store.Tx, pause func()) error, second func(tx store.Tx) error) (error, error) {
	t.Helper()
	ctx := context.Background()
	paused, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	var errA, errB error
	var wg sync.WaitGroup
	wg.Go(func() {
		errA = f.a.Write(ctx, func(tx store.Tx) error {
			return first(tx, func() { once.Do(func() { close(paused); <-resume }) })
		})
	})
	<-paused
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		errB = f.b.Write(ctx, second)
	})
	if err := f.waitForLockWait(ctx, done); err != nil {
		t.Errorf("the second transaction did not wait for the first: %v (its error %v)", err, errB)
	}
	close(resume)
	wg.Wait()
	return errA, errB
}

// waitForLockWait returns once a session of b waits for a lock, or an
// error when b's transaction ends first (done) or 20 s pass. Waiting for
// the wait itself, not for a while: on a busy machine b may take longer
// than any fixed while to reach it, and first would go on too early.
func (f *campaignFixture) waitForLockWait(ctx context.Context, done <-chan struct{}) error {
	conn, err := pgx.Connect(ctx, f.url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting bool
		if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock')`, f.bApp).Scan(&waiting); err != nil {
			return err
		}
		if waiting {
			return nil
		}
		select {
		case <-done:
			return errors.New("it ended without waiting for a lock")
		default:
		}
		if time.Now().After(deadline) {
			return errors.New("it waited for no lock in 20 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// withoutDeadlockDetector returns url with the server's deadlock detector
// off for its sessions (deadlock_timeout an hour) and sets opts' lock wait
// to 10 s (LockTimeout), when the test's role may set deadlock_timeout (a
// superuser, or one granted SET on it, as in CI); otherwise it returns url
// and false. With the detector off, a deadlock between two stores is not
// broken by the server, which would abort one transaction with an error
// that Write retries unseen, but ends as an error of the Write
// (ErrLockTimeout): a test that must show that no deadlock happens then
// asserts it, where it could otherwise only time it.
func withoutDeadlockDetector(t *testing.T, url string, opts *postgres.Options) (string, bool) {
	t.Helper()
	if !canSet(t, url, "deadlock_timeout") {
		return url, false
	}
	opts.LockTimeout = 10 * time.Second
	return pgtest.WithParams(url, "deadlock_timeout=3600000"), true
}

// requireNoDeadlockFound tells, for sessions whose server runs its
// deadlock detector, from the time alone that no transaction since start
// waited in a deadlock: the detector breaks one (an error Write retries
// unseen) only after deadlock_timeout, 1 s by default.
func requireNoDeadlockFound(t *testing.T, start time.Time) {
	t.Helper()
	require.Less(t, time.Since(start), time.Second, "a deadlock was left to the server to find")
}

// canSet reports whether the test's role may set the server parameter
// name in its sessions.
func canSet(t *testing.T, url, name string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var ok bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT has_parameter_privilege($1, 'SET')
		OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`, name).Scan(&ok))
	return ok
}

// testAttachWhileStarting: one node starts a Draft campaign
// (reading its pools) while another attaches to it a pool that a third
// campaign governs. The attach waits for the start (the campaign's lock),
// then sees the campaign running and refuses the pool.
func testAttachWhileStarting(t *testing.T, fixture func(*testing.T, int) *campaignFixture) {
	ctx := context.Background()
	f := fixture(t, 2)
	p1, p2 := f.pools[0], f.pools[1]
	c1 := f.campaign(t, campaign.Draft, p1)
	c3 := f.campaign(t, campaign.InProcess, p2)

	errStart, errAttach := f.runPaused(t,
		func(tx store.Tx, pause func()) error { return start(ctx, tx, c1, pause) },
		func(tx store.Tx) error { return attach(ctx, tx, c1, p2) })
	if f.wentFirst(t) || errAttach != nil {
		require.NoError(t, errStart)
		require.ErrorIs(t, errAttach, errHeld)
		require.Equal(t, map[uuid.UUID][]uuid.UUID{p1: {c1}, p2: {c3}}, governing(t, f.a, p1, p2))
		return
	}
	// The attach went first: p2 joined c1, a Draft; the start then found
	// p2 governed by c3.
	require.NoError(t, errAttach)
	require.ErrorIs(t, errStart, errHeld)
	require.Equal(t, map[uuid.UUID][]uuid.UUID{p2: {c3}}, governing(t, f.a, p1, p2))
}

// wentFirst reports whether a's transaction, paused by runPaused while b
// waited for it, committed before b's: unless a ran again for a wait. A
// lock a took after another one, in a statement slower than
// lockWaitSlack (on a busy machine, a statement is that slow without
// waiting for anyone), sends a round again (see txn.waitedAfterLock),
// releasing its locks: b may then take them first, and the two run in the
// other order, as correctly. a's Waits tell which may have happened.
func (f *campaignFixture) wentFirst(t *testing.T) bool {
	t.Helper()
	if f.a.Stats().Waits == 0 {
		return true
	}
	t.Logf("a ran again for a lock wait (%+v): b may have gone first", f.a.Stats())
	return false
}

// testStartBothSharingAPool: two nodes start two campaigns that
// share a pool. The second's check of the pool waits for the first (the
// pool's lock), then sees the first campaign running.
func testStartBothSharingAPool(t *testing.T, fixture func(*testing.T, int) *campaignFixture) {
	ctx := context.Background()
	f := fixture(t, 1)
	p := f.pools[0]
	c1 := f.campaign(t, campaign.Draft, p)
	c2 := f.campaign(t, campaign.Draft, p)

	errA, errB := f.runPaused(t,
		func(tx store.Tx, pause func()) error {
			c, err := tx.Campaign(ctx, c1)
			if err != nil {
				return err
			}
			if err := checkFree(ctx, tx, p, c1); err != nil {
				return err
			}
			pause() // holding the pool's lock, before the status is stored
			c.Status = campaign.InProcess
			return tx.UpdateCampaign(ctx, c)
		},
		func(tx store.Tx) error { return start(ctx, tx, c2, nil) })
	if f.wentFirst(t) || errB != nil {
		require.NoError(t, errA)
		require.ErrorIs(t, errB, errHeld)
		require.Equal(t, map[uuid.UUID][]uuid.UUID{p: {c1}}, governing(t, f.a, p))
		return
	}
	require.ErrorIs(t, errA, errHeld)
	require.Equal(t, map[uuid.UUID][]uuid.UUID{p: {c2}}, governing(t, f.a, p))
}

// testStartWhileAttaching: one node attaches a pool to a
// running campaign while another starts a campaign that has the pool. The
// start's check of the pool waits for the attach, then sees it.
func testStartWhileAttaching(t *testing.T, fixture func(*testing.T, int) *campaignFixture) {
	ctx := context.Background()
	f := fixture(t, 1)
	p := f.pools[0]
	running := f.campaign(t, campaign.InProcess)
	draft := f.campaign(t, campaign.Draft, p)

	errAttach, errStart := f.runPaused(t,
		func(tx store.Tx, pause func()) error {
			if err := attach(ctx, tx, running, p); err != nil {
				return err
			}
			pause() // attached, holding the pool's lock
			return nil
		},
		func(tx store.Tx) error { return start(ctx, tx, draft, nil) })
	if f.wentFirst(t) || errStart != nil {
		require.NoError(t, errAttach)
		require.ErrorIs(t, errStart, errHeld)
		require.Equal(t, map[uuid.UUID][]uuid.UUID{p: {running}}, governing(t, f.a, p))
		return
	}
	require.ErrorIs(t, errAttach, errHeld)
	require.Equal(t, map[uuid.UUID][]uuid.UUID{p: {draft}}, governing(t, f.a, p))
}

// testCampaignLocksOutOfOrder: a transaction that holds a pool's lock and
// then needs a campaign's (below every pool's in the order of locks) held
// by another transaction, which waits for the pool, runs again taking both
// in order: no deadlock, no error, no wait for the server's deadlock
// detection.
func testCampaignLocksOutOfOrder(t *testing.T, fixture func(*testing.T, int) *campaignFixture) {
	ctx := context.Background()
	f := fixture(t, 1)
	p := f.pools[0]
	c := f.campaign(t, campaign.Draft)
	startAt := time.Now()
	errA, errB := f.runPaused(t,
		func(tx store.Tx, pause func()) error {
			if _, err := tx.Pool(ctx, p); err != nil {
				return err
			}
			pause() // b takes the campaign's lock, then waits for the pool's
			time.Sleep(50 * time.Millisecond)
			_, err := tx.Campaign(ctx, c) // held by b: tried, run again
			return err
		},
		func(tx store.Tx) error { return attach(ctx, tx, c, p) })
	// A deadlock, with the detector off (see newCampaignFixture), is an
	// error here.
	require.NoError(t, errA)
	require.NoError(t, errB)
	if !f.noDetector {
		requireNoDeadlockFound(t, startAt)
	}
	// a ran again once, for the campaign's lock it met out of order, and
	// its second run, which took both locks first, did not go round again.
	require.Equal(t, uint64(1), f.a.Stats().Retries, "a ran again once")
	require.Zero(t, f.a.Stats().Waits)
	// b waited for the pool while it held the campaign's lock (at least
	// a's 50 ms pause): it runs again for that wait alone (see
	// txn.waitedAfterLock), never for order.
	require.Equal(t, uint64(1), f.b.Stats().Waits)
	require.Equal(t, uint64(1), f.b.Stats().Retries)
}

// testCreateCampaignBehindAPool: a transaction creates a campaign and
// attaches to it a pool that another transaction holds. Holding the new
// campaign's lock, it waits for the pool's, so it runs again taking both
// first; the campaign it creates then has a new id, and the lock it takes
// first is by UUID, not by the id the first run saw: the attach finds the
// campaign.
func testCreateCampaignBehindAPool(t *testing.T, fixture func(*testing.T, int) *campaignFixture) {
	ctx := context.Background()
	f := fixture(t, 1)
	p := f.pools[0]
	id := uuid.New()
	now := time.Now().UTC()
	errA, errB := f.runPaused(t,
		func(tx store.Tx, pause func()) error {
			if _, err := tx.Pool(ctx, p); err != nil {
				return err
			}
			pause() // b takes the new campaign's lock, then waits for the pool's
			return nil
		},
		func(tx store.Tx) error {
			c := campaign.Campaign{UUID: id, Name: "created", Status: campaign.Draft, CreatedAt: now, UpdatedAt: now}
			if err := tx.InsertCampaign(ctx, c); err != nil {
				return err
			}
			_, err := tx.AttachPool(ctx, id, p)
			return err
		})
	require.NoError(t, errA)
	require.NoError(t, errB)
	require.NoError(t, f.a.Read(ctx, func(tx store.Tx) error {
		cs, err := tx.PoolCampaigns(ctx, p)
		require.Len(t, cs, 1)
		require.Equal(t, id, cs[0].UUID)
		return err
	}))
}

// TestDeleteRule_InUse: a rule that a campaign uses (another node gave it
// the rule after the engine's check) is not deleted: the foreign key
// refuses it, as campaign.ErrConflict.
func TestDeleteRule_InUse(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	now := time.Now().UTC()
	r := campaign.Rule{UUID: uuid.New(), Name: "rule", Type: campaign.Call, MaxCallsPerDay: 1, MaxTotalCalls: 1,
		CreatedAt: now, UpdatedAt: now}
	c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: campaign.Draft, RuleUUID: &r.UUID,
		CreatedAt: now, UpdatedAt: now}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertRule(ctx, r); err != nil {
			return err
		}
		return tx.InsertCampaign(ctx, c)
	}))
	err := st.Write(ctx, func(tx store.Tx) error { return tx.DeleteRule(ctx, r.UUID) })
	require.ErrorIs(t, err, campaign.ErrConflict)
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error { _, err := tx.Rule(ctx, r.UUID); return err }))
}

// testDeleteCampaignWhilePoolGoes: one node deletes a campaign while
// another deletes one of its pools, keeping the calls of the pool's items
// for the campaign (the engine's DeletePool: KeepCalls, then DeletePool).
// The deletion of the campaign locks its pools, so the pool's deletion
// waits, then finds the pool in no campaign and keeps nothing. Without
// the locks, the kept calls named the campaign being deleted, and the
// pool's deletion failed on the foreign key when the campaign's committed.
func testDeleteCampaignWhilePoolGoes(t *testing.T, fixture func(*testing.T, int) *campaignFixture) {
	ctx := context.Background()
	f := fixture(t, 1)
	p := f.pools[0]
	c := f.campaign(t, campaign.InProcess, p)
	it := pendingItems(1)[0]
	it.Status, it.Attempts = pool.StatusFailed, 2
	require.NoError(t, f.a.Write(ctx, func(tx store.Tx) error { _, err := tx.InsertItems(ctx, p, []pool.Item{it}); return err }))

	errDelete, errPool := f.runPaused(t,
		func(tx store.Tx, pause func()) error {
			if err := tx.DeleteCampaign(ctx, c); err != nil {
				return err
			}
			pause()
			return nil
		},
		func(tx store.Tx) error {
			if err := tx.KeepCalls(ctx, p); err != nil {
				return err
			}
			return tx.DeletePool(ctx, p)
		})
	require.NoError(t, errDelete)
	require.NoError(t, errPool)
	require.NoError(t, f.a.Read(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, p); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("pool after its deletion: %v", err)
		}
		_, err := tx.Campaign(ctx, c)
		if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("campaign after its deletion: %v", err)
		}
		return nil
	}))
}

// insertRuleAndPool stores a new rule and a new pool in st.
func insertRuleAndPool(t *testing.T, st *postgres.Store) (campaign.Rule, pool.Pool) {
	t.Helper()
	ctx := context.Background()
	p := newTestPool("pool")
	now := time.Now().UTC()
	r := campaign.Rule{UUID: uuid.New(), Name: "rule", Type: campaign.Call, MaxCallsPerDay: 1, MaxTotalCalls: 1,
		CreatedAt: now, UpdatedAt: now}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertRule(ctx, r); err != nil {
			return err
		}
		return tx.InsertPool(ctx, p)
	}))
	return r, p
}

// TestWrite_RuleLockAfterAPool: a rule's lock is in the key order, below
// every pool's (see the package doc). A transaction that holds a pool and
// wants the rule, against one that holds the rule (a start) and wants the
// pool, must not deadlock: the first only tries the rule's lock, and runs
// again taking it first. (A row lock outside the order, before this,
// deadlocked: the server found it after deadlock_timeout, and a lock
// timeout below that failed the start instead.)
func TestWrite_RuleLockAfterAPool(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	var opts postgres.Options
	url, noDetector := withoutDeadlockDetector(t, url, &opts)
	a := pgtest.Open(t, url, opts)
	opts.Schema = a.Schema()
	b := pgtest.OpenSchema(t, url, opts)
	r, p := insertRuleAndPool(t, a)

	aHoldsPool, bHoldsRule := make(chan struct{}), make(chan struct{})
	var onceA, onceB sync.Once
	start := time.Now()
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() {
		errA = a.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			onceA.Do(func() { close(aHoldsPool); <-bHoldsRule })
			return tx.LockRule(ctx, r.UUID)
		})
	})
	wg.Go(func() {
		<-aHoldsPool
		errB = b.Write(ctx, func(tx store.Tx) error {
			if err := tx.LockRule(ctx, r.UUID); err != nil {
				return err
			}
			onceB.Do(func() { close(bHoldsRule) })
			_, err := tx.Pool(ctx, p.UUID)
			return err
		})
	})
	wg.Wait()
	// A deadlock, with the detector off, is an error here.
	require.NoError(t, errA)
	require.NoError(t, errB)
	if !noDetector {
		requireNoDeadlockFound(t, start)
	}
	require.Equal(t, uint64(1), a.Stats().Retries, "a ran again once, the rule's lock first")
}

// TestWrite_RuleReadHoldsItsLockShared: in a write transaction, Rule holds
// the rule's lock shared, LockRule exclusive. Two readers of a rule do not
// wait for each other (the claims of a rule's pools run in parallel);
// LockRule waits for every reader; and a reader that holds a pool when an
// update of the rule holds the rule's lock runs again, the rule's lock
// first, and reads what the update committed: no decision under a rule's
// old values commits after its update (queue's UpdateRule, which takes no
// pool's lock for it).
func TestWrite_RuleReadHoldsItsLockShared(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	c := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	r, p := insertRuleAndPool(t, a)
	const patience = 10 * time.Second
	waitFor := func(ch <-chan error, what string) {
		t.Helper()
		select {
		case err := <-ch:
			require.NoError(t, err, what)
		case <-time.After(patience):
			t.Fatalf("%s: still waiting after %v", what, patience)
		}
	}

	// a reads the rule and holds it; b reads it meanwhile; c's LockRule
	// waits for a.
	aRead, aRelease := make(chan struct{}), make(chan struct{})
	aDone, bDone, cDone := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() {
		var once sync.Once
		aDone <- a.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Rule(ctx, r.UUID); err != nil {
				return err
			}
			once.Do(func() { close(aRead); <-aRelease })
			return nil
		})
	}()
	<-aRead
	go func() {
		bDone <- b.Write(ctx, func(tx store.Tx) error { _, err := tx.Rule(ctx, r.UUID); return err })
	}()
	waitFor(bDone, "a second reader, while a reader holds the rule")
	go func() { cDone <- c.Write(ctx, func(tx store.Tx) error { return tx.LockRule(ctx, r.UUID) }) }()
	select {
	case err := <-cDone:
		t.Fatalf("LockRule did not wait for a reader of the rule: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(aRelease)
	waitFor(aDone, "the reader")
	waitFor(cDone, "LockRule, once the reader is done")

	// c updates the rule, holding its lock; a holds the pool, then reads
	// the rule: it waits, and reads the update.
	cLocked, cRelease := make(chan struct{}), make(chan struct{})
	go func() {
		var once sync.Once
		cDone <- c.Write(ctx, func(tx store.Tx) error {
			if err := tx.LockRule(ctx, r.UUID); err != nil {
				return err
			}
			u := r
			u.MaxTotalCalls = 7
			if err := tx.UpdateRule(ctx, u); err != nil {
				return err
			}
			once.Do(func() { close(cLocked); <-cRelease })
			return nil
		})
	}()
	<-cLocked
	retries := a.Stats().Retries
	var read campaign.Rule
	go func() {
		aDone <- a.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			var err error
			read, err = tx.Rule(ctx, r.UUID)
			return err
		})
	}()
	select {
	case err := <-aDone:
		t.Fatalf("a read the rule while an update of it held its lock: %v, max_total_calls %d", err, read.MaxTotalCalls)
	case <-time.After(300 * time.Millisecond):
	}
	close(cRelease)
	waitFor(cDone, "the update")
	waitFor(aDone, "the reader that holds the pool")
	require.Equal(t, 7, read.MaxTotalCalls, "what the update committed")
	require.Equal(t, retries+1, a.Stats().Retries, "a ran again once, the rule's lock first")
}
