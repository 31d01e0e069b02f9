package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
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

// TestEngine_ItemOpsWakeForTheExpiriesTheyApply: Skip, SetPriority, Remove,
// OptOut and UpdatePool (one that changes no cap) apply the pool's expired
// leases first, as every write on a pool does, and so may free slots: a
// Dequeue blocked on the full pool wakes for them. They dropped the count of leases
// applied until December 2026, and signalled nothing: the blocked Dequeue
// slept on (here, with an injected clock and an hour's poll, for its whole
// timer) with a slot free and an item due.
func TestEngine_ItemOpsWakeForTheExpiriesTheyApply(t *testing.T) {
	ops := map[string]func(ctx context.Context, eng *queue.Engine, p, other uuid.UUID) error{
		"Skip": func(ctx context.Context, eng *queue.Engine, p, other uuid.UUID) error {
			_, err := eng.Skip(ctx, p, other, "withdrawn")
			return err
		},
		"SetPriority": func(ctx context.Context, eng *queue.Engine, p, other uuid.UUID) error {
			_, err := eng.SetPriority(ctx, p, other, 5)
			return err
		},
		"Remove": func(ctx context.Context, eng *queue.Engine, p, other uuid.UUID) error {
			_, err := eng.Remove(ctx, p, other)
			return err
		},
		"OptOut": func(ctx context.Context, eng *queue.Engine, _, other uuid.UUID) error {
			_, err := eng.OptOut(ctx, other)
			return err
		},
		// An update that changes no cap, only the description.
		"UpdatePool": func(ctx context.Context, eng *queue.Engine, p, _ uuid.UUID) error {
			_, err := eng.UpdatePool(ctx, p, pool.UpdateParams{Description: pqPtr("renamed")})
			return err
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			bothStores(t, func(t *testing.T, st store.Store) {
				ctx := context.Background()
				c := newClock()
				eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, RetryDelay: 10 * time.Minute,
					Now: c.Now, PollInterval: time.Hour})
				require.NoError(t, err)
				t.Cleanup(func() { eng.Close() })
				one := 1
				p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "serial", Description: "d", Type: pool.FIFO, MaxParallelItems: &one})
				require.NoError(t, err)
				a, b, other := uuid.New(), uuid.New(), uuid.New()
				_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: a}, pool.NewItem{ContactUUID: b}, pool.NewItem{ContactUUID: other})
				require.NoError(t, err)
				l, err := eng.TryDequeue(ctx, p.UUID)
				require.NoError(t, err)
				require.Equal(t, a, l.ContactUUID)

				dctx, cancel := context.WithCancel(ctx)
				defer cancel()
				got := make(chan *queue.Lease, 1)
				go func() {
					if l, err := eng.Dequeue(dctx, p.UUID); err == nil {
						got <- l
					}
				}()
				time.Sleep(200 * time.Millisecond) // blocked: the serial pool is full
				c.Advance(2 * time.Minute)         // a's lease has ended

				require.NoError(t, op(ctx, eng, p.UUID, other)) // applies a's expiry: the slot is free
				it, err := eng.Item(ctx, p.UUID, a)
				require.NoError(t, err)
				require.Equal(t, pool.StatusRetrying, it.Status, "a's expired lease applied by %s", name)

				select {
				case l := <-got:
					require.Equal(t, b, l.ContactUUID)
				case <-time.After(3 * time.Second):
					t.Fatalf("the blocked Dequeue did not wake within 3 s of %s freeing the slot", name)
				}
			})
		})
	}
}
