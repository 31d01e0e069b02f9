package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_DispatchWritesArePrepared runs, cycle after cycle, what a
// dispatcher does through an engine on a file store — adds; claims of
// each pool type, when items are due, when none is, when the only ones
// are retries not yet due, at capacity, after the clock stepped back
// (the demote path), with expired leases to take back; every settlement
// (mark in call, extend, complete, fail to a retry, fail for good,
// release, the batch Settle); and claims of pools under a running
// campaign whose rule has a calling window, a day cap, a do-not-call check
// and escalations, one contact and several at a time; and claims after
// another process's store wrote, whose first reads the cache cannot
// answer — and requires that no write transaction runs a
// statement that is not one prepared at Open: one prepared for a single
// transaction costs a parse and a plan at every claim.
//
// The setup (pools, rule, campaign) is not watched; every cycle is, the
// first one too: a statement prepared for one transaction is closed at its
// end, so no warm-up makes a later one prepared.
func TestStore_DispatchWritesArePrepared(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "poolq.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })

	var (
		mu       sync.Mutex
		clock    = time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC) // a Monday, noon
		watching bool
		seen     = map[string]int{}
	)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	set := func(v time.Time) { mu.Lock(); defer mu.Unlock(); clock = v }
	sqlite.ObserveUnprepared(st, func(q string) {
		mu.Lock()
		defer mu.Unlock()
		if watching {
			seen[q]++
		}
	})
	e, err := queue.New(st, queue.Options{Now: now, LeaseTimeout: time.Minute, RetryDelay: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	// Another process's store on the same file.
	st2, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st2.Close() })
	e2, err := queue.New(st2, queue.Options{Now: now})
	require.NoError(t, err)
	t.Cleanup(func() { e2.Close() })
	// add2 adds an item of a new contact through the other store.
	add2 := func(p uuid.UUID) {
		t.Helper()
		_, err := e2.Add(ctx, p, pool.NewItem{ContactUUID: uuid.New(), Priority: 9})
		require.NoError(t, err)
	}

	newPool := func(typ pool.Type, cap, retries int) uuid.UUID {
		p, err := e.CreatePool(ctx, pool.CreateParams{Name: string(typ), Description: "pool", Type: typ, MaxParallelItems: &cap, MaxRetries: &retries})
		require.NoError(t, err)
		return p.UUID
	}
	plain := []uuid.UUID{newPool(pool.FIFO, 5, 2), newPool(pool.LIFO, 5, 2), newPool(pool.Parallel, 5, 2)}
	// A FIFO pool a cycle, at capacity with one item in flight: each begins
	// with no retry of an earlier cycle due.
	var ones []uuid.UUID
	for range 4 {
		ones = append(ones, newPool(pool.FIFO, 1, 2))
	}
	// Two governed pools a cycle, likewise.
	var govs [][2]uuid.UUID
	var governed []uuid.UUID
	for range len(ones) {
		g := [2]uuid.UUID{newPool(pool.FIFO, 5, 3), newPool(pool.Parallel, 5, 3)}
		govs, governed = append(govs, g), append(governed, g[:]...)
	}
	day, after, zone, yes := 1, 1, "America/New_York", true
	escType, escTarget := "email", "ops@example.com"
	r, err := e.CreateRule(ctx, campaign.CreateRuleParams{
		Name: "Governed", MaxCallsPerDay: &day, StartTime: new("09:00"), EndTime: new("17:00"),
		DNCCheck: &yes, RemoveOnOptOut: &yes,
		EscalationAfterFailedAttempts: &after, EscalationType: &escType, EscalationTarget: &escTarget,
	})
	require.NoError(t, err)
	c, err := e.CreateCampaign(ctx, campaign.CreateParams{Name: "Governed", RuleUUID: &r.UUID, TimeZone: "UTC"})
	require.NoError(t, err)
	_, err = e.AttachPools(ctx, c.UUID, governed...)
	require.NoError(t, err)
	_, err = e.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	claim := func(p uuid.UUID) *queue.Lease {
		t.Helper()
		l, err := e.TryDequeue(ctx, p)
		require.NoError(t, err)
		return l
	}
	claimNone := func(p uuid.UUID, want error) {
		t.Helper()
		_, err := e.TryDequeue(ctx, p)
		require.ErrorIs(t, err, want)
	}
	add := func(p uuid.UUID, items ...pool.NewItem) {
		t.Helper()
		_, err := e.Add(ctx, p, items...)
		require.NoError(t, err)
	}
	contacts := func(n int) []pool.NewItem {
		items := make([]pool.NewItem, n)
		for i := range items {
			items[i] = pool.NewItem{ContactUUID: uuid.New()}
		}
		return items
	}

	cycle := func(one uuid.UUID, gov [2]uuid.UUID) {
		govA, govB := gov[0], gov[1]
		start := now()
		// Each pool type: every settlement, then claims that find only
		// retries not yet due, then nothing at all.
		for _, p := range plain {
			add(p, contacts(6)...)
			l := claim(p)
			require.NoError(t, e.MarkInCall(ctx, l))
			require.NoError(t, e.Extend(ctx, l, 2*time.Minute))
			require.NoError(t, e.Complete(ctx, l, "done"))
			require.NoError(t, e.Fail(ctx, claim(p), queue.Failure{Note: "no answer"}))
			require.NoError(t, e.Fail(ctx, claim(p), queue.Failure{Final: true, Note: "wrong number"}))
			require.NoError(t, e.Fail(ctx, claim(p), queue.Failure{RetryAt: start.Add(2 * time.Hour), Note: "call back"}))
			require.NoError(t, e.Release(ctx, claim(p)))
			ls, err := e.DequeueN(ctx, p, 5) // the released one, and the last on a Parallel pool
			require.NoError(t, err)
			outs := []queue.Outcome{{Lease: ls[0], Note: "done"}}
			for _, l := range ls[1:] {
				outs = append(outs, queue.Outcome{Lease: l, Failure: &queue.Failure{Note: "busy"}})
			}
			res, err := e.Settle(ctx, outs...)
			require.NoError(t, err)
			require.Equal(t, make([]error, len(ls)), res)
			for {
				l, err := e.TryDequeue(ctx, p)
				if errors.Is(err, queue.ErrEmpty) {
					break // retries, not yet due, are all that is left
				}
				require.NoError(t, err)
				require.NoError(t, e.Complete(ctx, l, "done"))
			}
		}

		// Expiry: a lease that ran out is taken back by the next claim.
		add(one, contacts(2)...)
		claim(one)
		claimNone(one, queue.ErrAtCapacity)
		set(start.Add(2 * time.Minute))
		l := claim(one) // the expired one went back to Retrying: the other
		require.NoError(t, e.Extend(ctx, l, 4*time.Hour))
		// The demote path: at a later now, the claim at capacity finds the
		// retries due (and marks them so); back at an earlier now, with
		// room, the claim reads the whole due set and gives them back.
		set(start.Add(3 * time.Hour))
		claimNone(one, queue.ErrAtCapacity)
		set(start.Add(3 * time.Minute))
		require.NoError(t, e.Complete(ctx, l, "done"))
		claimNone(one, queue.ErrEmpty)

		// A governed claim: one contact called, failed (escalated) and
		// then over its day cap in the other pool; one outside its window
		// (scheduled); one on the do-not-call list (skipped); one opted out.
		capped, late, listed, opted := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		_, err := e.AddDNC(ctx, listed)
		require.NoError(t, err)
		add(govA, pool.NewItem{ContactUUID: capped}, pool.NewItem{ContactUUID: late, Contact: pool.Contact{TimeZone: "Asia/Tokyo"}},
			pool.NewItem{ContactUUID: listed}, pool.NewItem{ContactUUID: opted, Contact: pool.Contact{TimeZone: zone}})
		add(govB, pool.NewItem{ContactUUID: capped})
		_, err = e.OptOut(ctx, opted)
		require.NoError(t, err)
		l = claim(govA)
		require.Equal(t, capped, l.ContactUUID)
		require.NoError(t, e.MarkInCall(ctx, l))
		require.NoError(t, e.Fail(ctx, l, queue.Failure{Note: "no answer"}))
		claimNone(govA, queue.ErrEmpty)
		claimNone(govB, queue.ErrEmpty) // capped for the day
		u := uuid.New()
		add(govB, pool.NewItem{ContactUUID: u})
		l, err = e.DequeueCampaign(ctx, c.UUID)
		require.NoError(t, err)
		require.Equal(t, u, l.ContactUUID)
		require.NoError(t, e.Release(ctx, l)) // gives the day's call back
		l = claim(govB)
		require.NoError(t, e.Complete(ctx, l, "done"))
		// A governed claim of several contacts: their calls in the
		// campaign's other pools and their listings are read as lists.
		add(govB, contacts(3)...)
		ls, err := e.DequeueN(ctx, govB, 3)
		require.NoError(t, err)
		require.Len(t, ls, 3)
		outs := make([]queue.Outcome, len(ls))
		for i, l := range ls {
			outs[i] = queue.Outcome{Lease: l, Note: "done"}
		}
		_, err = e.Settle(ctx, outs...)
		require.NoError(t, err)

		// Another process writes: the first claims after it read what the
		// store's cache of pool states can no longer tell.
		for _, p := range []uuid.UUID{plain[2], govA} {
			add2(p)
			l := claim(p)
			require.NoError(t, e.Complete(ctx, l, "done"))
		}

		// A lease bound gone stale: both leases were extended, so the
		// next look for expired leases, past their first end, finds none
		// and reads the bound again.
		add(plain[2], contacts(2)...)
		x, y := claim(plain[2]), claim(plain[2])
		require.NoError(t, e.Extend(ctx, x, time.Hour))
		require.NoError(t, e.Extend(ctx, y, time.Hour))
		set(now().Add(90 * time.Second))
		require.NoError(t, e.Complete(ctx, x, "done"))
		require.NoError(t, e.Complete(ctx, y, "done"))

		set(start.Add(24 * time.Hour)) // the next day, same hour
	}

	mu.Lock()
	watching = true
	mu.Unlock()
	for i := range ones {
		cycle(ones[i], govs[i])
	}
	mu.Lock()
	defer mu.Unlock()
	var unprepared []string
	for q, n := range seen {
		unprepared = append(unprepared, q)
		t.Logf("run %d times, not prepared at Open:\n%s", n, q)
	}
	slices.Sort(unprepared)
	require.Empty(t, unprepared, "statements of the write path not prepared at Open (see writeQueries)")
}
