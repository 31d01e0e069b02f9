//go:build linux

package sqlite_test

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_FileSizeLimit: a full disk as the operating system reports
// it. A child process (the limit is the process's) caps the size of the
// files it writes (RLIMIT_FSIZE, SIGXFSZ ignored: the write fails with
// EFBIG instead of killing it) at the sizes the database and its log have,
// so that neither can grow: a commit whose log would grow fails, and so
// does every checkpoint that would grow the database. An Add that needs
// more log than there is fails and leaves nothing; a settlement that
// shares its transaction fails with it (the commit failed, no operation:
// see the README), and goes through alone; the checkpointer goes on
// ticking; once the cap is lifted the same Add goes through, the
// checkpointer copies the log back again, and the file is sound, also
// when opened again.
func TestEngine_FileSizeLimit(t *testing.T) {
	if dir := os.Getenv("POOLQ_FSIZE_CHILD"); dir != "" {
		fileSizeChild(t, dir)
		return
	}
	if raceEnabled {
		t.Skip("one process's writes one after the other, nothing for the race detector (8 s under it, 0.2 s without)")
	}
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEngine_FileSizeLimit$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "POOLQ_FSIZE_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestEngine_FileSizeLimit")
	t.Logf("the child:\n%s", out)

	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "poolq.db"), sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Check(ctx))
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	ps, err := eng.Pools(ctx, pool.PoolQuery{})
	require.NoError(t, err)
	require.Equal(t, 1, ps.Total)
	d, err := eng.Pool(ctx, ps.Data[0].UUID)
	require.NoError(t, err)
	require.Equal(t, 100+1500, d.ContactsCount, "the first 100 and the Add made once the cap was lifted")
}

func fileSizeChild(t *testing.T, dir string) {
	signal.Ignore(syscall.SIGXFSZ)
	ctx := context.Background()
	path := filepath.Join(dir, "poolq.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: true, CheckpointInterval: 5 * time.Millisecond})
	require.NoError(t, err)
	defer st.Close()
	sqlite.SetCheckpointPages(st, 20)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "capped", Description: "files capped", Type: pool.Parallel})
	require.NoError(t, err)
	// The log of these writes copied back once: counted from before the
	// Add, whose log starts a checkpoint at once (one read after it missed
	// a checkpoint that came first, and waited for one that never came).
	full := sqlite.FullCheckpoints(st)
	_, err = eng.Add(ctx, p.UUID, newContacts(100)...)
	require.NoError(t, err)
	leases, err := eng.DequeueN(ctx, p.UUID, 2)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return sqlite.FullCheckpoints(st) > full }, 5*time.Second, time.Millisecond)

	size := func(p string) int64 {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		return fi.Size()
	}
	limit := uint64(max(size(path), size(path+"-wal")))
	var old syscall.Rlimit
	require.NoError(t, syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old))
	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: old.Max}))
	t.Logf("files capped at %d bytes", limit)

	big := newContacts(1500)
	_, err = eng.Add(ctx, p.UUID, big...)
	require.Error(t, err, "an Add of 1500 items with no room to grow")
	t.Logf("add: %v", err)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 100, d.ContactsCount, "nothing of the failed Add")
	// A settlement that shares the transaction of such an Add: the
	// failure is the commit's, no operation's, so group commit runs each
	// alone (README): the Add fails again, the settlement fits in the log
	// and is written.
	reruns := eng.Stats().Reruns
	release := holdWrites(t, st)
	var addErr, completeErr error
	var wg sync.WaitGroup
	wg.Go(func() { _ = eng.Extend(ctx, leases[1], time.Minute) }) // the lead, alone in the first batch
	time.Sleep(20 * time.Millisecond)
	wg.Go(func() { _, addErr = eng.Add(ctx, p.UUID, big...) })
	wg.Go(func() { completeErr = eng.Complete(ctx, leases[0], "answered") })
	time.Sleep(100 * time.Millisecond) // both queue behind the held writer
	release()
	wg.Wait()
	t.Logf("in one batch: add: %v; complete: %v; stats %+v", addErr, completeErr, eng.Stats())
	require.ErrorIs(t, addErr, store.ErrTxEnded, "a failed commit: nothing of it written")
	require.NoError(t, completeErr, "the settlement beside the Add")
	require.Equal(t, uint64(2), eng.Stats().Reruns-reruns, "they shared a batch, then ran each alone")
	rounds := sqlite.CheckpointRounds(st)
	require.Eventually(t, func() bool { return sqlite.CheckpointRounds(st) > rounds+3 }, 5*time.Second, time.Millisecond,
		"the checkpointer goes on ticking")

	require.NoError(t, syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old))
	full = sqlite.FullCheckpoints(st)
	_, err = eng.Add(ctx, p.UUID, big...)
	require.NoError(t, err, "the same Add once the cap is lifted")
	require.ErrorIs(t, eng.Complete(ctx, leases[0], "answered"), queue.ErrLeaseLost, "completed while capped")
	require.NoError(t, eng.Complete(ctx, leases[1], "answered"))
	require.Eventually(t, func() bool { return sqlite.FullCheckpoints(st) > full }, 5*time.Second, time.Millisecond,
		"the checkpointer copies the log back again")
	d, err = eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 1600, d.ContactsCount)
	require.Equal(t, 2, d.StatusCounts[pool.StatusCompleted])
	require.NoError(t, st.Check(ctx))
}
