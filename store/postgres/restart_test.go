package postgres_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestCommitOutcome_ServerCrashed: the database server crashes while a
// write's COMMIT is under way (here a deferred trigger holds the COMMIT
// before its commit record, the write-ahead log of the transaction still
// in the server's memory), and comes back at once. The crash lost the
// transaction, and with it the server's count of the transaction ids it
// had handed out: the next transactions get the lost one's id again. The
// write, asking on another connection what became of its id, must not
// take another transaction's commit for its own: it returns an error, and
// never nil for a write that is not there, at Full durability too. The
// server crashes two ways: stopped in immediate mode and started again,
// and a backend killed (another session's), after which the postmaster
// ends every session and recovers by itself.
//
// wal_writer_delay is 10 s instead of 200 ms so that the server writes
// the log of the transaction only with a commit, as it does within 200 ms
// of a crash by default.
func TestCommitOutcome_ServerCrashed(t *testing.T) {
	t.Parallel()
	t.Run("Stopped", func(t *testing.T) {
		t.Parallel()
		commitLostInCrash(t, func(c *pgtest.Cluster) { c.Stop("immediate"); c.Start() })
	})
	t.Run("BackendKilled", func(t *testing.T) {
		t.Parallel()
		commitLostInCrash(t, func(c *pgtest.Cluster) {
			ctx := context.Background()
			victim, err := pgx.Connect(ctx, c.URL)
			require.NoError(t, err)
			witness, err := pgx.Connect(ctx, c.URL)
			require.NoError(t, err)
			backend, err := os.FindProcess(int(victim.PgConn().PID()))
			require.NoError(t, err)
			require.NoError(t, backend.Kill()) // SIGKILL
			_ = victim.Close(ctx)
			require.Eventually(t, func() bool { return witness.Ping(ctx) != nil }, 30*time.Second, 10*time.Millisecond,
				"the postmaster ends every session")
			_ = witness.Close(ctx)
			require.Eventually(t, func() bool { // the postmaster recovered
				conn, err := pgx.Connect(ctx, c.URL)
				if err == nil {
					_ = conn.Close(ctx)
				}
				return err == nil
			}, 30*time.Second, 10*time.Millisecond)
		})
	})
}

// commitLostInCrash runs TestCommitOutcome_ServerCrashed with crash, which
// crashes the server and returns once it is back.
func commitLostInCrash(t *testing.T, crash func(c *pgtest.Cluster)) {
	c := pgtest.NewCluster(t, "wal_writer_delay=10000")
	ctx := context.Background()
	st := pgtest.OpenSchema(t, c.URL, postgres.Options{Schema: "poolq", Durability: postgres.Full})
	slowCommits(c)

	p := newTestPool("lost in the crash")
	// Crash while the COMMIT sleeps in the trigger, and start again.
	written := insertUntilCommitSleeps(t, c, st, p)
	crash(c)

	// Other transactions, after the crash, as other nodes' writes.
	result := writeBesideOthers(t, c.URL, written)
	err := st.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
	if errors.Is(err, store.ErrNotFound) {
		require.Error(t, result, "the write returned nil (committed) but the crash lost it")
	} else {
		require.NoError(t, err)
	}
	t.Logf("the write returned %v", result)
}

// TestOpen_ServerRunUnreadable: a role that may not read when the server's
// statistics were reset (an administrator revoked the function from
// PUBLIC) still opens a Store and writes: the server's run is only left
// unknown (see TestCommitOutcome_ServerCrashed for what it is for).
func TestOpen_ServerRunUnreadable(t *testing.T) {
	t.Parallel()
	c := pgtest.NewCluster(t)
	ctx := context.Background()
	c.Exec(`REVOKE EXECUTE ON FUNCTION pg_stat_get_bgwriter_stat_reset_time() FROM PUBLIC`)
	c.Exec(`CREATE ROLE node LOGIN`)
	c.Exec(`GRANT CREATE ON DATABASE postgres TO node`)
	url := strings.Replace(c.URL, "postgres://postgres@", "postgres://node@", 1)
	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: "poolq"})
	p := newTestPool("unreadable run")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
}

// writeBesideOthers runs transactions at url, one a millisecond, as other
// nodes' writes would (each takes a transaction id, which a crashed server
// may hand out again), until the write under test returns on written
// (within 20 s), and returns its result.
func writeBesideOthers(t *testing.T, url string, written <-chan error) error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	deadline := time.After(20 * time.Second)
	for {
		select {
		case result := <-written:
			return result
		case <-deadline:
			t.Fatal("the write did not return")
			return nil
		default:
			_, err := conn.Exec(ctx, `SELECT pg_current_xact_id()`)
			require.NoError(t, err)
			time.Sleep(time.Millisecond)
		}
	}
}

// slowCommits makes the COMMIT of a transaction that inserted a pool in
// the cluster's schema poolq sleep 3 s (a deferred trigger).
func slowCommits(c *pgtest.Cluster) {
	c.Exec(`CREATE FUNCTION poolq.slow_commit() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN PERFORM pg_sleep(3); RETURN NULL; END$$`)
	c.Exec(`CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON poolq.pools
DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION poolq.slow_commit()`)
}

// insertUntilCommitSleeps inserts p with st in a goroutine and returns,
// with the channel of the write's result, once its COMMIT sleeps (see
// slowCommits).
func insertUntilCommitSleeps(t *testing.T, c *pgtest.Cluster, st *postgres.Store, p pool.Pool) <-chan error {
	t.Helper()
	ctx := context.Background()
	written := make(chan error, 1)
	go func() { written <- st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }) }()
	conn, err := pgx.Connect(ctx, c.URL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'`).Scan(&n))
		return n == 1
	}, 10*time.Second, 10*time.Millisecond)
	return written
}
