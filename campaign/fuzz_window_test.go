package campaign_test

import (
	"archive/zip"
	"encoding/json"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
)

// Run one fuzzer at a time, e.g.:
//
//	go test -run='^$' -fuzz='^FuzzWindowNext$' -fuzztime=30s ./campaign
//	go test -run='^$' -fuzz='^FuzzGateAdmit$' -fuzztime=30s ./campaign

// allZones returns the name of every zone of poolq's embedded database,
// sorted: the zones a contact may be in.
var allZones = sync.OnceValue(func() []string {
	r, err := zip.OpenReader("../pool/zoneinfo.zip")
	if err != nil {
		panic(err)
	}
	defer r.Close()
	var names []string
	for _, f := range r.File {
		if !f.FileInfo().IsDir() {
			names = append(names, f.Name)
		}
	}
	slices.Sort(names)
	return names
})

// fuzzWindow maps a fuzzer's numbers to a zone of the embedded database, a
// valid window and an instant between 1811 and 2191.
func fuzzWindow(t *testing.T, zi uint16, start, length uint16, sec int64, nsec uint32) (*time.Location, campaign.Window, time.Time) {
	zones := allZones()
	loc, err := pool.LoadZone(zones[int(zi)%len(zones)])
	require.NoError(t, err)
	s := campaign.Clock(int(start) % campaign.MinutesPerDay)
	e := s + 1 + campaign.Clock(int(length)%int(campaign.MinutesPerDay-s))
	const lo, span = -5_000_000_000, 12_000_000_000
	sec = lo + (sec%span+span)%span
	return loc, campaign.Window{Start: s, End: e}, time.Unix(sec, int64(nsec%1_000_000_000)).UTC()
}

// changesBetween returns the instants in (from, to) at which loc's offset
// changes (and, where Go's zone rules end a period at the turn of a UTC
// day, that instant too: golang/go#81583).
func changesBetween(loc *time.Location, from, to time.Time) []time.Time {
	var out []time.Time
	for at := from; ; {
		_, end := at.In(loc).ZoneBounds()
		if !end.IsZero() && !end.After(at) {
			end = at.Truncate(24 * time.Hour).Add(24 * time.Hour)
		}
		if end.IsZero() || !end.Before(to) {
			return out
		}
		out = append(out, end)
		at = end
	}
}

// requireFirst checks that no instant in [from, r) meets ok, ok being true
// on intervals of whole seconds that begin at a whole wall-clock minute
// or at a change of loc's offset, as "in the window" (on a later date) is:
// it reads from, every change in between and the second before it, and
// every 60 seconds back from r's last second, which meets every such
// interval at least a minute long.
func requireFirst(t *testing.T, what string, loc *time.Location, from, r time.Time, ok func(time.Time) bool) {
	t.Helper()
	if !r.After(from) {
		return
	}
	require.False(t, ok(from), "%s: %s is allowed, before %s", what, from.In(loc), r.In(loc))
	for _, c := range changesBetween(loc, from, r) {
		for _, at := range []time.Time{c, c.Add(-time.Second)} {
			if !at.Before(from) {
				require.False(t, ok(at), "%s: the change at %s is allowed, before %s", what, at.In(loc), r.In(loc))
			}
		}
	}
	for at := r.Truncate(time.Second).Add(-time.Second); !at.Before(from); at = at.Add(-time.Minute) {
		if at.Equal(r) {
			continue
		}
		require.False(t, ok(at), "%s: %s is allowed, before %s", what, at.In(loc), r.In(loc))
	}
}

// requireStartOrChange checks r is an instant at which the wall clock
// reads w.Start exactly, or a change of loc's offset.
func requireStartOrChange(t *testing.T, what string, loc *time.Location, w campaign.Window, r time.Time) {
	t.Helper()
	require.Zero(t, r.Nanosecond(), "%s: %s is a whole second", what, r)
	h, m, s := r.In(loc).Clock()
	if s == 0 && campaign.Clock(h*60+m) == w.Start {
		return
	}
	start, _ := r.In(loc).ZoneBounds()
	require.True(t, start.Equal(r), "%s: %s is neither %s on the wall clock nor a change of offset", what, r.In(loc), w.Start)
}

// FuzzWindowNext: a window in any zone of the embedded database and any
// instant t from 1811 to 2191 (or, with the top bit of nsec, within two
// days of the zone's next change of offset after it). NextAllowed(t) is a UTC instant r ≥ t in the
// window, t itself when t is in it, otherwise the wall clock's w.Start or a
// change of offset, within three days, with no instant of the window in
// [t, r). NextDayStart(t) is the same for the instants in the window on a
// local date after t's.
func FuzzWindowNext(f *testing.F) {
	raw, err := os.ReadFile("testdata/calling-windows.json")
	require.NoError(f, err)
	var cases []struct {
		Zone, Start, End, Now string
	}
	require.NoError(f, json.Unmarshal(raw, &cases))
	zones := allZones()
	for i, c := range cases {
		if i%15 != 0 { // the seeds stay fast; the fuzzer has them all in reach
			continue
		}
		zi, found := slices.BinarySearch(zones, c.Zone)
		require.True(f, found, c.Zone)
		w := window(f, c.Start+"-"+c.End)
		now := utc(f, c.Now)
		f.Add(uint16(zi), uint16(w.Start), uint16(w.End-w.Start-1), now.Unix()+5_000_000_000, uint32(0))
	}
	apia, _ := slices.BinarySearch(zones, "Pacific/Apia")
	f.Add(uint16(apia), uint16(9*60), uint16(8*60), time.Date(2011, 12, 29, 20, 0, 0, 0, time.UTC).Unix()+5_000_000_000, uint32(1))
	nyc, _ := slices.BinarySearch(zones, "America/New_York")
	f.Add(uint16(nyc), uint16(0), uint16(campaign.MinutesPerDay-1), int64(-4_000_000_000+5_000_000_000), uint32(999_999_999)) // LMT, -4:56:02

	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Unix() + 5_000_000_000
	for i, name := range []string{"America/New_York", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Beirut", "America/Nuuk", "Antarctica/Troll"} {
		zi, _ := slices.BinarySearch(zones, name)
		f.Add(uint16(zi), uint16(60*i+30), uint16(90), jan, uint32(1<<31|uint32(2*24*3600+i*600)<<8))
	}

	f.Fuzz(func(t *testing.T, zi, start, length uint16, sec int64, nsec uint32) {
		loc, w, now := fuzzWindow(t, zi, start, length, sec, nsec)
		if nsec&(1<<31) != 0 {
			// Near the zone's next change of offset (if any within the
			// fuzzer's range), up to two days either side of it.
			if _, end := now.In(loc).ZoneBounds(); !end.IsZero() && end.Year() < 2200 {
				near := time.Duration(int64(nsec>>8)%(4*24*3600)-2*24*3600) * time.Second
				now = end.Add(near).Add(time.Duration(nsec % 1000))
			}
		}
		require.True(t, w.Valid())
		in := func(at time.Time) bool { return w.Contains(at, loc) }
		what := loc.String() + " " + w.String() + " from " + now.In(loc).Format(time.RFC3339Nano)

		r := w.NextAllowed(now, loc)
		require.Equal(t, time.UTC, r.Location(), what)
		require.False(t, r.Before(now), "%s: NextAllowed %s is before now", what, r)
		require.True(t, in(r), "%s: NextAllowed %s is not in the window", what, r.In(loc))
		if in(now) {
			require.True(t, r.Equal(now), "%s: now is in the window, NextAllowed %s", what, r)
		} else {
			requireStartOrChange(t, what+" NextAllowed", loc, w, r)
		}
		require.LessOrEqual(t, r.Sub(now), 72*time.Hour, "%s: NextAllowed %s", what, r.In(loc))
		requireFirst(t, what+" NextAllowed", loc, now, r, in)

		today := campaign.LocalDay(now, loc)
		d := w.NextDayStart(now, loc)
		laterDay := func(at time.Time) bool { return in(at) && campaign.LocalDay(at, loc) > today }
		require.Equal(t, time.UTC, d.Location(), what)
		require.True(t, d.After(now), "%s: NextDayStart %s is not after now", what, d)
		require.True(t, laterDay(d), "%s: NextDayStart %s is not in the window on a later date", what, d.In(loc))
		requireStartOrChange(t, what+" NextDayStart", loc, w, d)
		require.LessOrEqual(t, d.Sub(now), 96*time.Hour, "%s: NextDayStart %s", what, d.In(loc))
		requireFirst(t, what+" NextDayStart", loc, now, d, laterDay)
		require.False(t, d.Before(r), "%s: NextDayStart %s before NextAllowed %s", what, d, r)
	})
}

// FuzzGateAdmit: one item's attempts through a Gate, at instants that go
// forward, the contact's zone moving between them to any zone of the
// embedded database. At each: Earliest is at or after now, in the window,
// and a fixed point (Earliest of it is itself); Admit admits exactly when
// Earliest is now, and otherwise answers Earliest; an item refused is
// admitted at that instant; and a call is admitted only while the calls
// already made on its local date (in the zone of now) are fewer than
// PerDay (never too few counted).
func FuzzGateAdmit(f *testing.F) {
	zones := allZones()
	at := func(name string) uint16 {
		i, found := slices.BinarySearch(zones, name)
		require.True(f, found, name)
		return uint16(i)
	}
	spring := time.Date(2026, 3, 8, 4, 0, 0, 0, time.UTC).Unix() + 5_000_000_000
	f.Add(at("America/New_York"), uint16(9*60), uint16(9*60-1), uint8(2), spring, []byte{0, 1, 30, 2, 60, 3, 90, 4, 200, 5})
	f.Add(at("Asia/Tokyo"), uint16(0), uint16(campaign.MinutesPerDay-1), uint8(0), spring, []byte{10, 0, 10, 0, 10, 8, 100, 12, 5, 0})
	f.Add(at("Asia/Beirut"), uint16(22*60), uint16(2*60), uint8(1), time.Date(2026, 10, 24, 18, 0, 0, 0, time.UTC).Unix()+5_000_000_000, []byte{20, 1, 20, 1, 20, 1, 20, 1, 20, 1})
	f.Add(at("Pacific/Apia"), uint16(9*60), uint16(60), uint8(3), time.Date(2011, 12, 29, 18, 0, 0, 0, time.UTC).Unix()+5_000_000_000, []byte{255, 255, 1, 1, 255, 0})

	f.Fuzz(func(t *testing.T, zi, start, length uint16, perDay uint8, sec int64, steps []byte) {
		loc, w, now := fuzzWindow(t, zi, start, length, sec, 0)
		g := campaign.Gate{Window: w, PerDay: 1 + int(perDay)%4, Loc: loc}
		var it pool.Item
		var calls []time.Time
		for i := 0; i+1 < len(steps) && i < 128; i += 2 {
			b0, b1 := steps[i], steps[i+1]
			now = now.Add(time.Duration(b0)*7*time.Minute + time.Duration(b1)*13*time.Second)
			if b1%4 == 0 {
				name := zones[(int(b1)*257+int(b0))%len(zones)]
				var err error
				g.Loc, err = pool.LoadZone(name)
				require.NoError(t, err)
			}
			what := g.Loc.String() + " " + w.String() + " at " + now.In(g.Loc).Format(time.RFC3339)

			e := g.Earliest(it, now)
			require.False(t, e.Before(now), "%s: Earliest %s", what, e)
			require.True(t, w.Contains(e, g.Loc), "%s: Earliest %s is not in the window", what, e.In(g.Loc))
			require.True(t, g.Earliest(it, e).Equal(e), "%s: Earliest of Earliest %s", what, e.In(g.Loc))

			out, when, ok := g.Admit(it, now)
			require.Equal(t, e.Equal(now), ok, "%s: Admit agrees with Earliest %s", what, e.In(g.Loc))
			if !ok {
				require.True(t, when.Equal(e), "%s: Admit answers %s, Earliest %s", what, when, e)
				require.Equal(t, it, out, "%s: a refusal leaves the item", what)
				_, _, ok := g.Admit(it, e)
				require.True(t, ok, "%s: refused at the instant Earliest gave, %s", what, e.In(g.Loc))
				continue
			}
			day := campaign.LocalDay(now, g.Loc)
			n := 0
			for _, c := range calls {
				if campaign.LocalDay(c, g.Loc) == day {
					n++
				}
			}
			require.Less(t, n, g.PerDay, "%s: admitted with %d calls on that date already (%v)", what, n, calls)
			require.Equal(t, now.UTC(), out.CallAt)
			it = out
			calls = append(calls, now)
		}
	})
}
