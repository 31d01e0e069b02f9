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

// retriesLater opens an engine over st counted by a txCountStore (an
// hour's poll, a fake clock), and makes n pools, each holding one item
// that failed once and retries in 30 minutes: nothing is due in any of
// them until then, and nothing is in flight. It returns the pools' UUIDs
// and their items' contacts.
func retriesLater(t *testing.T, st store.Store, n int) (b *testBundle, cs *txCountStore, ids, contacts []uuid.UUID) {
	t.Helper()
	cs = &txCountStore{Store: st}
	c := newClock()
	eng := openEngine(t, cs, queue.Options{LeaseTimeout: testLease, RetryDelay: 30 * time.Minute, Now: c.Now, PollInterval: time.Hour})
	b = &testBundle{ctx: context.Background(), eng: eng, clock: c}
	for range n {
		p := b.pool(t, pool.Parallel, 10, 3)
		contacts = append(contacts, b.add(t, p.UUID, 1)...)
		l, err := eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Fail(b.ctx, l, queue.Failure{})) // Retrying, in RetryDelay
		ids = append(ids, p.UUID)
	}
	return b, cs, ids, contacts
}

// TestDequeueCampaign_CostOfRetriesLater: a DequeueCampaign whose pools
// hold only retries 30 minutes away waits until then without a write
// transaction: its pass reads which pools may give (store.Tx.PoolWakes)
// and claims in none, a retry time still to come being its wait, not a
// claim's cause. (A campaign of one pool claims once, the look itself,
// then waits.) At the retry time, the lease costs one write, its claim.
// A pass that claimed in pools whose next wake was up to an hour away
// cost a write a pool a look, and gave the same answer; one that looked
// again at once, and again, a millisecond later, doubling, cost reads.
func TestDequeueCampaign_CostOfRetriesLater(t *testing.T) {
	for _, n := range []int{3, 1} {
		t.Run(map[int]string{3: "ThreePools", 1: "OnePool"}[n], func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				b, cs, ids, contacts := retriesLater(t, st, n)
				camp := b.campaignOf(t, uuid.Nil, ids...)
				_, err := b.eng.StartCampaign(b.ctx, camp.UUID)
				require.NoError(t, err)

				looks := int64(0) // the claims of the looks before the wait
				if n == 1 {
					looks = 1
				}
				cs.writes.Store(0)
				cs.reads.Store(0)
				_, err = b.dequeueCampaignWithin(camp.UUID, 300*time.Millisecond)
				require.ErrorIs(t, err, context.DeadlineExceeded, "nothing is due for 30 minutes")
				reads, writes := cs.quiet()
				require.Equal(t, looks, writes, "write transactions while nothing was due")
				// One look: the campaign, and which pools may give (or,
				// in a campaign of one pool, its next wake).
				require.LessOrEqual(t, reads, int64(4), "read transactions while nothing was due")

				b.clock.Advance(30 * time.Minute)
				cs.writes.Store(0)
				l, err := b.dequeueCampaignWithin(camp.UUID, 10*time.Second)
				require.NoError(t, err, "at the retry time")
				require.Contains(t, contacts, l.ContactUUID)
				require.Equal(t, 2, l.Attempt)
				require.Equal(t, int64(1), cs.writes.Load(), "write transactions of the lease at the retry time")
			})
		})
	}
}

// TestWork_CostOfRetriesLater: Work over pools (or a campaign of them)
// that hold only retries 30 minutes away makes no write transaction while
// it waits for them (see TestDequeueCampaign_CostOfRetriesLater), a few
// reads, and starts no handler.
func TestWork_CostOfRetriesLater(t *testing.T) {
	for _, viaCampaign := range []bool{false, true} {
		t.Run(map[bool]string{false: "Pools", true: "Campaign"}[viaCampaign], func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				b, cs, ids, _ := retriesLater(t, st, 3)
				opts := queue.WorkOptions{Pools: ids, Workers: 2}
				if viaCampaign {
					camp := b.campaignOf(t, uuid.Nil, ids...)
					_, err := b.eng.StartCampaign(b.ctx, camp.UUID)
					require.NoError(t, err)
					opts = queue.WorkOptions{Campaigns: []uuid.UUID{camp.UUID}, Workers: 2}
				}
				cs.writes.Store(0)
				cs.reads.Store(0)
				ctx, cancel := context.WithTimeout(b.ctx, 300*time.Millisecond)
				defer cancel()
				err := b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
					t.Error("a handler started: nothing is due for 30 minutes")
					return nil
				}, opts)
				require.NoError(t, err)
				reads, writes := cs.quiet()
				require.Zero(t, writes, "write transactions while nothing was due")
				// One look: the pools (or the campaign's), which may give,
				// and their next wakes, for the pause.
				require.LessOrEqual(t, reads, int64(6), "read transactions while nothing was due")
			})
		})
	}
}
