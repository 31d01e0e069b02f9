package queue_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestAttachPools_AppliesLeasesEndedBefore: a lease that ended while its
// pool dispatched under its own settings is a failed attempt under them,
// even when the pool is attached to a running campaign before any write
// applied the expiry: the rule that governs from the attach on (two calls
// in all, an escalation after two failed attempts) must not judge an
// attempt that ended before it. The mirror of DetachPool's case
// (TestCrash_CampaignLeaseEndsThenPoolLeaves).
func TestAttachPools_AppliesLeasesEndedBefore(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 9)
	b.add(t, p.UUID, 1)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now()}))
	_, err = b.eng.TryDequeue(b.ctx, p.UUID) // the second attempt, whose holder vanishes
	require.NoError(t, err)
	b.clock.Advance(testLease + 1)

	r, err := b.eng.CreateRule(b.ctx, campaign.CreateRuleParams{Name: "two calls", MaxTotalCalls: pqPtr(2),
		StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), EscalationAfterFailedAttempts: pqPtr(2)})
	require.NoError(t, err)
	c, err := b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: "running", RuleUUID: &r.UUID})
	require.NoError(t, err)
	other := b.pool(t, pool.FIFO, 1, 3)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, other.UUID)
	require.NoError(t, err)
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, p.UUID)
	require.NoError(t, err)

	_, err = b.eng.TryDequeue(b.ctx, p.UUID) // any write on the pool applies the expiry, if the attach did not
	require.ErrorIs(t, err, queue.ErrEmpty)
	requireOneItemAfterExpiry(t, b, p.UUID, pool.StatusRetrying, 0,
		"the lease ended under the pool's max_retries 9, before the attach: no escalation")
}

// requireOneItemAfterExpiry: pool p holds one item, after two attempts,
// the second's lease expired: in status want, with escalations recorded
// in the engine (why says which rule judged the expiry).
func requireOneItemAfterExpiry(t *testing.T, b *testBundle, p uuid.UUID, want pool.Status, escalations int, why string) {
	t.Helper()
	items := allItems(b.ctx, t, b.eng, p, 10)
	require.Len(t, items, 1)
	require.Equal(t, want, items[0].Status, why)
	require.Equal(t, 2, items[0].Attempts)
	esc, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, esc, escalations, why)
}

// TestAssignRule_AppliesLeasesEndedBefore: a lease that ended under a
// running campaign's rule is a failed attempt under that rule, even when
// another rule is assigned before any write on the pool applied the
// expiry: the second attempt of a rule of two calls that escalates after
// two failures ends the item Failed, with one escalation, and the new
// rule (nine calls, no escalation) does not judge it.
func TestAssignRule_AppliesLeasesEndedBefore(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 1, 9)
		b.add(t, p.UUID, 1)
		two := b.rule(t, campaign.CreateRuleParams{Name: "two calls", MaxTotalCalls: pqPtr(2),
			StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), EscalationAfterFailedAttempts: pqPtr(2)})
		nine := b.rule(t, campaign.CreateRuleParams{Name: "nine calls", MaxTotalCalls: pqPtr(9),
			StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
		c := b.startedCampaignIn(t, "UTC", two.UUID, p.UUID)
		l, err := queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now()}))
		_, err = queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID) // the second attempt, whose holder vanishes
		require.NoError(t, err)
		b.clock.Advance(testLease + 1)

		_, err = b.eng.AssignRule(b.ctx, c.UUID, nine.UUID)
		require.NoError(t, err)
		_, err = queue.TryDequeueCampaign(b.ctx, b.eng, c.UUID) // applies the expiry, if the assignment did not
		require.ErrorIs(t, err, queue.ErrEmpty)
		requireOneItemAfterExpiry(t, b, p.UUID, pool.StatusFailed, 1,
			"the lease ended under the rule of two calls, which escalates after two failures")
	})
}
