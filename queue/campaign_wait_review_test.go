package queue_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// The tests of this file cover what DequeueCampaign's waiting and turns
// promise and no other test checked: that its subscriptions follow its
// campaign's pools as they change, and go with it; that one pass tries
// every pool; that it wakes at its one pool's retry time; that the turns
// move past the pools a pass skipped and survive a pass that found
// nothing. Each waits with an hour's poll, so a lost wake-up shows as a
// timeout, never as a hang.

// campaignOrder returns campaign id's pools in its turn order (as
// DequeueCampaign reads them).
func (b *testBundle) campaignOrder(t *testing.T, id uuid.UUID) []uuid.UUID {
	t.Helper()
	c, err := b.eng.Campaign(b.ctx, id)
	require.NoError(t, err)
	return c.PoolUUIDs
}

// campaignResult is what a DequeueCampaign run in a goroutine returned.
type campaignResult struct {
	l   *queue.Lease
	err error
}

// dequeueCampaignAsync runs DequeueCampaign in a goroutine, bounded by d.
func (b *testBundle) dequeueCampaignAsync(id uuid.UUID, d time.Duration) <-chan campaignResult {
	got := make(chan campaignResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(b.ctx, d)
		defer cancel()
		l, err := b.eng.DequeueCampaign(ctx, id)
		got <- campaignResult{l, err}
	}()
	return got
}

// claimedWithin waits up to d for a DequeueCampaign's result and returns
// its lease.
func claimedWithin(t *testing.T, got <-chan campaignResult, d time.Duration, what string) *queue.Lease {
	t.Helper()
	select {
	case r := <-got:
		require.NoError(t, r.err, what)
		require.NotNil(t, r.l, what)
		return r.l
	case <-time.After(d):
		t.Fatalf("%s: DequeueCampaign not woken within %v (PollInterval is an hour)", what, d)
		return nil
	}
}

// claimsTheNextAdd: the waiter of got, its pass over, sleeps; an Add to
// pool p wakes it, and it claims the item added.
func (b *testBundle) claimsTheNextAdd(t *testing.T, got <-chan campaignResult, p uuid.UUID, what string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // its pass ends; it sleeps
	want := b.add(t, p, 1)
	l := claimedWithin(t, got, 5*time.Second, what)
	require.Equal(t, want[0], l.ContactUUID)
}

// TestEngine_DequeueCampaignFollowsItsChangingPools: a DequeueCampaign
// blocked on a running campaign subscribes to a pool attached meanwhile,
// and stays subscribed to the pools it had (its new subscription must not
// be dropped with the old one): an Add to either pool afterwards wakes it
// at once. Only the attach itself was tested (its item claimed in the
// pass the attach wakes); a waiter that never read the campaign's pools
// again, or subscribed to its first pool only, slept until the poll.
func TestEngine_DequeueCampaignFollowsItsChangingPools(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	a := b.pool(t, pool.Parallel, 10, 3)
	c := b.campaignOf(t, uuid.Nil, a.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)

	got := b.dequeueCampaignAsync(c.UUID, 30*time.Second)
	require.True(t, waitUntil(5*time.Second, func() bool {
		return queue.Waiting(b.eng, c.UUID) == 1 && queue.Waiting(b.eng, a.UUID) == 1
	}), "the waiter subscribed to its campaign and its pool")
	added := b.pool(t, pool.Parallel, 10, 3)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, added.UUID)
	require.NoError(t, err)
	require.True(t, waitUntil(5*time.Second, func() bool { return queue.Waiting(b.eng, added.UUID) == 1 }),
		"the waiter did not subscribe to the pool attached while it waited")
	time.Sleep(200 * time.Millisecond) // its pass over the two empty pools ends; it sleeps
	for _, p := range []uuid.UUID{a.UUID, added.UUID} {
		require.Equal(t, 1, queue.Waiting(b.eng, p), "the waiter is subscribed to each of its pools")
	}
	want := b.add(t, a.UUID, 1)
	l := claimedWithin(t, got, 5*time.Second, "an Add to the pool it had before the attach")
	require.Equal(t, want[0], l.ContactUUID)

	// A new waiter, both pools empty of due items (a's item in flight):
	// an Add to each of them, whatever their order, wakes it.
	for _, p := range b.campaignOrder(t, c.UUID) {
		got := b.dequeueCampaignAsync(c.UUID, 30*time.Second)
		require.True(t, waitUntil(5*time.Second, func() bool {
			return queue.Waiting(b.eng, a.UUID) == 1 && queue.Waiting(b.eng, added.UUID) == 1
		}), "the new waiter subscribed to both pools")
		b.claimsTheNextAdd(t, got, p, "an Add to one of the campaign's pools")
	}
}

// TestEngine_DequeueCampaignPoolSwapped: while a DequeueCampaign reads
// its campaign, the campaign's one pool is detached and another attached:
// the next look finds as many pools as before, but not the same, and
// subscribes to the new one. A comparison of the pools by their number
// kept the waiter on the old pool, deaf to the new one's Adds.
func TestEngine_DequeueCampaignPoolSwapped(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	old := b.pool(t, pool.Parallel, 10, 3)
	next := b.pool(t, pool.Parallel, 10, 3)
	c := b.campaignOf(t, uuid.Nil, old.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	var once sync.Once
	swapped := make(chan struct{})
	queue.SetResubscribing(b.eng, func() {
		once.Do(func() { // the campaign was read with old: it is swapped for next now
			defer close(swapped)
			if _, err := b.eng.DetachPool(b.ctx, c.UUID, old.UUID); err != nil {
				t.Error(err) // not FailNow: this is the waiter's goroutine
			}
			if _, err := b.eng.AttachPools(b.ctx, c.UUID, next.UUID); err != nil {
				t.Error(err)
			}
		})
	})
	got := b.dequeueCampaignAsync(c.UUID, 30*time.Second)
	select {
	case <-swapped:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never read its campaign's pools")
	}
	require.True(t, waitUntil(5*time.Second, func() bool {
		return queue.Waiting(b.eng, next.UUID) == 1 && queue.Waiting(b.eng, old.UUID) == 0
	}), "the waiter is not subscribed to the pool swapped in (or still to the one swapped out)")
	b.claimsTheNextAdd(t, got, next.UUID, "an Add to the pool swapped in")
}

// TestEngine_DequeueCampaignLeavesNoSubscription: a DequeueCampaign
// leaves no subscription behind, to its campaign or to its pools, whether
// it returns a lease or its context ends (the invariant of wakeups: no
// more entries than waiters). The pools' unsubscribe is replaced as they
// change: a deferred call that captured the first one (a no-op) left them
// all.
func TestEngine_DequeueCampaignLeavesNoSubscription(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	p1 := b.pool(t, pool.Parallel, 10, 3)
	p2 := b.pool(t, pool.Parallel, 10, 3)
	c := b.campaignOf(t, uuid.Nil, p1.UUID, p2.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)

	got := b.dequeueCampaignAsync(c.UUID, 30*time.Second)
	require.True(t, waitUntil(5*time.Second, func() bool { return queue.WaitingPools(b.eng) == 3 }),
		"the waiter subscribed to its campaign and its two pools")
	b.add(t, p2.UUID, 1)
	claimedWithin(t, got, 5*time.Second, "an Add")
	require.Zero(t, queue.WaitingPools(b.eng), "a DequeueCampaign that claimed left subscriptions")

	got = b.dequeueCampaignAsync(c.UUID, 300*time.Millisecond)
	select {
	case r := <-got:
		require.ErrorIs(t, r.err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("DequeueCampaign outlived its context")
	}
	require.Zero(t, queue.WaitingPools(b.eng), "a DequeueCampaign whose context ended left subscriptions")
}

// TestEngine_DequeueCampaignPassGoesOn: a pass tries every pool of the
// campaign: a pool whose claim gives nothing though it has an item due
// (its contact is in a call from another pool, under the rule's one call
// at a time) does not end the pass, and the next pool gives. A pass that
// stopped there, its turn not moved, found nothing at every look.
func TestEngine_DequeueCampaignPassGoesOn(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour})
	r := b.rule(t, campaign.CreateRuleParams{StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), MaxCallsPerDay: pqPtr(9)})
	c, err := b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: "pass", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	for range 2 {
		p := b.pool(t, pool.Parallel, 10, 3)
		_, err = b.eng.AttachPools(b.ctx, c.UUID, p.UUID)
		require.NoError(t, err)
	}
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	order := b.campaignOrder(t, c.UUID)
	first, second := order[0], order[1]
	x, y := uuid.New(), uuid.New()
	b.addContacts(t, second, x, y)
	b.addContacts(t, first, x)
	l, err := b.eng.TryDequeue(b.ctx, second) // x in a call from the second pool
	require.NoError(t, err)
	require.Equal(t, x, l.ContactUUID)

	// The turn is the first pool's: x's item there is passed over.
	got := b.dequeueCampaignAsync(c.UUID, 10*time.Second)
	l = claimedWithin(t, got, 15*time.Second, "y, due in the second pool")
	require.Equal(t, y, l.ContactUUID)
	require.Equal(t, second, l.Item.PoolUUID)
}

// TestEngine_DequeueCampaignWaitsForItsOnePoolsRetry: a campaign of one
// pool (claimed without the read of which pools may give) whose one item
// retries later: DequeueCampaign sleeps until the retry time, not until
// its poll (an hour). Only campaigns behind empty pools were tested, whose
// wait comes from that read.
func TestEngine_DequeueCampaignWaitsForItsOnePoolsRetry(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour, RetryDelay: 300 * time.Millisecond})
	p := b.pool(t, pool.FIFO, 1, 3)
	want := b.add(t, p.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{})) // retries in 300 ms

	got := b.dequeueCampaignAsync(c.UUID, 10*time.Second)
	l = claimedWithin(t, got, 15*time.Second, "the item's retry")
	require.Equal(t, want[0], l.ContactUUID)
	require.Equal(t, 2, l.Attempt)
}

// TestEngine_TurnsMovePastSkippedPools: the turn after a claim is the
// pool after the one that gave, not after the one the pass began at: with
// an empty pool first, the two others alternate. A turn moved from the
// pass's start gave the pool after the empty one a claim on every pass
// that began at the empty one: twice as many as the last pool's, and more
// with more empty pools before it.
func TestEngine_TurnsMovePastSkippedPools(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	var ids []uuid.UUID
	for range 3 {
		ids = append(ids, b.pool(t, pool.Parallel, 100, 3).UUID)
	}
	c := b.campaignOf(t, uuid.Nil, ids...)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	order := b.campaignOrder(t, c.UUID)
	_, err = b.eng.Add(b.ctx, order[1], newItems(10)...)
	require.NoError(t, err)
	_, err = b.eng.Add(b.ctx, order[2], newItems(10)...)
	require.NoError(t, err)

	var from []uuid.UUID
	for range 4 {
		l, err := b.dequeueCampaignWithin(c.UUID, 10*time.Second)
		require.NoError(t, err)
		from = append(from, l.Item.PoolUUID)
	}
	require.Equal(t, []uuid.UUID{order[1], order[2], order[1], order[2]}, from,
		"the two pools with items, after an empty one, do not alternate")
}

// TestEngine_TurnKeptAcrossAnEmptyPass: a pass that finds nothing leaves
// the campaign's turn where the last claim put it: a campaign that runs
// dry between claims (a dialer that keeps up) still takes its pools in
// turn. One that dropped the turn at each empty pass began every claim at
// its first pool, which then starved the others whenever both had items.
func TestEngine_TurnKeptAcrossAnEmptyPass(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	p1 := b.pool(t, pool.Parallel, 10, 3)
	p2 := b.pool(t, pool.Parallel, 10, 3)
	c := b.campaignOf(t, uuid.Nil, p1.UUID, p2.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	order := b.campaignOrder(t, c.UUID)

	b.add(t, order[0], 1)
	l, err := b.dequeueCampaignWithin(c.UUID, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, order[0], l.Item.PoolUUID)
	require.NoError(t, b.eng.Complete(b.ctx, l, "answered")) // the turn is the second pool's now
	_, err = queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty, "a pass that finds nothing")

	b.add(t, order[0], 1)
	want := b.add(t, order[1], 1)
	l, err = b.dequeueCampaignWithin(c.UUID, 10*time.Second)
	require.NoError(t, err)
	require.Equal(t, order[1], l.Item.PoolUUID, "the turn was lost in the pass that found nothing")
	require.Equal(t, want[0], l.ContactUUID)
}

// TestEngine_DequeueCampaignPoolDeletedBeforeThePass: a pool of the
// campaign deleted between DequeueCampaign's read of the campaign and its
// pass does not hold up the pass (the others are tried at once, with an
// hour's poll), nor end the call. The other test of this ran with a
// 1 s poll, which hid a pass that stopped at the deleted pool.
func TestEngine_DequeueCampaignPoolDeletedBeforeThePass(t *testing.T) {
	t.Parallel()
	t.Run("BeforeTheOthers", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{PollInterval: time.Hour})
		p1 := b.pool(t, pool.FIFO, 1, 3)
		p2 := b.pool(t, pool.FIFO, 1, 3)
		c := b.campaignOf(t, uuid.Nil, p1.UUID, p2.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		order := b.campaignOrder(t, c.UUID)
		want := b.add(t, order[1], 1)
		var once sync.Once
		queue.SetResubscribing(b.eng, func() {
			once.Do(func() { // the campaign is read: its first pool goes now
				if err := b.eng.DeletePool(b.ctx, order[0]); err != nil {
					t.Error(err) // not FailNow: this is the waiter's goroutine
				}
			})
		})
		l, err := b.dequeueCampaignWithin(c.UUID, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, order[1], l.Item.PoolUUID)
		require.Equal(t, want[0], l.ContactUUID)
	})
	t.Run("TheOnlyOne", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, queue.Options{PollInterval: time.Hour})
		p := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, p.UUID, 1)
		c := b.campaignOf(t, uuid.Nil, p.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		var once sync.Once
		queue.SetResubscribing(b.eng, func() {
			once.Do(func() { // the campaign is read with p: p goes now, before its claim
				if err := b.eng.DeletePool(b.ctx, p.UUID); err != nil {
					t.Error(err)
				}
			})
		})
		got := b.dequeueCampaignAsync(c.UUID, 30*time.Second)
		require.True(t, waitUntil(5*time.Second, func() bool { return queue.Waiting(b.eng, c.UUID) == 1 || len(got) > 0 }))
		time.Sleep(300 * time.Millisecond) // its claim in the deleted pool is done
		select {
		case r := <-got:
			t.Fatalf("DequeueCampaign returned (%v, %v) when its campaign's one pool was deleted: it waits", r.l, r.err)
		default:
		}
		other := b.pool(t, pool.FIFO, 1, 3)
		want := b.add(t, other.UUID, 1)
		_, err = b.eng.AttachPools(b.ctx, c.UUID, other.UUID)
		require.NoError(t, err)
		l := claimedWithin(t, got, 5*time.Second, "a pool attached after the deletion")
		require.Equal(t, want[0], l.ContactUUID)
	})
}
