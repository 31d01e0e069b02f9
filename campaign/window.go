package campaign

import (
	"fmt"
	"math"
	"time"
)

// secondsPerDay is the length of a day of wall-clock time: local clocks
// know no leap seconds, and a day that a time zone change lengthens or
// shortens still has 24 hours of wall-clock time, some of them read twice
// or never.
const secondsPerDay = 24 * 60 * 60

// Window is a daily calling window: the local times of day [Start, End) of
// a zone's wall clock, in minutes after midnight. It is valid when
// 0 ≤ Start < End ≤ [MinutesPerDay]: a window does not cross midnight (a
// rule's validation refuses one that would), and End = MinutesPerDay means
// "until midnight", the window of a rule without an end time.
//
// A Window is a plain value; its methods are pure (they take now, read no
// clock) and safe for concurrent use. They take the zone as a
// *time.Location, which must not be nil (use time.UTC for UTC); load it
// with [pool.LoadZone], so that every host computes the same instants.
//
// # Wall clock, not elapsed time
//
// An instant t lies in the window when its wall-clock time in the zone,
// seconds and fractions included, is in [Start, End): with Start = 09:00
// and End = 18:00, 17:59:59.999 is in and 18:00:00 is out. Time zone
// changes make the wall clock jump, and the methods follow the wall clock
// as it is read, minute by minute, never as it would be without the jump:
//
//   - A local time a change skips (the spring gap, 02:00–02:59 in New York)
//     is never read. A window whose start falls in the gap is met at the
//     change, at the first wall time after it (03:00), if that time is
//     still before End; a window wholly inside the gap is not open that
//     day.
//   - A local time a change repeats (the autumn overlap, 01:00–01:59 in New
//     York) is read twice. A window is met at the first reading; and when
//     the clock is turned back into a window it had already left, the
//     window opens again at the change, as a minute-by-minute reading of
//     the clock would say.
//
// This holds for changes of any size and at any time of day: 30 minutes
// at 02:00 (Australia/Lord_Howe), an hour at 02:45 (Pacific/Chatham,
// +12:45/+13:45), at midnight, or a whole day (Pacific/Apia, 2011).
//
// # Results
//
// The methods return instants in UTC (time.Time values with no monotonic
// clock reading), as poolq keeps every time it computes. An instant that
// is already in the window is returned as it is, to the nanosecond.
// Otherwise the result is either the instant the wall clock reads Start
// exactly (a whole wall-clock minute, so a whole UTC minute too while the
// zone's offset is a whole number of minutes, as every offset in use
// today is) or the instant of a zone change (whole seconds).
//
// # Cost
//
// Each method looks the zone up a constant number of times (O(log n) in
// the zone's number of recorded changes, as time.Time.In does), plus a
// few more for each zone change it passes before its answer; it does not
// walk minutes or days one by one, and does not allocate.
type Window struct {
	Start, End Clock
}

// Window returns r's daily calling window: [StartTime, EndTime), or
// [StartTime, midnight) when r has no end time (a text rule). A rule that
// passed validation has a valid window.
func (r Rule) Window() Window {
	w := Window{Start: r.StartTime, End: MinutesPerDay}
	if r.EndTime != nil {
		w.End = *r.EndTime
	}
	return w
}

// Valid reports whether 0 ≤ w.Start < w.End ≤ MinutesPerDay.
func (w Window) Valid() bool {
	return 0 <= w.Start && w.Start < w.End && w.End <= MinutesPerDay
}

// String returns w as "[HH:MM:SS, HH:MM:SS)", End = MinutesPerDay written
// "24:00:00".
func (w Window) String() string { return fmt.Sprintf("[%s, %s)", w.Start, w.End) }

// Contains reports whether t's wall-clock time in loc lies in w. It is
// false for every t when w is not valid.
func (w Window) Contains(t time.Time, loc *time.Location) bool {
	if !w.Valid() {
		return false
	}
	_, sec := wallClock(t, loc)
	return w.holds(sec)
}

// NextAllowed returns the earliest instant at or after now whose
// wall-clock time in loc lies in w: now itself (in UTC) when it does
// already, else the next time the wall clock reads w.Start, or the zone
// change at which the wall clock jumps into w, whichever comes first (see
// [Window] for skipped and repeated local times). It panics if w is not
// valid: an empty window is never met.
func (w Window) NextAllowed(now time.Time, loc *time.Location) time.Time {
	return w.next(now, loc, math.MinInt64)
}

// NextDayStart returns the earliest instant whose local date in loc is
// after now's local date and whose wall-clock time lies in w: when w
// opens on the next local day on which it opens at all (usually the next
// day; the day after when a zone change skips the whole window). It is
// where an item goes when it has used its attempts for the day. It panics
// if w is not valid.
//
// A zone change that turns the clock back over midnight (from 00:30 on
// day D+1 back to 23:30 on day D) returns the local date to D for a while;
// those instants are on day D, and not candidates.
func (w Window) NextDayStart(now time.Time, loc *time.Location) time.Time {
	day, _ := wallClock(now, loc)
	return w.next(now, loc, day)
}

// LocalDay returns t's calendar date in loc as a day number: the number of
// days from 1970-01-01 to that date (negative before it), so that two
// instants have the same LocalDay exactly when they fall on the same local
// date. It is the key of the count of an item's attempts per day. It is
// exact for years within about ±5.8 million of 1970. loc must not be nil
// (it panics, as time.Time.In does; use time.UTC for UTC).
func LocalDay(t time.Time, loc *time.Location) int32 {
	day, _ := wallClock(t, loc)
	return int32(day)
}

// next returns the earliest instant t ≥ now whose wall-clock time in loc
// lies in w on a local date after the day number after (math.MinInt64:
// any date).
//
// It walks the zone's periods of constant offset, starting with now's. In
// one period the wall clock is UTC plus the period's offset: it runs on
// without jumps, so the first wall time of the period in w (on a date
// after after) is the first such time at or after the wall time at which
// the walk stands, a plain sum, and the answer if the period lasts until
// then. If it does not, the walk moves to the start of the next period,
// where the wall clock may have jumped into w (the answer, then), or
// past or back in front of it. Every step either answers or moves to a
// later period, so the walk ends; and since a zone changes its offset a
// few times a year at most, while w opens on every day but one a change
// skips it on, the answer is a day or two ahead and a step or three away.
//
// It never builds an instant from a local date and time with time.Date,
// which picks an offset of its own for a local time that is skipped or
// repeated: it adds offsets to UTC, and subtracts the offset of the period
// it is in, whose wall clock has no gap and no repeat.
func (w Window) next(now time.Time, loc *time.Location, after int64) time.Time {
	if !w.Valid() {
		panic(fmt.Sprintf("campaign: Window %s is not valid: the window is empty or out of the day", w))
	}
	t := now
	for {
		lt := t.In(loc)
		_, offset := lt.Zone()
		periodEnd := offsetEnd(lt)
		day, sec := splitWall(t.Unix() + int64(offset))
		if day > after && w.holds(sec) {
			return t.UTC()
		}
		// The first wall time of w on a date after after, at or after
		// the current wall time, were the offset to hold.
		switch {
		case day <= after:
			day = after + 1
		case sec >= int64(w.End)*60:
			day++
		} // else the wall clock is before Start, today.
		at := day*secondsPerDay + int64(w.Start)*60 - int64(offset)
		if periodEnd.IsZero() || at < periodEnd.Unix() {
			return time.Unix(at, 0).UTC()
		}
		t = periodEnd
	}
}

// offsetEnd returns the instant at which the offset in effect at lt ends,
// the zero time when it holds forever.
//
// It is time.Time.ZoneBounds's end, with one correction: from Go's zone
// rules (the TZ string that zone data ends with, which carries every year
// after its last recorded change, 2007 for most zones in the data poolq
// embeds), ZoneBounds gives an end at or before lt itself all through 31
// December UTC of a leap year (2028, 2032, …) in a zone whose rule
// changes its offset (golang/go#81583; Go 1.26). The offset it reports is
// right; only the end is a day early. The rule's periods there end at the
// turn of the UTC year, so the period goes on at least to the next UTC
// midnight, where the walk reads the zone again. Any end that does not
// lie after lt is replaced so, which also keeps the walk in next moving
// forward whatever the zone data says.
func offsetEnd(lt time.Time) time.Time {
	_, end := lt.ZoneBounds()
	if end.IsZero() || end.After(lt) {
		return end
	}
	day, _ := splitWall(lt.Unix())
	return time.Unix((day+1)*secondsPerDay, 0)
}

// holds reports whether sec, seconds after local midnight, lies in w.
func (w Window) holds(sec int64) bool {
	return int64(w.Start)*60 <= sec && sec < int64(w.End)*60
}

// wallClock returns t's wall clock in loc as a local date (days since
// 1970-01-01) and the whole seconds after that date's midnight. Dropping
// the fraction of a second changes no answer: window bounds are whole
// minutes, and UTC offsets whole seconds.
func wallClock(t time.Time, loc *time.Location) (day, sec int64) {
	_, offset := t.In(loc).Zone()
	return splitWall(t.Unix() + int64(offset)) // t.Unix rounds down, also before 1970
}

// splitWall splits wall, a wall-clock time in seconds since 1970-01-01
// 00:00 local, into a day number and the seconds after its midnight,
// rounding the day down before 1970.
func splitWall(wall int64) (day, sec int64) {
	day, sec = wall/secondsPerDay, wall%secondsPerDay
	if sec < 0 {
		day, sec = day-1, sec+secondsPerDay
	}
	return day, sec
}
