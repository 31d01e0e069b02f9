package queue_test

// Tests of the store's listener between two connections (its pause, and
// Close meanwhile), written by a mutation review: each kills a plausible
// bug the other tests let through. They use postgres_listener_test.go's
// nodeProxy.

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// refusedCount is how many connections px has refused so far.
func refusedCount(px *nodeProxy) int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return len(px.refused)
}

// TestPostgres_CloseDuringListenerPause: while the server is unreachable
// the listener pauses between attempts, up to reconnectMax (2 s); Close
// (the engine's, then the store's) does not wait for the pause to end.
// It is called just after an attempt was refused, with the pause at its
// longest.
func TestPostgres_CloseDuringListenerPause(t *testing.T) {
	if testing.Short() {
		t.Skip("5 s of refused connections: -short leaves it out")
	}
	t.Parallel()
	px, waiter, _, wst, schema := nodesThroughProxy(t, queue.Options{PollInterval: time.Hour}, false)
	raw := pgtest.URL(t)
	awaitListeners(t, raw, schema)
	px.refuse.Store(true)
	px.cutListeners()
	// 10 ms doubling: the pause is 2 s from the attempt at about 2.6 s.
	time.Sleep(5 * time.Second)
	n := refusedCount(px)
	require.Eventually(t, func() bool { return refusedCount(px) > n }, 10*time.Second, time.Millisecond,
		"the listener tries again")
	t0 := time.Now()
	waiter.Close()
	require.NoError(t, wst.Close())
	took := time.Since(t0)
	t.Logf("closed in %v", took.Round(time.Millisecond))
	require.Less(t, took, time.Second, "Close waited for the listener's pause (2 s) to end")
}

// TestPostgres_ListenerUpLongRetriesAtOnce: a listener whose connection
// had been up for over twice ListenerIdle (a minute by default; here 6 s)
// connects again at once when it fails, not after the longest pause its
// earlier failures had grown to (2 s): the signals sent until it listens
// again are lost, and every waiter looks again late.
func TestPostgres_ListenerUpLongRetriesAtOnce(t *testing.T) {
	t.Parallel()
	const idle = 3 * time.Second
	px, _, _, _, schema := nodesThroughProxyWith(t, queue.Options{PollInterval: time.Hour}, false, postgres.Options{ListenerIdle: idle})
	raw := pgtest.URL(t)
	awaitListeners(t, raw, schema)
	// Failures for 4 s: the pause grows to 2 s.
	px.refuse.Store(true)
	px.cutListeners()
	time.Sleep(4 * time.Second)
	px.refuse.Store(false)
	awaitListeners(t, raw, schema, "the listener connects again")
	time.Sleep(2*idle + 2*time.Second) // up for over twice ListenerIdle, its pings answered
	before := listenerPids(t, raw, schema)
	px.cutListeners()
	t0 := time.Now()
	require.Eventually(t, func() bool {
		for _, pid := range listenerPids(t, raw, schema) {
			if !slices.Contains(before, pid) {
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "the listener connects again")
	took := time.Since(t0)
	t.Logf("listening again %v after the cut", took.Round(time.Millisecond))
	require.Less(t, took, time.Second, "the listener, up for over twice ListenerIdle, paused before connecting again")
}

// listenerPids returns the server processes of the listeners of schema
// that listen.
func listenerPids(t *testing.T, url, schema string) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity
WHERE application_name = $1 AND state = 'idle' AND (query LIKE 'LISTEN %' OR query = '-- ping')`, "poolq listener "+schema)
	require.NoError(t, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	return pids
}
