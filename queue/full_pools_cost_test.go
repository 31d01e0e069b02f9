package queue_test

import (
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// fullPools creates n pools at their cap with an item waiting in each, by
// turns a FIFO and a LIFO pool (serial: one item in flight), a Parallel
// pool of cap 2, and a Parallel pool whose cap was lowered from 3 to 1
// under its 3 leases; it returns their UUIDs. The pools stay full while
// the leases, held by nobody, last: the cost tests' clock does not move.
func (b *testBundle) fullPools(t *testing.T, n int) []uuid.UUID {
	t.Helper()
	ids, _ := b.fullPoolsLeased(t, n)
	return ids
}

// fullPoolsLeased is fullPools, and returns each pool's leases too.
func (b *testBundle) fullPoolsLeased(t *testing.T, n int) ([]uuid.UUID, [][]*queue.Lease) {
	t.Helper()
	ids, held := make([]uuid.UUID, n), make([][]*queue.Lease, n)
	for i := range ids {
		typ, limit, leases := pool.FIFO, 1, 1
		switch i % 4 {
		case 1:
			typ = pool.LIFO
		case 2:
			typ, limit, leases = pool.Parallel, 2, 2
		case 3:
			typ, limit, leases = pool.Parallel, 3, 3
		}
		p := b.pool(t, typ, limit, 3)
		b.add(t, p.UUID, leases+1)
		for range leases {
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			held[i] = append(held[i], l)
		}
		if i%4 == 3 {
			one := 1
			_, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &one})
			require.NoError(t, err)
		}
		_, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity, "pool %d", i)
		ids[i] = p.UUID
	}
	return ids, held
}

// TestDequeueCampaign_CostOfFullPools: a lease of DequeueCampaign costs
// one write transaction (its claim), however many of the campaign's pools
// are at their cap with items waiting. A claim in such a pool gives
// nothing (ErrAtCapacity) unless a lease of it has ended; each was a write
// transaction at every look, for 49 full pools here.
func TestDequeueCampaign_CostOfFullPools(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		const full = 49
		campaignPassCostBehind(t, st, full, func(b *testBundle) []uuid.UUID { return b.fullPools(t, full) }, "full")
	})
}

// TestWork_CostOfFullPools: what Work's claiming costs does not grow with
// its pools that are at their cap with items waiting (see
// TestDequeueCampaign_CostOfFullPools and TestWork_CostOfEmptyPools).
func TestWork_CostOfFullPools(t *testing.T) {
	const full = 49
	others := func(t *testing.T) func(b *testBundle) []uuid.UUID {
		return func(b *testBundle) []uuid.UUID { return b.fullPools(t, full) }
	}
	t.Run("Pools", func(t *testing.T) {
		eachStore(t, func(t *testing.T, st store.Store) { workCostBehind(t, st, false, full, others(t), "full") })
	})
	t.Run("Campaign", func(t *testing.T) {
		eachStore(t, func(t *testing.T, st store.Store) { workCostBehind(t, st, true, full, others(t), "full") })
	})
}
