package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/storetest"
	"github.com/stretchr/testify/require"
)

// The tests of this file run the Store through a PgBouncer of their own
// (pgtest.NewBouncer), and skip when pgbouncer is not installed (Debian:
// apt-get install pgbouncer).

// TestPgBouncer_Session: through PgBouncer in session mode, with its
// stock settings, two nodes open one new schema (the migrations under
// their lock), each connection of theirs runs with the Store's settings,
// a Dequeue blocked on one node wakes at the other's Add by NOTIFY alone
// (its poll is an hour), and both nodes' Work call each contact of a pool
// once. PgBouncer refuses a connection whose startup packet sets what it
// does not know (search_path, lock_timeout, …: "unsupported startup
// parameter"), so the Store must set them once connected.
func TestPgBouncer_Session(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	b := pgtest.NewBouncer(t, url, "session", nil)
	schema := pgtest.Schema(t, url)
	stores := make([]*postgres.Store, 2)
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, b.URL, postgres.Options{Schema: schema, MaxConns: 4, LeaseGrace: -1})
		}()
	}
	wg.Wait()
	for i, st := range stores {
		require.NoError(t, errs[i], "open node %d through PgBouncer (session)", i)
		t.Cleanup(func() { _ = st.Close() })
	}
	for name, want := range map[string]string{
		"search_path": schema, "lock_timeout": "30s", "idle_in_transaction_session_timeout": "30s",
		"statement_timeout": "0", "synchronous_commit": "off", "plan_cache_mode": "force_generic_plan",
		"enable_seqscan": "off", "jit": "off", "TimeZone": "UTC",
	} {
		got, err := postgres.Setting(ctx, stores[0], name)
		require.NoError(t, err)
		require.Equal(t, want, got, "the setting %s on the Store's connection", name)
	}

	engines := make([]*queue.Engine, len(stores))
	for i, st := range stores {
		eng, err := queue.New(st, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Minute})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })
		engines[i] = eng
	}
	p, err := engines[1].CreatePool(ctx, pool.CreateParams{Name: "bounced", Description: "through PgBouncer", Type: pool.Parallel})
	require.NoError(t, err)

	// A wake-up across nodes: NOTIFY through the bouncer.
	claimed := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		l, err := engines[0].Dequeue(dctx, p.UUID)
		if err == nil {
			err = engines[0].Complete(ctx, l, "answered")
		}
		claimed <- err
	}()
	time.Sleep(300 * time.Millisecond) // let the Dequeue block
	start := time.Now()
	_, err = engines[1].Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	require.NoError(t, <-claimed, "the blocked Dequeue on node 0")
	require.Less(t, time.Since(start), 5*time.Second, "woken by NOTIFY, not by its hourly poll")

	// Work on both nodes: each contact called once.
	const n = 40
	items := make([]pool.NewItem, n)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: uuid.New()}
	}
	_, err = engines[1].Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	var mu sync.Mutex
	calls := map[uuid.UUID]int{}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var works sync.WaitGroup
	for _, eng := range engines {
		works.Add(1)
		go func() {
			defer works.Done()
			_ = eng.Work(wctx, func(ctx context.Context, l *queue.Lease) error {
				mu.Lock()
				calls[l.ContactUUID]++
				mu.Unlock()
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 4})
		}()
	}
	require.Eventually(t, func() bool {
		d, err := engines[0].Pool(ctx, p.UUID)
		return err == nil && d.StatusCounts[pool.StatusCompleted] == n+1
	}, 30*time.Second, 20*time.Millisecond, "every item completed")
	stop()
	works.Wait()
	require.Len(t, calls, n)
	for c, k := range calls {
		require.Equal(t, 1, k, "contact %s called %d times", c, k)
	}
}

// TestPgBouncer_SessionConformance runs the conformance suite through
// PgBouncer in session mode. -short (CI's run under -race) skips it: a
// minute for what TestStore runs there already, the bouncer aside.
func TestPgBouncer_SessionConformance(t *testing.T) {
	url := pgtest.URL(t)
	if testing.Short() {
		t.Skip("-short: the conformance suite through PgBouncer runs without -short")
	}
	t.Parallel()
	b := pgtest.NewBouncer(t, url, "session", nil)
	storetest.Run(t, func(t *testing.T) store.Store {
		st, err := postgres.Open(context.Background(), b.URL,
			postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 4, LeaseGrace: -1})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// TestPgBouncer_IgnoredStartupParameters: PgBouncer's documented way
// around "unsupported startup parameter" is to list the parameters in
// ignore_startup_parameters, which drops them. A Store whose search_path
// went that way would read and write the schema of the role's own
// search_path: here another poolq schema, whose pool it would list as
// its own. Its connections must be in Options.Schema whatever the bouncer
// drops.
func TestPgBouncer_IgnoredStartupParameters(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	theirs := pgtest.Open(t, url, postgres.Options{}) // another poolq on the database
	require.NoError(t, theirs.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, newTestPool("theirs")) }))
	mine := pgtest.Open(t, url, postgres.Options{}) // this node's schema, made directly
	// Named as .ci/run drops what a killed run left.
	role := "poolq_bouncer_" + strings.TrimPrefix(mine.Schema(), "poolq_test_")
	roleURL := pgtest.LoginRole(t, url, role,
		"GRANT USAGE ON SCHEMA "+theirs.Schema()+", "+mine.Schema()+" TO %s",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "+theirs.Schema()+" TO %s",
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "+mine.Schema()+" TO %s",
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA "+theirs.Schema()+" TO %s",
		"GRANT USAGE ON ALL SEQUENCES IN SCHEMA "+mine.Schema()+" TO %s",
		"ALTER ROLE %s SET search_path = "+theirs.Schema())
	b := pgtest.NewBouncer(t, roleURL, "session", []string{role},
		"ignore_startup_parameters = search_path, synchronous_commit, enable_seqscan, enable_bitmapscan, enable_sort, "+
			"enable_hashjoin, enable_mergejoin, jit, plan_cache_mode, idle_in_transaction_session_timeout, lock_timeout, statement_timeout")
	st, err := postgres.Open(ctx, b.URL, postgres.Options{Schema: mine.Schema(), MaxConns: 2})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	path, err := postgres.Setting(ctx, st, "search_path")
	require.NoError(t, err)
	require.Equal(t, mine.Schema(), path, "the search_path of the Store's connection")
	var pools []pool.Pool
	require.NoError(t, st.Read(ctx, func(tx store.Tx) (err error) {
		pools, _, err = tx.Pools(ctx, pool.PoolQuery{Page: 1, PerPage: 15})
		return err
	}))
	require.Empty(t, pools, "the pools of the Store's schema: none")
}

// TestPgBouncer_TransactionMode: through PgBouncer in transaction (or
// statement) mode, a connection's statements outside a transaction run on
// whichever server session is free: the settings the Store makes per
// connection (search_path among them) would be another session's, and its
// listener's LISTEN would hear nothing. Open refuses it, at once, with
// ErrTransactionPooling, and leaves nothing in the database.
func TestPgBouncer_TransactionMode(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, mode := range []string{"transaction", "statement"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := pgtest.NewBouncer(t, url, mode, nil)
			schema := pgtest.Schema(t, url)
			// Two nodes at once, as a dialer's start them: each is refused
			// for what it is, not with the other's prepared statement.
			start := time.Now()
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					st, err := postgres.Open(context.Background(), b.URL, postgres.Options{Schema: schema})
					if st != nil {
						_ = st.Close()
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				require.ErrorIs(t, err, postgres.ErrTransactionPooling)
			}
			require.Less(t, time.Since(start), 10*time.Second, "refused at once")
			err := errs[0]
			t.Log(err)
			conn, err2 := pgx.Connect(context.Background(), url)
			require.NoError(t, err2)
			defer conn.Close(context.Background())
			var exists bool
			require.NoError(t, conn.QueryRow(context.Background(),
				"SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists))
			require.False(t, exists, "Open made the schema %s", schema)
			if errors.Is(err, postgres.ErrTransactionPooling) {
				require.Contains(t, err.Error(), "session", "the error says what to do")
			}
		})
	}
}

// TestPgBouncer_TransactionModeBusy: Open through PgBouncer in transaction
// mode is refused within 5 s of its check's NOTIFY even when the pooler's
// server sessions are all busy by then (here its one session, held by
// another client): Open sent an UNLISTEN after the check, which waited for
// a free session, past the 5 s and past Open's own context (to 13 s here,
// with an 8 s context), as long as the pooler's query_wait_timeout (120 s
// by default) on a pool that stays busy.
func TestPgBouncer_TransactionModeBusy(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	b := pgtest.NewBouncer(t, url, "transaction", nil, "default_pool_size = 1", "query_wait_timeout = 60")
	schema := pgtest.Schema(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	hctx, release := context.WithCancel(context.Background())
	held := make(chan struct{})
	go func() { // another client's transaction takes the one session once Open's check waits
		defer close(held)
		time.Sleep(1500 * time.Millisecond)
		conn, err := pgx.Connect(context.Background(), b.URL)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(hctx, "BEGIN; SELECT pg_sleep(12); ROLLBACK") // ended by release
	}()
	start := time.Now()
	st, err := postgres.Open(ctx, b.URL, postgres.Options{Schema: schema})
	took := time.Since(start)
	release()
	<-held
	if st != nil {
		_ = st.Close()
	}
	t.Logf("Open returned after %v: %v", took.Round(time.Millisecond), err)
	require.ErrorIs(t, err, postgres.ErrTransactionPooling)
	require.Less(t, took, 7500*time.Millisecond, "refused within 5 s of the check's NOTIFY (1.5 s in)")
}

// TestPgBouncer_LostCommitEnded: a write whose COMMIT's answer was lost,
// still in progress on the server, is ended by the Store, which then
// knows it did not commit (as on a direct connection: TestCommitOutcome),
// through PgBouncer too. PgBouncer gives its clients keys of its own, not
// the server process's, which the Store must not take for it: it would
// end no process (or another one), and, the transaction still in
// progress, the outcome would be unknown.
func TestPgBouncer_LostCommitEnded(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	b := pgtest.NewBouncer(t, url, "session", nil)
	st, err := postgres.Open(ctx, b.URL, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 3, LeaseGrace: -1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	xid, pid, release, err := postgres.HeldWrite(ctx, st)
	require.NoError(t, err)
	defer release()
	lost := errors.New("connection reset (the commit's answer)")
	err = postgres.CommitOutcome(ctx, st, xid, pid, lost)
	require.ErrorIs(t, err, lost)
	require.NotErrorIs(t, err, store.ErrCommitUnknown, "ended before it committed: aborted")
}
