package campaign_test

import (
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// nyGate is 09:00–18:00 in New York, two calls a day.
func nyGate(t require.TestingT) campaign.Gate {
	return campaign.Gate{Window: window(t, "09:00-18:00"), PerDay: 2, Loc: zone(t, "America/New_York")}
}

func TestGate_Admit(t *testing.T) {
	t.Parallel()
	g := nyGate(t)
	// 2026-06-10 is EDT (UTC-4): 09:00 local is 13:00Z, 18:00 is 22:00Z.
	noon := utc(t, "2026-06-10T16:00:00Z")
	day := campaign.LocalDay(noon, g.Loc)
	for _, c := range []struct {
		name       string
		now        string
		callDay    int32
		callsToday int
		ok         bool
		at         string // when not ok
		wantCalls  int    // when ok
	}{
		{"FirstCall", "2026-06-10T16:00:00Z", 0, 0, true, "", 1},
		{"SecondCall", "2026-06-10T16:00:00Z", day, 1, true, "", 2},
		{"CapReached", "2026-06-10T16:00:00Z", day, 2, false, "2026-06-11T13:00:00Z", 0},
		{"CapOfAnotherDay", "2026-06-10T16:00:00Z", day - 1, 2, true, "", 1},
		{"BeforeWindow", "2026-06-10T12:59:59Z", 0, 0, false, "2026-06-10T13:00:00Z", 0},
		{"AtStart", "2026-06-10T13:00:00Z", 0, 0, true, "", 1},
		{"AtEnd", "2026-06-10T22:00:00Z", 0, 0, false, "2026-06-11T13:00:00Z", 0},
		{"LastSecond", "2026-06-10T21:59:59Z", day, 1, true, "", 2},
		// Late evening UTC is still the 10th in New York: its cap counts.
		{"LocalDateNotUTCDate", "2026-06-11T01:00:00Z", day, 2, false, "2026-06-11T13:00:00Z", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := pool.Item{Status: pool.StatusPending, CallDay: c.callDay, CallsToday: c.callsToday}
			now := utc(t, c.now)
			out, at, ok := g.Admit(in, now)
			require.Equal(t, c.ok, ok)
			if !ok {
				require.Equal(t, in, out, "not admitted: unchanged")
				require.True(t, at.Equal(utc(t, c.at)), "at %v, want %s", at, c.at)
				return
			}
			require.True(t, at.Equal(now))
			require.Equal(t, campaign.LocalDay(now, g.Loc), out.CallDay)
			require.Equal(t, c.wantCalls, out.CallsToday)
		})
	}
}

func TestGate_Retry(t *testing.T) {
	t.Parallel()
	g := nyGate(t)
	day := campaign.LocalDay(utc(t, "2026-06-10T16:00:00Z"), g.Loc)
	at := func(s string) *time.Time { v := utc(t, s); return &v }
	for _, c := range []struct {
		name       string
		status     pool.Status
		next       string
		callsToday int
		wantStatus pool.Status
		wantNext   string
	}{
		{"InWindowStaysRetrying", pool.StatusRetrying, "2026-06-10T18:00:00Z", 1, pool.StatusRetrying, "2026-06-10T18:00:00Z"},
		{"AfterWindowMovesToMorning", pool.StatusRetrying, "2026-06-10T22:30:00Z", 1, pool.StatusScheduled, "2026-06-11T13:00:00Z"},
		{"CappedDayMovesToNextDay", pool.StatusRetrying, "2026-06-10T18:00:00Z", 2, pool.StatusScheduled, "2026-06-11T13:00:00Z"},
		{"NextDayIsNotCapped", pool.StatusRetrying, "2026-06-11T14:00:00Z", 2, pool.StatusRetrying, "2026-06-11T14:00:00Z"},
		{"CallbackOutsideWindowMoves", pool.StatusScheduled, "2026-06-13T02:00:00Z", 0, pool.StatusScheduled, "2026-06-13T13:00:00Z"},
		{"CallbackInsideWindowStays", pool.StatusScheduled, "2026-06-13T15:00:00Z", 0, pool.StatusScheduled, "2026-06-13T15:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := pool.Item{Status: c.status, NextRetryAt: at(c.next), CallDay: day, CallsToday: c.callsToday, RetryCount: 1, Attempts: 1}
			out := g.Retry(in)
			want := in
			want.Status, want.NextRetryAt = c.wantStatus, at(c.wantNext)
			require.Equal(t, want, out)
		})
	}
	for _, s := range []pool.Status{pool.StatusFailed, pool.StatusSkipped, pool.StatusCompleted, pool.StatusPending} {
		in := pool.Item{Status: s}
		require.Equal(t, in, g.Retry(in), "%s is left alone", s)
	}
}

// TestGate_EarliestBruteForce: Earliest is allowed (in the window, on a day
// under the cap) and no whole minute between t and it is, in random zones
// across DST changes.
func TestGate_EarliestBruteForce(t *testing.T) {
	t.Parallel()
	zones := []string{"America/New_York", "Pacific/Auckland", "Asia/Kolkata", "Pacific/Chatham", "Australia/Lord_Howe", "Europe/London"}
	from := utc(t, "2026-01-01T00:00:00Z")
	rapid.Check(t, func(t *rapid.T) {
		loc := zone(t, rapid.SampledFrom(zones).Draw(t, "zone"))
		start := rapid.IntRange(0, campaign.MinutesPerDay-2).Draw(t, "start")
		end := rapid.IntRange(start+1, campaign.MinutesPerDay).Draw(t, "end")
		g := campaign.Gate{Window: campaign.Window{Start: campaign.Clock(start), End: campaign.Clock(end)},
			PerDay: rapid.IntRange(1, 3).Draw(t, "per day"), Loc: loc}
		tt := from.Add(time.Duration(rapid.IntRange(0, 2*365*24*60).Draw(t, "minute")) * time.Minute)
		it := pool.Item{
			CallDay:    campaign.LocalDay(tt, loc) + int32(rapid.IntRange(-1, 1).Draw(t, "call day offset")),
			CallsToday: rapid.IntRange(0, 4).Draw(t, "calls today"),
		}
		allowed := func(x time.Time) bool {
			return g.Window.Contains(x, loc) && (campaign.LocalDay(x, loc) != it.CallDay || it.CallsToday < g.PerDay)
		}
		got := g.Earliest(it, tt)
		require.False(t, got.Before(tt))
		require.True(t, allowed(got), "Earliest %v is not allowed (local %v)", got, got.In(loc))
		for m := tt; m.Before(got); m = m.Add(time.Minute) {
			require.False(t, allowed(m), "%v (local %v) is allowed and before Earliest %v", m, m.In(loc), got)
		}
		_, _, ok := g.Admit(pool.Item{CallDay: it.CallDay, CallsToday: it.CallsToday}, tt)
		require.Equal(t, allowed(tt), ok, "Admit agrees with the brute force")
	})
}
