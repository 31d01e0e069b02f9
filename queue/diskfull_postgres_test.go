package queue_test

// Review (r-full): PostgreSQL refusing every write for a server-side
// reason that no retry cures: its disk is full (SQLSTATE 53100,
// disk_full). The refusal is made by statement triggers on every table
// that raise disk_full while a flag is on: to poolq it is the server's
// answer to its statement, as from a full tablespace.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// fillPGDisk adds to schema, on every table, statement triggers that fail
// every write with disk_full while the flag is on, and returns the switch.
func fillPGDisk(t *testing.T, url, schema string) (full func(on bool)) {
	t.Helper()
	ctx := context.Background()
	conn, s, tables := schemaTables(t, url, schema)
	for _, sql := range []string{
		`CREATE TABLE ` + s + `.poolq_disk (is_full boolean NOT NULL)`,
		`INSERT INTO ` + s + `.poolq_disk VALUES (false)`,
		`CREATE FUNCTION ` + s + `.poolq_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT is_full FROM ` + s + `.poolq_disk) THEN
		RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full';
	END IF;
	RETURN NULL;
END $$`,
	} {
		_, err := conn.Exec(ctx, sql)
		require.NoError(t, err, sql)
	}
	for _, tb := range tables {
		_, err := conn.Exec(ctx, `CREATE TRIGGER poolq_disk_full BEFORE INSERT OR UPDATE OR DELETE ON `+s+`.`+tb+
			` FOR EACH STATEMENT EXECUTE FUNCTION `+s+`.poolq_disk_full()`)
		require.NoError(t, err)
	}
	return func(on bool) {
		_, err := conn.Exec(ctx, `UPDATE `+s+`.poolq_disk SET is_full = $1`, on)
		require.NoError(t, err)
	}
}

// isDiskFull reports whether err carries PostgreSQL's disk_full.
func isDiskFull(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53100"
}

// TestPostgres_DiskFullBatch: while the server's disk is full, every
// caller of a group-commit batch gets an error carrying the server's
// SQLSTATE (53100) quickly: the store does not run the transaction again
// (not a serialization failure or a deadlock); nothing of any call is
// written, the status counts agree with the items; a Dequeue blocked
// meanwhile keeps waiting, and wakes at the Add made once space is back,
// when the same calls go through.
func TestPostgres_DiskFullBatch(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	pst := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	hs := &heldStore{Store: pst}
	// No poll: a look of the blocked Dequeue below would join the queue
	// that run counts (it wakes at the Add).
	eng := openEngine(t, hs, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, PollInterval: time.Hour})
	b := &testBundle{ctx: ctx, eng: eng}
	p1 := b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p1.UUID, 4)
	leases, err := eng.DequeueN(ctx, p1.UUID, 2)
	require.NoError(t, err)
	require.Len(t, leases, 2)
	p2 := b.pool(t, pool.Parallel, 10, 3)
	full := fillPGDisk(t, url, pst.Schema())

	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	type dequeued struct {
		l   *queue.Lease
		err error
	}
	blocked := make(chan dequeued, 1)
	go func() {
		l, err := eng.Dequeue(dctx, p2.UUID)
		blocked <- dequeued{l, err}
	}()

	name := "renamed while full"
	added := newItems(50)
	calls := []struct {
		name string
		call func() error
	}{
		{"Add", func() error { _, err := eng.Add(ctx, p2.UUID, added...); return err }},
		{"Complete", func() error { return eng.Complete(ctx, leases[0], "answered") }},
		{"Fail", func() error { return eng.Fail(ctx, leases[1], queue.Failure{Note: "busy"}) }},
		{"CreatePool", func() error {
			_, err := eng.CreatePool(ctx, pool.CreateParams{Name: "made while full", Description: "x"})
			return err
		}},
		{"UpdatePool", func() error { _, err := eng.UpdatePool(ctx, p1.UUID, pool.UpdateParams{Name: &name}); return err }},
	}
	run := func() []error {
		errs := make([]error, len(calls))
		entered, release := hs.holdNext(t)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = eng.AddDNC(ctx, uuid.New()) }) // the lead, in a transaction of its own
		<-entered
		for i := range calls {
			n := queue.Queued(eng)
			wg.Go(func() { errs[i] = calls[i].call() })
			require.Eventually(t, func() bool { return queue.Queued(eng) == n+1 }, 5*time.Second, time.Millisecond)
		}
		release()
		wg.Wait()
		return errs
	}

	full(true)
	retries := pst.Stats().Retries
	start := time.Now()
	for i, err := range run() {
		require.Error(t, err, calls[i].name)
		require.True(t, isDiskFull(err), "%s: the server's SQLSTATE in the chain: %v", calls[i].name, err)
	}
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, retries, pst.Stats().Retries, "a disk_full is not run again")

	d2, err := eng.Pool(ctx, p2.UUID)
	require.NoError(t, err)
	require.Zero(t, d2.ContactsCount)
	d1, err := eng.Pool(ctx, p1.UUID)
	require.NoError(t, err)
	require.Equal(t, p1.Name, d1.Name)
	require.Equal(t, 2, d1.StatusCounts[pool.StatusProcessing])
	require.Equal(t, 2, d1.StatusCounts[pool.StatusPending])
	for _, l := range leases {
		require.Equal(t, pool.StatusProcessing, b.item(t, p1.UUID, l.ContactUUID).Status)
	}
	ps, err := eng.Pools(ctx, pool.PoolQuery{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	require.Equal(t, 2, ps.Total, "no pool made")
	select {
	case r := <-blocked:
		t.Fatalf("the blocked Dequeue returned while the disk was full: %v, %v", r.l, r.err)
	default:
	}

	full(false)
	for i, err := range run() {
		require.NoError(t, err, calls[i].name)
	}
	select {
	case r := <-blocked:
		require.NoError(t, r.err)
		require.NoError(t, eng.Complete(ctx, r.l, "after"))
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Dequeue did not wake at the Add")
	}
	d1, err = eng.Pool(ctx, p1.UUID)
	require.NoError(t, err)
	require.Equal(t, name, d1.Name)
	require.Equal(t, map[pool.Status]int{pool.StatusCompleted: 1, pool.StatusRetrying: 1, pool.StatusPending: 2}, nonZero(d1.StatusCounts))
	d2, err = eng.Pool(ctx, p2.UUID)
	require.NoError(t, err)
	require.Equal(t, 50, d2.ContactsCount)
	require.Equal(t, map[pool.Status]int{pool.StatusCompleted: 1, pool.StatusPending: 49}, nonZero(d2.StatusCounts))
}

// nonZero returns the counts of m that are not zero.
func nonZero(m map[pool.Status]int) map[pool.Status]int {
	out := map[pool.Status]int{}
	for s, n := range m {
		if n != 0 {
			out[s] = n
		}
	}
	return out
}

// TestPostgres_ReadOnlyAfterOpen: the database turns read-only under a
// running engine (a failover to a standby, a DBA's ALTER ROLE … SET
// default_transaction_read_only), its sessions made again. Every write
// fails at once with the server's SQLSTATE (25006): not run again by the
// store, nothing written, reads go on, a Dequeue returns the error rather
// than wait or spin; once writes are allowed again (new sessions), the
// engine writes again, and a settlement tried again is written. (A write
// on a session the termination ended fails with it, 57P01, before any
// statement ran: nothing written, the next write takes a new session.)
func TestPostgres_ReadOnlyAfterOpen(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer admin.Close(ctx)
	role := "poolq_ro_" + strings.TrimPrefix(schema, "poolq_test_")
	_, err = admin.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	roleURL := pgtest.LoginRole(t, url, role, "GRANT USAGE, CREATE ON SCHEMA "+schema+" TO %s")
	st := pgtest.OpenSchema(t, roleURL, postgres.Options{Schema: schema, MaxConns: 4})
	eng := openEngine(t, st, queue.Options{LeaseTimeout: time.Minute})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "turns read-only", Description: "x", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(3)...)
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	// setReadOnly sets the role's default and ends its sessions: the
	// store's pool makes new ones, under the new default.
	setReadOnly := func(on bool) {
		v := "on"
		if !on {
			v = "off"
		}
		_, err := admin.Exec(ctx, "ALTER ROLE "+role+" SET default_transaction_read_only = "+v)
		require.NoError(t, err)
		_, err = admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", role)
		require.NoError(t, err)
	}
	isReadOnlyTx := func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "25006"
	}
	// first writes until the sessions lost to the termination are gone:
	// a write on one of them fails with its connection, not the server's
	// answer.
	first := func(f func() error) error {
		var err error
		for range 5 {
			if err = f(); err == nil || isReadOnlyTx(err) {
				return err
			}
			t.Logf("on a terminated session: %v", err)
		}
		return err
	}

	setReadOnly(true)
	retries := st.Stats().Retries
	start := time.Now()
	err = first(func() error { _, err := eng.Add(ctx, p.UUID, newItems(2)...); return err })
	require.True(t, isReadOnlyTx(err), "Add: %v", err)
	require.True(t, isReadOnlyTx(eng.Complete(ctx, l, "answered")), "Complete")
	_, err = eng.TryDequeue(ctx, p.UUID)
	require.True(t, isReadOnlyTx(err), "TryDequeue: %v", err)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = eng.Dequeue(dctx, p.UUID)
	require.True(t, isReadOnlyTx(err), "a blocked Dequeue returns the error: %v", err)
	require.Less(t, time.Since(start), 3*time.Second)
	require.Equal(t, retries, st.Stats().Retries, "a read-only refusal is not run again")
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err, "reads go on")
	require.Equal(t, 3, d.ContactsCount)
	require.Equal(t, 1, d.StatusCounts[pool.StatusProcessing])

	setReadOnly(false)
	require.NoError(t, first(func() error { return eng.Complete(ctx, l, "answered") }), "the settlement tried again")
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	d, err = eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 5, d.ContactsCount)
	require.Equal(t, map[pool.Status]int{pool.StatusCompleted: 1, pool.StatusPending: 4}, nonZero(d.StatusCounts))
}
