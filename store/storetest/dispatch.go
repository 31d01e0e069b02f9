package storetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

func dispatchTests() []test {
	return []test{
		{"InFlight/OK", testInFlight},
		{"Due/Orders", testDueOrders},
		{"Due/ParallelEqualPriorities", testDueParallelTies},
		{"Due/Limit", testDueLimit},
		{"Due/OnlyWaitingItems", testDueOnlyWaiting},
		{"Due/PendingWithRetryTime", testDuePendingWithRetryTime},
		{"Due/RetriedKeepTheirPlace", testDueRetriedKeepPlace},
		{"Due/Promotion", testDuePromotion},
		{"Due/PromotedThenUpdated", testDuePromotedThenUpdated},
		{"Due/NowGoesBack", testDueNowGoesBack},
		{"Due/NowBehindPromotion", testDueNowBehindPromotion},
		{"Due/NowBehindPromotionFewer", testDueNowBehindPromotionFewer},
		{"Due/OtherPools", testDueOtherPools},
		{"Due/FullItems", testDueFullItems},
		{"PoolDue/AsPoolThenDue", testPoolDue},
		{"PoolDue/ReadBehindTheLock", testPoolDueBehindLock},
		{"PoolDue/SettingsChanged", testPoolDueSettingsChanged},
		{"PoolDue/OnlyWaitingItems", testPoolDueOnlyWaiting},
		{"PoolDue/NowBehindPromotion", testPoolDueNowBehindPromotion},
		{"Expired/OK", testExpired},
		{"NextWake/OK", testNextWake},
		{"NextWake/AfterUpdateItems", testNextWakeUpdateItems},
		{"NextWake/AfterInsertItems", testNextWakeInsertItems},
		{"PoolWakes/OK", testPoolWakes},
		{"PoolWakes/AfterDue", testPoolWakesAfterDue},
		{"PoolWakes/Full", testPoolWakesFull},
		{"PoolWakes/CapChanged", testPoolWakesCapChanged},
	}
}

// due runs Due in a write transaction.
func (b *bundle) due(id uuid.UUID, typ pool.Type, now time.Time, limit int) []pool.Item {
	b.t.Helper()
	var out []pool.Item
	b.write(func(tx store.Tx) (err error) {
		out, err = tx.Due(b.ctx, id, typ, now, limit)
		return err
	})
	return out
}

// dueIDs returns the IDs of the due items.
func (b *bundle) dueIDs(id uuid.UUID, typ pool.Type, now time.Time, limit int) []int64 {
	b.t.Helper()
	return ids(b.due(id, typ, now, limit))
}

// nextWake runs NextWake in a read transaction.
func (b *bundle) nextWake(id uuid.UUID) (time.Time, bool) {
	b.t.Helper()
	var w time.Time
	var ok bool
	b.read(func(tx store.Tx) (err error) {
		w, ok, err = tx.NextWake(b.ctx, id)
		return err
	})
	return w, ok
}

// set changes items[i] with mod and stores it.
func (b *bundle) set(items []pool.Item, i int, mod func(*pool.Item)) {
	b.t.Helper()
	mod(&items[i])
	b.update(items[i])
}

func retrying(at time.Time) func(*pool.Item) {
	return func(it *pool.Item) {
		it.Status = pool.StatusRetrying
		it.Attempts, it.RetryCount = 1, 1
		it.NextRetryAt = &at
	}
}

func scheduled(at time.Time) func(*pool.Item) {
	return func(it *pool.Item) {
		it.Status = pool.StatusScheduled
		it.Attempts, it.RetryCount = 1, 1
		it.NextRetryAt = &at
	}
}

func inFlight(status pool.Status, lease time.Time) func(*pool.Item) {
	return func(it *pool.Item) {
		it.Status = status
		it.Attempts++
		it.Token++
		it.NextRetryAt = nil
		it.LeaseExpiresAt = lease
	}
}

func status(s pool.Status) func(*pool.Item) {
	return func(it *pool.Item) { it.Status = s; it.NextRetryAt = nil; it.LeaseExpiresAt = time.Time{} }
}

func reversed(s []int64) []int64 {
	out := slices.Clone(s)
	slices.Reverse(out)
	return out
}

func testInFlight(t *testing.T, b *bundle) {
	p, other := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(6))
	o := b.insertItems(other.UUID, pending(1))
	b.set(o, 0, inFlight(pool.StatusProcessing, at(time.Hour)))
	count := func() int {
		var n int
		b.read(func(tx store.Tx) (err error) {
			n, err = tx.InFlight(b.ctx, p.UUID)
			return err
		})
		return n
	}
	require.Zero(t, count())
	b.set(items, 0, inFlight(pool.StatusProcessing, at(time.Hour)))
	b.set(items, 1, inFlight(pool.StatusInCall, at(time.Hour)))
	b.set(items, 2, retrying(at(time.Hour)))
	b.set(items, 3, status(pool.StatusCompleted))
	require.Equal(t, 2, count())
	b.set(items, 1, status(pool.StatusFailed))
	require.Equal(t, 1, count())
}

func testDueOrders(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := pending(6)
	for i, pr := range []int{0, 5, -1, 10, 5, 3} {
		items[i].Priority = pr
	}
	items = b.insertItems(p.UUID, items)
	all := ids(items)
	now := at(time.Hour)

	require.Equal(t, all, b.dueIDs(p.UUID, pool.FIFO, now, 100), "FIFO: oldest first, priority ignored")
	require.Equal(t, reversed(all), b.dueIDs(p.UUID, pool.LIFO, now, 100), "LIFO: newest first, priority ignored")
	require.Equal(t,
		[]int64{items[3].ID, items[1].ID, items[4].ID, items[5].ID, items[0].ID, items[2].ID},
		b.dueIDs(p.UUID, pool.Parallel, now, 100), "Parallel: highest priority first, then oldest")
}

func testDueParallelTies(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type = pool.Parallel })
	items := b.insertItems(p.UUID, pending(5)) // all priority 0
	require.Equal(t, ids(items), b.dueIDs(p.UUID, pool.Parallel, t0, 10))

	b.set(items, 3, func(it *pool.Item) { it.Priority = 1 })
	b.set(items, 4, func(it *pool.Item) { it.Priority = 1 })
	require.Equal(t,
		[]int64{items[3].ID, items[4].ID, items[0].ID, items[1].ID, items[2].ID},
		b.dueIDs(p.UUID, pool.Parallel, t0, 10))
}

func testDueLimit(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := pending(5)
	items[4].Priority = 9
	items = b.insertItems(p.UUID, items)
	now := at(time.Minute)
	require.Equal(t, ids(items[:2]), b.dueIDs(p.UUID, pool.FIFO, now, 2))
	require.Equal(t, []int64{items[4].ID, items[3].ID}, b.dueIDs(p.UUID, pool.LIFO, now, 2))
	require.Equal(t, []int64{items[4].ID}, b.dueIDs(p.UUID, pool.Parallel, now, 1))
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, now, 1))
	require.Empty(t, b.dueIDs(p.UUID, pool.FIFO, now, 0))
}

func testDueOnlyWaiting(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(8))
	b.set(items, 1, inFlight(pool.StatusProcessing, at(-time.Hour))) // lease over: still not due
	b.set(items, 2, inFlight(pool.StatusInCall, at(time.Hour)))
	b.set(items, 3, status(pool.StatusCompleted))
	b.set(items, 4, status(pool.StatusFailed))
	b.set(items, 5, status(pool.StatusSkipped))
	b.set(items, 6, retrying(at(2*time.Hour)))
	b.set(items, 7, scheduled(at(2*time.Hour)))
	now := at(time.Hour)
	for _, typ := range pool.Types() {
		require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, typ, now, 10), "%s", typ)
	}
	// A terminal item with a stale retry time is not due either.
	b.set(items, 3, func(it *pool.Item) { it.NextRetryAt = ptr(at(0)) })
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, now, 10))
}

// testDuePendingWithRetryTime: a Pending item is due whatever its
// NextRetryAt says, and stays due through a Due that reads the whole due
// set while a retry waits (that Due gives back to the waiting set only the
// retries that are not due yet).
func testDuePendingWithRetryTime(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type = pool.Parallel })
	items := b.insertItems(p.UUID, pending(3))
	b.set(items, 0, func(it *pool.Item) { it.NextRetryAt = ptr(at(2 * time.Hour)) })
	b.set(items, 1, retrying(at(2*time.Hour)))
	now := at(time.Hour)
	want := []int64{items[0].ID, items[2].ID}
	for range 2 { // the second time after the first gave back the retry
		require.Equal(t, want, b.dueIDs(p.UUID, pool.FIFO, now, 10))
		require.Equal(t, reversed(want), b.dueIDs(p.UUID, pool.LIFO, now, 10))
		require.Equal(t, want, b.dueIDs(p.UUID, pool.Parallel, now, 10))
	}
	var due []pool.Item
	b.write(func(tx store.Tx) (err error) {
		_, due, err = tx.PoolDue(b.ctx, p.UUID, now, 10)
		return err
	})
	require.Equal(t, want, ids(due))
	w, ok := b.nextWake(p.UUID)
	require.True(t, ok)
	require.True(t, w.Equal(at(2*time.Hour)), "the retry's time, not the Pending item's: %v", w)
}

func testDueRetriedKeepPlace(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := pending(4)
	items[1].Priority = 5
	items = b.insertItems(p.UUID, items)
	retryAt := at(time.Hour)
	b.set(items, 1, retrying(retryAt))
	all := ids(items)
	without := []int64{all[0], all[2], all[3]}
	before := retryAt.Add(-time.Nanosecond)

	require.Equal(t, without, b.dueIDs(p.UUID, pool.FIFO, before, 10))
	require.Equal(t, reversed(without), b.dueIDs(p.UUID, pool.LIFO, before, 10))
	require.Equal(t, without, b.dueIDs(p.UUID, pool.Parallel, before, 10))

	require.Equal(t, all, b.dueIDs(p.UUID, pool.FIFO, retryAt, 10))
	require.Equal(t, reversed(all), b.dueIDs(p.UUID, pool.LIFO, retryAt, 10))
	require.Equal(t, []int64{all[1], all[0], all[2], all[3]}, b.dueIDs(p.UUID, pool.Parallel, retryAt, 10))
	require.Equal(t, all[:2], b.dueIDs(p.UUID, pool.FIFO, retryAt, 2))
}

func testDuePromotion(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(4))
	b.set(items, 0, scheduled(at(3*time.Hour)))
	b.set(items, 1, retrying(at(time.Hour)))
	b.set(items, 2, scheduled(at(2*time.Hour)))
	b.set(items, 3, status(pool.StatusCompleted))

	require.Empty(t, b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 10), "not before next_retry_at")
	require.Equal(t, []int64{items[1].ID}, b.dueIDs(p.UUID, pool.FIFO, at(time.Hour), 10), "at next_retry_at")
	require.Equal(t, []int64{items[1].ID}, b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour-1), 10))
	require.Equal(t, []int64{items[1].ID, items[2].ID}, b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour+1), 10))
	require.Equal(t, ids(items[:3]), b.dueIDs(p.UUID, pool.FIFO, at(100*time.Hour), 10))

	// Due changes no item.
	for _, it := range items {
		require.Equal(t, it, b.item(it.ID))
	}
}

func testDuePromotedThenUpdated(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(2))
	b.set(items, 0, retrying(at(time.Hour)))
	b.set(items, 1, status(pool.StatusCompleted))
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour), 10))

	// An update that keeps the status and the retry time keeps it due.
	b.set(items, 0, func(it *pool.Item) { it.Priority = 7 })
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.Parallel, at(time.Hour), 10))

	// Dispatched: no longer due.
	b.set(items, 0, inFlight(pool.StatusProcessing, at(2*time.Hour)))
	require.Empty(t, b.dueIDs(p.UUID, pool.FIFO, at(time.Hour), 10))

	// Failed again, with a later retry time: due only from then.
	b.set(items, 0, retrying(at(3*time.Hour)))
	require.Empty(t, b.dueIDs(p.UUID, pool.FIFO, at(3*time.Hour-1), 10))
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, at(3*time.Hour), 10))

	// Rescheduled later while due: not due until the new time.
	b.set(items, 0, scheduled(at(5*time.Hour)))
	require.Empty(t, b.dueIDs(p.UUID, pool.FIFO, at(4*time.Hour), 10))

	// Released (back to Pending): due at once.
	b.set(items, 0, status(pool.StatusPending))
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, at(4*time.Hour), 10))

	// Requeued from a terminal status.
	b.set(items, 1, status(pool.StatusPending))
	require.Equal(t, ids(items), b.dueIDs(p.UUID, pool.FIFO, at(0), 10))
}

func testDueNowGoesBack(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(2))
	b.set(items, 0, retrying(at(time.Hour)))
	require.Equal(t, ids(items), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour), 10))
	require.Equal(t, ids(items[1:]), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 10),
		"an item is due at now, whatever Due saw before")
}

// testDueNowBehindPromotion checks NextWake after a Due at a later now
// (another node's clock, ahead of this one's) found retries due and left
// them unclaimed: a Due at an earlier now that finds nothing due gives
// them back to the waiting set, so that NextWake, read next by a caller
// about to wait, names their retry times again. Left out, that caller
// would sleep past them, to its safety poll.
func testDueNowBehindPromotion(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	b.set(items, 0, retrying(at(time.Hour)))
	b.set(items, 1, scheduled(at(2*time.Hour)))
	b.set(items, 2, inFlight(pool.StatusProcessing, at(3*time.Hour)))
	wake := func() (time.Time, bool) { return b.nextWake(p.UUID) }
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour), 1), "both promoted, one returned")
	w, ok := wake()
	require.True(t, ok)
	require.Equal(t, at(3*time.Hour), w, "the promoted retries are left out")

	require.Empty(t, b.due(p.UUID, pool.FIFO, at(time.Hour-1), 10), "nothing due an instant before the first")
	w, ok = wake()
	require.True(t, ok)
	require.Equal(t, at(time.Hour), w, "the retries Due gave back are waited for again")
	require.Equal(t, ids(items[:2]), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour), 10), "and found due at their times")

	// A Due that returns items but fewer than its limit read the whole due
	// set too: its caller may pass them over (a contact in a call
	// elsewhere) and wait. One that returns its limit gives nothing back.
	more := b.insertItems(p.UUID, pending(1))
	require.Equal(t, ids(more), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 1), "its limit: the due set not read whole")
	w, ok = wake()
	require.True(t, ok)
	require.Equal(t, at(3*time.Hour), w, "the marked retries, still left out")
	require.Equal(t, ids(more), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 2), "fewer than its limit")
	w, ok = wake()
	require.True(t, ok)
	require.Equal(t, at(time.Hour), w, "the retries given back")
}

// testDueNowBehindPromotionFewer is testDueNowBehindPromotion with an item
// due at the earlier now too (one its caller passes over, say): a Due that
// returns fewer than its limit has exhausted the due set, and gives back
// the retries marked at the later now as well.
func testDueNowBehindPromotionFewer(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	b.set(items, 0, retrying(at(time.Hour)))
	b.set(items, 1, scheduled(at(2*time.Hour)))
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour), 1), "both promoted, one returned")
	require.Equal(t, ids(items[2:]), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 10), "only the pending item is due")
	w, ok := b.nextWake(p.UUID)
	require.True(t, ok)
	require.Equal(t, at(time.Hour), w, "the retries Due gave back are waited for again")
}

func testDueOtherPools(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	inQ := b.insertItems(q.UUID, pending(2))
	inP := b.insertItems(p.UUID, pending(2))
	b.set(inQ, 0, retrying(at(0)))
	for _, typ := range pool.Types() {
		got := b.due(p.UUID, typ, at(time.Hour), 10)
		require.Len(t, got, 2)
		for _, it := range got {
			require.Equal(t, p.UUID, it.PoolUUID)
		}
	}
	require.ElementsMatch(t, ids(inP), b.dueIDs(p.UUID, pool.LIFO, at(time.Hour), 10))
	require.Equal(t, ids(inQ), b.dueIDs(q.UUID, pool.FIFO, at(time.Hour), 10))
}

func testDueFullItems(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := fullItems()
	items[4].Status = pool.StatusScheduled // was Completed
	items[4].NextRetryAt = ptr(at(time.Minute))
	items = b.insertItems(p.UUID, items)
	got := b.due(p.UUID, pool.FIFO, at(time.Hour), 10)
	require.Equal(t, []pool.Item{items[0], items[1], items[4]}, got, "every field, as ItemByID returns it")
	got = b.due(p.UUID, pool.FIFO, at(3*time.Hour), 10)
	require.Equal(t, []pool.Item{items[0], items[1], items[3], items[4]}, got)
}

func testExpired(t *testing.T, b *bundle) {
	p, other := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(6))
	o := b.insertItems(other.UUID, pending(1))
	b.set(o, 0, inFlight(pool.StatusProcessing, at(0)))
	b.set(items, 0, inFlight(pool.StatusProcessing, at(3*time.Minute)))
	b.set(items, 1, inFlight(pool.StatusInCall, at(time.Minute)))
	b.set(items, 2, inFlight(pool.StatusProcessing, at(2*time.Minute)))
	b.set(items, 3, inFlight(pool.StatusProcessing, at(time.Hour)))
	b.set(items, 4, retrying(at(0)))
	b.set(items, 5, status(pool.StatusCompleted))

	// Each in a read and in a write transaction, which reads the pool's
	// state first: the earliest lease, its own bound, must be the earliest.
	expired := func(now time.Time, limit int) []pool.Item {
		var out, inWrite []pool.Item
		b.read(func(tx store.Tx) (err error) {
			out, err = tx.Expired(b.ctx, p.UUID, now, limit)
			return err
		})
		b.write(func(tx store.Tx) (err error) {
			inWrite, err = tx.Expired(b.ctx, p.UUID, now, limit)
			return err
		})
		require.Equal(t, out, inWrite, "in a write transaction, at %v", now)
		return out
	}
	require.Empty(t, expired(at(time.Minute-1), 10))
	require.Equal(t, []pool.Item{items[1]}, expired(at(time.Minute), 10), "a lease ending at now has ended")
	require.Equal(t, []pool.Item{items[1], items[2], items[0]}, expired(at(30*time.Minute), 10), "earliest first")
	require.Equal(t, []pool.Item{items[1], items[2]}, expired(at(30*time.Minute), 2))
	require.Len(t, expired(at(100*time.Hour), 10), 4)

	// A settled item has no lease.
	b.set(items, 1, status(pool.StatusCompleted))
	require.Equal(t, []pool.Item{items[2], items[0]}, expired(at(30*time.Minute), 10))
	// An extended lease moves.
	b.set(items, 2, func(it *pool.Item) { it.LeaseExpiresAt = at(4 * time.Minute) })
	require.Equal(t, []pool.Item{items[0], items[2]}, expired(at(30*time.Minute), 10))
}

// testNextWake checks NextWake in states that no Due has seen, then that
// an item Due has already found due is left out (else a caller waiting at
// capacity would wake at once, in a loop, at a retry time past).
func testNextWake(t *testing.T, b *bundle) {
	p, other := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(7))
	o := b.insertItems(other.UUID, pending(2))
	b.set(o, 0, retrying(at(-time.Hour)))
	b.set(o, 1, inFlight(pool.StatusProcessing, at(-time.Hour)))

	wake := func() (time.Time, bool) { return b.nextWake(p.UUID) }
	requireWake := func(want time.Time, msg string) {
		t.Helper()
		w, ok := wake()
		require.True(t, ok, msg)
		require.Equal(t, want, w, msg)
	}

	_, ok := wake()
	require.False(t, ok, "only Pending items")
	b.set(items, 5, status(pool.StatusCompleted))
	b.set(items, 6, func(it *pool.Item) { // terminal, with leftovers
		it.Status = pool.StatusFailed
		it.NextRetryAt = ptr(at(-time.Hour))
	})
	_, ok = wake()
	require.False(t, ok, "Pending and terminal items")

	b.set(items, 0, retrying(at(5*time.Hour)))
	requireWake(at(5*time.Hour), "a retry time")
	b.set(items, 1, scheduled(at(3*time.Hour)))
	requireWake(at(3*time.Hour), "the earliest retry time")
	b.set(items, 2, inFlight(pool.StatusProcessing, at(4*time.Hour)))
	requireWake(at(3*time.Hour), "a later lease")
	b.set(items, 3, inFlight(pool.StatusInCall, at(time.Hour)))
	requireWake(at(time.Hour), "an earlier lease")

	b.set(items, 3, status(pool.StatusCompleted))
	requireWake(at(3*time.Hour), "the lease settled")
	b.set(items, 1, inFlight(pool.StatusProcessing, at(6*time.Hour)))
	requireWake(at(4*time.Hour), "the earliest retry dispatched")
	b.set(items, 2, status(pool.StatusCompleted))
	requireWake(at(5*time.Hour), "")
	b.set(items, 0, inFlight(pool.StatusProcessing, at(7*time.Hour)))
	requireWake(at(6*time.Hour), "")
	b.set(items, 0, status(pool.StatusCompleted))
	b.set(items, 1, status(pool.StatusSkipped))
	_, ok = wake()
	require.False(t, ok, "nothing left to wait for")

	// A retry whose time has come, found due by a Due that took nothing
	// (a claim at capacity), behind a lease that ends later.
	b.set(items, 2, retrying(at(-time.Hour)))
	b.set(items, 3, inFlight(pool.StatusProcessing, at(time.Hour)))
	requireWake(at(-time.Hour), "a retry time past, not yet found due")
	b.write(func(tx store.Tx) error {
		_, err := tx.Due(b.ctx, p.UUID, p.Type, at(0), 1)
		return err
	})
	requireWake(at(time.Hour), "the lease's end, not the retry a Due found due")
}

// testNextWakeInsertItems checks that the retry times of Retrying and
// Scheduled items added as such by InsertItems, which no Due has found due,
// are NextWake's, and that they are due from then on, not before.
func testNextWakeInsertItems(t *testing.T, b *bundle) {
	for _, st := range []pool.Status{pool.StatusRetrying, pool.StatusScheduled} {
		p := b.insertPool()
		waiting := pool.Item{ContactUUID: uuid.New(), Status: st, Attempts: 1, RetryCount: 1,
			StartedAt: ptr(t0), NextRetryAt: ptr(at(2 * time.Hour)), AddedAt: t0, Token: 1}
		items := b.insertItems(p.UUID, []pool.Item{waiting, pending(1)[0]})
		for _, write := range []bool{false, true} {
			var w time.Time
			var ok bool
			b.inTx(write, func(tx store.Tx) (err error) {
				w, ok, err = tx.NextWake(b.ctx, p.UUID)
				return err
			})
			require.True(t, ok, "%s, write %v", st, write)
			require.Equal(t, at(2*time.Hour), w, "%s, write %v", st, write)
		}
		require.Equal(t, ids(items[1:]), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour-1), 10), st)
		require.Equal(t, ids(items), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour), 10), st)
	}
}

// testPoolDue checks PoolDue against Pool then Due in the pool's type, for
// each type, at times before, at and after retry times, with several
// limits, and with the room the cap leaves smaller than the limit: as a
// write transaction's first call (PostgreSQL reads the due items with the
// lock, and again when the lock's read says that retry times have come)
// and after the pool was read. It is refused in a read transaction, and an
// unknown pool is ErrNotFound.
func testPoolDue(t *testing.T, b *bundle) {
	for _, typ := range pool.Types() {
		p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = typ, 3 })
		items := pending(9)
		for i, pr := range []int{0, 5, -1, 10, 5, 3, 7, 0, 2} {
			items[i].Priority = pr
		}
		items = b.insertItems(p.UUID, items)
		b.set(items, 1, retrying(at(time.Hour)))
		b.set(items, 3, scheduled(at(2*time.Hour)))
		b.set(items, 5, status(pool.StatusCompleted))
		b.set(items, 6, retrying(at(3*time.Hour)))
		check := func(now time.Time, limit, room int) {
			t.Helper()
			var (
				gotPool pool.Pool
				got     []pool.Item
			)
			b.write(func(tx store.Tx) (err error) {
				gotPool, got, err = tx.PoolDue(b.ctx, p.UUID, now, limit)
				return err
			})
			want := b.due(p.UUID, typ, now, min(limit, room))
			name := fmt.Sprintf("%s at %v, limit %d, room %d", typ, now.Sub(t0), limit, room)
			require.Equal(t, b.getPool(p.UUID), gotPool, name+": the pool")
			require.Equal(t, want, got, name+": first call")
			b.write(func(tx store.Tx) (err error) {
				if _, err := tx.Pool(b.ctx, p.UUID); err != nil {
					return err
				}
				_, got, err = tx.PoolDue(b.ctx, p.UUID, now, limit)
				return err
			})
			require.Equal(t, want, got, name+": after Pool")
		}
		for _, now := range []time.Time{at(0), at(time.Hour), at(time.Hour)} {
			for _, limit := range []int{0, 1, 2, 100} {
				check(now, limit, p.Cap())
			}
		}
		b.set(items, 4, inFlight(pool.StatusProcessing, at(time.Hour)))
		for _, now := range []time.Time{at(2*time.Hour + 1), at(5 * time.Hour)} {
			for _, limit := range []int{0, 1, 2, 100} {
				check(now, limit, p.Cap()-1)
			}
		}
	}
	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		_, _, err := tx.PoolDue(b.ctx, uuid.New(), t0, 1)
		return err
	})
	require.ErrorIs(t, err, store.ErrReadOnly, "a read transaction")
	err = b.st.Write(b.ctx, func(tx store.Tx) error {
		_, _, err := tx.PoolDue(b.ctx, uuid.New(), t0, 1)
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown pool")
}

// testPoolDueBehindLock checks that PoolDue reads the due items as the
// last writer of the pool left them: a store that locks the pool must
// read them after the lock, not before.
func testPoolDueBehindLock(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(2))
	// A first call, for a store that learns how to read a pool's due
	// items from the calls before.
	b.write(func(tx store.Tx) error {
		_, _, err := tx.PoolDue(b.ctx, p.UUID, t0, 10)
		return err
	})
	done := b.skipHolding(items[0])
	var due []pool.Item
	b.write(func(tx store.Tx) (err error) {
		_, due, err = tx.PoolDue(b.ctx, p.UUID, t0, 10)
		return err
	})
	require.NoError(t, <-done)
	require.Equal(t, ids(items[1:]), ids(due), "the due set as the transaction before left it")
}

// testPoolDueSettingsChanged checks PoolDue, each time its transaction's
// first call, after the pool's cap and type change between calls: a store
// that guesses the order or the number of items to read from the pool as
// it last saw it must find out it was wrong.
func testPoolDueSettingsChanged(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 2 })
	items := pending(8)
	for i := range items {
		items[i].Priority = i % 3
	}
	items = b.insertItems(p.UUID, items)
	b.set(items, 6, inFlight(pool.StatusProcessing, at(time.Hour)))
	inFlight := 1
	for i, change := range []func(*pool.Pool){
		func(*pool.Pool) {},
		func(p *pool.Pool) { p.MaxParallelItems = 5 },
		func(p *pool.Pool) { p.MaxParallelItems = 5 },
		func(p *pool.Pool) { p.MaxParallelItems = 3 },
		func(*pool.Pool) { b.set(items, 6, status(pool.StatusCompleted)); inFlight = 0 },
		func(p *pool.Pool) { p.Type = pool.LIFO },
		func(p *pool.Pool) { p.Type = pool.FIFO },
		func(p *pool.Pool) { p.Type = pool.Parallel },
		func(p *pool.Pool) { p.MaxParallelItems = 1 },
		func(p *pool.Pool) { p.MaxParallelItems = 100 },
	} {
		cur := b.getPool(p.UUID)
		change(&cur)
		b.write(func(tx store.Tx) error { return tx.UpdatePool(b.ctx, cur) })
		var got []pool.Item
		b.write(func(tx store.Tx) (err error) {
			_, got, err = tx.PoolDue(b.ctx, p.UUID, t0, 100)
			return err
		})
		want := b.due(p.UUID, cur.Type, t0, max(cur.Cap()-inFlight, 0))
		require.Equal(t, ids(want), ids(got), "change %d: %s, cap %d", i, cur.Type, cur.Cap())
	}
}

// poolDueIDs returns the IDs of PoolDue's items, the first call of a write
// transaction.
func (b *bundle) poolDueIDs(id uuid.UUID, now time.Time, limit int) []int64 {
	b.t.Helper()
	var due []pool.Item
	b.write(func(tx store.Tx) (err error) {
		_, due, err = tx.PoolDue(b.ctx, id, now, limit)
		return err
	})
	return ids(due)
}

// testPoolDueOnlyWaiting is testDueOnlyWaiting through PoolDue, after a
// first call: a store that reads the due items of a pool it has seen before
// behind its lock must read the due set only.
func testPoolDueOnlyWaiting(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 20 })
	items := b.insertItems(p.UUID, pending(8))
	now := at(time.Hour)
	require.Equal(t, ids(items), b.poolDueIDs(p.UUID, now, 10))
	b.set(items, 1, inFlight(pool.StatusProcessing, at(-time.Hour))) // lease over: still not due
	b.set(items, 2, inFlight(pool.StatusInCall, at(time.Hour)))
	b.set(items, 3, status(pool.StatusCompleted))
	b.set(items, 4, status(pool.StatusFailed))
	b.set(items, 5, status(pool.StatusSkipped))
	b.set(items, 6, retrying(at(2*time.Hour)))
	b.set(items, 7, scheduled(at(2*time.Hour)))
	for i := 1; i <= 5; i++ { // stale retry times
		b.set(items, i, func(it *pool.Item) { it.NextRetryAt = ptr(at(0)) })
	}
	require.Equal(t, ids(items[:1]), b.poolDueIDs(p.UUID, now, 10))
}

// testPoolDueNowBehindPromotion is testDueNowBehindPromotion through
// PoolDue: a PoolDue that finds nothing gives back to the waiting set the
// retries a later now promoted, for NextWake to name their times.
func testPoolDueNowBehindPromotion(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 10 })
	items := b.insertItems(p.UUID, pending(3))
	b.set(items, 0, retrying(at(time.Hour)))
	b.set(items, 1, scheduled(at(2*time.Hour)))
	b.set(items, 2, inFlight(pool.StatusProcessing, at(3*time.Hour)))
	wake := func() time.Time {
		w, ok := b.nextWake(p.UUID)
		require.True(t, ok)
		return w
	}
	require.Equal(t, ids(items[:1]), b.poolDueIDs(p.UUID, at(2*time.Hour), 1), "both promoted, one returned")
	require.Equal(t, at(3*time.Hour), wake(), "the promoted retries are left out")
	require.Empty(t, b.poolDueIDs(p.UUID, at(time.Hour-1), 10), "nothing due an instant before the first")
	require.Equal(t, at(time.Hour), wake(), "the retries PoolDue gave back are waited for again")
	require.Equal(t, ids(items[:2]), b.poolDueIDs(p.UUID, at(2*time.Hour), 10), "and found due at their times")
}

// testNextWakeUpdateItems: items UpdateItems makes Retrying wait for their
// time, which NextWake names, as UpdateItem's do.
func testNextWakeUpdateItems(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(2))
	from := items[0].Status
	retrying(at(time.Hour))(&items[0])
	scheduled(at(2 * time.Hour))(&items[1])
	b.write(func(tx store.Tx) error {
		return tx.UpdateItems(b.ctx, store.Change{From: from, Item: items[0]}, store.Change{From: from, Item: items[1]})
	})
	w, ok := b.nextWake(p.UUID)
	require.True(t, ok)
	require.True(t, w.Equal(at(time.Hour)), "%v", w)
	require.Empty(t, b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 10))
	require.Equal(t, ids(items[:1]), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour), 10))
}

// poolWakes runs PoolWakes in a read transaction.
func (b *bundle) poolWakes(pools ...uuid.UUID) map[uuid.UUID]store.PoolWake {
	b.t.Helper()
	var out map[uuid.UUID]store.PoolWake
	b.read(func(tx store.Tx) (err error) {
		out, err = tx.PoolWakes(b.ctx, pools...)
		return err
	})
	return out
}

// requireWakesAsNextWake checks that each pool's Next and HasNext in got
// are NextWake's, and that none is Full.
func (b *bundle) requireWakesAsNextWake(got map[uuid.UUID]store.PoolWake) {
	b.t.Helper()
	for id, w := range got {
		require.False(b.t, w.Full, "pool %s", id)
		next, ok := b.nextWake(id)
		require.Equal(b.t, ok, w.HasNext, "pool %s", id)
		require.Equal(b.t, next, w.Next, "pool %s", id)
	}
}

// parallel makes a pool Parallel (its cap, 10, above the items in flight
// of the PoolWakes tests that are not about a full pool).
func parallel(p *pool.Pool) { p.Type = pool.Parallel }

// testPoolWakes reads the PoolWakes of pools in every state at once, and
// of an unknown pool (left out): a pool whose due set holds an item is
// Due (a Pending item; a retry a Due found due is testPoolWakesAfterDue's),
// and every pool's Next is NextWake's: a retry time no Due has found due
// (past or to come), a lease's end (past: a lease to end, or to come).
// None is at its cap (testPoolWakesFull's). Only in a read transaction.
func testPoolWakes(t *testing.T, b *bundle) {
	empty, terminal, pending1, retry, retryPast, scheduledLease, ended := b.insertPool(parallel), b.insertPool(parallel),
		b.insertPool(parallel), b.insertPool(parallel), b.insertPool(parallel), b.insertPool(parallel), b.insertPool(parallel)

	it := b.insertItems(terminal.UUID, pending(2))
	b.set(it, 0, status(pool.StatusCompleted))
	b.set(it, 1, func(it *pool.Item) { // terminal, with leftovers
		it.Status = pool.StatusFailed
		it.NextRetryAt = ptr(at(-time.Hour))
	})
	it = b.insertItems(pending1.UUID, pending(2))
	b.set(it, 1, inFlight(pool.StatusProcessing, at(time.Hour)))
	it = b.insertItems(retry.UUID, pending(1))
	b.set(it, 0, retrying(at(time.Hour)))
	it = b.insertItems(retryPast.UUID, pending(1))
	b.set(it, 0, retrying(at(-time.Hour)))
	it = b.insertItems(scheduledLease.UUID, pending(2))
	b.set(it, 0, scheduled(at(2*time.Hour)))
	b.set(it, 1, inFlight(pool.StatusInCall, at(3*time.Hour)))
	it = b.insertItems(ended.UUID, pending(2))
	b.set(it, 0, inFlight(pool.StatusProcessing, at(-time.Minute)))
	b.set(it, 1, inFlight(pool.StatusInCall, at(time.Hour)))

	unknown := uuid.New()
	got := b.poolWakes(empty.UUID, terminal.UUID, pending1.UUID, retry.UUID, unknown, retryPast.UUID,
		scheduledLease.UUID, ended.UUID)
	require.Equal(t, map[uuid.UUID]store.PoolWake{
		empty.UUID:          {},
		terminal.UUID:       {},
		pending1.UUID:       {Due: true, Next: at(time.Hour), HasNext: true},
		retry.UUID:          {Next: at(time.Hour), HasNext: true},
		retryPast.UUID:      {Next: at(-time.Hour), HasNext: true},
		scheduledLease.UUID: {Next: at(2 * time.Hour), HasNext: true},
		ended.UUID:          {Next: at(-time.Minute), HasNext: true},
	}, got)
	b.requireWakesAsNextWake(got)

	require.Empty(t, b.poolWakes(), "no pool")
	require.Empty(t, b.poolWakes(unknown), "an unknown pool")
	require.Equal(t, map[uuid.UUID]store.PoolWake{retry.UUID: {Next: at(time.Hour), HasNext: true}},
		b.poolWakes(retry.UUID, retry.UUID), "a pool named twice")

	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		_, err := tx.PoolWakes(b.ctx, retry.UUID)
		return err
	})
	require.Error(t, err, "in a write transaction")
}

// testPoolWakesAfterDue: Retrying and Scheduled items that a Due found due
// and nobody took (a claim at capacity, one that passed them over) make
// their pool Due, though NextWake leaves them out; taken (in flight) they
// do not; a pool whose only due items a Due found due at a later now (the
// clock stepped back) may be Due, but once a Due at the earlier now has
// given them back, it is not, and Next names them again.
func testPoolWakesAfterDue(t *testing.T, b *bundle) {
	for _, mod := range []func(time.Time) func(*pool.Item){retrying, scheduled} {
		p := b.insertPool(parallel)
		it := b.insertItems(p.UUID, pending(3))
		b.set(it, 0, mod(at(-time.Hour)))
		b.set(it, 1, inFlight(pool.StatusProcessing, at(time.Hour)))
		b.set(it, 2, status(pool.StatusCompleted))
		require.Equal(t, store.PoolWake{Next: at(-time.Hour), HasNext: true}, b.poolWakes(p.UUID)[p.UUID], "not found due yet")
		require.Equal(t, ids(it[:1]), b.dueIDs(p.UUID, pool.FIFO, at(0), 10))
		got := b.poolWakes(p.UUID)
		require.Equal(t, store.PoolWake{Due: true, Next: at(time.Hour), HasNext: true}, got[p.UUID], "found due, not taken")
		b.requireWakesAsNextWake(got)

		b.set(it, 1, status(pool.StatusCompleted))
		require.Equal(t, store.PoolWake{Due: true}, b.poolWakes(p.UUID)[p.UUID], "found due, and no lease")
		b.set(it, 0, inFlight(pool.StatusProcessing, at(2*time.Hour)))
		require.Equal(t, store.PoolWake{Next: at(2 * time.Hour), HasNext: true}, b.poolWakes(p.UUID)[p.UUID], "taken")

		// Found due at a later now than the one that looks next.
		b.set(it, 0, mod(at(time.Hour)))
		require.Equal(t, ids(it[:1]), b.dueIDs(p.UUID, pool.FIFO, at(2*time.Hour), 1))
		require.Empty(t, b.due(p.UUID, pool.FIFO, at(0), 10), "not due at the earlier now")
		got = b.poolWakes(p.UUID)
		require.Equal(t, store.PoolWake{Next: at(time.Hour), HasNext: true}, got[p.UUID], "given back")
		b.requireWakesAsNextWake(got)
	}
}

// testPoolWakesFull: a pool whose items in flight (Processing and In_Call)
// reach its cap, as a claim counts them (1 for FIFO and LIFO,
// max_parallel_items for Parallel: pool.Pool.Cap), is Full, whatever it
// has due; its Next is then its earliest lease's end, and a retry time,
// past or to come, is left out: a claim in a full pool gives nothing
// until a lease ends. A lease ended makes Next past, as NextWake's.
func testPoolWakesFull(t *testing.T, b *bundle) {
	for _, typ := range pool.Types() {
		p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = typ, 2 })
		it := b.insertItems(p.UUID, pending(5))
		b.set(it, 0, retrying(at(-time.Hour))) // its time has come, no Due has found it due
		b.set(it, 1, scheduled(at(time.Minute)))
		require.Equal(t, store.PoolWake{Due: true, Next: at(-time.Hour), HasNext: true}, b.poolWakes(p.UUID)[p.UUID],
			"%s: nothing in flight", typ)

		b.set(it, 2, inFlight(pool.StatusProcessing, at(2*time.Hour)))
		if typ.Serial() {
			require.Equal(t, store.PoolWake{Due: true, Full: true, Next: at(2 * time.Hour), HasNext: true}, b.poolWakes(p.UUID)[p.UUID],
				"%s: one in flight", typ)
		} else {
			got := b.poolWakes(p.UUID)
			require.Equal(t, store.PoolWake{Due: true, Next: at(-time.Hour), HasNext: true}, got[p.UUID], "%s: one in flight", typ)
			b.requireWakesAsNextWake(got)
		}

		b.set(it, 3, inFlight(pool.StatusInCall, at(time.Hour)))
		require.Equal(t, store.PoolWake{Due: true, Full: true, Next: at(time.Hour), HasNext: true}, b.poolWakes(p.UUID)[p.UUID],
			"%s: two in flight, one In_Call", typ)

		b.set(it, 4, status(pool.StatusCompleted)) // nothing Pending left
		require.Equal(t, store.PoolWake{Full: true, Next: at(time.Hour), HasNext: true}, b.poolWakes(p.UUID)[p.UUID],
			"%s: two in flight, retries waiting", typ)

		b.set(it, 3, inFlight(pool.StatusInCall, at(-time.Minute)))
		require.Equal(t, store.PoolWake{Full: true, Next: at(-time.Minute), HasNext: true}, b.poolWakes(p.UUID)[p.UUID],
			"%s: a lease ended", typ)

		b.set(it, 3, status(pool.StatusCompleted))
		b.set(it, 2, status(pool.StatusFailed))
		got := b.poolWakes(p.UUID)
		require.Equal(t, store.PoolWake{Next: at(-time.Hour), HasNext: true}, got[p.UUID], "%s: none in flight", typ)
		b.requireWakesAsNextWake(got)
	}
}

// testPoolWakesCapChanged: Full follows the pool's cap as it changes: a
// cap lowered below the items in flight leaves the pool Full, one raised
// above them does not, and a type change makes the cap the type's.
func testPoolWakesCapChanged(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 3 })
	it := b.insertItems(p.UUID, pending(5))
	for i := range 3 {
		b.set(it, i, inFlight(pool.StatusProcessing, at(time.Duration(i+1)*time.Hour)))
	}
	full := store.PoolWake{Due: true, Full: true, Next: at(time.Hour), HasNext: true}
	notFull := store.PoolWake{Due: true, Next: at(time.Hour), HasNext: true}
	for i, step := range []struct {
		change func(*pool.Pool)
		want   store.PoolWake
	}{
		{func(*pool.Pool) {}, full},
		{func(p *pool.Pool) { p.MaxParallelItems = 1 }, full},
		{func(p *pool.Pool) { p.MaxParallelItems = 4 }, notFull},
		{func(p *pool.Pool) { p.Type = pool.FIFO }, full},
		{func(p *pool.Pool) { p.Type = pool.LIFO }, full},
		{func(p *pool.Pool) { p.Type = pool.Parallel }, notFull},
		{func(p *pool.Pool) { p.MaxParallelItems = 3 }, full},
		{func(p *pool.Pool) { p.MaxParallelItems = 100 }, notFull},
	} {
		cur := b.getPool(p.UUID)
		step.change(&cur)
		b.write(func(tx store.Tx) error { return tx.UpdatePool(b.ctx, cur) })
		require.Equal(t, step.want, b.poolWakes(p.UUID)[p.UUID], "step %d: %s, cap %d", i, cur.Type, cur.Cap())
	}
}
