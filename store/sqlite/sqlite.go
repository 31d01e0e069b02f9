package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/poolq/poolq/internal/sqlitefile"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
	"modernc.org/sqlite" // and registers the "sqlite" database/sql driver
)

// DefaultBusyTimeout is how long a connection waits for a lock held by
// another connection (another process on the same file) before failing
// with SQLITE_BUSY, when [Options.BusyTimeout] is zero.
const DefaultBusyTimeout = 5 * time.Second

// MemoryPath is the path that opens a private in-memory database instead of
// a file (see the package documentation for its caveats).
const MemoryPath = ":memory:"

// readConns is the size of the read pool of a file store.
const readConns = 4

// Durability says when a committed transaction is safe from loss.
type Durability int

// The durability levels.
const (
	// Normal (synchronous=NORMAL in WAL mode) syncs the write-ahead log at
	// checkpoints, not at every commit: a committed change survives a crash
	// of the process, but the last commits may be lost if the machine loses
	// power or the operating system crashes. The database is never corrupted
	// either way. It is the default.
	Normal Durability = iota
	// Full (synchronous=FULL) syncs the write-ahead log at every commit: a
	// committed change survives a power loss too, at the cost of one fsync
	// per Write (on macOS, fcntl F_FULLFSYNC: PRAGMA fullfsync and
	// checkpoint_fullfsync are on).
	Full
)

// String returns "Normal" or "Full".
func (d Durability) String() string {
	switch d {
	case Normal:
		return "Normal"
	case Full:
		return "Full"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// pragma returns the value of PRAGMA synchronous for d.
func (d Durability) pragma() string {
	if d == Full {
		return "FULL"
	}
	return "NORMAL"
}

// Options configures [Open]. The zero value is ready to use.
type Options struct {
	// Durability says when a commit is safe from loss: [Normal] or [Full].
	// Defaults to Normal.
	Durability Durability
	// BusyTimeout is how long a connection waits for a lock that another
	// process holds on the same file before failing: from
	// [MinBusyTimeout] (1 ms) to [MaxBusyTimeout], rounded up to whole
	// milliseconds. Zero means the default, [DefaultBusyTimeout] (5 s),
	// not "do not wait": the least wait is MinBusyTimeout.
	BusyTimeout time.Duration
	// CacheMiB is the page cache of the writer connection, in MiB (each
	// reader connection has a quarter of it, at least 2). It bounds the
	// store's memory whatever the number of items, and is what keeps a
	// pool of a million items as fast to dispatch as one of ten thousand:
	// the indexes' upper levels stay in memory. At most [MaxCacheMiB]; zero
	// means the default, [DefaultCacheMiB].
	CacheMiB int
	// CheckpointInterval is how often a goroutine of the Store looks at
	// the write-ahead log, to copy it back into the database file once the
	// Store has written [CheckpointPages] pages to it (see checkpoint.go),
	// so that no commit waits for a checkpoint, and to restart a log that
	// has grown past 4000 pages all the same (another process's writes,
	// readers that overlap without pause). Negative: no goroutine, and
	// SQLite checkpoints in the commit that crosses 1000 pages, as it does
	// by default. From [MinCheckpointInterval] to [MaxCheckpointInterval].
	// Defaults to DefaultCheckpointInterval.
	CheckpointInterval time.Duration
	// QuickCheck runs SQLite's quick_check on the file at Open (the
	// structure of every page, in time linear in the file's size, without
	// the index-content checks of [Store.Check]) and fails Open with an
	// error wrapping [ErrCorrupt] if it finds damage. Defaults to false.
	QuickCheck bool
	// CheckCache turns on check mode for the state of pools that the Store
	// keeps between write transactions (see the package documentation):
	// every Write, before it commits and after its count changes are
	// written, reads again from the database the state of every pool that
	// stays in that cache, and compares it with the kept one: the pool's
	// row and ContactsCount, the number of its items in flight, and the
	// lower bounds of its earliest lease expiry and retry time. On a
	// difference the Write rolls back and returns an error wrapping
	// [ErrCacheMismatch] that names the pool, the field and both values.
	// It costs a query per cached pool at every commit: it is meant for
	// tests. Defaults to false.
	CheckCache bool
}

// DefaultCacheMiB is the writer's page cache when [Options.CacheMiB] is
// zero.
const DefaultCacheMiB = 32

// Bounds of [Options]: values past them are mistakes, refused by Open
// rather than passed on to SQLite.
const (
	MaxBusyTimeout = time.Hour
	// MinBusyTimeout bounds BusyTimeout from below: SQLite counts it in
	// whole milliseconds, and a shorter one is a count of milliseconds
	// written as a bare number (5000 is 5 µs, not 5 s), with which a
	// Write that met another process's lock failed at once.
	MinBusyTimeout        = time.Millisecond
	MaxCacheMiB           = 64 << 10 // 64 GiB
	MaxCheckpointInterval = time.Hour
	// MinCheckpointInterval bounds a positive CheckpointInterval from
	// below: a shorter tick is a busy loop (100 written as a bare number
	// is 100 ns, not 100 ms, and its ticker kept most of a core busy on an
	// idle store).
	MinCheckpointInterval = time.Millisecond
)

func (o Options) withDefaults() Options {
	if o.BusyTimeout == 0 {
		o.BusyTimeout = DefaultBusyTimeout
	}
	if o.CacheMiB == 0 {
		o.CacheMiB = DefaultCacheMiB
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	return o
}

// validate reports every bad option, and a bad path or a nil ctx, at
// once, as [validate.Errors].
func (o Options) validate(ctx context.Context, path string) error {
	var v validate.Validator
	v.Check(ctx != nil, "ctx", validate.RuleRequired, "is required (not nil: use context.Background())")
	v.Check(path != "", "path", validate.RuleRequired, "is required (\":memory:\" for a private in-memory database)")
	v.Check(!strings.ContainsRune(path, 0), "path", validate.RuleFormat,
		"must not contain NUL (the file opened would be the path cut at it)")
	v.Check(!sqlitefile.HasScheme(path), "path", validate.RuleFormat,
		fmt.Sprintf("must be a file name, not a URI (got %q): its parameters would be ignored and an empty database of that literal name made; options go in Options, and a file whose name begins with \"file:\" is \"./file:…\"", path))
	v.Check(path == MemoryPath || !strings.HasPrefix(path, MemoryPath), "path", validate.RuleFormat,
		fmt.Sprintf("must be \":memory:\" alone for an in-memory database (got %q): a file of that literal name would be made, and opened again with its data by the next run; options go in Options, and a file whose name begins with \":memory:\" is \"./:memory:…\"", path))
	v.Check(o.Durability == Normal || o.Durability == Full, "durability", validate.RuleEnum,
		fmt.Sprintf("must be Normal or Full (got %v)", o.Durability))
	v.Check(o.BusyTimeout >= MinBusyTimeout && o.BusyTimeout <= MaxBusyTimeout, "busy_timeout", validate.RuleRange,
		fmt.Sprintf("must be between %v and %v (got %v)", MinBusyTimeout, MaxBusyTimeout, o.BusyTimeout))
	v.IntRange("cache_mib", o.CacheMiB, 0, MaxCacheMiB)
	v.Check(o.CheckpointInterval < 0 || o.CheckpointInterval >= MinCheckpointInterval && o.CheckpointInterval <= MaxCheckpointInterval,
		"checkpoint_interval", validate.RuleRange,
		fmt.Sprintf("must be negative (no checkpointer) or between %v and %v (got %v)",
			MinCheckpointInterval, MaxCheckpointInterval, o.CheckpointInterval))
	if err := v.Err(); err != nil {
		return fmt.Errorf("sqlite: open: %w", err)
	}
	return nil
}

// Store is a [store.Store] on one SQLite database: a file shared by any
// number of processes, or a private in-memory database. A Store is safe for
// concurrent use. Several Stores on one file in one process are as several
// processes: each has its own connections, and their writes take turns
// for the file's write lock.
type Store struct {
	// The writer's one connection is held for the Store's life, and Write
	// runs BEGIN IMMEDIATE … COMMIT on it itself, with w's statements
	// prepared on it: database/sql's Tx would start a goroutine per
	// transaction and per result set to watch the context, and rebind
	// every prepared statement to each transaction. An in-memory database
	// lives on that connection alone, so its Reads run on it too.
	wc *sql.Conn
	w  *handle // the writer's pool and the statements prepared on wc
	r  *handle // the readers: a small pool; nil for :memory:

	cp         *checkpointer // nil for :memory: or when turned off
	files      *files        // checked before every COMMIT; nil for :memory:
	checkCache bool          // Options.CheckCache
	// busyTimeout is how long Write's BEGIN IMMEDIATE tries for the file's
	// write lock (see beginImmediate); the writer connection's own busy
	// timeout is 0 on a file.
	busyTimeout time.Duration

	// turn is held (a value in it) by whoever uses wc: the Write under way,
	// a Read of an in-memory store, Close. A channel rather than a mutex,
	// so that a caller waiting for its turn leaves when its context ends.
	turn   chan struct{}
	closed atomic.Bool // set by Close, under turn
	cache  poolCache   // pools as the last write transaction left them, under turn (see cache.go)

	// rollbacks counts the transactions rolled back on wc, by a ROLLBACK
	// or by SQLite itself after some errors (SQLite's rollback hook): a
	// write transaction that sees it move is over (see txn.ended).
	rollbacks atomic.Uint64
}

var _ store.Store = (*Store)(nil)

// handle is a database pool with the statements prepared on it.
type handle struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt

	// observe, nil but in tests (see export_test.go), wraps what each
	// transaction on the writer's held connection runs its SQL texts on:
	// the texts that reach it are those that are not in stmts (prepared
	// for one transaction, or run as they are). Set it only between
	// Writes.
	observe func(querier) querier
}

// Open opens the database at path, creating it if needed, and brings its
// schema to the latest version this code knows. path is a file name, or
// [MemoryPath] (":memory:") for a private in-memory database, which lives as
// long as the Store; not a SQLite URI ("file:…", refused: a file whose name
// begins so is "./file:…"; nor ":memory:" with parameters, "./:memory:…"
// for such a file). A file written by a newer poolq is not touched: Open
// returns an error wrapping [store.ErrSchemaTooNew].
//
// A file store is in WAL mode, writes through one connection with BEGIN
// IMMEDIATE and reads through a pool of read-only connections. An in-memory
// store reads and writes on its one connection, in turn.
//
// Bad options, an empty path and a nil ctx are reported together as
// [validate.Errors] (wrapping [validate.ErrInvalid]); nothing is opened.
// So is a path that names a FIFO, a device (/dev/null) or a directory,
// which is no place for a database. A path in a directory that does not
// exist returns an error wrapping [fs.ErrNotExist] that names the
// directory: Open creates the file, not its directory.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(ctx, path); err != nil {
		return nil, err
	}
	if path == MemoryPath {
		return openMemory(ctx, opts)
	}
	return openFile(ctx, path, opts)
}

func newStore(wc *sql.Conn, w, r *handle, opts Options) (*Store, error) {
	s := &Store{wc: wc, w: w, r: r, checkCache: opts.CheckCache, busyTimeout: opts.BusyTimeout, turn: make(chan struct{}, 1)}
	err := wc.Raw(func(dc any) error {
		h, ok := dc.(interface{ RegisterRollbackHook(sqlite.RollbackHookFn) })
		if !ok {
			return errors.New("the driver's connection has no rollback hook")
		}
		h.RegisterRollbackHook(func() { s.rollbacks.Add(1) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func openMemory(ctx context.Context, opts Options) (*Store, error) {
	// One connection holds the whole database: it must never be closed
	// while the Store lives, hence no idle or lifetime limit (it goes back
	// to the pool between migrate and holdWriter).
	db := openDB(MemoryPath + "?" + dsnParams(opts, false))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", MemoryPath, err)
	}
	wc, wh, err := holdWriter(ctx, db)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", MemoryPath, err)
	}
	st, err := newStore(wc, wh, nil, opts)
	if err != nil {
		wh.closeStmts()
		wc.Close()
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", MemoryPath, err)
	}
	return st, nil
}

// holdWriter takes the one connection of the writer's pool db out for the
// Store's life, and prepares the write statements on it.
func holdWriter(ctx context.Context, db *sql.DB) (*sql.Conn, *handle, error) {
	wc, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	h, err := prepare(ctx, db, wc, writeQueries())
	if err != nil {
		wc.Close()
		return nil, nil, err
	}
	return wc, h, nil
}

func openFile(ctx context.Context, path string, opts Options) (*Store, error) {
	if err := checkRegular(path); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := checkOneByte(path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := checkEmptyingJournal(ctx, path); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	name := sqlitefile.URI(path)
	w := openDB(name + "?" + dsnParams(opts, false))
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	fail := func(err error, dbs ...*sql.DB) (*Store, error) {
		for _, db := range dbs {
			db.Close()
		}
		return nil, err
	}
	if opts.QuickCheck {
		if err := check(ctx, w, "quick_check"); err != nil {
			return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
		}
	}
	if err := migrate(ctx, w); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	if err := checkObjects(ctx, w); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	// WAL is a property of the file, not of a connection: it is set once,
	// on the writer, after migrate has checked that the file is one this
	// code may change.
	if err := setWAL(ctx, w, opts.BusyTimeout, nil); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	r := openDB(name + "?" + dsnParams(opts, true))
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	wc, wh, err := holdWriter(ctx, w)
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	// Write waits for the file's write lock itself (beginImmediate).
	if _, err := wc.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		wh.closeStmts()
		wc.Close()
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	rh, err := prepare(ctx, r, r, readQueries())
	if err != nil {
		wh.closeStmts()
		wc.Close()
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	fs, err := openFiles(ctx, wc, path)
	if err != nil {
		rh.closeStmts()
		wh.closeStmts()
		wc.Close()
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	st, err := newStore(wc, wh, rh, opts)
	if err != nil {
		rh.closeStmts()
		wh.closeStmts()
		wc.Close()
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	st.files = fs
	if opts.CheckpointInterval > 0 {
		co := opts
		co.BusyTimeout = restartWait // passive passes never wait: only a restart does
		c, err := sql.Open("sqlite", name+"?"+strings.Join(basePragmas(co, 2), "&"))
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		c.SetMaxOpenConns(1)
		// The count starts from here (the migrations' pages are not
		// counted), and Open fails rather than run a checkpointer that
		// would never learn of a write.
		if _, err := logWrites(wc); err != nil {
			c.Close()
			st.Close()
			return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
		}
		st.cp = startCheckpointer(c, opts.CheckpointInterval, st.turn)
	}
	return st, nil
}

// checkRegular returns [validate.Errors] for a path that names something
// other than a regular file: SQLite opens a FIFO or a device (/dev/null,
// given for "a database I do not keep") and fails only at the first
// commit, after making a journal file beside it (/dev/null-journal, when
// run as root); a directory it refuses with "unable to open database file"
// from the first read, which names neither the path nor the reason. For a
// path that names nothing yet it returns the error of its directory, when
// that is missing or not a directory: SQLite creates the file, not its
// directory, and says no more than for a directory.
func checkRegular(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		dir := filepath.Dir(path)
		switch di, err := os.Stat(dir); {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s: its directory: %w", path, err)
		case err == nil && !di.IsDir():
			return fmt.Errorf("%s: its directory %s is not a directory", path, dir)
		}
		return nil // SQLite creates it, or reports it (a permission denied)
	}
	if fi.Mode().IsRegular() {
		return nil
	}
	kind := "special file"
	switch m := fi.Mode(); {
	case m.IsDir():
		kind = "directory"
	case m&os.ModeNamedPipe != 0:
		kind = "FIFO"
	case m&os.ModeDevice != 0:
		kind = "device"
	case m&os.ModeSocket != 0:
		kind = "socket"
	}
	var v validate.Validator
	v.Add("path", validate.RuleFormat, fmt.Sprintf("must name a regular file, or none yet (got a %s: %s)", kind, path))
	return v.Err()
}

// journalMagic begins the header of a rollback journal SQLite may roll
// back (a hot journal); a journal it has finished with is deleted,
// truncated or has this header zeroed.
var journalMagic = []byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7}

// checkEmptyingJournal returns an error wrapping [ErrCorrupt] for a
// non-empty file beside a hot rollback journal whose header says the file
// had no pages when its transaction began: SQLite would roll it back, at
// the first read, to an empty file, which migrate would then take for a
// new one and give poolq's schema. That is what an interrupted copy made
// with the sqlite3 shell leaves (VACUUM INTO or .backup into a new file,
// killed by a timeout, a reboot, the OOM killer): the backup opened,
// checked or restored with its journal would be an empty poolq database,
// without an error. A file this package was creating, its process killed
// inside its first transaction, is refused the same way; it held nothing.
//
// Whether the journal is hot (its writer gone) only SQLite tells, with the
// file's locks: a journal of a store opening the same new file at this
// moment is live, not hot. A read-only connection tells without rolling
// anything back: its first read fails with SQLITE_READONLY_ROLLBACK.
func checkEmptyingJournal(ctx context.Context, path string) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() == 0 {
		return nil
	}
	f, err := os.Open(path + "-journal")
	if err != nil {
		return nil
	}
	var h [28]byte
	_, err = io.ReadFull(f, h[:])
	f.Close()
	if err != nil || !bytes.Equal(h[:8], journalMagic) || binary.BigEndian.Uint32(h[16:20]) != 0 {
		return nil // no journal, or one that would not empty the file
	}
	db := openDB(sqlitefile.URI(path) + "?mode=ro")
	defer db.Close()
	var version int
	err = db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version)
	var coded interface{ Code() int }
	if !errors.As(err, &coded) || coded.Code() != sqliteReadonlyRollback {
		return nil // live: another store is making the file; or SQLite reports the error itself
	}
	return fmt.Errorf("%w: %s-journal beside it would roll it back to an empty file: an interrupted copy "+
		"(VACUUM INTO, .backup), not a database; restore a complete backup, or delete both to start afresh",
		ErrCorrupt, path)
}

// sqliteReadonlyRollback is SQLITE_READONLY_ROLLBACK: a read-only
// connection found a hot journal it may not roll back.
const sqliteReadonlyRollback = 776

// checkOneByte returns an error wrapping [ErrCorrupt] for a file of one
// byte that SQLite did not write. SQLite takes a file of one byte for an
// empty database (it writes one, 'S', to a new file on some file systems),
// and migrate would turn a mistaken path to such a file (a flag, a
// newline) into a poolq database; every other file that is not SQLite's
// fails at migrate's first read, unchanged.
func checkOneByte(path string) error {
	fi, err := os.Stat(path)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != 1 {
		return nil // SQLite reports it, creates the file, or reads it
	}
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var b [2]byte
	n, _ := io.ReadFull(f, b[:])
	if n == 1 && b[0] != 'S' {
		return fmt.Errorf("%w: file is not a database (one byte long)", ErrCorrupt)
	}
	return nil
}

// dsnParams returns the DSN query of a connection. Pragmas go in the DSN so
// that every connection a pool opens gets them. temp_store(memory) keeps
// statement journals in memory: every INSERT of items has one (its
// uniqueness check and foreign key may abort it halfway), and in a temporary file they cost
// a write system call per page, several times the insert itself.
func dsnParams(opts Options, readOnly bool) string {
	if readOnly {
		p := basePragmas(opts, max(opts.CacheMiB/4, 2))
		return strings.Join(append(p, "_pragma=query_only(1)"), "&")
	}
	p := basePragmas(opts, opts.CacheMiB)
	if opts.CheckpointInterval > 0 {
		p = append(p, fmt.Sprintf("_pragma=wal_autocheckpoint(%d)", backstopPages))
	}
	return strings.Join(append(p, "_txlock=immediate"), "&")
}

// basePragmas are the pragmas of every connection, with a page cache of
// cacheMiB.
func basePragmas(opts Options, cacheMiB int) []string {
	busy := (opts.BusyTimeout + time.Millisecond - 1) / time.Millisecond
	p := []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busy),
		"_pragma=foreign_keys(1)",
		"_pragma=temp_store(memory)",
		"_pragma=synchronous(" + opts.Durability.pragma() + ")",
		fmt.Sprintf("_pragma=cache_size(%d)", -cacheMiB*1024),
	}
	if opts.Durability == Full {
		// On macOS fsync leaves the data in the drive's cache; only
		// fcntl(F_FULLFSYNC) writes it to the medium, and SQLite uses it
		// when these are on (for commits and for checkpoints). Other
		// systems have no F_FULLFSYNC and ignore them.
		p = append(p, "_pragma=fullfsync(1)", "_pragma=checkpoint_fullfsync(1)")
	}
	return p
}

// setWAL puts the file in WAL mode. Switching a new file to WAL takes an
// exclusive lock, and SQLite does not wait for it through the busy handler
// when another connection (a process opening the same new file) holds a
// lock it would otherwise deadlock with: it fails at once with
// SQLITE_BUSY. So setWAL itself tries again, with a growing pause, for up
// to timeout (the busy timeout), as the busy handler would have. onBusy,
// if not nil, is called at every try that meets the lock, before the pause
// (tests wait for it).
func setWAL(ctx context.Context, db *sql.DB, timeout time.Duration, onBusy func()) error {
	deadline := time.Now().Add(timeout)
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("set WAL mode: journal mode is %q", mode)
			}
			return nil
		}
		if !isBusy(err) || time.Now().Add(pause).After(deadline) {
			return fmt.Errorf("set WAL mode: %w", translate(err))
		}
		if onBusy != nil {
			onBusy()
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return fmt.Errorf("set WAL mode: %w (%w)", ctx.Err(), err)
		}
	}
}

// prepare prepares queries on on (db itself, or a connection of db),
// once, so that transactions reuse them.
func prepare(ctx context.Context, db *sql.DB, on interface {
	PrepareContext(context.Context, string) (*sql.Stmt, error)
}, queries []string) (*handle, error) {
	h := &handle{db: db, stmts: make(map[string]*sql.Stmt, len(queries))}
	for _, q := range queries {
		if _, ok := h.stmts[q]; ok {
			continue
		}
		s, err := on.PrepareContext(ctx, q)
		if err != nil {
			h.closeStmts()
			return nil, fmt.Errorf("prepare %q: %w", q, translate(err))
		}
		h.stmts[q] = s
	}
	return h, nil
}

func (h *handle) closeStmts() {
	for _, s := range h.stmts {
		s.Close()
	}
}

// Read runs fn in a read-only transaction (see [store.Store.Read]). On a
// file store it runs on one of the read connections, concurrently with
// other reads and with the writer, and sees the database as of its first
// query. On an in-memory store it runs on the one connection, in turn with
// the Writes (BEGIN … ROLLBACK), and waits for its turn as a Write does.
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.r == nil {
		return s.readOnWriter(ctx, fn)
	}
	if s.closed.Load() {
		return closedErr("read")
	}
	tx, err := s.r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		if s.closed.Load() { // Close ran meanwhile
			return fmt.Errorf("%w (%w)", closedErr("read"), err)
		}
		return wrap("begin read", err)
	}
	t := newReadTxn(tx, s.r)
	defer tx.Rollback() // a read transaction has nothing to commit
	if err := fn(t); err != nil {
		return withCtx(ctx, err)
	}
	return nil
}

// readOnWriter is Read on the writer's held connection, the only one of an
// in-memory database. Tx methods that write refuse to run (ErrReadOnly),
// and the ROLLBACK at the end undoes anything else.
func (s *Store) readOnWriter(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.takeTurn(ctx, "read"); err != nil {
		return err
	}
	defer s.endTurn()
	if _, err := s.wc.ExecContext(ctx, "BEGIN"); err != nil {
		s.rollback(ctx) // see Write
		return withCtx(ctx, wrap("begin read", err))
	}
	t := newConnTxn(s.wc, s.w, true)
	defer func() { // whatever happens in fn, a panic included
		t.close()
		s.rollback(ctx)
	}()
	if err := fn(t); err != nil {
		return withCtx(ctx, err)
	}
	return nil
}

// withCtx makes an error that happened because ctx ended match ctx's error:
// database/sql then reports only "statement is closed" or sql.ErrTxDone.
// The original error is kept in the chain too.
func withCtx(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}

// closedErr is the error of operation op after Close.
func closedErr(op string) error {
	return fmt.Errorf("sqlite: %s: %w", op, store.ErrClosed)
}

// takeTurn waits for the turn to use the writer's connection, for
// operation op ("read" or "write"). It returns an error, without the turn,
// when the Store is closed or ctx ends first. On success the caller must
// call endTurn.
func (s *Store) takeTurn(ctx context.Context, op string) error {
	if s.closed.Load() {
		return closedErr(op)
	}
	select {
	case s.turn <- struct{}{}:
	case <-ctx.Done():
		return wrap("begin "+op, ctx.Err())
	}
	if s.closed.Load() {
		s.endTurn()
		return closedErr(op)
	}
	if err := ctx.Err(); err != nil { // the select picks at random when both are ready
		s.endTurn()
		return wrap("begin "+op, err)
	}
	return nil
}

func (s *Store) endTurn() { <-s.turn }

// rollback ends the transaction on the writer's connection, whatever ctx
// does meanwhile. With no transaction left (SQLite ends one by itself on
// some errors, a failed COMMIT may or may not), it fails harmlessly.
func (s *Store) rollback(ctx context.Context) {
	_, _ = s.wc.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
}

// Write runs fn in a write transaction (see [store.Store.Write]). Writes
// are serialized: one runs at a time in the process, on the writer's
// connection, and BEGIN IMMEDIATE takes the file's write lock at the start,
// waiting up to the busy timeout for another process. A Write waiting for
// its turn returns when ctx ends; one that waited out the busy timeout for
// another process's lock fails with an error wrapping
// [store.ErrLockTimeout], and writes nothing. The transaction is rolled back when fn
// returns an error, when fn panics (the panic then continues), and when
// ctx ends before the commit. A COMMIT that fails (the log cannot grow: a
// full disk, an I/O error) writes nothing either: its error wraps
// [store.ErrTxEnded], as does that of a transaction SQLite ended itself.
// On a file store, a Write whose database file, -wal or -shm is no longer
// the file at its path that Open opened (deleted, renamed, replaced) rolls
// back and fails with an error wrapping [ErrFileMoved].
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	if err := s.takeTurn(ctx, "write"); err != nil {
		return err
	}
	defer s.endTurn()
	if err := s.beginImmediate(ctx); err != nil {
		// A ROLLBACK with no transaction open fails, harmlessly: it ends
		// one a failed BEGIN might have left open.
		s.rollback(ctx)
		if isBusy(err) {
			// Another process held the file's write lock for the whole
			// busy timeout: the sentinel callers can wait on and retry.
			err = fmt.Errorf("%w: %w", store.ErrLockTimeout, err)
		}
		return withCtx(ctx, wrap("begin write", err))
	}
	// The store's own statements from here on run without ctx's end
	// (they are short, and ctx is checked before COMMIT): the driver
	// watches a statement's context that can end from a goroutine of its
	// own, one more goroutine to start per statement. But none starts once
	// ctx has ended, and the two whose cost grows with a pool run on ctx
	// itself (see txn.wctx).
	own := context.WithoutCancel(ctx)
	t := newConnTxn(s.wc, s.w, false)
	t.watch(&s.rollbacks)
	t.wctx = ctx
	committed := false
	defer func() { // on every way out, a panic of fn included
		t.close()
		if !committed {
			s.cache.reset() // it may hold states of this transaction (see below)
			s.rollback(ctx)
		}
	}()
	changed, err := s.cache.begin(own, t)
	if err != nil {
		return withCtx(ctx, wrap("begin write", err))
	}
	if changed {
		// Another connection wrote: maybe a newer poolq's migration.
		if err := checkSchema(own, t); err != nil {
			s.cache.invalidate() // checked again at the next Write, and the next
			return withCtx(ctx, err)
		}
	}
	if err := fn(t); err != nil {
		return withCtx(ctx, err)
	}
	if err := t.ended(); err != nil {
		return withCtx(ctx, err)
	}
	if err := t.flushCounts(own); err != nil {
		return withCtx(ctx, err)
	}
	// The cache takes t's states before COMMIT, so that check mode
	// compares with the database exactly what the cache goes on with; the
	// deferred reset drops them if the commit does not happen.
	s.cache.commit(t)
	if s.checkCache {
		if err := s.cache.check(own, t); err != nil {
			return withCtx(ctx, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return wrap("commit", err)
	}
	if err := t.ended(); err != nil {
		return err
	}
	if s.files != nil {
		// Under the write lock: no Write commits after a change of the
		// files that happened before its check.
		if err := s.files.check(); err != nil {
			return fmt.Errorf("sqlite: commit: %w", err)
		}
	}
	if _, err := s.wc.ExecContext(own, "COMMIT"); err != nil {
		// A COMMIT that failed (the log could not grow: SQLITE_FULL, an
		// I/O error; SQLITE_BUSY) may leave the transaction open: the
		// deferred ROLLBACK ends it. Nothing of it is written, so the
		// error wraps store.ErrTxEnded: its functions may run again (group
		// commit runs each alone: which one made it fail, if one did, is
		// not known).
		return fmt.Errorf("%w: %w", wrap("commit", err), store.ErrTxEnded)
	}
	committed = true
	if s.cp != nil {
		// Checked at Open: this cannot fail while the connection is open.
		n, _ := logWrites(s.wc)
		s.cp.wrote(n)
	}
	return nil
}

// beginImmediate runs BEGIN IMMEDIATE on the writer's connection, trying
// again while another connection (another process) holds the file's write
// lock, every lockPoll at most, for up to the busy timeout, as long as ctx
// allows. SQLite's own busy handler sleeps up to 100 ms between its tries,
// and a process whose callers write back to back frees the lock for a few
// microseconds between its transactions: with tries that far apart, a
// Write of another process met the lock taken try after try, past its
// busy timeout (TestStore_WriteNotStarvedByAnotherStore). It returns the
// last try's error, or ctx's when ctx ends between two tries.
//
// Only the waits between tries watch ctx (Write's takeTurn checked it just
// before): a try never waits (the writer's connection has no busy
// timeout), and the driver watches a statement's context that can end
// from a goroutine it starts for the statement, a cost paid at every Write
// (group commit gives each Write a context that ends once its callers have
// all left).
func (s *Store) beginImmediate(ctx context.Context) error {
	own := context.WithoutCancel(ctx)
	if s.r == nil { // :memory:: one connection, never busy
		_, err := s.wc.ExecContext(own, "BEGIN IMMEDIATE")
		return err
	}
	deadline := time.Now().Add(s.busyTimeout)
	var timer *time.Timer
	for pause := 20 * time.Microsecond; ; pause = min(2*pause, lockPoll) {
		_, err := s.wc.ExecContext(own, "BEGIN IMMEDIATE")
		if err == nil || !isBusy(err) || !time.Now().Before(deadline) {
			return err
		}
		if timer == nil {
			timer = time.NewTimer(pause)
			defer timer.Stop()
		} else {
			timer.Reset(pause)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lockPoll is the longest pause between beginImmediate's tries.
const lockPoll = time.Millisecond

// Close closes the database. Read and Write return an error wrapping
// [store.ErrClosed] afterwards; a second Close does nothing and returns
// nil. Close waits for the Write under way (and on an in-memory store the
// Read) to commit or roll back; it does not wait for the Reads of a file
// store: one that holds its connection finishes, one waiting for a
// connection fails. Call it once the Reads and Writes have returned: after
// the engines over the Store are closed (see [store.Store]'s Close).
func (s *Store) Close() error {
	s.turn <- struct{}{}
	defer s.endTurn()
	if s.closed.Swap(true) {
		return nil
	}
	var err error
	if s.cp != nil {
		err = s.cp.close()
	}
	s.w.closeStmts()
	err = errors.Join(err, s.wc.Close(), s.w.db.Close())
	if s.r != nil {
		s.r.closeStmts()
		err = errors.Join(err, s.r.db.Close())
	}
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Check runs SQLite's integrity_check on the database: every page, every
// index against its table. It returns nil for a sound file, and an error
// wrapping [ErrCorrupt] with SQLite's report (its first lines) otherwise.
// Its cost is linear in the size of the file, and it holds a read
// transaction meanwhile: run it from an operator's command, not on a hot
// path. Writers go on while it runs.
func (s *Store) Check(ctx context.Context) error {
	if s.closed.Load() {
		return closedErr("check")
	}
	if s.r == nil { // :memory:: the one connection, in turn
		if err := s.takeTurn(ctx, "check"); err != nil {
			return err
		}
		defer s.endTurn()
		return check(ctx, s.wc, "integrity_check")
	}
	return check(ctx, s.r.db, "integrity_check")
}

// checkReportLines bounds the lines of a damage report kept in the error.
const checkReportLines = 20

// check runs PRAGMA pragma (integrity_check or quick_check) on q and turns
// a report of damage into an error wrapping ErrCorrupt.
func check(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, pragma string) error {
	rows, err := q.QueryContext(ctx, fmt.Sprintf("PRAGMA %s(%d)", pragma, checkReportLines))
	if err != nil {
		return wrap(pragma, err)
	}
	defer rows.Close()
	var report []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return wrap(pragma, err)
		}
		report = append(report, line)
	}
	if err := rows.Err(); err != nil {
		return wrap(pragma, err)
	}
	if len(report) == 1 && report[0] == "ok" {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w: %s", pragma, ErrCorrupt, strings.Join(report, "; "))
}
