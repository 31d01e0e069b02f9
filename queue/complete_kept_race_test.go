package queue_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestCompleteCampaign_RacesRemove: a campaign's completion on one node
// while another node removes called contacts from its pool, one Remove at
// a time, leaves no call kept for it. A Remove committed before the
// completion keeps its calls, which the completion deletes (it takes the
// pool's lock, and its DELETE reads what committed before); one after it
// sees the campaign finished and keeps none. Ten rounds, the completion
// started after a random number of the removes.
func TestCompleteCampaign_RacesRemove(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	sa := pgtest.Open(t, url, postgres.Options{})
	sb := pgtest.OpenSchema(t, url, postgres.Options{Schema: sa.Schema()})
	a := openEngine(t, sa, queue.Options{LeaseTimeout: time.Hour})
	b := openEngine(t, sb, queue.Options{LeaseTimeout: time.Hour})
	ba := &testBundle{ctx: ctx, eng: a}
	const rounds, contacts = 10, 20
	straddled := 0 // rounds with removes both before and after the completion
	for range rounds {
		p := ba.pool(t, pool.Parallel, 100, 3)
		cs := ba.add(t, p.UUID, contacts)
		ls, err := queue.TryDequeueN(ctx, a, p.UUID, contacts)
		require.NoError(t, err)
		require.Len(t, ls, contacts)
		for _, l := range ls {
			require.NoError(t, a.Complete(ctx, l, "answered"))
		}
		k := ba.campaignOf(t, uuid.Nil, p.UUID)
		_, err = a.StartCampaign(ctx, k.UUID)
		require.NoError(t, err)

		var wg sync.WaitGroup
		var removed []time.Time // when each Remove returned
		var completeStart, completeEnd time.Time
		// The completion starts once a random number of removes (1 to
		// half of them) returned, racing with the next: at a moment among
		// the removes however slow the machine is, not at a fixed delay
		// that a loaded machine's first Remove outlasts.
		after, start := 1+rand.IntN(contacts/2), make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer func() {
				if len(removed) < after {
					close(start)
				}
			}()
			for _, c := range cs {
				n, err := a.Remove(ctx, p.UUID, c)
				if err != nil || n != 1 {
					t.Errorf("remove %s: %d, %v", c, n, err)
					return
				}
				removed = append(removed, time.Now())
				if len(removed) == after {
					close(start)
				}
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			completeStart = time.Now()
			if _, err := b.CompleteCampaign(ctx, k.UUID); err != nil {
				t.Errorf("complete: %v", err)
			}
			completeEnd = time.Now()
		}()
		wg.Wait()
		if t.Failed() {
			return
		}
		if removed[0].Before(completeStart) && removed[len(removed)-1].After(completeEnd) {
			straddled++
		}
		var kept int
		require.NoError(t, sa.Read(ctx, func(tx store.Tx) error {
			items, err := tx.CampaignItems(ctx, k.UUID, uuid.Nil, cs...)
			kept = 0
			for _, it := range items {
				if it.PoolUUID == uuid.Nil {
					kept++
				}
			}
			return err
		}))
		require.Zero(t, kept, "calls kept for the completed campaign")
	}
	t.Logf("%d of %d rounds had removes before and after the completion", straddled, rounds)
	require.NotZero(t, straddled, "the completion never fell among the removes: the test proved nothing")
}
