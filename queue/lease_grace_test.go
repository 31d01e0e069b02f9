package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// The tests of this file run two nodes whose clocks are 10 s apart, well
// within what postgres.Open lets through (MaxClockSkew, 30 s by default):
// the node ahead must not take a call for ended while its holder, on the
// node behind, may still be on it by its own clock. A store opened with
// postgres.Options' defaults, as a user opens it.

// graceSkew is how far the claimer's clock is ahead of the holder's.
const graceSkew = 10 * time.Second

// defaultsStore opens a PostgreSQL store with the defaults of
// postgres.Options, in a schema of the test's own.
func defaultsStore(t *testing.T, url string) *postgres.Store {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// TestPostgres_LeaseGrace_SamePool: a FIFO pool; the node behind holds its
// first item's call. At the lease's end by the clock ahead (and 9 s after
// it), the holder has 1 s left by its own: the node ahead must not claim
// (the pool is serial: its call is still on), and the holder's Complete
// must count.
func TestPostgres_LeaseGrace_SamePool(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := defaultsStore(t, url)
	ctx, b, claimer, holder, ahead, behind := twoClocks(t, st, st)
	ahead.Advance(graceSkew)
	p := b.pool(t, pool.FIFO, 1, 3).UUID
	first := b.add(t, p, 2)[0]

	l, err := holder.TryDequeue(ctx, p)
	require.NoError(t, err)
	require.Equal(t, first, l.ContactUUID)
	require.True(t, l.ExpiresAt.Equal(behind.Now().Add(clocksLease)), "the holder's deadline is its clock's claim instant plus LeaseTimeout: %v", l.ExpiresAt)

	behind.Advance(clocksLease - time.Second)
	ahead.Advance(clocksLease - time.Second)
	_, err = claimer.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "the node ahead took the call for ended 1 s before its holder's deadline by its own clock")
	require.NoError(t, holder.Complete(ctx, l, "answered"), "the holder settles within its lease")
}

// TestPostgres_LeaseGrace_HolderLate: as above, but the holder settles 1 s
// after its deadline by its own clock: its lease is lost, and the item
// stays in flight (nobody else may call it yet) until the node ahead's
// clock passes the deadline by the grace, when the expiry counts and the
// next item goes.
func TestPostgres_LeaseGrace_HolderLate(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := defaultsStore(t, url)
	ctx, b, claimer, holder, ahead, behind := twoClocks(t, st, st)
	ahead.Advance(graceSkew)
	p := b.pool(t, pool.FIFO, 1, 3).UUID
	contacts := b.add(t, p, 2)

	l, err := holder.TryDequeue(ctx, p)
	require.NoError(t, err)
	deadline := l.ExpiresAt

	behind.Advance(clocksLease + time.Second)
	ahead.Advance(clocksLease + time.Second)
	require.ErrorIs(t, holder.Complete(ctx, l, "late"), queue.ErrLeaseLost)
	_, err = claimer.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "the node ahead, %v past the holder's deadline, took its call for ended", ahead.Now().Sub(deadline))

	ahead.Advance(deadline.Add(2 * postgres.DefaultMaxClockSkew).Sub(ahead.Now()))
	l2, err := claimer.TryDequeue(ctx, p)
	require.NoError(t, err, "the grace over, the call is taken back")
	require.Equal(t, contacts[1], l2.ContactUUID)
	it := b.item(t, p, contacts[0])
	require.Equal(t, pool.StatusRetrying, it.Status, "the expiry counts a failed attempt")
	require.Equal(t, 1, it.Attempts)
}

// TestPostgres_LeaseGrace_Campaign: a contact in pools A and Q of a
// running campaign, in a call from Q held by the node behind. 1 s before
// that call's deadline by the holder's clock, the node ahead must not call
// the contact from A, and the holder's Extend must keep the call.
func TestPostgres_LeaseGrace_Campaign(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	st := defaultsStore(t, url)
	ctx, b, claimer, holder, ahead, behind := twoClocks(t, st, st)
	ahead.Advance(graceSkew)
	a, q, contact := b.sharedContact(t, allDay(10, 10), pool.Parallel, pool.Parallel)

	lq, err := holder.TryDequeue(ctx, q)
	require.NoError(t, err)
	require.Equal(t, contact, lq.ContactUUID)

	behind.Advance(clocksLease - time.Second)
	ahead.Advance(clocksLease - time.Second)
	la, err := claimer.TryDequeue(ctx, a)
	if err == nil {
		t.Fatalf("the node ahead called %v from A, %v before the call from Q ends by its holder's clock", la.ContactUUID, time.Second)
	}
	require.ErrorIs(t, err, queue.ErrEmpty)
	require.NoError(t, holder.Extend(ctx, lq, clocksLease), "the call from Q goes on")
	require.True(t, lq.ExpiresAt.Equal(behind.Now().Add(clocksLease)), "Extend: the holder's deadline is its clock plus d: %v", lq.ExpiresAt)
}
