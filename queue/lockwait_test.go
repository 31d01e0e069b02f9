package queue_test

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
	const busy = 2 * time.Second
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
	require.Less(t, took, busy+time.Second, "a caller waited behind the lock wait of a write whose caller had left")

	leave()
	start = time.Now()
	require.NoError(t, eng.Close())
	require.Less(t, time.Since(start), time.Second, "Engine.Close waited for a write whose caller had left")
	start = time.Now()
	require.NoError(t, st.Close())
	require.Less(t, time.Since(start), time.Second, "Store.Close")
}
