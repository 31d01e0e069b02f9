package queue_test

// TestPostgres_KillOneOfThree: three processes (this test binary
// re-executed) dial two pools of one PostgreSQL schema at once, a Parallel
// pool with a cap of 3 and a FIFO pool, and one of them is killed with
// SIGKILL mid-run while it holds leases. The two others go on and drain
// both pools. Every process logs each lease it receives and lets go, with
// the wall clock, and each settlement acknowledged; the parent then checks:
//
//   - the cap: at no instant were more leases held than the pool allows,
//     across the three processes (the killed one's leases held until they
//     were taken back, the store's LeaseGrace after their deadlines);
//   - FIFO order: the FIFO pool's items went out in insertion order (the
//     killed process's item excepted: it comes back after its lease);
//   - nothing acknowledged is lost: every acknowledged Complete is
//     Completed, with the token it was completed with;
//   - the killed process's leases came back after LeaseTimeout and the
//     store's LeaseGrace, and were dispatched again, never beyond the
//     ceiling.

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

const (
	pgKillEnvChild  = "POOLQ_PGKILL_CHILD"
	pgKillEnvSchema = "POOLQ_PGKILL_SCHEMA"
	pgKillEnvPools  = "POOLQ_PGKILL_POOLS" // parallel,fifo
	pgKillEnvLog    = "POOLQ_PGKILL_LOG"
	pgKillEnvSlow   = "POOLQ_PGKILL_SLOW" // set for the victim: its calls last 4× longer

	pgKillLease      = 2 * time.Second        // LeaseTimeout of the children
	pgKillGrace      = 500 * time.Millisecond // postgres.Options.LeaseGrace of the children
	pgKillCap        = 3
	pgKillMaxRetries = 2 // ceiling 3
	pgKillParallel   = 150
	pgKillFIFO       = 40
)

// TestPostgresKillChild is a child process of TestPostgres_KillOneOfThree;
// on its own it skips.
func TestPostgresKillChild(t *testing.T) {
	if os.Getenv(pgKillEnvChild) == "" {
		t.Skip("a child process of TestPostgres_KillOneOfThree")
	}
	ctx := context.Background()
	ids := strings.Split(os.Getenv(pgKillEnvPools), ",")
	par, fifo := uuid.MustParse(ids[0]), uuid.MustParse(ids[1])
	st, err := postgres.Open(ctx, os.Getenv(pgtest.EnvURL), postgres.Options{Schema: os.Getenv(pgKillEnvSchema), MaxConns: 4, LeaseGrace: pgKillGrace})
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{LeaseTimeout: pgKillLease, RetryDelay: time.Millisecond, PollInterval: 100 * time.Millisecond})
	require.NoError(t, err)
	defer eng.Close()
	f, err := os.OpenFile(os.Getenv(pgKillEnvLog), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	var mu sync.Mutex
	logf := func(format string, args ...any) { // one write per line: whole lines survive the kill
		mu.Lock()
		defer mu.Unlock()
		_, err := f.WriteString(fmt.Sprintf("%d ", time.Now().UnixNano()) + fmt.Sprintf(format, args...) + "\n")
		require.NoError(t, err)
	}
	drained := func(id uuid.UUID) bool {
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		c := d.StatusCounts
		return c[pool.StatusPending]+c[pool.StatusRetrying]+c[pool.StatusScheduled]+c[pool.StatusProcessing]+c[pool.StatusInCall] == 0
	}
	work := func(name string, id uuid.UUID, seed uint64, call time.Duration) {
		rng := rand.New(rand.NewPCG(seed, uint64(os.Getpid())))
		for {
			dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			l, err := eng.Dequeue(dctx, id)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				if drained(id) {
					return
				}
				continue
			}
			require.NoError(t, err, "dequeue")
			logf("start %s %s %d %d %d", name, l.ContactUUID, l.Token, l.Attempt, l.ExpiresAt.UnixNano())
			time.Sleep(call + time.Duration(rng.Int64N(int64(call))))
			logf("end %s %s %d", name, l.ContactUUID, l.Token)
			if name == "par" && rng.IntN(4) == 0 {
				require.NoError(t, eng.Fail(ctx, l, queue.Failure{Note: "busy"}), "fail")
				logf("ack fail %s %d", l.ContactUUID, l.Token)
				continue
			}
			require.NoError(t, eng.Complete(ctx, l, "answered"), "complete")
			logf("ack complete %s %d", l.ContactUUID, l.Token)
		}
	}
	// The victim's calls last longer, so that it holds a lease of each pool
	// at once for long stretches, however loaded the machine: with calls as
	// short as the others', under load it once drained its share of the
	// Parallel pool before the parent saw it hold both, and was never killed.
	slow := time.Duration(1)
	if os.Getenv(pgKillEnvSlow) != "" {
		slow = 4
	}
	var wg sync.WaitGroup
	wg.Go(func() { work("par", par, 1, slow*10*time.Millisecond) })
	wg.Go(func() { work("par", par, 2, slow*10*time.Millisecond) })
	wg.Go(func() { work("fifo", fifo, 3, slow*15*time.Millisecond) })
	wg.Wait()
}

// pgKillLine is one line of a child's log.
type pgKillLine struct {
	at      int64
	op      string // start, end, ack
	pool    string // par or fifo; for ack: complete or fail
	contact uuid.UUID
	token   int64
	attempt int
	expires int64
}

func readPgKillLog(t *testing.T, path string) []pgKillLine {
	t.Helper()
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out []pgKillLine
	r := bufio.NewReader(f)
	for {
		s, err := r.ReadString('\n')
		if err != nil {
			return out // a torn last line was never written whole
		}
		fs := strings.Fields(s)
		var l pgKillLine
		l.at, _ = strconv.ParseInt(fs[0], 10, 64)
		l.op, l.pool = fs[1], fs[2]
		l.contact = uuid.MustParse(fs[3])
		l.token, _ = strconv.ParseInt(fs[4], 10, 64)
		if l.op == "start" {
			l.attempt, _ = strconv.Atoi(fs[5])
			l.expires, _ = strconv.ParseInt(fs[6], 10, 64)
		}
		out = append(out, l)
	}
}

func TestPostgres_KillOneOfThree(t *testing.T) {
	url := pgtest.URL(t)
	if runtime.GOOS == "windows" {
		t.Skip("reads SIGKILL back from the victim's wait status: Unix only")
	}
	if os.Getenv(pgKillEnvChild) != "" {
		t.Skip("in a child")
	}
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	eng := openEngine(t, st, queue.Options{LeaseTimeout: pgKillLease})
	par, err := eng.CreatePool(ctx, pool.CreateParams{Name: "parallel", Description: "three dialers",
		Type: pool.Parallel, MaxParallelItems: pqPtr(pgKillCap), MaxRetries: pqPtr(pgKillMaxRetries)})
	require.NoError(t, err)
	fifo, err := eng.CreatePool(ctx, pool.CreateParams{Name: "fifo", Description: "three dialers, in order",
		Type: pool.FIFO, MaxRetries: pqPtr(pgKillMaxRetries)})
	require.NoError(t, err)
	_, err = eng.Add(ctx, par.UUID, newItems(pgKillParallel)...)
	require.NoError(t, err)
	fifoItems := newItems(pgKillFIFO)
	_, err = eng.Add(ctx, fifo.UUID, fifoItems...)
	require.NoError(t, err)
	order := map[uuid.UUID]int{}
	for i, it := range fifoItems {
		order[it.ContactUUID] = i
	}

	dir := t.TempDir()
	type child struct {
		cmd    *exec.Cmd
		log    string
		out    *crashOutput
		exited chan struct{}
	}
	var children []*child
	for i := range 3 {
		c := &child{log: filepath.Join(dir, fmt.Sprintf("child%d.log", i)), out: &crashOutput{}, exited: make(chan struct{})}
		c.cmd = exec.Command(os.Args[0], "-test.run=^TestPostgresKillChild$", "-test.v")
		c.cmd.Env = append(os.Environ(), pgKillEnvChild+"=1", pgKillEnvSchema+"="+st.Schema(),
			pgKillEnvPools+"="+par.UUID.String()+","+fifo.UUID.String(), pgKillEnvLog+"="+c.log)
		if i == 0 { // the victim
			c.cmd.Env = append(c.cmd.Env, pgKillEnvSlow+"=1")
		}
		c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
		require.NoError(t, c.cmd.Start())
		go func() { _ = c.cmd.Wait(); close(c.exited) }()
		t.Cleanup(func() { _ = c.cmd.Process.Kill(); <-c.exited })
		children = append(children, c)
	}

	// Kill child 0 once it holds a lease of each pool, after some work.
	victim := children[0]
	holds := func(lines []pgKillLine) map[string]int {
		open := map[string]int{}
		for _, l := range lines {
			switch l.op {
			case "start":
				open[l.pool]++
			case "end":
				open[l.pool]--
			}
		}
		return open
	}
	killed := waitUntil(time.Minute, func() bool {
		lines := readPgKillLog(t, victim.log)
		h := holds(lines)
		return len(lines) > 30 && h["par"] > 0 && h["fifo"] > 0
	})
	require.True(t, killed, "child 0 never held a lease of both pools:\n%s", victim.out.String())
	require.NoError(t, victim.cmd.Process.Signal(syscall.SIGKILL))
	<-victim.exited
	ws, _ := victim.cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, ws.Signaled() && ws.Signal() == syscall.SIGKILL, "child 0 ended with %v:\n%s", victim.cmd.ProcessState, victim.out.String())
	for i, c := range children[1:] {
		select {
		case <-c.exited:
			require.True(t, c.cmd.ProcessState.Success(), "child %d failed:\n%s", i+1, c.out.String())
		case <-time.After(3 * time.Minute):
			t.Fatalf("child %d did not drain the pools:\n%s", i+1, c.out.String())
		}
	}

	// The logs, each line with its process.
	type entry struct {
		pgKillLine
		child int
	}
	var all []entry
	for i, c := range children {
		for _, l := range readPgKillLog(t, c.log) {
			all = append(all, entry{l, i})
		}
	}
	slices.SortStableFunc(all, func(a, b entry) int { return cmp.Compare(a.at, b.at) })

	// The cap: leases held at once, per pool; a lease of the killed child
	// that it never let go is held until it expired.
	type key struct {
		contact uuid.UUID
		token   int64
	}
	ended := map[key]bool{}
	for _, e := range all {
		if e.op == "end" {
			ended[key{e.contact, e.token}] = true
		}
	}
	type event struct {
		at    int64
		delta int
		pool  string
	}
	var events []event
	var killedLeases []entry
	for _, e := range all {
		switch {
		case e.op == "start":
			events = append(events, event{e.at, 1, e.pool})
			if !ended[key{e.contact, e.token}] {
				require.Equal(t, 0, e.child, "only the killed child leaves leases open")
				// held until taken back: its deadline plus the grace
				events = append(events, event{e.expires + pgKillGrace.Nanoseconds(), -1, e.pool})
				killedLeases = append(killedLeases, e)
			}
		case e.op == "end":
			events = append(events, event{e.at, -1, e.pool})
		}
	}
	require.NotEmpty(t, killedLeases, "the killed child held no lease: the test proved nothing about expiry")
	slices.SortStableFunc(events, func(a, b event) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return a.delta - b.delta // a release before an acquire at the same instant
	})
	held, maxHeld := map[string]int{}, map[string]int{}
	for _, ev := range events {
		held[ev.pool] += ev.delta
		maxHeld[ev.pool] = max(maxHeld[ev.pool], held[ev.pool])
	}
	require.LessOrEqual(t, maxHeld["par"], pgKillCap, "leases of the Parallel pool held at once")
	require.Equal(t, 1, maxHeld["fifo"], "leases of the FIFO pool held at once")

	// FIFO order among the dispatches, the killed child's items excepted:
	// those whose call it never ended, and those whose settlement it may
	// not have made (killed between the end of the call and its ack: the
	// item then stays in flight until its lease expires, and is retried
	// after the next item, legitimately).
	settled := map[key]bool{}
	for _, e := range all {
		if e.op == "ack" {
			settled[key{e.contact, e.token}] = true
		}
	}
	killedContacts := map[uuid.UUID]bool{}
	for _, e := range killedLeases {
		killedContacts[e.contact] = true
	}
	for _, e := range all {
		if e.op == "start" && e.child == 0 && !settled[key{e.contact, e.token}] {
			killedContacts[e.contact] = true
		}
	}
	last := -1
	for _, e := range all {
		if e.op != "start" || e.pool != "fifo" || killedContacts[e.contact] {
			continue
		}
		require.Greater(t, order[e.contact], last, "FIFO: %s (item %d) dispatched after item %d", e.contact, order[e.contact], last)
		last = order[e.contact]
	}

	// The end state: every item terminal, none beyond the ceiling, every
	// acknowledged completion there, the killed leases dispatched again.
	items := map[uuid.UUID]pool.Item{}
	for _, id := range []uuid.UUID{par.UUID, fifo.UUID} {
		list := allItems(ctx, t, eng, id, 100)
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, countStatuses(list), d.StatusCounts, "status counts vs a recount")
		for _, it := range list {
			require.True(t, it.Status.Terminal(), "%s: %s after the drain", it.ContactUUID, it.Status)
			require.LessOrEqual(t, it.Attempts, pgKillMaxRetries+1, "%s: attempts beyond the ceiling", it.ContactUUID)
			items[it.ContactUUID] = it
		}
	}
	require.Len(t, items, pgKillParallel+pgKillFIFO)
	acked := 0
	for _, e := range all {
		if e.op == "ack" && e.pool == "complete" {
			acked++
			it := items[e.contact]
			require.Equal(t, pool.StatusCompleted, it.Status, "%s: acknowledged Complete", e.contact)
			require.Equal(t, e.token, it.Token, "%s: completed with token %d, dispatched again since", e.contact, e.token)
		}
	}
	// Every acknowledged Fail (never final here) there: on the item's last
	// attempt it is Failed with that lease's token, else the item was
	// dispatched again (all are terminal after the drain).
	attempts := map[key]int{}
	for _, e := range all {
		if e.op == "start" {
			attempts[key{e.contact, e.token}] = e.attempt
		}
	}
	failed := 0
	for _, e := range all {
		if e.op != "ack" || e.pool != "fail" {
			continue
		}
		failed++
		it, attempt := items[e.contact], attempts[key{e.contact, e.token}]
		require.NotZero(t, attempt, "%s: an acknowledged Fail of a lease never started (token %d)", e.contact, e.token)
		if attempt >= pgKillMaxRetries+1 {
			require.Equal(t, pool.StatusFailed, it.Status, "%s: acknowledged Fail of its last attempt", e.contact)
			require.Equal(t, e.token, it.Token, "%s: failed on its last attempt, dispatched again", e.contact)
			continue
		}
		require.Greater(t, it.Token, e.token, "%s: acknowledged Fail of attempt %d of %d (token %d) never retried (%s)",
			e.contact, attempt, pgKillMaxRetries+1, e.token, it.Status)
	}
	for _, e := range killedLeases {
		it := items[e.contact]
		if e.attempt >= pgKillMaxRetries+1 {
			// Its last attempt: the expiry is the failure that reaches the
			// ceiling, and the item is Failed, never dispatched again.
			require.Equal(t, pool.StatusFailed, it.Status, "%s: killed on its last attempt", e.contact)
			require.Equal(t, e.token, it.Token, "%s: killed on its last attempt, dispatched again", e.contact)
			continue
		}
		require.Greater(t, it.Token, e.token, "%s: the killed lease (token %d) was never dispatched again", e.contact, e.token)
		var redispatched []entry
		for _, o := range all {
			if o.op == "start" && o.contact == e.contact && o.token > e.token {
				redispatched = append(redispatched, o)
			}
		}
		require.NotEmpty(t, redispatched, "%s: no process received the item again", e.contact)
		require.GreaterOrEqual(t, redispatched[0].at, e.expires+pgKillGrace.Nanoseconds(),
			"%s: dispatched again before its lease's deadline plus the grace", e.contact)
		require.Equal(t, e.attempt+1, redispatched[0].attempt, "%s: the expiry counts as an attempt", e.contact)
	}
	t.Logf("%d log lines, %d acknowledged completions, %d failures; at most %d / %d leases held at once; %d leases of the killed process came back",
		len(all), acked, failed, maxHeld["par"], maxHeld["fifo"], len(killedLeases))
}
