package queue_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// governReadStore counts the campaigns its write transactions read to
// learn what governs a pool: those PoolCampaigns returns (every campaign
// attached) and those PoolGovernors returns.
type governReadStore struct {
	store.Store
	attachedRead, governorsRead atomic.Int64
}

func (s *governReadStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(governReadTx{tx, s}) })
}

type governReadTx struct {
	store.Tx
	s *governReadStore
}

func (t governReadTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(in store.Tx) error { return fn(governReadTx{in, t.s}) })
}

func (t governReadTx) PoolCampaigns(ctx context.Context, id uuid.UUID) ([]campaign.Campaign, error) {
	cs, err := t.Tx.PoolCampaigns(ctx, id)
	t.s.attachedRead.Add(int64(len(cs)))
	return cs, err
}

func (t governReadTx) PoolGovernors(ctx context.Context, id uuid.UUID) ([]campaign.Campaign, bool, error) {
	cs, attached, err := t.Tx.PoolGovernors(ctx, id)
	t.s.governorsRead.Add(int64(len(cs)))
	return cs, attached, err
}

// TestEngine_GovernCostOfFinishedCampaigns: a claim, a failure, an expiry
// and a completion read what governs their pool, and that read does not
// grow with the campaigns done with the pool. Here a pool was dialled by
// 200 campaigns, each Completed (a pool a dialer runs a new campaign on
// every day), and a running one under a rule of 2 calls in all: each
// operation reads the one running campaign, none of the finished ones,
// and the rule still governs (its ceiling, not the pool's 4 attempts).
//
// govern read every campaign ever attached to the pool (PoolCampaigns),
// finished ones included: a claim and a completion took 1.0 ms with one
// attached campaign, 1.7 ms with 100, 10.6 ms with 1,000 (SQLite). The
// store now keeps which attachments govern (store.Tx.PoolGovernors).
func TestEngine_GovernCostOfFinishedCampaigns(t *testing.T) {
	oneGoroutine(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	gs := &governReadStore{Store: st}
	c := newClock()
	eng := openEngine(t, gs, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	b := &testBundle{ctx: ctx, eng: eng, st: st, clock: c}
	p := b.pool(t, pool.Parallel, 10, 3)
	const finished = 200
	for range finished {
		old := b.campaignOf(t, uuid.Nil, p.UUID)
		_, err := eng.StartCampaign(ctx, old.UUID)
		require.NoError(t, err)
		_, err = eng.CompleteCampaign(ctx, old.UUID)
		require.NoError(t, err)
	}
	r := b.rule(t, campaign.CreateRuleParams{MaxTotalCalls: pqPtr(2)})
	running := b.campaignOf(t, r.UUID, p.UUID)
	_, err = eng.StartCampaign(ctx, running.UUID)
	require.NoError(t, err)
	contacts := b.add(t, p.UUID, 3)

	ops := []struct {
		name string
		run  func()
	}{
		{"claim and fail", func() {
			l, err := eng.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)
			require.NoError(t, eng.Fail(ctx, l, queue.Failure{RetryAt: c.Now(), Note: "busy"}))
		}},
		{"claim and expiry", func() {
			_, err := eng.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)
			c.Advance(testLease + 1)
			_, err = eng.TryDequeue(ctx, p.UUID) // applies the expiry, claims another
			require.NoError(t, err)
		}},
		{"claim and complete", func() {
			l, err := eng.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)
			require.NoError(t, eng.Complete(ctx, l, "answered"))
		}},
	}
	for _, op := range ops {
		gs.attachedRead.Store(0)
		gs.governorsRead.Store(0)
		op.run()
		require.Zero(t, gs.attachedRead.Load(), "%s: read every campaign of the pool", op.name)
		require.NotZero(t, gs.governorsRead.Load(), "%s: read the running campaign", op.name)
	}
	// The rule's ceiling governed: the first contact, failed once and
	// expired once, has had its 2 calls.
	require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, contacts[0]).Status)
}
