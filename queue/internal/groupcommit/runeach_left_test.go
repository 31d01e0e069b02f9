package groupcommit_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// endThenLockedStore: its Write numbered endAt runs its function and then
// ends at its commit with store.ErrTxEnded (SQLite whose log could not
// grow: a full disk), nothing written; every later Write waits before it
// begins, as one behind another process's lock on the SQLite file does,
// until its ctx ends or lockedWait (the busy timeout) passes.
type endThenLockedStore struct {
	store.Store
	writes  atomic.Int32
	endAt   atomic.Int32
	waiting atomic.Int32
}

const lockedWait = 4 * time.Second

func (s *endThenLockedStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	n := s.writes.Add(1)
	end := s.endAt.Load()
	switch {
	case end == 0 || n < end:
		return s.Store.Write(ctx, fn)
	case n == end:
		ended := fmt.Errorf("commit: database or disk is full: %w", store.ErrTxEnded)
		_ = s.Store.Write(ctx, func(tx store.Tx) error {
			if err := fn(tx); err != nil {
				return err
			}
			return ended // rolled back
		})
		return ended
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	t := time.NewTimer(lockedWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("begin write: %w", ctx.Err())
	case <-t.C:
		return fmt.Errorf("begin write: %w", store.ErrLockTimeout)
	}
}

// TestCommitter_RunEachEndsOnceCallersLeft: after a batch's transaction
// ended at its commit (store.ErrTxEnded), each operation runs again in a
// transaction of its own (runEach); once every caller of the batch has
// gone, those transactions end as the batch's own would (see the package
// doc): the callers, waiting for operations that had started, return at
// once with their own context's error, nothing written, rather than wait
// for another process's lock, one transaction after the other. (They ran
// on context.Background: 12 s here, three busy timeouts of 4 s; 21 minutes
// for a batch of 256 at SQLite's 5 s.)
func TestCommitter_RunEachEndsOnceCallersLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	es := &endThenLockedStore{Store: st}
	h := &heldStore{Store: es}
	c := groupcommit.New(h, groupcommit.Options{})
	b := &bundle{ctx: ctx, st: h, c: c}

	var wg sync.WaitGroup
	release := b.hold(t, &wg) // Write 1: the lead, held
	es.endAt.Store(2)         // Write 2: the batch below, ended at its commit
	const n = 3
	cancels := make([]context.CancelFunc, n)
	returned := make(chan error, n)
	for i := range n {
		cctx, cancel := context.WithCancel(ctx)
		cancels[i] = cancel
		id := uuid.New()
		b.queue(t, &wg, func() { returned <- c.Write(cctx, insert(id)) })
	}
	release()
	// The batch ended at its commit; its first operation's own Write now
	// waits for the lock.
	require.Eventually(t, func() bool { return es.waiting.Load() == 1 }, 5*time.Second, time.Millisecond)
	for _, cancel := range cancels {
		cancel() // every caller of the batch leaves
	}
	left := time.Now()
	deadline := time.After(time.Second)
	for i := range n {
		select {
		case err := <-returned:
			require.ErrorIs(t, err, context.Canceled, "the caller's own context's error")
			require.ErrorContains(t, err, "nothing written")
		case <-deadline:
			t.Errorf("%d of %d callers still blocked in Write 1 s after every caller of the batch left: "+
				"the transactions of its operations wait for the lock for nobody (store Writes waiting: %d)", n-i, n, es.waiting.Load())
			wg.Wait()
			t.Logf("the callers returned %v after they left", time.Since(left).Round(time.Millisecond))
			c.Close()
			return
		}
	}
	wg.Wait()
	c.Close()
}
