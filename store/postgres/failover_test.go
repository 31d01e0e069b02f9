package postgres_test

// A failover: the primary of a private cluster crashes and its streaming
// standby (pgtest.Cluster.Standby) is promoted. poolq does not follow a
// failover by itself; a URL naming both servers with
// target_session_attrs=read-write does (pgx tries the hosts in turn).

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestCommitOutcome_Failover: the primary crashes while a write's COMMIT
// is under way (a deferred trigger holds it before its commit record, as
// in TestCommitOutcome_ServerCrashed), and its standby is promoted. The
// Store, on a URL naming both servers, asks the new primary what became
// of the transaction's id, which the standby never saw committed and
// hands out again to the transactions that follow (other nodes' writes).
// The write must not take another transaction's commit for its own: it
// returns an error, and never nil for a write that is not there. (The
// server's run, read on each connection, is another server's: see
// serverRun.)
//
// RunUnreadable: so it is for a role that may not read when the server's
// statistics were reset (see TestOpen_ServerRunUnreadable).
func TestCommitOutcome_Failover(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) { t.Parallel(); commitLostInFailover(t, false) })
	t.Run("RunUnreadable", func(t *testing.T) { t.Parallel(); commitLostInFailover(t, true) })
}

// commitLostInFailover runs TestCommitOutcome_Failover, as a role that may
// not read the statistics' reset time when unreadable.
func commitLostInFailover(t *testing.T, unreadable bool) {
	c := pgtest.NewCluster(t, "wal_writer_delay=10000")
	if unreadable {
		c.Exec(`REVOKE EXECUTE ON FUNCTION pg_stat_get_bgwriter_stat_reset_time() FROM PUBLIC`)
		c.Exec(`CREATE ROLE node LOGIN`)
		c.Exec(`GRANT CREATE ON DATABASE postgres TO node`)
	}
	sb := c.Standby()
	url := c.FailoverURL(sb)
	if unreadable {
		url = strings.Replace(url, "postgres://postgres@", "postgres://node@", 1)
	}
	ctx := context.Background()
	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: "poolq", Durability: postgres.Full})
	slowCommits(c)
	c.CaughtUp(sb)

	p := newTestPool("lost in the failover")
	written := insertUntilCommitSleeps(t, c, st, p)
	c.Stop("immediate")
	sb.Promote()

	// Other transactions on the new primary, as other nodes' writes.
	result := writeBesideOthers(t, sb.URL, written)
	t.Logf("the write returned %v", result)
	err := st.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
	require.ErrorIs(t, err, store.ErrNotFound, "the standby never saw the commit")
	require.Error(t, result, "the write returned nil (committed) but the failover lost it")
}

// TestFailover_AsyncStandbyLosesAcknowledged: Full durability flushes a
// commit to the primary's own disk and waits for no standby unless the
// server's synchronous_standby_names names it. A write acknowledged while
// the standby is behind (here: stopped) is lost when the primary crashes
// and the standby is promoted. With the standby named in
// synchronous_standby_names, a write acknowledged is on the standby, and
// survives the failover.
func TestFailover_AsyncStandbyLosesAcknowledged(t *testing.T) {
	t.Parallel()
	for _, sync := range []bool{false, true} {
		t.Run(map[bool]string{false: "Async", true: "Sync"}[sync], func(t *testing.T) {
			t.Parallel()
			c := pgtest.NewCluster(t)
			sb := c.Standby()
			ctx := context.Background()
			st := pgtest.OpenSchema(t, c.URL, postgres.Options{Schema: "poolq", Durability: postgres.Full})
			if sync {
				c.Exec(`ALTER SYSTEM SET synchronous_standby_names = 'standby'`)
				c.Exec(`SELECT pg_reload_conf()`)
			}
			before := newTestPool("replicated")
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, before) }))
			c.CaughtUp(sb)
			if !sync {
				sb.Stop("fast") // behind from now on, as a standby that lags
			}
			acked := newTestPool("acknowledged")
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, acked) }))
			c.Stop("immediate")
			if !sync {
				sb.Start()
			}
			sb.Promote()

			after := pgtest.OpenSchema(t, sb.URL, postgres.Options{Schema: "poolq"})
			readPool := func(id uuid.UUID) error {
				return after.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, id); return err })
			}
			require.NoError(t, readPool(before.UUID), "a write the standby had replayed")
			err := readPool(acked.UUID)
			if sync {
				require.NoError(t, err, "a write acknowledged with a synchronous standby")
				return
			}
			require.True(t, errors.Is(err, store.ErrNotFound), "an acknowledged write the asynchronous standby never had: %v", err)
		})
	}
}
