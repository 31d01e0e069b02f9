package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// runningCampaign starts a campaign under a new rule p with new pools of
// the given types (a Parallel one's cap is 10), and returns it and them.
func (b *testBundle) runningCampaign(t *testing.T, p campaign.CreateRuleParams, types ...pool.Type) (uuid.UUID, []pool.Pool) {
	t.Helper()
	pools := make([]pool.Pool, len(types))
	ids := make([]uuid.UUID, len(types))
	for i, typ := range types {
		pools[i] = b.pool(t, typ, 10, 20)
		ids[i] = pools[i].UUID
	}
	c := b.campaignOf(t, b.rule(t, p).UUID, ids...)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	return c.UUID, pools
}

// sharedContact starts a campaign under rule p with two new pools of
// types t1 and t2 that both hold one new contact, and returns the pools
// and the contact.
func (b *testBundle) sharedContact(t *testing.T, p campaign.CreateRuleParams, t1, t2 pool.Type) (a, q, c uuid.UUID) {
	t.Helper()
	_, ps := b.runningCampaign(t, p, t1, t2)
	a, q, c = ps[0].UUID, ps[1].UUID, uuid.New()
	b.addContacts(t, a, c)
	b.addContacts(t, q, c)
	return a, q, c
}

// addContacts adds the contacts, in order, to pool p.
func (b *testBundle) addContacts(t *testing.T, p uuid.UUID, contacts ...uuid.UUID) {
	t.Helper()
	items := make([]pool.NewItem, len(contacts))
	for i, c := range contacts {
		items[i] = pool.NewItem{ContactUUID: c}
	}
	_, err := b.eng.Add(b.ctx, p, items...)
	require.NoError(t, err)
}

// campaignOfPool returns the one campaign pool p is attached to.
func (b *testBundle) campaignOfPool(t *testing.T, p uuid.UUID) uuid.UUID {
	t.Helper()
	d, err := b.eng.Pool(b.ctx, p)
	require.NoError(t, err)
	require.Len(t, d.Campaigns, 1)
	return d.Campaigns[0].UUID
}

// answer claims the next item of pool p and completes it: a call that
// went well.
func (b *testBundle) answer(t *testing.T, p uuid.UUID) {
	t.Helper()
	l, err := b.eng.TryDequeue(b.ctx, p)
	require.NoError(t, err)
	require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
}

// allDay is a rule that lets every hour of the day be called.
func allDay(perDay, total int) campaign.CreateRuleParams {
	return campaign.CreateRuleParams{
		Name: "All day", MaxCallsPerDay: new(perDay), MaxTotalCalls: new(total), RetryIntervalMinutes: new(30),
		StartTime: new("00:00"), EndTime: new("23:59"),
	}
}

// TestEngine_CapsPerContact: a rule's caps are the contact's across the
// pools of its campaign, as the API words them ("max_total_calls:
// lifetime per contact in the campaign"), not each item's: one call at a
// time, max_total_calls in all, max_calls_per_day a day. Its subtests
// make their calls from one goroutine (oneGoroutine: not in CI's race
// run, after the plain run), but LeaseJudgedAtTheTransactionsInstant.
func TestEngine_CapsPerContact(t *testing.T) {
	t.Parallel()

	t.Run("OneCallAtATime", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		_, ps := b.runningCampaign(t, allDay(10, 10), pool.FIFO, pool.Parallel)
		a, p := ps[0].UUID, ps[1].UUID
		c, d := uuid.New(), uuid.New()
		b.addContacts(t, a, c, d)
		b.addContacts(t, p, c)

		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID)
		_, err = b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty)

		// The FIFO pool's head is in a call from the other pool: it is
		// passed over, left due, and the next contact is called.
		next, err := b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		require.Equal(t, d, next.ContactUUID, "c is in a call from the other pool")
		require.Equal(t, pool.StatusPending, b.item(t, a, c).Status)
		require.NoError(t, b.eng.Complete(b.ctx, next, "answered"))
		_, err = b.eng.TryDequeue(b.ctx, a)
		require.ErrorIs(t, err, queue.ErrEmpty, "c still in a call")

		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		l, err = b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID, "the call ended: c's turn in the FIFO pool")

		// A pool of no campaign (or of another) does not count.
		other := b.pool(t, pool.Parallel, 10, 3)
		b.addContacts(t, other.UUID, c)
		l2, err := b.eng.TryDequeue(b.ctx, other.UUID)
		require.NoError(t, err)
		require.Equal(t, c, l2.ContactUUID)
	})

	t.Run("EndedLease", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		a, p, c := b.sharedContact(t, allDay(10, 10), pool.Parallel, pool.Parallel)

		_, err := b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		b.clock.Advance(testLease - time.Second)
		_, err = b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty, "c is in a call from the other pool")
		// A lease past its end is a call that ended (its holder vanished),
		// though no write to its pool has applied the expiry yet.
		b.clock.Advance(time.Second)
		require.Equal(t, pool.StatusProcessing, b.item(t, a, c).Status, "the expiry is not applied yet")
		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID)
	})

	// A claim that runs late in its transaction (behind a slow write of
	// the same batch, or, on PostgreSQL, a lock wait) judges the other
	// pools' leases at the transaction's instant, the earliest one, and
	// passes the contact over; an Extend that runs late judges the lease
	// at its own, later, instant, and does not keep alive a call that has
	// ended by then. Neither way is the contact in two calls.
	t.Run("LeaseJudgedAtTheTransactionsInstant", func(t *testing.T) {
		t.Parallel()
		clk := newClock()
		base := openFileStore(t, "")
		slow := &slowAddStore{Store: base, clk: clk, d: 2 * time.Second}
		held := &heldStore{Store: slow}
		eng := openEngine(t, held, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: clk.Now})
		b := &testBundle{ctx: context.Background(), eng: eng, st: base, clock: clk}
		a, q, c := b.sharedContact(t, allDay(10, 10), pool.Parallel, pool.Parallel)

		la, err := eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		clk.Advance(testLease - time.Second) // a's call has a second of lease left
		z, other := b.pool(t, pool.Parallel, 10, 3), b.pool(t, pool.Parallel, 10, 3)
		slow.pool.Store(z.UUID)

		// One batch: a held Add, then an Add to z that moves the clock by
		// 2 s, a claim of q and an Extend of a's call, in that order.
		entered, release := held.holdNext(t)
		var wg sync.WaitGroup
		wg.Go(func() { _, _ = eng.Add(b.ctx, other.UUID, newItems(1)...) })
		<-entered
		queued := func(f func()) {
			n := queue.Queued(eng)
			wg.Go(f)
			require.Eventually(t, func() bool { return queue.Queued(eng) == n+1 }, 5*time.Second, time.Millisecond)
		}
		var claimErr, extendErr, addErr error
		queued(func() { _, addErr = eng.Add(b.ctx, z.UUID, newItems(1)...) })
		queued(func() { _, claimErr = eng.TryDequeue(b.ctx, q) })
		ext := *la
		queued(func() { extendErr = eng.Extend(b.ctx, &ext, 5*time.Minute) })
		release()
		wg.Wait()
		require.NoError(t, addErr)
		require.ErrorIs(t, claimErr, queue.ErrEmpty, "c is in a call from a")
		require.Equal(t, pool.StatusPending, b.item(t, q, c).Status)
		// The Extend counts from the instant it is written at, 2 s on,
		// when a's lease has ended: lost, so a's call goes no further.
		require.ErrorIs(t, extendErr, queue.ErrLeaseLost)
		require.Equal(t, la.ExpiresAt, b.item(t, a, c).LeaseExpiresAt)
	})

	// A pool cannot leave its campaign while a contact it shares with the
	// campaign is in a call from either side: apart, neither would see
	// the other's call.
	t.Run("DetachMidCall", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		k, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.Parallel, pool.Parallel)
		a, p, other := ps[0].UUID, ps[1].UUID, ps[2].UUID
		c, alone := uuid.New(), uuid.New()
		b.addContacts(t, a, c, alone)
		b.addContacts(t, p, c)

		l, err := b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID)
		_, err = b.eng.DetachPool(b.ctx, k, a) // the call is in a, c has an item in p
		require.ErrorIs(t, err, queue.ErrInFlight)
		_, err = b.eng.DetachPool(b.ctx, k, p) // the call is in a, c has an item in p
		require.ErrorIs(t, err, queue.ErrInFlight)
		_, err = b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty, "c is still in a call from a pool of the campaign")
		detached, err := b.eng.DetachPool(b.ctx, k, other) // c has no item there
		require.NoError(t, err)
		require.True(t, detached)

		// A lease that has ended is no obstacle (and detach writes
		// nothing: the expiry waits for the pool's next write).
		b.clock.Advance(testLease)
		detached, err = b.eng.DetachPool(b.ctx, k, p)
		require.NoError(t, err)
		require.True(t, detached)
		require.Equal(t, pool.StatusProcessing, b.item(t, a, c).Status)
		require.ErrorIs(t, b.eng.Complete(b.ctx, l, "late"), queue.ErrLeaseLost)
	})

	// A call to a contact the pool does not share is no obstacle.
	t.Run("DetachWithACallOfItsOwn", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		k, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.Parallel)
		a, p := ps[0].UUID, ps[1].UUID
		alone := uuid.New()
		b.addContacts(t, a, alone)
		b.addContacts(t, p, uuid.New())
		for _, from := range []uuid.UUID{a, p} {
			_, err := b.eng.TryDequeue(b.ctx, from)
			require.NoError(t, err)
		}
		detached, err := b.eng.DetachPool(b.ctx, k, a)
		require.NoError(t, err)
		require.True(t, detached)
	})

	// A pool that left with a call of its own leaves that call in the
	// campaign while it goes on: the contact, added to another of its
	// pools meanwhile, is not called from there until it ends.
	t.Run("DetachMidCallThenAddElsewhere", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		k, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.Parallel)
		a, p, c := ps[0].UUID, ps[1].UUID, uuid.New()
		b.addContacts(t, a, c)
		l, err := b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		require.NoError(t, b.eng.MarkInCall(b.ctx, l))
		detached, err := b.eng.DetachPool(b.ctx, k, a) // c has no item in p yet
		require.NoError(t, err)
		require.True(t, detached)

		b.addContacts(t, p, c)
		_, err = b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty, "c is in a call from a, which left the campaign mid-call")
		require.NoError(t, b.eng.Extend(b.ctx, l, 2*testLease))
		b.clock.Advance(testLease + time.Second) // past the first lease's end: the extended one holds
		_, err = b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty, "the call goes on under its extended lease")

		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		l, err = b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err, "the call ended")
		require.Equal(t, c, l.ContactUUID)
	})

	// A call the campaign started goes on after it completes: its pools
	// may not part while a contact they share is in it.
	for _, end := range []struct {
		name string
		part func(b *testBundle, k, p uuid.UUID) error
	}{
		{"CompleteThenDetach", func(b *testBundle, k, p uuid.UUID) error { _, err := b.eng.DetachPool(b.ctx, k, p); return err }},
		{"CompleteThenDelete", func(b *testBundle, k, p uuid.UUID) error { return b.eng.DeleteCampaign(b.ctx, k) }},
	} {
		t.Run(end.name, func(t *testing.T) {
			oneGoroutine(t)
			b := setup(t)
			k, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.Parallel)
			a, p, c := ps[0].UUID, ps[1].UUID, uuid.New()
			b.addContacts(t, a, c)
			b.addContacts(t, p, c)
			l, err := b.eng.TryDequeue(b.ctx, a)
			require.NoError(t, err)
			_, err = b.eng.CompleteCampaign(b.ctx, k)
			require.NoError(t, err)

			require.ErrorIs(t, end.part(b, k, p), queue.ErrInFlight, "c is in a call from a and has an item in p")
			_, err = b.eng.TryDequeue(b.ctx, p)
			require.ErrorIs(t, err, queue.ErrHeld, "p is held by the completed campaign")

			require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
			require.NoError(t, end.part(b, k, p), "the call ended")
			l, err = b.eng.TryDequeue(b.ctx, p)
			require.NoError(t, err, "p dispatches under its own settings")
			require.Equal(t, c, l.ContactUUID)
		})
	}

	t.Run("TotalCalls", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		a, p, c := b.sharedContact(t, allDay(10, 3), pool.Parallel, pool.Parallel)

		for i, from := range []uuid.UUID{a, p, a} {
			l, err := b.eng.TryDequeue(b.ctx, from)
			require.NoError(t, err, "call %d", i+1)
			require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now(), Note: "no answer"}))
		}
		// Three calls to c in the campaign: its items in both pools have
		// attempts left of their own (2 and 1 of 3) but no more calls. The
		// third call's failure failed its item, in a (see
		// TestEngine_FailureAtTheContactsCeiling); p's next claim fails
		// the other.
		for _, from := range []uuid.UUID{p, a} {
			_, err := b.eng.TryDequeue(b.ctx, from)
			require.ErrorIs(t, err, queue.ErrEmpty)
			it := b.item(t, from, c)
			require.Equal(t, pool.StatusFailed, it.Status)
			note := campaign.NoteContactCeiling
			if from == a {
				note = "no answer"
			}
			require.Equal(t, note, it.Notes)
		}
		require.Equal(t, 2, b.item(t, a, c).Attempts)
		require.Equal(t, 1, b.item(t, p, c).Attempts)
	})

	t.Run("ReleasedCallsDoNotCount", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		a, p, c := b.sharedContact(t, allDay(1, 1), pool.Parallel, pool.Parallel)

		l, err := b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		require.NoError(t, b.eng.Release(b.ctx, l)) // given back unattempted
		l, err = b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err, "a call given back is not one of the contact's")
		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		_, err = b.eng.TryDequeue(b.ctx, a)
		require.ErrorIs(t, err, queue.ErrEmpty)
		require.Equal(t, campaign.NoteContactCeiling, b.item(t, a, c).Notes)
	})

	// More passed-over items than one read of the due set holds ahead
	// of one that may be called: the claim reads past them.
	t.Run("PassedBeyondABatch", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		_, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.FIFO)
		a, p := ps[0].UUID, ps[1].UUID
		busy := make([]uuid.UUID, 100) // more than admissionBatch (64)
		for i := range busy {
			busy[i] = uuid.New()
		}
		b.addContacts(t, a, busy...)
		_, err := b.eng.UpdatePool(b.ctx, a, pool.UpdateParams{MaxParallelItems: new(len(busy))})
		require.NoError(t, err)
		ls, err := b.eng.DequeueN(b.ctx, a, len(busy))
		require.NoError(t, err)
		require.Len(t, ls, len(busy))
		free := uuid.New()
		b.addContacts(t, p, append(busy, free)...)

		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err, "a contact not in a call is due")
		require.Equal(t, free, l.ContactUUID)
	})

	// A list whose contacts have no calls left, put into another pool of
	// the campaign, fails a thousand items a transaction (maxDeferrals),
	// not all in one that holds the writer.
	t.Run("CeilingFailuresBounded", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t)
		_, ps := b.runningCampaign(t, allDay(10, 1), pool.Parallel, pool.Parallel)
		a, p := ps[0].UUID, ps[1].UUID
		const n = 2500
		contacts := make([]uuid.UUID, n)
		for i := range contacts {
			contacts[i] = uuid.New()
		}
		b.addContacts(t, a, contacts...)
		for done := 0; done < n; {
			ls, err := b.eng.DequeueN(b.ctx, a, 100)
			require.NoError(t, err)
			outs := make([]queue.Outcome, len(ls))
			for i, l := range ls {
				outs[i] = queue.Outcome{Lease: l}
			}
			_, err = b.eng.Settle(b.ctx, outs...)
			require.NoError(t, err)
			done += len(ls)
		}
		b.addContacts(t, p, contacts...)

		before := b.eng.Stats().Transactions
		_, err := b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty)
		require.Equal(t, n, b.counts(t, p)[pool.StatusFailed])
		require.GreaterOrEqual(t, b.eng.Stats().Transactions-before, uint64(3), "2,500 failures, at most ~1,000 a transaction")
	})

	t.Run("CallsPerDay", func(t *testing.T) {
		oneGoroutine(t)
		b := setup(t) // 09:00 UTC
		a, p, c := b.sharedContact(t, allDay(2, 10), pool.Parallel, pool.LIFO)

		for i, from := range []uuid.UUID{a, p} {
			l, err := b.eng.TryDequeue(b.ctx, from)
			require.NoError(t, err, "call %d", i+1)
			require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		}
		b.clock.Advance(time.Hour) // both retries due
		tomorrow := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
		for _, from := range []uuid.UUID{a, p} {
			_, err := b.eng.TryDequeue(b.ctx, from)
			require.ErrorIs(t, err, queue.ErrEmpty, "two calls to c today")
			it := b.item(t, from, c)
			require.Equal(t, pool.StatusScheduled, it.Status)
			require.Equal(t, tomorrow, *it.NextRetryAt)
		}
		b.clock.Advance(tomorrow.Sub(b.clock.Now()))
		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		require.Equal(t, c, l.ContactUUID)
	})

	// Removing an item, or deleting its pool, does not take its calls out
	// of its contact's count in the pool's campaigns: the contact is not
	// called again, from another pool or from the same one once added
	// back, past the caps.
	t.Run("RemovedItemsCallsCount", func(t *testing.T) {
		oneGoroutine(t)
		for _, tc := range []struct {
			name   string
			remove func(b *testBundle, a, q, c uuid.UUID) uuid.UUID // returns the pool to claim from next
		}{
			{"Remove", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				n, err := b.eng.Remove(b.ctx, a, c)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				return q
			}},
			{"RemoveThenAddBack", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				_, err := b.eng.Remove(b.ctx, a, c, c)
				require.NoError(t, err)
				n, err := b.eng.Remove(b.ctx, q, c)
				require.NoError(t, err)
				require.Equal(t, 1, n)
				b.addContacts(t, a, c)
				return a
			}},
			{"DeletePool", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				require.NoError(t, b.eng.DeletePool(b.ctx, a))
				return q
			}},
			// A pool that leaves the campaign leaves its calls in it.
			{"Detach", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				detached, err := b.eng.DetachPool(b.ctx, b.campaignOfPool(t, a), a)
				require.NoError(t, err)
				require.True(t, detached)
				return q
			}},
			{"DetachRemoveAttach", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				k := b.campaignOfPool(t, a)
				_, err := b.eng.DetachPool(b.ctx, k, a)
				require.NoError(t, err)
				_, err = b.eng.Remove(b.ctx, a, c)
				require.NoError(t, err)
				_, err = b.eng.AttachPools(b.ctx, k, a)
				require.NoError(t, err)
				return q
			}},
			{"DetachDeletePool", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				_, err := b.eng.DetachPool(b.ctx, b.campaignOfPool(t, a), a)
				require.NoError(t, err)
				require.NoError(t, b.eng.DeletePool(b.ctx, a))
				return q
			}},
			// Attached again, its items count as items, once.
			{"DetachAttach", func(b *testBundle, a, q, c uuid.UUID) uuid.UUID {
				k := b.campaignOfPool(t, a)
				for range 2 {
					_, err := b.eng.DetachPool(b.ctx, k, a)
					require.NoError(t, err)
					_, err = b.eng.AttachPools(b.ctx, k, a)
					require.NoError(t, err)
				}
				return q
			}},
		} {
			t.Run(tc.name+"/TotalCalls", func(t *testing.T) {
				oneGoroutine(t)
				b := setup(t)
				a, q, c := b.sharedContact(t, allDay(10, 1), pool.Parallel, pool.Parallel)
				b.answer(t, a)
				b.clock.Advance(48 * time.Hour) // another day: only the total holds c back
				next := tc.remove(b, a, q, c)
				_, err := b.eng.TryDequeue(b.ctx, next)
				require.ErrorIs(t, err, queue.ErrEmpty, "c has had its one call in the campaign")
				it := b.item(t, next, c)
				require.Equal(t, pool.StatusFailed, it.Status)
				require.Equal(t, campaign.NoteContactCeiling, it.Notes)
			})
			t.Run(tc.name+"/CallsPerDay", func(t *testing.T) {
				oneGoroutine(t)
				b := setup(t) // 09:00 UTC
				a, q, c := b.sharedContact(t, allDay(1, 10), pool.Parallel, pool.Parallel)
				l, err := b.eng.TryDequeue(b.ctx, a)
				require.NoError(t, err)
				require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
				next := tc.remove(b, a, q, c)
				_, err = b.eng.TryDequeue(b.ctx, next)
				require.ErrorIs(t, err, queue.ErrEmpty, "c has had its call of the day")
				it := b.item(t, next, c)
				require.Equal(t, pool.StatusScheduled, it.Status)
				tomorrow := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
				require.Equal(t, tomorrow, *it.NextRetryAt)
				b.clock.Advance(tomorrow.Sub(b.clock.Now()))
				l, err = b.eng.TryDequeue(b.ctx, next)
				require.NoError(t, err)
				require.Equal(t, c, l.ContactUUID)
			})
		}
		// A pool attached again counts its items' calls once: as items.
		t.Run("DetachAttachCountsOnce", func(t *testing.T) {
			oneGoroutine(t)
			b := setup(t)
			a, q, c := b.sharedContact(t, allDay(10, 2), pool.Parallel, pool.Parallel)
			b.answer(t, a)
			k := b.campaignOfPool(t, a)
			for range 2 {
				_, err := b.eng.DetachPool(b.ctx, k, a)
				require.NoError(t, err)
				_, err = b.eng.AttachPools(b.ctx, k, a)
				require.NoError(t, err)
			}
			l, err := b.eng.TryDequeue(b.ctx, q)
			require.NoError(t, err, "c's second call of two")
			require.Equal(t, c, l.ContactUUID)
		})
		// A pool detached mid-call keeps that call; given back (Release),
		// it is given back there too: the contact was never called.
		t.Run("DetachMidCallThenRelease", func(t *testing.T) {
			oneGoroutine(t)
			b := setup(t)
			k, ps := b.runningCampaign(t, allDay(1, 1), pool.Parallel, pool.Parallel)
			a, q, c := ps[0].UUID, ps[1].UUID, uuid.New()
			b.addContacts(t, a, c) // c only in a: the detach is allowed with c in flight
			l, err := b.eng.TryDequeue(b.ctx, a)
			require.NoError(t, err)
			detached, err := b.eng.DetachPool(b.ctx, k, a)
			require.NoError(t, err)
			require.True(t, detached)
			require.NoError(t, b.eng.Release(b.ctx, l))
			b.addContacts(t, q, c)
			l, err = b.eng.TryDequeue(b.ctx, q)
			require.NoError(t, err, "c was never called: %+v", b.item(t, q, c))
			require.Equal(t, c, l.ContactUUID)
		})
		// A kept call is no call under way: it does not hold a pool in
		// its campaign.
		t.Run("Detach", func(t *testing.T) {
			oneGoroutine(t)
			b := setup(t)
			k, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.Parallel)
			a, q, c := ps[0].UUID, ps[1].UUID, uuid.New()
			b.addContacts(t, a, c)
			b.addContacts(t, q, c)
			b.answer(t, a)
			_, err := b.eng.Remove(b.ctx, a, c)
			require.NoError(t, err)
			_, err = b.eng.TryDequeue(b.ctx, q) // c in a call from q, with its kept call from a
			require.NoError(t, err)
			detached, err := b.eng.DetachPool(b.ctx, k, q)
			require.NoError(t, err)
			require.True(t, detached)
		})
	})
}

// slowAddStore makes the engine's clock move by d while an Add to one
// pool (pool) writes its items, as a big Add does.
type slowAddStore struct {
	store.Store
	clk  *clock
	d    time.Duration
	pool atomic.Value // uuid.UUID
}

func (s *slowAddStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(slowAddTx{tx, s}) })
}

type slowAddTx struct {
	store.Tx
	s *slowAddStore
}

func (t slowAddTx) InsertItems(ctx context.Context, id uuid.UUID, items []pool.Item) (int, error) {
	if v, _ := t.s.pool.Load().(uuid.UUID); v == id {
		t.s.clk.Advance(t.s.d)
	}
	return t.Tx.InsertItems(ctx, id, items)
}

func (t slowAddTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	return t.Tx.Savepoint(ctx, func(tx store.Tx) error { return fn(slowAddTx{tx, t.s}) })
}

// contactsRun starts, through engines[0], a campaign of three Parallel
// pools (cap 5) that hold the same contacts, under a rule of ceiling calls
// in all, and runs workers goroutines over the engines and the pools, each
// failing or completing what it claims, until no item waits: no contact is
// ever in two calls at once, nor called more than ceiling times.
func contactsRun(t *testing.T, engines []*queue.Engine, workers, contacts, ceiling int) {
	ctx := context.Background()
	eng := engines[0]
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{
		Name: "Shared contacts", MaxCallsPerDay: new(100), MaxTotalCalls: new(ceiling),
		StartTime: new("00:00"), EndTime: new("23:59"),
	})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "Shared", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	people := make([]pool.NewItem, contacts)
	for i := range people {
		people[i] = pool.NewItem{ContactUUID: uuid.New()}
	}
	pools := make([]uuid.UUID, 3)
	for i := range pools {
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("shared %d", i), Description: "contacts in common",
			Type: pool.Parallel, MaxParallelItems: new(5)})
		require.NoError(t, err)
		_, err = eng.Add(ctx, p.UUID, people...)
		require.NoError(t, err)
		pools[i] = p.UUID
	}
	_, err = eng.AttachPools(ctx, c.UUID, pools...)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	runCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		mu         sync.Mutex
		inCall     = map[uuid.UUID]bool{}
		calls      = map[uuid.UUID]int{}
		violations []string
		wg         sync.WaitGroup
	)
	for w := range workers {
		e := engines[w%len(engines)]
		wg.Go(func() {
			for i := w; runCtx.Err() == nil; i++ {
				l, err := e.TryDequeue(runCtx, pools[i%len(pools)])
				if errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity) {
					time.Sleep(time.Millisecond)
					continue
				}
				if err != nil {
					if runCtx.Err() == nil {
						mu.Lock()
						violations = append(violations, err.Error())
						mu.Unlock()
					}
					return
				}
				who := l.ContactUUID
				mu.Lock()
				if inCall[who] {
					violations = append(violations, fmt.Sprintf("contact %s called from two pools at once", who))
				}
				inCall[who] = true
				if calls[who]++; calls[who] > ceiling {
					violations = append(violations, fmt.Sprintf("contact %s called %d times", who, calls[who]))
				}
				mu.Unlock()
				time.Sleep(time.Duration(i%3) * time.Millisecond)
				mu.Lock()
				delete(inCall, who) // before the settlement commits: then the call has ended
				mu.Unlock()
				if i%4 == 0 {
					err = e.Complete(ctx, l, "answered")
				} else {
					err = e.Fail(ctx, l, queue.Failure{RetryAt: time.Now(), Note: "no answer"})
				}
				if err != nil {
					mu.Lock()
					violations = append(violations, err.Error())
					mu.Unlock()
				}
			}
		})
	}
	// Stop once nothing waits or is in flight in any pool.
	for runCtx.Err() == nil {
		left := 0
		for _, p := range pools {
			d, err := eng.Pool(ctx, p)
			require.NoError(t, err)
			for s, n := range d.StatusCounts {
				if !s.Terminal() {
					left += n
				}
			}
		}
		if left == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	timedOut := runCtx.Err() != nil
	cancel()
	wg.Wait()
	require.Empty(t, violations)
	require.False(t, timedOut, "the run timed out before every item was settled")

	total := 0
	for _, n := range calls {
		total += n
	}
	require.Greater(t, total, contacts, "contacts were called again: the pools competed for them")
	for _, p := range pools {
		for _, it := range allItems(ctx, t, eng, p, 100) {
			require.True(t, it.Status.Terminal())
		}
	}
}

// TestEngine_ConcurrentContactsAcrossPools runs contactsRun over two
// engines on one file, as two processes would.
func TestEngine_ConcurrentContactsAcrossPools(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "shared.db")
	opts := queue.Options{LeaseTimeout: time.Minute, PollInterval: 5 * time.Millisecond}
	e1 := openEngine(t, openFileStore(t, path), opts)
	e2 := openEngine(t, openFileStore(t, path), opts)
	contactsRun(t, []*queue.Engine{e1, e2}, 12, 20, 6)
}
