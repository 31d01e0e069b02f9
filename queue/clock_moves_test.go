package queue_test

// Tests of a clock that moves while a transaction runs (a wait for the
// pool's lock on PostgreSQL): the writes after the wait are judged at the
// later instant (see lockedNow in engine.go), the clock scripted to move
// at one read of the transaction.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// clockMoveStore sets its clock to an instant, once armed, right after the
// next read of a pool's items in a write transaction (PoolItems, the read
// of a settlement; PoolDue, the first read of a claim), as if the read
// had waited for the pool's lock until then. The transaction's instant
// (read as it began) stays where it was.
type clockMoveStore struct {
	store.Store
	clk *clock
	to  atomic.Pointer[time.Time]
}

// moveAt arms s: its next PoolItems or PoolDue sets the clock to t.
func (s *clockMoveStore) moveAt(t time.Time) { s.to.Store(&t) }

func (s *clockMoveStore) moved() {
	if t := s.to.Swap(nil); t != nil {
		s.clk.mu.Lock()
		s.clk.t = *t
		s.clk.mu.Unlock()
	}
}

func (s *clockMoveStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(clockMoveTx{tx, s}) })
}

type clockMoveTx struct {
	store.Tx
	s *clockMoveStore
}

func (t clockMoveTx) PoolItems(ctx context.Context, id uuid.UUID, ids []int64) (pool.Pool, []pool.Item, error) {
	p, items, err := t.Tx.PoolItems(ctx, id, ids)
	t.s.moved()
	return p, items, err
}

func (t clockMoveTx) PoolDue(ctx context.Context, id uuid.UUID, now time.Time, limit int) (pool.Pool, []pool.Item, error) {
	p, items, err := t.Tx.PoolDue(ctx, id, now, limit)
	t.s.moved()
	return p, items, err
}

func (t clockMoveTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(tx store.Tx) error { return fn(clockMoveTx{tx, t.s}) })
}

// onBothStoresMoving is onBothStores over a clockMoveStore, with
// RetryDelay a second.
func onBothStoresMoving(t *testing.T, fn func(t *testing.T, b *testBundle, st *clockMoveStore)) {
	t.Helper()
	run := func(t *testing.T, base store.Store) {
		c := newClock()
		st := &clockMoveStore{Store: base, clk: c}
		eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: time.Second, Now: c.Now})
		fn(t, &testBundle{ctx: context.Background(), eng: eng, clock: c}, st)
	}
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		run(t, openFileStore(t, ""))
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		run(t, pgtest.Open(t, url, postgres.Options{MaxConns: 4}))
	})
}

// TestEngine_ExtendCountingFromTheLeasesEndIsLost: an Extend whose
// transaction began before the lease's end but waited for the pool until
// exactly its end counts from that end: the lease is over at its end
// instant (as everywhere in the engine: a lease expires once its end is
// not after now), so the extension is lost and changes nothing, not a new
// lease for a call another pool's claim may have taken for ended. An
// Extend that waited until an instant before the end counts from there.
func TestEngine_ExtendCountingFromTheLeasesEndIsLost(t *testing.T) {
	t.Parallel()
	onBothStoresMoving(t, func(t *testing.T, b *testBundle, st *clockMoveStore) {
		p := b.pool(t, pool.FIFO, 1, 3)
		c := b.add(t, p.UUID, 1)[0]
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, b.clock.Now().Add(testLease), l.ExpiresAt)

		// An instant before the end: extended, from that instant.
		b.clock.Advance(testLease / 2)
		before := l.ExpiresAt.Add(-time.Millisecond)
		st.moveAt(before)
		ext := *l
		require.NoError(t, b.eng.Extend(b.ctx, &ext, testLease/2))
		require.Equal(t, before.Add(testLease/2), ext.ExpiresAt, "the extension counts from the instant after the wait")
		end := ext.ExpiresAt

		// The wait ends at exactly the lease's end: lost.
		b.clock.Advance(testLease / 4) // the transaction begins with a quarter of the lease left
		st.moveAt(end)
		again := ext
		require.ErrorIs(t, b.eng.Extend(b.ctx, &again, testLease), queue.ErrLeaseLost,
			"an extension counting from the lease's end instant kept it alive")
		require.Equal(t, end, again.ExpiresAt, "the lost extension moved the lease's end")
		it := b.item(t, p.UUID, c)
		require.Equal(t, pool.StatusProcessing, it.Status, "nothing written: the expiry waits for the pool's next write")
		require.Equal(t, end, it.LeaseExpiresAt, "the lost extension wrote a new end")
		require.Equal(t, l.Token, it.Token)
		require.ErrorIs(t, b.eng.Complete(b.ctx, &again, "late"), queue.ErrLeaseLost, "the lease has ended")
	})
}

// TestEngine_ClaimWhoseClockMovedKeepsTheOrder: a claim whose transaction
// waited for the pool (its clock moved past lockWaitSlack after its first
// read) is judged at the later instant, and so are its due items: an item
// that became due during the wait and comes first in the pool's order
// (FIFO by insertion, LIFO newest first, Parallel by priority) is handed
// out first, not the item the read before the wait put first.
func TestEngine_ClaimWhoseClockMovedKeepsTheOrder(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		typ   pool.Type
		prio  []int
		first int // which of the two contacts comes first in typ's order
	}{
		{pool.FIFO, nil, 0},
		{pool.LIFO, nil, 1},
		{pool.Parallel, []int{0, 5}, 1},
	} {
		t.Run(string(tc.typ), func(t *testing.T) {
			t.Parallel()
			onBothStoresMoving(t, func(t *testing.T, b *testBundle, st *clockMoveStore) {
				p := b.pool(t, tc.typ, 1, 3)
				cs := b.add(t, p.UUID, 2, tc.prio...)
				first, other := cs[tc.first], cs[1-tc.first]

				l, err := b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err)
				require.Equal(t, first, l.ContactUUID)
				require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
				require.Equal(t, pool.StatusRetrying, b.item(t, p.UUID, first).Status)
				retryAt := b.clock.Now().Add(time.Second) // RetryDelay

				// The claim's transaction begins before the retry is
				// due (only the other contact is) and waits for the
				// pool until after it.
				st.moveAt(retryAt.Add(time.Second))
				l, err = b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err)
				require.Equal(t, first, l.ContactUUID,
					"the claim, judged after the wait, handed out an item that comes after one due then")
				require.Equal(t, 2, l.Attempt)
				require.Equal(t, retryAt.Add(time.Second).Add(testLease), l.ExpiresAt, "the lease counts from the instant after the wait")
				require.Equal(t, pool.StatusPending, b.item(t, p.UUID, other).Status)
			})
		})
	}
}
