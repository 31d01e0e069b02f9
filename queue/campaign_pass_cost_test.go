package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestDequeueCampaign_CostOfEmptyPools: a lease of DequeueCampaign costs
// one write transaction (its claim), however many of the campaign's pools
// have nothing to give. Here a campaign has 50 pools, of which only the
// last in its turn order has items: each of 5 leases, each starting at the
// first pool again (the turn moves past the last one), took a claim in
// every empty pool before it reached the one with items, each a write
// transaction (SQLite's one writer, PostgreSQL's pool lock and round
// trips) holding up the other writers for nothing: 79 ms a lease with 200
// pools on a file store.
func TestDequeueCampaign_CostOfEmptyPools(t *testing.T) {
	eachStore(t, campaignPassCost)
}

// eachStore runs fn as a subtest on a new in-memory SQLite store, and
// on a new PostgreSQL store when POOLQ_TEST_POSTGRES names a server.
func eachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("SQLite", func(t *testing.T) {
		oneGoroutine(t)
		st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{CheckCache: true})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		oneGoroutine(t)
		fn(t, pgtest.Open(t, url, postgres.Options{}))
	})
}

// emptyPools creates n pools without items and returns their UUIDs.
func (b *testBundle) emptyPools(t *testing.T, n int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = b.pool(t, pool.Parallel, 10, 3).UUID
	}
	return ids
}

// emptyPoolsCost opens an engine over st counted by a txCountStore (an
// hour's poll), and makes empty pools without items and then one pool of
// type typ and cap maxParallel holding leases items: the pools' UUIDs,
// the live one last, and its items' contacts.
func emptyPoolsCost(t *testing.T, st store.Store, empty, leases int, typ pool.Type, maxParallel int) (
	b *testBundle, cs *txCountStore, ids, want []uuid.UUID) {
	t.Helper()
	return poolsCost(t, st, func(b *testBundle) []uuid.UUID { return b.emptyPools(t, empty) }, leases, typ, maxParallel)
}

// poolsCost is emptyPoolsCost with the pools before the live one made by
// others.
func poolsCost(t *testing.T, st store.Store, others func(*testBundle) []uuid.UUID, leases int, typ pool.Type, maxParallel int) (
	b *testBundle, cs *txCountStore, ids, want []uuid.UUID) {
	t.Helper()
	cs = &txCountStore{Store: st}
	c := newClock()
	eng := openEngine(t, cs, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
	b = &testBundle{ctx: context.Background(), eng: eng, clock: c}
	ids = others(b)
	live := b.pool(t, typ, maxParallel, 3)
	want = b.add(t, live.UUID, leases)
	return b, cs, append(ids, live.UUID), want
}

func campaignPassCost(t *testing.T, st store.Store) {
	const empty = 49
	campaignPassCostBehind(t, st, empty, func(b *testBundle) []uuid.UUID { return b.emptyPools(t, empty) }, "empty")
}

// campaignPassCostBehind counts the write transactions of 5 leases of
// DequeueCampaign from a campaign of the n pools others makes (each with
// nothing to give: what describes them) then a live pool: one each.
func campaignPassCostBehind(t *testing.T, st store.Store, n int, others func(*testBundle) []uuid.UUID, what string) {
	const leases = 5
	b, ws, ids, want := poolsCost(t, st, others, leases, pool.Parallel, 10)
	ctx, eng := b.ctx, b.eng
	camp := b.campaignOf(t, uuid.Nil, ids...)
	_, err := eng.StartCampaign(ctx, camp.UUID)
	require.NoError(t, err)

	for i := range leases {
		ws.writes.Store(0)
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l, err := eng.DequeueCampaign(dctx, camp.UUID)
		cancel()
		require.NoError(t, err, "lease %d", i)
		require.Equal(t, want[i], l.ContactUUID, "lease %d", i)
		require.Equal(t, int64(1), ws.writes.Load(),
			"lease %d of a campaign of %d pools, %d of them %s: write transactions", i, n+1, n, what)
	}
}
