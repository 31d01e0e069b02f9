package queue_test

import (
	"context"
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

// TestEngine_WakesWhenTheContactsCallEndsInAnotherPool: under a rule a
// contact has one call at a time across its campaign's pools, so a waiter
// on the second pool (a Dequeue, or Work over that pool alone: a worker
// per pool) passes over the contact's item while its call from the first
// pool goes on. When that call ends (Release, Complete, Fail), the waiter
// claims the item at once, not at its safety poll (an hour here). (The
// settlement woke the first pool's waiters only: the second pool's slept
// until the poll, 1 s by default.)
func TestEngine_WakesWhenTheContactsCallEndsInAnotherPool(t *testing.T) {
	t.Parallel()
	for _, waiter := range []string{"Dequeue", "Work"} {
		for name, end := range callEnds {
			t.Run(waiter+"/"+name, func(t *testing.T) {
				t.Parallel()
				eng := openEngine(t, openFileStore(t, ""), queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour})
				wakesAcrossPools(t, eng, eng, waiter, end)
			})
		}
	}
}

// TestPostgres_WakesWhenTheContactsCallEndsInAnotherPool: the same across
// two nodes, the call ended on one and the waiter on the other.
func TestPostgres_WakesWhenTheContactsCallEndsInAnotherPool(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, waiter := range []string{"Dequeue", "Work"} {
		t.Run(waiter, func(t *testing.T) {
			t.Parallel()
			a := pgtest.Open(t, url, postgres.Options{})
			b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
			opts := queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Hour}
			wakesAcrossPools(t, openEngine(t, a, opts), openEngine(t, b, opts), waiter, callEnds["Complete"])
		})
	}
}

// callEnds are the ways a call's lease ends.
var callEnds = map[string]func(context.Context, *queue.Engine, *queue.Lease) error{
	"Release": func(ctx context.Context, e *queue.Engine, l *queue.Lease) error { return e.Release(ctx, l) },
	"Complete": func(ctx context.Context, e *queue.Engine, l *queue.Lease) error {
		return e.Complete(ctx, l, "answered")
	},
	"Fail": func(ctx context.Context, e *queue.Engine, l *queue.Lease) error {
		return e.Fail(ctx, l, queue.Failure{Note: "busy"})
	},
}

// wakesAcrossPools puts contact x in two pools of a running campaign with
// a rule, calls x from the first on engine ea, has a waiter of the second
// on engine eb pass x over, ends the call with end, and asks the waiter
// to get x within 5 s.
func wakesAcrossPools(t *testing.T, ea, eb *queue.Engine, waiter string, end func(context.Context, *queue.Engine, *queue.Lease) error) {
	ctx := context.Background()
	r, err := ea.CreateRule(ctx, campaign.CreateRuleParams{Name: "all day", StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59"),
		MaxCallsPerDay: pqPtr(9)})
	require.NoError(t, err)
	c, err := ea.CreateCampaign(ctx, campaign.CreateParams{Name: "two pools", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
	require.NoError(t, err)
	var pools [2]uuid.UUID
	x := newItems(1)
	for i := range pools {
		p, err := ea.CreatePool(ctx, pool.CreateParams{Name: "pool of x", Description: "d", Type: pool.Parallel})
		require.NoError(t, err)
		_, err = ea.Add(ctx, p.UUID, x...)
		require.NoError(t, err)
		pools[i] = p.UUID
	}
	_, err = ea.AttachPools(ctx, c.UUID, pools[:]...)
	require.NoError(t, err)
	_, err = ea.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	l, err := ea.TryDequeue(ctx, pools[0]) // x in a call from the first pool
	require.NoError(t, err)

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan uuid.UUID, 1)
	errc := make(chan error, 1)
	go func() {
		if waiter == "Dequeue" {
			l, err := eb.Dequeue(wctx, pools[1])
			if err == nil {
				got <- l.ContactUUID
			}
			errc <- err
			return
		}
		errc <- eb.Work(wctx, func(_ context.Context, l *queue.Lease) error {
			got <- l.ContactUUID
			return nil
		}, queue.WorkOptions{Pools: pools[1:], Workers: 1})
	}()
	// The waiter's claim passed x over and follows the first pool.
	require.True(t, waitUntil(5*time.Second, func() bool { f, d := queue.Following(eb); return f == 1 && d == 1 }),
		"the waiter did not pass x over")
	require.NoError(t, end(ctx, ea, l)) // the call from the first pool ends
	select {
	case id := <-got:
		require.Equal(t, x[0].ContactUUID, id)
	case err := <-errc:
		t.Fatalf("the waiter returned: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter of the second pool was not woken when x's call from the first ended (PollInterval is an hour)")
	}
	cancel()
	require.NoError(t, <-errc)
	f, d := queue.Following(eb)
	require.Zero(t, f+d, "the waiter left entries behind")
}
