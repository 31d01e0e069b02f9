package queue_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestGodoc_PackageTryDequeueReasons: the package doc says TryDequeue
// "does not wait, and says why it has nothing: ErrEmpty, ErrAtCapacity, or
// ErrHeld for a pool whose campaigns hold it".
func TestGodoc_PackageTryDequeueReasons(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	b.campaignOf(t, uuid.Nil, p.UUID) // a Draft holds the pool
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.Nil(t, l)
	require.ErrorIs(t, err, queue.ErrHeld)
	require.False(t, errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity))
}

// TestGodoc_PackageDNCSkipped: the package doc says that in a pool governed
// by a running campaign's rule, contacts on the do-not-call list are
// Skipped rather than dialled under a rule with dnc_check, and opted-out
// contacts under one with remove_on_opt_out; without the flag they are
// dialled.
func TestGodoc_PackageDNCSkipped(t *testing.T) {
	t.Parallel()
	for _, check := range []bool{true, false} {
		b := setup(t)
		r := b.rule(t, campaign.CreateRuleParams{StartTime: new("00:00"), EndTime: new("23:59"),
			DNCCheck: new(check), RemoveOnOptOut: new(check)})
		p := b.pool(t, pool.Parallel, 5, 3)
		contacts := b.add(t, p.UUID, 2)
		c := b.campaignOf(t, r.UUID, p.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		_, err = b.eng.AddDNC(b.ctx, contacts[0])
		require.NoError(t, err)
		_, err = b.eng.OptOut(b.ctx, contacts[1])
		require.NoError(t, err)
		for range 2 {
			_, err = b.eng.TryDequeue(b.ctx, p.UUID)
			if check {
				require.ErrorIs(t, err, queue.ErrEmpty, "with the flags, a listed contact is not dialled")
			} else {
				require.NoError(t, err, "without the flags, a listed contact is dialled")
			}
		}
		want := pool.StatusProcessing
		if check {
			want = pool.StatusSkipped
		}
		for _, ct := range contacts {
			require.Equal(t, want, b.item(t, p.UUID, ct).Status)
		}
	}
}

// TestGodoc_DeleteCampaignInFlight: DeleteCampaign is refused "with
// ErrInFlight while a contact two of its pools share is in a call from one
// of them", a Completed campaign too; ErrInFlight's doc names it.
func TestGodoc_DeleteCampaignInFlight(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	r := b.rule(t, campaign.CreateRuleParams{StartTime: new("00:00"), EndTime: new("23:59")})
	p1, p2 := b.pool(t, pool.FIFO, 1, 3), b.pool(t, pool.FIFO, 1, 3)
	contact := uuid.New()
	for _, p := range []uuid.UUID{p1.UUID, p2.UUID} {
		_, err := b.eng.Add(b.ctx, p, pool.NewItem{ContactUUID: contact})
		require.NoError(t, err)
	}
	c := b.campaignOf(t, r.UUID, p1.UUID, p2.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p1.UUID)
	require.NoError(t, err)
	_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.ErrorIs(t, b.eng.DeleteCampaign(b.ctx, c.UUID), queue.ErrInFlight)
	require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
	require.NoError(t, b.eng.DeleteCampaign(b.ctx, c.UUID))
}

// TestGodoc_DequeueCampaignWhenItFinishes: a DequeueCampaign waiting on a
// Paused campaign gets campaign.ErrWrongStatus "when it finishes", without
// waiting for PollInterval.
func TestGodoc_DequeueCampaignWhenItFinishes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := newClock()
	eng := openEngine(t, openMemStoreForGodoc(t), queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "Pool", Description: "d", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	cp, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "Camp"})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, cp.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, cp.UUID)
	require.NoError(t, err)
	_, err = eng.PauseCampaign(ctx, cp.UUID)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		l, err := eng.DequeueCampaign(ctx, cp.UUID)
		if l != nil {
			err = errors.New("got a lease from a paused campaign")
		}
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("DequeueCampaign on a Paused campaign returned: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	_, err = eng.CompleteCampaign(ctx, cp.UUID)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.ErrorIs(t, err, campaign.ErrWrongStatus)
	case <-time.After(30 * time.Second):
		t.Fatal("DequeueCampaign did not return when its campaign completed")
	}
}
