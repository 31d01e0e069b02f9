package queue

import (
	"time"

	"github.com/poolq/poolq/pool"
)

// EventKind names what happened to a leased item in [Engine.Work].
type EventKind string

// The events of Work.
const (
	EventDispatched EventKind = "dispatched" // an item was leased for the handler (EventExpired follows when the lease ended before the handler could start)
	EventCompleted  EventKind = "completed"  // the handler returned nil; the item is Completed
	EventRetried    EventKind = "retried"    // the handler failed; the item will be tried again (Retrying or Scheduled)
	EventFailed     EventKind = "failed"     // the handler failed; the item is Failed for good (or Skipped: its contact opted out under a rule)
	EventExpired    EventKind = "expired"    // the lease was lost before or while the handler ran (it expired or was settled elsewhere; see Engine.Work for the result's event that may follow)
	EventReleased   EventKind = "released"   // the item was given back, attempt not counted: at shutdown (its handler was stopped before its call connected, or never started), after its lease's end had stopped the handler, or before its handler started, its calling window closed since the claim
	EventError      EventKind = "error"      // the engine could not dispatch, extend or settle, or Work could not read its pools at its start (a settlement and that read are tried again: see Engine.Work); Err says why
)

// Event reports one step of [Engine.Work] to WorkOptions.OnEvent.
type Event struct {
	Kind EventKind
	// Lease is the lease concerned (zero for an EventError while
	// dispatching).
	Lease Lease
	// Item is the item after the event, when the engine returned it
	// (retried, failed, released after its handler ran).
	Item pool.Item
	// Err is the handler's error (retried, failed), or the engine's
	// (error, expired).
	Err error
	// Elapsed is how long the handler ran (completed, retried, failed,
	// expired, released).
	Elapsed time.Duration
}
