package groupcommit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// boundStore records the wait bound of each Write's ctx, and marks the
// error of a bounded Write that failed with context.DeadlineExceeded, as
// a store whose lock wait the bound ended does.
type boundStore struct {
	store.Store

	mu     sync.Mutex
	bounds []time.Time // the zero time: none
}

func (s *boundStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	bound, ok := store.WaitBound(ctx)
	s.mu.Lock()
	s.bounds = append(s.bounds, bound)
	s.mu.Unlock()
	err := s.Store.Write(ctx, fn)
	if ok && err != nil {
		return fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return err
}

func (s *boundStore) last() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bounds
}

// TestCommitter_WaitBoundOfALoneCaller: the Write of an operation that runs
// alone carries its caller's deadline as the wait bound (the store may end
// a lock wait there), and its caller gets the Write's error, which says
// what ended the wait; the Write of a batch, or of a caller without a
// deadline, carries none.
func TestCommitter_WaitBoundOfALoneCaller(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	bs := &boundStore{Store: b.st}
	c := groupcommit.New(bs, groupcommit.Options{})
	t.Cleanup(c.Close)
	timedOut := func(context.Context, *groupcommit.Tx) error {
		return fmt.Errorf("lock pool: %w", store.ErrLockTimeout)
	}

	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	deadline, _ := ctx.Deadline()
	err := c.Write(ctx, timedOut)
	require.ErrorIs(t, err, store.ErrLockTimeout)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the caller gets the Write's error")
	require.NoError(t, c.Write(b.ctx, insert(uuid.New())))
	require.Equal(t, []time.Time{deadline, {}}, bs.last(), "alone with a deadline, then without")

	// Two callers with deadlines in one batch: no bound.
	entered, release := b.st.holdNext()
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, c.Write(b.ctx, insert(uuid.New()))) })
	<-entered
	errs := make([]error, 2)
	for i := range errs {
		n := c.Queued()
		wg.Go(func() { errs[i] = c.Write(ctx, timedOut) })
		require.Eventually(t, func() bool { return c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
	}
	release()
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, store.ErrLockTimeout)
		require.NotErrorIs(t, err, context.DeadlineExceeded, "a batch's Write has no bound")
	}
	got := bs.last()
	require.Greater(t, len(got), 3) // the held Write, then the batch's (and its rerun's)
	for i, bound := range got[3:] {
		require.True(t, bound.IsZero(), "the batch's Write %d had the bound %v", i, bound)
	}
}
