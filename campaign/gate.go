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
// An item's count of the day is CallsToday, the calls counted on the local
// date of CallAt, its latest counted call (see [pool.Item]): a later date
// starts at zero. The date is CallAt's in Loc, the zone of now: when the
// contact's zone changes (the contact's own, or the campaign's default),
// the calls counted in the old one still count on the date their latest
// falls on in the new one. That may count a call of the new zone's
// yesterday against today (never too few): the count is of the latest
// date only.
//
// The cap is the contact's, not the item's: Others are the contact's items
// in the campaign's other pools, whose calls count with the item's own,
// each on the local date of its CallAt in Loc.
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
	n := 0
	if g.sameDay(it, t) {
		n = it.CallsToday
	}
	for _, x := range g.Others {
		if g.sameDay(x, t) {
			n += x.CallsToday
		}
	}
	return n
}

// Admit decides the dispatch at now of the due item it. When g lets it be
// attempted now, ok is true and out is it with the attempt counted on
// now's day (CallAt = now, CallsToday one more, or 1 on a new day);
// otherwise ok is false, out is it unchanged, and at is the earliest
// instant it may be (see Earliest). CallToken, the token of the dispatch
// counted, is left to the caller to set once [pool.Item.Dispatched] has
// drawn that token: it cannot be known before.
func (g Gate) Admit(it pool.Item, now time.Time) (out pool.Item, at time.Time, ok bool) {
	at = g.Earliest(it, now)
	if at.After(now) {
		return it, at, false
	}
	if !g.sameDay(it, now) {
		it.CallsToday = 0
	}
	it.CallsToday++
	if now.After(it.CallAt) {
		it.CallAt = now.UTC()
	}
	return it, now, true
}

// sameDay reports whether the calls counted on the local date (in g.Loc)
// of it's latest counted call count on t's date: when t falls on that
// date, or on an earlier one. A clock that reads an earlier date than a
// call already counted (another node's behind, this one stepped back)
// adds its call to that later date's count rather than start a new day
// and forget it: it may count a call too many, never one too few.
func (g Gate) sameDay(it pool.Item, t time.Time) bool {
	return !it.CallAt.IsZero() && LocalDay(t, g.Loc) <= LocalDay(it.CallAt, g.Loc)
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
