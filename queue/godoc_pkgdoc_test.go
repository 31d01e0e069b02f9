package queue_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestGodoc_PackageTryDequeueReasons: the package doc says TryDequeue
// "does not wait, and says why it has nothing: ErrEmpty or ErrAtCapacity".
// A caller switching on those two must not meet a third reason.
func TestGodoc_PackageTryDequeueReasons(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	b.campaignOf(t, uuid.Nil, p.UUID) // a Draft holds the pool
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.Nil(t, l)
	require.True(t, errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity),
		"TryDequeue with nothing to give: %v, neither ErrEmpty nor ErrAtCapacity", err)
}

// TestGodoc_PackageDNCSkipped: the package doc says that in a pool governed
// by a running campaign's rule, "Contacts on the do-not-call list ... are
// Skipped rather than dialled".
func TestGodoc_PackageDNCSkipped(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.rule(t, campaign.CreateRuleParams{StartTime: new("00:00"), EndTime: new("23:59"), DNCCheck: new(false)})
	p := b.pool(t, pool.FIFO, 1, 3)
	contacts := b.add(t, p.UUID, 1)
	c := b.campaignOf(t, r.UUID, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.AddDNC(b.ctx, contacts[0])
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty, "a contact on the do-not-call list is not dialled")
	require.Equal(t, pool.StatusSkipped, b.item(t, p.UUID, contacts[0]).Status)
}
