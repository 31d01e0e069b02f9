package campaign_test

import (
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestRule_Gate: a rule's gate is its window and its max_calls_per_day
// (not its max_total_calls), in the zone given.
func TestRule_Gate(t *testing.T) {
	t.Parallel()
	r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Daytime",
		MaxCallsPerDay: ptr(2), MaxTotalCalls: ptr(7), StartTime: ptr("08:30"), EndTime: ptr("20:15")}, t0)
	require.NoError(t, err)
	loc := zone(t, "Europe/Paris")
	g := r.Gate(loc)
	require.Equal(t, campaign.Gate{Window: r.Window(), PerDay: 2, Loc: loc}, g)
}

// TestGate_EarliestPerDayBelowOne: a gate whose PerDay is below 1 (no
// rule's: validation asks for 1 or more) allows no call on the date of
// t's window: Earliest moves one date on, and returns.
func TestGate_EarliestPerDayBelowOne(t *testing.T) {
	t.Parallel()
	for _, perDay := range []int{0, -1} {
		g := campaign.Gate{Window: window(t, "09:00-18:00"), PerDay: perDay, Loc: zone(t, "America/New_York")}
		// 2026-06-10 is EDT (UTC-4): 09:00 local is 13:00Z.
		for _, it := range []pool.Item{{}, {CallsToday: 1, CallAt: utc(t, "2026-06-10T14:00:00Z")}} {
			require.Equal(t, utc(t, "2026-06-11T13:00:00Z"), g.Earliest(it, utc(t, "2026-06-10T16:00:00Z")),
				"PerDay %d, %d calls today", perDay, it.CallsToday)
		}
	}
}

// TestGate_AdmitCallAtUTC: the call Admit counts is kept in UTC, whatever
// the location of the now it is given, as poolq keeps every time.
func TestGate_AdmitCallAtUTC(t *testing.T) {
	t.Parallel()
	g := nyGate(t)
	now := utc(t, "2026-06-10T16:00:00Z").In(g.Loc)
	out, _, ok := g.Admit(pool.Item{Status: pool.StatusPending}, now)
	require.True(t, ok)
	require.True(t, out.CallAt.Equal(now))
	require.Equal(t, time.UTC, out.CallAt.Location())
}

// TestGate_RetryWithoutRetryTime: a Retrying or Scheduled item without a
// retry time has no retry to move: Retry returns it as it is.
func TestGate_RetryWithoutRetryTime(t *testing.T) {
	t.Parallel()
	g := nyGate(t)
	now := utc(t, "2026-06-11T02:00:00Z") // 22:00 in New York: closed
	for _, s := range []pool.Status{pool.StatusRetrying, pool.StatusScheduled} {
		in := pool.Item{Status: s, CallsToday: 2, CallAt: utc(t, "2026-06-10T16:00:00Z")}
		require.Equal(t, in, g.Retry(in, now), "%s", s)
	}
}

// TestWindow_Before1970: the window methods hold before 1970 too (day
// numbers below zero): an instant in the window is its own answer.
func TestWindow_Before1970(t *testing.T) {
	t.Parallel()
	w := window(t, "09:00-18:00")
	now := utc(t, "1969-06-10T10:00:00Z")
	require.Equal(t, now, w.NextAllowed(now, time.UTC))
	require.Equal(t, utc(t, "1969-06-11T09:00:00Z"), w.NextDayStart(now, time.UTC))
}
