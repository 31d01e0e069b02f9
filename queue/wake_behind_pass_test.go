package queue_test

import (
	"context"
	"sync/atomic"
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

// TestWakeWithClockBehind_PassedItem: as TestPostgres_WakeWithClockBehind,
// on one SQLite engine whose clock steps back 2 s, in a pool of a running
// campaign whose due set also holds an item passed over (its contact is in
// a call from the campaign's other pool: one call at a time). A claim at
// the later clock marked two retries due and took one; at the earlier
// clock a blocked Dequeue finds the passed item and nothing it may claim,
// and must still wake at the other retry's time (PollInterval is an hour).
// A Due that returns only items passed over finds nothing to claim, yet
// does not give the marked retry back to NextWake.
func TestWakeWithClockBehind_PassedItem(t *testing.T) {
	t.Parallel()
	testWakeWithClockBehindPassed(t, openFileStore(t, ""))
}

// TestPostgres_WakeWithClockBehind_PassedItem is the same on PostgreSQL.
func TestPostgres_WakeWithClockBehind_PassedItem(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	testWakeWithClockBehindPassed(t, pgtest.Open(t, url, postgres.Options{}))
}

func testWakeWithClockBehindPassed(t *testing.T, st store.Store) {
	ctx := context.Background()
	var ahead atomic.Int64
	eng := openEngine(t, st, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour,
		Now: func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }})

	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "all day", StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"),
		MaxCallsPerDay: pqPtr(9)})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "two pools", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	five := 5
	p1, err := eng.CreatePool(ctx, pool.CreateParams{Name: "first", Description: "d", Type: pool.Parallel, MaxParallelItems: &five})
	require.NoError(t, err)
	p2, err := eng.CreatePool(ctx, pool.CreateParams{Name: "second", Description: "d", Type: pool.Parallel, MaxParallelItems: &five})
	require.NoError(t, err)
	items := newItems(3) // x, y1, y2
	_, err = eng.Add(ctx, p1.UUID, items...)
	require.NoError(t, err)
	_, err = eng.Add(ctx, p2.UUID, items[0]) // x in both pools
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, p1.UUID, p2.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	x := mustTry(t, eng, p2.UUID) // x in a call from the second pool, for an hour
	require.Equal(t, items[0].ContactUUID, x.ContactUUID)
	y1, y2 := mustTry(t, eng, p1.UUID), mustTry(t, eng, p1.UUID) // x passed over
	require.NotEqual(t, x.ContactUUID, y1.ContactUUID)
	require.NotEqual(t, x.ContactUUID, y2.ContactUUID)

	t0 := time.Now()
	retryAt := t0.Add(2500 * time.Millisecond)
	require.NoError(t, eng.Fail(ctx, y1, queue.Failure{RetryAt: retryAt}))
	require.NoError(t, eng.Fail(ctx, y2, queue.Failure{RetryAt: retryAt}))

	ahead.Store(int64(2 * time.Second)) // the clock 2 s ahead: past the retry time at t0+0.5 s
	time.Sleep(time.Until(t0.Add(600 * time.Millisecond)))
	l := mustTry(t, eng, p1.UUID) // promotes both retries, takes one
	require.NoError(t, eng.Complete(ctx, l, "ok"))
	ahead.Store(0) // stepped back: the other retry is not due yet

	got := blockedDequeue(t, eng, p1.UUID)
	select {
	case r := <-got:
		require.NoError(t, r.err)
		require.False(t, r.at.Before(retryAt.Add(-100*time.Millisecond)), "claimed %v before the retry time", retryAt.Sub(r.at))
		t.Logf("claimed %v after the retry time", r.at.Sub(retryAt).Round(time.Millisecond))
	case <-time.After(time.Until(retryAt) + 3*time.Second):
		t.Fatal("the blocked Dequeue, its clock behind the claim that marked the retry due, was not woken at the retry time (PollInterval is an hour): the Due found only the passed item, and left the retry marked")
	}
}
