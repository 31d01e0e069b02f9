package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_LateClaimGiveBackWakesWaiters: a Dequeue that looked while a
// late claim held the pool's only item, and sleeps (PollInterval, here an
// hour), is woken when the late claim gives the item back and its caller
// leaves: the item is due again, and the waiter takes it at once.
func TestEngine_LateClaimGiveBackWakesWaiters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	as := &afterWriteStore{Store: st}
	clk := newClock()
	eng, err := queue.New(as, queue.Options{LeaseTimeout: 10 * time.Minute, PollInterval: time.Hour, Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "late", Description: "d"})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan error, 1)
	as.after = func() {
		// The claim committed, and its answer is late: meanwhile another
		// Dequeue looks (its claim waits for this one's to end).
		go func() {
			l, err := eng.Dequeue(ctx, p.UUID)
			if err == nil && l.ContactUUID != c {
				err = context.Canceled
			}
			got <- err
		}()
		// Not require: this runs on the claim's goroutine.
		for end := time.Now().Add(5 * time.Second); queue.Queued(eng) == 0 && time.Now().Before(end); {
			time.Sleep(time.Millisecond)
		}
		clk.Advance(3 * time.Second)
		cancel() // the late claim's caller leaves: it does not claim again
	}
	as.armed.Store(true)
	_, err = eng.TryDequeue(actx, p.UUID)
	require.ErrorIs(t, err, context.Canceled)
	select {
	case err := <-got:
		require.NoError(t, err, "the waiter got the item given back")
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter was not woken when the late claim gave the item back")
	}
}
