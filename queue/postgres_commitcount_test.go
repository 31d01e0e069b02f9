package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestPostgres_CommitReplyLostCounted: a write whose COMMIT's answer is
// lost, and which the Store then learns committed, returns nil, and
// counts in Stats().Commits like any commit.
func TestPostgres_CommitReplyLostCounted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, st := proxiedStore(t, connFailOptions)
	now := time.Now().UTC()
	p := pool.Pool{UUID: uuid.New(), Name: "lost", Description: "commit reply lost", Type: pool.FIFO,
		MaxParallelItems: 1, MaxRetries: 3, IsActive: true, CreatedAt: now, UpdatedAt: now}
	before := st.Stats().Commits

	px.cutCommit.Store(true)
	err := within(t, "Write", px.close, func() error {
		return st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) })
	})
	require.EqualValues(t, 1, px.cuts.Load(), "the proxy lost the commit's reply")
	require.NoError(t, err, "committed after all")
	require.Equal(t, before+1, st.Stats().Commits, "a commit learned late is a commit")
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }))
}
