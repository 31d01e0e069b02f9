package campaign_test

import (
	"fmt"
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

// TestGate_ZoneMovedWest: the campaign's default zone corrected from
// Tokyo to Los Angeles. Calls at 22:00 on January 2nd and 09:00 on
// January 3rd in Tokyo, two calling days there, were both on January 2nd
// in Los Angeles (05:00 and 16:00): with max_calls_per_day 2, no third
// call there that day. (Counting the latest day alone forgot the first.)
func TestGate_ZoneMovedWest(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "09:00-23:00"), PerDay: 2, Loc: zone(t, "Asia/Tokyo")}
	in, _, ok := g.Admit(pool.Item{Status: pool.StatusPending}, utc(t, "2026-01-02T13:00:00Z"))
	require.True(t, ok)
	in, _, ok = g.Admit(in, utc(t, "2026-01-03T00:00:00Z"))
	require.True(t, ok)
	require.Equal(t, 1, in.CallsToday, "a new day in Tokyo")
	require.Equal(t, utc(t, "2026-01-02T13:00:00Z"), in.PrevCallAt, "the day before kept")
	require.Equal(t, 1, in.PrevCallsToday)

	g.Loc = zone(t, "America/Los_Angeles")
	_, at, ok := g.Admit(in, utc(t, "2026-01-03T01:00:00Z")) // 17:00 on the 2nd in Los Angeles
	require.False(t, ok, "a third call on January 2nd in Los Angeles")
	require.Equal(t, utc(t, "2026-01-03T17:00:00Z"), at, "09:00 on January 3rd in Los Angeles")
	// The contact's other items' previous days count too.
	other := in
	_, _, ok = campaign.Gate{Window: g.Window, PerDay: 3, Loc: g.Loc, Others: []pool.Item{other}}.
		Admit(pool.Item{CallAt: utc(t, "2026-01-03T00:30:00Z"), CallsToday: 1}, utc(t, "2026-01-03T01:00:00Z"))
	require.False(t, ok, "a fourth call across the contact's items, max 3")
}

// TestGate_AdmitKeepsThePreviousDay: a call on a new date makes the
// latest day's count the previous one and the previous one the older, but
// a day whose calls were all given back (none counted), which leaves the
// days before it as they are; an older day whose calls are not all two
// days older than the call is added to the previous one as it becomes
// the older, not forgotten. (A previous day too recent to forget was added
// to the latest day's count when it became the previous one, when an item
// kept two days: it is the older day now, on its own.)
func TestGate_AdmitKeepsThePreviousDay(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "00:00-24:00"), PerDay: 5, Loc: time.UTC}
	for _, c := range []struct {
		name                            string
		callAt, prevCallAt, olderCallAt string
		calls, prevCalls, olderCalls    int
		now                             string
		wantPrevAt, wantOlderAt         string
		wantPrev, wantOlder             int
	}{
		{"FirstDay", "", "", "", 0, 0, 0, "2026-03-02T10:00:00Z", "", "", 0, 0},
		{"SameDay", "2026-03-02T09:00:00Z", "2026-03-01T09:00:00Z", "2026-02-28T09:00:00Z", 2, 1, 3,
			"2026-03-02T10:00:00Z", "2026-03-01T09:00:00Z", "2026-02-28T09:00:00Z", 1, 3},
		{"NewDay", "2026-03-02T09:00:00Z", "2026-02-27T09:00:00Z", "", 2, 1, 0,
			"2026-03-03T10:00:00Z", "2026-03-02T09:00:00Z", "2026-02-27T09:00:00Z", 2, 1},
		{"NewDayForgetsTheOlder", "2026-03-02T09:00:00Z", "2026-03-01T09:00:00Z", "2026-02-28T09:00:00Z", 2, 1, 3,
			"2026-03-03T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-01T09:00:00Z", 2, 1},
		{"NewDayAfterAGiveBack", "2026-03-02T09:00:00Z", "2026-03-01T09:00:00Z", "2026-02-28T09:00:00Z", 0, 1, 3,
			"2026-03-03T10:00:00Z", "2026-03-01T09:00:00Z", "2026-02-28T09:00:00Z", 1, 3},
		{"PreviousDayTooRecentToForget", "2026-03-02T09:00:00Z", "2026-03-01T11:00:00Z", "", 2, 1, 0,
			"2026-03-03T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-01T11:00:00Z", 2, 1},
		{"OlderDayTooRecentToForget", "2026-03-02T09:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T10:30:00Z", 2, 1, 4,
			"2026-03-03T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-01T11:00:00Z", 2, 5},
		{"OlderDayJustOld", "2026-03-02T09:00:00Z", "2026-03-01T11:00:00Z", "2026-03-01T10:00:00Z", 2, 1, 4,
			"2026-03-03T10:00:00Z", "2026-03-02T09:00:00Z", "2026-03-01T11:00:00Z", 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			instant := func(s string) time.Time {
				if s == "" {
					return time.Time{}
				}
				return utc(t, s)
			}
			in := pool.Item{Status: pool.StatusPending, CallAt: instant(c.callAt), CallsToday: c.calls,
				PrevCallAt: instant(c.prevCallAt), PrevCallsToday: c.prevCalls,
				OlderCallAt: instant(c.olderCallAt), OlderCallsToday: c.olderCalls}
			out, _, ok := g.Admit(in, utc(t, c.now))
			require.True(t, ok)
			require.Equal(t, instant(c.wantPrevAt), out.PrevCallAt)
			require.Equal(t, c.wantPrev, out.PrevCallsToday)
			require.Equal(t, instant(c.wantOlderAt), out.OlderCallAt)
			require.Equal(t, c.wantOlder, out.OlderCallsToday)
		})
	}
}

// TestGate_NeverTooFewAcrossZones: calls admitted over days while the
// contact's zone moves east and west (up to 25 hours at once), some given
// back: no call is admitted on a local date (in the zone of the moment)
// that already has PerDay calls, counted by brute force from every call
// made.
//
// Nor too many beyond what counting by calling day forces: a Gate keeps a
// count per calling day (the calls that each fell on the date of the
// day's latest call before them, in the zone of the moment), not the
// calls' instants, so once a zone moves it counts every call of a day
// whose latest call falls on the date of the call to come (some of its
// calls may fall on the date before). It counts no more: a call is
// refused only when those days' calls, modelled here from every call
// made, reach PerDay. Checked until the first call that starts a new day
// within forgetAfter of the latest call of the day three before (see
// Gate.Admit: that day's count is then held with a later day's, and may
// count with it on a date it does not fall on).
func TestGate_NeverTooFewAcrossZones(t *testing.T) {
	t.Parallel()
	zones := []string{"Pacific/Kiritimati", "Asia/Tokyo", "Asia/Kolkata", "Europe/London", "America/New_York",
		"America/Los_Angeles", "Pacific/Pago_Pago", "Pacific/Chatham"}
	from := utc(t, "2026-03-01T00:00:00Z")
	rapid.Check(t, func(t *rapid.T) {
		g := campaign.Gate{Window: window(t, "00:00-24:00"), PerDay: rapid.IntRange(1, 3).Draw(t, "per day"),
			Loc: zone(t, rapid.SampledFrom(zones).Draw(t, "zone"))}
		var it pool.Item
		var calls []time.Time // the calls made and not given back
		// days are the calling days, as a Gate forms them, from every
		// call made: latest is the day's latest call (given back or
		// not), n its calls not given back.
		type callingDay struct {
			latest time.Time
			n      int
		}
		var days []callingDay
		exact := true // no day held with a later one yet
		now := from
		for step := range rapid.IntRange(1, 40).Draw(t, "steps") {
			now = now.Add(time.Duration(rapid.IntRange(0, 30*60).Draw(t, fmt.Sprintf("minutes %d", step))) * time.Minute)
			if rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("move %d", step)) == 0 {
				g.Loc = zone(t, rapid.SampledFrom(zones).Draw(t, fmt.Sprintf("zone %d", step)))
			}
			day := campaign.LocalDay(now, g.Loc)
			forced := 0 // the calls of the days whose latest falls on now's date
			for _, d := range days {
				if campaign.LocalDay(d.latest, g.Loc) >= day {
					forced += d.n
				}
			}
			out, _, ok := g.Admit(it, now)
			if exact {
				require.Equal(t, forced < g.PerDay, ok, "at %v (%v): %d calls of days on that date", now, now.In(g.Loc), forced)
			}
			if !ok {
				continue
			}
			n := 0
			for _, c := range calls {
				if campaign.LocalDay(c, g.Loc) == day {
					n++
				}
			}
			require.Less(t, n, g.PerDay, "admitted at %v (%v): %d calls on that date already", now, now.In(g.Loc), n)
			it = out
			calls = append(calls, now)
			switch last := len(days) - 1; {
			case last >= 0 && day <= campaign.LocalDay(days[last].latest, g.Loc):
				days[last] = callingDay{latest: now, n: days[last].n + 1} // now is never before it
			case last >= 0 && days[last].n == 0:
				days[last] = callingDay{latest: now, n: 1} // a day whose calls were all given back counts none
			default:
				if last >= 2 && now.Sub(days[last-2].latest) < 48*time.Hour {
					exact = false
				}
				days = append(days, callingDay{latest: now, n: 1})
			}
			if rapid.IntRange(0, 4).Draw(t, fmt.Sprintf("give back %d", step)) == 0 {
				it.CallsToday-- // pool.Item.Released: the latest call, the latest day's
				calls = calls[:len(calls)-1]
				days[len(days)-1].n--
			}
		}
	})
}

// TestGate_PreviousDayForAClockBehind: a clock that reads an earlier date
// than the latest counted call counts, on its date, every calling day on
// that date or later. Which clock was wrong is not known: a node behind
// (the real date the later one), or a clock that was ahead when it counted
// the latest call and has been stepped back since (the real date the
// earlier one: calls at 10:00 and, 10 minutes ahead, at "00:00:30" on
// the 3rd, both really on January 2nd). So the call at 23:58:50 on the 2nd
// is refused at the cap of 2 and waits for January 3rd by its clock,
// where only the latest day counts. (Counting only the latest day let the
// third call of a real January 2nd through.)
func TestGate_PreviousDayForAClockBehind(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "00:00-24:00"), PerDay: 2, Loc: time.UTC}
	in, _, ok := g.Admit(pool.Item{}, utc(t, "2026-01-02T10:00:00Z"))
	require.True(t, ok)
	in, _, ok = g.Admit(in, utc(t, "2026-01-03T00:00:30Z"))
	require.True(t, ok, "a clock ahead: a new day")
	require.Equal(t, utc(t, "2026-01-02T10:00:00Z"), in.PrevCallAt)
	_, at, ok := g.Admit(in, utc(t, "2026-01-02T23:58:50Z"))
	require.False(t, ok, "the clock stepped back: two calls on January 2nd, its cap")
	require.Equal(t, utc(t, "2026-01-03T00:00:00Z"), at)
	out, _, ok := g.Admit(in, at)
	require.True(t, ok, "the second call of January 3rd")
	require.Equal(t, 2, out.CallsToday)
	require.Equal(t, in.CallAt, out.CallAt)
	require.Equal(t, in.PrevCallAt, out.PrevCallAt)
	_, _, ok = g.Admit(out, utc(t, "2026-01-03T00:01:00Z"))
	require.False(t, ok, "January 3rd at its cap")
}

// TestGate_OlderDayForAClockBehind: as TestGate_PreviousDayForAClockBehind
// for the older day. Calls at 23:00 and 00:30 in Tokyo (14:00Z, 15:30Z)
// are two days there, both on January 2nd in UTC, the zone now; a call at
// 00:00:30 on the 3rd is the latest. A clock on the 2nd counts all three
// there: at a cap of 3 it waits for the 3rd, where the latest alone counts.
func TestGate_OlderDayForAClockBehind(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "00:00-24:00"), PerDay: 3, Loc: time.UTC}
	in := pool.Item{CallAt: utc(t, "2026-01-03T00:00:30Z"), CallsToday: 1,
		PrevCallAt: utc(t, "2026-01-02T15:30:00Z"), PrevCallsToday: 1,
		OlderCallAt: utc(t, "2026-01-02T14:00:00Z"), OlderCallsToday: 1}
	_, at, ok := g.Admit(in, utc(t, "2026-01-02T23:59:00Z"))
	require.False(t, ok, "three calls counted on January 2nd")
	require.Equal(t, utc(t, "2026-01-03T00:00:00Z"), at)
	out, _, ok := g.Admit(in, at)
	require.True(t, ok, "the second call of January 3rd")
	require.Equal(t, 2, out.CallsToday)
	require.Equal(t, in.CallAt, out.CallAt)
	require.Equal(t, in.PrevCallAt, out.PrevCallAt)
	require.Equal(t, in.OlderCallAt, out.OlderCallAt)
}

// TestGate_PreviousDayDoesNotAccumulate: a contact called every 23 hours
// starts a new date in Tokyo at each call (20:00 on January 1st, 19:00 on
// the 2nd, ... 11:00 on the 10th), each within two days of the day two
// before. The counts held are then the latest days' own, one call each,
// not a sum of every day called. In São Paulo (UTC-3, no daylight saving
// time) the calls were at 08:00 on January 1st, 07:00 on the 2nd, ...
// 01:00 on the 8th, 00:00 on the 9th (calls[8], 03:00Z) and 23:00 on the
// 9th (calls[9], 2026-01-10T02:00Z): January 9th there has two calls, so a
// third at 23:30 (calls[9] + 30 min) is within max_calls_per_day 3.
// (Counting the nine days before the latest as one previous day, which
// falls on January 9th with the latest, made it ten and refused it.)
func TestGate_PreviousDayDoesNotAccumulate(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "00:00-24:00"), PerDay: 3, Loc: zone(t, "Asia/Tokyo")}
	first := utc(t, "2026-01-01T11:00:00Z")
	var it pool.Item
	var calls []time.Time
	for i := range 10 {
		now := first.Add(time.Duration(i) * 23 * time.Hour)
		out, at, ok := g.Admit(it, now)
		require.True(t, ok, "call %d at %v, next at %v", i, now.In(g.Loc), at)
		it = out
		calls = append(calls, now)
	}
	require.Equal(t, utc(t, "2026-01-10T02:00:00Z"), calls[9])
	require.Equal(t, calls[9], it.CallAt)
	require.Equal(t, 1, it.CallsToday, "January 10th in Tokyo")
	require.Equal(t, calls[8], it.PrevCallAt)
	require.Equal(t, 1, it.PrevCallsToday, "January 9th in Tokyo, its own call alone")
	require.Equal(t, calls[7], it.OlderCallAt)
	require.Equal(t, 1, it.OlderCallsToday, "January 8th in Tokyo, its own call alone")

	g.Loc = zone(t, "America/Sao_Paulo")
	now := calls[9].Add(30 * time.Minute)
	require.Equal(t, "2026-01-09 23:30", now.In(g.Loc).Format("2006-01-02 15:04"))
	out, at, ok := g.Admit(it, now)
	require.True(t, ok, "the third call of January 9th in São Paulo, max 3 (next at %v)", at.In(g.Loc))
	require.Equal(t, 2, out.CallsToday, "calls[9]'s day and this call, on January 9th in São Paulo")
	_, _, ok = g.Admit(out, now.Add(10*time.Minute))
	require.False(t, ok, "a fourth call on January 9th in São Paulo: calls[8], calls[9] and the one admitted")
}

// TestGate_OlderDayTooRecentToForget: zones moved between calls start
// three new dates within hours, and a zone moved east puts them all on
// one date: the older day's calls, not forgotten when the fourth day
// starts (see Gate.Admit), count there. Calls at 23:30 on March 10th and
// 00:30 on the 11th in Tokyo (14:30Z and 15:30Z), at 00:15 on the 11th in
// Kolkata (18:45Z), at 00:15 on the 11th in London (00:15Z): all on March
// 11th in Kiritimati (04:30 to 14:15), as is 14:30 there: with
// max_calls_per_day 4, no fifth call. The count of each day is counted.
func TestGate_OlderDayTooRecentToForget(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: window(t, "00:00-24:00"), PerDay: 4}
	var it pool.Item
	for _, c := range []struct{ zone, at string }{
		{"Asia/Tokyo", "2026-03-10T14:30:00Z"},
		{"Asia/Tokyo", "2026-03-10T15:30:00Z"},
		{"Asia/Kolkata", "2026-03-10T18:45:00Z"},
		{"Europe/London", "2026-03-11T00:15:00Z"},
	} {
		g.Loc = zone(t, c.zone)
		out, _, ok := g.Admit(it, utc(t, c.at))
		require.True(t, ok, "%s in %s", c.at, c.zone)
		require.Equal(t, 1, out.CallsToday, "a new date in %s", c.zone)
		it = out
	}
	require.Equal(t, 1, it.PrevCallsToday)
	require.Equal(t, utc(t, "2026-03-10T15:30:00Z"), it.OlderCallAt)
	require.Equal(t, 2, it.OlderCallsToday, "the first day's call held with the second's")

	g.Loc = zone(t, "Pacific/Kiritimati")
	_, at, ok := g.Admit(it, utc(t, "2026-03-11T00:30:00Z"))
	require.False(t, ok, "a fifth call on March 11th in Kiritimati")
	require.Equal(t, utc(t, "2026-03-11T10:00:00Z"), at, "00:00 on March 12th in Kiritimati")
	g.PerDay = 5
	_, _, ok = g.Admit(it, utc(t, "2026-03-11T00:30:00Z"))
	require.True(t, ok, "the fifth, max 5")
}
