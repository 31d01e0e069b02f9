// Package sqlite is the [store.Store] of poolq on SQLite, through
// database/sql and modernc.org/sqlite (pure Go, no cgo).
//
//	st, err := sqlite.Open(ctx, "dialer.db", sqlite.Options{})
//	if err != nil { … }
//	defer st.Close()
//
// # Durability
//
// [Options.Durability] chooses what a successful Write guarantees:
//
//   - [Normal], the default (PRAGMA synchronous=NORMAL): a committed change
//     survives a crash or kill of the process. The write-ahead log is synced
//     at checkpoints rather than at every commit, so the last commits may be
//     lost if the machine loses power or the operating system crashes. The
//     database stays consistent either way.
//   - [Full] (PRAGMA synchronous=FULL): every commit is synced to disk before
//     Write returns, so a committed change also survives a power loss. It
//     costs one fsync per Write; batching operations into one Write (the
//     queue's group commit) shares it. On macOS, where fsync leaves the
//     data in the drive's cache, Full also turns on PRAGMA fullfsync and
//     checkpoint_fullfsync (fcntl F_FULLFSYNC), which other systems ignore.
//
// # Concurrency
//
// A file database is in WAL mode: readers do not block the writer nor the
// writer the readers. SQLite allows one writer at a time, so every Write
// goes through a single connection and starts with BEGIN IMMEDIATE, taking
// the file's write lock at once rather than failing later on lock upgrade;
// writes of the process queue for that connection, and a write of another
// process on the same file waits for the lock up to [Options.BusyTimeout],
// then fails with an error wrapping [store.ErrLockTimeout]. The Write
// tries again for the lock every millisecond, not through SQLite's busy
// handler, whose pauses grow to 100 ms: a process whose callers write back
// to back frees the lock for microseconds between its transactions, and
// tries that far apart met it taken past the busy timeout. SQLite does
// not queue the processes that wait: one that writes without pause may
// still keep another waiting for several of its transactions.
// The writer's connection is held by the Store for its life and the Store
// runs BEGIN IMMEDIATE … COMMIT on it itself, with its statements prepared
// on it once: database/sql's Tx would cost a goroutine per transaction and
// per result set, and a rebinding of every statement. A Write waiting for
// its turn leaves when its context ends.
// Read transactions run on a small pool of read-only connections
// (query_only) and each sees one snapshot. Foreign keys are enforced (the
// one from items to pools at COMMIT) and temporary data stays in memory. All of these are set
// in the DSN of every connection, not with a one-off PRAGMA, except the
// journal mode, which is a property of the file and is set once, after the
// schema version check.
//
// Each connection has a bounded page cache ([Options.CacheMiB], 32 MiB for
// the writer by default, a quarter for each reader), so memory does not
// grow with the number of items while the upper levels of the indexes stay
// cached. The write-ahead log is copied back into the database file by a
// goroutine of the Store (PASSIVE checkpoints on a connection of its own,
// once the Store has written [CheckpointPages] pages to the log, looked at
// every [Options.CheckpointInterval]) rather than by whichever commit
// crosses SQLite's threshold, which would otherwise wait milliseconds for
// it; SQLite's own checkpoint stays as a backstop at 20000 pages. Not
// checkpointing a log of a few pages spares a commit the sync of the log's
// header that SQLite makes when a write restarts a fully copied log.
//
// Every statement but the pool listing (whose filters vary) is prepared
// once per connection and reused by the transactions that follow, so a
// dispatch transaction parses no SQL. Batches of items are written with
// multi-row statements (INSERT … VALUES, UPDATE … FROM (VALUES …)) in
// chunks of 64, 32, … 1 rows, and read by ID through json_each. The
// writes say OR FAIL: a statement that fails keeps the rows it wrote before
// the failure, which is safe because a failed Tx call ends its transaction
// or savepoint, rolled back as a whole (see [store.Store.Write]), and it
// spares SQLite a statement journal, a copy of every page the statement
// touches kept to undo it alone.
//
// # Schema
//
// The schema is embedded (migrations/NNNN_name.sql) and applied in order in
// one transaction at Open, each version recorded in the schema_version
// table. A file whose recorded version is higher than this code knows is
// refused with [store.ErrSchemaTooNew] and left untouched. A file with
// tables of another application is refused with [ErrNotPoolq] and left
// untouched, also when it has a schema_version table of its own: Open
// trusts schema_version only beside poolq's pools, items and pool_counts.
// A poolq file whose schema was changed by hand is refused with
// [ErrCorrupt] and left untouched: its schema_version emptied, dropped or
// rewritten (no version of 1 or more), or, at the latest version, one of
// poolq's tables, indexes or triggers missing or with other SQL than a
// new file's (Open compares the file's with that of an empty database
// migrated in memory, once a process). Objects that are not poolq's (an
// index of one's own, ANALYZE's statistics) do not stop Open.
//
// The tables are STRICT, with CHECK constraints repeating the validation
// rules of the pool package (name length, the type and status spellings,
// the ranges of max_parallel_items and max_retries). Constraints are chosen
// for their cost per row too (migration 0003): enumerations are written as
// ORs, not IN lists, which SQLite evaluates by building a temporary table
// for every row; and no constraint of items calls a function or is an
// immediate foreign key, either of which makes a batched INSERT keep a
// statement journal. The store checks payloads as JSON itself:
//
//   - pools: one row per pool, with an internal integer key that the other
//     tables refer to, so their indexes stay small;
//   - items: one row per item, id INTEGER PRIMARY KEY AUTOINCREMENT (never
//     reused), unique per (pool, contact); an internal ready flag marks the
//     due set, with one partial index per dispatch order;
//   - pool_counts: the number of items of each pool in each status, so
//     status counts, contacts_count and the number in flight are O(1). The
//     store keeps them itself, not triggers: every item write names the
//     status it leaves (UpdateItem refuses the write if the item is no
//     longer in it), a write transaction adds the changes up in memory and
//     writes the sums once, before it commits or reads a count. A batch
//     moving a hundred items from Pending to Processing updates two counts
//     once instead of two hundred times.
//
// A write transaction that reads a pool learns, in the same statement, the
// number of its items in flight, its earliest lease expiry and its earliest
// retry time outside the due set, and keeps them current as it writes
// items: InFlight then costs no statement, Expired none while no lease has
// ended, and Due skips the promotion UPDATE while no retry time has come.
// A claim is three statements (pool, due items, update) plus the counts at
// commit. What a committed write transaction knew of its pools is kept for
// the next ones, so that the pool read too is usually skipped: every write
// transaction first reads PRAGMA data_version, and starts from nothing if
// another connection (in this process or another) has committed since.
// The cache assumes that every write by this Store's writer connection
// goes through [Store.Write]. [Options.CheckCache] turns on a check mode,
// for tests, in which every Write compares the cache with the database
// before it commits and fails with [ErrCacheMismatch] on a difference.
//
// UUIDs (pool and contact) are stored as 16-byte BLOBs, their raw bytes, so
// BLOB order is UUID order. Times are INTEGER nanoseconds since the Unix
// epoch, NULL when not set (a nil pointer, a zero lease expiry), and are
// read back in UTC; times before 1678 or after 11 April 2262 cannot be stored.
// Payloads are TEXT holding JSON, NULL when empty. A pool's name and
// description are also kept case-folded (Unicode simple folding, in Go) in
// a search column, which pool searches match with instr(), not LIKE: no
// wildcards, and case folding beyond ASCII. The words of an item's contact
// fields, as store.SearchWords cuts and folds them, are kept in item_search,
// an FTS5 index whose rowid is the item's ID, for item searches; each word
// is stored after its pool's internal id ("42/lovelace"), so that a search
// in one pool reads that pool's entries only: its cost grows with the
// pool's matches, not with the other pools' (see search.go).
//
// # Caveats
//
//   - The path ":memory:" ([MemoryPath]) opens a private in-memory database
//     on a single connection, for tests. Writes run on it as on a file's
//     writer; Reads run on it too, in turn with the Writes (one at a time,
//     a Read in a transaction that it rolls back), so a Read inside a Write
//     (or the reverse) waits for itself until its context ends. The data is
//     gone at Close.
//   - Call Read or Write inside another call only on a file store, and never
//     Write inside Write: the writer connection is held by the outer call.
//   - The file must be on a local file system: WAL needs shared memory
//     between the processes using it, which network file systems do not
//     provide.
//   - Leave the database file and the -wal and -shm files beside it where
//     they are while any process has them open: they are one database, and
//     -wal holds commits not yet copied into the database file. SQLite
//     writes through the descriptors it holds, so after a file is deleted,
//     renamed or replaced (mv) it would go on committing into files that
//     no process opens again, lost at Close or at a crash. Before every
//     COMMIT, a Write looks at the paths (a stat each: a few microseconds)
//     and, if one no longer names the file Open found there, rolls back and
//     fails with [ErrFileMoved]; Writes go on if the files come back (a
//     rename undone). Reads go on reading the files the Store holds. A
//     file overwritten in place (cp over it) cannot be told from a write,
//     and is damaged: restore a backup only with every process stopped.
//     The check compares device and inode numbers, so on a file system
//     that does not keep them stable (some FUSE mounts) Writes fail so
//     too; WAL does not belong on such a file system either.
package sqlite
