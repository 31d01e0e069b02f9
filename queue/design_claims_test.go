package queue_test

// The tests of this file each check one sentence of the design
// (shared/DESIGN.md) on both stores, where before only SQLite, or a random
// model run, checked it: the sentence is quoted in each test's comment.

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestDesign_DuplicateResetsEveryItem: "Duplicate copies a pool's settings
// under a new name (default: name + " (copy)") and, unless told not to,
// every item as Pending with its priority, attempts reset" — whatever the
// source item's status, in the source's insertion order, payload kept.
func TestDesign_DuplicateResetsEveryItem(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.Parallel, 2, 1)
		ids := make([]uuid.UUID, 5)
		var items []pool.NewItem
		for i := range ids {
			ids[i] = uuid.New()
			items = append(items, pool.NewItem{ContactUUID: ids[i], Priority: 10 * (i + 1),
				Payload: json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`)})
		}
		_, err := b.eng.Add(b.ctx, p.UUID, items...)
		require.NoError(t, err)
		// Five statuses: Failed (ceiling), Completed, Processing, Skipped, Retrying.
		l, err := b.eng.TryDequeue(b.ctx, p.UUID) // ids[4], priority 50
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Final: true, Note: "bad number"}))
		l, err = b.eng.TryDequeue(b.ctx, p.UUID) // ids[3]
		require.NoError(t, err)
		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		l, err = b.eng.TryDequeue(b.ctx, p.UUID) // ids[2]
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		_, err = b.eng.TryDequeue(b.ctx, p.UUID) // ids[1], left in flight
		require.NoError(t, err)
		_, err = b.eng.Skip(b.ctx, p.UUID, ids[0], "withdrawn")
		require.NoError(t, err)
		b.clock.Advance(time.Second)

		d, err := b.eng.DuplicatePool(b.ctx, p.UUID, pool.DuplicateParams{})
		require.NoError(t, err)
		require.Equal(t, "Test pool (copy)", d.Name)
		require.Equal(t, 5, d.ContactsCopied)
		require.Equal(t, pool.Parallel, d.Type)
		require.Equal(t, 2, d.MaxParallelItems)
		require.Equal(t, 1, d.MaxRetries)
		require.NotEqual(t, p.UUID, d.UUID)
		page, err := b.eng.Items(b.ctx, d.UUID, pool.ItemQuery{PerPage: 100})
		require.NoError(t, err)
		require.Len(t, page.Data, 5)
		for i, it := range page.Data {
			require.Equal(t, ids[i], it.ContactUUID, "the source's insertion order")
			require.Equal(t, pool.StatusPending, it.Status, "item %d", i)
			require.Equal(t, 10*(i+1), it.Priority, "item %d keeps its priority", i)
			require.Zero(t, it.Attempts, "item %d", i)
			require.Zero(t, it.RetryCount, "item %d", i)
			require.Nil(t, it.StartedAt, "item %d", i)
			require.Nil(t, it.CompletedAt, "item %d", i)
			require.Nil(t, it.FailedAt, "item %d", i)
			require.Nil(t, it.NextRetryAt, "item %d", i)
			require.Empty(t, it.Notes, "item %d", i)
			require.JSONEq(t, string(items[i].Payload), string(it.Payload), "item %d keeps its payload", i)
		}
		counts := b.counts(t, d.UUID)
		require.Equal(t, 5, counts[pool.StatusPending])
		// The copy dispatches by priority, as its source would.
		l, err = b.eng.TryDequeue(b.ctx, d.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[4], l.ContactUUID)
		require.Equal(t, 1, l.Attempt)
	})
}

// TestDesign_DeleteRefusedInFlight: "Delete removes a pool and its items;
// it is refused (ErrInFlight) while any item is in flight" — In_Call too.
func TestDesign_DeleteRefusedInFlight(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 3)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.ErrorIs(t, b.eng.DeletePool(b.ctx, p.UUID), queue.ErrInFlight, "Processing")
		require.NoError(t, b.eng.MarkInCall(b.ctx, l))
		require.ErrorIs(t, b.eng.DeletePool(b.ctx, p.UUID), queue.ErrInFlight, "In_Call")
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 3, d.ContactsCount, "a refused delete removes nothing")

		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		require.NoError(t, b.eng.DeletePool(b.ctx, p.UUID))
		for _, c := range ids {
			_, err := b.eng.Item(b.ctx, p.UUID, c)
			require.ErrorIs(t, err, store.ErrNotFound, "the pool's items go with it")
		}
		// The same contacts in a new pool are new items.
		q := b.pool(t, pool.FIFO, 1, 3)
		res, err := b.eng.Add(b.ctx, q.UUID, pool.NewItem{ContactUUID: ids[0]})
		require.NoError(t, err)
		require.Equal(t, 1, res.ContactsAdded)
	})
}

// TestDesign_InactivePoolDispatches: "is_active does not stop dispatch";
// "It is a filter in listings".
func TestDesign_InactivePoolDispatches(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.Parallel, 2, 3)
		ids := b.add(t, p.UUID, 2)
		_, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{IsActive: pqPtr(false)})
		require.NoError(t, err)
		ls, err := b.eng.DequeueN(b.ctx, p.UUID, 2)
		require.NoError(t, err)
		require.Len(t, ls, 2)
		require.Equal(t, []uuid.UUID{ids[0], ids[1]}, []uuid.UUID{ls[0].ContactUUID, ls[1].ContactUUID})
		active := b.pool(t, pool.FIFO, 1, 3)
		pg, err := b.eng.Pools(b.ctx, pool.PoolQuery{IsActive: pqPtr(false)})
		require.NoError(t, err)
		require.Len(t, pg.Data, 1)
		require.Equal(t, p.UUID, pg.Data[0].UUID)
		pg, err = b.eng.Pools(b.ctx, pool.PoolQuery{IsActive: pqPtr(true)})
		require.NoError(t, err)
		require.Len(t, pg.Data, 1)
		require.Equal(t, active.UUID, pg.Data[0].UUID)
	})
}

// TestDesign_PriorityKeptForATypeChange: "Priority is ignored by FIFO and
// LIFO (but kept, in case the type changes)"; "Switching type leaves
// in-flight items as they are; the next dispatch uses the new order".
func TestDesign_PriorityKeptForATypeChange(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 3, 3)
		ids := b.add(t, p.UUID, 5, 1, 5, 3, 9, 7)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID, "FIFO ignores priority")
		_, err = b.eng.SetPriority(b.ctx, p.UUID, ids[1], 8)
		require.NoError(t, err)
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Type: pqPtr(pool.Parallel)})
		require.NoError(t, err)
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusProcessing, it.Status, "the in-flight item is kept")
		require.Equal(t, l.Token, it.Token, "under its lease")
		ls, err := b.eng.DequeueN(b.ctx, p.UUID, 10)
		require.NoError(t, err)
		require.Len(t, ls, 2, "Parallel, cap 3, one in flight")
		require.Equal(t, []uuid.UUID{ids[3], ids[1]}, []uuid.UUID{ls[0].ContactUUID, ls[1].ContactUUID},
			"the priorities set under FIFO order the Parallel pool")
		require.NoError(t, b.eng.Complete(b.ctx, l, ""), "the lease taken under FIFO settles")

		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Type: pqPtr(pool.LIFO)})
		require.NoError(t, err)
		for _, l := range ls {
			require.NoError(t, b.eng.Complete(b.ctx, l, ""))
		}
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[4], l.ContactUUID, "LIFO: newest first, priority 7 ignored")
		require.Equal(t, 7, l.Item.Priority, "and kept")
	})
}

// TestDesign_RetryKeepsInsertionPlace: "A retried item keeps its insertion
// place", in each order: an item added while it was in flight stays
// behind it in FIFO and Parallel (equal priorities), ahead of it in LIFO.
// Were a retry a new insertion, each order would be the other way round.
func TestDesign_RetryKeepsInsertionPlace(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		for _, typ := range pool.Types() {
			p := b.pool(t, typ, 1, 3)
			ids := b.add(t, p.UUID, 3)
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			retried := l.ContactUUID
			late := b.add(t, p.UUID, 1)[0]
			require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now(), Note: "busy"}))
			got := b.drain(t, p.UUID)
			switch typ {
			case pool.FIFO, pool.Parallel:
				require.Equal(t, ids[0], retried, typ)
				require.Equal(t, []uuid.UUID{ids[0], ids[1], ids[2], late}, got, typ)
			case pool.LIFO:
				require.Equal(t, ids[2], retried, typ)
				require.Equal(t, []uuid.UUID{late, ids[2], ids[1], ids[0]}, got, typ)
			}
		}
	})
}

// TestDesign_CeilingReadWhenNeeded: "The ceiling is read when it is
// needed: at a failure it decides Retrying vs Failed; at dispatch, a due
// item whose attempts already reach the current ceiling (the pool's
// max_retries was lowered) becomes Failed instead of being dispatched";
// "Changing max_retries applies to every later decision"; "retry_count
// ... never exceeds the retries the ceiling allows".
func TestDesign_CeilingReadWhenNeeded(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.Parallel, 2, 3)
		ids := b.add(t, p.UUID, 3, 9, 8, 0)
		// ids[0] fails twice: attempts 2, Scheduled in an hour. ids[1] is in
		// flight at its first attempt when max_retries drops to 0 (ceiling 1).
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now().Add(time.Minute), Note: "busy"}))
		b.clock.Advance(time.Minute)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now().Add(time.Hour), Note: "busy"}))
		require.Equal(t, 2, b.item(t, p.UUID, ids[0]).Attempts)
		l1, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[1], l1.ContactUUID)

		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxRetries: pqPtr(0)})
		require.NoError(t, err)
		require.Equal(t, pool.StatusScheduled, b.item(t, p.UUID, ids[0]).Status, "lowering fails nothing by itself")

		// At a failure: the new ceiling (1 attempt) decides.
		require.NoError(t, b.eng.Fail(b.ctx, l1, queue.Failure{Note: "busy"}))
		it := b.item(t, p.UUID, ids[1])
		require.Equal(t, pool.StatusFailed, it.Status)
		require.Zero(t, it.RetryCount)

		// At dispatch: ids[0] (due, priority 9, 2 attempts) fails, ids[2] goes.
		b.clock.Advance(time.Hour)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[2], l.ContactUUID)
		it = b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusFailed, it.Status, "failed at dispatch")
		require.Equal(t, 2, it.Attempts, "not dispatched")
		require.NotNil(t, it.FailedAt)
		require.Equal(t, b.clock.Now(), *it.FailedAt)

		// Raised again, every later decision uses it: a failure retries.
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxRetries: pqPtr(1)})
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		it = b.item(t, p.UUID, ids[2])
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, 1, it.RetryCount)
		require.Equal(t, b.clock.Now().Add(testRetry), *it.NextRetryAt, "now + RetryDelay")

		// Its second attempt ends by expiry: the ceiling (2) is reached,
		// Failed, and retry_count stays at the one retry it allows.
		b.clock.Advance(testRetry)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[2], l.ContactUUID)
		require.Equal(t, 2, l.Attempt)
		b.clock.Advance(testLease)
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty)
		it = b.item(t, p.UUID, ids[2])
		require.Equal(t, pool.StatusFailed, it.Status, "expiry at the ceiling")
		require.Equal(t, 1, it.RetryCount)
		require.ErrorIs(t, b.eng.Complete(b.ctx, l, ""), queue.ErrLeaseLost)
	})
}

// TestDesign_CapLoweredPreemptsNothing: "Lowering max_parallel_items below
// the number in flight preempts nothing: no new dispatch until in-flight <
// cap"; TryDequeue says ErrAtCapacity meanwhile.
func TestDesign_CapLoweredPreemptsNothing(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.Parallel, 3, 3)
		b.add(t, p.UUID, 5)
		ls, err := b.eng.DequeueN(b.ctx, p.UUID, 10)
		require.NoError(t, err)
		require.Len(t, ls, 3)
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxParallelItems: pqPtr(2)})
		require.NoError(t, err)
		require.Equal(t, 3, b.counts(t, p.UUID)[pool.StatusProcessing], "nothing preempted")
		require.NoError(t, b.eng.MarkInCall(b.ctx, ls[2]), "a kept lease still works")
		require.NoError(t, b.eng.Complete(b.ctx, ls[0], ""))
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity, "2 in flight, cap 2")
		_, err = queue.TryDequeueN(b.ctx, b.eng, p.UUID, 5)
		require.ErrorIs(t, err, queue.ErrAtCapacity)
		require.NoError(t, b.eng.Complete(b.ctx, ls[1], ""))
		ls2, err := b.eng.DequeueN(b.ctx, p.UUID, 5)
		require.NoError(t, err)
		require.Len(t, ls2, 1, "one slot under the new cap")

		// A Parallel pool switched to FIFO is serial: its two in flight
		// stay, and nothing goes until none is.
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Type: pqPtr(pool.FIFO)})
		require.NoError(t, err)
		require.NoError(t, b.eng.Complete(b.ctx, ls[2], ""))
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity, "FIFO, one in flight")
		require.NoError(t, b.eng.Complete(b.ctx, ls2[0], ""))
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 1, l.Attempt)
	})
}

// TestDesign_ReleaseDueAtOnce: "give back unattempted (Release) ... due
// again at once (Pending, or Retrying if it has failed before), attempt
// not counted".
func TestDesign_ReleaseDueAtOnce(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 2)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Release(b.ctx, l))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusPending, it.Status)
		require.Zero(t, it.Attempts)

		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID)
		require.Equal(t, 1, l.Attempt, "the released attempt was not counted")
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		b.clock.Advance(testRetry)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID)
		require.NoError(t, b.eng.Release(b.ctx, l))
		it = b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusRetrying, it.Status, "it has failed before")
		require.Equal(t, 1, it.Attempts)
		require.Equal(t, 1, it.RetryCount)
		require.NotNil(t, it.NextRetryAt)
		require.False(t, it.NextRetryAt.After(b.clock.Now()), "due at once")
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID, "first again: its place")
		require.Equal(t, 2, l.Attempt)
	})
}

// TestDesign_RuleUpdateNotRetroactive: "Rule updates are not retroactive:
// what is scheduled keeps its time" — a retry time and a window's
// postponement alike; the next decision uses the new values.
func TestDesign_RuleUpdateNotRetroactive(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) { // 2026-01-02 09:00 UTC
		p, r := b.governed(t, pool.Parallel, "UTC", campaign.CreateRuleParams{
			MaxTotalCalls: pqPtr(5), MaxCallsPerDay: pqPtr(5), RetryIntervalMinutes: pqPtr(30),
			StartTime: pqPtr("08:00"), EndTime: pqPtr("20:00"),
		})
		retried := b.addIn(t, p.UUID, "UTC")
		sleeping := b.addIn(t, p.UUID, "Asia/Tokyo") // 18:00 there: in the window
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, retried, l.ContactUUID)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		b.clock.Advance(3 * time.Hour) // 12:00 UTC, 21:00 in Tokyo: outside
		ls, err := b.eng.DequeueN(b.ctx, p.UUID, 10)
		require.NoError(t, err)
		require.Len(t, ls, 1)
		require.Equal(t, retried, ls[0].ContactUUID)
		require.NoError(t, b.eng.Fail(b.ctx, ls[0], queue.Failure{Note: "busy"}))
		wantRetry := b.clock.Now().Add(30 * time.Minute)
		it := b.item(t, p.UUID, retried)
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, wantRetry, *it.NextRetryAt)
		it = b.item(t, p.UUID, sleeping)
		require.Equal(t, pool.StatusScheduled, it.Status)
		wantWindow := at(t, "Asia/Tokyo", "2026-01-03 08:00:00")
		require.Equal(t, wantWindow, *it.NextRetryAt)

		_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{
			RetryIntervalMinutes: pqPtr(5), StartTime: pqPtr("06:00"), EndTime: pqPtr("23:00"),
		})
		require.NoError(t, err)
		it = b.item(t, p.UUID, retried)
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, wantRetry, *it.NextRetryAt, "the retry keeps its time (not now + 5 min)")
		it = b.item(t, p.UUID, sleeping)
		require.Equal(t, pool.StatusScheduled, it.Status)
		require.Equal(t, wantWindow, *it.NextRetryAt, "the postponement keeps its time (21:00 is now inside)")
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty, "nothing due before its time")

		// The next decision uses the new interval.
		b.clock.Advance(30 * time.Minute)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, retried, l.ContactUUID)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		require.Equal(t, b.clock.Now().Add(5*time.Minute), *b.item(t, p.UUID, retried).NextRetryAt)
	})
}

// TestDesign_ZoneFallsBackToUTC: "an IANA time zone (the campaign's default
// zone, then UTC, when missing)": a contact without a zone under a
// campaign without one is called in UTC's window.
func TestDesign_ZoneFallsBackToUTC(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) { // 2026-01-02 09:00 UTC
		p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{
			StartTime: pqPtr("10:00"), EndTime: pqPtr("11:00"),
		})
		c := b.addIn(t, p.UUID, "")
		_, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty)
		it := b.item(t, p.UUID, c)
		require.Equal(t, pool.StatusScheduled, it.Status)
		require.Equal(t, time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC), *it.NextRetryAt)
		b.clock.Advance(time.Hour)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID)
	})
}

// TestDesign_EscalationExactlyOnce: "an item whose failed attempts reach
// the escalation threshold records exactly one escalation" — its later
// failures and its expiries record no other.
func TestDesign_EscalationExactlyOnce(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p, r := b.governed(t, pool.FIFO, "UTC", campaign.CreateRuleParams{
			MaxTotalCalls: pqPtr(6), MaxCallsPerDay: pqPtr(6), RetryIntervalMinutes: pqPtr(1),
			StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"), EscalationAfterFailedAttempts: pqPtr(2),
			EscalationType: pqPtr("supervisor"), EscalationTarget: pqPtr("ops@example.com"),
		})
		c := b.addIn(t, p.UUID, "UTC")
		escalations := func() []campaign.Escalation {
			list, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{Limit: 100})
			require.NoError(t, err)
			return list
		}
		for attempt := 1; attempt <= 6; attempt++ {
			b.clock.Advance(2 * time.Minute) // the retry is due
			l, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err, "attempt %d", attempt)
			require.Equal(t, attempt, l.Attempt)
			if attempt%2 == 0 {
				b.clock.Advance(testLease) // ends by expiry: a failed attempt
				_, err = b.eng.TryDequeue(b.ctx, p.UUID)
				require.ErrorIs(t, err, queue.ErrEmpty, "the expiry applied, its retry not due yet")
			} else {
				require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
			}
			want := 0
			if attempt >= 2 {
				want = 1
			}
			list := escalations()
			require.Len(t, list, want, "after %d failed attempts", attempt)
			if want == 1 {
				require.Equal(t, c, list[0].ContactUUID)
				require.Equal(t, r.UUID, list[0].RuleUUID)
				require.Equal(t, 2, list[0].FailedAttempts)
			}
		}
		require.Len(t, escalations(), 1)
		require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, c).Status)
	})
}

// TestDesign_TryDequeueReasons pins how TryDequeue says why it has
// nothing, where DESIGN.md's "ErrEmpty (nothing due) or ErrAtCapacity" is
// short: a full pool with nothing due is ErrEmpty, a held pool ErrHeld.
func TestDesign_TryDequeueReasons(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, p.UUID, 1)
		_, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty, "full, but nothing due")
		b.add(t, p.UUID, 1)
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity, "full, something due")

		q := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, q.UUID, 1)
		b.campaignOf(t, uuid.Nil, q.UUID) // Draft
		_, err = b.eng.TryDequeue(b.ctx, q.UUID)
		require.ErrorIs(t, err, queue.ErrHeld)
		_, err = b.eng.TryDequeue(b.ctx, uuid.New())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// TestDesign_DequeueNOneTransaction: "DequeueN claims up to n in one
// transaction": ten leases, one write transaction of the store, in the
// pool's order; fewer due than n gives those.
func TestDesign_DequeueNOneTransaction(t *testing.T) {
	eachStore(t, func(t *testing.T, st store.Store) {
		b, cs, ids, want := emptyPoolsCost(t, st, 0, 12, pool.Parallel, 10)
		ctx, eng, p := b.ctx, b.eng, ids[0]

		cs.quiet()
		before := cs.writes.Load()
		ls, err := eng.DequeueN(ctx, p, 10)
		require.NoError(t, err)
		require.Equal(t, before+1, cs.writes.Load(), "write transactions for DequeueN(10)")
		require.Len(t, ls, 10)
		for i, l := range ls {
			require.Equal(t, want[i], l.ContactUUID, "lease %d", i)
		}
		for _, l := range ls[:5] {
			require.NoError(t, eng.Complete(ctx, l, ""))
		}
		cs.quiet()
		before = cs.writes.Load()
		ls, err = eng.DequeueN(ctx, p, 10)
		require.NoError(t, err)
		require.Equal(t, before+1, cs.writes.Load())
		require.Len(t, ls, 2, "up to n: the two left")
	})
}

// TestDesign_PausedCampaignTakesNoGovernedPool: "a pool may be attached to
// many campaigns, but only one of them may be running (or paused) at
// once": a Paused campaign does not take a pool that a running one
// governs (attach refused), nor, had it taken it, resume over it.
func TestDesign_PausedCampaignTakesNoGovernedPool(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		x := b.pool(t, pool.FIFO, 1, 3)
		y := b.pool(t, pool.FIFO, 1, 3)
		a := b.campaignOf(t, uuid.Nil, x.UUID)
		_, err := b.eng.StartCampaign(b.ctx, a.UUID)
		require.NoError(t, err)
		_, err = b.eng.PauseCampaign(b.ctx, a.UUID)
		require.NoError(t, err)
		d := b.campaignOf(t, uuid.Nil, y.UUID)
		_, err = b.eng.StartCampaign(b.ctx, d.UUID)
		require.NoError(t, err)

		_, attachErr := b.eng.AttachPools(b.ctx, a.UUID, y.UUID)
		governing := 0
		for _, c := range []uuid.UUID{a.UUID, d.UUID} {
			got, err := b.eng.Campaign(b.ctx, c)
			require.NoError(t, err)
			pd, err := b.eng.Pool(b.ctx, y.UUID)
			require.NoError(t, err)
			for _, ref := range pd.Campaigns {
				if ref.UUID == c && (got.Status == campaign.InProcess || got.Status == campaign.Paused) {
					governing++
				}
			}
		}
		require.LessOrEqual(t, governing, 1, "campaigns In Process or Paused holding pool y (attach: %v)", attachErr)
		_, err = b.eng.ResumeCampaign(b.ctx, a.UUID)
		if attachErr == nil {
			require.ErrorIs(t, err, campaign.ErrConflict, "resume over a governed pool")
		}
	})
}
