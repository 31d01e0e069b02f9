package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// DefaultSchema is the schema of the tables when [Options.Schema] is empty.
const DefaultSchema = "poolq"

// DefaultMaxConns is the size of the Store's pool of connections when
// [Options.MaxConns] is zero and the URL names none (pool_max_conns).
const DefaultMaxConns = 8

// maxWaitRestarts is how many of a Write's runs a wait for a lock taken
// after another sends round again (see txn.waitedAfterLock): the runs after
// take every lock the earlier ones met first, so a second wait is rare,
// and a third is let stand rather than retried without end.
const maxWaitRestarts = 2

// maxLockRestarts bounds the runs of a Write beyond Options.MaxRetries that
// restarts to take more locks in order may add (see Write): a bound that
// fn's locks, which are finite, keep it far below.
const maxLockRestarts = 10_000

// DefaultMaxRetries is how many times Write runs a transaction again after
// a serialization failure, a deadlock or a lock taken out of order, when
// [Options.MaxRetries] is zero.
const DefaultMaxRetries = 20

// Durability says when a committed transaction is safe from loss. It is the
// session's synchronous_commit.
type Durability int

// The durability levels.
const (
	// Normal (synchronous_commit = off): Write returns once the commit is
	// in the server's memory, before its write-ahead log record is flushed
	// to disk. A committed change survives a crash of the process that
	// wrote it (the server has it); a crash of the database server or of
	// its machine may lose the commits of the last moments (at most three
	// times wal_writer_delay, 600 ms by default). The database is never
	// corrupted and never keeps half a transaction. It is the default, as
	// Normal is the SQLite store's.
	Normal Durability = iota
	// Full (synchronous_commit = on): Write returns once the commit is
	// flushed to disk (and to the synchronous standbys, if the server has
	// any): a committed change survives a power loss too, at the cost of a
	// flush per commit, which group commit shares between the operations
	// of a transaction.
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

// synchronousCommit returns the value of synchronous_commit for d.
func (d Durability) synchronousCommit() string {
	if d == Full {
		return "on"
	}
	return "off"
}

// Locking is how a write transaction takes the lock of a pool (see the
// package documentation). Both serialize the writes of a pool in the
// database; they differ only in cost. Every node of a schema must lock the
// same way, since the two locks do not exclude each other: the first node
// to open a schema records its Locking there, and [Open] refuses another
// with [ErrLockingMismatch]. To change it, stop every node, delete the
// record (DELETE FROM <schema>.settings WHERE name = 'locking'), and start
// them with the new Locking.
type Locking int

// The ways of locking a pool.
const (
	// AdvisoryLock takes a transaction-level advisory lock keyed by the
	// schema and the pool's internal id (pg_advisory_xact_lock): a lock in
	// the server's shared memory only, nothing written. It is the default.
	AdvisoryLock Locking = iota
	// RowLock locks the pool's row (SELECT … FOR NO KEY UPDATE), which
	// marks the row, a write to its page and the write-ahead log in every
	// transaction.
	RowLock
)

// String returns "AdvisoryLock" or "RowLock".
func (l Locking) String() string {
	switch l {
	case AdvisoryLock:
		return "AdvisoryLock"
	case RowLock:
		return "RowLock"
	}
	return fmt.Sprintf("Locking(%d)", int(l))
}

// Options configures [Open]. The zero value is ready to use.
type Options struct {
	// Schema is the PostgreSQL schema that holds poolq's tables, created
	// by Open if it does not exist, so that several poolq instances (and
	// tests) can share one database. It must be a plain identifier:
	// lower-case letters, digits and underscores, not starting with a
	// digit nor with pg_, and not information_schema (PostgreSQL's own
	// schemas, which a pg_dump of the database leaves out), at most 63
	// bytes.
	// Every Store opened on the same database and schema shares the same
	// pools. Defaults to [DefaultSchema] ("poolq").
	//
	// The rights Open needs depend on what it finds:
	//   - no such schema: CREATE on the database, to create it;
	//   - a schema without poolq's tables (one a DBA made for the service):
	//     USAGE and CREATE on the schema, nothing on the database;
	//   - poolq's tables at an older version: as well as those, ownership
	//     of the tables (the role that created them, or a member of it),
	//     since the migrations alter them;
	//   - poolq's tables at this version: USAGE on the schema, SELECT,
	//     INSERT, UPDATE and DELETE on its tables and USAGE on its
	//     sequences; Open changes nothing in the schema.
	Schema string
	// Durability says when a commit is safe from loss: [Normal] or [Full].
	// Defaults to Normal.
	Durability Durability
	// MaxConns is the size of the pool of connections (pgxpool's
	// MaxConns), which Reads and Writes share; the listener of
	// [Store.Watch] has a connection of its own. 0 to math.MaxInt32.
	// Defaults to the URL's pool_max_conns if it has one, else
	// [DefaultMaxConns]. The Store's sessions, the listener's too, run
	// with no idle_session_timeout (PostgreSQL 14 and later), whatever the
	// role's, the database's or the URL's: a DBA's bound on idle sessions
	// would end the listener's, idle between notifications by design (the
	// signals sent until it listens again are lost), and the pool's
	// between calls (one idle for less than a second is handed out
	// unchecked, and its call fails). The pool bounds its idle connections
	// itself: at most MaxConns, each closed after 30 minutes idle (pgxpool's
	// default, pool_max_conn_idle_time).
	MaxConns int
	// MaxRetries bounds how many times Write runs its function again
	// after a serialization failure, a deadlock, or a pool lock it must
	// take out of order (see the package documentation; a restart that
	// adds a lock for the next run to take first does not count). Must not be
	// negative. Defaults to [DefaultMaxRetries].
	MaxRetries int
	// Locking is how write transactions lock a pool: [AdvisoryLock] or
	// [RowLock], the same for every node of a schema (see [Locking]).
	// Defaults to AdvisoryLock.
	Locking Locking
	// IdleInTransactionTimeout bounds how long one of the Store's
	// connections may sit idle inside a transaction (the server's
	// idle_in_transaction_session_timeout, rounded up to whole
	// milliseconds): past it the server ends that session, which rolls its
	// transaction back and releases its locks. The Store's transactions
	// wait for nothing but the database while they are open, so a session
	// idle that long belongs to a process that stopped in the middle of
	// one (paused, frozen, or cut off without its connection closing),
	// whose locks would otherwise hold the claims of its pools on every
	// other node until it came back. When it does, its transaction fails
	// with an error, nothing of it committed. Negative: no bound. From
	// [MinIdleInTransactionTimeout] to [MaxIdleInTransactionTimeout].
	// Defaults to [DefaultIdleInTransactionTimeout].
	IdleInTransactionTimeout time.Duration
	// LockTimeout bounds how long a write transaction waits for a lock
	// that another session holds, in practice another node's lock on a
	// pool (the server's lock_timeout, rounded up to whole milliseconds):
	// past it the write fails with an error wrapping [ErrLockTimeout],
	// nothing of it written. A node's transaction holds a pool's lock for
	// milliseconds; one that holds it longer belongs to a process that
	// stopped in the middle of a transaction while its session was not
	// idle (frozen between two statements of a batch, or cut off while
	// sending one), which IdleInTransactionTimeout does not end. Without
	// a bound, this node's writes would wait behind it for as long (its
	// engine runs one write transaction at a time): with one, they fail,
	// and the writes of its other pools go on between. After one such
	// wait, the Store only tries the pool's lock, and a write that needs
	// it fails at once while the transaction that held it still does (a
	// try that finds the lock free, or held by another transaction, ends
	// this; see the package documentation). Negative: no bound. A write that runs one caller's
	// operation alone ends its lock waits at that caller's deadline instead,
	// when it comes first (see [store.WithWaitBound]): it fails with an
	// error wrapping both ErrLockTimeout and context.DeadlineExceeded, and
	// such a wait does not count as one past LockTimeout.
	// From [MinLockTimeout] to [MaxLockTimeout]. Defaults to
	// [DefaultLockTimeout]. The
	// migrations at Open are not bounded by it (the nodes that open at
	// once wait for the one that migrates). Twice it (at least it plus
	// 5 s) also bounds each round trip of a write transaction: a
	// connection that answers none within it has gone silent, and is
	// closed (see the package documentation, Connection failures);
	// negative: no bound. The Store's sessions run with no
	// statement_timeout, whatever the role's, the database's or the
	// URL's (as they run with this lock_timeout): one shorter than
	// LockTimeout would end such a wait before it.
	LockTimeout time.Duration
	// MaxClockSkew bounds how far this process's clock (time.Now) may be
	// from the database server's. Open compares them: further, Open
	// fails with an error wrapping [ErrClockSkew], before it changes
	// anything. The Store keeps comparing them until Close (it reads the
	// server's clock again every 5 s, and sees a step of this clock at
	// once): while this clock is further, the claims over the Store fail
	// with an error wrapping ErrClockSkew, and so do the extensions while
	// it is behind, and it takes no lease for ended (see the package
	// documentation, Clocks). The engines of several
	// nodes each judge leases, retry times and calling windows by their
	// own clock, so a node whose clock is wrong would expire other nodes'
	// live leases, or call outside a calling window. Negative: no check,
	// at Open or after. At least [MinMaxClockSkew]. Defaults to
	// [DefaultMaxClockSkew].
	MaxClockSkew time.Duration
	// LeaseGrace is how long after a lease's deadline by its holder's
	// clock the engines over this Store take the lease for ended: its
	// item's expiry counts, its slot is free, its contact may be called
	// from another pool (see [store.LeaseGracer]). Each node judges by
	// its own clock, and a node ahead of the holder's by less than the
	// grace does not take a call its holder may still be on (queue.Work
	// cancels a handler at its lease's deadline, counted from the lease's
	// last write on the process's monotonic clock).
	// The cost: a dead node's items come back the grace later. Zero:
	// twice MaxClockSkew (each node's clock is within MaxClockSkew of
	// the server's, so two nodes' are within twice that): 60 s by
	// default, and twice [DefaultMaxClockSkew] when MaxClockSkew is
	// negative (the clocks not checked), at most [MaxLeaseGrace].
	// Negative: none (a node ahead of another may then call a contact
	// that node is still calling, for up to their skew). Positive: from
	// [MinLeaseGrace] to [MaxLeaseGrace].
	LeaseGrace time.Duration
	// ListenerIdle is how long the listener of [Store.Watch] (the node's
	// wake-ups from other nodes) waits without a notification before it
	// checks its connection with a ping, which must be answered within
	// 5 s, else it connects again. A NAT or firewall that drops an idle
	// flow leaves the connection silent, with no FIN and no RST: without
	// the ping the node would hear no other node until TCP gave up, tens of
	// minutes later. Keep it below the idle timeout of anything between the
	// node and the server. A listener connection that has stayed up for
	// twice ListenerIdle counts as sound: when it fails, the listener
	// connects again at once, not after the pause its earlier failures had
	// grown to (at most 2 s). From [MinListenerIdle] to [MaxListenerIdle].
	// Defaults to [DefaultListenerIdle].
	ListenerIdle time.Duration
}

// DefaultListenerIdle is [Options.ListenerIdle] when it is zero: a ping
// every 30 s on a quiet listener connection, within the idle timeouts of
// common NAT gateways and firewalls (a few minutes and more).
const DefaultListenerIdle = 30 * time.Second

// Bounds of [Options.ListenerIdle]. Below a second the pings are pure
// traffic (a silent connection takes the 5 s of a ping's bound to be found
// anyway), and 30 written as a bare number is 30 ns, not 30 s; above an
// hour a silent connection goes unnoticed for as long.
const (
	MinListenerIdle = time.Second
	MaxListenerIdle = time.Hour
)

// Bounds of a positive [Options.LeaseGrace]. A grace below a millisecond
// is a bare number's mistake (30 meant as seconds is 30 ns): it would
// leave the nodes judging by their clocks alone.
const (
	MinLeaseGrace = time.Millisecond
	MaxLeaseGrace = 24 * time.Hour
)

// DefaultIdleInTransactionTimeout is [Options.IdleInTransactionTimeout]
// when it is zero: far above any transaction of the Store (milliseconds),
// far below what a dialer's other nodes could wait for a pool.
const DefaultIdleInTransactionTimeout = 30 * time.Second

// MaxIdleInTransactionTimeout is the largest
// [Options.IdleInTransactionTimeout].
const MaxIdleInTransactionTimeout = 24 * time.Hour

// MinIdleInTransactionTimeout is the smallest positive
// [Options.IdleInTransactionTimeout]. A transaction's session is idle
// between its statements while this process works out the next ones; a
// bound of a few milliseconds ended live transactions (at 1 ms, every
// write failed), and 30 written as a bare number is 30 ns, not 30 s.
const MinIdleInTransactionTimeout = 100 * time.Millisecond

// DefaultLockTimeout is [Options.LockTimeout] when it is zero: as
// DefaultIdleInTransactionTimeout, far above any lock wait between live
// nodes, far below what a dialer could wait for a pool.
const DefaultLockTimeout = 30 * time.Second

// MaxLockTimeout is the largest [Options.LockTimeout].
const MaxLockTimeout = 24 * time.Hour

// MinLockTimeout is the smallest positive [Options.LockTimeout]. Another
// node's live transaction holds a pool's lock for milliseconds (a bulk Add
// for longer): a bound of a few milliseconds failed writes that waited
// behind one (ErrLockTimeout behind a transaction of 50 ms), and left the
// pool only tried afterwards; 30 written as a bare number is 30 ns, not
// 30 s.
const MinLockTimeout = 100 * time.Millisecond

// roundTripMargin is the least a round trip of a write transaction may
// take beyond a wait for a lock (Options.LockTimeout): the statements' own
// work. A chunk of 4,096 items of a bulk Add takes well under a second (a
// whole Add of 10,000 items with contact fields took 0.40–0.69 s;
// bench/RESULTS.md), but one statement deletes or copies a whole pool
// (DeletePool, DuplicatePool): seconds for a million items. So the margin
// is the lock timeout itself, and at least this.
const roundTripMargin = 5 * time.Second

// roundTripTimeout bounds each round trip of a write transaction (its
// connection's acquisition, each batch of statements, the commit): a
// connection that answers none within it has gone silent (a partition, a
// host that lost power), and pgx closes it rather than wait minutes for
// TCP to give up. 0 (no bound) when lock waits have none.
func (s *Store) roundTripTimeout() time.Duration {
	if s.opts.LockTimeout < 0 {
		return 0
	}
	return s.opts.LockTimeout + max(s.opts.LockTimeout, roundTripMargin)
}

// millis returns d as the value of a server timeout setting: whole
// milliseconds, rounded up; "0" (none) for a negative d.
func millis(d time.Duration) string {
	if d < 0 {
		return "0"
	}
	ms := (d + time.Millisecond - 1) / time.Millisecond
	return strconv.FormatInt(int64(ms), 10)
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o Options) withDefaults() Options {
	if o.Schema == "" {
		o.Schema = DefaultSchema
	}
	if o.MaxRetries == 0 {
		o.MaxRetries = DefaultMaxRetries
	}
	if o.IdleInTransactionTimeout == 0 {
		o.IdleInTransactionTimeout = DefaultIdleInTransactionTimeout
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.MaxClockSkew == 0 {
		o.MaxClockSkew = DefaultMaxClockSkew
	}
	if o.ListenerIdle == 0 {
		o.ListenerIdle = DefaultListenerIdle
	}
	if o.LeaseGrace == 0 {
		skew := o.MaxClockSkew
		if skew < 0 {
			skew = DefaultMaxClockSkew
		}
		o.LeaseGrace = MaxLeaseGrace
		if skew < MaxLeaseGrace/2 {
			o.LeaseGrace = max(2*skew, MinLeaseGrace) // a MaxClockSkew too small is its own error
		}
	}
	return o
}

// validate reports every bad option, and a nil ctx, at once, as
// [validate.Errors].
func (o Options) validate(ctx context.Context) error {
	var v validate.Validator
	v.Check(ctx != nil, "ctx", validate.RuleRequired, "is required (not nil: use context.Background())")
	v.Check(schemaName.MatchString(o.Schema) && !strings.HasPrefix(o.Schema, "pg_") && o.Schema != "information_schema",
		"schema", validate.RuleFormat,
		fmt.Sprintf("must be a plain identifier: lower-case letters, digits and underscores, at most 63, "+
			"not starting with a digit or pg_, not information_schema (got %q)", o.Schema))
	v.Check(o.Durability == Normal || o.Durability == Full, "durability", validate.RuleEnum,
		fmt.Sprintf("must be Normal or Full (got %v)", o.Durability))
	v.Check(o.Locking == AdvisoryLock || o.Locking == RowLock, "locking", validate.RuleEnum,
		fmt.Sprintf("must be AdvisoryLock or RowLock (got %v)", o.Locking))
	v.IntRange("max_conns", o.MaxConns, 0, math.MaxInt32)
	v.IntMin("max_retries", o.MaxRetries, 0)
	v.Check(o.IdleInTransactionTimeout < 0 ||
		o.IdleInTransactionTimeout >= MinIdleInTransactionTimeout && o.IdleInTransactionTimeout <= MaxIdleInTransactionTimeout,
		"idle_in_transaction_timeout", validate.RuleRange,
		fmt.Sprintf("must be negative (no bound) or between %v and %v (got %v)",
			MinIdleInTransactionTimeout, MaxIdleInTransactionTimeout, o.IdleInTransactionTimeout))
	v.Check(o.LockTimeout < 0 || o.LockTimeout >= MinLockTimeout && o.LockTimeout <= MaxLockTimeout,
		"lock_timeout", validate.RuleRange,
		fmt.Sprintf("must be negative (no bound) or between %v and %v (got %v)",
			MinLockTimeout, MaxLockTimeout, o.LockTimeout))
	v.Check(o.MaxClockSkew < 0 || o.MaxClockSkew >= MinMaxClockSkew, "max_clock_skew", validate.RuleRange,
		fmt.Sprintf("must be negative (no check) or at least %v (got %v)", MinMaxClockSkew, o.MaxClockSkew))
	v.Check(o.LeaseGrace < 0 || o.LeaseGrace >= MinLeaseGrace && o.LeaseGrace <= MaxLeaseGrace, "lease_grace", validate.RuleRange,
		fmt.Sprintf("must be negative (none) or between %v and %v (got %v)", MinLeaseGrace, MaxLeaseGrace, o.LeaseGrace))
	v.Check(o.ListenerIdle >= MinListenerIdle && o.ListenerIdle <= MaxListenerIdle, "listener_idle", validate.RuleRange,
		fmt.Sprintf("must be between %v and %v (got %v)", MinListenerIdle, MaxListenerIdle, o.ListenerIdle))
	if err := v.Err(); err != nil {
		return fmt.Errorf("postgres: options: %w", err)
	}
	return nil
}

// Store is a [store.Store] on one schema of a PostgreSQL database, shared by
// any number of processes. It implements [store.Watcher],
// [store.LeaseGracer] and [store.ClockChecker], and its write
// transactions implement [store.Signaler]. A Store is safe for concurrent
// use.
type Store struct {
	pool    *pgxpool.Pool
	connCfg *pgx.ConnConfig // for the listener's own connection
	opts    Options
	lockNS  int64  // the schema's part of advisory lock keys (see lockKey)
	channel string // the NOTIFY channel of the schema

	closed    atomic.Bool
	closeOnce sync.Once
	lis       listener // see listen.go

	// seen holds, for each pool read in a write transaction, its type and
	// cap as last seen: which due statement PoolDue sends with the pool's
	// lock. Only a guess, checked against the state read with the lock; a
	// wrong one costs the statement it sent.
	seen hints

	frozen frozenPools // the pools another session held past LockTimeout

	watch *clockWatch // this process's clock against the server's (see clockwatch.go)

	stats struct {
		commits, retries, waits atomic.Uint64
	}
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Watcher     = (*Store)(nil)
	_ store.LeaseGracer = (*Store)(nil)
)

// Open connects to the database at url (a PostgreSQL URL or key=value
// connection string, as pgx takes it), creates the schema if needed and
// brings its tables to the latest version this code knows. Migrations run
// in one transaction under an advisory lock of the schema, so several
// processes opening at once migrate it once. A schema written by a newer
// poolq is not touched: Open returns an error wrapping
// [store.ErrSchemaTooNew]; nor is one whose schema_version table is another
// application's ([ErrNotPoolq]). Every connection of the Store needs a
// server session of its own: Open refuses, with [ErrTransactionPooling],
// a URL that leads to a pooler in transaction or statement mode (see the
// package documentation, Connection poolers). Bad options and a nil ctx
// are reported together as [validate.Errors] (wrapping
// [validate.ErrInvalid]), before anything is connected to.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.validate(ctx); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = int32(opts.MaxConns)
	} else if named, err := namesMaxConns(url); err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	} else if !named {
		cfg.MaxConns = DefaultMaxConns
	}
	// The Store's settings are set once connected (see sessionSettings);
	// the startup packet carries only the application's name, which
	// poolers pass on.
	rp := cfg.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = "poolq"
	}
	s := &Store{
		connCfg: cfg.ConnConfig.Copy(),
		opts:    opts,
		lockNS:  schemaHash(opts.Schema),
		channel: channelName(opts.Schema),
		watch:   newClockWatch(ctx, opts),
	}
	if err := s.prepare(ctx, cfg.ConnConfig); err != nil {
		return nil, err
	}
	cfg.AfterConnect = s.afterConnect
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	s.lis.init(s)
	s.watch.start(s.pool)
	return s, nil
}

// prepare checks that the connection is a session of its own (see
// checkOwnSession), the server and the clocks, and migrates the schema, on
// a connection of its own.
func (s *Store) prepare(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: open: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if err := checkOwnSession(ctx, conn, cfg); err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	if err := checkServer(ctx, conn); err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	// Not the timeouts, for the migrations, whose transaction may wait for
	// more than the database (reading the next file) and runs once, and
	// whose lock the other nodes opening at once must wait for, however
	// long it takes.
	if _, err := conn.Exec(ctx, s.sessionSettings(conn.PgConn().ParameterStatus("server_version"), false)); err != nil {
		return fmt.Errorf("postgres: open: set the session: %w", err)
	}
	if err := s.watch.open(ctx, conn); err != nil {
		return fmt.Errorf("postgres: open: %w", err)
	}
	if err := migrate(ctx, conn, s.opts.Schema, s.lockNS); err != nil {
		return fmt.Errorf("postgres: open schema %s: %w", s.opts.Schema, err)
	}
	if err := checkLocking(ctx, conn, s.opts.Schema, s.opts.Locking); err != nil {
		return fmt.Errorf("postgres: open schema %s: %w", s.opts.Schema, err)
	}
	return nil
}

// minServerVersion is the oldest PostgreSQL the Store runs on (as
// server_version_num): 13 has pg_current_xact_id and pg_xact_status, with
// which a write learns what became of a commit whose answer was lost.
const minServerVersion = 130000

// checkServer returns an error unless the server is recent enough and the
// database's server_encoding is UTF8 ([ErrNotUTF8]).
func checkServer(ctx context.Context, conn *pgx.Conn) error {
	var version int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return fmt.Errorf("read the server's version: %w", err)
	}
	if version < minServerVersion {
		return fmt.Errorf("the server is PostgreSQL %d.%d: poolq needs %d or later", version/10000, version%10000, minServerVersion/10000)
	}
	var enc string
	if err := conn.QueryRow(ctx, "SHOW server_encoding").Scan(&enc); err != nil {
		return fmt.Errorf("read the database's encoding: %w", err)
	}
	if enc != "UTF8" {
		return fmt.Errorf("%w: it is %s; create the database WITH ENCODING 'UTF8' (TEMPLATE template0)", ErrNotUTF8, enc)
	}
	return nil
}

// checkLocking records l as the schema's way of locking a pool if no node
// has yet, and returns [ErrLockingMismatch] when the schema's is another:
// an advisory lock and a row lock do not exclude each other, so nodes
// that took them differently would claim from one pool at once.
//
// It runs at READ COMMITTED whatever the server's default (as migrate
// does): there, an insert that meets another node's, not yet committed,
// waits for it and does nothing, and the read that follows sees it; at
// REPEATABLE READ the insert fails instead.
func checkLocking(ctx context.Context, conn *pgx.Conn, schema string, l Locking) (err error) {
	table := pgx.Identifier{schema, "settings"}.Sanitize()
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("record the locking: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx) // on a connection prepare closes: one cut short costs nothing
		}
	}()
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (name, value) VALUES ('locking', $1) ON CONFLICT (name) DO NOTHING`,
		l.String()); err != nil {
		return fmt.Errorf("record the locking: %w", err)
	}
	var theirs string
	if err := tx.QueryRow(ctx, `SELECT value FROM `+table+` WHERE name = 'locking'`).Scan(&theirs); err != nil {
		return fmt.Errorf("read the locking: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record the locking: %w", err)
	}
	if theirs != l.String() {
		return fmt.Errorf("%w: the schema's nodes lock with %s, this one with %s (Options.Locking)", ErrLockingMismatch, theirs, l)
	}
	return nil
}

// planner are the planner settings of the store's connections. Every
// statement of the store is written to be an index seek or walk (the cost
// must not grow with the pool), but the planner picks plans by the table's
// statistics, and right after a bulk add (before autovacuum analyzes the
// table) it may estimate a pool's due set at a few rows and scan and sort
// all of it, or update a batch through a hash join over every item. These
// settings do not forbid those plans (there is one when no index serves):
// they make the planner take the index whenever it can.
//
// They do so by adding a huge constant to the estimated cost of a plan that
// uses them anyway (a pool listing's scan of the pools, a sort of search
// matches), which would make the server compile every such statement to
// machine code first (JIT, for plans estimated above jit_above_cost): some
// 100 ms for a statement that runs in one. JIT is off: no statement of the
// store runs long enough to gain from it.
//
// And every statement runs its generic plan (plan_cache_mode): planned once
// a connection, not again at each execution for the values bound. With the
// settings above a statement's plan does not depend on its values (an
// index seek or walk keyed by them; TestPlans checks those of dispatch and
// settlement), so planning again only cost: 60–160 µs of server time a
// statement here, a fifth of the server's time in a claim and a
// settlement each in a transaction of its own (bench/RESULTS.md, "the
// server's time, generic plans"). A search plans with bitmap scans on,
// since it always runs with them.
var planner = map[string]string{
	"enable_seqscan":    "off",
	"enable_bitmapscan": "off",
	"enable_sort":       "off",
	"enable_hashjoin":   "off",
	"enable_mergejoin":  "off",
	"jit":               "off",
	"plan_cache_mode":   "force_generic_plan",
}

// namesMaxConns reports whether a connection string names pool_max_conns,
// as pgx reads it: pgxpool.ParseConfig takes the setting out, and leaves
// no trace of whether it was there (its default, 4 or the number of CPUs,
// may be the value given), but pgx.ParseConfig keeps it among the
// connection's parameters. Matching the text instead missed a key=value
// string's "pool_max_conns = 3" (spaces around '=', as libpq allows) and
// a URL's percent-encoded key, and took a value containing the text (an
// application_name) for the setting.
func namesMaxConns(url string) (bool, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return false, err
	}
	_, ok := cfg.RuntimeParams["pool_max_conns"]
	return ok, nil
}

// schemaHash is the high half of the advisory lock keys of a schema: its
// name hashed to 31 bits, so that poolq instances in other schemas of the
// database take other locks.
func schemaHash(schema string) int64 {
	h := fnv.New32a()
	h.Write([]byte("poolq:" + schema))
	return int64(h.Sum32() & 0x7fffffff)
}

// channelName is the NOTIFY channel of schema: "poolq_" + schema, or, when
// that is longer than PostgreSQL's 63-byte identifiers (a schema of 58
// bytes or more), "poolq_" + a 64-bit hash of it, which every node computes
// alike. PostgreSQL refuses a longer name in pg_notify (every commit that
// signals would fail) and cuts it in LISTEN.
func channelName(schema string) string {
	name := "poolq_" + schema
	if len(name) <= 63 {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(schema))
	return fmt.Sprintf("poolq_%016x", h.Sum64())
}

// Schema returns the schema the Store's tables are in.
func (s *Store) Schema() string { return s.opts.Schema }

// LeaseGrace returns [Options.LeaseGrace] (zero for none): it implements
// [store.LeaseGracer].
func (s *Store) LeaseGrace() time.Duration { return max(s.opts.LeaseGrace, 0) }

// ClockBehind returns an error wrapping [ErrClockSkew] while this
// process's clock is further behind the server's than
// [Options.MaxClockSkew], by the Store's watch (see the package
// documentation, Clocks); nil while it is within it or ahead, and with no
// check (MaxClockSkew negative). It implements [store.ClockChecker]:
// queue's Extend fails with it. Cost: a reading of each clock.
func (s *Store) ClockBehind() error { return s.watch.behindErr() }

// Stats are counters of a Store since Open.
type Stats struct {
	// Commits is the number of write transactions committed.
	Commits uint64
	// Retries is the number of write transactions run again after a
	// serialization failure, a deadlock, a pool lock taken out of order or
	// a wait for a lock after another (Waits).
	Retries uint64
	// Waits is the number of write transactions run again because they
	// waited for a lock while holding another: what they had decided at
	// the clock was decided before the wait.
	Waits uint64
}

// Stats returns the Store's counters. It is safe to call at any time.
func (s *Store) Stats() Stats {
	return Stats{Commits: s.stats.commits.Load(), Retries: s.stats.retries.Load(), Waits: s.stats.waits.Load()}
}

// closedErr is the error of operation op after Close.
func closedErr(op string) error {
	return fmt.Errorf("postgres: %s: %w", op, store.ErrClosed)
}

// Read runs fn in a read-only transaction (see [store.Store.Read]) at
// REPEATABLE READ: every statement sees the snapshot of the first one.
func (s *Store) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.closed.Load() {
		return closedErr("read")
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		if s.closed.Load() {
			return fmt.Errorf("%w (%w)", closedErr("read"), err)
		}
		return wrap("begin read", err)
	}
	// Nothing to commit. The ROLLBACK ends with ctx, as the statements do:
	// a connection gone silent after fn holds the caller no longer than
	// during it. One cut short closes the connection (pgx), which ends the
	// transaction on the server.
	defer tx.Rollback(ctx)
	return fn(newTxn(s, tx, true))
}

// Write runs fn in a write transaction (see [store.Store.Write]) at READ
// COMMITTED, in which every pool fn touches is locked first (see the
// package documentation). The transaction is rolled back when fn returns
// an error or panics, and run again from the start, fn included, after a
// serialization failure, a deadlock, or a pool lock it had to take out of
// order and could not, up to [Options.MaxRetries] times (a restart that
// adds a lock for the next run to take first does not count): fn must set
// its results afresh on every run.
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	var prelock []lockedPool
	var timedOut []uuid.UUID // see txn.timedOut
	retries := 0             // the runs again that count against MaxRetries
	for run := 0; ; run++ {
		if s.closed.Load() {
			return closedErr("write")
		}
		// A run may go round for a wait only while runs are few; a run
		// that does adds the lock it waited for to the next run's, so
		// another run follows (see below).
		t, err := s.writeOnce(ctx, fn, prelock, timedOut, run < maxWaitRestarts)
		if lost, ok := err.(*lostCommit); ok { // its connection released
			err = s.commitOutcome(ctx, lost)
			if err == nil {
				s.stats.commits.Add(1)
			}
			return wrap("commit", err)
		}
		// run-maxLockRestarts, not MaxRetries+maxLockRestarts: the sum
		// overflows for a MaxRetries near math.MaxInt.
		if t == nil || t.retry == nil || retries >= s.opts.MaxRetries || run-maxLockRestarts >= s.opts.MaxRetries {
			if t != nil && t.retry != nil && err == nil {
				err = t.retry
			}
			return endedErr(ctx, t.boundedErr(err))
		}
		s.stats.retries.Add(1)
		next := t.lockSet()
		// A restart that adds a lock to those the next run takes first, in
		// order, is progress, not a retry: a transaction that meets many
		// pools held by other nodes, out of order, learns them one a run,
		// and would otherwise use up its retries on them (a group commit
		// batch touches up to hundreds of pools). The set only grows, up to
		// the locks fn takes.
		if !t.restart || len(next) <= len(prelock) {
			retries++
		}
		prelock, timedOut = next, t.timedOut
		if !t.restart { // a serialization failure or deadlock: let the other go on
			pause := time.Duration(rand.Int64N(int64(time.Millisecond) << min(retries, 6)))
			select {
			case <-time.After(pause):
			case <-ctx.Done():
				return fmt.Errorf("postgres: write: %w (after %w)", ctx.Err(), t.retry)
			}
		}
	}
}

// writeOnce runs fn in one write transaction, on a connection of the pool
// run by hand (writeConn: BEGIN rides the first statements, COMMIT the
// last ones). It returns the txn, whose retry field says whether the
// transaction must run again.
func (s *Store) writeOnce(ctx context.Context, fn func(store.Tx) error, prelock []lockedPool, timedOut []uuid.UUID, restartOnWait bool) (*txn, error) {
	actx, cancel := withBound(ctx, s.roundTripTimeout())
	pc, err := s.pool.Acquire(actx)
	cancel()
	if err != nil {
		if s.closed.Load() {
			return nil, fmt.Errorf("%w (%w)", closedErr("write"), err)
		}
		return nil, wrap("begin write", err)
	}
	// Released on every way out; a connection still in a transaction
	// (a rollback that failed) is closed by the pool, not reused.
	defer pc.Release()
	w := &writeConn{c: pc.Conn(), timeout: s.roundTripTimeout()}
	if ctx.Done() != nil {
		// The Write's caller may leave: its statements end then, a lock
		// wait among them, and it rolls back (see writeConn.caller).
		w.caller = ctx
	}
	t := newTxn(s, w, false)
	t.restartOnWait = restartOnWait
	t.timedOut = timedOut
	if bound, ok := store.WaitBound(ctx); ok {
		// The one caller of this write stops waiting at bound: its lock
		// waits end there, if that comes before LockTimeout (see
		// boundedErr), and so do its statements' round trips, a little
		// after (a server gone silent: see writeConn.until). The setting
		// rides the transaction's first round trip, and ends with the
		// transaction.
		w.until = bound
		if left := time.Until(bound); s.opts.LockTimeout < 0 || left < s.opts.LockTimeout {
			t.bounded, t.bound, t.boundMs = true, bound, max(left, time.Millisecond).Milliseconds()
			_ = t.deferExec(ctx, setLockTimeoutSQL, millis(max(left, time.Millisecond)))
		}
	}
	defer func() { // on every way out, a panic of fn included
		_ = w.rollback(context.WithoutCancel(ctx))
	}()
	if err := t.prelock(ctx, prelock); err != nil {
		return t, err
	}
	ferr := fn(t)
	if t.retry != nil {
		return t, ferr
	}
	if ferr != nil {
		return t, ferr
	}
	if t.broken != nil {
		return t, t.broken
	}
	if err := ctx.Err(); err != nil {
		return t, wrap("commit", err)
	}
	if err := w.commit(context.WithoutCancel(ctx), t.commitBatch()); err != nil {
		t.noteErr(err)
		if serverAnswered(err) || pgconn.SafeToRetry(err) {
			// The server refused it, or it never left this process (its
			// connection closed before: a statement of the transaction
			// met the connection's end): not committed.
			return t, wrap("commit", err)
		}
		return t, lostCommitOf(w, err)
	}
	clear(t.deltas)
	s.stats.commits.Add(1)
	return t, nil
}

// setLockTimeoutSQL sets the lock timeout of the transaction alone (see
// writeOnce).
const setLockTimeoutSQL = `SELECT set_config('lock_timeout', $1, true)`

// boundedErr returns err, the error of the write transaction t, marked
// with context.DeadlineExceeded when it is the end of a lock wait at the
// bound of t's caller (store.WithWaitBound): that caller's deadline, not
// the lock timeout, ended the wait.
func (t *txn) boundedErr(err error) error {
	if t == nil || !t.bounded || !errors.Is(err, ErrLockTimeout) || time.Now().Before(t.bound) {
		return err
	}
	return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
}

// Close closes the Store's connections and stops its listener. Read and
// Write return an error wrapping [store.ErrClosed] afterwards; a second
// Close does nothing and returns nil. Close waits for the transactions
// under way to end. Close the engines over the Store first (see
// [store.Store]'s Close).
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.watch.close()
		s.lis.close()
		s.pool.Close()
	})
	return nil
}
