package groupcommit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/stretchr/testify/require"
)

// TestCommitter_CombinedCancelledWhileRunning: an operation gathered into
// another's combined call has started once that call begins: its caller,
// cancelled while the call runs, waits for the result and gets it, like the
// caller of a plain operation under way. A caller told context.Canceled
// must not find its request committed (a claim's leases would have no one
// to work them). TestCommitter_AbandonedCombinedOpDoesNotRun cancels
// before the batch is taken; here the cancellation comes in the middle of
// the call.
func TestCommitter_CombinedCancelledWhileRunning(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	a, later := uuid.New(), uuid.New()
	inCall, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cb := &groupcommit.Combiner{Key: "k", Run: func(ctx context.Context, tx *groupcommit.Tx, reqs []any) error {
		if slices.Contains(reqs, any(later)) {
			once.Do(func() { close(inCall) })
			<-proceed // the call is under way while later's caller is cancelled
		}
		for _, r := range reqs {
			if err := insert(r.(uuid.UUID))(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	}}

	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	// Two live operations besides, so that the batch runs as one (not
	// runAlone) and later's caller is not the last to go.
	plain := uuid.New()
	var errPlain, errA error
	b.queue(t, &wg, func() { errPlain = b.c.Write(b.ctx, insert(plain)) })
	b.queue(t, &wg, func() { errA = b.c.WriteCombined(b.ctx, cb, a) })
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	errLater := make(chan error, 1)
	b.queue(t, &wg, func() { errLater <- b.c.WriteCombined(ctx, cb, later) })
	release()

	<-inCall
	// later's caller now wakes on its context alone: its operation's done
	// is closed only after the call returns.
	cancel()
	close(proceed)
	wg.Wait()

	err := <-errLater
	committed := b.exists(t, later)
	if errors.Is(err, context.Canceled) {
		require.False(t, committed, "a caller told %v has its request committed by the combined call", err)
	}
	require.NoError(t, err, "a request in a combined call under way has started: its result stands")
	require.True(t, committed)
	require.NoError(t, errA)
	require.True(t, b.exists(t, a))
	require.NoError(t, errPlain)
	require.True(t, b.exists(t, plain))
}
