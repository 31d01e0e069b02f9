package queue_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// noonZone names a fixed-offset zone (Etc/GMT-12 … Etc/GMT+11) where the
// local time at now is between 12:00 and 12:59.
//
// A test on the real clock that needs a window open all day gives its rule
// 00:00–23:59, the widest a rule holds (windows do not cross midnight and
// end before 24:00), and its campaign this zone, not UTC: in UTC nothing is
// due in the last minute of every UTC day, and CI failed so when its race
// pass crossed 23:59 UTC on 2026-12-05. In this zone the window stays open,
// and the contact's local day stays the same, for the next 11 hours.
func noonZone(now time.Time) string {
	east := 12 - now.UTC().Hour() // -11 … +12 hours
	if east == 0 {
		return "UTC"
	}
	return fmt.Sprintf("Etc/GMT%+d", -east) // POSIX signs: Etc/GMT-12 is UTC+12
}

// TestNoonZone: at every minute of a UTC day (and the last seconds of it),
// noonZone names a zone that loads and whose local time is 12:xx.
func TestNoonZone(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	check := func(now time.Time) {
		loc, err := time.LoadLocation(noonZone(now))
		require.NoError(t, err, "at %s", now)
		require.Equal(t, 12, now.In(loc).Hour(), "at %s in %s", now, loc)
	}
	for m := range 24 * 60 {
		check(day.Add(time.Duration(m) * time.Minute))
	}
	check(day.Add(24*time.Hour - time.Nanosecond))
	check(day.Add(23*time.Hour + 59*time.Minute + 30*time.Second))
}
