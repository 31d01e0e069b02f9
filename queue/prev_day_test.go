package queue_test

import (
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
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

// TestEngine_PreviousDayDoesNotAccumulate: a contact of a campaign in
// Tokyo, failed to retry 23 hours later (retry_interval_minutes 1380), is
// called on a new date there at each call: 20:00 on January 3rd, 19:00 on
// the 4th, ... 11:00 on the 12th. The campaign's default zone is then
// corrected to São Paulo (UTC-3), where the ninth call (2026-01-11T03:00Z)
// and the tenth (2026-01-12T02:00Z), set to retry 30 minutes later, were
// at 00:00 and 23:00 on January 11th: with max_calls_per_day 3, the retry
// at 23:30 is the third call of that date, and is made. (The nine days
// before the tenth counted as one previous day on that date, ten calls.)
func TestEngine_PreviousDayDoesNotAccumulate(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		b.clock.Advance(26 * time.Hour) // 2026-01-03 11:00 UTC: 20:00 in Tokyo
		p := b.pool(t, pool.FIFO, 1, 20)
		r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(3), MaxTotalCalls: pqPtr(20),
			RetryIntervalMinutes: pqPtr(1380), StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
		c := b.startedCampaignIn(t, "Asia/Tokyo", r.UUID, p.UUID)
		contact := b.addIn(t, p.UUID, "")

		sp, err := time.LoadLocation("America/Sao_Paulo")
		require.NoError(t, err)
		for i := range 10 {
			if i > 0 {
				b.clock.Advance(23 * time.Hour)
			}
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err, "call %d at %v", i, b.clock.Now())
			f := queue.Failure{Note: "no answer"}
			if i == 9 {
				require.Equal(t, "2026-01-11 23:00", b.clock.Now().In(sp).Format("2006-01-02 15:04"))
				f.RetryAt = b.clock.Now().Add(30 * time.Minute)
			}
			require.NoError(t, b.eng.Fail(b.ctx, l, f))
		}
		it := b.item(t, p.UUID, contact)
		require.Equal(t, 1, it.CallsToday, "January 12th in Tokyo")
		require.Equal(t, 1, it.PrevCallsToday, "January 11th in Tokyo, its own call alone")
		require.Equal(t, 1, it.OlderCallsToday, "January 10th in Tokyo, its own call alone")

		_, err = b.eng.UpdateCampaign(b.ctx, c.UUID, campaign.UpdateParams{TimeZone: pqPtr("America/Sao_Paulo")})
		require.NoError(t, err)
		b.clock.Advance(30 * time.Minute) // 23:30 on January 11th in São Paulo
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err, "the third call of January 11th in São Paulo, max 3")
		require.Equal(t, contact, l.Item.ContactUUID)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer", RetryAt: b.clock.Now().Add(time.Minute)}))
		b.clock.Advance(time.Minute)
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty, "a fourth call on January 11th in São Paulo")
	})
}
