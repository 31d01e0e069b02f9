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

// TestEngine_KeepCallsCostOfFinishedCampaigns: removing a pool's called
// items, or deleting the pool, keeps their calls for the campaigns that may
// still dial (a Draft here, whose rule will count them once it starts),
// and writes nothing for the campaigns done with the pool: a Completed or
// Archived campaign never dispatches again (AttachPools refuses it, no
// transition leads back), so a call kept for it is never read. They stay
// attached, so a pool reused by a new campaign every day is attached to
// hundreds.
//
// Fails: Remove and DeletePool (store.Tx.KeepCalls) write one kept call
// per called item per campaign ever attached to the pool, finished ones
// included. Measured on a SQLite file (December 2026): DeletePool of a
// pool of 2,000 called items took 23 ms beside 1 finished campaign, 2.6 s
// beside 100 and 8.2 s beside 400, holding the file's one writer (every
// other pool's claims wait) and leaving 800,000 rows no read ever needs.
func TestEngine_KeepCallsCostOfFinishedCampaigns(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		ctx := context.Background()
		c := newClock()
		eng := openEngine(t, st, queue.Options{LeaseTimeout: time.Hour, RetryDelay: time.Hour, Now: c.Now})
		b := &testBundle{ctx: ctx, eng: eng, clock: c}
		p := b.pool(t, pool.Parallel, 100, 3)
		const called, finished = 20, 12
		contacts := b.add(t, p.UUID, called)
		ls, err := queue.TryDequeueN(ctx, eng, p.UUID, called)
		require.NoError(t, err)
		require.Len(t, ls, called)
		for _, l := range ls {
			require.NoError(t, eng.Complete(ctx, l, "answered"))
		}
		var done []uuid.UUID
		for i := range finished {
			f := b.campaignOf(t, uuid.Nil, p.UUID)
			_, err := eng.StartCampaign(ctx, f.UUID)
			require.NoError(t, err)
			_, err = eng.CompleteCampaign(ctx, f.UUID)
			require.NoError(t, err)
			if i%2 == 1 {
				_, err = eng.ArchiveCampaign(ctx, f.UUID)
				require.NoError(t, err)
			}
			done = append(done, f.UUID)
		}
		draft := b.campaignOf(t, uuid.Nil, p.UUID)

		// kept counts the calls kept for campaign id of contacts cs.
		kept := func(id uuid.UUID, cs []uuid.UUID) int {
			var n int
			require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
				items, err := tx.CampaignItems(ctx, id, p.UUID, cs...)
				for _, it := range items {
					if it.PoolUUID == uuid.Nil {
						n++
					}
				}
				return err
			}))
			return n
		}
		keptForFinished := func() int {
			n := 0
			for _, id := range done {
				n += kept(id, contacts)
			}
			return n
		}

		removed, err := eng.Remove(ctx, p.UUID, contacts[:called/2]...)
		require.NoError(t, err)
		require.Equal(t, called/2, removed)
		require.Equal(t, called/2, kept(draft.UUID, contacts), "Remove: the Draft campaign keeps the calls")
		require.Zero(t, keptForFinished(), "Remove: calls kept for %d finished campaigns", finished)

		require.NoError(t, eng.DeletePool(ctx, p.UUID))
		require.Equal(t, called, kept(draft.UUID, contacts), "DeletePool: the Draft campaign keeps the calls")
		require.Zero(t, keptForFinished(), "DeletePool: calls kept for %d finished campaigns", finished)
	})
}
