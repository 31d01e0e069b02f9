package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// governed creates a pool of typ under a running campaign with rule p
// (campaign default zone zone) and returns it.
func (b *testBundle) governed(t *testing.T, typ pool.Type, zone string, p campaign.CreateRuleParams) (pool.Pool, campaign.Rule) {
	t.Helper()
	pl := b.pool(t, typ, 10, 3)
	r := b.rule(t, p)
	c, err := b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: "Rules", RuleUUID: &r.UUID, TimeZone: zone})
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, pl.UUID)
	require.NoError(t, err)
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	return pl, r
}

// addIn adds one contact in zone (its own; "" for none) and returns it.
func (b *testBundle) addIn(t *testing.T, p uuid.UUID, zone string) uuid.UUID {
	t.Helper()
	c := uuid.New()
	_, err := b.eng.Add(b.ctx, p, pool.NewItem{ContactUUID: c, Contact: pool.Contact{TimeZone: zone}})
	require.NoError(t, err)
	return c
}

func at(t *testing.T, zone, local string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	v, err := time.ParseInLocation(time.DateTime, local, loc)
	require.NoError(t, err)
	return v.UTC()
}

// TestEngine_CallingWindow: an item due outside its contact's window is
// Scheduled for the window's next start, in the claim's transaction, and
// the claim goes on to the next item; the contact's zone comes first, the
// campaign's default next, then UTC.
func TestEngine_CallingWindow(t *testing.T) {
	oneGoroutine(t)
	b := setup(t) // 2026-01-02 09:00 UTC
	p, _ := b.governed(t, pool.FIFO, "Asia/Kolkata", campaign.CreateRuleParams{
		StartTime: new("09:00"), EndTime: new("17:00"),
	})
	ny := b.addIn(t, p.UUID, "America/New_York") // 04:00 there
	kolkata := b.addIn(t, p.UUID, "")            // the campaign's zone: 14:30 there
	utc := b.addIn(t, p.UUID, "UTC")             // 09:00

	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, kolkata, l.ContactUUID, "New York sleeps: the next one goes")
	it := b.item(t, p.UUID, ny)
	require.Equal(t, pool.StatusScheduled, it.Status)
	require.Equal(t, at(t, "America/New_York", "2026-01-02 09:00:00"), *it.NextRetryAt)
	require.Equal(t, 0, it.Attempts)
	require.NoError(t, b.eng.Complete(b.ctx, l, ""))

	l, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, utc, l.ContactUUID)
	require.NoError(t, b.eng.Complete(b.ctx, l, ""))
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty)

	b.clock.Advance(5*time.Hour - time.Second) // 08:59:59 in New York
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty)
	b.clock.Advance(time.Second)
	l, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, ny, l.ContactUUID, "at the window's start")
}

// TestEngine_CallingWindowDST: a window start that a DST change skips is
// met at the change; a repeated one at its first occurrence (DESIGN.md), as
// each store keeps and gives back the instant: the item is due then.
func TestEngine_CallingWindowDST(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, zone, start, now, want string
	}{
		// 2026-03-08 02:00 EST does not exist: clocks go to 03:00 EDT.
		{"SpringForward", "America/New_York", "02:30", "2026-03-08 01:00:00", "2026-03-08 07:00:00"},
		// 2026-11-01 01:30 happens twice: EDT (05:30 UTC), then EST.
		{"FallBack", "America/New_York", "01:30", "2026-11-01 00:00:00", "2026-11-01 05:30:00"},
		// 2026-09-27 02:45 NZST does not exist in Chatham (+12:45 → +13:45).
		{"ChathamForward", "Pacific/Chatham", "02:50", "2026-09-27 01:00:00", "2026-09-26 14:00:00"},
		// 2026-04-05 02:30 happens twice in Auckland: NZDT first.
		{"AucklandBack", "Pacific/Auckland", "02:30", "2026-04-05 01:00:00", "2026-04-04 13:30:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			onBothStores(t, func(t *testing.T, b *testBundle) {
				p, _ := b.governed(t, pool.Parallel, "", campaign.CreateRuleParams{StartTime: new(tc.start), EndTime: new("23:00")})
				b.clock.Advance(at(t, tc.zone, tc.now).Sub(b.clock.Now()))
				c := b.addIn(t, p.UUID, tc.zone)
				_, err := b.eng.TryDequeue(b.ctx, p.UUID)
				require.ErrorIs(t, err, queue.ErrEmpty)
				it := b.item(t, p.UUID, c)
				require.Equal(t, pool.StatusScheduled, it.Status)
				want, err := time.Parse(time.DateTime, tc.want)
				require.NoError(t, err)
				require.Equal(t, want, *it.NextRetryAt, "in %s: %s", tc.zone, it.NextRetryAt.In(func() *time.Location { l, _ := time.LoadLocation(tc.zone); return l }()))
				b.clock.Advance(it.NextRetryAt.Sub(b.clock.Now()))
				l, err := b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err, "due at the instant it was scheduled for")
				require.Equal(t, c, l.ContactUUID)
			})
		})
	}
}

// TestEngine_DayCap: max_calls_per_day attempts per local day; the next
// is Scheduled for the next day's window start, and a release gives its
// attempt back.
func TestEngine_DayCap(t *testing.T) {
	oneGoroutine(t)
	b := setup(t) // 09:00 UTC
	p, _ := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{
		MaxCallsPerDay: new(2), MaxTotalCalls: new(10), RetryIntervalMinutes: new(30),
		StartTime: new("08:00"), EndTime: new("20:00"),
	})
	c := b.addIn(t, p.UUID, "")

	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Release(b.ctx, l)) // given back: not one of the day's
	for i := 1; i <= 2; i++ {
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err, "attempt %d", i)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		if i == 1 {
			require.Equal(t, pool.StatusRetrying, l.Item.Status)
			require.Equal(t, b.clock.Now().Add(30*time.Minute), *l.Item.NextRetryAt)
			b.clock.Advance(30 * time.Minute)
		}
	}
	it := b.item(t, p.UUID, c)
	require.Equal(t, pool.StatusScheduled, it.Status, "the day's cap reached")
	require.Equal(t, time.Date(2026, 1, 3, 8, 0, 0, 0, time.UTC), *it.NextRetryAt, "next day's window start")

	// Requeue keeps the day's count: a recycled lead is not called a
	// third time today.
	_, err = b.eng.Skip(b.ctx, p.UUID, c, "operator")
	require.NoError(t, err)
	_, err = b.eng.Requeue(b.ctx, p.UUID, c)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty)
	it = b.item(t, p.UUID, c)
	require.Equal(t, pool.StatusScheduled, it.Status)
	require.Equal(t, time.Date(2026, 1, 3, 8, 0, 0, 0, time.UTC), *it.NextRetryAt)
}

// TestEngine_RetryIntoWindow: a retry interval or a caller's callback
// time that falls outside the window is moved to the next window start,
// Scheduled.
func TestEngine_RetryIntoWindow(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	b.clock.Advance(8 * time.Hour) // 17:00 UTC
	p, _ := b.governed(t, pool.Parallel, "", campaign.CreateRuleParams{
		RetryIntervalMinutes: new(90), StartTime: new("09:00"), EndTime: new("18:00"),
	})
	c1, c2 := b.addIn(t, p.UUID, ""), b.addIn(t, p.UUID, "")
	ls, err := b.eng.DequeueN(b.ctx, p.UUID, 2)
	require.NoError(t, err)
	require.Len(t, ls, 2)
	require.NoError(t, b.eng.Fail(b.ctx, ls[0], queue.Failure{Note: "busy"}))
	require.NoError(t, b.eng.Fail(b.ctx, ls[1], queue.Failure{Note: "call me at 21:00", RetryAt: b.clock.Now().Add(4 * time.Hour)}))
	nextStart := time.Date(2026, 1, 3, 9, 0, 0, 0, time.UTC)
	for _, c := range []uuid.UUID{c1, c2} {
		it := b.item(t, p.UUID, c)
		require.Equal(t, pool.StatusScheduled, it.Status)
		require.Equal(t, nextStart, *it.NextRetryAt)
	}
}

// TestEngine_DNC: with dnc_check, a contact on the list is Skipped when
// dispatch meets it; without, it is dialled; a pool no rule governs
// ignores the list.
func TestEngine_DNC(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	checked, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{})
	unchecked, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{DNCCheck: new(false)})
	plain := b.pool(t, pool.FIFO, 1, 0)
	c := uuid.New()
	for _, p := range []uuid.UUID{checked.UUID, unchecked.UUID, plain.UUID} {
		_, err := b.eng.Add(b.ctx, p, pool.NewItem{ContactUUID: c})
		require.NoError(t, err)
	}
	other := b.addIn(t, checked.UUID, "")

	n, err := b.eng.AddDNC(b.ctx, c, c)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	on, err := b.eng.IsDNC(b.ctx, c)
	require.NoError(t, err)
	require.True(t, on)
	require.Equal(t, pool.StatusPending, b.item(t, checked.UUID, c).Status, "skipped when dispatch meets it, not before")

	l, err := b.eng.TryDequeue(b.ctx, checked.UUID)
	require.NoError(t, err)
	require.Equal(t, other, l.ContactUUID)
	it := b.item(t, checked.UUID, c)
	require.Equal(t, pool.StatusSkipped, it.Status)
	require.Equal(t, campaign.NoteDNC, it.Notes)
	for _, p := range []uuid.UUID{unchecked.UUID, plain.UUID} {
		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID)
	}

	page, err := b.eng.DNC(b.ctx, campaign.DNCQuery{})
	require.NoError(t, err)
	require.Equal(t, 1, page.Total)
	require.Equal(t, c, page.Data[0].ContactUUID)
	n, err = b.eng.RemoveDNC(b.ctx, c)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	on, err = b.eng.IsDNC(b.ctx, c)
	require.NoError(t, err)
	require.False(t, on)

	_, err = b.eng.AddDNC(b.ctx, uuid.Nil)
	require.Equal(t, []string{"contact_uuids[0]"}, fieldsOf(t, err))
	_, err = b.eng.AddDNC(b.ctx)
	require.ErrorIs(t, err, validate.ErrInvalid)
}

// TestEngine_OptOut: waiting items of the contact in pools whose rule
// removes opted-out contacts are Skipped at once; one in flight finishes
// its attempt, and a failure skips it instead of retrying.
func TestEngine_OptOut(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{})
	flight, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{})
	keep, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{RemoveOnOptOut: new(false)})
	c := uuid.New()
	for _, p := range []uuid.UUID{a.UUID, flight.UUID, keep.UUID} {
		_, err := b.eng.Add(b.ctx, p, pool.NewItem{ContactUUID: c})
		require.NoError(t, err)
	}
	l, err := b.eng.TryDequeue(b.ctx, flight.UUID)
	require.NoError(t, err)

	n, err := b.eng.OptOut(b.ctx, c)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	it := b.item(t, a.UUID, c)
	require.Equal(t, pool.StatusSkipped, it.Status)
	require.Equal(t, campaign.NoteOptOut, it.Notes)
	require.Equal(t, pool.StatusProcessing, b.item(t, flight.UUID, c).Status, "its attempt goes on")
	require.Equal(t, pool.StatusPending, b.item(t, keep.UUID, c).Status)

	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	it = b.item(t, flight.UUID, c)
	require.Equal(t, pool.StatusSkipped, it.Status, "not retried")
	require.Equal(t, campaign.NoteOptOut, it.Notes)

	n, err = b.eng.OptOut(b.ctx, c)
	require.NoError(t, err)
	require.Equal(t, 0, n, "twice is harmless")

	// A call whose lease ended: the expiry OptOut applies is a failure,
	// which skips the item; it counts.
	ended, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{})
	d := uuid.New()
	_, err = b.eng.Add(b.ctx, ended.UUID, pool.NewItem{ContactUUID: d})
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, ended.UUID)
	require.NoError(t, err)
	b.clock.Advance(testLease + time.Second)
	n, err = b.eng.OptOut(b.ctx, d)
	require.NoError(t, err)
	require.Equal(t, pool.StatusSkipped, b.item(t, ended.UUID, d).Status)
	require.Equal(t, 1, n, "skipped by the expiry of its ended lease")
}

// TestEngine_Escalation: the failure that brings an item's failed
// attempts to the threshold records one escalation, delivered to a
// watcher after commit and listed for one that was away; never another
// for that item, never one at threshold 0.
func TestEngine_Escalation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, r := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{
		MaxTotalCalls: new(5), MaxCallsPerDay: new(5), RetryIntervalMinutes: new(1), EscalationAfterFailedAttempts: new(2),
		EscalationType: new("supervisor"), EscalationTarget: new("ops@example.com"),
	})
	never, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{MaxCallsPerDay: new(5), EscalationAfterFailedAttempts: new(0)})
	c := b.addIn(t, p.UUID, "")
	b.addIn(t, never.UUID, "")

	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	seen := make(chan campaign.Escalation, 10)
	done := make(chan error, 1)
	go func() {
		done <- b.eng.WatchEscalations(ctx, 0, func(e campaign.Escalation) error { seen <- e; return nil })
	}()

	for attempt := 1; attempt <= 4; attempt++ {
		for _, id := range []uuid.UUID{p.UUID, never.UUID} {
			l, err := b.eng.TryDequeue(b.ctx, id)
			require.NoError(t, err, "attempt %d", attempt)
			require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		}
		b.clock.Advance(2 * time.Hour)
	}
	select {
	case e := <-seen:
		require.Equal(t, c, e.ContactUUID)
		require.Equal(t, p.UUID, e.PoolUUID)
		require.Equal(t, r.UUID, e.RuleUUID)
		require.Equal(t, "supervisor", e.Type)
		require.Equal(t, "ops@example.com", e.Target)
		require.Equal(t, 2, e.FailedAttempts)
	case <-time.After(5 * time.Second):
		t.Fatal("no escalation delivered")
	}
	list, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, list, 1, "one per item, whatever its later failures")
	later, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{After: list[0].ID})
	require.NoError(t, err)
	require.Empty(t, later)
	select {
	case e := <-seen:
		t.Fatalf("a second escalation delivered: %+v", e)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

// TestEngine_SleepingZoneDeferrals: more sleeping items than one claim
// transaction may move (maxDeferrals, 1000) ahead of an awake one: the
// claim commits what it moved and goes on until it finds the awake one.
func TestEngine_SleepingZoneDeferrals(t *testing.T) {
	t.Parallel()
	b := setup(t) // 09:00 UTC: 04:00 in New York
	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{StartTime: new("09:00"), EndTime: new("17:00")})
	items := make([]pool.NewItem, 2500)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{TimeZone: "America/New_York"}}
	}
	_, err := b.eng.Add(b.ctx, p.UUID, items...)
	require.NoError(t, err)
	awake := b.addIn(t, p.UUID, "Europe/Paris") // 10:00 there

	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, awake, l.ContactUUID)
	counts := b.counts(t, p.UUID)
	require.Equal(t, 2500, counts[pool.StatusScheduled])
	require.Equal(t, 1, counts[pool.StatusProcessing])
}

// TestEngine_TextRuleOneAttempt: a text rule allows one attempt.
func TestEngine_TextRuleOneAttempt(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{Type: campaign.Text, MaxTotalCalls: new(5)})
	c := b.addIn(t, p.UUID, "")
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "undelivered"}))
	require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, c).Status)
}

// TestEngine_DequeueWakesAtWindowStart: a Dequeue blocked on a pool whose
// only item sleeps (deferred to its window's start) wakes at that start by
// itself, on the real clock, without a safety poll.
func TestEngine_DequeueWakesAtWindowStart(t *testing.T) {
	t.Parallel()
	// The engine's clock runs with the real one, 300 ms before 09:00 UTC.
	start := time.Now()
	base := time.Date(2026, 1, 2, 8, 59, 59, 700_000_000, time.UTC)
	now := func() time.Time { return base.Add(time.Since(start)) }
	b := realEngine(t, queue.Options{PollInterval: time.Hour, Now: now})
	p, _ := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{StartTime: new("09:00"), EndTime: new("18:00")})
	c := b.addIn(t, p.UUID, "")

	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	l, err := b.eng.Dequeue(ctx, p.UUID)
	require.NoError(t, err, "woken at the window's start")
	require.Equal(t, c, l.ContactUUID)
	require.False(t, now().Before(time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)), "not before the window opened")
	require.Less(t, time.Since(start), 3*time.Second)
}

// TestEngine_ReleaseOfAConnectedCall: Release refuses an item In_Call (the
// contact picked up: the attempt was made) and changes nothing, so the
// contact is not called again against the rule's day cap and ceiling;
// failing it then counts the attempt.
func TestEngine_ReleaseOfAConnectedCall(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p, _ := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(1), MaxTotalCalls: pqPtr(1),
		StartTime: pqPtr("08:00"), EndTime: pqPtr("20:00")})
	contact := b.addIn(t, p.UUID, "")
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.MarkInCall(b.ctx, l))
	before := b.item(t, p.UUID, contact)

	require.ErrorIs(t, b.eng.Release(b.ctx, l), queue.ErrWrongStatus)
	require.Equal(t, before, b.item(t, p.UUID, contact), "a refused release changes nothing")
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty, "its one item is still in call, not due again")

	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "hung up"}))
	it := b.item(t, p.UUID, contact)
	require.Equal(t, pool.StatusFailed, it.Status, "its one call was made")
	require.Equal(t, 1, it.Attempts)
}

// TestEngine_DayCapAcrossAnUngovernedGiveBack: a dispatch made while no
// rule governed the pool counted no call of the day, so giving it back
// takes none back: once attached again the same day, the contact gets only
// what is left of max_calls_per_day. (Release took a call off the count
// whatever dispatch had made it: a third call on a day capped at two.)
func TestEngine_DayCapAcrossAnUngovernedGiveBack(t *testing.T) {
	oneGoroutine(t)
	b := setup(t) // 2026-01-02 09:00 UTC
	p := b.pool(t, pool.FIFO, 1, 5)
	r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(2), MaxTotalCalls: pqPtr(10),
		RetryIntervalMinutes: pqPtr(10), StartTime: pqPtr("08:00"), EndTime: pqPtr("20:00")})
	c := b.campaignOf(t, r.UUID, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	contact := b.addIn(t, p.UUID, "UTC")

	governed := 0
	l, err := b.eng.TryDequeue(b.ctx, p.UUID) // the day's first call
	require.NoError(t, err)
	governed++
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	b.clock.Advance(10 * time.Minute)

	_, err = b.eng.DetachPool(b.ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	l, err = b.eng.TryDequeue(b.ctx, p.UUID) // ungoverned: counts nothing
	require.NoError(t, err)
	require.NoError(t, b.eng.Release(b.ctx, l))
	require.Equal(t, 1, b.item(t, p.UUID, contact).CallsToday, "the governed call stays counted")

	_, err = b.eng.AttachPools(b.ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	for range 3 {
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		if err != nil {
			break
		}
		governed++
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		b.clock.Advance(10 * time.Minute)
	}
	require.Equal(t, 2, governed, "governed calls on 2026-01-02 with max_calls_per_day 2")
}

// TestEngine_DayCapAcrossAZoneChange: the campaign's default zone is
// corrected from Los Angeles to Tokyo after a zone-less contact's call at
// 21:00 on January 2nd in Los Angeles, 14:00 on January 3rd in Tokyo: that
// call still counts on Tokyo's January 3rd, so with max_calls_per_day 2
// the contact gets one more call there that day, not two. (The count was
// keyed by the Los Angeles date and started again under Tokyo's.)
func TestEngine_DayCapAcrossAZoneChange(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)                   // 2026-01-02 09:00 UTC
	b.clock.Advance(20 * time.Hour) // 2026-01-03 05:00 UTC
	p := b.pool(t, pool.FIFO, 1, 5)
	r := b.rule(t, campaign.CreateRuleParams{MaxCallsPerDay: pqPtr(2), MaxTotalCalls: pqPtr(10),
		RetryIntervalMinutes: pqPtr(30), StartTime: pqPtr("09:00"), EndTime: pqPtr("23:00")})
	c := b.startedCampaignIn(t, "America/Los_Angeles", r.UUID, p.UUID)
	b.addIn(t, p.UUID, "")

	tokyo, err := time.LoadLocation("Asia/Tokyo")
	require.NoError(t, err)
	var calls []string
	call := func() {
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		if err != nil {
			return
		}
		calls = append(calls, b.clock.Now().In(tokyo).Format(time.DateTime))
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	}
	call() // 21:00 on January 2nd in Los Angeles
	_, err = b.eng.UpdateCampaign(b.ctx, c.UUID, campaign.UpdateParams{TimeZone: pqPtr("Asia/Tokyo")})
	require.NoError(t, err)
	for range 3 {
		b.clock.Advance(30 * time.Minute)
		call()
	}
	require.Equal(t, []string{"2026-01-03 14:00:00", "2026-01-03 14:30:00"}, calls,
		"calls on January 3rd in Tokyo with max_calls_per_day 2")
}

// TestEngine_CallingWindowLeapYearEnd: on 31 December UTC of a leap year
// Go's zone rules report a zone's offset as ending before the instant read
// (golang/go#81583). A claim then must still schedule a sleeping contact
// at its window's start and return, not call it at night nor loop in the
// claim's transaction.
func TestEngine_CallingWindowLeapYearEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{StartTime: new("09:00"), EndTime: new("17:00")})
	b.clock.Advance(time.Date(2028, 12, 31, 15, 0, 0, 0, time.UTC).Sub(b.clock.Now())) // 02:00 on 1 January in Sydney
	c := b.addIn(t, p.UUID, "Australia/Sydney")
	errc := make(chan error, 1)
	go func() {
		_, err := b.eng.TryDequeue(b.ctx, p.UUID)
		errc <- err
	}()
	select {
	case err := <-errc:
		require.ErrorIs(t, err, queue.ErrEmpty, "02:00 in Sydney: nobody is called")
	case <-time.After(30 * time.Second):
		t.Fatal("TryDequeue did not return within 30 s")
	}
	it := b.item(t, p.UUID, c)
	require.Equal(t, pool.StatusScheduled, it.Status)
	require.Equal(t, at(t, "Australia/Sydney", "2029-01-01 09:00:00"), *it.NextRetryAt)
}
