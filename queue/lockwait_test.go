package queue_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/lockholder"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// lockChildEnv names, in a child process of holdLockInChild, the SQLite
// file whose write lock it holds.
const lockChildEnv = "POOLQ_LOCKWAIT_HOLD"

// TestLockChild is the child of holdLockInChild: it takes the write lock
// of the file lockChildEnv names, says HOLDING, and gives the lock back
// when its stdin closes. Without the variable it does nothing.
func TestLockChild(t *testing.T) {
	path := os.Getenv(lockChildEnv)
	if path == "" {
		t.Skip("the child process of holdLockInChild")
	}
	release := lockholder.Hold(t, path)
	os.Stdout.WriteString("HOLDING\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	release()
}

// holdLockInChild makes another process hold the write lock of the SQLite
// file at path, and returns once it does. The lock is given back by
// release (the child rolls back and exits), or at the test's end.
func holdLockInChild(t *testing.T, path string) (release func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$", "-test.v")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+path)
	var out crashOutput // safe for the child's writes and our reads
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	var once sync.Once
	release = func() {
		once.Do(func() {
			stdin.Close()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(release)
	require.True(t, waitUntil(30*time.Second, func() bool { return strings.Contains(out.String(), "HOLDING") }),
		"the child never held the lock:\n%s", out.String())
	return release
}

// TestSQLite_CallersThatLeftHoldUpNoOne: another process holds the file's
// write lock. A write whose callers have all left (their deadline passed)
// stops waiting for it: a caller who comes next waits the busy timeout of
// its own write, not the rest of theirs as well, and Engine.Close, then
// Store.Close, return at once.
func TestSQLite_CallersThatLeftHoldUpNoOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "left.db")
	const busy = 3 * time.Second
	st, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: busy, CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	eng := openEngine(t, st, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d"})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	holdLockInChild(t, path)

	leave := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := eng.TryDequeue(ctx, p.UUID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	leave()
	start := time.Now()
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	took := time.Since(start)
	require.ErrorIs(t, err, store.ErrLockTimeout)
	require.Less(t, took, busy+1500*time.Millisecond, "a caller waited behind the lock wait of a write whose caller had left")

	leave()
	start = time.Now()
	require.NoError(t, eng.Close())
	require.Less(t, time.Since(start), 1500*time.Millisecond, "Engine.Close waited for a write whose caller had left")
	start = time.Now()
	require.NoError(t, st.Close())
	require.Less(t, time.Since(start), 1500*time.Millisecond, "Store.Close")
}

// TestSQLite_WorkStopsBehindAnotherProcessesLock: another process holds
// the file's write lock, far longer than Work's grace, when Work's context
// ends: a claim, extensions (every 50 ms) and a handler's result are
// waiting for it, and a handler still runs, which the grace's end stops.
// Work returns within its grace and two seconds (an extension under way
// gives up a second after the grace's end, then the stopped handler's
// result, tried then, a second after that) and a little, not once the
// busy timeouts (5 s) of its writes, one after the other, have passed;
// neither result is written: both items stay in flight, their leases to
// expire at their end. Engine.Close then returns at once.
func TestSQLite_WorkStopsBehindAnotherProcessesLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "work.db")
	st := openFileStore(t, path)
	eng := openEngine(t, st, queue.Options{PollInterval: 50 * time.Millisecond})
	ten := 10
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d", Type: pool.Parallel, MaxParallelItems: &ten})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	started := make(chan struct{}, 2)
	finish := make(chan struct{}) // the first handler to read it returns nil
	var events crashOutput
	done := make(chan error, 1)
	go func() {
		done <- eng.Work(wctx, func(ctx context.Context, l *queue.Lease) error {
			started <- struct{}{}
			select {
			case <-finish:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 3, Grace: queue.MinGrace, Heartbeat: 50 * time.Millisecond,
			OnEvent: func(ev queue.Event) { fmt.Fprintf(&events, "%s %v\n", ev.Kind, ev.Err) }})
	}()
	<-started
	<-started
	unlock := holdLockInChild(t, path)
	finish <- struct{}{}
	time.Sleep(300 * time.Millisecond) // the result, a claim and extensions wait for the lock
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		took := time.Since(start)
		require.NoError(t, err)
		t.Logf("Work returned %v after its context ended (grace %v)", took, queue.MinGrace)
		require.Less(t, took, queue.MinGrace+2500*time.Millisecond, "Work waited for another process's lock past its grace:\n%s", events.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("Work has not returned 30 s after its context ended:\n%s", events.String())
	}
	start = time.Now()
	require.NoError(t, eng.Close())
	require.Less(t, time.Since(start), 1500*time.Millisecond, "Engine.Close")

	unlock()
	d, err := openEngine(t, st, queue.Options{}).Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 2, d.StatusCounts[pool.StatusProcessing], "a result was written behind the lock:\n%s", events.String())
}

// TestSQLite_PastWindowGiveBackStopsBehindAnotherProcessesLock: a lease
// whose calling window closed between its claim and its handler's start
// (a slow OnEvent) is given back, unattempted; when Work's context ends
// while another process holds the file's write lock, that give-back gives
// up as a result's write does, and Work returns within its grace and two
// seconds. (Its tries had no bound: Work waited out three busy timeouts,
// 15 s, and Engine.Close behind it.)
func TestSQLite_PastWindowGiveBackStopsBehindAnotherProcessesLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "window.db")
	st := openFileStore(t, path)
	b, clk, p, c := windowPool(t, st, time.Date(2026, 1, 2, 16, 59, 59, 0, time.UTC))
	wctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	dispatched, locked := make(chan struct{}), make(chan struct{})
	var events crashOutput
	done := make(chan error, 1)
	go func() {
		done <- b.eng.Work(wctx, func(context.Context, *queue.Lease) error {
			t.Error("the handler started outside the calling window")
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: time.Second,
			OnEvent: func(ev queue.Event) {
				fmt.Fprintf(&events, "%s %v\n", ev.Kind, ev.Err)
				if ev.Kind == queue.EventDispatched {
					close(dispatched)
					<-locked
				}
			}})
	}()
	select {
	case <-dispatched:
	case <-time.After(10 * time.Second):
		t.Fatal("nothing dispatched")
	}
	unlock := holdLockInChild(t, path)
	clk.Advance(5 * time.Minute) // past the window's end, 17:00
	start := time.Now()
	cancel()
	close(locked)
	select {
	case err := <-done:
		took := time.Since(start)
		require.NoError(t, err)
		t.Logf("Work returned %v after its context ended (grace 1s)", took)
		require.Less(t, took, time.Second+2500*time.Millisecond, "Work waited for another process's lock past its grace:\n%s", events.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("Work has not returned 60 s after its context ended:\n%s", events.String())
	}
	require.Contains(t, events.String(), "error release", "the give-back's failure is reported")
	unlock()
	it, err := b.eng.Item(b.ctx, p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, pool.StatusProcessing, it.Status, "given back behind the lock:\n%s", events.String())
}

// TestSQLite_SoonAfterAnotherProcessesLock: a DequeueCampaign and a Work
// whose claims met another process's write lock past the busy timeout
// look again soon once it is given back, as Dequeue does (its item was
// due all along, and another process's unlock wakes no one here): they
// waited a whole PollInterval (4 s here) after the lock timeout.
func TestSQLite_SoonAfterAnotherProcessesLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path, eng := busyFileEngine(t, queue.Options{PollInterval: 4 * time.Second})
	mk := func(name string) uuid.UUID {
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: name, Description: "d", Type: pool.FIFO})
		require.NoError(t, err)
		_, err = eng.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		return p.UUID
	}
	plain, inCampaign, worked := mk("plain pool"), mk("campaign pool"), mk("worked pool")
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "busy campaign"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, inCampaign)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	unlock := lockholder.Hold(t, path)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type result struct {
		name string
		at   time.Time
		err  error
	}
	got := make(chan result, 3)
	go func() { _, err := eng.Dequeue(wctx, plain); got <- result{"Dequeue", time.Now(), err} }()
	go func() { _, err := eng.DequeueCampaign(wctx, c.UUID); got <- result{"DequeueCampaign", time.Now(), err} }()
	workCtx, stopWork := context.WithCancel(wctx)
	defer stopWork()
	workDone := make(chan error, 1)
	go func() {
		workDone <- eng.Work(workCtx, func(context.Context, *queue.Lease) error {
			got <- result{"Work", time.Now(), nil}
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{worked}, Workers: 1})
	}()
	time.Sleep(300 * time.Millisecond) // several busy timeouts
	unlocked := time.Now()
	unlock()
	for range 3 {
		r := <-got
		require.NoError(t, r.err, r.name)
		require.Less(t, r.at.Sub(unlocked), 1500*time.Millisecond, "%s started %v after the lock was given back", r.name, r.at.Sub(unlocked))
	}
	stopWork()
	require.NoError(t, <-workDone)
}
