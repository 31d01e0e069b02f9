package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_WakesWhenAClaimExpiresMoreThanItTakes is
// TestEngine_WakesWhenAClaimExpiresMoreThanItTakes across nodes: the claim
// on one node that ends two leases and takes one item wakes a Dequeue
// blocked at capacity on the other. The nodes share an injected clock that
// jumps past the leases' end (11 s, inside MaxClockSkew), so the waiter's
// timer, set for the leases' end by the real clock, cannot stand in for
// the signal; PollInterval is an hour.
func TestPostgres_WakesWhenAClaimExpiresMoreThanItTakes(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	clk := &clock{t: time.Now().UTC()}
	engines, stores := pgEngines(t, url, 2, queue.Options{Now: clk.Now, PollInterval: time.Hour,
		LeaseTimeout: 10 * time.Second, RetryDelay: time.Hour})
	waiter, other := engines[0], engines[1]
	require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)
	two := 2
	p, err := other.CreatePool(ctx, pool.CreateParams{Name: "freed", Description: "d", Type: pool.Parallel, MaxParallelItems: &two})
	require.NoError(t, err)
	_, err = other.Add(ctx, p.UUID, newItems(4)...)
	require.NoError(t, err)
	mustTry(t, other, p.UUID)
	mustTry(t, other, p.UUID)
	got := blockedDequeue(t, waiter, p.UUID)

	clk.Advance(11 * time.Second) // both leases have ended
	t0 := time.Now()
	mustTry(t, other, p.UUID) // ends both, takes one: one slot left
	select {
	case r := <-got:
		require.NoError(t, r.err)
		t.Logf("woken %v after", r.at.Sub(t0).Round(time.Millisecond))
	case <-time.After(3 * time.Second):
		t.Fatal("the blocked Dequeue on the other node was not woken by the claim that freed a slot")
	}
}
