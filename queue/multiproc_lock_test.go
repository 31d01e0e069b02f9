package queue_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const mplEnvDB = "POOLQ_MPL_DB"

// TestMultiProcess_CloseKeepsAnotherStoresLock: a Store of this process
// holds the file's write lock (a Write under way) while other Stores of
// the same process on the same file open and close. Another process must
// still find the file locked: closing a Store must not drop the locks of
// another Store of its process (POSIX locks belong to the process).
func TestMultiProcess_CloseKeepsAnotherStoresLock(t *testing.T) {
	if path := os.Getenv(mplEnvDB); path != "" {
		ctx := context.Background()
		st, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: 100 * time.Millisecond})
		require.NoError(t, err, "open")
		err = st.Write(ctx, func(tx store.Tx) error { return nil })
		fmt.Printf("child write: locked=%v err=%v\n", errors.Is(err, store.ErrLockTimeout), err)
		require.NoError(t, st.Close())
		return
	}
	if testing.Short() {
		t.Skip("runs a child process")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "lock.db")
	a := openFileStore(t, path)
	eng := openEngine(t, a, queue.Options{})
	_, err := eng.CreatePool(ctx, pool.CreateParams{Name: "lock", Description: "d"})
	require.NoError(t, err)
	held := make(chan struct{})
	done := make(chan struct{})
	go func() {
		_ = a.Write(ctx, func(tx store.Tx) error {
			close(held)
			<-done
			return nil
		})
	}()
	<-held
	child := func(when string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess_CloseKeepsAnotherStoresLock$", "-test.v")
		cmd.Env = append(os.Environ(), mplEnvDB+"="+path)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s:\n%s", when, out)
		require.Contains(t, string(out), "child write: locked=true", "%s: another process wrote while this one holds the write lock:\n%s", when, out)
	}
	child("before any other Store closed")
	for range 3 {
		b, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(t, err)
		require.NoError(t, b.Close())
	}
	child("after other Stores of this process opened and closed")
	close(done)
}
