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

// TestEngine_DequeueCampaignWakesOnAttach: a DequeueCampaign waiting on a
// running campaign whose pool has nothing wakes when a pool with an item is
// attached to the campaign, and claims it; PollInterval is an hour.
func TestEngine_DequeueCampaignWakesOnAttach(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	empty := b.pool(t, pool.Parallel, 10, 3)
	full := b.pool(t, pool.Parallel, 10, 3)
	want := b.add(t, full.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, empty.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)

	got := make(chan *queue.Lease, 1)
	go func() {
		l, err := b.eng.DequeueCampaign(context.Background(), c.UUID)
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	require.True(t, waitUntil(2*time.Second, func() bool { return queue.Waiting(b.eng, c.UUID) == 1 }))
	_, err = b.eng.AttachPools(b.ctx, c.UUID, full.UUID)
	require.NoError(t, err)
	select {
	case l := <-got:
		require.NotNil(t, l)
		require.Equal(t, want[0], l.ContactUUID)
	case <-time.After(3 * time.Second):
		t.Fatal("DequeueCampaign not woken by the attach (PollInterval is an hour)")
	}
}
