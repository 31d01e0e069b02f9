package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
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

	// On a file store the writer's one connection is held for the Store's
	// life, and Write runs BEGIN IMMEDIATE … COMMIT on it itself, with w's
	// statements prepared on it: database/sql's Tx would start a goroutine
	// per transaction and per result set to watch the context, and rebind
	// every prepared statement to each transaction.
	wc  *sql.Conn
	wmu sync.Mutex // one Write at a time (on wc for a file store)

	cache poolCache // pools as the last write transaction left them, under wmu (see cache.go)
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
	h, err := prepare(ctx, db, db, writeQueries())
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
	if err := setWAL(ctx, w, opts.BusyTimeout); err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	r, err := sql.Open("sqlite", name+"?"+dsnParams(opts, true))
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w)
	}
	r.SetMaxOpenConns(readConns)
	r.SetMaxIdleConns(readConns)
	wc, err := w.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	wh, err := prepare(ctx, w, wc, writeQueries())
	if err != nil {
		wc.Close()
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	rh, err := prepare(ctx, r, r, readQueries())
	if err != nil {
		wh.closeStmts()
		wc.Close()
		return fail(fmt.Errorf("sqlite: open %s: %w", path, err), w, r)
	}
	st := &Store{w: wh, r: rh, wc: wc}
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

// setWAL puts the file in WAL mode. Switching a new file to WAL takes an
// exclusive lock, and SQLite does not wait for it through the busy handler
// when another connection (a process opening the same new file) holds a
// lock it would otherwise deadlock with: it fails at once with
// SQLITE_BUSY. So setWAL itself tries again, with a growing pause, for up
// to timeout (the busy timeout), as the busy handler would have.
func setWAL(ctx context.Context, db *sql.DB, timeout time.Duration) error {
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
	if s.wc != nil {
		return s.writeConn(ctx, fn)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
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
			s.cache.reset()
			tx.Rollback() // fn panicked; the panic goes on
		}
	}()
	t := newTxn(tx, s.w, false)
	if err := s.cache.begin(ctx, t); err != nil {
		done = true
		s.cache.reset()
		tx.Rollback()
		return withCtx(ctx, wrap("begin write", err))
	}
	if err := fn(t); err != nil {
		done = true
		s.cache.reset()
		tx.Rollback()
		return withCtx(ctx, err)
	}
	done = true
	if t.broken == nil {
		t.broken = t.flushCounts(ctx)
	}
	if t.broken != nil {
		s.cache.reset()
		tx.Rollback()
		return t.broken
	}
	// database/sql rolls back by itself once ctx ends, and Commit may then
	// say only sql.ErrTxDone: report the context's error instead.
	if err := ctx.Err(); err != nil {
		s.cache.reset()
		tx.Rollback()
		return wrap("commit", err)
	}
	if err := tx.Commit(); err != nil {
		s.cache.reset()
		return withCtx(ctx, wrap("commit", err))
	}
	s.cache.commit(t)
	return nil
}

// writeConn is Write on the held writer connection of a file store.
func (s *Store) writeConn(ctx context.Context, fn func(store.Tx) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return wrap("begin write", err)
	}
	if _, err := s.wc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return withCtx(ctx, wrap("begin write", err))
	}
	// ROLLBACK and COMMIT run whatever ctx does meanwhile. A ROLLBACK with
	// no transaction left (SQLite ends one by itself on some errors) fails
	// harmlessly.
	bg := context.WithoutCancel(ctx)
	rollback := func() {
		s.cache.reset()
		_, _ = s.wc.ExecContext(bg, "ROLLBACK")
	}
	t := newConnTxn(s.wc, s.w)
	done := false
	defer func() {
		t.close()
		if !done {
			rollback() // fn panicked; the panic goes on
		}
	}()
	if err := s.cache.begin(ctx, t); err != nil {
		done = true
		rollback()
		return withCtx(ctx, wrap("begin write", err))
	}
	if err := fn(t); err != nil {
		done = true
		rollback()
		return withCtx(ctx, err)
	}
	done = true
	if t.broken == nil {
		t.broken = t.flushCounts(ctx)
	}
	if t.broken != nil {
		rollback()
		return withCtx(ctx, t.broken)
	}
	if err := ctx.Err(); err != nil {
		rollback()
		return wrap("commit", err)
	}
	if _, err := s.wc.ExecContext(bg, "COMMIT"); err != nil {
		rollback() // a COMMIT that failed (SQLITE_BUSY, say) may leave the transaction open
		return wrap("commit", err)
	}
	s.cache.commit(t)
	return nil
}

// Close closes the database. Read, Write and Close fail with [ErrClosed]
// afterwards. Close waits for a Write under way to commit or roll back; it does not wait for Reads: one that holds its connection
// finishes, one waiting for a connection fails. Call it once the Reads and
// Writes have returned.
func (s *Store) Close() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.closed.Swap(true) {
		return ErrClosed
	}
	var err error
	if s.cp != nil {
		err = s.cp.close()
	}
	s.w.closeStmts()
	if s.wc != nil {
		err = errors.Join(err, s.wc.Close())
	}
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
