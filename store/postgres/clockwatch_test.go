package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// steppedClock is a node's clock: the process's, off ahead of it (behind
// when negative); a test steps it by changing off.
type steppedClock struct{ off atomic.Int64 }

func (c *steppedClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *steppedClock) step(d time.Duration) { c.off.Store(int64(d)) }

// watchNodes opens two nodes on one schema with postgres.Options'
// defaults (MaxClockSkew 30 s, LeaseGrace 60 s): the holder's clock is the
// process's; the other's is clk, right at Open, which its store compares
// with the server's (postgres.WithClock) and its engine reads
// (queue.Options.Now). Both engines: leases of a minute, retries after
// 1 ms.
func watchNodes(t *testing.T, ctx context.Context, clk *steppedClock) (holder, other *queue.Engine, otherStore *postgres.Store) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	open := func(ctx context.Context, now func() time.Time) (*queue.Engine, *postgres.Store) {
		st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 2})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		eng, err := queue.New(st, queue.Options{Now: now, LeaseTimeout: time.Minute, RetryDelay: time.Millisecond,
			PollInterval: time.Hour})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })
		return eng, st
	}
	holder, _ = open(ctx, nil)
	other, otherStore = open(postgres.WithClock(ctx, clk.Now), clk.Now)
	return holder, other, otherStore
}

// TestClockWatch_SteppedAheadAfterOpen: a node whose clock was right at
// Open is stepped ahead by 3 minutes (a time sync gone wrong, a date set
// by hand), past the end of another node's lease, grace included. That
// other node still holds the call of the contact, by every clock but the
// stepped one: the stepped node's claim must not take it for ended (and
// call the contact again, or the next one of the serial pool beside it):
// it is refused with ErrClockSkew, and the holder's Complete counts. Once
// the clock is set right, the node claims again, by itself.
func TestClockWatch_SteppedAheadAfterOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &steppedClock{}
	holder, stepped, st := watchNodes(t, ctx, clk)
	p, err := holder.CreatePool(ctx, pool.CreateParams{Name: "stepped", Description: "clock", Type: pool.FIFO})
	require.NoError(t, err)
	first, second := uuid.New(), uuid.New()
	_, err = holder.Add(ctx, p.UUID, pool.NewItem{ContactUUID: first}, pool.NewItem{ContactUUID: second})
	require.NoError(t, err)
	l, err := holder.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, first, l.ContactUUID)

	clk.step(time.Minute + st.LeaseGrace() + time.Minute)
	got, err := stepped.TryDequeue(ctx, p.UUID)
	if err == nil {
		t.Fatalf("the node stepped ahead claimed %s while the holder is on the call of %s", got.ContactUUID, first)
	}
	require.ErrorIs(t, err, postgres.ErrClockSkew, "the node stepped ahead judged the holder's live lease by its clock")
	require.NoError(t, holder.Complete(ctx, l, "answered"), "the holder's call was taken for ended")

	clk.step(0)
	got, err = stepped.TryDequeue(ctx, p.UUID)
	require.NoError(t, err, "the clock set right again")
	require.Equal(t, second, got.ContactUUID)
}
