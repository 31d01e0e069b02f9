package postgres

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestClockWatch_Err: the skew err judges is the last measure's, moved by
// the clock's steps since (how far it moved beyond the monotonic clock),
// at the least its margin allows: a measure's slow round trip refuses no
// clock that may be within MaxClockSkew.
func TestClockWatch_Err(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	const s = time.Second
	for _, c := range []struct {
		mid, margin   time.Duration // the measure
		moved, passed time.Duration // since: the clock, the monotonic clock
		refused       string        // "" when it is not
	}{
		{0, 0, 0, 0, ""},
		{29 * s, 0, 0, 0, ""},
		{31 * s, 0, 0, 0, "at least 31s ahead of"},
		{31 * s, 2 * s, 0, 0, ""}, // 29 to 33 s ahead
		{33 * s, 2 * s, 0, 0, "at least 31s ahead of"},
		{-33 * s, 2 * s, 0, 0, "at least 31s behind"},
		{0, 0, 31 * s, 0, "at least 31s ahead of"},       // stepped ahead
		{0, 0, -31 * s, 0, "at least 31s behind"},        // stepped back
		{0, 0, 31 * s, 31 * s, ""},                       // 31 s went by
		{0, 0, time.Hour, time.Hour - 20*s, ""},          // 20 s ahead after an hour
		{0, 0, time.Hour, time.Hour - 40*s, "40s ahead"}, // 40 s
		{0, time.Millisecond, 30*s + time.Millisecond, 0, ""},
		{40 * s, 0, -15 * s, 0, ""}, // set right since the measure
	} {
		now, elapsed := base, time.Duration(0)
		w := &clockWatch{max: 30 * s, now: func() (time.Time, time.Duration) { return now, elapsed }}
		w.last.Store(&clockReading{mid: c.mid, margin: c.margin, wall: base, elapsed: 0})
		now, elapsed = base.Add(c.moved), c.passed
		err := w.err()
		if c.refused == "" {
			require.NoError(t, err, "%+v", c)
			continue
		}
		require.ErrorIs(t, err, ErrClockSkew, "%+v", c)
		require.ErrorContains(t, err, c.refused, "%+v", c)
	}
	require.NoError(t, (&clockWatch{max: 30 * s}).err(), "no measure: no watch (MaxClockSkew negative)")
}
