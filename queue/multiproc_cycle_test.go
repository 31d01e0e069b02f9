package queue_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const (
	mpcEnvDB   = "POOLQ_MPC_DB"
	mpcEnvPool = "POOLQ_MPC_POOL"
)

// TestMultiProcess_OpenCloseCycles: processes that each open the file,
// claim and settle an item, read the pool and close, again and again, so
// that each is now and then the last to close the file (which copies the
// log back and deletes it) while another opens it. No call may fail.
func TestMultiProcess_OpenCloseCycles(t *testing.T) {
	if path := os.Getenv(mpcEnvDB); path != "" {
		ctx := context.Background()
		id := uuid.MustParse(os.Getenv(mpcEnvPool))
		deadline := time.Now().Add(4 * time.Second)
		n := 0
		for ; time.Now().Before(deadline); n++ {
			st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: true})
			require.NoError(t, err, "cycle %d: open", n)
			eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute})
			require.NoError(t, err)
			_, err = eng.Add(ctx, id, newItems(3)...)
			require.NoError(t, err, "cycle %d: add", n)
			l, err := eng.TryDequeue(ctx, id)
			if err == nil {
				require.NoError(t, eng.Complete(ctx, l, "ok"), "cycle %d: complete", n)
			} else {
				require.True(t, isOneOf(err, queue.ErrAtCapacity, queue.ErrEmpty), "cycle %d: dequeue: %v", n, err)
			}
			_, err = eng.Pool(ctx, id)
			require.NoError(t, err, "cycle %d: pool", n)
			require.NoError(t, eng.Close())
			require.NoError(t, st.Close(), "cycle %d: close", n)
		}
		fmt.Printf("mpc child: %d cycles\n", n)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "cycle.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "cycles", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close()) // nobody holds the file between the children's cycles

	var wg sync.WaitGroup
	const children = 3
	outs := make([][]byte, children)
	errs := make([]error, children)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess_OpenCloseCycles$", "-test.v")
		cmd.Env = append(os.Environ(), mpcEnvDB+"="+path, mpcEnvPool+"="+p.UUID.String())
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range children {
		require.NoError(t, errs[i], "child %d:\n%s", i, outs[i])
		t.Logf("child %d: %s", i, lastLine(outs[i]))
	}
	st, err = sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.Check(ctx))
	eng, err = queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	items := allItems(ctx, t, eng, p.UUID, 100)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, countStatuses(items), d.StatusCounts)
}

// lastLine returns the child's line of counts in its output.
func lastLine(b []byte) string {
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "mpc child:") {
			return l
		}
	}
	return ""
}
