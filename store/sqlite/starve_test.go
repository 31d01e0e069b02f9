package sqlite_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_WriteNotStarvedByAnotherStore: one Store (a process) whose
// callers write back to back, as a busy dialer's group commit does; a
// second Store (another process) on the same file writes now and then. The
// second one's Writes must get through within the busy timeout: none may
// fail with ErrLockTimeout while the first one commits a transaction every
// few hundred microseconds, each holding the lock briefly.
func TestStore_WriteNotStarvedByAnotherStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	busy, path := MustOpenFile(t, sqlite.Options{})
	other, err := sqlite.Open(ctx, path, sqlite.Options{BusyTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	pb, po := insertPool(t, busy), insertPool(t, other)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := cycle(ctx, busy, pb.UUID); err != nil {
					t.Errorf("busy store: %v", err)
					return
				}
			}
		})
	}
	var (
		longest  time.Duration
		timeouts int
		writes   int
	)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); writes++ {
		t0 := time.Now()
		err := cycle(ctx, other, po.UUID)
		longest = max(longest, time.Since(t0))
		if errors.Is(err, store.ErrLockTimeout) {
			timeouts++
		} else {
			require.NoError(t, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("other store: %d writes, %d lock timeouts (busy timeout 2s), longest wait %v", writes, timeouts, longest)
	require.Zero(t, timeouts, "the other store's writes were starved past the busy timeout")
}
