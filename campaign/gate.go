package campaign

import (
	"time"

	"github.com/poolq/poolq/pool"
)

// Gate is what a rule asks of the attempts of one item: that each start
// inside the rule's calling window, and that no more than PerDay start on
// one calendar day, both in Loc, the contact's zone. Its methods are pure:
// the caller passes the time.
//
// An item keeps the counts of its latest three calling days (see
// [pool.Item]): CallsToday, the calls counted on the local date of
// CallAt, its latest counted call; PrevCallsToday, those of the calling
// day before, on the date of PrevCallAt, the latest of them; and
// OlderCallsToday, those of the day before that, on the date of
// OlderCallAt. A call on a later date than CallAt's starts a new count:
// the latest day becomes the previous one, and the previous one the
// older. Each count is of its latest call's date read in Loc, the zone
// of now, and counts on t's date when that date is t's or later (a clock
// behind, see sameDay), with the latest day's. When the contact's zone
// changes (the contact's own, or the campaign's default), the calls
// counted in the old one count on the date their day's latest falls on in
// the new one: a zone moved east may count a call of the new zone's
// yesterday against today, and a zone moved west may put the calls of two or three of the
// old zone's dates on one date, where their counts count. Never too few:
// every call counted falls on the date of its count's latest call or
// before, and Admit forgets a day's calls only when they are all two days
// older than the call it admits (it adds them to the older day's count
// otherwise, see Admit), so that no zone puts them on a date with a call
// to come. Nor too many, but for a clock behind and for that fold, which
// is rare in one zone (a contact whose zone changes before nearly every
// call may meet it at each change, and count a folded day's calls again
// on a later date, as many as it holds): each count is one calling day's,
// so a call is refused only when the days whose latest call falls on its
// date hold PerDay calls (when a zone moved, some of a day's calls may fall on
// the date before: a Gate knows counts, not instants).
//
// The cap is the contact's, not the item's: Others are the contact's items
// in the campaign's other pools, whose calls count with the item's own,
// each count on the local date of its latest call in Loc.
//
// Loc must not be nil, as for every [Window] method: the methods panic
// (use time.UTC for UTC; [Rule.Gate] takes the zone the engine loaded).
type Gate struct {
	Window Window
	PerDay int
	Loc    *time.Location
	Others []pool.Item
}

// Gate returns r's gate for a contact in loc: its window and its
// max_calls_per_day.
func (r Rule) Gate(loc *time.Location) Gate {
	return Gate{Window: r.Window(), PerDay: r.MaxCallsPerDay, Loc: loc}
}

// Earliest returns the earliest instant at or after t at which g lets it
// be attempted: inside the window, on a day whose cap it has not reached.
// It is t itself when t is such an instant.
func (g Gate) Earliest(it pool.Item, t time.Time) time.Time {
	at := g.Window.NextAllowed(t, g.Loc)
	// A date at its cap moves at to the next date's window. That date's
	// count is zero, unless a clock behind counted calls on it (sameDay):
	// then on, until a date after every counted call. PerDay below 1
	// allows no call on a date with calls: one date on, as ever.
	for g.calls(it, at) >= g.PerDay {
		at = g.Window.NextDayStart(at, g.Loc)
		if g.PerDay < 1 {
			break
		}
	}
	return at
}

// calls returns the contact's calls counted on t's local date: it's and
// those of g.Others.
func (g Gate) calls(it pool.Item, t time.Time) int {
	n := g.count(it, t)
	for _, x := range g.Others {
		n += g.count(x, t)
	}
	return n
}

// count returns the calls of it's three calling days that count on t's
// local date: each day's whose date is t's or later (sameDay), when the
// latest day's is (an earlier day's date is never later than the
// latest's). When t's date is the latest day's, an earlier day counts
// only when a zone moved west puts it on that date; when t's date is
// earlier (a clock behind, see sameDay), every day on t's date counts too,
// the latest day's and those between.
func (g Gate) count(it pool.Item, t time.Time) int {
	if !g.sameDay(it.CallAt, t) {
		return 0
	}
	n := it.CallsToday
	if g.sameDay(it.PrevCallAt, t) {
		n += it.PrevCallsToday
	}
	if g.sameDay(it.OlderCallAt, t) {
		n += it.OlderCallsToday
	}
	return n
}

// Admit decides the dispatch at now of the due item it. When g lets it be
// attempted now, ok is true and out is it with the attempt counted on
// now's day (CallAt = now, CallsToday one more); on a new day, 1, the
// latest day's count becoming the previous one (PrevCallAt,
// PrevCallsToday) and the previous one the older (OlderCallAt,
// OlderCallsToday), unless the latest day has no call left, with the
// older one's added to it unless all its calls are [forgetAfter] before
// now. Otherwise ok is false, out is it unchanged, and at is the earliest
// instant it may be (see Earliest). CallToken, the token of the dispatch
// counted, is left to the caller to set once [pool.Item.Dispatched] has
// drawn that token: it cannot be known before.
//
// The older day's count is forgotten when a new day starts, but for that
// fold. The fold keeps Gate from counting too few: in one zone the dates
// of the previous day and of the latest lie wholly between the older
// day's latest call and now, two full dates, but a zone moved between
// the calls can start three new dates within hours (calls at 23:30 and
// 00:30 in Tokyo, the zone then moved to Kolkata and a call at 00:15
// there, then to London and a call at 00:15 there: under ten hours),
// whose calls a zone moved east can put on one date (all four are on one
// date in Kiritimati). In one zone folding cannot chain the way folding
// the previous day did (calls every 23 hours folded every day into it):
// it needs the two full dates between to last under forgetAfter together,
// which only a date shortened by a change of its offset (23 hours at the
// start of daylight saving time) allows, and only while that date is the
// previous day's or the latest's, for two new days at most. Then the
// older count holds three days' calls, too many and never too few where
// it counts, and is forgotten at the next new day.
func (g Gate) Admit(it pool.Item, now time.Time) (out pool.Item, at time.Time, ok bool) {
	at = g.Earliest(it, now)
	if at.After(now) {
		return it, at, false
	}
	if !g.sameDay(it.CallAt, now) {
		// A day whose calls were all given back counts none: the days
		// before it stay the previous one and the older.
		if it.CallsToday > 0 {
			n := it.PrevCallsToday
			if !it.OlderCallAt.IsZero() && now.Sub(it.OlderCallAt) < forgetAfter {
				n += it.OlderCallsToday // too recent to forget: counted with the later day's
			}
			it.OlderCallAt, it.OlderCallsToday = it.PrevCallAt, n
			it.PrevCallAt, it.PrevCallsToday = it.CallAt, it.CallsToday
		}
		it.CallsToday = 0
	}
	it.CallsToday++
	if now.After(it.CallAt) {
		it.CallAt = now.UTC()
	}
	return it, now, true
}

// forgetAfter is how long before a call a calling day's calls must all
// be for Admit to forget them when that call starts a new day: far longer
// than a local date lasts (a day, and an hour or two more on the date of
// a change of its zone's offset), so that no zone, nor a clock hours
// behind, puts them on the date of that call or of a later one. Its test
// is of the older day's latest call, two calling days back: the dates of
// the two days after it lie between that call and the new day's, so in
// one zone the older day is kept only across a date shortened by a change
// of offset (see Admit). Testing the previous day's instead, as when an item
// kept two days, held for a contact called every day or so: every day
// was folded into the previous day's count, too many calls on one date
// when a zone moved west. A shorter forgetAfter would not end that
// (calls at 00:30 and 23:30 on every date start each new day 25 hours
// after the latest call of the day two back) and would risk too few.
const forgetAfter = 48 * time.Hour

// sameDay reports whether the calls counted on the local date (in g.Loc)
// of a calling day's latest counted call, at, count on t's date: when t
// falls on that date, or on an earlier one. A clock that reads an earlier
// date than a call already counted (another node's behind, or this one
// stepped back after it was ahead) cannot know which of the two dates is
// the real one: it counts against its cap the calls of both (see count),
// and adds its call to the later date's count rather than start a new day
// and forget it. It may count calls too many (a clock behind by seconds
// waits those seconds for the later date), never one too few on either
// date. A zero at (no such day) counts on no date.
func (g Gate) sameDay(at, t time.Time) bool {
	return !at.IsZero() && LocalDay(t, g.Loc) <= LocalDay(at, g.Loc)
}

// Retry moves the retry of an item a failure just settled at now: when it
// is Retrying or Scheduled for an instant g does not allow (outside the
// window, or on a day whose cap it has reached), it becomes Scheduled for
// the earliest one that g allows. A retry time before now is due at once,
// and is judged at now: kept when g allows now, moved otherwise (not to an
// instant g allowed in the past). Any other item is returned as it is.
func (g Gate) Retry(it pool.Item, now time.Time) pool.Item {
	if it.NextRetryAt == nil || (it.Status != pool.StatusRetrying && it.Status != pool.StatusScheduled) {
		return it
	}
	from := *it.NextRetryAt
	if from.Before(now) {
		from = now
	}
	if at := g.Earliest(it, from); at.After(from) {
		at = at.UTC()
		it.Status = pool.StatusScheduled
		it.NextRetryAt = &at
	}
	return it
}
