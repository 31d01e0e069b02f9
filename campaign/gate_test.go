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
	const today = "2026-06-10T14:00:00Z" // a call at 10:00 local
	for _, c := range []struct {
		name       string
		now        string
		callAt     string // the latest counted call; "" for none
		callsToday int
		ok         bool
		at         string // when not ok
		wantCalls  int    // when ok
	}{
		{"FirstCall", "2026-06-10T16:00:00Z", "", 0, true, "", 1},
		{"SecondCall", "2026-06-10T16:00:00Z", today, 1, true, "", 2},
		{"CapReached", "2026-06-10T16:00:00Z", today, 2, false, "2026-06-11T13:00:00Z", 0},
		{"CapOfAnotherDay", "2026-06-10T16:00:00Z", "2026-06-09T21:00:00Z", 2, true, "", 1},
		{"BeforeWindow", "2026-06-10T12:59:59Z", "", 0, false, "2026-06-10T13:00:00Z", 0},
		{"AtStart", "2026-06-10T13:00:00Z", "", 0, true, "", 1},
		{"AtEnd", "2026-06-10T22:00:00Z", "", 0, false, "2026-06-11T13:00:00Z", 0},
		{"LastSecond", "2026-06-10T21:59:59Z", today, 1, true, "", 2},
		// Late evening UTC is still the 10th in New York: its cap counts.
		{"LocalDateNotUTCDate", "2026-06-11T01:00:00Z", today, 2, false, "2026-06-11T13:00:00Z", 0},
		// A call at 23:30 UTC on the 9th was on the 9th in New York.
		{"UTCDateNotLocalDate", "2026-06-10T16:00:00Z", "2026-06-09T23:30:00Z", 2, true, "", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := pool.Item{Status: pool.StatusPending, CallsToday: c.callsToday, Token: 4, CallToken: 3}
			if c.callAt != "" {
				in.CallAt = utc(t, c.callAt)
			}
			now := utc(t, c.now)
			out, at, ok := g.Admit(in, now)
			require.Equal(t, c.ok, ok)
			if !ok {
				require.Equal(t, in, out, "not admitted: unchanged")
				require.True(t, at.Equal(utc(t, c.at)), "at %v, want %s", at, c.at)
				return
			}
			require.True(t, at.Equal(now))
			require.Equal(t, now, out.CallAt, "the latest counted call")
			require.Equal(t, c.wantCalls, out.CallsToday)
			require.Equal(t, int64(3), out.CallToken, "left for the caller to set to the dispatch's token")
		})
	}
}

// TestGate_ZoneChanged: a count made in one zone still counts when the
// contact's zone changes (the campaign's default corrected from Los
// Angeles to Tokyo): two calls at 21:00 and 21:30 on January 2nd in Los
// Angeles were at 14:00 and 14:30 on January 3rd in Tokyo, so with
// max_calls_per_day 2 the next is on January 4th there. (A count keyed by
// the Los Angeles date, January 2nd, started again at zero on Tokyo's
// January 3rd: a third call that day.)
func TestGate_ZoneChanged(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "09:00-23:00"), PerDay: 2, Loc: zone(t, "Asia/Tokyo")}
	in := pool.Item{Status: pool.StatusRetrying, CallsToday: 2, CallAt: utc(t, "2026-01-03T05:30:00Z")}
	_, at, ok := g.Admit(in, utc(t, "2026-01-03T06:00:00Z"))
	require.False(t, ok, "a third call on January 3rd in Tokyo")
	require.Equal(t, utc(t, "2026-01-04T00:00:00Z"), at, "09:00 on January 4th in Tokyo")
	// The other way round, Tokyo to Los Angeles: the calls of Tokyo's
	// January 3rd afternoon were on January 2nd in Los Angeles, still
	// today there.
	g.Loc = zone(t, "America/Los_Angeles")
	_, at, ok = g.Admit(in, utc(t, "2026-01-03T06:00:00Z")) // 22:00 on the 2nd in Los Angeles
	require.False(t, ok)
	require.Equal(t, utc(t, "2026-01-03T17:00:00Z"), at, "09:00 on January 3rd in Los Angeles")
}

func TestGate_Retry(t *testing.T) {
	t.Parallel()
	g := nyGate(t)
	call := utc(t, "2026-06-10T16:00:00Z")
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
		// A retry time before now is due at once, judged at now.
		{"PastWhileOpenStays", pool.StatusScheduled, "2026-06-10T14:00:00Z", 0, pool.StatusScheduled, "2026-06-10T14:00:00Z"},
		{"PastWhileCappedMovesToNextDay", pool.StatusScheduled, "2026-06-10T14:00:00Z", 2, pool.StatusScheduled, "2026-06-11T13:00:00Z"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in := pool.Item{Status: c.status, NextRetryAt: at(c.next), CallAt: call, CallsToday: c.callsToday, RetryCount: 1, Attempts: 1}
			out := g.Retry(in, call)
			want := in
			want.Status, want.NextRetryAt = c.wantStatus, at(c.wantNext)
			require.Equal(t, want, out)
		})
	}
	t.Run("PastWhileClosedMovesToOpening", func(t *testing.T) {
		t.Parallel()
		now := utc(t, "2026-06-11T02:00:00Z") // 22:00 in New York: closed
		in := pool.Item{Status: pool.StatusRetrying, NextRetryAt: at("2026-06-10T18:00:00Z"), CallAt: call, CallsToday: 1, RetryCount: 1, Attempts: 1}
		out := g.Retry(in, now)
		require.Equal(t, pool.StatusScheduled, out.Status)
		require.Equal(t, utc(t, "2026-06-11T13:00:00Z"), *out.NextRetryAt, "the next opening, not one past")
	})
	for _, s := range []pool.Status{pool.StatusFailed, pool.StatusSkipped, pool.StatusCompleted, pool.StatusPending} {
		in := pool.Item{Status: s}
		require.Equal(t, in, g.Retry(in, call), "%s is left alone", s)
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
		// The latest call is up to two days before tt, or after it (a
		// clock behind the one that counted it): its count holds on its
		// date and, for a clock behind, on the dates before.
		it := pool.Item{
			CallAt:     tt.Add(-time.Duration(rapid.IntRange(-48*60, 48*60).Draw(t, "minutes since the latest call")) * time.Minute),
			CallsToday: rapid.IntRange(0, 4).Draw(t, "calls today"),
		}
		allowed := func(x time.Time) bool {
			return g.Window.Contains(x, loc) && (campaign.LocalDay(x, loc) > campaign.LocalDay(it.CallAt, loc) || it.CallsToday < g.PerDay)
		}
		got := g.Earliest(it, tt)
		require.False(t, got.Before(tt))
		require.True(t, allowed(got), "Earliest %v is not allowed (local %v)", got, got.In(loc))
		for m := tt; m.Before(got); m = m.Add(time.Minute) {
			require.False(t, allowed(m), "%v (local %v) is allowed and before Earliest %v", m, m.In(loc), got)
		}
		_, _, ok := g.Admit(pool.Item{CallAt: it.CallAt, CallsToday: it.CallsToday}, tt)
		require.Equal(t, allowed(tt), ok, "Admit agrees with the brute force")
	})
}
