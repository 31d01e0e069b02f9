package queue_test

// The tests of this file check that a caller serving several pools
// (DequeueCampaign, Work), which passes over the pools that are full
// without a claim (see campaignPass, runner.claim), is woken and claims
// when a slot frees in one: a lease settled on its engine or, on
// PostgreSQL, on another, a cap raised, and a lease's end with no
// settlement. PollInterval is an hour: a wake-up that does not come shows
// as a timeout.

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// fullWaiter starts, on eng, a caller blocked on pools ids, all full (b,
// over the same store, makes what it needs), and returns what it gets.
type fullWaiter struct {
	name  string
	start func(t *testing.T, b *testBundle, eng *queue.Engine, ids []uuid.UUID) <-chan ccResult
}

var fullWaiters = []fullWaiter{
	{"DequeueCampaign", func(t *testing.T, b *testBundle, eng *queue.Engine, ids []uuid.UUID) <-chan ccResult {
		c := b.campaignOf(t, uuid.Nil, ids...)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan ccResult, 1)
		go func() {
			l, err := eng.DequeueCampaign(ctx, c.UUID)
			got <- ccResult{l, err, time.Now()}
		}()
		t.Cleanup(cancel)
		return got
	}},
	{"Work", func(t *testing.T, _ *testBundle, eng *queue.Engine, ids []uuid.UUID) <-chan ccResult {
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan ccResult, 1)
		done := make(chan error, 1)
		go func() {
			done <- eng.Work(ctx, func(_ context.Context, l *queue.Lease) error {
				select {
				case got <- ccResult{l, nil, time.Now()}:
				default:
				}
				return nil
			}, queue.WorkOptions{Pools: ids})
		}()
		t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
		return got
	}},
}

// requireBlocked checks that nothing comes on got for a while.
func requireBlocked(t *testing.T, got <-chan ccResult, what string) {
	t.Helper()
	select {
	case r := <-got:
		t.Fatalf("%s: got lease %+v, err %v; every pool is full", what, r.l, r.err)
	case <-time.After(300 * time.Millisecond):
	}
}

// requireClaimed checks that got gives, within d, a lease of pool p.
func requireClaimed(t *testing.T, got <-chan ccResult, p uuid.UUID, d time.Duration, what string) ccResult {
	t.Helper()
	select {
	case r := <-got:
		require.NoError(t, r.err, what)
		require.Equal(t, p, r.l.PoolUUID, what)
		return r
	case <-time.After(d):
		t.Fatalf("%s: not woken within %v (PollInterval is an hour)", what, d)
		return ccResult{}
	}
}

// TestWake_FullPoolsSlotFreed: a caller blocked with every pool full is
// woken and claims in the pool where a lease is completed; in a pool whose
// cap was lowered below its leases, a lease completed frees no slot, and
// the cap raised does.
func TestWake_FullPoolsSlotFreed(t *testing.T) {
	for _, w := range fullWaiters {
		t.Run(w.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				eng := openEngine(t, st, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
				raiseCapWakes(t, w, eng, eng, "")
			})
		})
	}
	for i, typ := range []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel} {
		t.Run("Complete"+typ.String(), func(t *testing.T) {
			for _, w := range fullWaiters {
				t.Run(w.name, func(t *testing.T) {
					eachStore(t, func(t *testing.T, st store.Store) {
						eng := openEngine(t, st, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
						b, ids, leases, got := w.blockOnFull(t, eng, eng)
						require.NoError(t, eng.Complete(b.ctx, leases[i][0], "answered"))
						requireClaimed(t, got, ids[i], 5*time.Second, "a lease completed")
					})
				})
			}
		})
	}
}

// TestWake_FullPoolsLeaseEnds: a caller blocked with every pool full
// claims when the first lease ends, with no settlement to wake it: the
// lease's end is its wait.
func TestWake_FullPoolsLeaseEnds(t *testing.T) {
	for _, w := range fullWaiters {
		t.Run(w.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st store.Store) {
				eng := openEngine(t, st, queue.Options{PollInterval: time.Hour, LeaseTimeout: 1500 * time.Millisecond, RetryDelay: time.Hour})
				_, ids, leases, got := w.blockOnFull(t, eng, eng)
				end := leases[0][0].ExpiresAt // the first lease taken
				r := requireClaimed(t, got, ids[0], time.Until(end)+5*time.Second, "the first lease ended")
				require.False(t, r.at.Before(end), "claimed at %v, before the lease's end %v", r.at, end)
				t.Logf("claimed %v after the lease's end", r.at.Sub(end))
			})
		})
	}
}

// blockOnFull makes four full pools through actor (fullPoolsLeased: FIFO,
// LIFO, Parallel of cap 2, cap lowered to 1 under 3), starts w on waiter
// over them, and checks that it blocks.
func (w fullWaiter) blockOnFull(t *testing.T, waiter, actor *queue.Engine) (*testBundle, []uuid.UUID, [][]*queue.Lease, <-chan ccResult) {
	t.Helper()
	b := &testBundle{ctx: context.Background(), eng: actor}
	ids, leases := b.fullPoolsLeased(t, 4)
	got := w.start(t, b, waiter, ids)
	requireBlocked(t, got, "all full")
	return b, ids, leases, got
}

// raiseCapWakes blocks w on waiter with four full pools (FIFO, LIFO,
// Parallel of cap 2, cap lowered to 1 under 3; made by actor), then
// checks that a lease completed under the lowered cap leaves it blocked
// and the cap raised, by actor, wakes it to claim there.
func raiseCapWakes(t *testing.T, w fullWaiter, waiter, actor *queue.Engine, where string) {
	t.Helper()
	b, ids, leases, got := w.blockOnFull(t, waiter, actor)
	require.NoError(t, actor.Complete(b.ctx, leases[3][0], "answered"))
	requireBlocked(t, got, "a lease completed under the lowered cap"+where)
	three := 3
	_, err := actor.UpdatePool(b.ctx, ids[3], pool.UpdateParams{MaxParallelItems: &three})
	require.NoError(t, err)
	requireClaimed(t, got, ids[3], 5*time.Second, "the cap raised"+where)
}

// TestPostgres_WakeFullPoolsAcrossNodes: TestWake_FullPoolsSlotFreed with
// the slot freed on another node: a lease completed, released, or failed
// with a retry to come, a type switched to Parallel, or the cap raised.
func TestPostgres_WakeFullPoolsAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	engines, stores := pgEngines(t, url, 2, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour, RetryDelay: time.Hour})
	waiter, other := engines[0], engines[1]
	require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)
	// Each frees a slot of pool i of fullPoolsLeased's four (FIFO, LIFO,
	// Parallel of cap 2, cap lowered to 1 under 3) on the other node.
	frees := []struct {
		name string
		i    int
		free func(ctx context.Context, ids []uuid.UUID, leases [][]*queue.Lease) error
	}{
		{"Complete", 2, func(ctx context.Context, _ []uuid.UUID, leases [][]*queue.Lease) error {
			return other.Complete(ctx, leases[2][0], "answered")
		}},
		{"Release", 1, func(ctx context.Context, _ []uuid.UUID, leases [][]*queue.Lease) error {
			return other.Release(ctx, leases[1][0])
		}},
		{"FailRetry", 2, func(ctx context.Context, _ []uuid.UUID, leases [][]*queue.Lease) error {
			return other.Fail(ctx, leases[2][1], queue.Failure{Note: "busy"})
		}},
		{"TypeSwitched", 1, func(ctx context.Context, ids []uuid.UUID, _ [][]*queue.Lease) error {
			_, err := other.UpdatePool(ctx, ids[1], pool.UpdateParams{Type: pqPtr(pool.Parallel), MaxParallelItems: pqPtr(2)})
			return err
		}},
	}
	for _, w := range fullWaiters {
		t.Run(w.name, func(t *testing.T) {
			for _, f := range frees {
				t.Run(f.name, func(t *testing.T) {
					b, ids, leases, got := w.blockOnFull(t, waiter, other)
					require.NoError(t, f.free(b.ctx, ids, leases))
					requireClaimed(t, got, ids[f.i], 5*time.Second, f.name+" on the other node")
				})
			}
			t.Run("RaiseCap", func(t *testing.T) {
				raiseCapWakes(t, w, waiter, other, " on the other node")
			})
		})
	}
}
