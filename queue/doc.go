// Package queue is the engine users hold: it manages pools and their items
// and dispatches them, composing the domain rules of package pool with a
// [store.Store].
//
//	st, _ := sqlite.Open(ctx, "dialer.db", sqlite.Options{})
//	eng, _ := queue.New(st, queue.Options{})
//	defer eng.Close()
//
//	p, _ := eng.CreatePool(ctx, pool.CreateParams{Name: "VIP", Description: "Hot leads"})
//	eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact})
//	l, _ := eng.Dequeue(ctx, p.UUID) // blocks until an item is due and the cap allows
//	eng.Complete(ctx, l, "answered")
//
// # Dispatch
//
// Due items go out in the pool's order: FIFO oldest first, LIFO newest
// first, Parallel highest priority then oldest. FIFO and LIFO pools have at
// most one item in flight; Parallel pools at most max_parallel_items. The cap
// is checked and the item claimed in one write transaction, so it holds for
// any number of goroutines and for several processes sharing one SQLite file.
//
// Every dispatch returns a [Lease] carrying a fencing token. Settling calls
// ([Engine.Complete], [Engine.Fail], [Engine.Release], [Engine.Extend],
// [Engine.MarkInCall]) must present the item's current token: a stale lease
// (settled already, expired, superseded by a later dispatch, or from a
// dispatch whose commit a crash lost: see [Lease.Token]) gets
// [ErrLeaseLost] and changes nothing of its own (a settlement writes the
// pool's expired leases it finds, its own included, as the next claim would).
// Delivery is at-least-once: an item whose
// holder vanishes comes back when its lease expires, counted as a failed
// attempt.
//
// # Expiry
//
// A lease that reaches its deadline is lost at once: no settlement is
// accepted for it after ExpiresAt, even before the engine has written the
// expiry down. The engine applies expiries itself, in the write transaction
// of every dispatch and settlement on the pool, before capacity is computed;
// a blocked [Engine.Dequeue] wakes up at the earliest lease deadline to do
// so. Until then, a pool's status counts may still show the item in flight.
// On a store shared by nodes with clocks of their own (PostgreSQL's; see
// store.LeaseGracer), the others take a lease for ended only its store's
// grace after its holder's deadline (postgres.Options.LeaseGrace, 60 s by
// default): the expiry is applied, the slot freed and the contact free to
// be called from another pool then, so that a node whose clock is ahead
// does not call a contact its holder may still be on. That holds while the
// nodes' clocks are within the grace of each other: a PostgreSQL store
// whose process's clock is further than postgres.Options.MaxClockSkew from
// the server's, at Open or after, refuses this engine's claims (an error
// wrapping postgres.ErrClockSkew: [Engine.TryDequeue] and the other
// dequeues return it, [Engine.Work] reports it as an EventError and tries
// again) and takes no lease for ended, until the clock is right again.
// While the clock is that far behind, [Engine.Extend] fails the same way
// (see store.ClockChecker): the end it would write, the others would reach
// before its holder. The lease keeps the end it had, and Work, which
// counts it on the monotonic clock from its last write, stops the handler
// there, before the others take the lease for ended. The node's
// settlements go on.
//
// # Concurrency and group commit
//
// An [Engine] is safe for concurrent use. Every method that changes state has
// written the change to the store before it returns.
//
// Writes go through group commit: the operations that callers start while a
// write transaction is running wait, and the next transaction runs all of
// them (up to [Options.MaxBatch]) in arrival order, so they share its
// statements' fixed costs and its commit (at Full durability, one fsync).
// One goroutine of the engine runs the transactions, while there are any to
// run. Each operation succeeds or fails alone: if one fails, the batch is
// rolled back and run again with a savepoint per operation; if its failure
// ended the whole transaction (SQLite after a full disk or an I/O error:
// its error wraps store.ErrTxEnded), once more without it; if the commit
// itself failed with nothing written (SQLite whose log could not grow),
// once more with each operation in a transaction of its own. The operations
// of one transaction run at one instant, read when it starts.
// [Engine.Stats] shows how many operations the transactions carried.
//
// A caller whose context ends while its operation waits for a transaction
// gets the context's error at once, and its operation never runs; a
// transaction waiting to begin (for another process's lock on a SQLite
// file) whose callers have all left stops waiting, so that it holds up
// neither the callers that come next nor [Engine.Close]. Once an
// operation that shares its transaction has started it runs to the end,
// whatever its context does (cancelling one statement could abort the
// transaction it shares), and its caller gets its result, as long as
// another caller of that transaction still waits: once the contexts of
// all of them have ended (cancelled, or past their deadlines), the
// transaction's ends too, and it fails as a whole, nothing of it written,
// if it has not committed by then (on SQLite, if its COMMIT has not
// begun; on PostgreSQL, if its COMMIT has not been sent). An operation
// alone in its transaction is ended by its caller: a cancellation of its
// context rolls it back before its COMMIT (once that is sent, the result
// stands), and it fails with an error wrapping context.Canceled, nothing
// of it written. On PostgreSQL, where an operation waits for another
// node's lock (a pool's, a rule's, a campaign's) after it has started,
// that ends the wait at once; so does the deadline of such an operation's
// context: it fails with an error wrapping context.DeadlineExceeded and
// [store.ErrLockTimeout], nothing of it written, and a server that stops
// answering holds it 100 ms past the deadline at most (its COMMIT
// excepted, whose outcome must be learned). An operation that shares its
// transaction waits for such a lock up to the store's lock timeout, or
// until every caller of the transaction has gone, as above. A
// panic in a write, the store's included, is an
// error for the operations of that transaction, and the next one runs as
// usual.
//
// # Dequeue variants
//
// [Engine.Dequeue] waits for one item; [Engine.DequeueN] waits for at least
// one and claims up to n in one transaction, for a dialer that works in
// batches (settled with [Engine.Settle], many leases in one transaction);
// [Engine.TryDequeue] does not wait, and says why it has nothing:
// [ErrEmpty], [ErrAtCapacity], or [ErrHeld] for a pool whose campaigns
// hold it (none In Process). [Engine.Work] runs the loop for you.
//
// # Calling rules
//
// A pool governed by a running campaign's rule (package campaign) is
// dispatched under it, in the contact's zone (the item's, else the
// campaign's, else UTC): an attempt starts only inside the rule's window
// and under its per-day cap; a due item that may not be called now
// becomes Scheduled at the earliest instant it may, in the claim's own
// transaction, and the claim goes on to the next one. Retries after a
// failure or an expiry, and a Failure's RetryAt, move into the window the
// same way. Contacts on the do-not-call list ([Engine.AddDNC]), under a
// rule with dnc_check, and contacts opted out ([Engine.OptOut]), under one
// with remove_on_opt_out, are Skipped rather than dialled; the failure that
// brings an item to the rule's escalation threshold records its one
// escalation ([Engine.Escalations], [Engine.WatchEscalations]).
//
// # Bounds
//
// Durations and times are bounded so that a mistaken value is an error of
// the call that made it: LeaseTimeout and Extend at most [MaxLeaseTimeout],
// RetryDelay and a Failure's RetryAt at most [MaxRetryDelay] ahead; a
// RetryAt in the past is due at once. A DequeueN for more than a pool's
// largest cap claims as many as the cap allows.
package queue
