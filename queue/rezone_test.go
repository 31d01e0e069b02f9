package queue_test

import (
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_ContactZoneChangedKeepsTheDayCap: a contact called once
// today (max_calls_per_day 1, window 09:00–21:00) is removed and added
// back with another zone, its own (the way a contact's zone changes: an
// item keeps the fields it was added with). The call counts on the date
// it falls on in the new zone: no second call that date there, the next
// at the window's start of the next date there.
//
// East: 18:00 EST on January 5th in New York is 08:00 on January 6th in
// Tokyo; at 10:00 there, no call until 09:00 on January 7th. West: 10:00
// on January 6th in Tokyo is 20:00 EST on January 5th; at 20:30 there, no
// call until 09:00 EST on January 6th.
func TestEngine_ContactZoneChangedKeepsTheDayCap(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to string
		call     time.Time // the first call
		later    time.Duration
		next     time.Time // the window's start of the next date in to
	}{
		{"East", "America/New_York", "Asia/Tokyo", time.Date(2026, 1, 5, 23, 0, 0, 0, time.UTC), 2 * time.Hour,
			time.Date(2026, 1, 7, 0, 0, 0, 0, time.UTC)},
		{"West", "Asia/Tokyo", "America/New_York", time.Date(2026, 1, 6, 1, 0, 0, 0, time.UTC), 30 * time.Minute,
			time.Date(2026, 1, 6, 14, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			onBothStores(t, func(t *testing.T, b *testBundle) {
				b.clock.Advance(tc.call.Sub(b.clock.Now()))
				p := b.pool(t, pool.FIFO, 1, 5)
				r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(1), MaxTotalCalls: pqPtr(10),
					RetryIntervalMinutes: pqPtr(1), StartTime: pqPtr("09:00"), EndTime: pqPtr("21:00")})
				b.startedCampaignIn(t, "UTC", r.UUID, p.UUID)
				contact := b.addIn(t, p.UUID, tc.from)
				l, err := b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err)
				require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))

				n, err := b.eng.Remove(b.ctx, p.UUID, contact)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				_, err = b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: contact, Contact: pool.Contact{TimeZone: tc.to}})
				require.NoError(t, err)

				b.clock.Advance(tc.later)
				_, err = b.eng.TryDequeue(b.ctx, p.UUID)
				require.ErrorIs(t, err, queue.ErrEmpty, "a second call on one date in %s, max 1", tc.to)
				it := b.item(t, p.UUID, contact)
				require.Equal(t, pool.StatusScheduled, it.Status)
				require.Equal(t, tc.next, *it.NextRetryAt)

				b.clock.Advance(tc.next.Sub(b.clock.Now()) - time.Second)
				_, err = b.eng.TryDequeue(b.ctx, p.UUID)
				require.ErrorIs(t, err, queue.ErrEmpty)
				b.clock.Advance(time.Second)
				l, err = b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err, "the next date in %s", tc.to)
				require.Equal(t, contact, l.ContactUUID)
			})
		})
	}
}
