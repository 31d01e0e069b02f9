package queue_test

// Review (branch r-session): the rule's lock (store.Tx.LockRule) against a
// group-commit batch that holds a pool's lock, on two PostgreSQL nodes.

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

// ruleLockStore runs onRule once after a write transaction reads a rule,
// and beforeLock once before one takes a rule's lock.
type ruleLockStore struct {
	store.Store
	mu                 sync.Mutex
	onRule, beforeLock func()
}

func (s *ruleLockStore) take(f *func()) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := *f
	*f = nil
	return h
}

func (s *ruleLockStore) set(f *func(), h func()) {
	s.mu.Lock()
	*f = h
	s.mu.Unlock()
}

func (s *ruleLockStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(ruleLockTx{tx, s}) })
}

type ruleLockTx struct {
	store.Tx
	s *ruleLockStore
}

func (t ruleLockTx) Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error) {
	r, err := t.Tx.Rule(ctx, id)
	if h := t.s.take(&t.s.onRule); h != nil {
		h()
	}
	return r, err
}

func (t ruleLockTx) LockRule(ctx context.Context, id uuid.UUID) error {
	if h := t.s.take(&t.s.beforeLock); h != nil {
		h()
	}
	return t.Tx.LockRule(ctx, id)
}

// TestPostgres_StartRacingABatchThatUpdatesItsRule: node a's group-commit
// batch holds pool p's lock (an Add) and then wants rule r's lock (an
// UpdateRule of r); node b starts a campaign of r with pool p: it takes
// r's lock and waits for p's. Pools' locks are taken in order so that
// nodes never deadlock; the rule's lock is outside that order, and these
// two do. The package doc says the server detects it after
// deadlock_timeout (1 s) and the transaction runs again. With a
// LockTimeout below deadlock_timeout (0.5 s, as the store's own fault
// tests use) the wait for p's lock times out first: the start fails with
// ErrLockTimeout, though a's batch was live and would have committed in
// milliseconds. (With the default LockTimeout it passes, the start and
// every write of node a held up about 1 s by the deadlock.)
func TestPostgres_StartRacingABatchThatUpdatesItsRule(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	opts := postgres.Options{LockTimeout: 500 * time.Millisecond}
	firstSt := pgtest.Open(t, url, opts)
	first := &ruleLockStore{Store: firstSt}
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
	first.set(&first.onRule, func() { close(busy); <-release })
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
	first.set(&first.beforeLock, func() { close(atLock); <-resumeA })
	close(release)
	<-atLock // the batch holds p's lock (the Add ran), and is about to take r's

	// b: the start takes c's lock and r's, then waits for p's.
	started := make(chan error, 1)
	go func() { _, err := b.StartCampaign(ctx, c.UUID); started <- err }()
	time.Sleep(200 * time.Millisecond)
	close(resumeA) // a waits for r's lock: a deadlock

	for range 3 {
		require.NoError(t, <-errs, "node a's writes")
	}
	startErr := <-started
	_, addErr := b.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, startErr, "StartCampaign on node b, racing a live batch of node a that updates its rule (then an Add to p on node b: %v)", addErr)
	require.NoError(t, addErr, "an Add to p on node b, after")
}
