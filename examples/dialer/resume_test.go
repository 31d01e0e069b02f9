package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestSetup_FindsItsRuleByExactName: on a database that already holds a
// rule whose name contains the demo's ("Two calls a contact, evenings
// only", another campaign's), the dialer makes its own rule, and neither
// changes nor dials under the other (a search matches parts of names).
func TestSetup_FindsItsRuleByExactName(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dialer.db")

	st, err := opendb.Open(ctx, db)
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	five := 5
	other, err := eng.CreateRule(ctx, campaign.CreateRuleParams{
		Name: "Two calls a contact, evenings only", MaxTotalCalls: &five,
	})
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())

	var out bytes.Buffer
	err = run(ctx, []string{"-db", db, "-contacts", "30", "-workers", "4", "-seed", "3", "-timeout", "3s"}, &out, &out)
	t.Logf("run: %v\n%s", err, out.String())

	st, err = opendb.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	eng, err = queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	after, err := eng.Rule(ctx, other.UUID)
	require.NoError(t, err)
	require.Contains(t, out.String(), `rule "Two calls a contact": at most 2 calls per contact`,
		"the dialer dials under another rule")
	require.Equal(t, other, after, "the dialer changed another rule")
}

// TestRun_ResumesAfterSIGKILL: a dialer killed with calls in flight is
// run again on its database and finishes within its default -timeout: the
// killed calls come back when their lease ends (on PostgreSQL, the store's
// LeaseGrace later) and are retried after the rule's retry interval. It
// takes about 75 s on SQLite, 135 s on PostgreSQL, where the default
// -timeout was too short (2 minutes then).
func TestRun_ResumesAfterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process; skipped with -short (CI's race run, after the plain run has run it)")
	}
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		resumesAfterSIGKILL(t, filepath.Join(t.TempDir(), "dialer.db"))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		resumesAfterSIGKILL(t, pgtest.WithParams(url, "schema="+pgtest.Schema(t, url)))
	})
}

func resumesAfterSIGKILL(t *testing.T, db string) {
	ctx := context.Background()
	args := "-db " + db + " -contacts 600 -workers 4"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POOLQ_DIALER_ARGS="+args)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// Wait until it has calls in flight, then SIGKILL it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the dialer did not start dialling")
		if !opendb.IsPostgres(db) {
			if _, err := os.Stat(db); err != nil {
				continue
			}
		}
		st, err := opendb.Open(ctx, db)
		if err != nil {
			continue
		}
		eng, err := queue.New(st, queue.Options{})
		require.NoError(t, err)
		flying := 0
		if pg, err := eng.Pools(ctx, pool.PoolQuery{}); err == nil {
			for _, p := range pg.Data {
				if d, err := eng.Pool(ctx, p.UUID); err == nil {
					flying += d.StatusCounts[pool.StatusProcessing] + d.StatusCounts[pool.StatusInCall]
				}
			}
		}
		eng.Close()
		st.Close()
		if flying > 0 {
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	killed := dialerItems(t, db) // what the killed dialer had written

	// Run it again, with the default -timeout: 10 s for the dead
	// process's leases to end (70 s on PostgreSQL), a minute for their
	// retries, and some: a minute more if the retries come due in
	// 23:59-24:00 UTC, the one minute the demo's window leaves out.
	var out bytes.Buffer
	start := time.Now()
	err := run(ctx, strings.Fields(args), &out, &out)
	require.NoError(t, err, "the run after a crash did not finish (%v):\n%s", time.Since(start).Round(time.Second), lastLines(out.String(), 12))

	// Nothing the killed dialer wrote is lost or done again, every item is
	// terminal, and no contact got more calls than the rule allows.
	after := dialerItems(t, db)
	calls := map[uuid.UUID]int{}
	for id, it := range after {
		require.True(t, it.Status.Terminal(), "item %d: %s after the run", id, it.Status)
		calls[it.ContactUUID] += it.Attempts
		require.LessOrEqual(t, calls[it.ContactUUID], ruleCalls, "contact %s: more calls than the rule's max_total_calls", it.ContactUUID)
	}
	for id, it := range killed {
		if it.Status.Terminal() {
			require.Equal(t, it.Status, after[id].Status, "item %d: terminal before the second run", id)
			require.Equal(t, it.Token, after[id].Token, "item %d: terminal before the second run, dispatched again", id)
			require.Equal(t, it.Attempts, after[id].Attempts, "item %d", id)
		}
	}
}

// dialerItems returns the items of every pool of db, by ID.
func dialerItems(t *testing.T, db string) map[int64]pool.Item {
	t.Helper()
	ctx := context.Background()
	st, err := opendb.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	pg, err := eng.Pools(ctx, pool.PoolQuery{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	require.Len(t, pg.Data, len(pools))
	out := map[int64]pool.Item{}
	for _, p := range pg.Data {
		for page := 1; ; page++ {
			ip, err := eng.Items(ctx, p.UUID, pool.ItemQuery{Page: page, PerPage: pool.MaxPerPage})
			require.NoError(t, err)
			for _, it := range ip.Data {
				out[it.ID] = it
			}
			if page >= ip.LastPage {
				break
			}
		}
	}
	return out
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}
