package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// campaignListStore counts the campaigns its write transactions list
// (Tx.Campaigns) and the pages they ask for, and the pools of rules they
// read (Tx.RulePools).
type campaignListStore struct {
	store.Store
	listed, pages, rulePools atomic.Int64
}

func (s *campaignListStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(campaignListTx{tx, s}) })
}

type campaignListTx struct {
	store.Tx
	s *campaignListStore
}

func (t campaignListTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(in store.Tx) error { return fn(campaignListTx{in, t.s}) })
}

func (t campaignListTx) Campaigns(ctx context.Context, q campaign.Query) ([]campaign.Campaign, int, error) {
	cs, n, err := t.Tx.Campaigns(ctx, q)
	t.s.listed.Add(int64(len(cs)))
	t.s.pages.Add(1)
	return cs, n, err
}

func (t campaignListTx) RulePools(ctx context.Context, rule uuid.UUID, endedBy time.Time) ([]uuid.UUID, error) {
	ps, err := t.Tx.RulePools(ctx, rule, endedBy)
	t.s.rulePools.Add(int64(len(ps)))
	return ps, err
}

// TestEngine_UpdateRuleCostOfIdleCampaigns: UpdateRule applies the ended
// leases of the pools of the campaigns its rule governs (In Process or
// Paused), so its work grows with those, not with every campaign that
// ever used the rule. Here a rule serves 1,000 Draft campaigns (or
// finished ones: a standard rule that every day's campaign takes) and one
// running campaign: the update reads the one pool of the running campaign
// (it holds a lease that ended), and lists no campaign; another, whose
// leases have not ended, reads none.
//
// lockRulePools paged through every campaign of the rule, whatever its
// status, 100 a page, each page a count and a sorted query at a growing
// OFFSET (SQLite sorted the rule's campaigns in a temporary B-tree for
// each page), and read each one's pools: quadratic in the rule's
// campaigns, in one write transaction (SQLite's one writer, the rule's
// lock on PostgreSQL). Timed on a file store: 26 ms with 1,000 campaigns,
// 334 ms with 4,000. It now reads the governing campaigns' pools in one
// statement (store.Tx.RulePools).
func TestEngine_UpdateRuleCostOfIdleCampaigns(t *testing.T) {
	oneGoroutine(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	cs := &campaignListStore{Store: st}
	c := newClock()
	eng := openEngine(t, cs, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	b := &testBundle{ctx: ctx, eng: eng, st: st, clock: c}
	r := b.rule(t, campaign.CreateRuleParams{})
	const idle = 1000
	for range idle {
		b.campaignOf(t, r.UUID)
	}
	p := b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p.UUID, 2)
	running := b.campaignOf(t, r.UUID, p.UUID)
	_, err = eng.StartCampaign(ctx, running.UUID)
	require.NoError(t, err)
	_, err = queue.TryDequeueCampaign(ctx, eng, running.UUID)
	require.NoError(t, err)
	c.Advance(testLease + 1)

	cs.listed.Store(0)
	cs.pages.Store(0)
	_, err = eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: pqPtr(5)})
	require.NoError(t, err)
	listed, pages := cs.listed.Load(), cs.pages.Load()
	require.Zero(t, pages,
		"an update of a rule of %d idle campaigns and one running listed %d campaigns in %d pages", idle, listed, pages)
	require.Equal(t, int64(1), cs.rulePools.Load(), "the pool of the one running campaign, with a lease ended")

	_, err = queue.TryDequeueCampaign(ctx, eng, running.UUID) // a lease that has not ended
	require.NoError(t, err)
	cs.rulePools.Store(0)
	_, err = eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: pqPtr(6)})
	require.NoError(t, err)
	require.Zero(t, cs.rulePools.Load(), "no pool holds a lease that ended")
}
