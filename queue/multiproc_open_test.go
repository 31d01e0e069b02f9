package queue_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const (
	mpoEnvChild = "POOLQ_MPO_CHILD"
	mpoEnvDB    = "POOLQ_MPO_DB"
	mpoEnvAt    = "POOLQ_MPO_AT" // unix nanoseconds at which to open
)

// TestMultiProcess_OpenNewFile: several processes open one new file at the
// same instant (a service's replicas starting on an empty volume), then
// create a pool, add items, dispatch and settle them. Every call of every
// process must succeed.
func TestMultiProcess_OpenNewFile(t *testing.T) {
	if os.Getenv(mpoEnvChild) != "" {
		mpoChild(t)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	const children, rounds = 5, 8
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "new.db")
		at := time.Now().Add(700 * time.Millisecond).UnixNano()
		var wg sync.WaitGroup
		outs := make([]crashOutput, children)
		errs := make([]error, children)
		for i := range children {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess_OpenNewFile$", "-test.v")
			cmd.Env = append(os.Environ(), mpoEnvChild+"="+strconv.Itoa(i), mpoEnvDB+"="+path, mpoEnvAt+"="+strconv.FormatInt(at, 10))
			cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
			require.NoError(t, cmd.Start())
			wg.Go(func() { errs[i] = cmd.Wait() })
		}
		wg.Wait()
		for i := range children {
			require.NoError(t, errs[i], "round %d child %d:\n%s", round, i, outs[i].String())
		}
	}
}

func mpoChild(t *testing.T) {
	ctx := context.Background()
	at, err := strconv.ParseInt(os.Getenv(mpoEnvAt), 10, 64)
	require.NoError(t, err)
	time.Sleep(time.Until(time.Unix(0, at)))
	st, err := sqlite.Open(ctx, os.Getenv(mpoEnvDB), sqlite.Options{CheckCache: true})
	require.NoError(t, err, "open")
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool " + os.Getenv(mpoEnvChild), Description: "d", Type: pool.Parallel})
	require.NoError(t, err, "create pool")
	_, err = eng.Add(ctx, p.UUID, newItems(50)...)
	require.NoError(t, err, "add")
	for range 20 {
		l, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err, "dequeue")
		require.NoError(t, eng.Complete(ctx, l, "ok"), "complete")
	}
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 20, d.StatusCounts[pool.StatusCompleted])
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	fmt.Println("mpo child done")
}
