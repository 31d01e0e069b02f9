package queue

import (
	"errors"

	"github.com/poolq/poolq/pool"
)

var (
	// ErrEmpty is returned by TryDequeue when no item of the pool is due,
	// or none that may be called now: under a rule, the due items whose
	// contacts are in a call from another pool of the campaign are passed
	// over, left due.
	ErrEmpty = errors.New("queue: no item is due")
	// ErrAtCapacity is returned by TryDequeue when items are due but the
	// pool already has as many in flight as its cap allows.
	ErrAtCapacity = errors.New("queue: pool is at capacity")
	// ErrHeld is returned by TryDequeue when the pool is attached to
	// campaigns none of which is In Process: they hold it. Dequeue waits
	// instead, until one starts or resumes (or the pool is detached).
	ErrHeld = errors.New("queue: the pool's campaigns hold it (none is In Process)")
	// ErrLeaseLost is returned by Complete, Fail, Release, Extend and
	// MarkInCall when the lease is no longer the item's current one: it was
	// settled, it expired, or the item was dispatched again since.
	ErrLeaseLost = errors.New("queue: lease lost")
	// ErrInFlight is returned by Skip, Requeue, Remove, SetPriority and
	// DeletePool when an item they would touch is in flight, by
	// DetachPool when a contact the pool shares with its campaign's other
	// pools is in a call from one of them, and by DeleteCampaign when a
	// contact two of its pools share is (both naming the contact). It is
	// [pool.ErrInFlight].
	ErrInFlight = pool.ErrInFlight
	// ErrWrongStatus is returned by Skip (item finished), Requeue (item
	// not finished) and Release (call connected: In_Call). It is
	// [pool.ErrWrongStatus].
	ErrWrongStatus = pool.ErrWrongStatus
	// ErrClosed is returned by every method called after Close (but Close
	// itself and Stats) once its arguments are valid: every method checks
	// its arguments first, so invalid ones return their validation error
	// after Close too. It is also returned by the calls Close ends: a
	// Dequeue, DequeueN, DequeueCampaign or WatchEscalations blocked when
	// Close was called, a Work running then, and a claim under way then
	// (see [Engine.Close]).
	ErrClosed = errors.New("queue: engine closed")
)
