package queue_test

import (
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestUpdatePool_AppliesLeasesEndedBefore: a lease that ended while the
// pool's max_retries was 0 is a failed attempt with no retry left, even
// when max_retries is raised before any write applied the expiry; as a
// lease that ended under a campaign's rule is judged under it when the
// rule changes (TestCrash_CampaignLeaseEndsThenPoolLeaves,
// TestAttachPools_AppliesLeasesEndedBefore). Judged under the new
// setting, the ended call got a retry the pool did not allow when it
// ended.
func TestUpdatePool_AppliesLeasesEndedBefore(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 0)
	b.add(t, p.UUID, 1)
	_, err := b.eng.TryDequeue(b.ctx, p.UUID) // its holder vanishes
	require.NoError(t, err)
	b.clock.Advance(testLease + 1)
	_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxRetries: pqPtr(3)})
	require.NoError(t, err)

	_, err = b.eng.TryDequeue(b.ctx, p.UUID) // any write on the pool applies the expiry, if the update did not
	require.Error(t, err)
	items := allItems(b.ctx, t, b.eng, p.UUID, 10)
	require.Len(t, items, 1)
	require.Equal(t, pool.StatusFailed, items[0].Status, "the lease ended under max_retries 0, before the update")
	require.Equal(t, 1, items[0].Attempts)
	require.Equal(t, 0, items[0].RetryCount)
}
