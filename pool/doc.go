// Package pool is poolq's domain: pools of contacts, their items, the rules
// and defaults of the contact-pool REST API, and the item state machine.
//
// It knows no SQL, starts no goroutine and reads no clock: every function that
// depends on time takes now as an argument, so the same inputs always give the
// same outputs, but for the fencing token [Item.Dispatched] draws at random
// (see [Item.Token]). The store persists what this package decides; the queue
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
// An [Item] is one contact in one pool. Its [Status] moves through a state
// machine of pure methods that return the item as it becomes and persist
// nothing ([Item.Dispatched], [Item.InCall], [Item.Completed],
// [Item.Failed], [Item.Expired], [Item.Released], [Item.Skipped],
// [Item.Requeued]); package queue persists their results:
//
//	Pending ─Dispatched→ Processing ─InCall→ In_Call
//	in flight ─Completed→ Completed
//	in flight ─Failed, attempts left→ Retrying (or Scheduled at a named time)
//	in flight ─Failed, no attempts left or final→ Failed
//	in flight ─Released→ Pending (or Retrying if it failed before), attempt not counted
//	waiting ─Skipped→ Skipped;  terminal ─Requeued→ Pending
//
// An item may be dispatched at most [Pool.Ceiling] = max_retries + 1 times.
package pool
