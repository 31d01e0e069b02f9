package queue_test

// More wake-ups across nodes (see postgres_listener_test.go): events the
// other tests do not cover. PollInterval is an hour: a wake-up that does
// not come shows as a timeout.

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

func TestPostgres_WakesAcrossNodesMore(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	engines, stores := pgEngines(t, url, 2, queue.Options{PollInterval: time.Hour, LeaseTimeout: 1500 * time.Millisecond})
	waiter, other := engines[0], engines[1]
	require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)

	// woken checks the blocked Dequeue returns between lo and hi after t0.
	woken := func(t *testing.T, what string, got <-chan ccResult, t0 time.Time, lo, hi time.Duration) {
		t.Helper()
		select {
		case r := <-got:
			require.NoError(t, r.err)
			d := r.at.Sub(t0)
			t.Logf("%s: woken %v after", what, d.Round(time.Millisecond))
			require.GreaterOrEqual(t, d, lo, "%s: woken too early", what)
		case <-time.After(hi):
			t.Fatalf("%s: the blocked Dequeue on the other node was not woken within %v (PollInterval is an hour)", what, hi)
		}
	}
	parallelFull := func(t *testing.T, name string) (pool.Pool, *queue.Lease) {
		one := 1
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: name, Description: "d", Type: pool.Parallel, MaxParallelItems: &one})
		require.NoError(t, err)
		_, err = other.Add(ctx, p.UUID, newItems(2)...)
		require.NoError(t, err)
		l := mustTry(t, other, p.UUID)
		require.NoError(t, other.Extend(ctx, l, time.Hour))
		return p, l
	}

	t.Run("RaiseMaxParallelItems", func(t *testing.T) {
		p, _ := parallelFull(t, "raise")
		got := blockedDequeue(t, waiter, p.UUID)
		two := 2
		t0 := time.Now()
		_, err := other.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &two})
		require.NoError(t, err)
		woken(t, "raise cap", got, t0, 0, 5*time.Second)
	})
	t.Run("ReleaseFreesSlot", func(t *testing.T) {
		p, l := parallelFull(t, "release")
		got := blockedDequeue(t, waiter, p.UUID)
		t0 := time.Now()
		require.NoError(t, other.Release(ctx, l))
		woken(t, "release", got, t0, 0, 5*time.Second)
	})
	// A's item fails with a retry time 1.5 s ahead, in a FIFO pool whose
	// only item it is: B learns the new due time and wakes then, not at
	// the lease's end (an hour) nor at its poll.
	t.Run("FailWithRetryTime", func(t *testing.T) {
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "retry", Description: "d"})
		require.NoError(t, err)
		_, err = other.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		l := mustTry(t, other, p.UUID)
		require.NoError(t, other.Extend(ctx, l, time.Hour))
		got := blockedDequeue(t, waiter, p.UUID)
		t0 := time.Now()
		require.NoError(t, other.Fail(ctx, l, queue.Failure{RetryAt: t0.Add(1500 * time.Millisecond)}))
		woken(t, "fail with retry time", got, t0, 1400*time.Millisecond, 6*time.Second)
	})
	// A claims and dies (its lease is never settled, its engine never
	// closed): B claims the other item when the lease ends.
	t.Run("LeaseExpiresOnDeadNode", func(t *testing.T) {
		one := 1
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "expiry", Description: "d", Type: pool.Parallel, MaxParallelItems: &one})
		require.NoError(t, err)
		_, err = other.Add(ctx, p.UUID, newItems(2)...)
		require.NoError(t, err)
		l := mustTry(t, other, p.UUID)
		got := blockedDequeue(t, waiter, p.UUID)
		woken(t, "lease expiry", got, time.Now(), time.Until(l.ExpiresAt)-100*time.Millisecond, 6*time.Second)
	})
	t.Run("StartCampaign", func(t *testing.T) {
		r, err := other.CreateRule(ctx, campaign.CreateRuleParams{Name: "all day", StartTime: new("00:00"), EndTime: new("23:59")})
		require.NoError(t, err)
		c, err := other.CreateCampaign(ctx, campaign.CreateParams{Name: "not yet", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
		require.NoError(t, err)
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "held", Description: "d"})
		require.NoError(t, err)
		_, err = other.AttachPools(ctx, c.UUID, p.UUID)
		require.NoError(t, err)
		_, err = other.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		got := blockedDequeue(t, waiter, p.UUID)
		t0 := time.Now()
		_, err = other.StartCampaign(ctx, c.UUID)
		require.NoError(t, err)
		woken(t, "start", got, t0, 0, 5*time.Second)
	})
	// DequeueCampaign and Work learn a retry time set on the other node.
	t.Run("DequeueCampaignFailWithRetryTime", func(t *testing.T) {
		_, c, p := allDayCampaign(t, other)
		_, err := other.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		l := mustTry(t, other, p.UUID)
		require.NoError(t, other.Extend(ctx, l, time.Hour))
		got := make(chan ccResult, 1)
		go func() {
			l, err := waiter.DequeueCampaign(ctx, c.UUID)
			got <- ccResult{l, err, time.Now()}
		}()
		require.Eventually(t, func() bool { return queue.Waiting(waiter, p.UUID) == 1 }, 5*time.Second, time.Millisecond)
		time.Sleep(100 * time.Millisecond)
		t0 := time.Now()
		require.NoError(t, other.Fail(ctx, l, queue.Failure{RetryAt: t0.Add(1500 * time.Millisecond)}))
		woken(t, "campaign: fail with retry time", got, t0, 1400*time.Millisecond, 6*time.Second)
	})
	t.Run("WorkLeaseExpiresOnDeadNode", func(t *testing.T) {
		one := 1
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "work expiry", Description: "d", Type: pool.Parallel, MaxParallelItems: &one})
		require.NoError(t, err)
		_, err = other.Add(ctx, p.UUID, newItems(2)...)
		require.NoError(t, err)
		l := mustTry(t, other, p.UUID)
		handled, stop := workReportingHandled(waiter, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: time.Second})
		defer stop()
		select {
		case at := <-handled:
			require.False(t, at.Before(l.ExpiresAt.Add(-100*time.Millisecond)), "handled before the lease ended")
			t.Logf("Work claimed %v after the lease's end", at.Sub(l.ExpiresAt))
		case <-time.After(6 * time.Second):
			t.Fatal("Work on the other node did not claim when the dead node's lease ended (PollInterval is an hour)")
		}
	})
	// The listeners' backends are terminated and, at once, before they can
	// listen again, the other node adds an item: the waiter's listener,
	// back, makes every waiter look again.
	t.Run("AddWhileListenerReconnects", func(t *testing.T) {
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "reconnect", Description: "d"})
		require.NoError(t, err)
		got := blockedDequeue(t, waiter, p.UUID)
		conn, err := pgx.Connect(ctx, url)
		require.NoError(t, err)
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`,
			"poolq listener "+stores[0].Schema())
		require.NoError(t, err)
		t0 := time.Now()
		_, err = other.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		woken(t, "add while the listener reconnects", got, t0, 0, 10*time.Second)
		require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)
	})
}

func mustTry(t *testing.T, eng *queue.Engine, p uuid.UUID) *queue.Lease {
	t.Helper()
	l, err := eng.TryDequeue(context.Background(), p)
	require.NoError(t, err)
	return l
}

// TestPostgres_WakeWithClockBehind: node A's clock is 2 s ahead of node
// B's (inside MaxClockSkew). A's claim finds two retries due by its clock,
// takes one and settles it; B, woken by the settle, finds the other not
// yet due by its own clock and must wait for its retry time — not for its
// poll (an hour), which it did while the item stayed marked due by A.
func TestPostgres_WakeWithClockBehind(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	first := pgtest.Open(t, url, postgres.Options{})
	second := pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema()})
	const ahead = 2 * time.Second
	a := openEngine(t, first, queue.Options{PollInterval: time.Hour, Now: func() time.Time { return time.Now().Add(ahead) }})
	b := openEngine(t, second, queue.Options{PollInterval: time.Hour})
	require.Eventually(t, func() bool { return listeners(t, url, first.Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)

	two := 2
	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "skew", Description: "d", Type: pool.Parallel, MaxParallelItems: &two})
	require.NoError(t, err)
	_, err = a.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	l1, l2 := mustTry(t, a, p.UUID), mustTry(t, a, p.UUID)
	got := blockedDequeue(t, b, p.UUID)

	t0 := time.Now()
	retryAt := t0.Add(2500 * time.Millisecond) // A's clock passes it at t0+0.5 s, B's at t0+2.5 s
	require.NoError(t, a.Fail(ctx, l1, queue.Failure{RetryAt: retryAt}))
	require.NoError(t, a.Fail(ctx, l2, queue.Failure{RetryAt: retryAt}))
	time.Sleep(time.Until(t0.Add(600 * time.Millisecond)))
	l := mustTry(t, a, p.UUID) // promotes both, by A's clock
	before := b.Stats().Operations
	require.NoError(t, a.Complete(ctx, l, "ok"))
	require.Eventually(t, func() bool { return b.Stats().Operations > before }, 5*time.Second, time.Millisecond, "B looked again after A's settle")
	select {
	case r := <-got:
		require.NoError(t, r.err)
		require.False(t, r.at.Before(retryAt.Add(-100*time.Millisecond)), "B claimed %v before the retry time by its clock", retryAt.Sub(r.at))
		t.Logf("B claimed %v after the retry time", r.at.Sub(retryAt).Round(time.Millisecond))
	case <-time.After(time.Until(retryAt) + 3*time.Second):
		t.Fatal("B, behind A's clock, was not woken at the retry time A's claim had marked due (PollInterval is an hour)")
	}
}
