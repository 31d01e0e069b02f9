package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	neturl "net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/storetest"
	"github.com/poolq/poolq/validate"
)

// TestStore runs the conformance suite, each subtest on a store in a schema
// of its own, with each way of locking a pool. Under -short (the race run
// of .ci/run, after the plain run has run it all) the row lock runs only
// the suite's tests that work from several goroutines: the two lockings
// differ in the statement that takes a pool's lock, which those tests
// contend for, and the others are the same calls one at a time, which the
// advisory lock's full suite makes (each on a schema made and migrated
// for it: the race run makes about 130 fewer).
func TestStore(t *testing.T) {
	url := pgtest.URL(t)
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		run := storetest.Run
		if testing.Short() && l != postgres.AdvisoryLock {
			run = storetest.RunConcurrent
		}
		run(t, func(t *testing.T) store.Store {
			return pgtest.Open(t, url, postgres.Options{Locking: l})
		})
	})
}

// forEachLocking runs fn as a parallel subtest for each way of locking a
// pool, named after it.
func forEachLocking(t *testing.T, fn func(t *testing.T, l postgres.Locking)) {
	t.Helper()
	for _, l := range []postgres.Locking{postgres.AdvisoryLock, postgres.RowLock} {
		t.Run(l.String(), func(t *testing.T) {
			t.Parallel()
			fn(t, l)
		})
	}
}

func newTestPool(name string) pool.Pool {
	now := time.Now().UTC()
	return pool.Pool{UUID: uuid.New(), Name: name, Description: "test", Type: pool.Parallel,
		MaxParallelItems: 10, MaxRetries: 3, IsActive: true, CreatedAt: now, UpdatedAt: now}
}

// oneGoroutine marks a test that makes its calls one at a time from one
// goroutine (a plan read with EXPLAIN, an upgrade of each old version):
// it runs in parallel with the other tests, and CI's race run (-short)
// leaves it out, as the plain run has run it and the race detector has no
// concurrency of its to look at.
func oneGoroutine(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("one goroutine's calls, which the plain run has run: -short (CI's race run) leaves it out")
	}
	t.Parallel()
}

// TestOpen_Concurrent opens one new schema from several goroutines at once:
// the migrations run once, under the schema's lock, and every store works.
func TestOpen_Concurrent(t *testing.T) {
	base := pgtest.URL(t)
	t.Parallel()
	// The server's default isolation must not matter: under REPEATABLE
	// READ or SERIALIZABLE a node that waited for the lock read the schema
	// as it was before and ran the migrations again.
	for _, iso := range []string{"", "repeatable%20read", "serializable"} {
		url := base
		if iso != "" {
			url += "&default_transaction_isolation=" + iso
		}
		t.Run("Default"+strings.ReplaceAll(iso, "%20", "_"), func(t *testing.T) {
			t.Parallel()
			openConcurrently(t, url)
		})
	}
}

func openConcurrently(t *testing.T, url string) {
	schema := pgtest.Schema(t, url)
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, 6)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(context.Background(), url, postgres.Options{Schema: schema, MaxConns: 2})
		})
	}
	wg.Wait()
	for i, st := range stores {
		require.NoError(t, errs[i], "open %d", i)
		defer st.Close()
	}
	ctx := context.Background()
	p := newTestPool("concurrent open")
	require.NoError(t, stores[0].Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
	require.NoError(t, stores[5].Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }))
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var versions int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".schema_version").Scan(&versions))
	require.Equal(t, postgres.LatestVersion(), versions, "each migration recorded once")
}

// TestOpen_LockingMismatch: the nodes of a schema lock a pool one way. An
// advisory lock and a row lock do not exclude each other (two nodes that
// took them differently claimed from a FIFO pool at once), so the first
// node to open a schema records its Locking and Open refuses another, also
// when nodes of both ways open a new schema at once; deleting the record
// with every node stopped lets the next node choose again.
func TestOpen_LockingMismatch(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	adv := pgtest.Open(t, url, postgres.Options{})
	schema := adv.Schema()
	pgtest.OpenSchema(t, url, postgres.Options{Schema: schema}) // a second node, the same way
	_, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, Locking: postgres.RowLock})
	require.ErrorIs(t, err, postgres.ErrLockingMismatch)
	require.ErrorContains(t, err, "AdvisoryLock")

	require.NoError(t, adv.Close())
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DELETE FROM "+schema+".settings WHERE name = 'locking'")
	require.NoError(t, err)
	pgtest.OpenSchema(t, url, postgres.Options{Schema: schema, Locking: postgres.RowLock})
	_, err = postgres.Open(ctx, url, postgres.Options{Schema: schema})
	require.ErrorIs(t, err, postgres.ErrLockingMismatch)

	t.Run("AtOnce", func(t *testing.T) {
		t.Parallel()
		schema := pgtest.Schema(t, url)
		var wg sync.WaitGroup
		errs := make([]error, 6)
		for i := range errs {
			wg.Go(func() {
				l := []postgres.Locking{postgres.AdvisoryLock, postgres.RowLock}[i%2]
				st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, Locking: l, MaxConns: 2})
				if err == nil {
					err = st.Close()
				}
				errs[i] = err
			})
		}
		wg.Wait()
		opened := map[int]bool{} // by the way they lock
		for i, err := range errs {
			if err == nil {
				opened[i%2] = true
			} else {
				require.ErrorIs(t, err, postgres.ErrLockingMismatch)
			}
		}
		require.Len(t, opened, 1, "the nodes of one way opened, and only they")
	})
}

// TestOpen_SchemaTooNew refuses a schema whose version is above the code's.
func TestOpen_SchemaTooNew(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	schema := st.Schema()
	require.NoError(t, st.Close())
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "INSERT INTO "+schema+".schema_version VALUES (999, 0)")
	require.NoError(t, err)
	_, err = postgres.Open(ctx, url, postgres.Options{Schema: schema})
	require.ErrorIs(t, err, store.ErrSchemaTooNew)
}

// TestOpen_ForeignSchemaVersion: a schema that holds another
// application's schema_version table (Flyway's name before version 5; a
// DBA's own; Schema "public" in a shared database) and none of poolq's
// tables is not a poolq schema at some version. Open read its versions
// as poolq's: it reported an integer version past poolq's own as
// store.ErrSchemaTooNew (an operator then upgrades poolq, in vain), ran
// poolq's later migrations on tables that are not there ("relation items
// does not exist"), failed on a relation missing from its settings, or on
// a text version column. It refuses them all alike, wrapping ErrNotPoolq,
// and changes nothing.
func TestOpen_ForeignSchemaVersion(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	for _, ddl := range []string{
		"CREATE TABLE %s.schema_version (version integer PRIMARY KEY, applied_at bigint NOT NULL); INSERT INTO %[1]s.schema_version VALUES (1, 0)",
		"CREATE TABLE %s.schema_version (version integer PRIMARY KEY, applied_at bigint NOT NULL); INSERT INTO %[1]s.schema_version VALUES (" +
			fmt.Sprint(postgres.LatestVersion()) + ", 0)",
		"CREATE TABLE %s.schema_version (version integer PRIMARY KEY); INSERT INTO %[1]s.schema_version VALUES (20240101)",
		"CREATE TABLE %s.schema_version (installed_rank int PRIMARY KEY, version varchar(50)); INSERT INTO %[1]s.schema_version VALUES (1, '1.2')",
		"CREATE TABLE %s.schema_version (version integer PRIMARY KEY); CREATE TABLE %[1]s.pools (x int)",
	} {
		schema := pgtest.Schema(t, url)
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema+"; "+fmt.Sprintf(ddl, schema))
		require.NoError(t, err)
		objects := func() (n int) {
			require.NoError(t, conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = $1)
				+ (SELECT count(*) FROM pg_proc p JOIN pg_namespace s ON s.oid = p.pronamespace WHERE s.nspname = $1)`, schema).Scan(&n))
			return n
		}
		before := objects()
		st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema})
		if err == nil {
			require.NoError(t, st.Close())
		}
		require.NotErrorIs(t, err, store.ErrSchemaTooNew, "%s", ddl)
		require.ErrorIs(t, err, postgres.ErrNotPoolq, "%s", ddl)
		require.Equal(t, before, objects(), "%s: the schema changed", ddl)
	}
}

// TestOpen_AsAppRole: a schema already at this version opens for a role
// that may only read and write its tables (migrations run by another
// role): Open changes nothing in it.
func TestOpen_AsAppRole(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	schema := pgx.Identifier{st.Schema()}.Sanitize()
	app, err := postgres.Open(ctx, pgtest.LoginRole(t, url, "poolq_app_"+strings.TrimPrefix(st.Schema(), "poolq_test_"),
		"GRANT USAGE ON SCHEMA "+schema+" TO %s",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "+schema+" TO %s",
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA "+schema+" TO %s",
	), postgres.Options{Schema: st.Schema()})
	require.NoError(t, err)
	p := newTestPool("app role")
	require.NoError(t, app.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		_, err := tx.Pool(ctx, p.UUID) // the lock statement, with its guard
		return err
	}))
	require.NoError(t, app.Close())
}

// TestOpen_SchemaMadeByDBA: a DBA creates poolq's schema and lets the
// service's role create objects in it (USAGE and CREATE on the schema),
// without the right to create schemas in the database, the usual way to
// confine an application to its schema. Open migrates the empty schema:
// CREATE SCHEMA IF NOT EXISTS would have failed, since it checks the
// database's CREATE right before it looks whether the schema exists.
func TestOpen_SchemaMadeByDBA(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	role := "poolq_dba_" + strings.TrimPrefix(schema, "poolq_test_")
	roleURL := pgtest.LoginRole(t, url, role, "GRANT USAGE, CREATE ON SCHEMA "+schema+" TO %s")
	var mayCreate bool
	require.NoError(t, conn.QueryRow(ctx, "SELECT has_database_privilege($1, current_database(), 'CREATE')", role).Scan(&mayCreate))
	require.False(t, mayCreate, "the role may not create schemas in the database")

	st := pgtest.OpenSchema(t, roleURL, postgres.Options{Schema: schema})
	p := newTestPool("schema made by a DBA")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
	var versions int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM "+schema+".schema_version").Scan(&versions))
	require.Equal(t, postgres.LatestVersion(), versions)
}

// TestWrite_WaitAfterALock: a write that waits for a pool while holding
// another runs again with both taken first (Stats.Waits), also when the
// wait was inside a savepoint whose rollback forgot the lock; and never
// hands its internal restart to the caller, even with MaxRetries 1.
func TestWrite_WaitAfterALock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	// setup makes pools and returns a function that has another node hold
	// a pool for d, each of times times in a row, from once it holds it.
	setup := func(t *testing.T, opts postgres.Options, n int) (*postgres.Store, []pool.Pool, func(uuid.UUID, time.Duration, int) <-chan error) {
		opts.MaxConns = 3
		st := pgtest.Open(t, url, opts)
		other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
		ps := make([]pool.Pool, n)
		for i := range ps {
			ps[i] = newTestPool(fmt.Sprintf("pool %d", i))
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, ps[i]) }))
		}
		hold := func(id uuid.UUID, d time.Duration, times int) <-chan error {
			locked, done := make(chan struct{}), make(chan error, 1)
			go func() {
				for i := range times {
					err := other.Write(ctx, func(tx store.Tx) error {
						if _, err := tx.Pool(ctx, id); err != nil {
							return err
						}
						if i == 0 {
							close(locked)
						}
						time.Sleep(d)
						return nil
					})
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			<-locked
			return done
		}
		return st, ps, hold
	}
	lock := func(tx store.Tx, id uuid.UUID) error { _, err := tx.Pool(ctx, id); return err }

	for _, inSavepoint := range []bool{false, true} {
		t.Run(fmt.Sprintf("InSavepoint=%v", inSavepoint), func(t *testing.T) {
			t.Parallel()
			st, ps, hold := setup(t, postgres.Options{}, 2)
			held := hold(ps[1].UUID, 300*time.Millisecond, 2) // held, then taken again at once
			runs := 0
			err := st.Write(ctx, func(tx store.Tx) error {
				runs++
				if err := lock(tx, ps[0].UUID); err != nil {
					return err
				}
				if inSavepoint {
					return tx.Savepoint(ctx, func(tx store.Tx) error { return lock(tx, ps[1].UUID) })
				}
				return lock(tx, ps[1].UUID)
			})
			require.NoError(t, err)
			require.NoError(t, <-held)
			// The run after the wait takes both pools first, and waits for
			// no lock after another. Under -race, a round trip of the
			// second run may be slower than the store's wait slack: the
			// store cannot tell it from a wait, and runs once more (at
			// most, maxWaitRestarts).
			if underRace && runs == 3 {
				t.Logf("a third run: a round trip slower than the wait slack under -race")
			} else {
				require.Equal(t, 2, runs, "the run after the wait takes both pools first")
			}
			require.Equal(t, uint64(runs-1), st.Stats().Waits)
		})
	}
	t.Run("MaxRetries=1", func(t *testing.T) {
		t.Parallel()
		st, ps, hold := setup(t, postgres.Options{MaxRetries: 1}, 3)
		heldB := hold(ps[1].UUID, 300*time.Millisecond, 1)
		heldC := hold(ps[2].UUID, 700*time.Millisecond, 1)
		err := st.Write(ctx, func(tx store.Tx) error {
			for _, p := range ps {
				if err := lock(tx, p.UUID); err != nil {
					return err
				}
			}
			return nil
		})
		require.NoError(t, <-heldB)
		require.NoError(t, <-heldC)
		require.NoError(t, err, "a wait's restart is the store's own business")
	})
}

// TestWrite_SchemaMigratedUnderIt: a newer poolq migrates the schema while
// this Store runs (a rolling upgrade): its next write of a pool's items
// (which takes the pool's lock) fails with store.ErrSchemaTooNew and
// writes nothing, rather than go on with rules the schema no longer keeps.
func TestWrite_SchemaMigratedUnderIt(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 2})
	before := newTestPool("before")
	now := time.Now().UTC()
	c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: campaign.Draft, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, before); err != nil {
			return err
		}
		return tx.InsertCampaign(ctx, c)
	}))
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, before.UUID); err != nil {
			return err
		}
		_, err := tx.Campaign(ctx, c.UUID)
		return err
	}), "this version's guard is there")

	require.NoError(t, postgres.Supersede(ctx, url, st.Schema()), "what the next version's migration does")

	after := newTestPool("after")
	var err error
	for range 2 { // on each of the Store's connections, whose statements are cached
		err = st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, before.UUID); err != nil { // a claim, a settlement: the pool's lock
				return err
			}
			return tx.InsertPool(ctx, after)
		})
		require.ErrorIs(t, err, store.ErrSchemaTooNew)
	}
	err = st.Write(ctx, func(tx store.Tx) error { _, err := tx.Campaign(ctx, c.UUID); return err })
	require.ErrorIs(t, err, store.ErrSchemaTooNew, "a campaign's lock carries the guard too")
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		_, err := tx.Pool(ctx, after.UUID)
		require.ErrorIs(t, err, store.ErrNotFound, "nothing was written")
		return nil
	}))
}

// schemaExists reports whether the database at url has a schema named
// name.
func schemaExists(t *testing.T, url, name string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var n int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", name).Scan(&n))
	return n > 0
}

// TestOpen_NilContext: a nil ctx is a field error, reported with the
// other bad options before anything is connected to (no database needed),
// not a panic.
func TestOpen_NilContext(t *testing.T) {
	t.Parallel()
	var nilCtx context.Context
	const url = "postgres://poolq@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	for _, c := range []struct {
		o    postgres.Options
		want []string
	}{
		{postgres.Options{}, []string{"ctx"}},
		{postgres.Options{MaxRetries: -1}, []string{"ctx", "max_retries"}},
	} {
		var err error
		require.NotPanics(t, func() { _, err = postgres.Open(nilCtx, url, c.o) }, "%+v", c.o)
		require.ErrorIs(t, err, validate.ErrInvalid, "%+v", c.o)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		require.Equal(t, c.want, ve.Fields(), "%+v", c.o)
	}
}

// TestOpen_SystemSchema: information_schema is PostgreSQL's, as the pg_
// schemas are. Open took it (a superuser may create tables there) and put
// poolq's tables beside the system views, where a pg_dump of the database
// leaves them out, as it leaves out every system schema: the backup of a
// dialer held none of its pools. It is refused before anything is
// connected to (no database needed: the URL leads nowhere).
func TestOpen_SystemSchema(t *testing.T) {
	t.Parallel()
	const url = "postgres://poolq@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	for _, schema := range []string{"information_schema", "pg_catalog", "pg_toast"} {
		_, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema})
		require.ErrorIs(t, err, validate.ErrInvalid, "schema %s", schema)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		require.Equal(t, []string{"schema"}, ve.Fields(), "schema %s", schema)
	}
}

func TestOpen_Options(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	// Each bad option is named, all of them at once, and nothing is
	// created: not even a schema (a MaxConns too large for pgxpool failed
	// only after the migrations had run, or wrapped round to another size).
	for _, c := range []struct {
		o    postgres.Options
		want []string
	}{
		{postgres.Options{Schema: "Bad-Name"}, []string{"schema"}},
		{postgres.Options{Schema: "1abc"}, []string{"schema"}},
		{postgres.Options{Schema: "pg_poolq"}, []string{"schema"}},
		{postgres.Options{Durability: 7}, []string{"durability"}},
		{postgres.Options{Locking: 9}, []string{"locking"}},
		{postgres.Options{MaxConns: -1}, []string{"max_conns"}},
		{postgres.Options{MaxConns: intOrNegative(math.MaxInt32 + 1)}, []string{"max_conns"}},
		{postgres.Options{MaxConns: intOrNegative(1<<32 + 3)}, []string{"max_conns"}},
		{postgres.Options{MaxRetries: -1}, []string{"max_retries"}},
		{postgres.Options{IdleInTransactionTimeout: postgres.MaxIdleInTransactionTimeout + time.Millisecond}, []string{"idle_in_transaction_timeout"}},
		// 30 meant as seconds is 30 ns, which the server's milliseconds
		// round to 1 ms: it ended the session of every write transaction
		// between two of its statements (even a CreatePool failed, FATAL
		// 25P03), so the Store could write nothing.
		{postgres.Options{IdleInTransactionTimeout: 30}, []string{"idle_in_transaction_timeout"}},
		{postgres.Options{IdleInTransactionTimeout: 100*time.Millisecond - 1}, []string{"idle_in_transaction_timeout"}},
		{postgres.Options{LockTimeout: postgres.MaxLockTimeout + time.Millisecond}, []string{"lock_timeout"}},
		// 30 meant as seconds is 30 ns, which the server's milliseconds
		// round to 1 ms: a write behind another node's live transaction
		// of 50 ms failed with ErrLockTimeout (and froze its pool).
		{postgres.Options{LockTimeout: 30}, []string{"lock_timeout"}},
		{postgres.Options{LockTimeout: postgres.MinLockTimeout - 1}, []string{"lock_timeout"}},
		// 30 meant as seconds is 30 ns: Open failed with ErrClockSkew,
		// "at least 0s ahead … fix the time sync", for a clock 0.5 ms
		// ahead of the server's.
		{postgres.Options{MaxClockSkew: 30}, []string{"max_clock_skew"}},
		{postgres.Options{MaxClockSkew: postgres.MinMaxClockSkew - 1}, []string{"max_clock_skew"}},
		// 60 meant as seconds is 60 ns: the nodes would judge by their
		// clocks alone.
		{postgres.Options{LeaseGrace: 60}, []string{"lease_grace"}},
		{postgres.Options{LeaseGrace: postgres.MaxLeaseGrace + 1}, []string{"lease_grace"}},
		// 30 meant as seconds is 30 ns: the listener would ping without
		// pause. No ping at all (negative) would leave a node deaf to the
		// others for as long as TCP takes to give up on a silent flow.
		{postgres.Options{ListenerIdle: 30}, []string{"listener_idle"}},
		{postgres.Options{ListenerIdle: -time.Second}, []string{"listener_idle"}},
		{postgres.Options{ListenerIdle: postgres.MaxListenerIdle + 1}, []string{"listener_idle"}},
		{postgres.Options{Durability: -1, Locking: -1, MaxConns: -1, MaxRetries: -1, LockTimeout: 25 * time.Hour},
			[]string{"durability", "locking", "max_conns", "max_retries", "lock_timeout"}},
	} {
		o := c.o
		if o.Schema == "" {
			o.Schema = pgtest.Schema(t, url)
		}
		_, err := postgres.Open(ctx, url, o)
		require.ErrorIs(t, err, validate.ErrInvalid, "%+v", c.o)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		var fields []string
		for _, f := range ve {
			fields = append(fields, f.Field)
		}
		require.Equal(t, c.want, fields, "%+v", c.o)
		require.False(t, schemaExists(t, url, o.Schema), "%+v: schema %s created", c.o, o.Schema)
	}
	for _, d := range []postgres.Durability{postgres.Normal, postgres.Full} {
		want := map[postgres.Durability]string{postgres.Normal: "off", postgres.Full: "on"}[d]
		// The store's durability, not the URL's, in reads and in writes
		// (a write is where it matters).
		other := map[postgres.Durability]string{postgres.Normal: "on", postgres.Full: "off"}[d]
		st := pgtest.Open(t, pgtest.WithParams(url, "synchronous_commit="+other), postgres.Options{Durability: d})
		var got string
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			return postgres.QueryRow(ctx, tx, "SHOW synchronous_commit", &got)
		}))
		require.Equal(t, want, got, "synchronous_commit at %v in a read, the URL saying %s", d, other)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return postgres.QueryRow(ctx, tx, "SHOW synchronous_commit", &got)
		}))
		require.Equal(t, want, got, "synchronous_commit at %v in a write, the URL saying %s", d, other)
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			return postgres.QueryRow(ctx, tx, "SHOW jit", &got)
		}))
		require.Equal(t, "off", got, "jit")
	}
	for _, c := range []struct {
		timeout time.Duration
		want    string
	}{{0, "30s"}, {-1, "0"}, {100 * time.Millisecond, "100ms"}, {1500*time.Millisecond + time.Microsecond, "1501ms"}, {time.Hour, "1h"}} {
		st := pgtest.Open(t, url, postgres.Options{IdleInTransactionTimeout: c.timeout})
		var got string
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			return postgres.QueryRow(ctx, tx, "SHOW idle_in_transaction_session_timeout", &got)
		}))
		require.Equal(t, c.want, got, "IdleInTransactionTimeout %v", c.timeout)
		st = pgtest.Open(t, url, postgres.Options{LockTimeout: c.timeout})
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			return postgres.QueryRow(ctx, tx, "SHOW lock_timeout", &got)
		}))
		require.Equal(t, c.want, got, "LockTimeout %v", c.timeout)
	}
}

// TestWrite_StalledTransactionEnds: a process that stops in the middle of
// a write transaction (here a Write whose function sleeps, as a frozen
// process would) holds its pool's lock only until the server ends its
// idle session; another store then takes the lock and writes. The stalled
// Write fails when it resumes, and nothing of it was committed.
func TestWrite_StalledTransactionEnds(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{IdleInTransactionTimeout: 300 * time.Millisecond})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	p, ghost := newTestPool("held"), newTestPool("never committed")
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))

	const frozen = 2 * time.Second
	holds := make(chan struct{})
	stalled := make(chan error, 1)
	go func() {
		stalled <- a.Write(ctx, func(tx store.Tx) error {
			if err := tx.InsertPool(ctx, ghost); err != nil {
				return err
			}
			if _, err := tx.Pool(ctx, p.UUID); err != nil { // its lock
				return err
			}
			close(holds)
			time.Sleep(frozen)
			_, err := tx.Pool(ctx, p.UUID)
			return err
		})
	}()
	<-holds
	start := time.Now()
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error {
		_, err := tx.Pool(ctx, p.UUID)
		return err
	}))
	require.Less(t, time.Since(start), frozen-500*time.Millisecond, "b waited for the stalled process to come back")

	require.Error(t, <-stalled, "the stalled transaction's session was ended")
	err := b.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, ghost.UUID); return err })
	require.ErrorIs(t, err, store.ErrNotFound, "nothing of the stalled transaction was committed")
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }),
		"the stalled store writes again")
}

// TestWrite_LocksOutOfOrder has two transactions lock two pools in
// opposite orders. The one that must take a lock below one it holds only
// tries it, and runs again taking both in order: no deadlock, no error,
// and no wait for the server's deadlock detection (a second).
//
// A MaxRetries of math.MaxInt (no bound, in effect) restarts a as well:
// Write added its bound on lock restarts to MaxRetries, which overflowed
// to a negative bound, and a returned its first run's restart as an
// error, as if the retries were used up.
func TestWrite_LocksOutOfOrder(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for name, retries := range map[string]int{"Default": 0, "MaxInt": math.MaxInt} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			locksOutOfOrder(t, url, retries)
		})
	}
}

func locksOutOfOrder(t *testing.T, url string, maxRetries int) {
	ctx := context.Background()
	var opts postgres.Options
	url, noDetector := withoutDeadlockDetector(t, url, &opts)
	aOpts := opts
	aOpts.MaxRetries = maxRetries
	a := pgtest.Open(t, url, aOpts)
	opts.Schema = a.Schema()
	b := pgtest.OpenSchema(t, url, opts)
	lo, hi := newTestPool("low"), newTestPool("high")
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, lo) }))
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, hi) })) // a larger id

	holdsHi, bHoldsLo := make(chan struct{}), make(chan struct{})
	var once, onceB sync.Once // each fn may run again
	start := time.Now()
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() {
		errA = a.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, hi.UUID); err != nil {
				return err
			}
			once.Do(func() { close(holdsHi); <-bHoldsLo })
			_, err := tx.Pool(ctx, lo.UUID) // below hi: tried, taken by b: run again
			return err
		})
	})
	wg.Go(func() {
		<-holdsHi
		errB = b.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, lo.UUID); err != nil {
				return err
			}
			onceB.Do(func() { close(bHoldsLo) })
			_, err := tx.Pool(ctx, hi.UUID) // above lo: waits for a
			return err
		})
	})
	wg.Wait()
	// A deadlock, with the detector off, is an error here.
	require.NoError(t, errA)
	require.NoError(t, errB)
	if !noDetector {
		requireNoDeadlockFound(t, start)
	}
	require.Equal(t, uint64(1), a.Stats().Retries, "a ran again once")
	// b waited for hi holding lo: if that wait was long (a slow machine),
	// b runs again for it, never for order.
	require.Equal(t, b.Stats().Waits, b.Stats().Retries)
}

// TestWrite_ManyLocksOutOfOrder has a transaction lock more pools than
// MaxRetries, from the highest key down, while another node holds every
// one but the first and lets each go as soon as the first waits for it:
// each run learns one more lock to take first, in order, which is progress,
// not a retry, and the transaction commits.
func TestWrite_ManyLocksOutOfOrder(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	const n = postgres.DefaultMaxRetries + 3
	a := pgtest.Open(t, url, postgres.Options{MaxConns: 2})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), MaxConns: n + 2})
	ps := make([]pool.Pool, n)
	keys := map[int64]int{}
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	for i := range ps {
		ps[i] = newTestPool(fmt.Sprintf("pool %02d", i))
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, ps[i]) }))
		var k int64
		require.NoError(t, conn.QueryRow(ctx, "SELECT id FROM "+a.Schema()+".pools WHERE uuid = $1", ps[i].UUID).Scan(&k))
		keys[postgres.LockKey(a, k)] = i
	}
	// Node b holds every pool but the last (the highest key), each in a
	// transaction of its own.
	release := make([]chan struct{}, n-1)
	held := make(chan struct{}, n-1)
	for i := range release {
		release[i] = make(chan struct{})
		go b.Write(ctx, func(tx store.Tx) error {
			_, err := tx.Pool(ctx, ps[i].UUID)
			held <- struct{}{}
			<-release[i]
			return err
		})
	}
	for range release {
		<-held
	}
	// b lets go of a pool as soon as a waits for it.
	stop, stopped := make(chan struct{}), make(chan struct{})
	let := map[int]bool{}
	defer func() { // let go of the rest, so that b can close
		close(stop)
		<-stopped
		for i := range release {
			if !let[i] {
				close(release[i])
			}
		}
	}()
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			rows, err := conn.Query(ctx, `SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND NOT granted`)
			if err != nil {
				return
			}
			waiting, _ := pgx.CollectRows(rows, pgx.RowTo[int64])
			for _, k := range waiting {
				if i, ok := keys[k]; ok && !let[i] {
					let[i] = true
					close(release[i])
				}
			}
		}
	}()
	err = a.Write(ctx, func(tx store.Tx) error {
		for i := n - 1; i >= 0; i-- {
			if _, err := tx.Pool(ctx, ps[i].UUID); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("retries %d", a.Stats().Retries)
	require.NoError(t, err, "lock-order restarts are the store's own business")
}

// TestWatch delivers the signals of committed transactions, from any store
// on the schema, and not those of transactions or savepoints rolled back.
func TestWatch(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	got := make(chan uuid.UUID, 16)
	stop := a.Watch(func(id uuid.UUID) { got <- id })
	defer stop()
	p := newTestPool("watched")
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
	signal := func(tx store.Tx, id uuid.UUID) { tx.(store.Signaler).Signal(id) }

	// The listener says when it listens (uuid.Nil: look again, signals
	// sent before may have been missed); from then on none is missed.
	listening(t, got)

	rolledBack, undone, kept := uuid.New(), uuid.New(), uuid.New()
	boom := errors.New("boom")
	require.ErrorIs(t, b.Write(ctx, func(tx store.Tx) error { signal(tx, rolledBack); return boom }), boom)
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error {
		require.ErrorIs(t, tx.Savepoint(ctx, func(tx store.Tx) error { signal(tx, undone); return boom }), boom)
		return tx.Savepoint(ctx, func(tx store.Tx) error { signal(tx, kept); return nil })
	}))
	select {
	case id := <-got:
		require.Equal(t, kept, id, "only the committed signal arrives")
	case <-time.After(5 * time.Second):
		t.Fatal("the committed signal did not arrive")
	}
	select {
	case id := <-got:
		t.Fatalf("a second signal arrived: %s", id)
	case <-time.After(100 * time.Millisecond):
	}
	stop()
	stop() // idempotent
}

// TestWatch_LongSchema: a schema name of 63 bytes, the most an identifier
// holds, leaves no room for the channel's prefix; its signals still commit
// and arrive.
func TestWatch_LongSchema(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	schema += strings.Repeat("x", 63-len(schema))
	t.Cleanup(func() { pgtest.Drop(t, url, schema) })
	a := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	got := make(chan uuid.UUID, 16)
	stop := a.Watch(func(id uuid.UUID) { got <- id })
	defer stop()
	p := newTestPool("watched")
	listening(t, got)
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error { tx.(store.Signaler).Signal(p.UUID); return nil }),
		"a commit that signals")
	select {
	case id := <-got:
		require.Equal(t, p.UUID, id)
	case <-time.After(5 * time.Second):
		t.Fatal("the signal did not arrive")
	}
}

// listening waits for a watcher's uuid.Nil: its store listens.
func listening(t *testing.T, got <-chan uuid.UUID) {
	t.Helper()
	select {
	case id := <-got:
		require.Equal(t, uuid.Nil, id, "the first call says the listener listens")
	case <-time.After(10 * time.Second):
		t.Fatal("the listener did not say it listens")
	}
}

// TestWrite_LockKey checks that the lock a write transaction holds on a
// pool is the one the store orders its locks by (and that reading a pool
// in a write transaction takes it at all).
func TestWrite_LockKey(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	p := newTestPool("locked")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var k int64
	require.NoError(t, conn.QueryRow(ctx, "SELECT id FROM "+st.Schema()+".pools WHERE uuid = $1", p.UUID).Scan(&k))
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, p.UUID); err != nil {
			return err
		}
		var keys []int64
		rows, err := conn.Query(ctx, `SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid <> pg_backend_pid()`)
		require.NoError(t, err)
		keys, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		require.NoError(t, err)
		require.Contains(t, keys, postgres.LockKey(st, k), "the pool's advisory lock")
		return nil
	}))
}

// pendingItems returns n new Pending items of new contacts.
func pendingItems(n int) []pool.Item {
	out := make([]pool.Item, n)
	for i := range out {
		out[i] = pool.Item{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: time.Now().UTC()}
	}
	return out
}

// TestPoolDue_ForgetsDeletedPools: the type and cap a store keeps for each
// pool it claimed from (PoolDue's guess) go when the pool is deleted, by
// this store or by another node, which this one learns at its next claim.
func TestPoolDue_ForgetsDeletedPools(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	due := func(st *postgres.Store, id uuid.UUID) error {
		return st.Write(ctx, func(tx store.Tx) error {
			_, _, err := tx.PoolDue(ctx, id, time.Now(), 1)
			return err
		})
	}
	del := func(st *postgres.Store, id uuid.UUID) {
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.DeletePool(ctx, id) }))
	}
	for _, deleter := range []*postgres.Store{a, b} {
		p := newTestPool("forgotten")
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		require.NoError(t, due(a, p.UUID))
		require.NoError(t, due(a, p.UUID), "a second claim, on the guess")
		require.True(t, postgres.Seen(a, p.UUID))
		del(deleter, p.UUID)
		require.ErrorIs(t, due(a, p.UUID), store.ErrNotFound)
		require.False(t, postgres.Seen(a, p.UUID), "deleted by the store itself: %v", deleter == a)
	}
}

// TestOpen_ClockSkew: a process whose clock is further from the server's
// than MaxClockSkew does not open the store, and changes nothing: the
// schema is not created.
func TestOpen_ClockSkew(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	off := func(d time.Duration) context.Context {
		return postgres.WithClock(ctx, func() time.Time { return time.Now().Add(d) })
	}
	for _, c := range []struct {
		off, max time.Duration
		err      string // "" when Open succeeds
	}{
		{0, 0, ""},
		{time.Second, 0, ""},
		{-time.Second, 0, ""},
		{time.Hour, 0, "ahead of the database server's, more than MaxClockSkew (30s)"}, // by about an hour, less half a round trip
		{-time.Hour, 0, "behind the database server's"},
		{time.Minute, 2 * time.Minute, ""},
		{3 * time.Minute, 2 * time.Minute, "ahead of"},
		{time.Hour, -1, ""},               // no check
		{0, postgres.MinMaxClockSkew, ""}, // the same clock passes the tightest bound
	} {
		schema := pgtest.Schema(t, url)
		st, err := postgres.Open(off(c.off), url, postgres.Options{Schema: schema, MaxConns: 2, MaxClockSkew: c.max})
		if c.err == "" {
			require.NoError(t, err, "clock off by %v, MaxClockSkew %v", c.off, c.max)
			require.NoError(t, st.Close())
			require.True(t, schemaExists(t, url, schema))
			continue
		}
		require.ErrorIs(t, err, postgres.ErrClockSkew, "clock off by %v, MaxClockSkew %v", c.off, c.max)
		require.ErrorContains(t, err, c.err)
		require.False(t, schemaExists(t, url, schema), "a refused Open created its schema")
	}
}

// TestWrite_LockTimeout: a write waiting for a pool's lock that another
// session holds, not idle (as a node frozen between two statements of a
// batch, which IdleInTransactionTimeout does not end), fails after
// LockTimeout with ErrLockTimeout, nothing of it committed; without a
// bound it waits for the lock and gets it.
func TestWrite_LockTimeout(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{IdleInTransactionTimeout: -1})
	bounded := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), LockTimeout: 300 * time.Millisecond})
	unbounded := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), LockTimeout: -1})
	p := newTestPool("held")
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))

	holds, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- a.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil { // its lock
				return err
			}
			close(holds)
			<-release
			return nil
		})
	}()
	<-holds
	ghost := newTestPool("never committed")
	start := time.Now()
	err := bounded.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, ghost); err != nil {
			return err
		}
		_, err := tx.Pool(ctx, p.UUID)
		return err
	})
	require.ErrorIs(t, err, postgres.ErrLockTimeout)
	require.Less(t, time.Since(start), 5*time.Second)
	err = bounded.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, ghost.UUID); return err })
	require.ErrorIs(t, err, store.ErrNotFound, "nothing of the timed-out write was committed")

	waited := make(chan error, 1)
	go func() {
		waited <- unbounded.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
	}()
	select {
	case err := <-waited:
		t.Fatalf("the unbounded write did not wait for the lock: %v", err)
	case <-time.After(time.Second):
	}
	close(release)
	require.NoError(t, <-held)
	require.NoError(t, <-waited, "it gets the lock once released")
	require.NoError(t, bounded.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }),
		"the bounded store writes again")
}

// TestWrite_UpFrontLockTimeout: a write that meets pool P's lock out of
// order (below pool Q's, which it holds) runs again taking both up front;
// another session holds P past LockTimeout. Only what names P fails, with
// ErrLockTimeout, and at once in the run after the wait; the rest of the
// write (Q's lock, a new pool) commits, as a group-commit batch's
// operations on free pools must.
func TestWrite_UpFrontLockTimeout(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		const lockTimeout = 300 * time.Millisecond
		a := pgtest.Open(t, url, postgres.Options{Locking: l, IdleInTransactionTimeout: -1})
		bounded := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), Locking: l, LockTimeout: lockTimeout})
		p, q := newTestPool("frozen P"), newTestPool("free Q") // P's id, and lock key, below Q's
		for _, x := range []pool.Pool{p, q} {
			require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, x) }))
		}

		holds, release := make(chan struct{}), make(chan struct{})
		held := make(chan error, 1)
		go func() {
			held <- a.Write(ctx, func(tx store.Tx) error {
				if _, err := tx.Pool(ctx, p.UUID); err != nil {
					return err
				}
				close(holds)
				<-release
				return nil
			})
		}()
		<-holds
		defer func() { close(release); require.NoError(t, <-held) }()

		added := newTestPool("written with Q")
		var errP error
		start := time.Now()
		err := bounded.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, q.UUID); err != nil {
				return err
			}
			_, errP = tx.Pool(ctx, p.UUID) // as group commit: P's operation fails alone
			return tx.InsertPool(ctx, added)
		})
		took := time.Since(start)
		require.NoError(t, err, "the write failed as a whole for P's lock")
		require.ErrorIs(t, errP, postgres.ErrLockTimeout)
		require.Less(t, took, 4*lockTimeout, "P's lock was waited for more than once")
		err = bounded.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, added.UUID); return err })
		require.NoError(t, err, "the write committed")
	})
}

// TestWrite_FrozenPoolOnlyTried: once a write waited for a pool's lock
// past LockTimeout, the next writes to that pool only try its lock, one
// after a pause longer than LockTimeout too: they fail at once with
// ErrLockTimeout while another session still holds it (rather than each
// wait as long again, holding up the operations of their group-commit
// batches), and go on at once when it is free.
func TestWrite_FrozenPoolOnlyTried(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		const lockTimeout = time.Second // its half bounds a try: room for a loaded machine
		a := pgtest.Open(t, url, postgres.Options{Locking: l, IdleInTransactionTimeout: -1})
		bounded := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), Locking: l, LockTimeout: lockTimeout})
		p := newTestPool("frozen")
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		free := holdPool(t, a, p.UUID, nil)
		defer free() // before the stores close, even when the test fails
		write := func() (time.Duration, error) {
			start := time.Now()
			err := bounded.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
			return time.Since(start), err
		}
		took, err := write()
		require.ErrorIs(t, err, postgres.ErrLockTimeout)
		require.GreaterOrEqual(t, took, lockTimeout*9/10, "the first write waits")
		for i := range 3 {
			if i == 2 {
				// Longer than LockTimeout without a write: a blocked
				// Dequeue looks once a PollInterval (1 s by default), and
				// forgotten by then, the pool was waited for at each look.
				time.Sleep(3 * lockTimeout / 2)
			}
			took, err = write()
			require.ErrorIs(t, err, postgres.ErrLockTimeout)
			require.Less(t, took, lockTimeout/2, "later write %d waited for the pool held past the lock timeout", i)
		}
		free()
		took, err = write()
		require.NoError(t, err, "the pool is free")
		require.Less(t, took, lockTimeout/2)
	})
}

// TestWrite_FrozenPoolThenALiveHolder: a pool noted after a wait past
// LockTimeout is forgotten when a try finds another transaction than the
// one that held it then: that one is live, and the write waits for it (here
// 300 ms) and goes on, rather than fail at once. A memory of the pool that
// never lapsed would lock a node out of a busy pool after one long wait
// behind live nodes: its tries meet one live transaction after another.
func TestWrite_FrozenPoolThenALiveHolder(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		const lockTimeout = time.Second
		a := pgtest.Open(t, url, postgres.Options{Locking: l, IdleInTransactionTimeout: -1})
		bounded := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), Locking: l, LockTimeout: lockTimeout})
		p := newTestPool("frozen, then live")
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		write := func() error {
			return bounded.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
		}
		free := holdPool(t, a, p.UUID, nil)
		defer free() // before the stores close, even when the test fails
		require.ErrorIs(t, write(), postgres.ErrLockTimeout, "held past the lock timeout: noted frozen")
		start := time.Now()
		require.ErrorIs(t, write(), postgres.ErrLockTimeout, "the same transaction still holds it")
		require.Less(t, time.Since(start), lockTimeout/2, "a write waited for the frozen pool")
		free()

		live := holdPool(t, a, p.UUID, nil) // another transaction, which ends in 300 ms
		defer live()
		done := make(chan error, 1)
		start = time.Now()
		go func() { done <- write() }()
		time.Sleep(300 * time.Millisecond)
		live()
		require.NoError(t, <-done, "the write waits for a live transaction, not the one noted")
		require.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
		require.NoError(t, write(), "forgotten")
	})
}

// holdPool holds the lock of pool id in a write transaction of st, from a
// goroutine of its own, until free is called; then runs then (nil:
// nothing) in that transaction, and free returns once it has committed.
// free may be called more than once.
func holdPool(t *testing.T, st *postgres.Store, id uuid.UUID, then func(store.Tx) error) (free func()) {
	t.Helper()
	ctx := context.Background()
	holds, release := make(chan struct{}), make(chan struct{})
	held := make(chan error, 1)
	go func() {
		held <- st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, id); err != nil {
				return err
			}
			close(holds)
			<-release
			if then == nil {
				return nil
			}
			return then(tx)
		})
	}()
	<-holds
	var once sync.Once
	return func() { once.Do(func() { close(release); require.NoError(t, <-held) }) }
}

// TestWrite_FrozenPoolDeleted: a pool held past the lock timeout, then
// deleted by the session that held it, is not found by the next write:
// the try of its lock finds no row, and the write goes on as for any pool
// (store.ErrNotFound), not a lock timeout for a pool no one holds.
func TestWrite_FrozenPoolDeleted(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		a := pgtest.Open(t, url, postgres.Options{Locking: l, IdleInTransactionTimeout: -1})
		bounded := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), Locking: l, LockTimeout: 500 * time.Millisecond})
		p := newTestPool("frozen, then deleted")
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		free := holdPool(t, a, p.UUID, func(tx store.Tx) error { return tx.DeletePool(ctx, p.UUID) })
		defer free() // before the stores close, even when the test fails
		write := func() error {
			return bounded.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
		}
		require.ErrorIs(t, write(), postgres.ErrLockTimeout, "held past the lock timeout: noted frozen")
		free()
		err := write()
		require.ErrorIs(t, err, store.ErrNotFound)
		require.NotErrorIs(t, err, postgres.ErrLockTimeout)
	})
}

// TestOpen_NotUTF8: a database whose text is not UTF-8 (SQL_ASCII, what
// initdb makes under the C locale) is refused, and nothing is created in
// it: its CHECKs would count a name's bytes, not its characters, and
// refuse a valid name with a constraint error.
func TestOpen_NotUTF8(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	db := strings.Replace(pgtest.Schema(t, url), "poolq_test_", "poolq_test_ascii_", 1)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+db+" ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	require.NoError(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop database %s: %v", db, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE "+db+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", db, err)
		}
	})
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	u.Path = "/" + db
	st, err := postgres.Open(ctx, u.String(), postgres.Options{Schema: "poolq"})
	if err == nil {
		st.Close()
	}
	require.ErrorIs(t, err, postgres.ErrNotUTF8)
	require.ErrorContains(t, err, "it is SQL_ASCII")
	require.False(t, schemaExists(t, u.String(), "poolq"), "a refused Open created its schema")
}

// TestOpen_MaxConnsFromURL: the pool's size is Options.MaxConns, else the
// connection string's pool_max_conns, else DefaultMaxConns, however pgx
// reads the string. A key=value string may put spaces around '=' (as
// libpq's do); pgx takes "pool_max_conns = 3" as 3, and the Store used to
// look for the text "pool_max_conns=" only, and put 8 in its place: a node
// sized to the server's max_connections opened more. A value that merely
// contains that text (an application_name) named no size, and the Store
// used to leave pgx's own default (4, or the number of CPUs) for 8. A
// URL's keys may be percent-encoded.
func TestOpen_MaxConnsFromURL(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	u, err := neturl.Parse(url)
	require.NoError(t, err)
	kv := fmt.Sprintf("host=%s port=%s user=%s dbname=%s sslmode=disable",
		u.Hostname(), u.Port(), u.User.Username(), strings.TrimPrefix(u.Path, "/"))
	if pw, ok := u.User.Password(); ok {
		kv += " password='" + pw + "'"
	}
	for _, c := range []struct {
		conn string
		opts int
		want int
	}{
		{pgtest.WithParams(url, "pool_max_conns=3"), 0, 3},
		{pgtest.WithParams(url, "pool_max_conns=3"), 5, 5},
		{kv + " pool_max_conns=3", 0, 3},
		{kv + " pool_max_conns = 3", 0, 3},
		{kv + " pool_max_conns =3", 0, 3},
		{kv, 0, postgres.DefaultMaxConns},
		{kv + " application_name='x pool_max_conns=3'", 0, postgres.DefaultMaxConns},
		{pgtest.WithParams(url, "pool%5Fmax%5Fconns=3"), 0, 3},
	} {
		st, err := postgres.Open(ctx, c.conn, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: c.opts})
		require.NoError(t, err, "%s", c.conn)
		got := postgres.MaxConns(st)
		require.NoError(t, st.Close())
		require.Equal(t, c.want, got, "MaxConns %d with %q", c.opts, c.conn)
	}
}

// intOrNegative returns v where an int holds it (64-bit systems), else -1
// (32-bit): an int beyond a 32-bit limit exists only on 64-bit systems,
// and -1 is out of range too.
func intOrNegative(v int64) int {
	if v > math.MaxInt {
		return -1
	}
	return int(v)
}
