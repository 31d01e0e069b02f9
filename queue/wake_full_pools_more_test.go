package queue_test

// More of wake_full_pools_test.go's cases: a type switched to Parallel,
// the wake of a process sharing a SQLite file (its poll), and PoolWakes
// over many pools, each named twice.

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestWake_FullPoolsTypeSwitched: a FIFO pool at its cap whose
// max_parallel_items is raised stays full (serial: its cap is 1), and the
// caller blocked on it stays blocked; switched to Parallel, its cap is the
// raised one, and the caller is woken and claims.
func TestWake_FullPoolsTypeSwitched(t *testing.T) {
	for _, w := range fullWaiters {
		t.Run(w.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				eng := openEngine(t, st, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
				b, ids, _, got := w.blockOnFull(t, eng, eng)
				_, err := eng.UpdatePool(b.ctx, ids[0], pool.UpdateParams{MaxParallelItems: pqPtr(2)})
				require.NoError(t, err)
				requireBlocked(t, got, "FIFO, max_parallel_items 2: still a cap of 1")
				_, err = eng.UpdatePool(b.ctx, ids[0], pool.UpdateParams{Type: pqPtr(pool.Parallel)})
				require.NoError(t, err)
				requireClaimed(t, got, ids[0], 5*time.Second, "switched to Parallel")
			})
		})
	}
}

// TestWake_FullPoolsSharedFilePolls: two SQLite stores on one file, as two
// processes, have no signal between them: a caller blocked on full pools
// learns of a slot freed through the other store by its poll, and claims.
func TestWake_FullPoolsSharedFilePolls(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "poolq.db")
	s1, s2 := openFileStore(t, path), openFileStore(t, path)
	const poll = 300 * time.Millisecond
	other := openEngine(t, s1, queue.Options{PollInterval: poll, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
	waiter := openEngine(t, s2, queue.Options{PollInterval: poll, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
	for _, w := range fullWaiters {
		t.Run(w.name, func(t *testing.T) {
			b, ids, leases, got := w.blockOnFull(t, waiter, other)
			require.NoError(t, other.Complete(b.ctx, leases[0][0], "answered"))
			requireClaimed(t, got, ids[0], 5*time.Second, "completed through the other store")
		})
	}
}

// TestPoolWakes_ManyPoolsNamedTwice: PoolWakes of 400 pools, each named
// twice, and unknown ones: one answer a known pool, its Full and Due as
// its items make them.
func TestPoolWakes_ManyPoolsNamedTwice(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		eng := openEngine(t, st, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
		b := &testBundle{ctx: context.Background(), eng: eng}
		const n = 400
		var ids []uuid.UUID
		full := map[uuid.UUID]bool{}
		for i := range n {
			p := b.pool(t, pool.FIFO, 1, 3)
			ids = append(ids, p.UUID)
			if i%3 == 0 { // one item in flight, one waiting
				b.add(t, p.UUID, 2)
				_, err := eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err)
				full[p.UUID] = true
			}
		}
		ask := append(append(append([]uuid.UUID{}, ids...), ids...), uuid.New(), uuid.New())
		var got map[uuid.UUID]store.PoolWake
		require.NoError(t, st.Read(b.ctx, func(tx store.Tx) (err error) {
			got, err = tx.PoolWakes(b.ctx, ask...)
			return err
		}))
		require.Len(t, got, n)
		for _, id := range ids {
			require.Equal(t, full[id], got[id].Full, "pool %s", id)
			require.Equal(t, full[id], got[id].Due, "pool %s", id)
			require.Equal(t, full[id], got[id].HasNext, "pool %s: a lease's end", id)
		}
	})
}
