package queue_test

import (
	"testing"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestUpdateRule_AppliesPausedLeasesEndedBefore: a lease that ended while
// its campaign was Paused is a failed attempt under the rule as it stood
// when it ended, even when the rule is updated before any write on the
// pool applied the expiry: UpdateRule applies the ended leases of the
// pools of the rule's Paused campaigns too (lockRulePools), not only the
// In Process ones. Here the rule allowed two calls and escalated after two failures;
// updated to nine calls without escalation, it must not judge the second
// attempt, whose holder vanished during the pause: the item ends Failed,
// with one escalation.
func TestUpdateRule_AppliesPausedLeasesEndedBefore(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 1, 9)
		b.add(t, p.UUID, 1)
		r := b.rule(t, campaign.CreateRuleParams{Name: "two calls", MaxTotalCalls: pqPtr(2),
			StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), EscalationAfterFailedAttempts: pqPtr(2)})
		c := b.startedCampaignIn(t, "UTC", r.UUID, p.UUID)
		l, err := queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now()}))
		_, err = queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID) // the second attempt, whose holder vanishes
		require.NoError(t, err)
		_, err = b.eng.PauseCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		b.clock.Advance(testLease + 1) // the lease ends during the pause

		_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(9)})
		require.NoError(t, err)
		_, err = b.eng.ResumeCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		_, err = queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID) // applies the expiry, if the update did not
		require.ErrorIs(t, err, queue.ErrEmpty)
		requireOneItemAfterExpiry(t, b, p.UUID, pool.StatusFailed, 1,
			"the lease ended under the rule of two calls, which escalates after two failures")
	})
}
