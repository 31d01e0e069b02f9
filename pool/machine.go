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
	// settling an item that is not in flight.
	ErrWrongStatus = errors.New("operation not allowed in the item's status")
)

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

// Dispatch hands a due item out at now with a lease ending at expires. When
// the item's attempts already reach p's ceiling (the pool's max_retries was
// lowered after it failed), it is not dispatched: it becomes Failed and ok is
// false. Otherwise it becomes Processing with Attempts+1, StartedAt set on
// its first dispatch, a new fencing token, and ok is true.
//
// The caller must pass a waiting item that is due at now.
func Dispatch(it Item, p Pool, now, expires time.Time) (out Item, ok bool) {
	now = now.UTC()
	if it.Attempts >= p.Ceiling() {
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
	it.Token++
	it.LeaseExpiresAt = expires.UTC()
	return it, true
}

// MarkInCall records that the call of an in-flight item connected:
// Processing becomes In_Call; In_Call stays as it is.
func MarkInCall(it Item) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("mark in call: %s: %w", it.Status, ErrWrongStatus)
	}
	it.Status = StatusInCall
	return it, nil
}

// Extend moves the lease of an in-flight item to end at expires.
func Extend(it Item, expires time.Time) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("extend: %s: %w", it.Status, ErrWrongStatus)
	}
	it.LeaseExpiresAt = expires.UTC()
	return it, nil
}

// Complete settles an in-flight item as Completed at now with note.
func Complete(it Item, now time.Time, note string) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("complete: %s: %w", it.Status, ErrWrongStatus)
	}
	now = now.UTC()
	it.Status = StatusCompleted
	it.CompletedAt = &now
	it.Notes = note
	it.LeaseExpiresAt = time.Time{}
	return it, nil
}

// Fail settles an in-flight item after a failed attempt at now. RetryCount
// grows by one. The item becomes Failed when f.Final is set or its attempts
// reach p's ceiling; otherwise Scheduled at f.RetryAt when given, else
// Retrying at now + retryDelay.
func Fail(it Item, p Pool, now time.Time, f Failure, retryDelay time.Duration) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("fail: %s: %w", it.Status, ErrWrongStatus)
	}
	now = now.UTC()
	it.RetryCount++
	it.Notes = f.Note
	it.LeaseExpiresAt = time.Time{}
	switch {
	case f.Final || it.Attempts >= p.Ceiling():
		it.Status = StatusFailed
		it.FailedAt = &now
		it.NextRetryAt = nil
	case !f.RetryAt.IsZero():
		at := f.RetryAt.UTC()
		it.Status = StatusScheduled
		it.NextRetryAt = &at
	default:
		at := now.Add(retryDelay)
		it.Status = StatusRetrying
		it.NextRetryAt = &at
	}
	return it, nil
}

// Expire settles an in-flight item whose lease ended without a settlement:
// it counts as a failed attempt ([Fail] with the note "lease expired").
func Expire(it Item, p Pool, now time.Time, retryDelay time.Duration) (Item, error) {
	return Fail(it, p, now, Failure{Note: NoteExpired}, retryDelay)
}

// Release gives an in-flight item back unattempted: the attempt is not
// counted, and the item is due again at once, as Pending, or as Retrying
// (NextRetryAt = now) if it has failed before. The fencing token stays, so
// the released lease cannot settle a later dispatch.
func Release(it Item, now time.Time) (Item, error) {
	if !it.Status.InFlight() {
		return it, fmt.Errorf("release: %s: %w", it.Status, ErrWrongStatus)
	}
	now = now.UTC()
	it.Attempts--
	if it.Attempts == 0 {
		it.StartedAt = nil
	}
	it.LeaseExpiresAt = time.Time{}
	if it.RetryCount == 0 {
		it.Status = StatusPending
		it.NextRetryAt = nil
	} else {
		it.Status = StatusRetrying
		it.NextRetryAt = &now
	}
	return it, nil
}

// Skip withdraws a waiting item: it becomes Skipped with note. An item in
// flight gets [ErrInFlight]; a finished one [ErrWrongStatus].
func Skip(it Item, note string) (Item, error) {
	switch {
	case it.Status.InFlight():
		return it, ErrInFlight
	case !it.Status.Waiting():
		return it, fmt.Errorf("skip: %s: %w", it.Status, ErrWrongStatus)
	}
	it.Status = StatusSkipped
	it.NextRetryAt = nil
	it.Notes = note
	return it, nil
}

// Requeue revives a finished item (lead recycling): it becomes Pending with
// attempts, retry count, timestamps and notes reset; its priority, payload
// and insertion place stay. An item in flight gets [ErrInFlight]; a waiting
// one [ErrWrongStatus].
func Requeue(it Item) (Item, error) {
	switch {
	case it.Status.InFlight():
		return it, ErrInFlight
	case !it.Status.Terminal():
		return it, fmt.Errorf("requeue: %s: %w", it.Status, ErrWrongStatus)
	}
	it.Status = StatusPending
	it.Attempts = 0
	it.RetryCount = 0
	it.StartedAt, it.CompletedAt, it.FailedAt, it.NextRetryAt = nil, nil, nil, nil
	it.Notes = ""
	return it, nil
}

// SetPriority changes the priority of an item that is not in flight.
func SetPriority(it Item, priority int) (Item, error) {
	if it.Status.InFlight() {
		return it, ErrInFlight
	}
	it.Priority = priority
	return it, nil
}

// Removable returns [ErrInFlight] for an item in flight, nil otherwise.
func Removable(it Item) error {
	if it.Status.InFlight() {
		return ErrInFlight
	}
	return nil
}
