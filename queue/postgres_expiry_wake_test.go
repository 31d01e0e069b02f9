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

// TestPostgres_ItemOpExpiryWakesOtherNode: an item operation on node A
// that applies an ended lease (a Skip of another item, here) frees its
// slot for every node at once: it signals the pool, and a Dequeue blocked
// on node B, whose clock (3 s behind A's, inside MaxClockSkew) has not
// reached the lease's end, claims the next item then, not at the lease's
// end by its own clock. Lease grace off, so that A takes its own lease
// for ended at its deadline.
func TestPostgres_ItemOpExpiryWakesOtherNode(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	first := pgtest.Open(t, url, postgres.Options{LeaseGrace: -1})
	second := pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema(), LeaseGrace: -1})
	const ahead = 3 * time.Second
	a := openEngine(t, first, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Second, RetryDelay: time.Hour,
		Now: func() time.Time { return time.Now().Add(ahead) }})
	b := openEngine(t, second, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Second, RetryDelay: time.Hour})
	require.Eventually(t, func() bool { return listeners(t, url, first.Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)

	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "serial", Description: "d"})
	require.NoError(t, err)
	items := newItems(3)
	_, err = a.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	l := mustTry(t, a, p.UUID) // its lease ends 1 s on by A's clock, 4 s on by B's
	require.Equal(t, items[0].ContactUUID, l.ContactUUID)
	got := blockedDequeue(t, b, p.UUID)

	time.Sleep(time.Until(l.ExpiresAt.Add(-ahead + 200*time.Millisecond))) // ended by A's clock
	t0 := time.Now()
	_, err = a.Skip(ctx, p.UUID, items[2].ContactUUID, "not this one")
	require.NoError(t, err)
	it, err := a.Item(ctx, p.UUID, items[0].ContactUUID)
	require.NoError(t, err)
	require.Equal(t, pool.StatusRetrying, it.Status, "the Skip applied the ended lease")

	select {
	case r := <-got:
		require.NoError(t, r.err)
		require.Equal(t, items[1].ContactUUID, r.l.ContactUUID)
		t.Logf("B claimed %v after the Skip", r.at.Sub(t0).Round(time.Millisecond))
	case <-time.After(1500 * time.Millisecond):
		t.Fatalf("B was not woken within 1.5 s of the Skip that freed the slot (its clock reaches the lease's end %v after it)",
			time.Until(l.ExpiresAt).Round(time.Millisecond))
	}
}
