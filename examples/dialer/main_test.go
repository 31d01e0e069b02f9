package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/examples/internal/opendb"
	"github.com/poolq/poolq/internal/leakcheck"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	t.Parallel()
	testRun(t, filepath.Join(t.TempDir(), "dialer.db"))
}

// TestRun_Postgres is TestRun on PostgreSQL (POOLQ_TEST_POSTGRES), in a
// schema of its own.
func TestRun_Postgres(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	testRun(t, pgtest.WithParams(url, "schema="+pgtest.Schema(t, url)))
}

// TestRun_TwoAtOnce starts two dialers at once on one database, as the
// README's "Several nodes" does on PostgreSQL: they set up one set of
// pools, one campaign and one rule between them (each found by name, or
// made, under a lock they share), and no contact gets more calls than the
// rule allows.
func TestRun_TwoAtOnce(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testTwoAtOnce(t, filepath.Join(t.TempDir(), "dialer.db"))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		url := pgtest.URL(t)
		testTwoAtOnce(t, pgtest.WithParams(url, "schema="+pgtest.Schema(t, url)))
	})
}

func testTwoAtOnce(t *testing.T, db string) {
	ctx := context.Background()
	args := []string{"-db", db, "-contacts", "90", "-workers", "4", "-seed", "3"}
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			var out bytes.Buffer
			err := run(ctx, args, &out, &out)
			if err != nil {
				err = fmt.Errorf("%w\n%s", err, out.String())
			}
			errs <- err
		}()
	}
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)

	st, err := opendb.Open(ctx, db)
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	pg, err := eng.Pools(ctx, pool.PoolQuery{})
	require.NoError(t, err)
	require.Equal(t, 3, pg.Total, "one set of pools")
	cs, err := eng.Campaigns(ctx, campaign.Query{})
	require.NoError(t, err)
	require.Equal(t, 1, cs.Total, "one campaign")
	rs, err := eng.Rules(ctx, campaign.RuleQuery{})
	require.NoError(t, err)
	require.Equal(t, 1, rs.Total, "one rule")
	most, err := mostAttempts(ctx, eng, []uuid.UUID{pg.Data[0].UUID, pg.Data[1].UUID, pg.Data[2].UUID})
	require.NoError(t, err)
	require.LessOrEqual(t, most, ruleCalls, "the rule's calls a contact, across both dialers")
	for _, p := range pg.Data {
		require.Equal(t, 30, p.ContactsCount, "%s", p.Name)
	}
}

// testRun runs the dialer twice on db: every contact ends, the rule's
// ceiling holds, its do-not-call, opt-out and escalation checks show in
// the summary as in the file, the second run resumes.
func testRun(t *testing.T, db string) {
	ctx := context.Background()
	args := []string{"-db", db, "-contacts", "90", "-workers", "4", "-seed", "3"}

	var out bytes.Buffer
	require.NoError(t, run(ctx, args, &out, &out))
	require.Regexp(t, `Renewals \(FIFO\)\s+FIFO\s+contacts added\s+30, already there\s+0`, out.String())
	require.Regexp(t, `\d+ calls in .*calls/s`, out.String())
	require.Contains(t, out.String(), `campaign "Dialer demo" is In Process, rule "Two calls a contact": at most 2 calls per contact`)
	most := regexp.MustCompile(`most calls to one contact: (\d)`).FindStringSubmatch(out.String())
	require.NotNil(t, most, "output: %s", out.String())
	require.Contains(t, []string{"1", "2"}, most[1], "the rule's ceiling (2) holds, not the pools' (3)")
	require.Contains(t, out.String(), "do-not-call list: 2 demo contacts put on it before dialling (added 2, already there 0)\n")
	require.Regexp(t, `skipped for do-not-call:\s+2  \(`, out.String())
	require.Regexp(t, `skipped for opt-out:\s+1  \(remove_on_opt_out: contact `+optOutContact(config{seed: 3}).String()+
		` opted out after the first call: 1 waiting item skipped at once\)`, out.String())
	escs := regexp.MustCompile(`escalations recorded:\s+(\d+)  while it ran \(by any process\), (\d+) in all`).FindStringSubmatch(out.String())
	require.NotNil(t, escs, "output: %s", out.String())
	require.Equal(t, escs[1], escs[2], "the first run records them all")

	// Every contact ended in a terminal status, and the table says so.
	st, err := opendb.Open(ctx, db)
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	pg, err := eng.Pools(ctx, pool.PoolQuery{})
	require.NoError(t, err)
	require.Equal(t, 3, pg.Total)
	// The first contact of each pool is skipped: on the do-not-call list
	// (FIFO, Parallel) or opted out (LIFO).
	skippedAs := map[pool.Type]string{pool.FIFO: campaign.NoteDNC, pool.LIFO: campaign.NoteOptOut, pool.Parallel: campaign.NoteDNC}
	escalated := 0 // items whose two calls failed
	for _, p := range pg.Data {
		d, err := eng.Pool(ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 30, d.ContactsCount)
		done := d.StatusCounts[pool.StatusCompleted] + d.StatusCounts[pool.StatusFailed] + d.StatusCounts[pool.StatusSkipped]
		require.Equal(t, 30, done, "%s: %v", p.Name, d.StatusCounts)
		require.Equal(t, 1, d.StatusCounts[pool.StatusSkipped], "%s: %v", p.Name, d.StatusCounts)
		row := regexp.MustCompile(regexp.QuoteMeta(p.Name) + `\s+` + string(p.Type) + `\s+(\d+)\s+(\d+)\s+(\d+)`).FindStringSubmatch(out.String())
		require.NotNil(t, row, "summary row of %s", p.Name)
		require.Equal(t, strconv.Itoa(d.StatusCounts[pool.StatusCompleted]), row[1])
		require.Equal(t, strconv.Itoa(d.StatusCounts[pool.StatusFailed]), row[2])
		require.Equal(t, strconv.Itoa(d.StatusCounts[pool.StatusSkipped]), row[3])

		items, err := eng.Items(ctx, p.UUID, pool.ItemQuery{PerPage: pool.MaxPerPage})
		require.NoError(t, err)
		idx := -1 // the pool's index in pools
		for i, spec := range pools {
			if spec.name == p.Name {
				idx = i
			}
		}
		require.Equal(t, contactID(3, idx, 0), items.Data[0].ContactUUID, "%s: listed in insertion order", p.Name)
		for i, it := range items.Data {
			if i == 0 {
				require.Equal(t, pool.StatusSkipped, it.Status, "%s", p.Name)
				require.Equal(t, skippedAs[p.Type], it.Notes, "%s", p.Name)
				require.Zero(t, it.Attempts, "%s: never dialled", p.Name)
				continue
			}
			require.NotEqual(t, pool.StatusSkipped, it.Status, "%s: %v", p.Name, it)
			if it.Status == pool.StatusFailed && it.Attempts >= escalateAfter {
				escalated++
			}
		}
	}
	// Every item whose calls all failed, and only those, escalated once.
	all, err := eng.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Equal(t, escs[1], strconv.Itoa(len(all)), "the summary counts what the file holds")
	require.Equal(t, escalated, len(all))
	require.NotZero(t, escalated, "with 90 contacts, some calls fail twice: output: %s", out.String())
	for _, e := range all {
		require.Equal(t, escalationType, e.Type)
		require.Equal(t, escalationTarget, e.Target)
		require.Equal(t, escalateAfter, e.FailedAttempts)
		it, err := eng.Item(ctx, e.PoolUUID, e.ContactUUID)
		require.NoError(t, err)
		require.Equal(t, it.ID, e.ItemID)
		require.Equal(t, pool.StatusFailed, it.Status)
	}
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())

	// A second run resumes: the same pools, no contact added twice.
	out.Reset()
	require.NoError(t, run(ctx, args, &out, &out))
	require.Regexp(t, `Renewals \(FIFO\)\s+FIFO\s+contacts added\s+0, already there\s+30`, out.String())
	require.Regexp(t, `0 calls in`, out.String())
	require.Contains(t, out.String(), `campaign "Dialer demo" is In Process`)
	require.Contains(t, out.String(), "(added 0, already there 2)")
	require.Regexp(t, `skipped for do-not-call:\s+2  \(`, out.String())
	require.Regexp(t, `skipped for opt-out:\s+1  \(remove_on_opt_out: no opt-out this run`, out.String())
	require.Regexp(t, `escalations recorded:\s+0  while it ran \(by any process\), `+escs[2]+` in all`, out.String())
}

func TestParse(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	_, err := parse([]string{"-contacts", "2"}, &out)
	require.ErrorContains(t, err, "-contacts")
	_, err = parse([]string{"-workers", "0"}, &out)
	require.ErrorContains(t, err, "-workers")
	_, err = parse([]string{"-nope"}, &out)
	require.Error(t, err)
	c, err := parse(nil, &out)
	require.NoError(t, err)
	require.Equal(t, "poolq-dialer.db", c.db)
	require.Equal(t, 3000, c.contacts)
}

// TestMain runs main itself when the dialer's arguments are in
// POOLQ_DIALER_ARGS: a test starts the test binary as the dialer's process.
func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv("POOLQ_DIALER_ARGS"); ok {
		os.Args = append([]string{"dialer"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	leakcheck.Main(m) // fails a run that left a store open
}

// TestMain_SIGTERM: a service manager stops the dialer with SIGTERM; it
// stops as on Ctrl-C: no new call, the calls under way end, nothing is
// left in flight in the file, and it says it did not finish.
func TestMain_SIGTERM(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("stops the dialer with SIGTERM, which Windows cannot send: Unix only")
	}
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "dialer.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "POOLQ_DIALER_ARGS=-db "+db+" -contacts 3000 -workers 4")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	inFlight := func(eng *queue.Engine) (calls, flying int) {
		pg, err := eng.Pools(ctx, pool.PoolQuery{})
		require.NoError(t, err)
		for _, p := range pg.Data {
			d, err := eng.Pool(ctx, p.UUID)
			require.NoError(t, err)
			calls += d.StatusCounts[pool.StatusCompleted] + d.StatusCounts[pool.StatusRetrying] + d.StatusCounts[pool.StatusFailed]
			flying += d.StatusCounts[pool.StatusProcessing] + d.StatusCounts[pool.StatusInCall]
		}
		return calls, flying
	}
	open := func() (*queue.Engine, func()) {
		st, err := opendb.Open(ctx, db)
		require.NoError(t, err)
		eng, err := queue.New(st, queue.Options{})
		require.NoError(t, err)
		return eng, func() { eng.Close(); st.Close() }
	}
	// Wait until it dials, then stop it.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("the dialer exited before the signal: %v\n%s", err, out.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "the dialer did not start dialling")
		if _, err := os.Stat(db); err != nil {
			continue
		}
		eng, closeAll := open()
		calls, flying := inFlight(eng)
		closeAll()
		if calls > 0 && flying > 0 {
			break
		}
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	var err error
	select {
	case err = <-exited:
	case <-time.After(time.Minute):
		t.Fatal("the dialer did not stop on SIGTERM")
	}
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "output: %s", out.String())
	require.Equal(t, 1, exit.ExitCode(), "an exit of its own, not the signal's: %s", out.String())
	require.Contains(t, out.String(), "dialer: not finished: context canceled")

	eng, closeAll := open()
	defer closeAll()
	calls, flying := inFlight(eng)
	require.NotZero(t, calls)
	require.Zero(t, flying, "items left in flight")
}
