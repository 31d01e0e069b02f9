package pool

// An internal test: it walks the embedded archive's index to check every
// zone, which the exported API does not list.

import (
	"errors"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadZone(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		jan := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC)
		jul := time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC)
		tests := []struct {
			name     string
			jan, jul time.Duration // UTC offsets on 15 January and 15 July 2026
		}{
			{"America/New_York", -5 * time.Hour, -4 * time.Hour},
			{"Pacific/Auckland", 13 * time.Hour, 12 * time.Hour},
			{"Pacific/Chatham", 13*time.Hour + 45*time.Minute, 12*time.Hour + 45*time.Minute},
			{"Australia/Lord_Howe", 11 * time.Hour, 10*time.Hour + 30*time.Minute},
			{"Asia/Kolkata", 5*time.Hour + 30*time.Minute, 5*time.Hour + 30*time.Minute},
			{"Asia/Kathmandu", 5*time.Hour + 45*time.Minute, 5*time.Hour + 45*time.Minute},
			{"Europe/London", 0, time.Hour},
			{"America/Sao_Paulo", -3 * time.Hour, -3 * time.Hour},
			{"Etc/GMT+5", -5 * time.Hour, -5 * time.Hour},
			{"UTC", 0, 0},
			{"Etc/UTC", 0, 0},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				loc, err := LoadZone(tt.name)
				require.NoError(t, err)
				require.Equal(t, tt.name, loc.String())
				_, off := jan.In(loc).Zone()
				require.Equal(t, tt.jan, time.Duration(off)*time.Second, "January")
				_, off = jul.In(loc).Zone()
				require.Equal(t, tt.jul, time.Duration(off)*time.Second, "July")
				require.True(t, ValidTimeZone(tt.name))
			})
		}
	})

	t.Run("OKUTCIsTimeUTC", func(t *testing.T) {
		t.Parallel()
		loc, err := LoadZone("UTC")
		require.NoError(t, err)
		require.Same(t, time.UTC, loc)
	})

	t.Run("OKSameLocationEachTime", func(t *testing.T) {
		t.Parallel()
		a, err := LoadZone("Europe/Paris")
		require.NoError(t, err)
		b, err := LoadZone("Europe/Paris")
		require.NoError(t, err)
		require.Same(t, a, b)
	})

	t.Run("ErrUnknownZone", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{
			"", "Local", // time.LoadLocation's UTC and host zone
			"america/new_york", "AMERICA/NEW_YORK", "utc", // IANA names are case-sensitive
			"Mars/Olympus_Mons", "America", "America/", "/America/New_York", "America/New_York ",
			"../../etc/passwd", "/usr/share/zoneinfo/UTC", "America/../UTC", "+02:00", "UTC+2",
			"posixrules", "zone.tab", "tzdata.zi", "leapseconds", "right/UTC", "posix/UTC",
		} {
			loc, err := LoadZone(name)
			require.ErrorIs(t, err, ErrUnknownZone, "%q", name)
			require.ErrorContains(t, err, "load zone ", "%q", name)
			require.Nil(t, loc, "%q", name)
			require.False(t, ValidTimeZone(name), "%q", name)
		}
	})

	t.Run("OKEveryZoneOfTheArchive", func(t *testing.T) {
		t.Parallel()
		names := archiveZones(t)
		require.Greater(t, len(names), 550)
		for _, name := range names {
			loc, err := LoadZone(name)
			require.NoError(t, err, name)
			require.True(t, ValidTimeZone(name), name)
			_ = time.Date(2026, 6, 1, 0, 0, 0, 0, loc) // usable
		}
	})
}

// TestLoadZone_Allocs checks that a zone loaded before costs no allocation
// (not parallel: AllocsPerRun counts the whole process's).
func TestLoadZone_Allocs(t *testing.T) {
	_, err := LoadZone("Asia/Tokyo")
	require.NoError(t, err)
	allocs := testing.AllocsPerRun(100, func() { _, _ = LoadZone("Asia/Tokyo") })
	require.Zero(t, allocs)
}

// TestLoadZone_SameAsHost compares the embedded database with the host's,
// through time.LoadLocation, for every zone both have: their UTC offsets
// must agree in 2026 and 2027, at instants every 7 hours (every hour of
// the day, both sides of every change) and on both sides of every change
// either database makes. Abbreviations are not compared (releases rename
// them: tzdata 2025c's MET reads "CET"), nor older instants (the releases
// may differ, and the embedded one carries backzone's pre-1970 history).
// Zones the host lacks are skipped, and so is the whole test on a host
// without /usr/share/zoneinfo or with ZONEINFO set (time.LoadLocation
// would not read the host's files).
func TestLoadZone_SameAsHost(t *testing.T) {
	t.Parallel()
	const hostDir = "/usr/share/zoneinfo/"
	if _, err := os.Stat(hostDir + "UTC"); err != nil {
		t.Skipf("the host has no zoneinfo: %v", err)
	}
	if os.Getenv("ZONEINFO") != "" {
		t.Skip("ZONEINFO is set: time.LoadLocation does not read the host's files first")
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)
	compared := 0
	for _, name := range archiveZones(t) {
		if _, err := os.Stat(hostDir + name); err != nil {
			continue
		}
		host, err := time.LoadLocation(name)
		if err != nil {
			continue
		}
		ours, err := LoadZone(name)
		require.NoError(t, err)
		same := func(at time.Time) {
			_, ho := at.In(host).Zone()
			_, oo := at.In(ours).Zone()
			require.Equal(t, ho, oo, "%s at %s", name, at)
		}
		for at := start; at.Before(end); at = at.Add(7 * time.Hour) {
			same(at)
		}
		for _, loc := range []*time.Location{host, ours} {
			for at := start; ; {
				_, next := at.In(loc).ZoneBounds()
				if next.IsZero() || !next.Before(end) {
					break
				}
				same(next.Add(-time.Second))
				same(next)
				at = next
			}
		}
		compared++
	}
	require.Greater(t, compared, 300, "zones found on the host")
}

// TestLoadZone_Concurrent loads and validates zones from many goroutines
// (run it with -race): every caller gets the same location for a name.
func TestLoadZone_Concurrent(t *testing.T) {
	t.Parallel()
	names := []string{"America/Chicago", "Pacific/Chatham", "Australia/Lord_Howe", "Asia/Kolkata",
		"Europe/Berlin", "UTC", "Africa/Casablanca", "America/St_Johns", "Nope/Nope", "Local"}
	const workers = 16
	got := make([][]*time.Location, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[w] = make([]*time.Location, len(names))
			for i := range names {
				n := names[(i+w)%len(names)]
				loc, err := LoadZone(n)
				if err != nil && !errors.Is(err, ErrUnknownZone) {
					panic(err)
				}
				if ValidTimeZone(n) != (err == nil) {
					panic("ValidTimeZone and LoadZone disagree on " + n)
				}
				got[w][(i+w)%len(names)] = loc
			}
		}()
	}
	wg.Wait()
	for i, n := range names {
		for w := 1; w < workers; w++ {
			require.Same(t, got[0][i], got[w][i], n)
		}
		require.Equal(t, n != "Nope/Nope" && n != "Local", got[0][i] != nil, n)
	}
}

// archiveZones returns the zone names of the embedded archive, sorted.
func archiveZones(t *testing.T) []string {
	t.Helper()
	files, err := zoneFiles()
	require.NoError(t, err)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
