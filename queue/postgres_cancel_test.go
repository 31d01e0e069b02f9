package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_CallerLeavesALockWaitWhenCancelled: another node's
// transaction holds a pool's lock (and a rule's) for far less than the
// store's LockTimeout (30 s) but far more than the callers stay. A call
// whose context is cancelled (no deadline: a request whose client went
// away, a Work stopping), and whose write runs alone, returns at once with
// an error wrapping context.Canceled, and nothing of it is written. (Until
// December 2026 it waited with the lock, up to LockTimeout: only a
// deadline ended the wait.)
func TestPostgres_CallerLeavesALockWaitWhenCancelled(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	eng := openEngine(t, st, queue.Options{})
	two := 2
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d", Type: pool.Parallel, MaxParallelItems: &two})
	require.NoError(t, err)
	items := newItems(3)
	_, err = eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	q := parallelPoolOfOne(t, eng, "pool Q")
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule R"})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign C", RuleUUID: &r.UUID})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, q.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	before, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)

	const hold = 4 * time.Second
	heldP := holdPool(t, other, p.UUID, hold)
	heldR := holdPool(t, other, q.UUID, hold, r.UUID)
	three, name := 3, "rule R renamed"
	skipped := items[2].ContactUUID
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"TryDequeue", func(ctx context.Context) error { _, err := eng.TryDequeue(ctx, p.UUID); return err }},
		{"DequeueN", func(ctx context.Context) error { _, err := eng.DequeueN(ctx, p.UUID, 2); return err }},
		{"Add", func(ctx context.Context) error { _, err := eng.Add(ctx, p.UUID, newItems(1)...); return err }},
		{"UpdatePool", func(ctx context.Context) error {
			_, err := eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &three})
			return err
		}},
		{"Skip", func(ctx context.Context) error { _, err := eng.Skip(ctx, p.UUID, skipped, "skip"); return err }},
		{"Extend", func(ctx context.Context) error { return eng.Extend(ctx, l, time.Hour) }},
		{"Complete", func(ctx context.Context) error { return eng.Complete(ctx, l, "answered") }},
		{"UpdateRule", func(ctx context.Context) error {
			_, err := eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{Name: &name})
			return err
		}},
	}
	const after, slack = 200 * time.Millisecond, time.Second
	var worst time.Duration
	for _, tc := range calls {
		cctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(after, cancel)
		start := time.Now()
		err := tc.call(cctx)
		took := time.Since(start)
		timer.Stop()
		cancel()
		worst = max(worst, took-after)
		require.ErrorIs(t, err, context.Canceled, "%s behind another node's lock", tc.name)
		require.Less(t, took, after+slack, "%s held past its cancellation: %v", tc.name, took)
	}
	t.Logf("the latest call returned %v after its cancellation", worst)
	require.NoError(t, <-heldP)
	require.NoError(t, <-heldR)

	got, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, before.Pool.ContactsCount, got.Pool.ContactsCount, "an Add was written")
	require.Equal(t, before.Pool.MaxParallelItems, got.Pool.MaxParallelItems, "an UpdatePool was written")
	require.Equal(t, before.StatusCounts, got.StatusCounts, "a claim, a Skip or the Complete was written")
	rule, err := eng.Rule(ctx, r.UUID)
	require.NoError(t, err)
	require.Equal(t, r.Name, rule.Name, "the UpdateRule was written")
	it, err := eng.Item(ctx, p.UUID, l.ContactUUID)
	require.NoError(t, err)
	require.True(t, l.ExpiresAt.Equal(it.LeaseExpiresAt), "the Extend was written: %v, then %v", l.ExpiresAt, it.LeaseExpiresAt)

	// The connection of a cancelled wait was not handed out in a state
	// that fails the next caller: calls go through once the pool is free.
	for range 3 {
		_, err := eng.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
	}
	require.NoError(t, eng.Complete(ctx, l, "answered"))
}

// TestPostgres_WorkStopsBehindAnotherNodesLock: Work's claim waits for a
// pool whose lock another node's transaction holds (5 s, far less than
// LockTimeout) when Work's context is cancelled. Work returns within its
// grace (100 ms) and a little more, not once the other node lets go, and
// it claimed nothing: no handler ran, no item is in flight. (Until
// December 2026 it returned 5 s after its cancellation: the claim under
// way finished its wait, up to LockTimeout.)
func TestPostgres_WorkStopsBehindAnotherNodesLock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	eng := openEngine(t, st, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(3)...)
	require.NoError(t, err)

	const hold = 5 * time.Second
	held := holdPool(t, other, p.UUID, hold)
	var handled atomic.Int32
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- eng.Work(wctx, func(ctx context.Context, l *queue.Lease) error {
			handled.Add(1)
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 2, Grace: 100 * time.Millisecond})
	}()
	time.Sleep(500 * time.Millisecond) // Work's first claim waits for the lock
	cancel()
	start := time.Now()
	var werr error
	select {
	case werr = <-done:
	case <-time.After(hold + 10*time.Second):
		t.Fatal("Work did not return")
	}
	took := time.Since(start)
	t.Logf("Work returned %v after its cancellation", took)
	require.NoError(t, werr)
	require.Less(t, took, time.Second, "Work held past its grace behind another node's lock")
	require.NoError(t, <-held)
	require.Zero(t, handled.Load(), "a handler ran")
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, 3, d.StatusCounts[pool.StatusPending], "Work's claim was written: %v", d.StatusCounts)
}
