package campaign_test

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// zone loads an IANA zone the way the engine does, from poolq's embedded
// database.
func zone(t require.TestingT, name string) *time.Location {
	loc, err := pool.LoadZone(name)
	require.NoError(t, err)
	return loc
}

// clock parses "HH:MM" ("24:00": MinutesPerDay).
func clock(t require.TestingT, s string) campaign.Clock {
	if s == "24:00" {
		return campaign.MinutesPerDay
	}
	c, err := campaign.ParseClock(s)
	require.NoError(t, err)
	return c
}

// window parses "HH:MM-HH:MM".
func window(t require.TestingT, s string) campaign.Window {
	require.Len(t, s, 11)
	return campaign.Window{Start: clock(t, s[:5]), End: clock(t, s[6:])}
}

// utc parses an RFC 3339 instant.
func utc(t require.TestingT, s string) time.Time {
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return at
}

// TestWindow_Vectors runs the 901 cases of testdata/calling-windows.json,
// a copy of shared/vectors/calling-windows.json (see that directory's
// README.md): answers computed apart from Go, with Python's zoneinfo and
// tzdata 2025b, minute by minute, for eight zones on both sides of every
// change of 2026 and 2027. The copy lets the test run from a clone of this
// repository alone.
func TestWindow_Vectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("testdata/calling-windows.json")
	require.NoError(t, err)
	var cases []struct {
		Zone         string `json:"zone"`
		Start        string `json:"start"`
		End          string `json:"end"`
		Now          string `json:"now"`
		NowLocal     string `json:"now_local"`
		NextAllowed  string `json:"next_allowed"`
		NextDayStart string `json:"next_day_start"`
	}
	require.NoError(t, json.Unmarshal(raw, &cases))
	require.Len(t, cases, 901)
	for i, c := range cases {
		name := fmt.Sprintf("%d %s %s-%s %s", i, c.Zone, c.Start, c.End, c.NowLocal)
		loc := zone(t, c.Zone)
		w := campaign.Window{Start: clock(t, c.Start), End: clock(t, c.End)}
		now := utc(t, c.Now)
		// The embedded database reads now as the vectors' did.
		require.Equal(t, c.NowLocal, now.In(loc).Format("2006-01-02T15:04:05-07:00"), name)

		next := w.NextAllowed(now, loc)
		require.Equal(t, c.NextAllowed, next.Format(time.RFC3339), name+": NextAllowed")
		require.Equal(t, next.Equal(now), w.Contains(now, loc), name+": Contains")
		require.True(t, w.Contains(next, loc), name+": NextAllowed in the window")

		day := w.NextDayStart(now, loc)
		require.Equal(t, c.NextDayStart, day.Format(time.RFC3339), name+": NextDayStart")
		require.Greater(t, campaign.LocalDay(day, loc), campaign.LocalDay(now, loc), name+": LocalDay")
	}
}

// edge is a case of the table tests: a window in a zone, an instant, and
// the answers, instants written in RFC 3339 with their local offset so
// they can be read against the zone's wall clock.
type edge struct {
	name      string
	zone      string
	window    string // "HH:MM-HH:MM"
	now       string
	contains  bool
	next      string // NextAllowed
	nextDay   string // NextDayStart
	sameDayAs string // optional: an instant on now's local date (LocalDay)
	otherDay  string // optional: an instant on the next local date
}

// TestWindow_Edges checks the window arithmetic at the changes of 2026 in
// New York (an hour at 02:00), Auckland (an hour at 02:00 and 03:00),
// Chatham (+12:45/+13:45, an hour at 02:45 and 03:45) and Beirut (an hour
// at midnight, the clock going back to the previous date), in Kolkata
// (+05:30, no changes) and over Samoa's skipped 30 December 2011.
func TestWindow_Edges(t *testing.T) {
	t.Parallel()
	tests := []edge{
		// America/New_York: 2026-03-08 02:00 EST → 03:00 EDT (07:00Z).
		{name: "NewYorkGapWholeWindow", zone: "America/New_York", window: "02:00-02:30",
			now: "2026-03-08T01:00:00-05:00", next: "2026-03-09T02:00:00-04:00", nextDay: "2026-03-09T02:00:00-04:00"},
		{name: "NewYorkGapEndAtJump", zone: "America/New_York", window: "02:30-03:00",
			now: "2026-03-08T01:00:00-05:00", next: "2026-03-09T02:30:00-04:00", nextDay: "2026-03-09T02:30:00-04:00"},
		{name: "NewYorkGapStartMetAtJump", zone: "America/New_York", window: "02:30-03:30",
			now: "2026-03-08T01:00:00-05:00", next: "2026-03-08T03:00:00-04:00", nextDay: "2026-03-09T02:30:00-04:00"},
		{name: "NewYorkGapStartMetAtJumpFromSeconds", zone: "America/New_York", window: "02:30-03:30",
			now: "2026-03-08T01:59:59.999999999-05:00", next: "2026-03-08T03:00:00-04:00", nextDay: "2026-03-09T02:30:00-04:00"},
		{name: "NewYorkEndsAtGap", zone: "America/New_York", window: "01:00-02:00",
			now: "2026-03-08T01:59:59.5-05:00", contains: true, next: "2026-03-08T01:59:59.5-05:00",
			nextDay: "2026-03-09T01:00:00-04:00", sameDayAs: "2026-03-08T03:00:00-04:00", otherDay: "2026-03-09T00:00:00-04:00"},
		{name: "NewYorkDayAfterGap", zone: "America/New_York", window: "09:00-18:00",
			now: "2026-03-08T08:59:30-04:00", next: "2026-03-08T09:00:00-04:00", nextDay: "2026-03-09T09:00:00-04:00"},
		{name: "NewYorkInsideKeepsNanoseconds", zone: "America/New_York", window: "09:00-18:00",
			now: "2026-03-08T17:59:59.999999999-04:00", contains: true, next: "2026-03-08T17:59:59.999999999-04:00",
			nextDay: "2026-03-09T09:00:00-04:00"},
		{name: "NewYorkEndExcluded", zone: "America/New_York", window: "09:00-18:00",
			now: "2026-03-08T18:00:00-04:00", next: "2026-03-09T09:00:00-04:00", nextDay: "2026-03-09T09:00:00-04:00"},
		// America/New_York: 2026-11-01 02:00 EDT → 01:00 EST (06:00Z).
		{name: "NewYorkOverlapFirstReading", zone: "America/New_York", window: "01:30-02:30",
			now: "2026-11-01T00:00:00-04:00", next: "2026-11-01T01:30:00-04:00", nextDay: "2026-11-02T01:30:00-05:00"},
		{name: "NewYorkOverlapSecondReading", zone: "America/New_York", window: "01:30-02:30",
			now: "2026-11-01T01:15:00-05:00", next: "2026-11-01T01:30:00-05:00", nextDay: "2026-11-02T01:30:00-05:00"},
		{name: "NewYorkOverlapClockTurnedBackIntoWindow", zone: "America/New_York", window: "01:00-01:30",
			now: "2026-11-01T01:45:00-04:00", next: "2026-11-01T01:00:00-05:00", nextDay: "2026-11-02T01:00:00-05:00",
			sameDayAs: "2026-11-01T01:00:00-05:00"},
		{name: "NewYorkOverlapInWindowBothReadings", zone: "America/New_York", window: "01:00-02:00",
			now: "2026-11-01T01:59:00-04:00", contains: true, next: "2026-11-01T01:59:00-04:00",
			nextDay: "2026-11-02T01:00:00-05:00"},
		{name: "NewYorkUntilMidnight", zone: "America/New_York", window: "23:00-24:00",
			now: "2026-11-01T23:59:59.9-05:00", contains: true, next: "2026-11-01T23:59:59.9-05:00",
			nextDay: "2026-11-02T23:00:00-05:00", otherDay: "2026-11-02T00:00:00-05:00"},

		// Pacific/Auckland: 2026-04-05 03:00 NZDT → 02:00 NZST (2026-04-04 14:00Z).
		{name: "AucklandOverlapTurnedBackIntoWindow", zone: "Pacific/Auckland", window: "02:00-02:30",
			now: "2026-04-05T02:45:00+13:00", next: "2026-04-05T02:00:00+12:00", nextDay: "2026-04-06T02:00:00+12:00"},
		{name: "AucklandOverlapInside", zone: "Pacific/Auckland", window: "02:30-03:30",
			now: "2026-04-05T02:45:00+13:00", contains: true, next: "2026-04-05T02:45:00+13:00",
			nextDay: "2026-04-06T02:30:00+12:00"},
		{name: "AucklandDayOfOverlap", zone: "Pacific/Auckland", window: "09:00-18:00",
			now: "2026-04-04T20:00:00+13:00", next: "2026-04-05T09:00:00+12:00", nextDay: "2026-04-05T09:00:00+12:00"},
		// Pacific/Auckland: 2026-09-27 02:00 NZST → 03:00 NZDT (2026-09-26 14:00Z).
		{name: "AucklandGapWholeWindow", zone: "Pacific/Auckland", window: "02:15-02:45",
			now: "2026-09-27T01:00:00+12:00", next: "2026-09-28T02:15:00+13:00", nextDay: "2026-09-28T02:15:00+13:00"},
		{name: "AucklandGapStartMetAtJump", zone: "Pacific/Auckland", window: "02:30-03:30",
			now: "2026-09-27T01:00:00+12:00", next: "2026-09-27T03:00:00+13:00", nextDay: "2026-09-28T02:30:00+13:00"},
		{name: "AucklandGapDayStartFromDayBefore", zone: "Pacific/Auckland", window: "02:30-03:30",
			now: "2026-09-26T12:00:00+12:00", next: "2026-09-27T03:00:00+13:00", nextDay: "2026-09-27T03:00:00+13:00"},

		// Pacific/Chatham: 2026-04-05 03:45 +13:45 → 02:45 +12:45 (2026-04-04 14:00Z).
		{name: "ChathamOverlapNextStart", zone: "Pacific/Chatham", window: "03:00-03:30",
			now: "2026-04-05T03:40:00+13:45", next: "2026-04-05T03:00:00+12:45", nextDay: "2026-04-06T03:00:00+12:45"},
		{name: "ChathamOverlapTurnedBackIntoWindow", zone: "Pacific/Chatham", window: "02:45-03:00",
			now: "2026-04-05T03:40:00+13:45", next: "2026-04-05T02:45:00+12:45", nextDay: "2026-04-06T02:45:00+12:45"},
		// Pacific/Chatham: 2026-09-27 02:45 +12:45 → 03:45 +13:45 (2026-09-26 14:00Z).
		{name: "ChathamGapStartMetAtJump", zone: "Pacific/Chatham", window: "03:00-04:00",
			now: "2026-09-27T02:00:00+12:45", next: "2026-09-27T03:45:00+13:45", nextDay: "2026-09-28T03:00:00+13:45"},
		{name: "ChathamGapWholeWindow", zone: "Pacific/Chatham", window: "03:00-03:45",
			now: "2026-09-27T02:00:00+12:45", next: "2026-09-28T03:00:00+13:45", nextDay: "2026-09-28T03:00:00+13:45"},
		{name: "ChathamQuarterHourUTC", zone: "Pacific/Chatham", window: "09:00-18:00",
			now: "2026-01-10T08:00:00+13:45", next: "2026-01-10T09:00:00+13:45", nextDay: "2026-01-11T09:00:00+13:45",
			sameDayAs: "2026-01-10T23:59:59+13:45", otherDay: "2026-01-11T00:00:00+13:45"},

		// Asia/Kolkata: +05:30 all year.
		{name: "KolkataHalfHourUTC", zone: "Asia/Kolkata", window: "09:00-18:00",
			now: "2026-03-08T08:30:00+05:30", next: "2026-03-08T09:00:00+05:30", nextDay: "2026-03-09T09:00:00+05:30",
			sameDayAs: "2026-03-08T23:59:59.999+05:30", otherDay: "2026-03-09T00:00:00+05:30"},
		{name: "KolkataMidnightWindow", zone: "Asia/Kolkata", window: "00:00-01:00",
			now: "2026-06-02T00:00:00+05:30", contains: true, next: "2026-06-02T00:00:00+05:30",
			nextDay: "2026-06-03T00:00:00+05:30"},
		{name: "KolkataAfterWindow", zone: "Asia/Kolkata", window: "09:00-18:00",
			now: "2026-11-01T18:00:00+05:30", next: "2026-11-02T09:00:00+05:30", nextDay: "2026-11-02T09:00:00+05:30"},

		// Asia/Beirut: 2026-10-25 00:00 EEST → 2026-10-24 23:00 EET (21:00Z):
		// the local date goes back to the 24th for an hour.
		{name: "BeirutDateGoesBack", zone: "Asia/Beirut", window: "23:00-24:00",
			now: "2026-10-24T23:30:00+03:00", contains: true, next: "2026-10-24T23:30:00+03:00",
			nextDay: "2026-10-25T23:00:00+02:00", sameDayAs: "2026-10-24T23:30:00+02:00", otherDay: "2026-10-25T00:00:00+02:00"},
		{name: "BeirutSecondEveningIsTheSameDay", zone: "Asia/Beirut", window: "23:00-24:00",
			now: "2026-10-24T23:30:00+02:00", contains: true, next: "2026-10-24T23:30:00+02:00",
			nextDay: "2026-10-25T23:00:00+02:00"},
		{name: "BeirutMidnightWindowAfterTheRepeat", zone: "Asia/Beirut", window: "00:00-01:00",
			now: "2026-10-24T23:30:00+03:00", next: "2026-10-25T00:00:00+02:00", nextDay: "2026-10-25T00:00:00+02:00"},

		// Pacific/Apia skipped 2011-12-30: 29 December at -10:00, then 31 December at +14:00.
		{name: "ApiaSkippedDay", zone: "Pacific/Apia", window: "09:00-18:00",
			now: "2011-12-29T20:00:00-10:00", next: "2011-12-31T09:00:00+14:00", nextDay: "2011-12-31T09:00:00+14:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			loc := zone(t, tt.zone)
			w := window(t, tt.window)
			now := utc(t, tt.now)
			require.Equal(t, tt.contains, w.Contains(now, loc), "Contains")
			next := w.NextAllowed(now, loc)
			require.Equal(t, utc(t, tt.next).UTC(), next, "NextAllowed %s", next.In(loc))
			nextDay := w.NextDayStart(now, loc)
			require.Equal(t, utc(t, tt.nextDay).UTC(), nextDay, "NextDayStart %s", nextDay.In(loc))
			day := campaign.LocalDay(now, loc)
			require.Greater(t, campaign.LocalDay(nextDay, loc), day)
			if tt.sameDayAs != "" {
				require.Equal(t, day, campaign.LocalDay(utc(t, tt.sameDayAs), loc), "sameDayAs")
			}
			if tt.otherDay != "" {
				require.Equal(t, day+1, campaign.LocalDay(utc(t, tt.otherDay), loc), "otherDay")
			}
		})
	}
}

func TestLocalDay(t *testing.T) {
	t.Parallel()
	require.Equal(t, int32(0), campaign.LocalDay(time.Unix(0, 0), time.UTC))
	require.Equal(t, int32(-1), campaign.LocalDay(time.Unix(-1, 0), time.UTC))
	require.Equal(t, int32(-1), campaign.LocalDay(time.Unix(0, 0), zone(t, "America/New_York")))
	require.Equal(t, int32(20454), campaign.LocalDay(utc(t, "2026-01-01T00:00:00+14:00"), zone(t, "Pacific/Kiritimati")))
	require.Equal(t, int32(20454), campaign.LocalDay(utc(t, "2026-01-01T23:59:59.999999999-12:00"), zone(t, "Etc/GMT+12")))
	require.Equal(t, int32(-719162), campaign.LocalDay(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.UTC))
	// Samoa skipped 30 December 2011: the day after the 29th is the 31st,
	// two day numbers on.
	apia := zone(t, "Pacific/Apia")
	require.Equal(t, campaign.LocalDay(utc(t, "2011-12-29T23:59:59-10:00"), apia)+2,
		campaign.LocalDay(utc(t, "2011-12-31T00:00:00+14:00"), apia))
	require.True(t, utc(t, "2011-12-29T23:59:59-10:00").Add(time.Second).Equal(utc(t, "2011-12-31T00:00:00+14:00")))
}

func TestRule_Window(t *testing.T) {
	t.Parallel()
	t.Run("OKCall", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Daytime",
			StartTime: ptr("08:30"), EndTime: ptr("20:15")}, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Window{Start: 8*60 + 30, End: 20*60 + 15}, r.Window())
		require.True(t, r.Window().Valid())
	})
	t.Run("OKDefaults", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Default"}, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Window{Start: campaign.DefaultStartTime, End: campaign.DefaultEndTime}, r.Window())
	})
	t.Run("OKTextUntilMidnight", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Texts", Type: campaign.Text,
			StartTime: ptr("23:59")}, t0)
		require.NoError(t, err)
		w := r.Window()
		require.Equal(t, campaign.Window{Start: 23*60 + 59, End: campaign.MinutesPerDay}, w)
		require.True(t, w.Valid())
		require.Equal(t, "[23:59:00, 24:00:00)", w.String())
		loc := zone(t, "Europe/London")
		require.True(t, w.Contains(utc(t, "2026-03-28T23:59:59.999+00:00"), loc))
		require.False(t, w.Contains(utc(t, "2026-03-29T00:00:00+00:00"), loc))
		require.Equal(t, utc(t, "2026-03-29T23:59:00+01:00").UTC(), w.NextAllowed(utc(t, "2026-03-29T00:00:00+00:00"), loc))
	})
}

func TestWindow_Valid(t *testing.T) {
	t.Parallel()
	for _, w := range []campaign.Window{{0, 1}, {0, campaign.MinutesPerDay}, {campaign.MinutesPerDay - 1, campaign.MinutesPerDay}, {540, 1080}} {
		require.True(t, w.Valid(), "%v", w)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, w := range []campaign.Window{{}, {540, 540}, {1080, 540}, {-1, 60}, {0, campaign.MinutesPerDay + 1}} {
		require.False(t, w.Valid(), "%v", w)
		require.False(t, w.Contains(now, time.UTC), "%v", w)
		require.Panics(t, func() { w.NextAllowed(now, time.UTC) }, "%v", w)
		require.Panics(t, func() { w.NextDayStart(now, time.UTC) }, "%v", w)
	}
}

// TestWindow_Allocs checks the arithmetic allocates nothing (not parallel:
// AllocsPerRun counts the whole process's).
func TestWindow_Allocs(t *testing.T) {
	loc := zone(t, "Pacific/Chatham")
	w := campaign.Window{Start: 3 * 60, End: 4 * 60}
	now := utc(t, "2026-09-27T02:00:00+12:45") // the answers cross a change
	allocs := testing.AllocsPerRun(100, func() {
		_ = w.Contains(now, loc)
		_ = w.NextAllowed(now, loc)
		_ = w.NextDayStart(now, loc)
		_ = campaign.LocalDay(now, loc)
	})
	require.Zero(t, allocs)
}

// propertyZones are the zones of the property test: the vectors' eight and
// others whose changes are unusual in 2026–2027: the clock going back over
// midnight (Asia/Beirut, America/Nuuk at 00:00 ↔ 23:00), midnight changes
// (America/Santiago, America/Havana), negative DST (Europe/Dublin), Ramadan
// changes (Africa/Casablanca), two hours at once (Antarctica/Troll), odd
// offsets (America/St_Johns, Asia/Kathmandu, Australia/Adelaide), and
// none at all (UTC, Pacific/Apia now).
var propertyZones = []string{
	"America/New_York", "Pacific/Auckland", "Asia/Kolkata", "Pacific/Chatham", "Europe/London",
	"Australia/Lord_Howe", "America/Sao_Paulo", "Asia/Tehran",
	"Asia/Beirut", "America/Nuuk", "America/Santiago", "America/Havana", "Europe/Dublin",
	"Africa/Casablanca", "Antarctica/Troll", "America/St_Johns", "Asia/Kathmandu",
	"Australia/Adelaide", "UTC", "Pacific/Apia",
}

// TestWindow_PropertyBruteForce compares NextAllowed and NextDayStart with
// a reference that reads the wall clock minute by minute, for random
// zones, windows and instants of 2026–2027 (half of them within two days
// of one of the zone's changes), seconds and nanoseconds included. The
// reference steps whole UTC minutes, which every change and every local
// minute of these zones in these years falls on.
func TestWindow_PropertyBruteForce(t *testing.T) {
	t.Parallel()
	type zoneInfo struct {
		loc     *time.Location
		changes []time.Time // the zone's changes of 2026–2027
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)
	zones := make([]zoneInfo, len(propertyZones))
	for i, name := range propertyZones {
		zones[i].loc = zone(t, name)
		for at := from; ; {
			_, end := at.In(zones[i].loc).ZoneBounds()
			if end.IsZero() || !end.Before(to) {
				break
			}
			zones[i].changes = append(zones[i].changes, end)
			at = end
		}
	}
	minutes := rapid.OneOf(rapid.IntRange(0, campaign.MinutesPerDay), // anywhere,
		rapid.IntRange(0, 5*60),                       // near the changes,
		rapid.IntRange(22*60, campaign.MinutesPerDay)) // near midnight

	rapid.Check(t, func(t *rapid.T) {
		zi := rapid.IntRange(0, len(zones)-1).Draw(t, "zone")
		z := zones[zi]
		a := minutes.Draw(t, "a")
		b := minutes.Draw(t, "b")
		if a == b {
			b = a + 1
		}
		w := campaign.Window{Start: campaign.Clock(min(a, b)), End: campaign.Clock(max(a, b))}
		if w.End > campaign.MinutesPerDay {
			w.Start, w.End = campaign.MinutesPerDay-1, campaign.MinutesPerDay
		}
		var now time.Time
		if len(z.changes) > 0 && rapid.Bool().Draw(t, "nearChange") {
			c := z.changes[rapid.IntRange(0, len(z.changes)-1).Draw(t, "change")]
			now = c.Add(time.Duration(rapid.IntRange(-2*24*60, 2*24*60).Draw(t, "minutesFromChange")) * time.Minute)
		} else {
			now = from.Add(time.Duration(rapid.Int64Range(0, int64(to.Sub(from)/time.Minute)-1).Draw(t, "minute")) * time.Minute)
		}
		if rapid.Bool().Draw(t, "fraction") {
			now = now.Add(time.Duration(rapid.Int64Range(0, int64(time.Minute)-1).Draw(t, "nanos")))
		}

		want := bruteNext(t, w, now, z.loc, false)
		got := w.NextAllowed(now, z.loc)
		if !got.Equal(want) {
			t.Fatalf("%s %v NextAllowed(%s) = %s, want %s", z.loc, w, now.In(z.loc), got.In(z.loc), want.In(z.loc))
		}
		want = bruteNext(t, w, now, z.loc, true)
		got = w.NextDayStart(now, z.loc)
		if !got.Equal(want) {
			t.Fatalf("%s %v NextDayStart(%s) = %s, want %s", z.loc, w, now.In(z.loc), got.In(z.loc), want.In(z.loc))
		}
		if got.Location() != time.UTC {
			t.Fatalf("result in %s, want UTC", got.Location())
		}
	})
}

// bruteNext is the reference: the first instant from now on, now itself
// then every whole UTC minute after it, whose wall clock in loc lies in w
// (and, with nextDay, whose local date is after now's), read with the
// standard library's calendar functions.
func bruteNext(t interface{ Fatalf(string, ...any) }, w campaign.Window, now time.Time, loc *time.Location, nextDay bool) time.Time {
	date := func(at time.Time) time.Time {
		y, m, d := at.In(loc).Date()
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	today := date(now)
	ok := func(at time.Time) bool {
		h, m, _ := at.In(loc).Clock()
		c := campaign.Clock(h*60 + m)
		return c >= w.Start && c < w.End && (!nextDay || date(at).After(today))
	}
	if ok(now) {
		return now
	}
	at := now.Truncate(time.Minute)
	for range 5 * campaign.MinutesPerDay {
		at = at.Add(time.Minute)
		if ok(at) {
			return at
		}
	}
	t.Fatalf("no instant in %v within five days of %s", w, now.In(loc))
	return time.Time{}
}

// TestWindow_LeapYearEnd: all through 31 December UTC of a leap year that
// the zone data's rule covers (2028, 2032, …), time.Time.ZoneBounds
// reports an offset's end at or before the instant itself
// (golang/go#81583), in every zone whose rule changes its offset. The walk
// must neither go back to that end (an answer outside the window, or a
// loop that never ends) nor trust it: the answers match the minute-by-
// minute reference, instants every 97 minutes from 30 December to
// 2 January.
func TestWindow_LeapYearEnd(t *testing.T) {
	t.Parallel()
	windows := []campaign.Window{
		window(t, "09:00-17:00"), window(t, "00:00-01:00"), window(t, "02:00-03:00"), {Start: 23 * 60, End: campaign.MinutesPerDay},
	}
	done := make(chan struct{})
	go func() { // a walk that never ends fails the test, not the run
		defer close(done)
		for _, name := range propertyZones {
			loc := zone(t, name)
			for _, year := range []int{2028, 2032} {
				from := time.Date(year, 12, 30, 0, 0, 0, 0, time.UTC)
				for now := from; now.Before(from.Add(72 * time.Hour)); now = now.Add(97 * time.Minute) {
					for _, w := range windows {
						want := bruteNext(t, w, now, loc, false)
						if got := w.NextAllowed(now, loc); !got.Equal(want) {
							t.Errorf("%s %v NextAllowed(%s) = %s, want %s", loc, w, now.In(loc), got.In(loc), want.In(loc))
							return
						}
						want = bruteNext(t, w, now, loc, true)
						if got := w.NextDayStart(now, loc); !got.Equal(want) {
							t.Errorf("%s %v NextDayStart(%s) = %s, want %s", loc, w, now.In(loc), got.In(loc), want.In(loc))
							return
						}
					}
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute): // a second or two alone, several under -race on a loaded machine
		t.Fatal("a window walk did not end within 2 minutes")
	}
}
