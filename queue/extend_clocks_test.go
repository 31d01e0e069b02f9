package queue_test

import (
	"context"
	"path/filepath"
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

// TestPostgres_ExtendBehindAClaimAhead: a contact is in pools A and Q of
// one running campaign, in a call from Q; two nodes whose clocks are 10 ms
// apart (well within postgres.Options.MaxClockSkew). The node ahead claims
// the contact in A at the end of the call's lease by its clock (the first
// instant a claim takes it for ended); the node behind, 10 ms before that
// end by its own, then extends the call from Q.
// The extension comes after the claim and must see it: the contact was
// called from A after the lease's end, so the call from Q is not kept
// going (ErrLeaseLost), whatever the clock behind says of its lease.
func TestPostgres_ExtendBehindAClaimAhead(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := pgtest.Open(t, url, postgres.Options{})
	extendBehindAClaimAhead(t, st, pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema()}))
}

// TestEngine_ExtendBehindAClaimAhead: the same with two processes' stores
// on one SQLite file, whose clocks (queue.Options.Now) differ.
func TestEngine_ExtendBehindAClaimAhead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "poolq.db")
	extendBehindAClaimAhead(t, openFileStore(t, path), openFileStore(t, path))
}

// TestEngine_ExtendBehindAClaimAhead_ClockRefused: the same, with the
// extender's store also saying that its clock is too far behind
// (store.ClockChecker) when it extends the call from Q. The call is lost
// (ErrLeaseLost), not refused for the clock: a host told its clock is
// behind keeps its call until the end it had, and the contact is called
// from A already. (The lease is judged before the clock is asked.)
func TestEngine_ExtendBehindAClaimAhead_ClockRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "poolq.db")
	var refused atomic.Bool
	extendBehindAClaimAhead(t, openFileStore(t, path), behindStore{openFileStore(t, path), &refused}, &refused)
}

// clocksLease is the two engines' LeaseTimeout in the tests of this file.
const clocksLease = time.Minute

// twoClocks opens the engines of two nodes, one on each store, whose
// clocks start at one instant: b is the claimer's (the node ahead).
func twoClocks(t *testing.T, claimerStore, extenderStore store.Store) (ctx context.Context, b *testBundle,
	claimer, extender *queue.Engine, ahead, behind *clock) {
	ctx = context.Background()
	ahead = &clock{t: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)}
	behind = &clock{t: ahead.t}
	claimer = openEngine(t, claimerStore, queue.Options{Now: ahead.Now, LeaseTimeout: clocksLease, PollInterval: time.Hour})
	extender = openEngine(t, extenderStore, queue.Options{Now: behind.Now, LeaseTimeout: clocksLease, PollInterval: time.Hour})
	return ctx, &testBundle{ctx: ctx, eng: claimer, clock: ahead}, claimer, extender, ahead, behind
}

// refused, when given, is set while the extender extends the call from
// Q (see TestEngine_ExtendBehindAClaimAhead_ClockRefused).
func extendBehindAClaimAhead(t *testing.T, claimerStore, extenderStore store.Store, refused ...*atomic.Bool) {
	ctx, b, claimer, extender, ahead, behind := twoClocks(t, claimerStore, extenderStore)
	a, q, contact := b.sharedContact(t, allDay(10, 10), pool.Parallel, pool.Parallel)

	lq, err := extender.TryDequeue(ctx, q) // the call from Q
	require.NoError(t, err)
	require.Equal(t, contact, lq.ContactUUID)
	ahead.Advance(clocksLease)
	behind.Advance(clocksLease - 10*time.Millisecond)

	la, err := claimer.TryDequeue(ctx, a)
	require.NoError(t, err, "the call from Q ended, by the clock of the node ahead")
	require.Equal(t, contact, la.ContactUUID)
	for _, r := range refused {
		r.Store(true)
	}
	err = extender.Extend(ctx, lq, clocksLease)
	for _, r := range refused {
		r.Store(false)
	}
	require.ErrorIs(t, err, queue.ErrLeaseLost, "the call from Q extended until %s while the contact is called from A",
		lq.ExpiresAt.Format(time.StampMilli))
	// The call from A, judged by either clock, goes on.
	require.NoError(t, claimer.Extend(ctx, la, clocksLease))
	require.NoError(t, extender.Extend(ctx, la, clocksLease))
}

// TestPostgres_ExtendDetachedBehindAClaimAhead: as above, but the pool of
// the call, Q, was detached from the campaign mid-call (its call kept in
// the campaign, and no campaign governs Q), and the contact added to A
// after: the claim in A passes over it until the kept call's lease ends,
// by the clock ahead, and then calls it; the extension from the node
// behind must see that claim too.
func TestPostgres_ExtendDetachedBehindAClaimAhead(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := pgtest.Open(t, url, postgres.Options{})
	extendDetachedBehindAClaimAhead(t, st, pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema()}))
}

// TestEngine_ExtendDetachedBehindAClaimAhead: the same on one SQLite file.
func TestEngine_ExtendDetachedBehindAClaimAhead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "poolq.db")
	extendDetachedBehindAClaimAhead(t, openFileStore(t, path), openFileStore(t, path))
}

func extendDetachedBehindAClaimAhead(t *testing.T, claimerStore, extenderStore store.Store) {
	ctx, b, claimer, extender, ahead, behind := twoClocks(t, claimerStore, extenderStore)
	c, ps := b.runningCampaign(t, allDay(10, 10), pool.Parallel, pool.Parallel)
	a, q, contact := ps[0].UUID, ps[1].UUID, uuid.New()
	b.addContacts(t, q, contact)

	lq, err := extender.TryDequeue(ctx, q) // the call from Q
	require.NoError(t, err)
	detached, err := claimer.DetachPool(ctx, c, q)
	require.NoError(t, err)
	require.True(t, detached)
	b.addContacts(t, a, contact)
	_, err = claimer.TryDequeue(ctx, a)
	require.ErrorIs(t, err, queue.ErrEmpty, "the contact is in a call from Q, kept in the campaign")

	ahead.Advance(clocksLease)
	behind.Advance(clocksLease - 10*time.Millisecond)
	la, err := claimer.TryDequeue(ctx, a)
	require.NoError(t, err, "the call from Q ended, by the clock of the node ahead")
	require.Equal(t, contact, la.ContactUUID)
	err = extender.Extend(ctx, lq, clocksLease)
	require.ErrorIs(t, err, queue.ErrLeaseLost, "the call from Q extended until %s while the contact is called from A",
		lq.ExpiresAt.Format(time.StampMilli))
}
