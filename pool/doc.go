// Package pool is poolq's domain: pools of contacts, their items, the rules
// and defaults of the contact-pool REST API, and the item state machine.
//
// It knows no SQL, starts no goroutine and reads no clock: every function that
// depends on time takes now as an argument, so the same inputs always give the
// same outputs. The store persists what this package decides; the queue
// package composes the two.
//
// # Pools
//
// A [Pool] is created from [CreateParams] (validated, defaults applied by
// [New]) and changed with [UpdateParams] (partial: only the fields given
// change). Validation failures are [validate.Errors] listing every failing
// field by its JSON name.
//
// # Items and their statuses
//
// An [Item] is one contact in one pool. Its [Status] moves through the state
// machine implemented by [Dispatch], [MarkInCall], [Complete], [Fail],
// [Expire], [Release], [Skip] and [Requeue]:
//
//	Pending ─dispatch→ Processing ─MarkInCall→ In_Call
//	in flight ─Complete→ Completed
//	in flight ─Fail, attempts left→ Retrying (or Scheduled at a named time)
//	in flight ─Fail, no attempts left or final→ Failed
//	in flight ─Release→ Pending (or Retrying if it failed before), attempt not counted
//	waiting ─Skip→ Skipped;  terminal ─Requeue→ Pending
//
// An item may be dispatched at most [Pool.Ceiling] = max_retries + 1 times.
package pool
