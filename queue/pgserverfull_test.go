package queue_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
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

// tooManyClients reports whether err is the server's refusal of a
// connection at max_connections (SQLSTATE 53300).
func tooManyClients(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53300"
}

// fillServer connects to url until the server refuses (max_connections
// reached) and returns the connections, closed by the returned function.
func fillServer(t *testing.T, url string) (release func()) {
	t.Helper()
	ctx := context.Background()
	var conns []*pgx.Conn
	release = func() {
		for _, c := range conns {
			_ = c.Close(ctx)
		}
		conns = nil
	}
	t.Cleanup(release)
	for {
		c, err := pgx.Connect(ctx, url)
		if tooManyClients(err) {
			return release
		}
		require.NoError(t, err)
		conns = append(conns, c)
		require.Less(t, len(conns), 100, "the server refuses no connection")
	}
}

// TestPostgres_ServerFull: the server's max_connections is reached by
// other clients (a private server of 8 connections, none reserved).
//
//   - Open fails at once, with the server's error (53300, "sorry, too many
//     clients already"), not after its context's deadline.
//   - Under a running Work (MaxConns 2), the store's connections are
//     terminated and their slots taken: each call that needs a connection
//     fails at once with that error, Work reports it (EventError) and goes
//     on, the listener connects again, and once slots are free the pool
//     drains, every contact called once.
func TestPostgres_ServerFull(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a private PostgreSQL server")
	}
	t.Parallel()
	c := pgtest.NewCluster(t, "max_connections=8", "superuser_reserved_connections=0")
	ctx := context.Background()

	t.Run("Open", func(t *testing.T) {
		release := fillServer(t, c.URL)
		defer release()
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		start := time.Now()
		st, err := postgres.Open(octx, c.URL, postgres.Options{Schema: "full"})
		if err == nil {
			_ = st.Close()
		}
		require.Error(t, err)
		require.True(t, tooManyClients(err), "Open's error: %v", err)
		require.Less(t, time.Since(start), 2*time.Second, "Open failed after %v", time.Since(start))
		t.Logf("Open: %v", err)
	})

	t.Run("Running", func(t *testing.T) {
		// The backends of Open's connections, closed, exit.
		require.Eventually(t, func() bool {
			conn, err := pgx.Connect(ctx, c.URL)
			if err != nil {
				return false
			}
			defer conn.Close(ctx)
			var n int
			return conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'`).Scan(&n) == nil && n == 1
		}, 10*time.Second, 5*time.Millisecond)
		st := pgtest.Open(t, c.URL, postgres.Options{MaxConns: 2})
		eng := openEngine(t, st, queue.Options{LeaseTimeout: 10 * time.Second, RetryDelay: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond})
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "full", Description: "a full server", Type: pool.Parallel, MaxParallelItems: pqPtr(4)})
		require.NoError(t, err)
		const items = 40
		_, err = eng.Add(ctx, p.UUID, newItems(items)...)
		require.NoError(t, err)

		var mu sync.Mutex
		calls := map[uuid.UUID]int{}
		var refused, otherErrs atomic.Int64
		var otherErr atomic.Value
		wctx, stop := context.WithCancel(ctx)
		defer stop()
		workDone := make(chan error, 1)
		go func() {
			workDone <- eng.Work(wctx, func(hctx context.Context, l *queue.Lease) error {
				mu.Lock()
				calls[l.ContactUUID]++
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 4, OnEvent: func(ev queue.Event) {
				switch {
				case ev.Kind != queue.EventError:
				case tooManyClients(ev.Err):
					refused.Add(1)
				default:
					otherErrs.Add(1)
					otherErr.CompareAndSwap(nil, ev.Err)
				}
			}})
		}()
		completed := func() int {
			d, err := eng.Pool(ctx, p.UUID)
			if err != nil {
				return -1
			}
			return d.StatusCounts[pool.StatusCompleted]
		}
		require.Eventually(t, func() bool { return completed() >= 8 }, 10*time.Second, 5*time.Millisecond)

		// Take every slot, then end the store's sessions (the listener's
		// too) and take theirs as their backends exit, until this test's
		// connections hold every slot.
		admin, err := pgx.Connect(ctx, c.URL)
		require.NoError(t, err)
		var releases []func()
		for {
			releases = append(releases, fillServer(t, c.URL))
			var ours, max int
			require.NoError(t, admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FILTER (WHERE application_name LIKE 'poolq%'),
	count(*) FILTER (WHERE application_name NOT LIKE 'poolq%'), current_setting('max_connections')::int
FROM pg_stat_activity WHERE backend_type = 'client backend'`).Scan(new(int), &ours, &max))
			if ours == max {
				break
			}
			time.Sleep(time.Millisecond)
		}
		full := time.Now()

		// A call made now fails at once with the server's error (after
		// at most one failure for each connection of the store ended
		// above: one idle for less than a second is handed out unchecked).
		var addErrs []error
		for len(addErrs) <= 2 {
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			start := time.Now()
			_, err = eng.Add(actx, p.UUID, newItems(1)...)
			cancel()
			require.Error(t, err)
			require.Less(t, time.Since(start), time.Second, "Add failed after %v: %v", time.Since(start), err)
			addErrs = append(addErrs, err)
			if tooManyClients(err) {
				break
			}
		}
		require.True(t, tooManyClients(addErrs[len(addErrs)-1]), "Add's errors: %v", addErrs)
		time.Sleep(time.Second)
		before := completed()

		require.NoError(t, admin.Close(ctx))
		for _, r := range releases {
			r()
		}
		require.Eventually(t, func() bool { return completed() == items }, 20*time.Second, 10*time.Millisecond,
			"the pool drains once the server has room (completed %d of %d when it was full)", before, items)
		t.Logf("drained %v after the server was full for 1 s; %d EventErrors of 53300", time.Since(full).Round(time.Millisecond), refused.Load())
		require.Eventually(t, func() bool { return listeners(t, c.URL, st.Schema()) == 1 }, 10*time.Second, 10*time.Millisecond,
			"the listener listens again")
		stop()
		require.NoError(t, <-workDone)

		require.Positive(t, refused.Load(), "Work reports the refusals")
		if e := otherErr.Load(); e != nil {
			t.Logf("%d other EventErrors, the first: %v", otherErrs.Load(), e.(error))
		}
		require.Len(t, calls, items)
		for c, n := range calls {
			require.Equal(t, 1, n, "calls of %s", c)
		}
	})
}
