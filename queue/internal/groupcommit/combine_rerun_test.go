package groupcommit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// restartingStore is a store whose Write runs its function twice, as the
// PostgreSQL store's does after a restart to take its locks in order or a
// serialization failure: first in a transaction that it rolls back, then
// again from the start in one that commits.
type restartingStore struct {
	store.Store
}

var errRestart = errors.New("restart the transaction")

func (s restartingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Write(ctx, func(tx store.Tx) error {
		_ = fn(tx)
		return errRestart // rolled back
	})
	if !errors.Is(err, errRestart) {
		return err
	}
	return s.Store.Write(ctx, fn)
}

// TestCommitter_CombinedInWriteRunTwice: a batch's function may run more
// than once inside one store Write (Func: "It may run more than once");
// each run must run every operation again, a combined call included, or
// the run that commits leaves out what only the rolled-back one wrote, and
// its callers get nil for writes that never happened. The other tests'
// stores run a Write's function once.
func TestCommitter_CombinedInWriteRunTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	h := &heldStore{Store: restartingStore{st}}
	c := groupcommit.New(h, groupcommit.Options{})
	t.Cleanup(c.Close)
	b := &bundle{ctx: ctx, st: h, c: c}

	var mu sync.Mutex
	var calls [][]any // the requests of each combined call, in order
	cb := &groupcommit.Combiner{Key: "k", Run: func(ctx context.Context, tx *groupcommit.Tx, reqs []any) error {
		mu.Lock()
		calls = append(calls, slices.Clone(reqs))
		mu.Unlock()
		for _, r := range reqs {
			if err := insert(r.(uuid.UUID))(ctx, tx); err != nil {
				return err
			}
		}
		return nil
	}}

	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	x, y, plain := uuid.New(), uuid.New(), uuid.New()
	var errX, errY, errPlain error
	b.queue(t, &wg, func() { errX = b.c.WriteCombined(b.ctx, cb, x) })
	b.queue(t, &wg, func() { errPlain = b.c.Write(b.ctx, insert(plain)) })
	b.queue(t, &wg, func() { errY = b.c.WriteCombined(b.ctx, cb, y) })
	release()
	wg.Wait()

	require.NoError(t, errX)
	require.NoError(t, errY)
	require.NoError(t, errPlain)
	require.True(t, b.exists(t, x), "x's caller got nil: its write is committed")
	require.True(t, b.exists(t, y), "y's caller got nil: its write is committed")
	require.True(t, b.exists(t, plain))
	require.Equal(t, [][]any{{x, y}, {x, y}}, calls, "the combined call runs again, whole, in the run that commits")
	require.Equal(t, uint64(0), b.c.Stats().Reruns, "the store's runs again are not the Committer's")
}
