package pool

import (
	"errors"
	"fmt"
	"time"
)

// Errors of the state machine. The queue package returns them as they are
// (queue.ErrInFlight is ErrInFlight).
var (
	// ErrInFlight is returned when an operation would touch an item that a
	// lease holds (Processing or In_Call).
	ErrInFlight = errors.New("item is in flight")
	// ErrWrongStatus is returned when an operation does not apply to the
	// item's status: skipping a finished item, requeueing a waiting one,
	// settling an item that is not in flight. The Item methods' errors
	// wrapping it name the item's status; their caller names the
	// operation.
	ErrWrongStatus = errors.New("operation not allowed in the item's status")
)

// MaxNoteLen is the longest note an item may carry (a settlement's, a
// skip's), in characters (runes).
const MaxNoteLen = 1000

// Notes the state machine writes itself.
const (
	NoteCeiling = "retry ceiling reached"
	NoteExpired = "lease expired"
)

// Failure describes a failed attempt.
type Failure struct {
	// RetryAt, when not zero, is when the item may be tried again: the item
	// becomes Scheduled for that time. Zero means now + the engine's retry
	// delay (the item becomes Retrying).
	RetryAt time.Time
	// Final fails the item for good (Failed), whatever attempts are left.
	Final bool
	// Note is recorded in the item's notes.
	Note string
}

// Dispatched returns the item handed out at now with a lease ending at
// expires. ceiling is how many attempts the item may have in all: its
// pool's [Pool.Ceiling], or the governing rule's max_total_calls. When the
// item's attempts already reach it (it was lowered after the item failed),
// the item is not dispatched: it is returned Failed and ok is false.
// Otherwise it is Processing with Attempts+1, StartedAt set on its first
// dispatch, a new fencing token, and ok is true. The new token is larger
// than the item's by a random step of 1 to [TokenSpread] (see [Item.Token]):
// the one thing Dispatched does not decide from its inputs alone.
//
// it must be a waiting item that is due at now.
func (it Item) Dispatched(ceiling int, now, expires time.Time) (out Item, ok bool) {
	now = now.UTC()
	if it.Attempts >= ceiling {
		it.Status = StatusFailed
		it.FailedAt = &now
		it.NextRetryAt = nil
		it.Notes = NoteCeiling
		return it, false
	}
	it.Status = StatusProcessing
	it.Attempts++
	if it.StartedAt == nil {
		it.StartedAt = &now
	}
	it.NextRetryAt = nil
	it.Token = nextToken(it.Token)
	it.LeaseExpiresAt = expires.UTC()
	return it, true
}

// InCall returns the in-flight item with its call connected: Processing
// becomes In_Call; In_Call stays as it is.
func (it Item) InCall() (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	it.Status = StatusInCall
	return it, nil
}

// Extended returns the in-flight item with its lease ending at expires.
func (it Item) Extended(expires time.Time) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	it.LeaseExpiresAt = expires.UTC()
	return it, nil
}

// Completed returns the in-flight item settled as Completed at now with
// note.
func (it Item) Completed(now time.Time, note string) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	now = now.UTC()
	it.Status = StatusCompleted
	it.CompletedAt = &now
	it.Notes = note
	it.LeaseExpiresAt = time.Time{}
	return it, nil
}

// Failed returns the in-flight item settled after a failed attempt at now.
// The item becomes Failed when f.Final is set or its attempts reach ceiling
// (as for [Item.Dispatched]); otherwise Scheduled at f.RetryAt when given,
// else Retrying at now + retryDelay, and its RetryCount grows by one. A
// RetryAt before now is due at once: it is kept as given, but no earlier
// than the item's first dispatch (see [Item.dueAtOnce]).
func (it Item) Failed(ceiling int, now time.Time, f Failure, retryDelay time.Duration) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	now = now.UTC()
	it.Notes = f.Note
	it.LeaseExpiresAt = time.Time{}
	switch {
	case f.Final || it.Attempts >= ceiling:
		it.Status = StatusFailed
		it.FailedAt = &now
		it.NextRetryAt = nil
	case !f.RetryAt.IsZero():
		at := f.RetryAt.UTC()
		if due := it.dueAtOnce(now); at.Before(due) {
			at = due
		}
		it.Status = StatusScheduled
		it.NextRetryAt = &at
		it.RetryCount++
	default:
		at := now.Add(retryDelay)
		it.Status = StatusRetrying
		it.NextRetryAt = &at
		it.RetryCount++
	}
	return it, nil
}

// Expired returns the in-flight item settled after its lease ended
// without a settlement: it counts as a failed attempt ([Item.Failed] with
// the note "lease expired").
func (it Item) Expired(ceiling int, now time.Time, retryDelay time.Duration) (Item, error) {
	return it.Failed(ceiling, now, Failure{Note: NoteExpired}, retryDelay)
}

// Released returns the in-flight item given back unattempted: the attempt
// is not counted, and the item is due again at once, as Pending, or as
// Retrying if it has failed before, with NextRetryAt its first dispatch
// (see [Item.dueAtOnce]). When a rule
// counted this dispatch among the day's calls (CallToken is its token),
// the day's count gives it back too: CallsToday, the count of the latest
// calling day, which the latest counted dispatch is always on (the
// earlier days', PrevCallsToday and OlderCallsToday, stay). The fencing
// token stays, so the released lease cannot settle a later dispatch. An
// item In_Call is
// refused with [ErrWrongStatus]: its call connected, so the
// attempt was made and counts (against the ceiling and the day's calls);
// it is completed or failed, never given back.
func (it Item) Released(now time.Time) (Item, error) {
	if it.Status == StatusInCall {
		return it, fmt.Errorf("the item is %s, its call connected: complete or fail it: %w", it.Status, ErrWrongStatus)
	}
	if !it.Status.InFlight() {
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	now = now.UTC()
	due := it.dueAtOnce(now)
	it.Attempts--
	if it.CallToken == it.Token && it.CallsToday > 0 {
		it.CallsToday-- // the day's count gives the attempt back too, if it counted it
	}
	if it.Attempts == 0 {
		it.StartedAt = nil
	}
	it.LeaseExpiresAt = time.Time{}
	if it.RetryCount == 0 {
		it.Status = StatusPending
		it.NextRetryAt = nil
	} else {
		it.Status = StatusRetrying
		it.NextRetryAt = &due
	}
	return it, nil
}

// dueAtOnce is the retry time of an in-flight item settled at now to be
// due at once: its first dispatch, a time every claim of it has passed.
// Not now: a claim judges an item due by its own clock, and one that reads
// even a little earlier than now (another node's, or this one's stepped
// back) would not find it due, and would call a newer item of a FIFO pool
// first.
func (it Item) dueAtOnce(now time.Time) time.Time {
	if it.StartedAt == nil || it.StartedAt.After(now) {
		return now
	}
	return it.StartedAt.UTC()
}

// Skipped returns the waiting item withdrawn: Skipped, with note. An item
// in flight gets [ErrInFlight]; a finished one [ErrWrongStatus].
func (it Item) Skipped(note string) (Item, error) {
	switch {
	case it.Status.InFlight():
		return it, ErrInFlight
	case !it.Status.Waiting():
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	it.Status = StatusSkipped
	it.NextRetryAt = nil
	it.Notes = note
	return it, nil
}

// Requeued returns the finished item revived (lead recycling): Pending,
// with attempts, retry count, timestamps and notes reset; its priority,
// payload and insertion place stay, and so do the counts of its latest
// calling days (CallAt to OlderCallsToday): a contact called up to a
// rule's max_calls_per_day today is not called again today because its
// item was requeued. An item in flight gets [ErrInFlight]; a waiting one
// [ErrWrongStatus].
func (it Item) Requeued() (Item, error) {
	switch {
	case it.Status.InFlight():
		return it, ErrInFlight
	case !it.Status.Terminal():
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	it.Status = StatusPending
	it.Attempts = 0
	it.RetryCount = 0
	it.StartedAt, it.CompletedAt, it.FailedAt, it.NextRetryAt = nil, nil, nil, nil
	it.Notes = ""
	return it, nil
}

// Postponed returns the waiting item Scheduled for until, when a rule
// does not let it be attempted before (outside its calling window, or over
// its day's cap). Its attempts, retry count and notes stay. An item in
// flight gets [ErrInFlight]; a finished one [ErrWrongStatus].
func (it Item) Postponed(until time.Time) (Item, error) {
	switch {
	case it.Status.InFlight():
		return it, ErrInFlight
	case !it.Status.Waiting():
		return it, fmt.Errorf("the item is %s: %w", it.Status, ErrWrongStatus)
	}
	until = until.UTC()
	it.Status = StatusScheduled
	it.NextRetryAt = &until
	return it, nil
}

// WithPriority returns the item, which must not be in flight, with a new
// priority.
func (it Item) WithPriority(priority int) (Item, error) {
	if it.Status.InFlight() {
		return it, ErrInFlight
	}
	it.Priority = priority
	return it, nil
}

// Removable returns [ErrInFlight] for an item in flight, nil otherwise.
func (it Item) Removable() error {
	if it.Status.InFlight() {
		return ErrInFlight
	}
	return nil
}
