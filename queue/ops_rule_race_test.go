package queue_test

// Rule updates racing on two PostgreSQL nodes (review branch r-ops).

import (
	"context"
	"sync"
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

// pausingStore runs hook, when set, in each write transaction right after
// the transaction has read a rule: a node whose transaction is slow there
// (scheduling, a network round trip), made deterministic.
type pausingStore struct {
	store.Store
	mu        sync.Mutex
	hook      func()
	campaigns func() // the same, after a listing of campaigns (or of a rule's pools)
	lock      func() // the same, before a rule's lock is taken
	governors func() // the same, after a read of what governs a pool
}

func (s *pausingStore) setLockHook(f func()) {
	s.mu.Lock()
	s.lock = f
	s.mu.Unlock()
}

// fire runs the hook *h, if any, once: it clears *h first.
func (s *pausingStore) fire(h *func()) {
	s.mu.Lock()
	hook := *h
	*h = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
}

func (t pausingTx) LockRule(ctx context.Context, id uuid.UUID) error {
	t.s.fire(&t.s.lock)
	return t.Tx.LockRule(ctx, id)
}

func (s *pausingStore) setHook(f func()) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

func (s *pausingStore) setCampaignsHook(f func()) {
	s.mu.Lock()
	s.campaigns = f
	s.mu.Unlock()
}

func (s *pausingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(pausingTx{tx, s}) })
}

type pausingTx struct {
	store.Tx
	s *pausingStore
}

func (t pausingTx) Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error) {
	r, err := t.Tx.Rule(ctx, id)
	t.s.fire(&t.s.hook)
	return r, err
}

func (t pausingTx) Campaigns(ctx context.Context, q campaign.Query) ([]campaign.Campaign, int, error) {
	cs, n, err := t.Tx.Campaigns(ctx, q)
	t.s.fire(&t.s.campaigns)
	return cs, n, err
}

// RulePools is UpdateRule's listing of its rule's campaigns (their pools
// with a lease ended): the campaigns hook runs after it too.
func (t pausingTx) RulePools(ctx context.Context, rule uuid.UUID, endedBy time.Time) ([]uuid.UUID, error) {
	ps, err := t.Tx.RulePools(ctx, rule, endedBy)
	t.s.fire(&t.s.campaigns)
	return ps, err
}

func (t pausingTx) PoolGovernors(ctx context.Context, p uuid.UUID) ([]campaign.Campaign, bool, error) {
	cs, attached, err := t.Tx.PoolGovernors(ctx, p)
	t.s.fire(&t.s.governors)
	return cs, attached, err
}

// TestPostgres_ConcurrentRuleUpdatesKeepEachField: two nodes update
// different fields of one rule at once. UpdateRule is partial ("only the
// fields given change"), so both changes must stand, whatever the order
// of the commits. Node b reads the rule, then node a's update commits
// before b writes: b's write must not put back the field a changed.
func TestPostgres_ConcurrentRuleUpdatesKeepEachField(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	first := pgtest.Open(t, url, postgres.Options{})
	second := &pausingStore{Store: pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema()})}
	a := openEngine(t, first, queue.Options{})
	b := openEngine(t, second, queue.Options{})
	ctx := context.Background()

	r, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "two editors", MaxCallsPerDay: pqPtr(3), MaxTotalCalls: pqPtr(10)})
	require.NoError(t, err)

	read, resume := make(chan struct{}), make(chan struct{})
	second.setHook(func() { close(read); <-resume })
	done := make(chan error, 1)
	go func() {
		_, err := b.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(7)})
		done <- err
	}()
	select { // b has read the rule, and has not written it yet
	case <-read:
	case err := <-done:
		t.Fatalf("b's update returned before it read the rule: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("b's update did not read the rule")
	}
	aDone := make(chan error, 1)
	go func() {
		_, err := a.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: pqPtr(5)})
		aDone <- err
	}()
	aFirst := false
	select {
	case err := <-aDone:
		require.NoError(t, err, "a's update")
		aFirst = true
	case <-time.After(time.Second):
		// a waits for b: the rule is locked by b's read. Fine too.
	}
	close(resume)
	require.NoError(t, <-done, "b's update")
	if !aFirst {
		require.NoError(t, <-aDone, "a's update")
	}

	got, err := a.Rule(ctx, r.UUID)
	require.NoError(t, err)
	require.Equal(t, 7, got.MaxTotalCalls, "max_total_calls, set by b")
	require.Equal(t, 5, got.MaxCallsPerDay, "max_calls_per_day, set by a: lost when b wrote the rule as it read it before a's update")
}

// TestPostgres_UpdateRuleRacingAStart: UpdateRule promises that "no claim
// under the old values commits after it returns" on a store several nodes
// share; it locks the pools of the campaigns it reads as governing. A
// campaign that starts after UpdateRule read it as a Draft is not among
// them: a claim of its pool on node a reads the old rule, UpdateRule on
// node b commits and returns without waiting for that claim, and the
// claim then commits a call the new rule forbids (outside its new window).
func TestPostgres_UpdateRuleRacingAStart(t *testing.T) {
	updateRuleRacing(t, "start")
}

// TestPostgres_UpdateRuleRacingAnAssignment: as
// TestPostgres_UpdateRuleRacingAStart, for a running campaign assigned the
// rule (AssignRule) after UpdateRule listed the rule's campaigns.
func TestPostgres_UpdateRuleRacingAnAssignment(t *testing.T) {
	updateRuleRacing(t, "assign")
}

// TestPostgres_UpdateRuleRacingAnAttach: as
// TestPostgres_UpdateRuleRacingAStart, for a pool attached (AttachPools)
// to a campaign running under the rule after UpdateRule listed the rule's
// campaigns and their pools (r-session: AttachPools did not take the
// rule's lock, and the new pool was not among those UpdateRule locked).
func TestPostgres_UpdateRuleRacingAnAttach(t *testing.T) {
	updateRuleRacing(t, "attach")
}

// TestPostgres_UpdateRuleRacingAResume: as
// TestPostgres_UpdateRuleRacingAStart, for a Paused campaign of the rule
// resumed after UpdateRule listed the rule's In Process campaigns and
// before it lists the Paused ones: it is in neither listing unless the
// resume waits for the rule's lock, as a start does.
func TestPostgres_UpdateRuleRacingAResume(t *testing.T) {
	updateRuleRacing(t, "resume")
}

// updateRuleRacing makes a campaign govern a pool under rule r, on node a,
// while node b's UpdateRule(r) waits after listing r's campaigns: how is
// "start" (the campaign starts), "assign" (AssignRule to the campaign,
// running under another rule), "attach" (the pool attached to the
// campaign, running under r) or "resume" (the campaign, Paused, resumes).
func updateRuleRacing(t *testing.T, how string) {
	_, first, second, a, b, r := ruleRaceNodes(t)
	ctx := context.Background()
	ruled := &r.UUID
	if how == "assign" { // another rule first; r is assigned during the update
		other, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "other", StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
		require.NoError(t, err)
		ruled = &other.UUID
	}
	c, err := a.CreateCampaign(ctx, campaign.CreateParams{Name: "starting", RuleUUID: ruled, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "pool", Description: "d"})
	require.NoError(t, err)
	_, err = a.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	govern := func() error { _, err := a.StartCampaign(ctx, c.UUID); return err }
	if how == "attach" { // the campaign runs with another pool; p is attached during the update
		before, err := a.CreatePool(ctx, pool.CreateParams{Name: "attached before", Description: "d"})
		require.NoError(t, err)
		_, err = a.AttachPools(ctx, c.UUID, before.UUID)
		require.NoError(t, err)
		govern = func() error { _, err := a.AttachPools(ctx, c.UUID, p.UUID); return err }
	} else {
		_, err = a.AttachPools(ctx, c.UUID, p.UUID)
		require.NoError(t, err)
	}
	if how == "assign" {
		govern = func() error { _, err := a.AssignRule(ctx, c.UUID, r.UUID); return err }
	}
	if how != "start" {
		_, err = a.StartCampaign(ctx, c.UUID)
		require.NoError(t, err)
	}
	if how == "resume" { // paused before the update, resumed during it
		_, err = a.PauseCampaign(ctx, c.UUID)
		require.NoError(t, err)
		govern = func() error { _, err := a.ResumeCampaign(ctx, c.UUID); return err }
	}

	// b: UpdateRule reads the rule and the campaigns it governs (none
	// governing p: a Draft, or under another rule, or without p), then
	// waits.
	resumeB, updated := updateRuleListed(t, b, second, r.UUID)
	// a: the campaign comes to govern p under r (how), and a claim of p
	// reads the rule.
	started := make(chan error, 1)
	go func() { started <- govern() }()
	select {
	case err := <-started:
		require.NoError(t, err, how)
	case <-time.After(time.Second):
		// The start waits for the update (the rule's lock): then it
		// starts under the new rule, and nothing is due in its window.
		resumeB.open()
		require.NoError(t, <-updated, "UpdateRule")
		require.NoError(t, <-started, how)
		_, err := a.TryDequeue(ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty, "a claim after the update, outside its window")
		return
	}
	requireUpdateWaitsForClaim(t, a, first, p.UUID, resumeB, updated, "")
}

// gate is where a hook waits until the test opens it, at the latest when
// the test ends: a test that fails must not leave a hook waiting, which
// its engine's Close would wait for.
type gate struct {
	ch   chan struct{}
	once sync.Once
}

func newGate(t *testing.T) *gate {
	g := &gate{ch: make(chan struct{})}
	t.Cleanup(g.open) // before the engines' Close, registered earlier
	return g
}

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }
func (g *gate) wait() { <-g.ch }

// ruleRaceNodes runs t in parallel on two nodes, a and b, each over a
// pausingStore (first, second) of one PostgreSQL schema (firstSt is
// first's store), with rule r, all day long (00:00-23:59): the tests put
// their campaigns in noonZone, where the races' move of r's window to
// 23:58-23:59 closes it and 00:00-23:59 keeps it open, whatever the hour.
func ruleRaceNodes(t *testing.T) (firstSt *postgres.Store, first, second *pausingStore, a, b *queue.Engine, r campaign.Rule) {
	t.Helper()
	url := pgtest.URL(t)
	t.Parallel()
	firstSt = pgtest.Open(t, url, postgres.Options{})
	first = &pausingStore{Store: firstSt}
	second = &pausingStore{Store: pgtest.OpenSchema(t, url, postgres.Options{Schema: firstSt.Schema()})}
	a = openEngine(t, first, queue.Options{})
	b = openEngine(t, second, queue.Options{})
	r, err := a.CreateRule(context.Background(), campaign.CreateRuleParams{Name: "all day", StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
	require.NoError(t, err)
	return firstSt, first, second, a, b, r
}

// updateRuleListed starts node b's UpdateRule of rule to the window
// 23:58-23:59 (now is outside it) and returns once the update has read
// the rule's campaigns (their pools), where it waits until resume is
// opened; updated gets its error.
func updateRuleListed(t *testing.T, b *queue.Engine, second *pausingStore, rule uuid.UUID) (resume *gate, updated chan error) {
	t.Helper()
	listed := make(chan struct{})
	resume = newGate(t)
	second.setCampaignsHook(func() { close(listed); resume.wait() })
	updated = make(chan error, 1)
	go func() {
		_, err := b.UpdateRule(context.Background(), rule, campaign.UpdateRuleParams{StartTime: pqPtr("23:58")})
		updated <- err
	}()
	select {
	case <-listed:
	case err := <-updated:
		t.Fatalf("UpdateRule returned before it listed the rule's campaigns: %v", err)
	}
	return resume, updated
}

// requireUpdateWaitsForClaim: node a claims from pool p and waits right
// after the claim read the rule (the old one); node b's update, waiting
// as updateRuleListed left it, then goes on: it must not return while
// that claim is under way (it would wait for p's lock), or the claim
// commits a call the new window forbids. why says what let it through.
func requireUpdateWaitsForClaim(t *testing.T, a *queue.Engine, first *pausingStore, p uuid.UUID,
	resumeB *gate, updated chan error, why string) {
	t.Helper()
	ruleRead, resumeA := make(chan struct{}), newGate(t)
	first.setHook(func() { close(ruleRead); resumeA.wait() })
	claimed := make(chan error, 1)
	var lease *queue.Lease
	go func() {
		var err error
		lease, err = a.TryDequeue(context.Background(), p)
		claimed <- err
	}()
	<-ruleRead
	resumeB.open()
	var returned bool
	select {
	case err := <-updated:
		require.NoError(t, err, "UpdateRule")
		returned = true
	case <-time.After(500 * time.Millisecond):
	}
	resumeA.open()
	claimErr := <-claimed
	if !returned {
		require.NoError(t, <-updated, "UpdateRule")
	}
	if returned && claimErr == nil {
		t.Fatalf("UpdateRule returned while a claim under the old rule was under way%s; the claim then committed: contact %s dispatched at %s, outside the new window 23:58-23:59",
			why, lease.ContactUUID, time.Now().UTC().Format("15:04"))
	}
}

// TestPostgres_StartRacingABatchThatUpdatesItsRule: node a's group-commit
// batch holds pool p's lock (an Add) and then wants rule r's lock (an
// UpdateRule of r); node b starts a campaign of r with pool p: it takes
// r's lock and waits for p's. Locks are taken in order so that nodes
// never deadlock: the rule's lock, below every pool's, is only tried by
// a's batch, which runs again taking it first. (r-session: the rule's lock
// was its row's, outside the order; these two deadlocked, and with a
// LockTimeout below deadlock_timeout, 0.5 s here, the start failed with
// ErrLockTimeout.)
func TestPostgres_StartRacingABatchThatUpdatesItsRule(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	opts := postgres.Options{LockTimeout: 500 * time.Millisecond}
	firstSt := pgtest.Open(t, url, opts)
	first := &pausingStore{Store: firstSt}
	o2 := opts
	o2.Schema = firstSt.Schema()
	second := pgtest.OpenSchema(t, url, o2)
	a := openEngine(t, first, queue.Options{})
	b := openEngine(t, second, queue.Options{})
	ctx := context.Background()

	r, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule r"})
	require.NoError(t, err)
	z, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule z"})
	require.NoError(t, err)
	c, err := a.CreateCampaign(ctx, campaign.CreateParams{Name: "starting", RuleUUID: &r.UUID, TimeZone: "UTC"})
	require.NoError(t, err)
	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "pool p", Description: "d"})
	require.NoError(t, err)
	_, err = a.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)

	// a: a transaction under way (an UpdateRule of z, held after its read)
	// keeps the committer busy, so that an Add to p and an UpdateRule of r
	// wait together and run as one batch, in that order.
	busy, release := make(chan struct{}), make(chan struct{})
	first.setHook(func() { close(busy); <-release })
	errs := make(chan error, 3)
	go func() {
		_, err := a.UpdateRule(ctx, z.UUID, campaign.UpdateRuleParams{Name: pqPtr("rule z2")})
		errs <- err
	}()
	<-busy
	go func() { _, err := a.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); errs <- err }()
	time.Sleep(100 * time.Millisecond)
	go func() {
		_, err := a.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{Name: pqPtr("rule r2")})
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond)
	atLock, resumeA := make(chan struct{}), make(chan struct{})
	first.setLockHook(func() { close(atLock); <-resumeA })
	close(release)
	<-atLock // the batch holds p's lock (the Add ran), and is about to take r's

	// b: the start takes c's lock and r's, then waits for p's.
	started := make(chan error, 1)
	go func() { _, err := b.StartCampaign(ctx, c.UUID); started <- err }()
	time.Sleep(200 * time.Millisecond)
	close(resumeA) // a only tries r's lock, and runs again taking it first

	for range 3 {
		require.NoError(t, <-errs, "node a's writes")
	}
	startErr := <-started
	_, addErr := b.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, startErr, "StartCampaign on node b, racing a live batch of node a that updates its rule (then an Add to p on node b: %v)", addErr)
	require.NoError(t, addErr, "an Add to p on node b, after")
}
