package queue_test

// Tests written in a mutation review of the engine's campaign contact
// rules (queue/rules.go, queue/govern.go, queue/campaigns.go): each pins
// a behaviour that no other test pinned, named in its comment.

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
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// changesStore counts, per write transaction, the item writes
// (UpdateItem, UpdateItems) it makes.
type changesStore struct {
	store.Store
	mu       sync.Mutex
	perWrite []int
}

func (s *changesStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	var n int
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		n = 0 // a retried transaction counts afresh
		return fn(changesTx{tx, &n})
	})
	s.mu.Lock()
	s.perWrite = append(s.perWrite, n)
	s.mu.Unlock()
	return err
}

func (s *changesStore) writes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.perWrite...)
}

type changesTx struct {
	store.Tx
	n *int
}

func (t changesTx) UpdateItem(ctx context.Context, from pool.Status, it pool.Item) error {
	*t.n++
	return t.Tx.UpdateItem(ctx, from, it)
}

func (t changesTx) UpdateItems(ctx context.Context, changes ...store.Change) error {
	*t.n += len(changes)
	return t.Tx.UpdateItems(ctx, changes...)
}

func (t changesTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(tx store.Tx) error { return fn(changesTx{tx, t.n}) })
}

// TestEngine_DeferralsBoundedPerTransaction: a claim postpones at most
// maxDeferrals (1000) items, plus a read's worth, in one transaction
// (rules.go, maxDeferrals: "moved out of the due set a thousand at a
// time, never in one long transaction"); TestEngine_SleepingZoneDeferrals
// checks only the outcome, which one transaction of 2,500 writes gives
// too. Kills: admission.decide not counting its deferrals.
func TestEngine_DeferralsBoundedPerTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { base.Close() })
	st := &changesStore{Store: base}
	c := newClock() // 09:00 UTC: 04:00 in New York
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	b := &testBundle{ctx: ctx, eng: eng, st: base, clock: c}
	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{StartTime: new("09:00"), EndTime: new("17:00")})
	items := make([]pool.NewItem, 2500)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{TimeZone: "America/New_York"}}
	}
	_, err = b.eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	awake := b.addIn(t, p.UUID, "Europe/Paris")

	before := len(st.writes())
	l, err := b.eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, awake, l.ContactUUID)
	require.Equal(t, 2500, b.counts(t, p.UUID)[pool.StatusScheduled])
	claims := st.writes()[before:]
	total, most := 0, 0
	for _, n := range claims {
		total += n
		most = max(most, n)
	}
	require.Equal(t, 2501, total, "2,500 postponed and one dispatched, over the claim's transactions %v", claims)
	require.LessOrEqual(t, most, 1000+64, "one claim transaction wrote %d items (transactions %v)", most, claims)
	require.GreaterOrEqual(t, len(claims), 3)
}

// TestEngine_FailureKeepsAnOptedOutContactWithoutRemoval: a rule with
// remove_on_opt_out false retries the failed call of a contact that opted
// out meanwhile (governFailure: "an item its contact's opt-out removes
// (remove_on_opt_out) is Skipped instead of retried"; the opt-out of a
// rule without it removes nothing). Kills: governFailure reading the
// opt-out list whatever the rule says.
func TestEngine_FailureKeepsAnOptedOutContactWithoutRemoval(t *testing.T) {
	t.Parallel()
	b := setup(t)
	keep, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{
		RemoveOnOptOut: new(false), MaxTotalCalls: new(3), MaxCallsPerDay: new(3),
		RetryIntervalMinutes: new(5), StartTime: new("00:00"), EndTime: new("23:59"),
	})
	c := b.addIn(t, keep.UUID, "")
	l, err := b.eng.TryDequeue(b.ctx, keep.UUID)
	require.NoError(t, err)
	n, err := b.eng.OptOut(b.ctx, c)
	require.NoError(t, err)
	require.Equal(t, 0, n, "a rule without remove_on_opt_out removes nothing")
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	it := b.item(t, keep.UUID, c)
	require.Equal(t, pool.StatusRetrying, it.Status, "retried: its rule keeps opted-out contacts")
	require.Equal(t, 1, it.RetryCount)
	require.Equal(t, b.clock.Now().Add(5*time.Minute), *it.NextRetryAt)
}

// TestEngine_UnknownContactZoneFallsBackToTheCampaigns: an item whose
// zone this binary's zone database does not know (added by a build with a
// newer one: Add refuses it, so it is written to the store directly) is
// called in the campaign's default zone, not in UTC (governed.zone: "A
// zone name this binary's zone database does not know ... counts as
// absent"; DESIGN.md: "the campaign's default zone, then UTC, when
// missing"). Kills: zone falling back to UTC at a zone it cannot load.
func TestEngine_UnknownContactZoneFallsBackToTheCampaigns(t *testing.T) {
	t.Parallel()
	b := setup(t) // 2026-01-02 09:00 UTC: 14:30 in Kolkata
	p, _ := b.governed(t, pool.FIFO, "Asia/Kolkata", campaign.CreateRuleParams{
		StartTime: new("13:00"), EndTime: new("17:00"),
	})
	c := uuid.New()
	it := pool.NewItem{ContactUUID: c}.Item(p.UUID, b.clock.Now())
	it.TimeZone = "Mars/Olympus_Mons"
	require.NoError(t, b.st.Write(b.ctx, func(tx store.Tx) error {
		n, err := tx.InsertItems(b.ctx, p.UUID, []pool.Item{it})
		if err == nil && n != 1 {
			t.Errorf("inserted %d items", n)
		}
		return err
	}))
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err, "14:30 in Kolkata, the campaign's zone, is inside 13:00-17:00 (09:00 UTC is not)")
	require.Equal(t, c, l.ContactUUID)
}

// TestEngine_ZoneChangeAppliesLeasesEndedBefore: a new default zone of a
// running campaign applies its pools' ended leases first, each a failed
// attempt under the old zone (UpdateCampaign: "A new zone of a campaign In
// Process or Paused takes its pools, as a rule's update does"; lockPools:
// "a lease that ended ... is a failed attempt under what governed its
// pool when it ended"; DESIGN.md: updates are not retroactive). Kills:
// UpdateCampaign not taking (lockPools) the pools at a new zone.
func TestEngine_ZoneChangeAppliesLeasesEndedBefore(t *testing.T) {
	t.Parallel()
	b := setup(t) // 2026-01-02 09:00 UTC: 14:30 in Kolkata
	r := b.rule(t, campaign.CreateRuleParams{
		MaxTotalCalls: new(5), MaxCallsPerDay: new(5), RetryIntervalMinutes: new(180),
		StartTime: new("09:00"), EndTime: new("17:00"),
	})
	p := b.pool(t, pool.FIFO, 1, 3)
	c := b.startedCampaignIn(t, "Asia/Kolkata", r.UUID, p.UUID)
	contact := b.addIn(t, p.UUID, "") // the campaign's zone
	_, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	b.clock.Advance(testLease + time.Second) // the call's lease ended: its retry, 3 h on, is 17:31 in Kolkata

	_, err = b.eng.UpdateCampaign(b.ctx, c.UUID, campaign.UpdateParams{TimeZone: new("UTC")})
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID) // applies the expiry now if the zone change did not
	require.ErrorIs(t, err, queue.ErrEmpty)
	it := b.item(t, p.UUID, contact)
	require.Equal(t, pool.StatusScheduled, it.Status, "judged in Kolkata's window, where it ended")
	require.Equal(t, at(t, "Asia/Kolkata", "2026-01-03 09:00:00"), *it.NextRetryAt)
}
