package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_DequeueWakesWhenAHoldEnds: a Dequeue blocked on a pool held
// by a Draft campaign (ErrHeld, so it sleeps for PollInterval, here an
// hour) returns at once when what held the pool lets go of it: the pool
// detached, the campaign deleted, or the pool attached to a campaign In
// Process, which governs it and dials it. TestEngine_DequeueWakesAtStart
// has the campaign's start. (Nothing else wakes such a Dequeue: without
// the wake-up it sleeps its whole PollInterval.)
func TestEngine_DequeueWakesWhenAHoldEnds(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		free func(b *testBundle, t *testing.T, held, p uuid.UUID)
	}{
		{"Detach", func(b *testBundle, t *testing.T, held, p uuid.UUID) {
			detached, err := b.eng.DetachPool(b.ctx, held, p)
			require.NoError(t, err)
			require.True(t, detached)
		}},
		{"DeleteCampaign", func(b *testBundle, t *testing.T, held, _ uuid.UUID) {
			require.NoError(t, b.eng.DeleteCampaign(b.ctx, held))
		}},
		{"AttachToARunningCampaign", func(b *testBundle, t *testing.T, _, p uuid.UUID) {
			c := b.campaignOf(t, uuid.Nil)
			_, err := b.eng.StartCampaign(b.ctx, c.UUID)
			require.NoError(t, err)
			res, err := b.eng.AttachPools(b.ctx, c.UUID, p)
			require.NoError(t, err)
			require.Equal(t, 1, res.PoolsAttached)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := realEngine(t, queue.Options{PollInterval: time.Hour})
			p := b.pool(t, pool.FIFO, 1, 3)
			b.add(t, p.UUID, 1)
			held := b.campaignOf(t, uuid.Nil, p.UUID) // a Draft: it holds the pool
			_, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.ErrorIs(t, err, queue.ErrHeld)
			before := b.eng.Stats().Operations
			got := make(chan error, 1)
			go func() { _, err := b.eng.Dequeue(b.ctx, p.UUID); got <- err }()
			require.Eventually(t, func() bool { return b.eng.Stats().Operations > before }, 5*time.Second, time.Millisecond)
			tc.free(b, t, held.UUID, p.UUID)
			select {
			case err := <-got:
				require.NoError(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("the Dequeue was not woken when the hold ended")
			}
		})
	}
}

// TestEngine_HeldPoolFreedElsewhereAtThePoll: a waiter on a pool held by
// its campaign (a Draft, or one Paused, which governs the pool and does
// not dial it) polls it with a read that asks whether it is still held,
// claiming nothing while it is (a Dequeue; a Work on it, alone and with
// another pool); when another process sharing the file lets go of it (the
// pool detached from the Draft, the Paused campaign resumed: no wake-up
// reaches this one), the waiter claims at its next poll.
func TestEngine_HeldPoolFreedElsewhereAtThePoll(t *testing.T) {
	for _, hold := range []string{"Draft", "Paused"} {
		for _, kind := range waiterKinds {
			t.Run(hold+"/"+kind, func(t *testing.T) {
				t.Parallel()
				here, there := sharedFile(t)
				p := here.pool(t, pool.FIFO, 1, 3)
				other := here.pool(t, pool.FIFO, 1, 3)
				here.add(t, p.UUID, 1)
				held := here.campaignOf(t, uuid.Nil, p.UUID) // a Draft holds the pool; Paused, it governs it, not dialling
				if hold == "Paused" {
					_, err := here.eng.StartCampaign(here.ctx, held.UUID)
					require.NoError(t, err)
					_, err = here.eng.PauseCampaign(here.ctx, held.UUID)
					require.NoError(t, err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				got := make(chan error, 2)
				h := func(context.Context, *queue.Lease) error { got <- nil; return nil }
				ops := here.eng.Stats().Operations
				startWaiter(ctx, here.eng, kind, p.UUID, other.UUID, h, nil, got)
				// Counted from the waiter's first look, a claim that finds the
				// pool held, which a loaded machine may delay.
				require.Eventually(t, func() bool { return here.eng.Stats().Operations > ops }, 5*time.Second, time.Millisecond)
				before := here.eng.Stats().Operations
				time.Sleep(200 * time.Millisecond) // 10 polls
				require.Zero(t, here.eng.Stats().Operations-before, "a poll of a pool still held claims nothing")
				if hold == "Paused" {
					_, err := there.eng.ResumeCampaign(there.ctx, held.UUID)
					require.NoError(t, err)
				} else {
					detached, err := there.eng.DetachPool(there.ctx, held.UUID, p.UUID)
					require.NoError(t, err)
					require.True(t, detached)
				}
				select {
				case err := <-got:
					require.NoError(t, err)
				case <-time.After(5 * time.Second):
					t.Fatal("the waiter did not claim once the hold ended in the other process")
				}
			})
		}
	}
}
