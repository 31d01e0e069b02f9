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
	entered, release := b.st.holdNext(t)
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

// ctxStore records the context of each Write.
type ctxStore struct {
	store.Store
	writes chan context.Context
}

func (s *ctxStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.writes <- ctx
	return s.Store.Write(ctx, fn)
}

// TestCommitter_CancelEndsALoneWrite: the context of the Write of an
// operation that runs alone ends when its caller's is cancelled, even once
// the operation has started (a store may then end a wait for another
// session's lock), and the caller gets the Write's error, nothing written;
// a deadline does not end it (the wait bound is for that), nor does a
// cancellation end the Write of a batch, whose other callers still wait.
func TestCommitter_CancelEndsALoneWrite(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	cs := &ctxStore{Store: b.st, writes: make(chan context.Context, 16)}
	c := groupcommit.New(cs, groupcommit.Options{})
	t.Cleanup(c.Close)
	// waits is an operation that inserts id, then waits until its Write's
	// context ends or d passes, and says which came first in ended.
	waits := func(id uuid.UUID, entered chan<- struct{}, d time.Duration, ended *bool) groupcommit.Func {
		return func(ctx context.Context, tx *groupcommit.Tx) error {
			wctx := <-cs.writes
			if err := insert(id)(ctx, tx); err != nil {
				return err
			}
			close(entered)
			select {
			case <-wctx.Done():
				*ended = true
			case <-time.After(d):
			}
			return nil
		}
	}

	// Alone, cancelled once started: the Write's context ends, and the
	// store rolls it back.
	ctx, cancel := context.WithCancel(b.ctx)
	entered := make(chan struct{})
	id := uuid.New()
	var ended bool
	go func() { <-entered; cancel() }()
	err := c.Write(ctx, waits(id, entered, 10*time.Second, &ended))
	require.True(t, ended, "the Write's context did not end with its caller's cancellation")
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, b.exists(t, id), "the cancelled operation was written")

	// Alone, past its deadline once started: the Write's context lasts,
	// and the operation's result stands. (The deadline leaves the
	// operation time to start on a loaded machine: 50 ms did not once.)
	ctx, cancel = context.WithTimeout(b.ctx, 500*time.Millisecond)
	defer cancel()
	entered, id, ended = make(chan struct{}), uuid.New(), false
	require.NoError(t, c.Write(ctx, waits(id, entered, 800*time.Millisecond, &ended)))
	require.False(t, ended, "a deadline ended the Write's context")
	require.True(t, b.exists(t, id))

	// In a batch: the Write's context lasts while one caller is cancelled.
	held, release := b.st.holdNext(t)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, c.Write(b.ctx, insert(uuid.New()))) })
	<-cs.writes // the held Write's
	<-held
	ctx, cancel = context.WithCancel(b.ctx)
	entered, id, ended = make(chan struct{}), uuid.New(), false
	other := uuid.New()
	var errs [2]error
	n := c.Queued()
	wg.Go(func() { errs[0] = c.Write(ctx, waits(id, entered, 300*time.Millisecond, &ended)) })
	require.Eventually(t, func() bool { return c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
	wg.Go(func() { errs[1] = c.Write(b.ctx, insert(other)) })
	require.Eventually(t, func() bool { return c.Queued() == n+2 }, 5*time.Second, time.Millisecond)
	go func() { <-entered; cancel() }()
	release()
	wg.Wait()
	require.False(t, ended, "a cancellation ended the Write of a batch")
	require.NoError(t, errs[0], "a started operation of a batch runs to the end")
	require.NoError(t, errs[1])
	require.True(t, b.exists(t, id))
	require.True(t, b.exists(t, other))
}

// TestCommitter_BatchEndsOnceItsCallersAllGone: the context of a batch's
// Write ends once no caller waits for it: each has left, or its operation
// has started and its context has ended (cancelled, or past its deadline:
// a batch has no wait bound). A store may then end a wait for another
// session's lock that would otherwise hold every caller, and the callers
// behind them, up to its lock timeout. Nothing of the batch is written.
func TestCommitter_BatchEndsOnceItsCallersAllGone(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	cs := &ctxStore{Store: b.st, writes: make(chan context.Context, 16)}
	c := groupcommit.New(cs, groupcommit.Options{})
	t.Cleanup(c.Close)

	held, release := b.st.holdNext(t)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, c.Write(b.ctx, insert(uuid.New()))) })
	<-cs.writes // the held Write's
	<-held

	// The first operation waits (for a lock, say) until its Write's
	// context ends; its caller's deadline passes meanwhile. The second
	// caller, still waiting for its operation to start, is cancelled.
	first, second := uuid.New(), uuid.New()
	entered, ended := make(chan struct{}), false
	var errs [2]error
	ctx0 := newDeadlineCtx(b.ctx)
	defer ctx0.pass()
	ctx1, cancel1 := context.WithCancel(b.ctx)
	n := c.Queued()
	wg.Go(func() {
		errs[0] = c.Write(ctx0, func(ctx context.Context, tx *groupcommit.Tx) error {
			wctx := <-cs.writes
			if err := insert(first)(ctx, tx); err != nil {
				return err
			}
			close(entered)
			select {
			case <-wctx.Done():
				ended = true
			case <-time.After(5 * time.Second):
			}
			return nil
		})
	})
	require.Eventually(t, func() bool { return c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
	wg.Go(func() { errs[1] = c.Write(ctx1, insert(second)) })
	require.Eventually(t, func() bool { return c.Queued() == n+2 }, 5*time.Second, time.Millisecond)
	start := time.Now()
	release()
	<-entered
	ctx0.pass()
	cancel1()
	wg.Wait()
	require.True(t, ended, "the batch's Write went on after its callers had all gone (%v)", time.Since(start))
	require.Less(t, time.Since(start), 2*time.Second)
	// Each caller gets the reason it stopped waiting, not the Write's
	// cancellation: a deadline reads as a deadline.
	require.ErrorIs(t, ctx0.Err(), context.DeadlineExceeded)
	require.ErrorIs(t, errs[0], context.DeadlineExceeded)
	require.NotErrorIs(t, errs[0], context.Canceled)
	require.ErrorIs(t, errs[1], context.Canceled)
	require.False(t, b.exists(t, first), "the batch was written")
	require.False(t, b.exists(t, second))
}

// deadlineCtx is a context with a deadline that passes when pass is
// called, not at a time: on a loaded machine a timer could pass it before
// its caller's operation has started.
type deadlineCtx struct {
	context.Context
	cancel context.CancelFunc
	passed atomic.Bool
}

func newDeadlineCtx(parent context.Context) *deadlineCtx {
	ctx, cancel := context.WithCancel(parent)
	return &deadlineCtx{Context: ctx, cancel: cancel}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return time.Now().Add(time.Hour), true }

func (c *deadlineCtx) Err() error {
	if c.passed.Load() {
		return context.DeadlineExceeded
	}
	return c.Context.Err()
}

// pass makes the deadline pass.
func (c *deadlineCtx) pass() {
	c.passed.Store(true)
	c.cancel()
}
