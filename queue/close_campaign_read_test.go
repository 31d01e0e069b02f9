package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// silentCampaignStore is a store whose read of a campaign, once armed,
// hangs until its context ends, as a read sent into a PostgreSQL
// connection gone silent (no FIN, no RST) does: such a read ends with its
// context only.
type silentCampaignStore struct {
	store.Store
	armed atomic.Bool
	hit   chan struct{}
}

func (s *silentCampaignStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Read(ctx, func(tx store.Tx) error { return fn(silentCampaignTx{tx, s}) })
}

type silentCampaignTx struct {
	store.Tx
	s *silentCampaignStore
}

func (tx silentCampaignTx) Campaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	if tx.s.armed.CompareAndSwap(true, false) {
		close(tx.s.hit)
		<-ctx.Done()
		return campaign.Campaign{}, ctx.Err()
	}
	return tx.Tx.Campaign(ctx, id)
}

// TestEngine_CloseEndsDequeueCampaignsSilentRead: a DequeueCampaign whose
// read of its campaign meets a database gone silent returns ErrClosed when
// the engine closes, as a Dequeue does. (That read was bounded by the
// caller's context only: the call stayed blocked past Close, its goroutine
// outliving the engine, until its own context ended, for a worker on
// context.Background never.)
func TestEngine_CloseEndsDequeueCampaignsSilentRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := &silentCampaignStore{Store: openFileStore(t, ""), hit: make(chan struct{})}
	eng, err := queue.New(st, queue.Options{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool one", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign one"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	callCtx, cancel := context.WithTimeout(ctx, time.Minute) // ends long after the test's bound
	defer cancel()
	got := make(chan error, 1)
	st.armed.Store(true)
	go func() { _, err := eng.DequeueCampaign(callCtx, c.UUID); got <- err }()
	select {
	case <-st.hit:
	case <-time.After(10 * time.Second):
		t.Fatal("DequeueCampaign read no campaign in 10 s")
	}
	require.NoError(t, eng.Close())
	select {
	case err := <-got:
		require.ErrorIs(t, err, queue.ErrClosed)
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatalf("DequeueCampaign still blocked 5 s after Close returned (then, at its own context's end: %v)", <-got)
	}
}
