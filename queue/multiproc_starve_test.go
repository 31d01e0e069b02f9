package queue_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const (
	mpsEnvDB   = "POOLQ_MPS_DB"
	mpsEnvPool = "POOLQ_MPS_POOL"
)

// TestMultiProcess_BusyDialerStarvesAnother: a child process dispatches and
// completes a Parallel pool's items with 8 workers (a busy dialer: its
// group commit runs one write transaction after another). This process,
// on the same file, adds a few items every 20 ms. Its Adds must get the
// file's write lock within its busy timeout (2 s here): none may fail
// with ErrLockTimeout.
func TestMultiProcess_BusyDialerStarvesAnother(t *testing.T) {
	ctx := context.Background()
	if path := os.Getenv(mpsEnvDB); path != "" {
		id := uuid.MustParse(os.Getenv(mpsEnvPool))
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		defer st.Close()
		eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute})
		require.NoError(t, err)
		defer eng.Close()
		var wg sync.WaitGroup
		deadline := time.Now().Add(8 * time.Second)
		for range 8 {
			wg.Go(func() {
				for time.Now().Before(deadline) {
					l, err := eng.TryDequeue(ctx, id)
					if err != nil {
						continue
					}
					_ = eng.Release(ctx, l) // due again: the dialer never runs out
				}
			})
		}
		wg.Wait()
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	path := filepath.Join(t.TempDir(), "starve.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: 2 * time.Second})
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "busy", Description: "d", Type: pool.Parallel, MaxParallelItems: pqPtr(100)})
	require.NoError(t, err)
	for range 1 {
		_, err = eng.Add(ctx, p.UUID, newItems(100)...)
		require.NoError(t, err)
	}
	mine, err := eng.CreatePool(ctx, pool.CreateParams{Name: "mine", Description: "d"})
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess_BusyDialerStarvesAnother$", "-test.v")
	cmd.Env = append(os.Environ(), mpsEnvDB+"="+path, mpsEnvPool+"="+p.UUID.String())
	var out crashOutput
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	time.Sleep(500 * time.Millisecond)
	var (
		adds, timeouts int
		longest        time.Duration
	)
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); adds++ {
		t0 := time.Now()
		_, err := eng.Add(ctx, mine.UUID, newItems(3)...)
		longest = max(longest, time.Since(t0))
		if errors.Is(err, store.ErrLockTimeout) {
			timeouts++
		} else {
			require.NoError(t, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NoError(t, cmd.Wait(), "%s", out.String())
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	t.Logf("busy dialer pool %d items; this process: %d adds, %d lock timeouts (busy timeout 2s), longest %v",
		d.ContactsCount, adds, timeouts, longest)
	require.Zero(t, timeouts, "this process's Adds were starved past the busy timeout by the other process's writes")
}
