package queue_test

// Edges of the engine's campaign and contact operations that the other
// tests let pass (each found by a change to the code that they did not
// notice: a hand-made mutant).

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_WatchEscalationsPastOneBatch: escalations recorded before
// the watch, more than one read's worth (100), are all delivered at once,
// in ID order, not the first hundred then the rest a PollInterval (here an
// hour) later.
func TestEngine_WatchEscalationsPastOneBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
	b := &testBundle{ctx: ctx, eng: eng, st: st, clock: c}

	const n = 101
	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{EscalationAfterFailedAttempts: new(1),
		StartTime: new("00:00"), EndTime: new("23:59")})
	b.add(t, p.UUID, n)
	for range n {
		l, err := b.eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(ctx, l, queue.Failure{Note: "no answer"}))
	}

	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan campaign.Escalation, n+1)
	done := make(chan error, 1)
	go func() {
		done <- b.eng.WatchEscalations(wctx, 0, func(e campaign.Escalation) error { seen <- e; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	var last int64
	for i := range n {
		select {
		case e := <-seen:
			require.Greater(t, e.ID, last, "in ID order, each once")
			last = e.ID
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d escalations delivered (PollInterval is an hour)", i, n)
		}
	}
	select {
	case e := <-seen:
		t.Fatalf("an escalation delivered again: %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
}

// TestEngine_CreateCampaignAsStored: what CreateCampaign returns is the
// campaign as Campaign reads it back, pool_uuids an empty list (not nil),
// on both stores.
func TestEngine_CreateCampaignAsStored(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		r := b.rule(t, campaign.CreateRuleParams{})
		c, err := b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: " Spring ", RuleUUID: &r.UUID, TimeZone: "Asia/Tokyo"})
		require.NoError(t, err)
		require.NotNil(t, c.PoolUUIDs)
		got, err := b.eng.Campaign(b.ctx, c.UUID)
		require.NoError(t, err)
		require.Equal(t, c, got)
		require.Equal(t, "Spring", got.Name)
		require.Equal(t, campaign.Draft, got.Status)
	})
}

// TestEngine_DequeueCampaignPausedTouchesNoPool: DequeueCampaign on a
// Paused campaign gets nothing "and touches none of its pools then": its
// looks, one each PollInterval (here 5 ms), run no write on them.
func TestEngine_DequeueCampaignPausedTouchesNoPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: 5 * time.Millisecond})
	b := &testBundle{ctx: ctx, eng: eng, st: st, clock: c}

	p := b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p.UUID, 3)
	cmp := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err = b.eng.StartCampaign(ctx, cmp.UUID)
	require.NoError(t, err)
	_, err = b.eng.PauseCampaign(ctx, cmp.UUID)
	require.NoError(t, err)

	before := b.eng.Stats()
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	l, err := b.eng.DequeueCampaign(dctx, cmp.UUID)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Nil(t, l)
	require.Equal(t, before, b.eng.Stats(), "a look at a Paused campaign wrote to its pools")
	require.Equal(t, 3, b.counts(t, p.UUID)[pool.StatusPending])
}

// TestEngine_AssignSameRuleChangesNothing: assigning a campaign the rule
// it has changes nothing (its updated_at stays, as an UpdateRule that
// changes nothing leaves the rule's); another rule moves it. Both stores.
func TestEngine_AssignSameRuleChangesNothing(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		r := b.rule(t, campaign.CreateRuleParams{})
		c := b.campaignOf(t, r.UUID)
		b.clock.Advance(time.Hour)
		got, err := b.eng.AssignRule(b.ctx, c.UUID, r.UUID)
		require.NoError(t, err)
		require.Equal(t, c.UpdatedAt, got.UpdatedAt)
		stored, err := b.eng.Campaign(b.ctx, c.UUID)
		require.NoError(t, err)
		require.Equal(t, c.UpdatedAt, stored.UpdatedAt)

		r2 := b.rule(t, campaign.CreateRuleParams{})
		got, err = b.eng.AssignRule(b.ctx, c.UUID, r2.UUID)
		require.NoError(t, err)
		require.Equal(t, r2.UUID, *got.RuleUUID)
		require.Equal(t, b.clock.Now(), got.UpdatedAt)
	})
}

// TestEngine_DequeueCampaignPoolDeletedMeanwhile: a pool of the campaign
// deleted between DequeueCampaign's read of the campaign and its claim is
// passed over (the others are tried), not an error.
func TestEngine_DequeueCampaignPoolDeletedMeanwhile(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p1 := b.pool(t, pool.FIFO, 1, 3)
	p2 := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p1.UUID, 1)
	want := b.add(t, p2.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, p1.UUID, p2.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	var once sync.Once
	queue.SetResubscribing(b.eng, func() {
		once.Do(func() { // the campaign is read, with p1 first: p1 goes now
			if err := b.eng.DeletePool(b.ctx, p1.UUID); err != nil {
				t.Error(err)
			}
		})
	})
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	l, err := b.eng.DequeueCampaign(ctx, c.UUID)
	require.NoError(t, err)
	require.Equal(t, p2.UUID, l.Item.PoolUUID)
	require.Equal(t, want[0], l.Item.ContactUUID)
}
