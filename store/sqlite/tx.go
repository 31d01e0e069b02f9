package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
)

// txn is a [store.Tx] on one transaction: a database/sql transaction of
// a file store's readers, or a BEGIN … COMMIT (or ROLLBACK) of the Store's
// own on the writer's held connection.
type txn struct {
	tx       querier
	stx      *sql.Tx // tx as a *sql.Tx, nil on the held writer connection
	h        *handle
	readOnly bool
	// wctx is the context of the Write that runs this transaction (nil in
	// a read): once it ends (every caller of the Write has gone), no
	// statement starts, and the long ones under way are interrupted (see
	// long), so that a large write nobody waits for any more does not run
	// to its end before it rolls back, holding up its caller, Close, and
	// every write behind it.
	wctx  context.Context
	stmts map[string]*sql.Stmt // statements bound to tx, by query
	pools map[uuid.UUID]int64  // internal pool ids seen in this transaction

	adhoc       []*sql.Stmt    // statements prepared on the held connection by this txn, closed at its end
	inSavepoint bool           // a Savepoint is running
	spFailed    error          // a write in the running Savepoint failed with rows written (see failed)
	broken      error          // a savepoint could not be undone, or SQLite ended the transaction: nothing more may run
	rollbacks   *atomic.Uint64 // the Store's count of rollbacks on the connection; nil: not watched (see ended)
	begun       uint64         // rollbacks when the transaction began

	deltas map[countKey]int     // count changes not yet in pool_counts (see counts.go)
	states map[int64]*poolState // what this transaction knows of pools (see state.go)
	cache  *poolCache           // what earlier transactions knew, nil if none (see cache.go)
	stale  map[int64]bool       // pools written here whose cached state is out of date
}

var _ store.Tx = (*txn)(nil)

// querier is what a txn runs statements on: a *sql.Tx, or the writer's
// held *sql.Conn inside a BEGIN … COMMIT of its own.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// newReadTxn is a read-only txn on tx, a transaction of the pool of h,
// whose statements it binds to tx as it needs them.
func newReadTxn(tx *sql.Tx, h *handle) *txn {
	return &txn{tx: tx, stx: tx, h: h, readOnly: true}
}

// newConnTxn is a txn on the held writer connection c, whose statements in
// h were prepared on c itself and are used as they are.
func newConnTxn(c *sql.Conn, h *handle, readOnly bool) *txn {
	if h.observe != nil {
		return &txn{tx: h.observe(c), h: h, readOnly: readOnly}
	}
	return &txn{tx: c, h: h, readOnly: readOnly}
}

// close closes the statements this txn prepared on the held connection.
func (t *txn) close() {
	for _, s := range t.adhoc {
		s.Close()
	}
	t.adhoc = nil
}

// watch makes t, a write transaction on the held connection that has just
// begun, watch rollbacks, the count of the connection's rollbacks (see
// ended).
func (t *txn) watch(rollbacks *atomic.Uint64) {
	t.rollbacks, t.begun = rollbacks, rollbacks.Load()
}

// errEnded is the error of a write transaction that SQLite rolled back by
// itself.
var errEnded = fmt.Errorf("sqlite: the transaction was rolled back by SQLite after an error (a full disk, an I/O error, no memory): nothing of it is written: %w", store.ErrTxEnded)

// ended returns an error when t must not run another statement: a savepoint
// could not be undone, or SQLite rolled the whole transaction back by
// itself, as it does after some errors (SQLITE_FULL, SQLITE_IOERR,
// SQLITE_NOMEM: "the transaction may be rolled back automatically"). The
// connection is then in autocommit mode, where every later statement
// would commit on its own, a SAVEPOINT would begin a new transaction, and
// its RELEASE commit it: so once ended, t fails closed.
func (t *txn) ended() error {
	if t.broken == nil && t.rollbacks != nil && t.rollbacks.Load() != t.begun {
		t.broken = errEnded
	}
	return t.broken
}

// failed records err, the error of a write that may have written rows
// before it failed (UpdateItems with an item not found, a batch's later
// statement), rows whose counts the write did not take: they must not be
// committed, whether or not its caller goes on. In a Savepoint, that
// savepoint ends as if its function had failed (its writes undone, err
// returned); outside one, the transaction is broken, and Write rolls it
// back with err. It returns err.
func (t *txn) failed(err error) error {
	if t.inSavepoint {
		if t.spFailed == nil {
			t.spFailed = err
		}
		return err
	}
	if t.broken == nil {
		t.broken = err
	}
	return err
}

// stmt returns query as a statement of this transaction: the one prepared
// at Open when there is one (prepared once per connection, then reused),
// else one prepared now for the rest of the transaction. A write
// transaction that has ended (see ended) gets no statement.
func (t *txn) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if !t.readOnly {
		if err := t.ended(); err != nil {
			return nil, err
		}
		if t.wctx != nil {
			if err := t.wctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if s, ok := t.stmts[query]; ok {
		return s, nil
	}
	var s *sql.Stmt
	if ps, ok := t.h.stmts[query]; ok {
		if t.stx == nil {
			return ps, nil // prepared on this very connection
		}
		s = t.stx.StmtContext(ctx, ps)
	} else {
		var err error
		if s, err = t.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
		if t.stx == nil {
			t.adhoc = append(t.adhoc, s) // a connection's statement outlives the transaction
		}
	}
	if t.stmts == nil {
		t.stmts = make(map[string]*sql.Stmt)
	}
	t.stmts[query] = s
	return s, nil
}

// long returns the context for a statement whose cost grows with a pool
// (a copy, a delete of all its items): ctx, or in a write the Write's own
// context, whose end interrupts the statement (the driver watches a
// statement's context that can end from a goroutine of its own: a cost
// paid for these statements alone).
func (t *txn) long(ctx context.Context) context.Context {
	if t.wctx != nil {
		return t.wctx
	}
	return ctx
}

func (t *txn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

func (t *txn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRow runs a query returning at most one row and scans it into dest;
// no row is [store.ErrNotFound] (through translate).
func (t *txn) queryRow(ctx context.Context, dest []any, query string, args ...any) error {
	s, err := t.stmt(ctx, query)
	if err != nil {
		return err
	}
	return s.QueryRowContext(ctx, args...).Scan(dest...)
}

// writable returns an error wrapping [store.ErrReadOnly] in a read
// transaction.
func (t *txn) writable(op string) error {
	if t.readOnly {
		return fmt.Errorf("sqlite: %s: %w", op, store.ErrReadOnly)
	}
	return nil
}

const poolKeySQL = `SELECT id FROM pools WHERE uuid = ?`

// poolKey returns the internal id of pool id, or [store.ErrNotFound]
// naming the pool. Within a transaction a pool keeps its id, so it is
// looked up once.
func (t *txn) poolKey(ctx context.Context, id uuid.UUID) (int64, error) {
	if k, ok := t.pools[id]; ok {
		return k, nil
	}
	var k int64
	if err := t.queryRow(ctx, []any{&k}, poolKeySQL, blob(id)); err != nil {
		if err = translate(err); errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("pool %s: %w", id, err)
		}
		return 0, err
	}
	t.rememberPool(id, k)
	return k, nil
}

func (t *txn) rememberPool(id uuid.UUID, k int64) {
	if t.pools == nil {
		t.pools = make(map[uuid.UUID]int64)
	}
	t.pools[id] = k
}

// readQueries are the statements of read transactions, prepared at Open.
func readQueries() []string {
	return []string{
		poolKeySQL, poolSQL, statusCountsSQL,
		itemSQL, itemByIDSQL, itemsByIDSQL, itemsOfContactsSQL, itemsSQL, itemsByStatusSQL, itemsTotalSQL, itemsStatusTotalSQL,
		inFlightSQL, expiredSQL, nextWakeSQL, poolWakesSQL, poolStateSQL, poolCampaignsSQL, poolGovernorsSQL, poolAttachedSQL, rulePoolsSQL, ruleSQL, campaignSQL, campaignPoolsSQL,
		contactItemsSQL, onDNCSQL, optedOutSQL, listedOneSQL, listedSQL, dncSQL, dncTotalSQL, escalationsSQL, escalationsOfPoolSQL,
		keepingCampaignsSQL,
	}
}

// writeQueries are the statements of write transactions, prepared at Open:
// the read ones and the writes.
func writeQueries() []string {
	qs := append(readQueries(),
		insertPoolSQL, updatePoolSQL, deletePoolSQL,
		copyItemsSQL, updateItemSQL, deleteItemsSQL, lastItemIDSQL, indexContactsSQL,
		promoteSQL, demoteSQL, dueFIFOSQL, dueLIFOSQL, dueParallelSQL,
		leaseBoundSQL, retryBoundSQL, dataVersionSQL, currentVersionSQL, poolStateByKeySQL,
		addDNCSQL, removeDNCSQL, optOutSQL, insertEscalationSQL, campaignItemsSQL, campaignItemsOneSQL, releaseKeptCallSQL,
	)
	for _, n := range insertSizes {
		qs = append(qs, insertItemsSQL[n], insertNewItemsSQL[n], insertNewContactItemsSQL[n], updateItemsSQL[n], updateCountsSQL[n])
	}
	return qs
}

// blob returns the 16 bytes of id, as stored. (uuid.UUID's own
// driver.Valuer would store its text form.)
func blob(id uuid.UUID) []byte { return id[:] }

// The times an int64 of unix nanoseconds can hold: years 1677 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// nanos returns t as unix nanoseconds, or an error when t is out of the
// range they can hold.
func nanos(t time.Time) (int64, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return 0, fmt.Errorf("time %v out of range (%v to %v)", t, minTime.UTC(), maxTime.UTC())
	}
	return t.UnixNano(), nil
}

// nullNanos returns *t as unix nanoseconds, or nil (NULL) for a nil t.
func nullNanos(t *time.Time) (any, error) {
	if t == nil {
		return nil, nil
	}
	return nanos(*t)
}

// zeroNullNanos returns t as unix nanoseconds, or nil (NULL) for a zero t.
func zeroNullNanos(t time.Time) (any, error) {
	if t.IsZero() {
		return nil, nil
	}
	return nanos(t)
}

// fromNanos returns the UTC time of n unix nanoseconds.
func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// fromNullNanos returns the UTC time of n, or nil for NULL.
func fromNullNanos(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromNanos(n.Int64)
	return &t
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

const (
	savepointSQL   = `SAVEPOINT poolq_op`
	releaseSQL     = `RELEASE poolq_op`
	rollbackToSQL  = `ROLLBACK TO poolq_op`
	errNestedSP    = "savepoints do not nest"
	errBrokenTxMsg = "sqlite: transaction unusable after a failed savepoint rollback"
)

// Savepoint runs fn in a savepoint (see [store.Tx.Savepoint]). If undoing
// fn's writes fails, the whole transaction is marked broken, and Write rolls
// it back.
func (t *txn) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	const op = "savepoint"
	if err := t.writable(op); err != nil {
		return err
	}
	if t.inSavepoint {
		return fmt.Errorf("sqlite: %s: %s", op, errNestedSP)
	}
	if err := t.ended(); err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, savepointSQL); err != nil {
		return wrap(op, err)
	}
	deltas := maps.Clone(t.deltas) // what a rollback to the savepoint leaves pending
	t.inSavepoint = true
	ferr := fn(t)
	t.inSavepoint = false
	if ferr == nil {
		ferr = t.spFailed // a write failed, its rows written: fn went on all the same
	}
	t.spFailed = nil
	if ferr == nil {
		if _, err := t.tx.ExecContext(ctx, releaseSQL); err != nil {
			t.broken = wrap(op, err)
			return t.broken
		}
		return nil
	}
	// Undo fn's writes; the pool keys it may have cached go with them, and
	// the counts are back to pending what they were (fn may have written
	// some of its own and earlier ones: the rollback undoes that too).
	for k := range t.states {
		// Its state had writes from before the savepoint that the cache
		// has not: once the state is forgotten, the cache must not stand in.
		t.markStale(k)
	}
	t.pools = nil
	t.states = nil
	t.deltas = deltas
	if err := t.ended(); err != nil {
		// SQLite rolled the whole transaction back, fn's error says why:
		// there is no savepoint left to undo, and nothing may run on.
		t.broken = fmt.Errorf("%w (after: %w)", err, ferr)
		return t.broken
	}
	if _, err := t.tx.ExecContext(ctx, rollbackToSQL); err != nil {
		t.broken = fmt.Errorf("%s: %w (after: %w)", errBrokenTxMsg, err, ferr)
		return t.broken
	}
	if _, err := t.tx.ExecContext(ctx, releaseSQL); err != nil {
		t.broken = fmt.Errorf("%s: %w (after: %w)", errBrokenTxMsg, err, ferr)
		return t.broken
	}
	return ferr
}
