package queue_test

import (
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_OlderDayOfAnotherPool: the older calling day's count of a
// contact's item in one pool of a campaign counts against the contact's
// cap in another pool, whether that item is still in the campaign or its
// pool was detached (the calls kept of it). The campaign's default zone
// moves between the calls made in pool A: 23:30 on January 10th and 00:30
// on the 11th in Tokyo (14:30Z, 15:30Z), 00:15 on the 11th in Kolkata
// (18:45Z), 00:15 on the 11th in London (00:15Z): each starts a new date,
// and the first two are the older day's when the fourth is made. In
// Kiritimati all four are on January 11th (04:30 to 14:15), as is 00:30Z
// there: with max_calls_per_day 4, the contact's item in pool B is not
// called then.
func TestEngine_OlderDayOfAnotherPool(t *testing.T) {
	t.Parallel()
	for _, detach := range []bool{false, true} {
		name := "Attached"
		if detach {
			name = "Detached"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			onBothStores(t, func(t *testing.T, b *testBundle) {
				first := time.Date(2026, 1, 10, 14, 30, 0, 0, time.UTC)
				b.clock.Advance(first.Sub(b.clock.Now()))
				pa, pb := b.pool(t, pool.FIFO, 1, 20), b.pool(t, pool.FIFO, 1, 20)
				r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(4), MaxTotalCalls: pqPtr(20),
					RetryIntervalMinutes: pqPtr(1), StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
				c := b.startedCampaignIn(t, "Asia/Tokyo", r.UUID, pa.UUID, pb.UUID)
				contact := b.addIn(t, pa.UUID, "")
				_, err := b.eng.Add(b.ctx, pb.UUID, pool.NewItem{ContactUUID: contact})
				require.NoError(t, err)

				zone := func(z string) {
					t.Helper()
					_, err := b.eng.UpdateCampaign(b.ctx, c.UUID, campaign.UpdateParams{TimeZone: pqPtr(z)})
					require.NoError(t, err)
				}
				for _, call := range []struct {
					zone string
					at   time.Time
				}{
					{"Asia/Tokyo", first},
					{"Asia/Tokyo", first.Add(time.Hour)},
					{"Asia/Kolkata", first.Add(4*time.Hour + 15*time.Minute)},
					{"Europe/London", first.Add(9*time.Hour + 45*time.Minute)},
				} {
					zone(call.zone)
					b.clock.Advance(call.at.Sub(b.clock.Now()))
					l, err := b.eng.TryDequeue(b.ctx, pa.UUID)
					require.NoError(t, err, "the call at %v in %s", call.at, call.zone)
					require.Equal(t, contact, l.Item.ContactUUID)
					require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer", RetryAt: call.at.Add(time.Minute)}))
				}
				it := b.item(t, pa.UUID, contact)
				require.Equal(t, 1, it.CallsToday)
				require.Equal(t, 1, it.PrevCallsToday)
				require.Equal(t, 2, it.OlderCallsToday, "the first day's call held with the second's")
				if detach {
					_, err := b.eng.DetachPool(b.ctx, c.UUID, pa.UUID)
					require.NoError(t, err)
				}

				zone("Pacific/Kiritimati")
				b.clock.Advance(15 * time.Minute) // 00:30Z: 14:30 on January 11th in Kiritimati
				_, err = b.eng.TryDequeue(b.ctx, pb.UUID)
				require.Error(t, err, "a fifth call on January 11th in Kiritimati, max 4")
				itB := b.item(t, pb.UUID, contact)
				require.Equal(t, pool.StatusScheduled, itB.Status)
				require.NotNil(t, itB.NextRetryAt)
				require.Equal(t, time.Date(2026, 1, 11, 10, 0, 0, 0, time.UTC), *itB.NextRetryAt, "00:00 on January 12th in Kiritimati")
			})
		})
	}
}
