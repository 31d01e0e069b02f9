package queue_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// txCountStore counts its read and write transactions.
type txCountStore struct {
	store.Store
	reads, writes atomic.Int64
}

func (s *txCountStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	s.reads.Add(1)
	return s.Store.Read(ctx, fn)
}

func (s *txCountStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.writes.Add(1)
	return s.Store.Write(ctx, fn)
}

// quiet waits until s has begun no transaction for 200 ms, and returns
// its counts then.
func (s *txCountStore) quiet() (reads, writes int64) {
	reads, writes = s.reads.Load(), s.writes.Load()
	for still := 0; still < 4; {
		time.Sleep(50 * time.Millisecond)
		r, w := s.reads.Load(), s.writes.Load()
		if r == reads && w == writes {
			still++
		} else {
			reads, writes, still = r, w, 0
		}
	}
	return reads, writes
}

// TestWork_CostOfEmptyPools: what Work's claiming costs does not grow
// with its pools that have nothing to give. Here Work serves 50 pools, of
// which only the last in its turn order has items (a FIFO pool: one item
// in flight at a time), with two workers, until its 5 items are settled
// and it pauses. Each claim cycle took a claim, a write transaction, in
// each of the 49 empty pools (the turn moves past the live pool, so every
// cycle met them first), and each pause a read transaction per pool for
// its next wake: 350 writes and 101 reads in all, where the leases' claims
// and completions are 10 writes. Work on the pools, and on a campaign of
// them; both stores.
func TestWork_CostOfEmptyPools(t *testing.T) {
	t.Run("Pools", func(t *testing.T) {
		eachStore(t, func(t *testing.T, st store.Store) { workCost(t, st, false) })
	})
	t.Run("Campaign", func(t *testing.T) {
		eachStore(t, func(t *testing.T, st store.Store) { workCost(t, st, true) })
	})
}

func workCost(t *testing.T, st store.Store, onCampaign bool) {
	const empty = 49
	workCostBehind(t, st, onCampaign, empty, func(b *testBundle) []uuid.UUID { return b.emptyPools(t, empty) }, "empty")
}

// workCostBehind counts the transactions of Work on the n pools others
// makes (each with nothing to give: what describes them) and a live FIFO
// pool of 5 items, or on a campaign of them, until the 5 are settled and
// Work pauses.
func workCostBehind(t *testing.T, st store.Store, onCampaign bool, n int, others func(*testBundle) []uuid.UUID, what string) {
	const leases = 5
	b, cs, ids, want := poolsCost(t, st, others, leases, pool.FIFO, 1)
	ctx, eng := b.ctx, b.eng
	rec := newRecorder(settledN(leases))
	opts := queue.WorkOptions{Workers: 2, OnEvent: rec.on}
	if onCampaign {
		camp := b.campaignOf(t, uuid.Nil, ids...)
		_, err := eng.StartCampaign(ctx, camp.UUID)
		require.NoError(t, err)
		opts.Campaigns = []uuid.UUID{camp.UUID}
	} else {
		opts.Pools = ids
	}

	cs.reads.Store(0)
	cs.writes.Store(0)
	wctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- eng.Work(wctx, func(context.Context, *queue.Lease) error { return nil }, opts)
	}()
	select {
	case <-rec.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the live pool's items were not all settled")
	}
	// Then the look that the last completion wakes finds nothing, and
	// produce pauses (an hour): the counts stop.
	reads, writes := cs.quiet()
	cancel()
	require.NoError(t, <-errc)
	require.Equal(t, leases, rec.count(queue.EventCompleted))
	for _, id := range want {
		require.Equal(t, pool.StatusCompleted, b.item(t, ids[len(ids)-1], id).Status)
	}
	// A lease's claim and completion are two writes; each look reads which
	// pools may give (and first, on a campaign, the campaign), a look that
	// finds the live pool at its cap passes it over too and reads the
	// pools' next wakes, and wake-ups that race add looks: a few of each a
	// lease, not one per other pool (10 writes and 9 to 18 reads in all
	// with empty pools, 10 and 12 to 26 with full ones, when each was fixed).
	// On a campaign each look reads three times (campaign, wakes, next
	// wakes), and 29 reads were seen in 20 runs: reads get a wider bound,
	// still half the 101 that a read per pool cost before.
	const perLease, readsPerLease = 6, 10
	t.Logf("%d leases: %d writes, %d reads", leases, writes, reads)
	require.LessOrEqual(t, writes, int64(perLease*leases),
		"write transactions for %d leases from %d pools, %d of them %s", leases, n+1, n, what)
	require.LessOrEqual(t, reads, int64(readsPerLease*leases),
		"read transactions for %d leases from %d pools, %d of them %s", leases, n+1, n, what)
}

// TestWork_ClaimsARetryWhenItComesDue: a pool whose only item waits for
// its retry time is passed over by Work's claims until that time, then
// claimed, with no Add or other wake-up to bring the look: its time,
// read with the pools that may give, is the pause's end, and a pool with
// a retry time at or before now is claimed in though its due set is
// empty. 20 empty pools beside it, an hour's safety poll.
func TestWork_ClaimsARetryWhenItComesDue(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	ids := make([]uuid.UUID, 0, 21)
	for range 20 {
		ids = append(ids, b.pool(t, pool.Parallel, 10, 3).UUID)
	}
	live := b.pool(t, pool.Parallel, 10, 3)
	ids = append(ids, live.UUID)
	contact := b.add(t, live.UUID, 1)[0]
	var calls atomic.Int32
	rec := newRecorder(func(evs []queue.Event) bool {
		for _, ev := range evs {
			if ev.Kind == queue.EventCompleted {
				return true
			}
		}
		return false
	})
	ctx, cancel := context.WithCancel(b.ctx)
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			if calls.Add(1) == 1 {
				return queue.RetryAt(time.Now().Add(100*time.Millisecond), errors.New("busy"))
			}
			return nil
		}, queue.WorkOptions{Pools: ids, OnEvent: rec.on})
	}()
	select {
	case <-rec.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the retry was not claimed when its time came")
	}
	cancel()
	require.NoError(t, <-errc)
	require.Equal(t, int32(2), calls.Load())
	require.Equal(t, pool.StatusCompleted, b.item(t, live.UUID, contact).Status)
}
