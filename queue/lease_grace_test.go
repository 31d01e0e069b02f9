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

// The tests of this file run two nodes whose clocks are 10 s apart, well
// within what postgres.Open lets through (MaxClockSkew, 30 s by default):
// the node ahead must not take a call for ended while its holder, on the
// node behind, may still be on it by its own clock. A store opened with
// postgres.Options' defaults, as a user opens it.

// graceSkew is how far the claimer's clock is ahead of the holder's.
const graceSkew = 10 * time.Second

// graceNodes opens a PostgreSQL store with the defaults of
// postgres.Options, in a schema of the test's own, and the engines of two
// nodes over it (see twoClocks) whose clocks are graceSkew apart: the
// claimer's ahead.
func graceNodes(t *testing.T) (ctx context.Context, b *testBundle, claimer, holder *queue.Engine, ahead, behind *clock) {
	t.Helper()
	url := pgtest.URL(t)
	t.Parallel()
	st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	ctx, b, claimer, holder, ahead, behind = twoClocks(t, st, st)
	ahead.Advance(graceSkew)
	return ctx, b, claimer, holder, ahead, behind
}

// TestPostgres_LeaseGrace_SamePool: a FIFO pool; the node behind holds its
// first item's call. At the lease's end by the clock ahead (and 9 s after
// it), the holder has 1 s left by its own: the node ahead must not claim
// (the pool is serial: its call is still on), and the holder's Complete
// must count.
func TestPostgres_LeaseGrace_SamePool(t *testing.T) {
	ctx, b, claimer, holder, ahead, behind := graceNodes(t)
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
	ctx, b, claimer, holder, ahead, behind := graceNodes(t)
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
	ctx, b, claimer, holder, ahead, behind := graceNodes(t)
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

// gracedStore is a store that reports a LeaseGrace (store.LeaseGracer), as
// PostgreSQL's does: the engine's use of it needs no second node.
type gracedStore struct {
	store.Store
	grace time.Duration
}

func (s gracedStore) LeaseGrace() time.Duration { return s.grace }

// TestEngine_LeaseGrace: a lease's holder has until its deadline
// (LeaseTimeout after the claim, Extend's d after the extension); nobody
// else takes the lease for ended until the grace after it: not a claim of
// its pool (its slot stays taken), not the holder's late settlement
// (ErrLeaseLost, the item left in flight); then its expiry counts.
func TestEngine_LeaseGrace(t *testing.T) {
	t.Parallel()
	const grace = 30 * time.Second
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := newClock()
	eng := openEngine(t, gracedStore{st, grace}, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	b := &testBundle{ctx: ctx, eng: eng, st: st, clock: c}
	p := b.pool(t, pool.FIFO, 1, 3).UUID
	contacts := b.add(t, p, 2)

	l, err := eng.TryDequeue(ctx, p)
	require.NoError(t, err)
	require.True(t, l.ExpiresAt.Equal(c.Now().Add(testLease)), "deadline %v", l.ExpiresAt)
	require.True(t, l.Item.LeaseExpiresAt.Equal(l.ExpiresAt.Add(grace)), "the item's lease end %v: the deadline plus the grace", l.Item.LeaseExpiresAt)
	rebuilt := *l // as a webhook's handler rebuilds it, from the item and its token
	rebuilt.ExpiresAt = l.Item.LeaseExpiresAt
	require.NoError(t, eng.MarkInCall(ctx, &rebuilt))
	require.True(t, rebuilt.ExpiresAt.Equal(l.ExpiresAt), "MarkInCall: the deadline %v, not the item's end %v", rebuilt.ExpiresAt, l.Item.LeaseExpiresAt)
	c.Advance(testLease / 2)
	require.NoError(t, eng.Extend(ctx, l, testLease))
	require.True(t, l.ExpiresAt.Equal(c.Now().Add(testLease)), "deadline after Extend %v", l.ExpiresAt)

	c.Advance(testLease)
	require.ErrorIs(t, eng.MarkInCall(ctx, l), queue.ErrLeaseLost, "at its deadline")
	require.ErrorIs(t, eng.Extend(ctx, l, testLease), queue.ErrLeaseLost, "at its deadline")
	_, err = eng.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "within the grace, the call may still be on")
	require.Equal(t, pool.StatusInCall, b.item(t, p, contacts[0]).Status, "left in flight")
	_, err = eng.Remove(ctx, p, contacts[0])
	require.ErrorIs(t, err, queue.ErrInFlight, "within the grace")

	c.Advance(grace - time.Nanosecond)
	_, err = eng.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "1 ns before the grace ends")
	c.Advance(time.Nanosecond)
	l2, err := eng.TryDequeue(ctx, p)
	require.NoError(t, err, "the grace over")
	require.Equal(t, contacts[1], l2.ContactUUID)
	it := b.item(t, p, contacts[0])
	require.Equal(t, pool.StatusRetrying, it.Status, "the expiry counts")
	require.True(t, it.NextRetryAt.Equal(c.Now().Add(testRetry)), "retry %v: the delay counts from when the expiry was applied", it.NextRetryAt)
}

// TestNew_LeaseGrace: a store's LeaseGrace outside zero to a week is
// refused, naming the store.
func TestNew_LeaseGrace(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	for _, g := range []time.Duration{-1, queue.MaxLeaseTimeout + 1} {
		_, err := queue.New(gracedStore{st, g}, queue.Options{})
		require.Equal(t, []string{"store"}, fieldsOf(t, err), "grace %v", g)
	}
	eng, err := queue.New(gracedStore{st, queue.MaxLeaseTimeout}, queue.Options{})
	require.NoError(t, err)
	require.NoError(t, eng.Close())
}

// TestPostgres_LeaseGrace_WaiterWakes: a Dequeue blocked on a FIFO pool
// whose one item another node holds, and never settles, wakes when the
// lease is taken back, the grace after its deadline, by its own timer
// (its poll is an hour), not before.
func TestPostgres_LeaseGrace_WaiterWakes(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	const grace = 400 * time.Millisecond
	st := pgtest.Open(t, url, postgres.Options{LeaseGrace: grace})
	opts := queue.Options{LeaseTimeout: queue.MinLeaseTimeout, RetryDelay: time.Millisecond, PollInterval: time.Hour}
	holder := openEngine(t, st, opts)
	waiter := openEngine(t, pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), LeaseGrace: grace}), opts)
	ctx := context.Background()
	p, err := holder.CreatePool(ctx, pool.CreateParams{Name: "waits", Description: "for a lease", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = holder.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	l, err := holder.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	l2, err := waiter.Dequeue(dctx, p.UUID)
	got := time.Now()
	require.NoError(t, err)
	require.Equal(t, l.ContactUUID, l2.ContactUUID)
	require.Equal(t, 2, l2.Attempt, "the expiry counted")
	require.False(t, got.Before(l.ExpiresAt.Add(grace)), "claimed %v after the holder's deadline, within the grace", got.Sub(l.ExpiresAt))
	require.Less(t, got.Sub(l.ExpiresAt), grace+2*time.Second, "woken late")
}

// TestPostgres_LeaseGrace_ExtendWaitsPastTheDeadline: an Extend begun
// 10 ms before its lease's deadline waits behind another node's hold of
// the pool until 10 ms after it. It is lost (the holder's deadline passed
// before it was written), though the grace still keeps the call from
// everyone else.
func TestPostgres_LeaseGrace_ExtendWaitsPastTheDeadline(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{LeaseGrace: time.Minute})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	clk := newClock()
	eng := openEngine(t, st, queue.Options{Now: clk.Now, LeaseTimeout: clocksLease, PollInterval: time.Hour})
	b := &testBundle{ctx: ctx, eng: eng, clock: clk}
	p := b.pool(t, pool.Parallel, 1, 3).UUID
	b.add(t, p, 2)
	l, err := eng.TryDequeue(ctx, p)
	require.NoError(t, err)

	clk.Advance(clocksLease - 10*time.Millisecond)
	held := holdPool(t, other, p, 600*time.Millisecond)
	extended := make(chan error, 1)
	go func() { extended <- eng.Extend(ctx, l, clocksLease) }()
	time.Sleep(200 * time.Millisecond) // the extension has begun, 10 ms before the deadline, and waits
	clk.Advance(20 * time.Millisecond)
	require.NoError(t, <-held)
	require.ErrorIs(t, <-extended, queue.ErrLeaseLost, "extended 10 ms after its deadline")
	_, err = eng.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "within the grace, the call may still be on")
}
