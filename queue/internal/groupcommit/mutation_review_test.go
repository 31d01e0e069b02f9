package groupcommit_test

// Tests added by a mutation review of the Committer: each kills a small,
// plausible change to groupcommit.go that the other tests let through.

import (
	"context"
	"errors"
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

// TestCommitter_WaitBoundIsTheLiveCallers: the batch's one live operation
// runs alone, and the wait bound of its Write is that operation's caller's
// deadline, never the deadline of a caller of the batch that has left
// (whose operation does not run). Here the caller that left had a
// deadline and the live one has none: the Write carries no bound (a store
// would otherwise end the live caller's lock wait at a deadline not its
// own, failing a caller that is prepared to wait).
func TestCommitter_WaitBoundIsTheLiveCallers(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	bs := &boundStore{Store: b.st}
	c := groupcommit.New(bs, groupcommit.Options{})
	t.Cleanup(c.Close)

	entered, release := b.st.holdNext(t)
	var wg sync.WaitGroup
	wg.Go(func() { require.NoError(t, c.Write(b.ctx, insert(uuid.New()))) })
	<-entered

	// First in the batch: a caller with a deadline, who leaves (cancelled,
	// its deadline still set) before the batch is taken.
	leftCtx, cancel := context.WithTimeout(b.ctx, time.Hour)
	leftID := uuid.New()
	n := c.Queued()
	left := make(chan error, 1)
	go func() { left <- c.Write(leftCtx, insert(leftID)) }()
	require.Eventually(t, func() bool { return c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-left, context.Canceled)

	// Then the live one, without a deadline.
	id := uuid.New()
	var err error
	wg.Go(func() { err = c.Write(b.ctx, insert(id)) })
	require.Eventually(t, func() bool { return c.Queued() == n+2 }, 5*time.Second, time.Millisecond)
	release()
	wg.Wait()

	require.NoError(t, err)
	require.True(t, b.exists(t, id))
	require.False(t, b.exists(t, leftID), "the operation whose caller left ran")
	got := bs.last()
	require.Len(t, got, 2, "the held Write, then the batch's")
	require.True(t, got[1].IsZero(), "the live caller has no deadline, yet its Write had the bound %v (the deadline of the caller that left)", got[1])
}

// TestCommitter_SavepointRunEndedBeforeItsOperations: a batch in which an
// operation failed runs again with savepoints; when that second
// transaction is ended (store.ErrTxEnded) before any operation ran in it
// (SQLite ending the transaction while the store reads its own state, say),
// no operation failed in it: the end belongs to none of them, and the
// failure the first operation met in the run rolled back must not be
// taken for the one that ended the transaction, nor reach its caller
// (package doc: never an error it met in a run that was rolled back).
// Every operation is then run alone, and here every such Write ends too.
func TestCommitter_SavepointRunEndedBeforeItsOperations(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	ended := fmt.Errorf("begin write: %w", store.ErrTxEnded)
	own := errors.New("the operation's error, in the run rolled back")
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	var failed, fine error
	b.queue(t, &wg, func() {
		failed = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error {
			b.st.failWrites(ended) // every later Write, before it runs anything
			return own
		})
	})
	id := uuid.New()
	b.queue(t, &wg, func() { fine = b.c.Write(b.ctx, insert(id)) })
	release()
	wg.Wait()
	require.ErrorIs(t, failed, store.ErrTxEnded)
	require.NotErrorIs(t, failed, own, "an error of a run rolled back reached its caller")
	require.ErrorIs(t, fine, store.ErrTxEnded)
	require.False(t, b.exists(t, id))
}

// TestCommitter_StatsCountABatchBeforeReleasingIt: every operation of a
// batch is in Stats by the time any of its callers' Writes returns. In
// TestCommitter_StatsCountBeforeRelease each batch has one operation, so
// the window between releasing a caller and counting is a few
// instructions; here the release of a large batch's first caller comes
// long before its last one's, and each caller reads Stats as it returns.
// (Not deterministic: a count made after the release is caught only when
// a released caller runs before the Committer's goroutine has released
// the whole batch, which, with thousands of callers woken one by one and
// several rounds, is all but certain.)
func TestCommitter_StatsCountABatchBeforeReleasingIt(t *testing.T) {
	t.Parallel()
	const size = 2000
	b := setup(t, groupcommit.Options{MaxBatch: size})
	op := func(context.Context, *groupcommit.Tx) error { return nil }
	for round := range 10 {
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		before := b.c.Stats().Operations
		seen := make([]uint64, size)
		for i := range size {
			wg.Go(func() {
				require.NoError(t, b.c.Write(b.ctx, op))
				seen[i] = b.c.Stats().Operations
			})
		}
		require.Eventually(t, func() bool { return b.c.Queued() == size }, 10*time.Second, time.Millisecond)
		release()
		wg.Wait()
		// The held operation, counted before its caller returned, then the
		// batch: one transaction of size operations.
		for i, n := range seen {
			require.GreaterOrEqual(t, n, before+1+size, "round %d: caller %d returned before its batch was counted", round, i)
		}
	}
}

// TestCommitter_AbandonedOpNotRunAloneAfterAFailedCommit: a batch whose
// commit ended the transaction (store.ErrTxEnded, no operation failed)
// runs each of its operations again in a transaction of its own; the
// operation of a caller that left before the batch was taken is not one
// of them: it never ran, and its caller was told so (context.Canceled).
// TestCommitter_OperationThatEndsTheTransaction has only live callers.
func TestCommitter_AbandonedOpNotRunAloneAfterAFailedCommit(t *testing.T) {
	t.Parallel()
	b, es := setupEndingStore(t)
	var wg sync.WaitGroup
	release := b.hold(t, &wg)

	leftCtx, cancel := context.WithCancel(b.ctx)
	leftID := uuid.New()
	var ranLeft atomic.Bool
	n := b.c.Queued()
	left := make(chan error, 1)
	go func() {
		left <- b.c.Write(leftCtx, func(ctx context.Context, tx *groupcommit.Tx) error {
			ranLeft.Store(true)
			return insert(leftID)(ctx, tx)
		})
	}()
	require.Eventually(t, func() bool { return b.c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
	cancel()
	require.ErrorIs(t, <-left, context.Canceled)

	// Two live operations, so that the batch runs as one (not alone).
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	errs := b.queueInserts(t, &wg, ids)
	es.endAt.Store(es.writes.Load() + 2) // the lead's, then the batch's
	release()
	wg.Wait()
	for i, id := range ids {
		require.NoError(t, errs[i], "operation %d", i)
		require.True(t, b.exists(t, id), "operation %d", i)
	}
	require.False(t, ranLeft.Load(), "the operation whose caller left ran")
	require.False(t, b.exists(t, leftID), "the operation whose caller left was written")
}

// TestCommitter_RerunsCountsTheRunWithoutAnEnder: Stats.Reruns counts each
// run of a batch again: the run with savepoints after an operation failed,
// and then the run without the operation that ended the transaction
// (store.ErrTxEnded). TestCommitter_OperationThatEndsTheTransaction counts
// the store's Writes, not the Committer's Reruns.
func TestCommitter_RerunsCountsTheRunWithoutAnEnder(t *testing.T) {
	t.Parallel()
	b, _ := setupEndingStore(t)
	full := fmt.Errorf("insert items: database or disk is full: %w", store.ErrTxEnded)
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	ids := []uuid.UUID{uuid.New(), uuid.New()}
	var errs [2]error
	var errE error
	b.queue(t, &wg, func() { errs[0] = b.c.Write(b.ctx, insert(ids[0])) })
	b.queue(t, &wg, func() {
		errE = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { return full })
	})
	b.queue(t, &wg, func() { errs[1] = b.c.Write(b.ctx, insert(ids[1])) })
	before := b.c.Stats()
	release()
	wg.Wait()
	require.ErrorIs(t, errE, store.ErrTxEnded)
	for i, id := range ids {
		require.NoError(t, errs[i], "operation %d", i)
		require.True(t, b.exists(t, id), "operation %d", i)
	}
	after := b.c.Stats()
	// The batch (the held Write was counted as it began): one
	// transaction, run three times.
	require.Equal(t, before.Transactions+1, after.Transactions)
	require.Equal(t, before.Reruns+2, after.Reruns, "the run with savepoints, then the one without the operation that ended it")
}
