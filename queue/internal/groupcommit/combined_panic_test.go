package groupcommit_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/stretchr/testify/require"
)

// TestCommitter_CombinedPanic: DESIGN.md, "a panic anywhere in a write
// releases everyone waiting on it", for a combined call: a Run that panics
// on one request of its group is that request's error alone; the group's
// other requests, run again each on its own, and the batch's other
// operations commit, and no caller is left waiting.
func TestCommitter_CombinedPanic(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	boom := uuid.New()
	cb := &groupcommit.Combiner{Key: "k", Run: func(ctx context.Context, tx *groupcommit.Tx, reqs []any) error {
		for _, r := range reqs {
			id := r.(uuid.UUID)
			if id == boom {
				panic("boom")
			}
			if err := insert(id)(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	}}
	ids := []uuid.UUID{uuid.New(), boom, uuid.New()}
	plain := uuid.New()
	errs := make([]error, len(ids))
	var errPlain error
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	for i, id := range ids {
		b.queue(t, &wg, func() { errs[i] = b.c.WriteCombined(b.ctx, cb, id) })
	}
	b.queue(t, &wg, func() { errPlain = b.c.Write(b.ctx, insert(plain)) })
	release()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a caller of the batch whose combined call panicked was never released")
	}
	require.NoError(t, errs[0])
	require.ErrorContains(t, errs[1], "boom")
	require.NoError(t, errs[2])
	require.NoError(t, errPlain)
	require.True(t, b.exists(t, ids[0]))
	require.False(t, b.exists(t, boom))
	require.True(t, b.exists(t, ids[2]))
	require.True(t, b.exists(t, plain))
}
