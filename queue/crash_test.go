package queue_test

// TestCrash kills a real process with SIGKILL while it adds, dispatches and
// settles items on a file store, then reopens the file and checks that
// nothing the child was told had succeeded is lost, that nothing was
// dispatched beyond its ceiling, that the counts are consistent, and that the
// items in flight at the kill come back (as failed attempts) once their
// leases expire.
//
// The child is this test binary re-executed with -test.run=^TestCrashChild$
// and POOLQ_CRASH_CHILD=1. After every engine call that returns successfully
// it appends a line to an acknowledgement log (written and fsync'd) saying
// what was acknowledged; the parent checks the database against that log.
//
// By default it runs 3 kill rounds (skipped with -short). More rounds:
//
//	POOLQ_CRASH_ROUNDS=50 go test -race -run '^TestCrash$' -v ./queue

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite" // database/sql driver "sqlite", for PRAGMA integrity_check
)

const (
	crashEnvChild  = "POOLQ_CRASH_CHILD"
	crashEnvDB     = "POOLQ_CRASH_DB"
	crashEnvAck    = "POOLQ_CRASH_ACK"
	crashEnvPool   = "POOLQ_CRASH_POOL"
	crashEnvOffset = "POOLQ_CRASH_CLOCK_OFFSET"
	crashEnvSeed   = "POOLQ_CRASH_SEED"
	crashEnvRounds = "POOLQ_CRASH_ROUNDS"

	crashLease      = time.Hour             // the child's LeaseTimeout: no lease expires while it runs
	crashRetryDelay = 10 * time.Millisecond // failed items come back quickly
	crashCap        = 4                     // max_parallel_items of the Parallel pool
	crashMaxRetries = 2                     // ceiling 3
	crashRoundSpan  = 3 * crashLease        // clock offset between child rounds
	crashMaxLife    = 3 * time.Minute       // a child that outlives this exits by itself
)

// TestCrashChild is the child process of TestCrash; on its own it skips.
func TestCrashChild(t *testing.T) {
	if os.Getenv(crashEnvChild) != "1" {
		t.Skip("the child process of TestCrash")
	}
	ctx := context.Background()
	offset, err := time.ParseDuration(os.Getenv(crashEnvOffset))
	require.NoError(t, err)
	seed, err := strconv.ParseUint(os.Getenv(crashEnvSeed), 10, 64)
	require.NoError(t, err)
	poolID, err := uuid.Parse(os.Getenv(crashEnvPool))
	require.NoError(t, err)
	st, err := sqlite.Open(ctx, os.Getenv(crashEnvDB), sqlite.Options{CheckCache: true}) // default durability: Normal
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{
		LeaseTimeout: crashLease,
		RetryDelay:   crashRetryDelay,
		Now:          func() time.Time { return time.Now().Add(offset) },
	})
	require.NoError(t, err)
	ack, err := os.OpenFile(os.Getenv(crashEnvAck), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	acknowledge := func(format string, args ...any) {
		_, err := ack.WriteString(fmt.Sprintf(format, args...) + "\n")
		require.NoError(t, err)
		require.NoError(t, ack.Sync())
	}

	rng := rand.New(rand.NewPCG(seed, 1))
	start, parent := time.Now(), os.Getppid()
	var (
		held  []*queue.Lease
		mine  []uuid.UUID // contacts this child added, re-added sometimes as duplicates
		count int
	)
	acknowledge("start")
	for time.Since(start) < crashMaxLife && os.Getppid() == parent {
		d, err := eng.Pool(ctx, poolID)
		require.NoError(t, err)
		if d.StatusCounts[pool.StatusPending]+d.StatusCounts[pool.StatusRetrying]+d.StatusCounts[pool.StatusScheduled] < 12 {
			var batch []pool.NewItem
			for range 1 + rng.IntN(6) {
				count++
				batch = append(batch, pool.NewItem{ContactUUID: uuid.New(), Priority: rng.IntN(3),
					Payload: []byte(fmt.Sprintf(`{"n":%d}`, count))})
			}
			if len(mine) > 0 && rng.IntN(3) == 0 {
				batch = append(batch, pool.NewItem{ContactUUID: mine[rng.IntN(len(mine))]}) // skipped
			}
			_, err := eng.Add(ctx, poolID, batch...)
			require.NoError(t, err, "add")
			for _, n := range batch {
				acknowledge("add %s", n.ContactUUID)
				mine = append(mine, n.ContactUUID)
			}
		}
		if len(held) < crashCap {
			ls, err := queue.TryDequeueN(ctx, eng, poolID, 1+rng.IntN(3))
			if err != nil && !isOneOf(err, queue.ErrEmpty, queue.ErrAtCapacity) {
				require.NoError(t, err, "dequeue")
			}
			for _, l := range ls {
				require.LessOrEqual(t, l.Attempt, crashMaxRetries+1, "dispatched beyond the ceiling")
				acknowledge("dispatch %s %d %d", l.ContactUUID, l.Token, l.Attempt)
				held = append(held, l)
			}
		}
		// Settle some of what is held, keep the rest in flight.
		var keep []*queue.Lease
		for _, l := range held {
			if rng.IntN(2) == 0 {
				keep = append(keep, l)
				continue
			}
			switch r := rng.IntN(20); {
			case r < 9:
				require.NoError(t, eng.Complete(ctx, l, "answered"), "complete")
				acknowledge("complete %s %d %d", l.ContactUUID, l.Token, l.Attempt)
			case r < 16:
				f := queue.Failure{Final: r == 15, Note: "busy"}
				if r < 11 {
					f.RetryAt = time.Now().Add(offset + 5*time.Millisecond)
				}
				require.NoError(t, eng.Fail(ctx, l, f), "fail")
				acknowledge("fail %s %d %d %v", l.ContactUUID, l.Token, l.Attempt, f.Final)
			case r < 18 && l.Item.Status == pool.StatusInCall:
				// A connected call is an attempt made: not given back.
				require.ErrorIs(t, eng.Release(ctx, l), queue.ErrWrongStatus, "release in call")
				keep = append(keep, l)
			case r < 18:
				require.NoError(t, eng.Release(ctx, l), "release")
				acknowledge("release %s %d %d", l.ContactUUID, l.Token, l.Attempt)
			default:
				require.NoError(t, eng.MarkInCall(ctx, l), "mark in call")
				acknowledge("incall %s %d %d", l.ContactUUID, l.Token, l.Attempt)
				keep = append(keep, l)
			}
		}
		held = keep
	}
	t.Log("child lived too long or lost its parent; exiting")
}

// crashAck is one acknowledged change.
type crashAck struct {
	op      string // add, dispatch, complete, fail, release, incall
	contact uuid.UUID
	token   int64
	attempt int
	final   bool
}

// readCrashAcks parses the acknowledgement log; a torn last line (no
// newline) was never acknowledged and is ignored.
func readCrashAcks(t *testing.T, path string) []crashAck {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []crashAck
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			break // EOF, with or without a torn line
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] == "start" {
			continue
		}
		a := crashAck{op: fields[0]}
		a.contact, err = uuid.Parse(fields[1])
		require.NoError(t, err, "ack line %q", line)
		if a.op != "add" {
			a.token, err = strconv.ParseInt(fields[2], 10, 64)
			require.NoError(t, err, "ack line %q", line)
			a.attempt, err = strconv.Atoi(fields[3])
			require.NoError(t, err, "ack line %q", line)
			if a.op == "fail" {
				a.final = fields[4] == "true"
			}
		}
		out = append(out, a)
	}
	return out
}

// crashIntegrity runs PRAGMA integrity_check on its own connection.
func crashIntegrity(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	var res string
	require.NoError(t, db.QueryRow("PRAGMA integrity_check").Scan(&res))
	require.Equal(t, "ok", res, "integrity_check of %s", path)
}

// crashOpen opens the file with an engine whose clock is time.Now() + *offset.
func crashOpen(t *testing.T, path string, offset *time.Duration) (*sqlite.Store, *queue.Engine) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{CheckCache: true})
	require.NoError(t, err, "reopen %s after the kill", path)
	eng, err := queue.New(st, queue.Options{
		LeaseTimeout: crashLease,
		RetryDelay:   crashRetryDelay,
		Now:          func() time.Time { return time.Now().Add(*offset) },
	})
	require.NoError(t, err)
	return st, eng
}

// crashCheckConsistent checks what holds at any time: counts agree with a
// recount and sum to contacts_count, no item has more attempts than the
// ceiling.
func crashCheckConsistent(t *testing.T, eng *queue.Engine, poolID uuid.UUID) []pool.Item {
	t.Helper()
	ctx := context.Background()
	items := allItems(ctx, t, eng, poolID, 100)
	d, err := eng.Pool(ctx, poolID)
	require.NoError(t, err)
	require.Equal(t, len(items), d.ContactsCount, "contacts_count")
	require.Equal(t, countStatuses(items), d.StatusCounts, "status_counts vs a recount of the items")
	for _, it := range items {
		require.LessOrEqual(t, it.Attempts, crashMaxRetries+1, "contact %s: attempts beyond the ceiling", it.ContactUUID)
		require.GreaterOrEqual(t, it.Attempts, 0, "contact %s: negative attempts", it.ContactUUID)
		require.True(t, it.Status.Valid(), "contact %s: status %q", it.ContactUUID, it.Status)
	}
	return items
}

// crashCheckAcks checks the database against every acknowledged change.
func crashCheckAcks(t *testing.T, items []pool.Item, acks []crashAck) {
	t.Helper()
	byContact := map[uuid.UUID]pool.Item{}
	for _, it := range items {
		byContact[it.ContactUUID] = it
	}
	fails := map[uuid.UUID]int{}
	for _, a := range acks {
		it, ok := byContact[a.contact]
		require.True(t, ok, "acknowledged add of %s is lost", a.contact)
		if a.op == "add" {
			continue
		}
		require.GreaterOrEqual(t, it.Token, a.token, "%s: acknowledged %s with token %d, the item's token is %d", a.contact, a.op, a.token, it.Token)
		same := it.Token == a.token // no later dispatch of the item
		switch a.op {
		case "complete":
			require.True(t, same, "%s: completed (token %d) but dispatched again (token %d)", a.contact, a.token, it.Token)
			require.Equal(t, pool.StatusCompleted, it.Status, "%s: acknowledged Complete", a.contact)
		case "fail":
			if !a.final && a.attempt < crashMaxRetries+1 {
				fails[a.contact]++ // a failure that scheduled a retry
			}
			if a.final || a.attempt >= crashMaxRetries+1 {
				require.True(t, same, "%s: failed for good (token %d) but dispatched again (token %d)", a.contact, a.token, it.Token)
				require.Equal(t, pool.StatusFailed, it.Status, "%s: acknowledged final Fail", a.contact)
			} else if same {
				require.Contains(t, []pool.Status{pool.StatusRetrying, pool.StatusScheduled}, it.Status, "%s: acknowledged Fail with attempts left", a.contact)
			}
		case "release":
			if same {
				require.Contains(t, []pool.Status{pool.StatusPending, pool.StatusRetrying}, it.Status, "%s: acknowledged Release", a.contact)
			}
		case "incall":
			if same {
				require.NotEqual(t, pool.StatusProcessing, it.Status, "%s: acknowledged MarkInCall", a.contact)
			}
		}
		// A dispatch is durable through the token check above: the item
		// may be anywhere since (a settlement can commit and the child die
		// before acknowledging it).
	}
	for c, n := range fails {
		require.GreaterOrEqual(t, byContact[c].RetryCount, n, "%s: retry_count below the acknowledged retries", c)
		require.LessOrEqual(t, byContact[c].RetryCount, crashMaxRetries, "%s: retry_count above max_retries", c)
	}
}

func TestCrash(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("reads SIGKILL back from the child's wait status: Unix only")
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	if os.Getenv(crashEnvChild) == "1" {
		t.Skip("in the child")
	}
	t.Parallel()
	rounds, _ := crashRounds(t, 3)
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, ackPath := filepath.Join(dir, "crash.db"), filepath.Join(dir, "ack.log")
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d, %d rounds", seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 2))

	var offset time.Duration
	st, eng := crashOpen(t, dbPath, &offset)
	p, err := eng.CreatePool(ctx, pool.CreateParams{
		Name: "crash", Description: "killed mid-run", Type: pool.Parallel,
		MaxParallelItems: pqPtr(crashCap), MaxRetries: pqPtr(crashMaxRetries),
	})
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())

	reclaimedTotal := 0
	for round := range rounds {
		childOffset := time.Duration(round) * crashRoundSpan
		before := len(readCrashAcksOrEmpty(t, ackPath))

		// Let the child get going, then kill it at a random moment.
		crashKillChild(t, round, "^TestCrashChild$", []string{
			crashEnvChild + "=1", crashEnvDB + "=" + dbPath, crashEnvAck + "=" + ackPath,
			crashEnvPool + "=" + p.UUID.String(), crashEnvOffset + "=" + childOffset.String(),
			crashEnvSeed + "=" + strconv.FormatUint(seed+uint64(round), 10),
		}, func() bool { return len(readCrashAcksOrEmpty(t, ackPath)) > before+5 },
			time.Duration(200+rng.IntN(600))*time.Millisecond)
		dropTornLine(t, ackPath)

		// The file is sound and opens.
		crashIntegrity(t, dbPath)
		offset = childOffset + 2*crashLease // past every lease the child took
		st, eng := crashOpen(t, dbPath, &offset)
		acks := readCrashAcks(t, ackPath)
		items := crashCheckConsistent(t, eng, p.UUID)
		crashCheckAcks(t, items, acks)

		// The items in flight at the kill come back as failed attempts.
		inFlight := map[uuid.UUID]pool.Item{}
		for _, it := range items {
			if it.Status.InFlight() {
				inFlight[it.ContactUUID] = it
			}
		}
		l, err := eng.TryDequeue(ctx, p.UUID) // applies the expired leases first
		if err == nil {
			_, wasInFlight := inFlight[l.ContactUUID]
			require.False(t, wasInFlight, "an expired item is dispatched again at once (it must wait RetryDelay)")
			require.NoError(t, eng.Release(ctx, l), "give the probe's lease back")
		} else {
			require.ErrorIs(t, err, queue.ErrEmpty)
		}
		after := crashCheckConsistent(t, eng, p.UUID)
		for _, it := range after {
			was, ok := inFlight[it.ContactUUID]
			if !ok {
				continue
			}
			want := pool.StatusRetrying
			if was.Attempts >= crashMaxRetries+1 {
				want = pool.StatusFailed
			}
			require.Equal(t, want, it.Status, "%s: in flight at the kill (attempt %d), after its lease expired", it.ContactUUID, was.Attempts)
			if want == pool.StatusRetrying {
				require.Equal(t, was.RetryCount+1, it.RetryCount, "%s: the expiry counts as a failed attempt", it.ContactUUID)
			} else {
				require.Equal(t, was.RetryCount, it.RetryCount, "%s: the last attempt's expiry schedules no retry", it.ContactUUID)
			}
			require.Equal(t, was.Attempts, it.Attempts, "%s: attempts", it.ContactUUID)
			require.Equal(t, pool.NoteExpired, it.Notes, "%s: notes", it.ContactUUID)
		}
		crashCheckAcks(t, after, acks)
		reclaimedTotal += len(inFlight)
		t.Logf("round %d: %d acknowledgements in all, %d items, %d in flight at the kill", round, len(acks), len(items), len(inFlight))
		require.NoError(t, eng.Close())
		require.NoError(t, st.Close())
	}
	require.Positive(t, reclaimedTotal, "no item was ever in flight at a kill: the test proved nothing about expiry")

	// Drain the pool: every item ends terminal, none beyond its ceiling.
	offset = time.Duration(rounds) * crashRoundSpan
	st, eng = crashOpen(t, dbPath, &offset)
	defer st.Close()
	defer eng.Close()
	for i := 0; ; i++ {
		require.Less(t, i, 100000, "the pool does not drain")
		l, err := eng.TryDequeue(ctx, p.UUID)
		if errors.Is(err, queue.ErrEmpty) {
			d, err := eng.Pool(ctx, p.UUID)
			require.NoError(t, err)
			c := d.StatusCounts
			if c[pool.StatusPending]+c[pool.StatusRetrying]+c[pool.StatusScheduled]+c[pool.StatusProcessing]+c[pool.StatusInCall] == 0 {
				break
			}
			offset += crashLease // let retries come due
			continue
		}
		require.NoError(t, err)
		require.LessOrEqual(t, l.Attempt, crashMaxRetries+1)
		if rng.IntN(2) == 0 {
			require.NoError(t, eng.Complete(ctx, l, "drained"))
		} else {
			require.NoError(t, eng.Fail(ctx, l, queue.Failure{Note: "drain"}))
		}
	}
	items := crashCheckConsistent(t, eng, p.UUID)
	for _, it := range items {
		require.True(t, it.Status.Terminal(), "%s: %s after the drain", it.ContactUUID, it.Status)
	}
	crashCheckAcks(t, items, readCrashAcks(t, ackPath))
}

// crashOutput collects a child's output; it is written by os/exec's copying
// goroutine while the parent may read it.
type crashOutput struct {
	mu sync.Mutex
	b  strings.Builder
}

func (o *crashOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *crashOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// readCrashAcksOrEmpty is readCrashAcks for a log that may not exist yet.
func readCrashAcksOrEmpty(t *testing.T, path string) []crashAck {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	return readCrashAcks(t, path)
}

// crashRounds returns the number of kill rounds POOLQ_CRASH_ROUNDS asks
// for, or def when it is unset; set reports whether it was set.
func crashRounds(t *testing.T, def int) (rounds int, set bool) {
	t.Helper()
	s := os.Getenv(crashEnvRounds)
	if s == "" {
		return def, false
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, crashEnvRounds)
	require.Positive(t, n, crashEnvRounds)
	return n, true
}

// dropTornLine cuts from the log at path a last line without its newline,
// which a kill left torn (the line was never acknowledged): the next
// round's child appends to the log, and would otherwise join its first
// line to the torn one, in the middle of the log, where a reader cannot
// tell it from a corrupt acknowledgement.
func dropTornLine(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	if whole := bytes.LastIndexByte(b, '\n') + 1; whole < len(b) {
		require.NoError(t, os.Truncate(path, int64(whole)))
	}
}

// crashKillChild runs this test binary again as a child process, with
// -test.run=run and env added to its environment; waits (up to a minute)
// until started reports that the child got going; lets it run for delay
// more; then kills it with SIGKILL, and fails the test unless it was the
// kill that ended it (a child that fails or exits by itself shows its
// output).
func crashKillChild(t *testing.T, round int, run string, env []string, started func() bool, delay time.Duration) {
	t.Helper()
	var out crashOutput
	cmd := exec.Command(os.Args[0], "-test.run="+run, "-test.v")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	ok := waitUntil(time.Minute, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		return started()
	})
	if !ok {
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("round %d: the child did not get going within a minute:\n%s", round, out.String())
	}
	select {
	case <-exited:
		t.Fatalf("round %d: the child exited by itself (%v):\n%s", round, cmd.ProcessState, out.String())
	case <-time.After(delay):
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-exited
	ws, isWait := cmd.ProcessState.Sys().(syscall.WaitStatus)
	require.True(t, isWait && ws.Signaled() && ws.Signal() == syscall.SIGKILL,
		"round %d: the child ended with %v, not by SIGKILL:\n%s", round, cmd.ProcessState, out.String())
}
