package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_TwoStartsOfCampaignsSharingAPool: two campaigns share a
// pool, and two nodes start one each at once. At most one campaign may
// govern a pool, so one start succeeds and the other fails with
// campaign.ErrConflict, whatever the interleaving: a start takes its
// pools' locks before it looks for another governing campaign. Here node
// b's start has looked (none) when node a's start runs; a's must wait for
// b's to commit, then find it. The wait is for the pool's lock, which on
// PostgreSQL every access to a pool in a write takes (the start's own
// lockPools, and the PoolGovernors of its check, each take it): with all
// of them gone, a's start committed meanwhile and b's then committed too,
// two campaigns governing one pool (tried by hand, December 2026).
func TestPostgres_TwoStartsOfCampaignsSharingAPool(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	firstSt := pgtest.Open(t, url, postgres.Options{})
	second := &pausingStore{Store: pgtest.OpenSchema(t, url, postgres.Options{Schema: firstSt.Schema()})}
	a := openEngine(t, firstSt, queue.Options{})
	b := openEngine(t, second, queue.Options{})
	ctx := context.Background()

	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "shared", Description: "d"})
	require.NoError(t, err)
	var cs [2]campaign.Campaign
	for i := range cs {
		cs[i], err = a.CreateCampaign(ctx, campaign.CreateParams{Name: "sharing"})
		require.NoError(t, err)
		_, err = a.AttachPools(ctx, cs[i].UUID, p.UUID)
		require.NoError(t, err)
	}

	var aErr error
	aReturned := make(chan struct{})
	second.mu.Lock()
	second.governors = func() {
		go func() { _, aErr = a.StartCampaign(ctx, cs[0].UUID); close(aReturned) }()
		// Node a's start runs to its end, or waits for b's locks.
		select {
		case <-aReturned:
		case <-time.After(500 * time.Millisecond):
		}
	}
	second.mu.Unlock()
	_, bErr := b.StartCampaign(ctx, cs[1].UUID)
	select {
	case <-aReturned:
	case <-time.After(30 * time.Second):
		t.Fatal("node a's start did not return")
	}
	if bErr == nil {
		require.ErrorIs(t, aErr, campaign.ErrConflict, "b started first: a's start finds it governing")
	} else {
		require.ErrorIs(t, bErr, campaign.ErrConflict)
		require.NoError(t, aErr)
	}
	t.Logf("a: %v, b: %v", aErr, bErr)
	governing := 0
	for _, c := range cs {
		got, err := a.Campaign(ctx, c.UUID)
		require.NoError(t, err)
		if got.Status.Governs() {
			governing++
		}
	}
	require.Equal(t, 1, governing, "exactly one campaign governs the pool (a: %v, b: %v)", aErr, bErr)
}
