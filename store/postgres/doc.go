// Package postgres is the [store.Store] of poolq on PostgreSQL, through
// pgx v5 (pgxpool): the store for several dialer nodes sharing pools.
//
//	st, err := postgres.Open(ctx, "postgres://poolq@db:5432/dialer", postgres.Options{})
//	if err != nil { … }
//	defer st.Close()
//	eng, err := queue.New(st, queue.Options{})
//
// Every node opens its own Store on the same database and schema; each
// guarantee of the engine (the cap, FIFO and LIFO seriality, the ceiling,
// lease fencing, the counts) holds across nodes because it is enforced
// inside the database transaction, never in a node's memory. The store
// passes the conformance suite (store/storetest) and the engine's model
// test, as the SQLite store does.
//
// # Isolation and locking
//
// Read runs at REPEATABLE READ, read-only: every statement sees the
// snapshot of the first. Write runs at READ COMMITTED, and every method of
// a write transaction that names a pool — by its UUID, or through an item
// (ItemByID and ItemsByID read the items with their pools, and when a pool
// was not locked yet, lock it and read the items again) — takes the pool's lock before it reads or writes
// anything of it that it returns, and holds it until the transaction ends. So the transactions that write one pool (its row,
// its counts, its items) run one at a time, in the database, whichever node
// runs them; and since READ COMMITTED takes a fresh snapshot at every
// statement, each statement after the lock sees the last commit of the
// pool and nothing changes it underneath. A claim thus reads the number in
// flight and the due items and writes the claims with no other claim of the
// pool in between: the cap and the order hold across nodes; a settlement
// reads its item under the lock and its token cannot change before it
// writes.
//
// Why not REPEATABLE READ or SERIALIZABLE for writes: both keep the
// snapshot of the transaction's first statement, taken before it waited
// for the pool's lock, so a claim that waited for another would see items
// the other had already claimed and fail with a serialization failure, to
// be run again: under load nearly every claim of a busy pool would run
// twice or more. The lock makes the writes of a pool serial already;
// READ COMMITTED lets the waiter simply go on with what was committed.
// Transactions of different pools touch disjoint rows and run in parallel.
//
// The lock is a transaction-level advisory lock (pg_advisory_xact_lock)
// keyed by a hash of the schema and the pool's internal id
// ([AdvisoryLock], the default), or the pool's row ([RowLock], SELECT … FOR
// NO KEY UPDATE). Both serialize the same way; the advisory lock lives in
// the server's shared memory only, where the row lock writes the row and
// the write-ahead log in every transaction. The two do not exclude each
// other, so the nodes of a schema must all take the same one: the first
// node to open a schema records its choice, and Open refuses a node that
// would take the other ([ErrLockingMismatch]; see [Locking] to change it). Measured with 16 workers
// dispatching one pool (bench: BenchmarkPostgresCycle/Workers16, 5000
// items, 2 cores, PostgreSQL 15 on the same machine; bench/RESULTS.md,
// 2026-12-03 run at d04c7a6): 6,266 items/s with the advisory lock, 5,807
// with the row lock (-7 %); with three engines on the pool, 3,873 and
// 3,648 (-6 %). Interleaved on 2026-12-06 (five rounds each, medians):
// level with one engine (4,292 and 4,525, the rounds overlapping), the
// advisory lock ahead with three (2,687 and 2,512, in every round).
// Locks are taken in the order of their keys, so
// that two transactions never wait for each other: a lock above every one
// the transaction holds is waited for; one below is only tried, and when
// another transaction holds it, the transaction is rolled back and run
// again, taking every lock it needed in order first. A group-commit batch
// touching several pools therefore never deadlocks with another node's.
// When such a run waits for a pool's lock past [Options.LockTimeout]
// (another node holds it), the run after leaves that pool out, and every
// method that names it fails at once with [ErrLockTimeout]: only the
// operations on that pool fail, those on the others go on.
//
// A transaction that waits for a lock (longer than 50 ms: another node's
// transaction holds it) while it holds another is also run again, its
// locks taken first, up to twice in one Write: its callers judged their
// instant before the wait (a claim's lease end, the calling window), and
// the next run reads it after every lock it needs (Stats.Waits counts
// these runs). The wait for a transaction's first lock needs no such run:
// the engine reads its clock again after it (see queue's Options.LeaseTimeout).
//
// Campaigns have locks of their own (advisory, whatever [Options.Locking]
// says), taken by every method of a write transaction that names a
// campaign (Campaign, UpdateCampaign, DeleteCampaign, AttachPool,
// DetachPool, CampaignItems; DeleteCampaign then locks the campaign's
// pools too), and ordered before every pool's. With the
// pools' locks, which PoolGovernors and AttachPool take too, they make the
// engine's check that a pool has at most one governing campaign hold
// across nodes: two nodes starting campaigns that share a pool, or one
// starting a campaign while another attaches a pool to it or to a running
// campaign, run one after the other, and the second sees what the first
// committed (see campaigns.go). A claim under a campaign's rule takes the
// campaign's lock (CampaignItems), so the rule's caps, which are each
// contact's across the campaign's pools, hold across nodes too: the
// claims of one campaign's pools run one at a time, and so do the
// engine's extensions of the leases in them, which read CampaignItems for
// the lease's contact before they judge the lease.
//
// Rules have locks of their own too ([store.Tx.LockRule]; advisory,
// ordered after every campaign's and before every pool's), taken
// exclusive by the engine's UpdateRule before it reads the rule, and
// shared by every other write transaction that reads a rule
// ([store.Tx.Rule]: the lock and the read in one round trip), before the
// read: a claim, a settlement or a lease's expiry under the rule, a
// campaign's start, AssignRule, an AttachPools to a governing campaign.
// Two updates of one rule on two nodes keep each other's fields, and an
// update waits for every decision under the old values under way, on any
// node, and none under them commits after it: the update needs no pool's
// lock for that, only those of the pools (of the rule's campaigns, In
// Process or Paused) that hold a lease that ended, which it applies under
// the old values first, read in one statement ([store.Tx.RulePools]). So
// an update's locks do not grow with the pools its rule governs: a rule of
// 13 campaigns of 1,000 pools, which an update taking every pool's lock
// could not update ("out of shared memory", see Group commit below), is
// updated in 14 ms. Shared locks do not wait for
// each other: the claims of a rule's pools still run in parallel. In the
// key order, like the others: a claim that holds its pool and then reads
// a rule that an update holds only tries it, and runs again taking the
// rule first (an earlier row lock outside the order deadlocked there).
//
// The do-not-call list has one lock (advisory, ordered after every pool's,
// before the escalation lock only), shared by every write transaction
// that reads the list (a claim under a rule with dnc_check, with the read
// in the same round trip), exclusive by AddDNC, which so waits for every
// claim under way that read the list without its entries, on any node,
// and none reads it without them after it commits. One lock, whatever the
// pools of the contacts; and a transaction that holds it never waits for
// a pool, so that AddDNC waits only for claims at work (see contacts.go).
//
// Serialization failures and deadlocks (SQLSTATE 40001, 40P01: an
// application sharing the tables, say) and the lock-order restarts are
// retried inside Write, up to [Options.MaxRetries] times (a lock-order
// restart that adds a lock to those the next run takes first does not
// count: a transaction over many pools held by other nodes learns them one
// a run), invisible to callers: Write runs its function again from the start, which the
// engine's operations allow (see queue/internal/groupcommit's Func). A
// savepoint that swallowed such an error does not hide it: the mark is on
// the transaction.
//
// # Cost
//
// The schema is the SQLite store's, in PostgreSQL types: a ready column
// marks the due set, with one partial index per dispatch order, and the
// items waiting for a retry time sit in another partial index, so a claim
// is an index walk whatever the number of items and of items waiting; the
// counts per status are one pool_counts row per pool, written once per
// transaction with the sum of its changes, so status counts, contacts_count
// and the number in flight are O(1). A write transaction reads, with the
// pool's lock, the pool's row, counts, earliest lease expiry and earliest
// retry time, and keeps them up to date as it writes, so that InFlight and
// StatusCounts cost no statement, Expired none while no lease has ended,
// and Due no promotion while no retry time has come. Nothing is kept
// between transactions: other nodes write too.
//
// The store's connections set the planner against sequential scans,
// bitmap scans, sorts and hash and merge joins (enable_* = off): right
// after a bulk add, before autovacuum has analyzed the table, the planner
// would otherwise estimate a pool's due set at a few rows and scan and
// sort all of it at every claim. The settings make the planner take an
// index whenever there is one; they do not forbid other plans. JIT
// compilation is off: the settings work by adding a huge constant to the
// estimated cost of the plans they discourage, which would otherwise make
// the server compile such statements (a pool listing with a search, say)
// to machine code first, some 100 ms for a statement that runs in one.
// With those settings a statement's plan does not depend on the values
// bound to it, so the connections also run generic plans
// (plan_cache_mode = force_generic_plan): each statement is planned once a
// connection instead of at every execution, which cost 60–160 µs of server
// time a statement. TestPlans checks the plans of dispatch and settlement.
//
// The schema tells the planner to count a thousand distinct pools among
// the items, whatever ANALYZE finds (migration 15, n_distinct of
// items.pool_id): in a store where one pool holds every item, the
// statistics would otherwise say that a pool is every row, and the
// planner took a walk of the primary key in id order, filtering each row,
// for as cheap as the pool's index, for a FIFO or LIFO claim and a page of
// items; at a million items, half of them waiting for a retry, a claim
// then read the waiting half, 0.11–0.26 s (bench/RESULTS.md, session 57;
// TestPlans_AnalyzedOnePool).
//
// # Search
//
// Items carry their contact's fields (pool.Contact), and an item listing
// searches them (Items with q.Search: every word but the last a whole word
// of the contact's name, email or phone number, the last a prefix of one,
// case and diacritics aside). Each item with contact fields keeps their
// words in a tsvector column with a GIN index; the words are cut and
// folded (lower case, diacritics removed) in Go by store.SearchWords, the
// same way for the items and for the searches, and as the SQLite store
// does, so that both find the same items; never by PostgreSQL's text
// search parser or by an extension (unaccent is not needed). Each word is
// stored with its pool's id, so that a search reads the index entries of
// its own pool only: its cost grows with the items of the pool that match,
// not with the pool nor with the other pools. Measured (BenchmarkSearch,
// first page of 25 and total, p50, 2 cores, PostgreSQL 15 on the same
// machine; bench/RESULTS.md, "the PostgreSQL search and contact-insert
// numbers of store/postgres's doc") on a pool of 100k items that all
// have contact fields: a phone number 0.29 ms, a common word then a rare
// one 0.32 ms (the same at 10k), a prefix of 1.1 % of the emails 0.68 ms
// (0.38 ms at 10k), a prefix of every email 35 ms (3.2 ms at 10k: it
// counts all the matches).
//
// # Group commit on PostgreSQL
//
// The engine runs the concurrent operations of one node in shared
// transactions (queue/internal/groupcommit). On PostgreSQL that is worth
// more than a shared flush: a write transaction of this store costs a
// handful of round trips to the server, and the pool's lock is held for
// all of them, so one transaction for many operations is what makes a node
// fast. Measured (BenchmarkPostgresCycle/Workers16, Normal; bench/RESULTS.md,
// 2026-12-03 run at d04c7a6): 6,266 items/s with group commit (about 15
// operations a transaction) against 1,248 with MaxBatch 1, 5.0 times; at
// Full durability the difference grows with the cost of the flush: 4,126
// against 589, 7.0 times.
//
// Round trips are what a transaction costs on a busy machine (each one
// waits for two processes to be scheduled), so a write transaction saves
// them where it can: it is run by hand on a pooled connection, its BEGIN
// sent with its first statements and its COMMIT with its last ones (the
// count changes and the NOTIFY); a pool's lock, state and campaigns are one
// round trip, which also carries the first read of the transaction when
// it names the pool (a settlement's items, PoolItems; a claim's due items,
// PoolDue, in the order and up to the cap the store last saw the pool
// with, read again when the lock's read of the pool says otherwise: a
// claim alone in its transaction is two round trips, the lock with the
// read, then the commit with the write); a settlement in a
// transaction that holds its pool's lock reads its items in one statement
// (the engine looks the leases' pools up first); and the writes of items (UpdateItems, the dispatch and
// settlement paths) are deferred: sent with the transaction's next
// statement or its COMMIT, their check (every item found in the status
// the engine read it in) made by the server (poolq_expect_rows, which
// fails the statement and so the transaction). A transaction of the Work
// drain that claims and settles is four round trips: lock, read, read
// (with the first write), commit (with the second), instead of ten without
// the savings above (bench/RESULTS.md has what that does to the drain
// against River's).
//
// A shared transaction holds a lock per pool its operations touch (the
// advisory locks in the server's lock table, which every session shares:
// max_locks_per_transaction × (max_connections + max_prepared_transactions)
// slots, 6,400 at the defaults), so the engine bounds a batch (queue's
// MaxMaxBatch, 1024 operations): at the defaults a transaction of 13,000
// pools failed as a whole with "out of shared memory", and took other
// sessions' locks down with it while it ran. One operation that names many
// pools (a campaign's) takes their locks in the same table, so the engine
// bounds a campaign's pools too (queue's MaxPoolsPerCampaign, 1,000): a
// campaign of 13,000 could be neither started nor deleted. A rule's update
// does not take the pools of the rule's campaigns (see Isolation and
// locking), whose number is not bounded.
//
// The price of deferring a write is where its failure shows: not at
// UpdateItems but at the transaction's next call, which fails in its place
// (that call's own statement does not run), or at the commit. Group commit
// runs a failed batch again with a savepoint per operation, and a
// savepoint sends its deferred writes before it ends, so an operation
// still fails alone; a write that fails at the commit of the first run
// fails the whole batch. Neither happens short of a bug or a lost
// connection: the engine writes items it read under their pool's lock in
// the same transaction.
//
// # Connection failures
//
// A write transaction reads its id (pg_current_xact_id) with BEGIN, so
// that a COMMIT whose answer never comes (the connection closed, reset or
// silent after the server received it) can be resolved: the Store asks on
// another connection what became of the transaction (pg_xact_status),
// ending its old server process if it still runs it, and Write returns
// nil if it committed (every caller of a group-commit batch gets its real
// result: a claim its lease, a Complete nil), or the commit's error if it
// did not (nothing was written; the caller may do it again). When it
// cannot learn (the database unreachable for 5 s more, or the server
// restarted since the write's connection was made and the id reads
// committed: a server that crashed hands out again the ids whose log it
// had not written, so that status may be another transaction's), the
// error wraps [ErrCommitUnknown]: the write may have committed, and its caller must
// not assume it did not (a claim may stand dispatched under a lease nobody
// holds, which the engine gives back once the database answers, or which
// expires; a settlement may have gone through, and trying it again gets
// queue.ErrLeaseLost). A COMMIT that never left this process (the
// connection ended under an earlier statement of the transaction, and the
// function went on: group commit's operations each fail alone) is no such
// case: the write fails at once with that error, nothing written. Nor is
// a COMMIT answered, then followed by the session's end (the server was
// told to end it, by pg_terminate_backend or a fast shutdown, and did at
// the next message it read): the write committed, and succeeds.
//
// Each round trip of a write transaction (its connection's acquisition,
// each batch of statements, the commit) is bounded by twice
// [Options.LockTimeout] (at least it plus 5 s): a wait for a lock, then
// the statements' own work, which for the longest (DeletePool or
// DuplicatePool of a pool of millions of items: one statement) takes
// seconds; a pool larger than that needs a longer LockTimeout. A
// connection that goes silent (no FIN, no RST: a partition, a database
// host that lost power) fails the write within that bound (60 s by
// default) instead of
// the minutes TCP takes to give up, and is closed; a silence at COMMIT is
// resolved as above. Meanwhile the node's writes wait behind it (its
// engine runs one write transaction at a time). Closing a Store that had
// such a connection may take up to 15 s more (pgx's bound on closing it).
// Reads are bounded by their caller's context only (their ROLLBACK too). A
// write that runs one caller's operation alone, whose context has a
// deadline ([store.WithWaitBound]), also ends its statements' round trips
// and its ROLLBACK's (not its COMMIT's) 100 ms after that deadline, failing with an error wrapping
// context.DeadlineExceeded, nothing of it written: its caller is not held
// by a silent connection until the bound above. A Write whose context can
// end (group commit's, which ends once every caller of its operations has
// gone: see queue's package doc) ends its statements' round trips (not
// its COMMIT's) when it ends, a wait for another node's lock among them,
// and rolls back, nothing written: its connection is closed (pgx's way to
// end a round trip), and the server's session, if it waits for the lock,
// ends when the lock comes or LockTimeout passes, its transaction rolled
// back.
//
// The id makes a transaction that writes nothing (a claim that finds
// nothing due) write a commit record, which [Full] durability flushes
// (bench/RESULTS.md: BenchmarkPostgresEmptyClaim).
//
// # Durability
//
// [Options.Durability] sets the session's synchronous_commit: [Normal]
// (off, the default, as the SQLite store's Normal) returns before the
// commit record is flushed, so a crash of the database server or its
// machine may lose the last fraction of a second of commits, never half a
// transaction; a crash of the node that wrote loses nothing. [Full] (on)
// flushes every commit, to the synchronous standbys too if the server has
// any.
//
// # Wake-ups across nodes
//
// The transactions of a Store implement [store.Signaler]: the engine calls
// Signal when a write may let a blocked Dequeue through, and the store
// sends one NOTIFY per pool on the schema's channel with the commit (none
// if it rolls back, none for a savepoint rolled back). The Store implements
// [store.Watcher]: while a function is registered (the engine registers one
// at queue.New), a goroutine holds a connection of its own, LISTENs, and
// passes every notification on; when the connection drops it connects
// again by itself (application_name "poolq listener <schema>"), and a
// connection quiet for [Options.ListenerIdle] (30 s by default) is checked
// with a ping, so that one gone silent is found in seconds. A Dequeue
// blocked in one node wakes within a few milliseconds of another node's
// Add (BenchmarkPostgresWake, 2 cores, PostgreSQL on the same machine;
// bench/RESULTS.md, 2026-12-03 run at d04c7a6: p50 1.73 ms, p99 4.48 ms).
// Notifications sent while the listener is down are lost; the engine's
// poll (queue.Options.PollInterval) covers them.
//
// # Schema
//
// The tables live in one schema ([Options.Schema], "poolq" by default),
// created by Open unless it exists, on the search_path of every connection
// of the Store, so that several poolq instances, and tests, share one
// database. A DBA may create the schema in advance for a role that may not
// create schemas in the database; [Options.Schema] lists the rights Open
// needs in each case. Migrations are embedded (migrations/NNNN_name.sql)
// and applied in one transaction under an advisory lock of the schema, so
// nodes that start at once migrate it once; each version is recorded in
// schema_version. A schema whose version is newer than this code knows is
// refused with [store.ErrSchemaTooNew] and left untouched.
//
// UUIDs are uuid; times are bigint nanoseconds since the Unix epoch, NULL
// when not set (timestamptz keeps microseconds only), read back in UTC;
// payloads are bytea, the caller's bytes exactly (checked as JSON in Go);
// a contact's fields are text, NULL when unknown.
//
// Opening a schema of an older poolq upgrades it in place, in one
// transaction that other nodes wait for: version 2 (contacts on items)
// adds nullable columns, which rewrites no row, and builds the index of
// the contacts' words, which reads the items table once (seconds for
// millions of items) while writes to it wait; version 3 (rules, campaigns,
// the pools attached to them) adds tables.
//
// # Clocks
//
// Each node's engine judges leases by its own clock, and a lease is taken
// for ended by the other nodes only [Options.LeaseGrace] (twice
// MaxClockSkew, 60 s, by default) after its holder's deadline, so that a
// node ahead of the holder does not call a contact the holder may still
// be on. That holds while the nodes' clocks are within the grace of each
// other, which the Store keeps: [Open] refuses a process whose clock is
// further than [Options.MaxClockSkew] (30 s by default) from the server's
// with [ErrClockSkew], and, until Close, the Store goes on comparing them.
// It reads the server's clock again every 5 s (three round trips on a
// connection of its pool, the quickest counted), and between two readings
// it follows this clock's steps (how far it moved beyond the process's
// monotonic clock, which a clock set by hand or stepped by time sync does
// not move) at each operation that asks. While the clock is further than
// MaxClockSkew from the server's, ahead or behind:
//   - claims fail with an error wrapping ErrClockSkew: queue's TryDequeue,
//     Dequeue, DequeueN and DequeueCampaign return it, and Work reports
//     each refused claim as an EventError and tries again (at the latest
//     every PollInterval). Ahead, a claim would take leases ended by this
//     clock alone; behind, it would write leases whose end the other
//     nodes reach before the holder's deadline;
//   - no lease is taken for ended: the writes that apply a pool's ended
//     leases (a settlement, an extension, a skip, …) apply none, and leave
//     them to the nodes whose clocks are right. This node's own
//     settlements go on (MarkInCall, Complete, Fail, Release: their
//     leases' deadlines were set by a clock that was right, and the
//     lease's token fences off one taken by another node), and so do its
//     extensions while it is ahead (they end later by the others' clocks,
//     never earlier);
//   - behind, its extensions fail with an error wrapping ErrClockSkew
//     (the Store's ClockBehind, [store.ClockChecker]): the end it would
//     write is reached by the other nodes before this node's deadline, by
//     up to the step, and they would take the call for ended while it
//     goes on. The lease keeps the end it had, written by a clock that
//     was right; queue's Work, whose watchdog counts on the process's
//     monotonic clock from that write, stops the handler there (an
//     EventExpired, then its result written as a stopped handler's: the
//     item given back unless its call is In_Call), before the others take
//     the lease for ended, and they call the contact only then
//     (TestClockWatch_WorkSteppedBehind);
//   - updating a rule, detaching a pool from a campaign and deleting a
//     campaign, which judge which calls are still on, fail with an error
//     wrapping ErrClockSkew.
//
// All of it ends by itself once the clock is right: at once when it is
// stepped back, at the next reading when it slews back or the server's
// clock moves. A negative MaxClockSkew turns the check off, at Open and
// after.
//
// The bound. The Store judges a reading by the least skew it proves (a
// slow round trip makes it smaller: it never refuses a clock that may be
// within MaxClockSkew), so a node that claims has a clock within
// MaxClockSkew of the server's plus the round trip of its last reading (a
// millisecond on a LAN) plus what its oscillator drifted since (at most
// 500 ppm under NTP: 2.5 ms in 5 s). Two nodes that claim are within twice
// that of each other: the default grace, twice MaxClockSkew, covers them
// to within those milliseconds, by which a call taken for ended may then
// overlap its holder's. A step of the server's clock between two readings
// moves every node's skew alike, not their skew against each other. A host
// that sleeps (suspend) stops the monotonic clock but not the wall clock:
// its claims are refused until the next reading, at most 5 s after it
// wakes. A host that extends leases itself, without Work, must stop its
// call at the lease's end as last written when an extension is refused,
// counted on a monotonic clock (Go's time.Since), not at Lease.ExpiresAt
// by a clock that has stepped back.
//
// # Connection poolers
//
// Each connection of the Store, its listener's included, needs a server
// session of its own for its life: the Store sets the session's settings
// once connected (the schema on its search_path, synchronous_commit, UTC,
// the planner's, the timeouts; SET, never in the startup packet, which
// PgBouncer refuses or, with ignore_startup_parameters, drops), its
// listener LISTENs once, and pgx prepares each statement once a
// connection. A pooler in session mode (PgBouncer's pool_mode = session)
// gives that: TestPgBouncer_Session and TestPgBouncer_SessionConformance
// run the Store through PgBouncer 1.18 so. One in transaction or statement
// mode runs a connection's statements in whichever session is free, where
// none of that holds (a node's statements would run in another schema, or
// fail on another node's prepared statements): [Open] refuses it with
// [ErrTransactionPooling], before it sets or writes anything, within 5 s.
// A connection to PostgreSQL itself passes at once (the server process
// its startup reports is the one that runs its statements); behind a
// pooler, Open's connection must hear a NOTIFY sent from another
// connection on a channel it LISTENs to. A pooler gives its clients keys
// of its own, not the server process's: the process a lost commit's
// transaction runs in (see Connection failures) is the one each
// connection reads when it is made (TestPgBouncer_LostCommitEnded).
//
// # Caveats
//
//   - Text (names, descriptions, notes) cannot hold NUL characters or
//     invalid UTF-8 in PostgreSQL: the pool package refuses them in names
//     and descriptions, but a settlement note holding one fails its write.
//   - Adding items with contact fields costs about twice as much as
//     without (bulk, BenchmarkInsertContacts: 19.5k items/s against 45.2k,
//     bench/RESULTS.md, "the PostgreSQL search and contact-insert numbers
//     of store/postgres's doc"):
//     wider rows, and their words written to the search index at once
//     (fastupdate off), so that no search has to read through a list of
//     entries not yet merged into the index.
//   - All the writes of one pool are serial, across nodes: several nodes
//     add availability, and throughput across pools, not throughput on one
//     pool. Measured on one pool (Workers16, 16 workers per engine;
//     bench/RESULTS.md, 2026-12-03 run at d04c7a6), three engines together
//     dispatched 3,873 items/s where one alone did 6,266 (0.62 of it):
//     they wait for each other's lock.
//   - A lease outlives the node that took it until its LeaseTimeout: the
//     other nodes then apply its expiry (a failed attempt) and dispatch the
//     item again, never beyond its ceiling.
//   - A node that stops in the middle of a transaction without its
//     connection closing (paused, frozen, cut off by the network) holds the
//     locks of that transaction's pools. Between two transactions' worth
//     of statements its session is idle, and the server ends it after
//     [Options.IdleInTransactionTimeout] (30 s by default): its
//     transaction is rolled back, and fails when the node comes back. But
//     a node stopped in the middle of a batch of statements (the server
//     waiting for the rest of it) or of a result leaves its session
//     active, which no idle timeout ends: it holds the locks until the
//     process resumes or dies, or the server's TCP keepalive (its
//     tcp_keepalives_* settings) finds the connection dead. The other
//     nodes' writes to those pools then fail after [Options.LockTimeout]
//     (30 s by default) with [ErrLockTimeout] instead of waiting for it,
//     and their writes to other pools go on. After one such wait, a
//     node's writes only try the pool's lock, and fail at once while it is
//     still held, rather than each wait as long again and hold up the
//     other operations of their group-commit batches. This lasts while the
//     transaction that held it still does: a try that finds the lock free,
//     the pool gone, or another transaction holding it (a live one, which
//     the write waits for as for any) ends it; time does not, since the
//     writes that find it held come at their callers' pace (PollInterval,
//     Heartbeat), however long. A node that is killed
//     loses its connections at once, and its locks with them.
//   - Each node's engine judges leases, retry times and calling windows by
//     its own clock, so the nodes' clocks must agree: time sync (NTP)
//     keeps them within milliseconds, and the Store refuses to claim while
//     this process's clock is further than [Options.MaxClockSkew] (30 s by
//     default) from the server's (see Clocks). The calls a node holds when
//     its clock steps behind by more than MaxClockSkew are cut at their
//     leases' ends: their extensions are refused.
//   - The database must store text as UTF-8 (server_encoding UTF8, the
//     default of initdb under a UTF-8 locale): names and notes are
//     Unicode, and their limits count characters. [Open] refuses another
//     encoding with [ErrNotUTF8], before it changes anything.
//   - IDs come from a sequence without cache, so that they grow in the
//     order items are added whichever node adds them; the IDs of a
//     transaction that rolls back are not reused.
package postgres
