// Package store is poolq's persistence contract: the [Store] and [Tx]
// interfaces that the queue package programs against, and the sentinel
// errors every implementation returns.
//
// A store holds no policy. It persists the pools and items that the pool and
// queue packages decide, answers the queries dispatch needs (the next due
// items in a pool's order, the number in flight, the leases that ended), and
// keeps the per-status counts of every pool in step with its items.
//
// Implementations live in sub-packages (store/sqlite, store/postgres);
// store/storetest is the conformance suite every implementation must pass.
package store
