package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
)

// QueryRow runs a query in tx, a transaction of this package, for tests.
func QueryRow(ctx context.Context, tx store.Tx, sql string, dest ...any) error {
	return tx.(*txn).tx.QueryRow(ctx, sql).Scan(dest...)
}

// LockKey returns the key of the lock a write transaction of st takes on the
// pool with internal id k.
func LockKey(st *Store, k int64) int64 { return (&txn{s: st}).lockKey(k) }

// Seen reports whether st keeps a PoolDue hint for pool id.
func Seen(st *Store, id uuid.UUID) bool { _, ok := st.seen.load(id); return ok }

// LatestVersion is the schema version Open migrates to.
func LatestVersion() int { return latestVersion() }

// MigrationSQL returns the text of migration version v (1-based).
func MigrationSQL(v int) string { return history[v-1].SQL }

// MigrateTo creates schema at version target, as an older poolq would
// have left it.
func MigrateTo(ctx context.Context, url, schema string, target int) error {
	conn, err := schemaConn(ctx, url, schema)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return migrateTo(ctx, conn, schema, schemaHash(schema), target)
}

// schemaConn connects to url with schema on the search_path, as the
// migrations run.
func schemaConn(ctx context.Context, url, schema string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["search_path"] = schema
	return pgx.ConnectConfig(ctx, cfg)
}

// PlannerConn connects to url with schema on the search_path and the
// store's planner settings (see planner), as Open migrates: a session of
// the test's own, closed when t ends.
func PlannerConn(t testing.TB, url, schema string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = schema
	for k, v := range planner {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("connecting to schema %s: %v", schema, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// SchemaConn connects to url with schema on the search_path, a session of
// the test's own beside the store's, closed when t ends.
func SchemaConn(t testing.TB, url, schema string) *pgx.Conn {
	t.Helper()
	conn, err := schemaConn(context.Background(), url, schema)
	if err != nil {
		t.Fatalf("connecting to schema %s: %v", schema, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Supersede does to schema what a migration to the next version would do
// to its guards and its version table.
func Supersede(ctx context.Context, url, schema string) error {
	conn, err := schemaConn(ctx, url, schema)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	next := latestVersion() + 1
	if err := setGuard(ctx, tx, schema, next); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, recordVersionSQL, next, int64(0)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// WithClock returns ctx for an Open that takes clock for the process's
// clock, which it compares with the server's.
func WithClock(ctx context.Context, clock func() time.Time) context.Context {
	return context.WithValue(ctx, clockKey{}, clock)
}

// WithClockWatch returns ctx for an Open whose Store measures the skew
// again every every (see clockWatch), and counts its clock's steps against
// elapsed instead of the process's monotonic clock, unless it is nil.
func WithClockWatch(ctx context.Context, every time.Duration, elapsed func() time.Duration) context.Context {
	return context.WithValue(ctx, watchKey{}, watchHooks{every: every, elapsed: elapsed})
}

// WriteConn is the hand-run write transaction of a Store, for its tests.
type WriteConn = writeConn

// NewWriteConn returns a WriteConn on c, no transaction begun.
func NewWriteConn(c *pgx.Conn) *WriteConn { return &writeConn{c: c} }

// Commit is commit.
func (w *writeConn) Commit(ctx context.Context, b *pgx.Batch) error { return w.commit(ctx, b) }

// Defer is deferExec.
func (w *writeConn) Defer(sql string, args ...any) { w.deferExec(sql, args...) }

// Flush is flush.
func (w *writeConn) Flush(ctx context.Context) error { return w.flush(ctx) }

// Rollback is rollback.
func (w *writeConn) Rollback(ctx context.Context) error { return w.rollback(ctx) }

// ErrCommitRolledBack is errCommitRolledBack.
var ErrCommitRolledBack = errCommitRolledBack

// BoundStatements read the first entry of a pool's retry set or lease
// set (pool $1, its internal id), for TestPlans_Bounds: each with the
// index it must stop at.
var BoundStatements = []struct{ Name, SQL, Index string }{
	{"lease bound", leaseBoundSQL, "items_lease"},
	{"retry bound", retryBoundSQL, "items_retry"},
	{"next wake", nextWakeSQL, "items_retry"},
}

// HotStatements are the statements of dispatch and settlement (a
// governed claim's campaign items included), and those
// of Remove (it holds the pool's lock for up to 10,000 items), for
// TestPlans: each with the index its plan must use, and literal arguments
// naming pool $K (its internal id) or $U (its UUID).
var HotStatements = []struct {
	Name, SQL, Index string
	Args             []string
}{
	{"lock", lockAdvisorySQL, "pools_uuid_key", []string{"$U", "0", "1"}},
	{"pool state", poolStateSQL, "items_lease", []string{"$U"}},
	{"pool governors", governorsOfPoolSQL, "campaign_pools_governs", []string{"$U"}},
	{"pool attached", attachedSQL, "campaign_pools_pool", []string{"$U"}},
	{"due FIFO", dueFIFOSQL, "items_ready", []string{"$K", "0", "10"}},
	{"due LIFO", dueLIFOSQL, "Index Scan Backward using items_ready", []string{"$K", "0", "10"}},
	{"due Parallel", dueParallelSQL, "items_ready_priority", []string{"$K", "0", "10"}},
	{"pool due FIFO", dueFIFOByUUIDSQL, "Index Scan using items_ready on", []string{"$U", "0", "10"}},
	{"pool due LIFO", dueLIFOByUUIDSQL, "Index Scan Backward using items_ready on", []string{"$U", "0", "10"}},
	{"pool due Parallel", dueParallelByUUIDSQL, "items_ready_priority", []string{"$U", "0", "10"}},
	{"promote", promoteSQL, "items_retry", []string{"$K", "0"}},
	{"demote", demoteSQL, "Only Scan using items_ready on", []string{"$K", "0"}},
	{"expired", expiredSQL, "items_lease", []string{"$K", "0", "10"}},
	{"items by id", itemsByIDSQL, "items_pkey", []string{"'{1,2,3}'"}},
	{"update items", updateItemsSQL, "items_pkey", []string{"'{1}'", "'{1}'", "'{Pending}'", "'{Processing}'",
		"'{0}'", "'{1}'", "'{0}'", "'{0}'", "'{0}'", "'{0}'", "'{0}'", "'{\"\"}'", "'{1}'", "'{0}'", "'{0}'", "'{0}'", "'{0}'",
		"'{0}'", "'{0}'", "'{0}'", "'{0}'"}},
	{"update counts", updateCountsSQL, "pool_counts_pkey", []string{"'{$K}'", "'{-1}'", "'{1}'", "'{0}'", "'{0}'",
		"'{0}'", "'{0}'", "'{0}'", "'{0}'"}},
	{"lease bound", leaseBoundSQL, "items_lease", []string{"$K"}},
	{"retry bound", retryBoundSQL, "items_retry", []string{"$K"}},
	{"pool wakes", poolWakesSQL, "Index Only Scan using items_ready", []string{"ARRAY[$U]::uuid[]"}},
	{"insert new items", insertNewItemsSQL, "pools_uuid_key", []string{"$U", "'{00000000-0000-0000-0000-000000000001}'",
		"'{0}'", "'{NULL}'", "'{0}'"}},
	{"list items", itemsSQL, "items_pool", []string{"$K", "0", "25", "0"}},
	{"list items by status", itemsByStatusSQL, "items_pool_status", []string{"$K", "'Pending'", "0", "25", "0"}},
	{"items of contacts", itemsOfContactsSQL, "Index Cond: ((pool_id = $1) AND (contact_uuid = c.c))", []string{"$K",
		"'{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}'"}},
	{"delete items", deleteItemsSQL, "items_pkey", []string{"$K", "'{1,2,3}'"}},
	{"campaign items", campaignItemsSQL, "Index Cond: ((pool_id = cp.pool_id) AND (contact_uuid = c.c))", []string{"$U", "$U",
		"'{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}'"}},
	{"drop finished kept calls", dropFinishedKeptCallsSQL, "kept_calls_contact", []string{"$K"}},
	{"keep calls", keepCallsSQL, "Index Cond: ((pool_id = $1) AND (contact_uuid = c.c))", []string{"$K",
		"'{00000000-0000-0000-0000-000000000001,00000000-0000-0000-0000-000000000002}'", "'Completed'", "'Archived'"}},
}

// Plan returns the plan a connection of st runs sql with for args (SQL
// literals): prepared, then explained as it executes.
func Plan(ctx context.Context, st *Store, sql string, args ...string) (string, error) {
	c, err := st.pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer c.Release()
	if _, err := c.Exec(ctx, "PREPARE poolq_plan AS "+sql); err != nil {
		return "", err
	}
	defer c.Exec(ctx, "DEALLOCATE poolq_plan")
	rows, err := c.Query(ctx, "EXPLAIN EXECUTE poolq_plan("+strings.Join(args, ", ")+")")
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// Setting returns the value of a setting on a connection of st.
func Setting(ctx context.Context, st *Store, name string) (string, error) {
	var v string
	err := st.pool.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}

// Lock is a lock a run of a Write takes first (prelock): a pool's or, with
// Campaign, a campaign's, by UUID and internal id.
type Lock struct {
	ID       uuid.UUID
	K        int64
	Campaign bool
}

// RunAfter runs fn in one run of a Write of st that takes locks first, as
// a run after a restart does, and returns what the run ended with: the
// error it returns, the reason it must run again (nil if it committed),
// and the locks the next run would take first.
func RunAfter(ctx context.Context, st *Store, locks []Lock, fn func(store.Tx) error) (err, retry error, next []Lock) {
	pre := make([]lockedPool, 0, len(locks))
	for _, l := range locks {
		pre = append(pre, lockedPool{id: l.ID, k: l.K, campaign: l.Campaign})
	}
	t, err := st.writeOnce(ctx, fn, pre, nil, true)
	if t == nil {
		return err, nil, nil
	}
	for _, l := range t.lockSet() {
		next = append(next, Lock{ID: l.id, K: l.k, Campaign: l.campaign})
	}
	return err, t.retry, next
}

// MigrationLock is the first key of the advisory lock (key, 0) that Open
// migrates schema under.
func MigrationLock(schema string) int32 { return int32(schemaHash(schema)) }

// CommitOutcome asks st what became of transaction xid, run by backend
// pid, whose COMMIT failed with err without an answer (see commitOutcome).
func CommitOutcome(ctx context.Context, st *Store, xid string, pid uint32, err error) error {
	return st.commitOutcome(ctx, &lostCommit{xid: xid, pid: pid, err: err})
}

// CommitOutcomeAfterRestart is CommitOutcome for a transaction whose
// connection was made on an earlier run of the server (see serverRun): one
// that no run of this server ever was.
func CommitOutcomeAfterRestart(ctx context.Context, st *Store, xid string, pid uint32, err error) error {
	return st.commitOutcome(ctx, &lostCommit{xid: xid, pid: pid, err: err, run: &serverRun{started: time.Unix(1, 0)}})
}

// HeldWrite begins a write transaction on a connection of st's pool, as
// Write does, and returns its id, the server process that a lost commit of
// it would be ended by (what Write gives commitOutcome), and the function
// that ends it and gives the connection back.
func HeldWrite(ctx context.Context, st *Store) (xid string, pid uint32, release func(), err error) {
	pc, err := st.pool.Acquire(ctx)
	if err != nil {
		return "", 0, nil, err
	}
	w := &writeConn{c: pc.Conn()}
	if _, err := w.Exec(ctx, "SELECT 1"); err != nil {
		pc.Release()
		return "", 0, nil, err
	}
	return w.xid, lostCommitOf(w, nil).pid, func() { _ = w.rollback(context.Background()); pc.Release() }, nil
}

// MaxConns is the size of st's pool of connections, as pgxpool holds it.
func MaxConns(st *Store) int { return int(st.pool.Config().MaxConns) }

// PlanWithout returns the plan Plan would return were index not there:
// dropped in a transaction that is rolled back.
func PlanWithout(ctx context.Context, st *Store, index, sql string, args ...string) (string, error) {
	c, err := st.pool.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer c.Release()
	defer c.Exec(ctx, "DEALLOCATE poolq_plan_without") // after the rollback: PREPARE outlives it
	tx, err := c.Begin(ctx)
	if err != nil {
		return "", err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "DROP INDEX "+pgx.Identifier{index}.Sanitize()); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, "PREPARE poolq_plan_without AS "+sql); err != nil {
		return "", err
	}
	rows, err := tx.Query(ctx, "EXPLAIN EXECUTE poolq_plan_without("+strings.Join(args, ", ")+")")
	if err != nil {
		return "", err
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return strings.Join(lines, "\n"), err
}

// MarkRestart has tx, a write transaction of this package, run again as a
// lock taken out of order does, with no lock added to those the next run
// takes first.
func MarkRestart(tx store.Tx) {
	t := tx.(*txn)
	t.restart = true
	t.retry = errRestart
}
