package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_WakesWhenAClaimExpiresMoreThanItTakes: a claim that ends two
// leases and takes one item leaves a slot free; a Dequeue blocked at
// capacity on the pool wakes for it at once, not at its own timer. The
// clock is injected and jumps past the leases' end, so the blocked
// Dequeue's timer (set for the leases' end by the real clock, a minute
// away) cannot stand in for the wake-up; PollInterval is ccPoll.
func TestEngine_WakesWhenAClaimExpiresMoreThanItTakes(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	two := 2
	eng, p, cs := ccWakeSetup(t, queue.Options{Now: clk.Now, LeaseTimeout: time.Minute, RetryDelay: time.Hour},
		pool.CreateParams{Type: pool.Parallel, MaxParallelItems: &two}, 4)
	for range 2 {
		_, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
	}
	_, err := eng.TryDequeue(ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrAtCapacity)
	ch := startDequeue(t, ctx, eng, p.UUID)

	clk.Advance(2 * time.Minute) // both leases have ended
	t0 := time.Now()
	l, err := eng.TryDequeue(ctx, p.UUID) // ends both, takes one: one slot left
	require.NoError(t, err)
	require.Equal(t, cs[2], l.ContactUUID)
	r := awaitDequeue(t, ch, t0)
	require.NoError(t, r.err)
	require.Equal(t, cs[3], r.l.ContactUUID)
}
