package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// onBothStores runs fn on an engine with a fake clock over SQLite, and
// over PostgreSQL when POOLQ_TEST_POSTGRES is set.
func onBothStores(t *testing.T, fn func(t *testing.T, b *testBundle)) {
	t.Helper()
	open := func(t *testing.T, st store.Store) *testBundle {
		c := newClock()
		eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
		return &testBundle{ctx: context.Background(), eng: eng, clock: c}
	}
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		fn(t, open(t, openFileStore(t, "")))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		fn(t, open(t, pgtest.Open(t, url, postgres.Options{MaxConns: 4})))
	})
}

// TestEngine_DayCapAfterAZoneMovedWest: the campaign's default zone is
// corrected from Tokyo to Los Angeles. The contact's calls at 22:00 on
// January 2nd and 09:00 on January 3rd in Tokyo were both on January 2nd
// in Los Angeles (05:00 and 16:00): with max_calls_per_day 2, January 2nd
// in Los Angeles has no call left. README: "when that zone changes ...,
// the calls made count on the date they fall on in the new zone, so a
// contact is never called past the cap on one local date".
func TestEngine_DayCapAfterAZoneMovedWest(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		b.clock.Advance(4 * time.Hour) // 2026-01-02 13:00 UTC: 22:00 in Tokyo
		p := b.pool(t, pool.FIFO, 1, 5)
		r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(2), MaxTotalCalls: pqPtr(10),
			RetryIntervalMinutes: pqPtr(60), StartTime: pqPtr("09:00"), EndTime: pqPtr("23:00")})
		c := b.startedCampaignIn(t, "Asia/Tokyo", r.UUID, p.UUID)
		b.addIn(t, p.UUID, "")

		la, err := time.LoadLocation("America/Los_Angeles")
		require.NoError(t, err)
		var calls []string
		call := func() {
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			if errors.Is(err, queue.ErrEmpty) {
				return
			}
			require.NoError(t, err)
			calls = append(calls, b.clock.Now().In(la).Format(time.DateTime))
			require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		}
		call()                          // 22:00 Jan 2 in Tokyo, 05:00 Jan 2 in Los Angeles
		b.clock.Advance(11 * time.Hour) // 09:00 Jan 3 in Tokyo, 16:00 Jan 2 in Los Angeles
		call()
		_, err = b.eng.UpdateCampaign(b.ctx, c.UUID, campaign.UpdateParams{TimeZone: pqPtr("America/Los_Angeles")})
		require.NoError(t, err)
		for range 3 {
			b.clock.Advance(time.Hour) // 17:00, 18:00, 19:00 Jan 2 in Los Angeles
			call()
		}
		require.Equal(t, []string{"2026-01-02 05:00:00", "2026-01-02 16:00:00"}, calls,
			"calls on January 2nd in Los Angeles with max_calls_per_day 2")
	})
}

// TestEngine_DayCapAfterAContactReAddedWest: the host corrects a
// contact's zone the only way poolq offers, Remove and Add again with the
// new zone (the calls removed are kept for the campaign). The contact's
// calls at 22:00 on January 2nd and 09:00 on January 3rd in Tokyo were
// both on January 2nd in Los Angeles: with max_calls_per_day 2 it gets no
// third call there that day.
func TestEngine_DayCapAfterAContactReAddedWest(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		b.clock.Advance(4 * time.Hour) // 2026-01-02 13:00 UTC: 22:00 in Tokyo
		p := b.pool(t, pool.FIFO, 1, 5)
		r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(2), MaxTotalCalls: pqPtr(10),
			RetryIntervalMinutes: pqPtr(60), StartTime: pqPtr("09:00"), EndTime: pqPtr("23:00")})
		c := b.campaignOf(t, r.UUID, p.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		contact := b.addIn(t, p.UUID, "Asia/Tokyo")

		la, err := time.LoadLocation("America/Los_Angeles")
		require.NoError(t, err)
		var calls []string
		call := func() {
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			if errors.Is(err, queue.ErrEmpty) {
				return
			}
			require.NoError(t, err)
			calls = append(calls, b.clock.Now().In(la).Format(time.DateTime))
			require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		}
		call()                          // 22:00 Jan 2 in Tokyo, 05:00 Jan 2 in Los Angeles
		b.clock.Advance(11 * time.Hour) // 09:00 Jan 3 in Tokyo, 16:00 Jan 2 in Los Angeles
		call()
		n, err := b.eng.Remove(b.ctx, p.UUID, contact)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: contact, Contact: pool.Contact{TimeZone: "America/Los_Angeles"}})
		require.NoError(t, err)
		for range 3 {
			b.clock.Advance(time.Hour) // 17:00, 18:00, 19:00 Jan 2 in Los Angeles
			call()
		}
		require.Equal(t, []string{"2026-01-02 05:00:00", "2026-01-02 16:00:00"}, calls,
			"calls on January 2nd in Los Angeles with max_calls_per_day 2")
	})
}

// TestEngine_OptedOutFailureSchedulesNoRetry: a failure that the contact's
// opt-out turns into Skipped ends the item: it scheduled no retry, so
// retry_count (the API's, shown in the pool's items) does not count one
// (pool.Item.RetryCount: "a failure that ends the item does not count").
func TestEngine_OptedOutFailureSchedulesNoRetry(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p, _ := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{StartTime: pqPtr("08:00"), EndTime: pqPtr("20:00")})
		c := b.addIn(t, p.UUID, "")
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		_, err = b.eng.OptOut(b.ctx, c)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		it := b.item(t, p.UUID, c)
		require.Equal(t, pool.StatusSkipped, it.Status)
		require.Equal(t, 0, it.RetryCount, "no retry was scheduled")
	})
}
