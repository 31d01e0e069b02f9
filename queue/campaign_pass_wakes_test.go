package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// The tests of this file check that a DequeueCampaign pass, which claims
// only in the pools that may give something (see campaignPass), passes
// over no pool that has: each puts the one pool with something to claim
// or to end after 20 empty ones in the campaign's turn order, with an
// hour's poll, so that a pass that wrongly passes it over gets nothing
// before the test's deadline.

// campaignBehindEmptyPools starts a campaign of n empty pools then p.
func (b *testBundle) campaignBehindEmptyPools(t *testing.T, n int, p pool.Pool) uuid.UUID {
	t.Helper()
	c := b.campaignOf(t, uuid.Nil, append(b.emptyPools(t, n), p.UUID)...)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	return c.UUID
}

// dequeueCampaignWithin runs DequeueCampaign with a deadline d away.
func (b *testBundle) dequeueCampaignWithin(id uuid.UUID, d time.Duration) (*queue.Lease, error) {
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	return b.eng.DequeueCampaign(ctx, id)
}

// TestDequeueCampaign_ClaimsARetryAClaimLeft: a retry whose time came, which
// a claim found due and left (its pool was at its cap), is claimed once
// the cap allows, though the pool's next wake no longer names it (see
// store.Tx.NextWake) and nothing else is due in the campaign.
func TestDequeueCampaign_ClaimsARetryAClaimLeft(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		c := newClock()
		eng := openEngine(t, st, queue.Options{LeaseTimeout: time.Hour, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
		b := &testBundle{ctx: context.Background(), eng: eng, clock: c}
		p := b.pool(t, pool.FIFO, 1, 3)
		x := b.add(t, p.UUID, 2)
		camp := b.campaignBehindEmptyPools(t, 20, p)

		lx, err := eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Fail(b.ctx, lx, queue.Failure{RetryAt: c.Now().Add(time.Minute)}))
		ly, err := eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, x[1], ly.ContactUUID)
		c.Advance(2 * time.Minute)
		_, err = eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity, "the retry found due, at the cap")
		require.NoError(t, eng.Complete(b.ctx, ly, "answered"))

		l, err := b.dequeueCampaignWithin(camp, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, x[0], l.ContactUUID)
		require.Equal(t, 2, l.Attempt)
	})
}

// TestDequeueCampaign_EndsAnEndedLease: a pool whose only item is in
// flight under a lease that has ended: DequeueCampaign's pass ends it (a
// failed attempt, the item Retrying), and claims the item at its retry
// time.
func TestDequeueCampaign_EndsAnEndedLease(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		c := newClock()
		eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
		b := &testBundle{ctx: context.Background(), eng: eng, clock: c}
		p := b.pool(t, pool.FIFO, 1, 3)
		x := b.add(t, p.UUID, 1)
		camp := b.campaignBehindEmptyPools(t, 20, p)
		_, err := eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		c.Advance(2 * testLease)

		_, err = b.dequeueCampaignWithin(camp, 300*time.Millisecond)
		require.ErrorIs(t, err, context.DeadlineExceeded, "nothing due before the retry time")
		items := allItems(b.ctx, t, eng, p.UUID, 10)
		require.Equal(t, pool.StatusRetrying, items[0].Status, "the lease ended by the pass")

		c.Advance(testRetry)
		l, err := b.dequeueCampaignWithin(camp, 10*time.Second)
		require.NoError(t, err)
		require.Equal(t, x[0], l.ContactUUID)
		require.Equal(t, 2, l.Attempt)
	})
}

// TestDequeueCampaign_WakesAtTheTimes: a DequeueCampaign whose campaign
// has nothing due waits until the earliest retry time or lease end among
// its pools that have nothing due (the real clock here), not until its
// poll.
func TestDequeueCampaign_WakesAtTheTimes(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := openEngine(t, st, queue.Options{LeaseTimeout: 200 * time.Millisecond, RetryDelay: 300 * time.Millisecond, PollInterval: time.Hour})
		b := &testBundle{ctx: context.Background(), eng: eng}
		p := b.pool(t, pool.FIFO, 1, 3)
		x := b.add(t, p.UUID, 1)
		camp := b.campaignBehindEmptyPools(t, 20, p)

		l, err := eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Fail(b.ctx, l, queue.Failure{}))
		l, err = b.dequeueCampaignWithin(camp, 10*time.Second)
		require.NoError(t, err, "at the retry time")
		require.Equal(t, x[0], l.ContactUUID)

		// Not settled: at its lease's end the item retries (after
		// RetryDelay), and is claimed again.
		l, err = b.dequeueCampaignWithin(camp, 10*time.Second)
		require.NoError(t, err, "after the lease's end")
		require.Equal(t, x[0], l.ContactUUID)
		require.Equal(t, 3, l.Attempt)
	})
}
