package queue_test

import (
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestEngine_RemoveKeepsThePreviousDayAlone: an item whose only counted
// call is of its previous calling day (requeued, then its next day's call
// given back: no attempts, no call of the latest day) keeps that call
// when it is removed. The contact's call at 22:00 on January 2nd in Tokyo
// was on January 2nd in Los Angeles, as is the given-back one at 09:00 on
// January 3rd there (16:00 in Los Angeles): added back in Los Angeles with
// max_calls_per_day 1, no call that day.
func TestEngine_RemoveKeepsThePreviousDayAlone(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		b.clock.Advance(4 * time.Hour) // 2026-01-02 13:00 UTC: 22:00 in Tokyo
		p := b.pool(t, pool.FIFO, 1, 5)
		r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(1), MaxTotalCalls: pqPtr(10),
			RetryIntervalMinutes: pqPtr(60), StartTime: pqPtr("09:00"), EndTime: pqPtr("23:00")})
		c := b.campaignOf(t, r.UUID, p.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		contact := b.addIn(t, p.UUID, "Asia/Tokyo")

		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		_, err = b.eng.Requeue(b.ctx, p.UUID, contact)
		require.NoError(t, err)
		b.clock.Advance(11 * time.Hour) // 09:00 Jan 3 in Tokyo
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Release(b.ctx, l))
		it := b.item(t, p.UUID, contact)
		require.Zero(t, it.Attempts)
		require.Zero(t, it.CallsToday)
		require.Equal(t, 1, it.PrevCallsToday)

		n, err := b.eng.Remove(b.ctx, p.UUID, contact)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: contact, Contact: pool.Contact{TimeZone: "America/Los_Angeles"}})
		require.NoError(t, err)
		b.clock.Advance(time.Hour) // 17:00 Jan 2 in Los Angeles
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.Error(t, err, "a second call on January 2nd in Los Angeles, max 1")
		require.Equal(t, pool.StatusScheduled, b.item(t, p.UUID, contact).Status)
	})
}
