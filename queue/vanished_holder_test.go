package queue_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// requireLeaseLost checks that every operation of lease l is refused
// with ErrLeaseLost.
func requireLeaseLost(t *testing.T, b *testBundle, l *queue.Lease) {
	t.Helper()
	require.ErrorIs(t, b.eng.MarkInCall(b.ctx, l), queue.ErrLeaseLost, "MarkInCall")
	require.ErrorIs(t, b.eng.Extend(b.ctx, l, time.Minute), queue.ErrLeaseLost, "Extend")
	require.ErrorIs(t, b.eng.Release(b.ctx, l), queue.ErrLeaseLost, "Release")
	require.ErrorIs(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}), queue.ErrLeaseLost, "Fail")
	require.ErrorIs(t, b.eng.Complete(b.ctx, l, "answered"), queue.ErrLeaseLost, "Complete")
}

// TestEngine_VanishedHolderAroundItemOps: the holder of a lease vanished,
// its lease ended, and no claim or settlement has written the expiry yet
// when Remove, Skip, Requeue or SetPriority meets its item. Before the
// end, each is refused (ErrInFlight): the holder may still be calling.
// After it, each applies the expiry first (a failed attempt), then acts;
// the contact may be dialled again (from its item, or from the item it is
// added back as), and the old lease settles nothing: not the item it
// named, nor the new item of the contact (another item, its own tokens).
func TestEngine_VanishedHolderAroundItemOps(t *testing.T) {
	t.Parallel()
	// lapsed dispatches the only item of a new FIFO pool (max_retries
	// given) and moves the clock to its lease's end: the lease has ended,
	// its expiry is not written.
	lapsed := func(t *testing.T, b *testBundle, maxRetries int) (pool.Pool, uuid.UUID, *queue.Lease) {
		p := b.pool(t, pool.FIFO, 1, maxRetries)
		c := b.add(t, p.UUID, 1)[0]
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		b.clock.Advance(l.ExpiresAt.Sub(b.clock.Now()) - time.Second)
		_, err = b.eng.Remove(b.ctx, p.UUID, c)
		require.ErrorIs(t, err, queue.ErrInFlight, "Remove before the lease's end")
		_, err = b.eng.Skip(b.ctx, p.UUID, c, "no")
		require.ErrorIs(t, err, queue.ErrInFlight, "Skip before the lease's end")
		_, err = b.eng.SetPriority(b.ctx, p.UUID, c, 3)
		require.ErrorIs(t, err, queue.ErrInFlight, "SetPriority before the lease's end")
		b.clock.Advance(time.Second)
		return p, c, l
	}
	t.Run("RemoveAndAddBack", func(t *testing.T) {
		t.Parallel()
		onBothStores(t, func(t *testing.T, b *testBundle) {
			p, c, old := lapsed(t, b, 3)
			n, err := b.eng.Remove(b.ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, 1, n)
			_, err = b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: c})
			require.NoError(t, err)
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			require.Equal(t, c, l.ContactUUID)
			require.NotEqual(t, old.ItemID, l.ItemID)
			requireLeaseLost(t, b, old)
			it := b.item(t, p.UUID, c)
			require.Equal(t, pool.StatusProcessing, it.Status, "the new dispatch untouched")
			require.Equal(t, l.Token, it.Token)
			require.Equal(t, 1, it.Attempts)
			require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		})
	})
	t.Run("Skip", func(t *testing.T) {
		t.Parallel()
		onBothStores(t, func(t *testing.T, b *testBundle) {
			p, c, old := lapsed(t, b, 3)
			it, err := b.eng.Skip(b.ctx, p.UUID, c, "withdrawn")
			require.NoError(t, err)
			require.Equal(t, pool.StatusSkipped, it.Status)
			requireLeaseLost(t, b, old)
			it = b.item(t, p.UUID, c)
			require.Equal(t, pool.StatusSkipped, it.Status)
			require.Equal(t, 1, it.RetryCount, "the expiry applied first: a failed attempt")
			_, err = b.eng.TryDequeue(b.ctx, p.UUID)
			require.ErrorIs(t, err, queue.ErrEmpty)
		})
	})
	t.Run("Requeue", func(t *testing.T) {
		t.Parallel()
		onBothStores(t, func(t *testing.T, b *testBundle) {
			p, c, old := lapsed(t, b, 0) // the expiry fails the item: no retry left
			it, err := b.eng.Requeue(b.ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, pool.StatusPending, it.Status)
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			require.Equal(t, old.ItemID, l.ItemID, "the same item")
			require.Greater(t, l.Token, old.Token)
			requireLeaseLost(t, b, old)
			it = b.item(t, p.UUID, c)
			require.Equal(t, pool.StatusProcessing, it.Status)
			require.Equal(t, l.Token, it.Token)
			require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		})
	})
	t.Run("SetPriority", func(t *testing.T) {
		t.Parallel()
		onBothStores(t, func(t *testing.T, b *testBundle) {
			p, c, old := lapsed(t, b, 3)
			it, err := b.eng.SetPriority(b.ctx, p.UUID, c, 7)
			require.NoError(t, err)
			require.Equal(t, pool.StatusRetrying, it.Status, "the expiry applied first")
			require.Equal(t, 7, it.Priority)
			requireLeaseLost(t, b, old)
			require.Equal(t, pool.StatusRetrying, b.item(t, p.UUID, c).Status)
		})
	})
	// A pool duplicated with an item in flight: the copy is Pending with
	// no attempts, and the source's lease settles the source's item only.
	t.Run("DuplicateInFlight", func(t *testing.T) {
		t.Parallel()
		onBothStores(t, func(t *testing.T, b *testBundle) {
			p := b.pool(t, pool.FIFO, 1, 3)
			c := b.add(t, p.UUID, 1)[0]
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			d, err := b.eng.DuplicatePool(b.ctx, p.UUID, pool.DuplicateParams{})
			require.NoError(t, err)
			require.Equal(t, 1, d.ContactsCopied)
			cp := b.item(t, d.UUID, c)
			require.Equal(t, pool.StatusPending, cp.Status)
			require.Zero(t, cp.Attempts)
			require.Zero(t, cp.Token)
			require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
			require.Equal(t, pool.StatusCompleted, b.item(t, p.UUID, c).Status)
			require.Equal(t, pool.StatusPending, b.item(t, d.UUID, c).Status, "the copy untouched")
			l2, err := b.eng.TryDequeue(b.ctx, d.UUID)
			require.NoError(t, err)
			require.NotEqual(t, l.ItemID, l2.ItemID)
			requireLeaseLost(t, b, l)
			require.Equal(t, pool.StatusProcessing, b.item(t, d.UUID, c).Status)
		})
	})
}
