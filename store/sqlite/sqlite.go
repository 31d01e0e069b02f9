package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/poolq/poolq/store"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
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
	// per Write.
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
	// process holds on the same file before failing; it must not be
	// negative, and is rounded up to whole milliseconds. Defaults to
	// [DefaultBusyTimeout].
	BusyTimeout time.Duration
	// CacheMiB is the page cache of the writer connection, in MiB (each
	// reader connection has a quarter of it, at least 2). It bounds the
	// store's memory whatever the number of items, and is what keeps a
	// pool of a million items as fast to dispatch as one of ten thousand:
	// the indexes' upper levels stay in memory. Must not be negative.
	// Defaults to DefaultCacheMiB.
	CacheMiB int
	// CheckpointInterval is how often a goroutine of the Store copies the
	// write-ahead log back into the database file (see checkpoint.go), so
	// that no commit waits for a checkpoint. Negative: no goroutine, and
	// SQLite checkpoints in the commit that crosses 1000 pages, as it does
	// by default. Defaults to DefaultCheckpointInterval.
	CheckpointInterval time.Duration
}

// DefaultCacheMiB is the writer's page cache when [Options.CacheMiB] is
// zero.
const DefaultCacheMiB = 32

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

func (o Options) validate() error {
	switch o.Durability {
	case Normal, Full:
	default:
		return fmt.Errorf("sqlite: unknown durability %v", o.Durability)
	}
	if o.BusyTimeout < 0 {
		return fmt.Errorf("sqlite: negative busy timeout %v", o.BusyTimeout)
	}
	if o.CacheMiB < 0 {
		return fmt.Errorf("sqlite: negative cache size %d MiB", o.CacheMiB)
	}
	return nil
}

// Store is a [store.Store] on one SQLite database: a file shared by any
// number of processes, or a private in-memory database. A Store is safe for
// concurrent use.
type Store struct {
	w      *handle       // the writer: one connection, BEGIN IMMEDIATE
	r      *handle       // the readers: a small pool; w itself for :memory:
	cp     *checkpointer // nil for :memory: or when turned off
	closed atomic.Bool
}

var _ store.Store = (*Store)(nil)

// handle is a database pool with the statements prepared on it.
type handle struct {
	db    *sql.DB
	stmts map[string]*sql.Stmt
}

// Open opens the database at path, creating it if needed, and brings its
// schema to the latest version this code knows. path is a file name, or
// [MemoryPath] (":memory:") for a private in-memory database, which lives as
// long as the Store. A file written by a newer poolq is not touched: Open
// returns an error wrapping [store.ErrSchemaTooNew].
//
// A file store is in WAL mode, writes through one connection with BEGIN
// IMMEDIATE and reads through a pool of read-only connections.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	if path == MemoryPath {
		return openMemory(ctx, opts)
	}
	return openFile(ctx, path, opts)
}

func openMemory(ctx context.Context, opts Options) (*Store, error) {
	// One connection holds the whole database: it must never be closed
	// while the Store lives, hence no idle or lifetime limit.
	db, err := sql.Open("sqlite", MemoryPath+"?"+dsnParams(opts, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", MemoryPath, err)
	}
	h, err := prepare(ctx, db, writeQueries())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", MemoryPath, err)
	}
	return &Store{w: h, r: h}, nil
}

func openFile(ctx context.Context, path string, opts Options) (*Store, error) {
	name := "file:" + escapePath(path)
	w, err := sql.Open("sqlite", name+"?"+dsnParams(opts, false))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	fail := func(err error, dbs ...*sql.DB) (*Store, error) {
		for _, db := range dbs {
			db.Close()
		}
		return nil, err
	}
	if err := migrate(ctx, w); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	// WAL is a property of the file, not of a connection: it is set once,
	// on the writer, after migrate has checked that the file is one this
	// code may change.
	if err := setWAL(ctx, w); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	r, err := sql.Open("sqlite", name+"?"+dsnParams(opts, true))
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	wh, err := prepare(ctx, w, writeQueries())
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	rh, err := prepare(ctx, r, readQueries())
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	st := &Store{w: wh, r: rh}
	if opts.CheckpointInterval > 0 {
		c, err := sql.Open("sqlite", name+"?"+strings.Join(basePragmas(opts, 2), "&"))
		if err != nil {
			return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
		}
		c.SetMaxOpenConns(1)
		st.cp = startCheckpointer(c, opts.CheckpointInterval)
	}
	return st, nil
}

// dsnParams returns the DSN query of a connection. Pragmas go in the DSN so
// that every connection a pool opens gets them. temp_store(memory) keeps
// statement journals in memory: every INSERT of items has one (its trigger
// and foreign key may abort it halfway), and in a temporary file they cost
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
	return []string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", busy),
		"_pragma=foreign_keys(1)",
		"_pragma=temp_store(memory)",
		"_pragma=synchronous(" + opts.Durability.pragma() + ")",
		fmt.Sprintf("_pragma=cache_size(%d)", -cacheMiB*1024),
	}
}

// escapePath escapes the characters that end or alter the path part of an
// SQLite URI filename.
func escapePath(path string) string {
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch c := path[i]; c {
		case '%', '?', '#':
			fmt.Fprintf(&b, "%%%02X", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func setWAL(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode: %w", translate(err))
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("set WAL mode: journal mode is %q", mode)
	}
	return nil
}

// prepare prepares queries on db, once, so that transactions reuse them.
func prepare(ctx context.Context, db *sql.DB, queries []string) (*handle, error) {
	h := &handle{db: db, stmts: make(map[string]*sql.Stmt, len(queries))}
	for _, q := range queries {
		if _, ok := h.stmts[q]; ok {
			continue
		}
		s, err := db.PrepareContext(ctx, q)
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
// query.
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return wrap("begin read", err)
	}
	t := newTxn(tx, s.r, true)
	defer tx.Rollback() // a read transaction has nothing to commit
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

// Write runs fn in a write transaction (see [store.Store.Write]). Writes
// are serialized: one runs at a time in the process, and BEGIN IMMEDIATE
// takes the file's write lock at the start, waiting up to the busy timeout
// for another process. The transaction is rolled back when fn returns an
// error, when fn panics (the panic then continues), and when ctx ends
// before the commit.
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) (err error) {
	if s.closed.Load() {
		return ErrClosed
	}
	tx, err := s.w.db.BeginTx(ctx, nil)
	if err != nil {
		return wrap("begin write", err)
	}
	done := false
	defer func() {
		if !done {
			tx.Rollback() // fn panicked; the panic goes on
		}
	}()
	t := newTxn(tx, s.w, false)
	if err := fn(t); err != nil {
		done = true
		tx.Rollback()
		return withCtx(ctx, err)
	}
	done = true
	if t.broken != nil {
		tx.Rollback()
		return t.broken
	}
	// database/sql rolls back by itself once ctx ends, and Commit may then
	// say only sql.ErrTxDone: report the context's error instead.
	if err := ctx.Err(); err != nil {
		tx.Rollback()
		return wrap("commit", err)
	}
	if err := tx.Commit(); err != nil {
		return withCtx(ctx, wrap("commit", err))
	}
	return nil
}

// Close closes the database. Read, Write and Close fail with [ErrClosed]
// afterwards. Close does not wait for transactions under way: one that
// holds its connection still commits or rolls back, one waiting for a
// connection fails. Call it once the Reads and Writes have returned.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return ErrClosed
	}
	var err error
	if s.cp != nil {
		err = s.cp.close()
	}
	s.w.closeStmts()
	err = errors.Join(err, s.w.db.Close())
	if s.r != s.w {
		s.r.closeStmts()
		err = errors.Join(err, s.r.db.Close())
	}
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}
