package postgres_test

import (
	"context"
	"errors"
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

// TestClockWatch_WorkSteppedBehind: a node's Work is on a long call, its
// lease kept alive by extensions (a lease of 4 s, one every 2 s), when the
// node's clock steps behind by most of a lease (3.5 s; MaxClockSkew 250
// ms, LeaseGrace 500 ms). An extension written by that clock sets an end
// the other node, whose clock is right, reaches a second after it, a
// second before the next extension: that node takes the call for ended
// and calls the contact while the first call goes on. The call must be
// stopped before the other node can take it (at the end its lease had,
// written by a right clock), and the contact called again only then.
func TestClockWatch_WorkSteppedBehind(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	const lease = 4 * time.Second
	open := func(ctx context.Context, now func() time.Time) *queue.Engine {
		st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 2,
			MaxClockSkew: 250 * time.Millisecond, LeaseGrace: 500 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		eng, err := queue.New(st, queue.Options{Now: now, LeaseTimeout: lease, RetryDelay: time.Millisecond,
			PollInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })
		return eng
	}
	clk := &steppedClock{}
	right := open(ctx, nil)
	stepped := open(postgres.WithClock(ctx, clk.Now), clk.Now)
	p, contacts := clockPool(t, ctx, right, "behind", 1)
	contact := contacts[0]

	started := make(chan struct{}, 1)
	var onCall atomic.Bool // the stepped node's handler is on the call
	var refused atomic.Int64
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- stepped.Work(wctx, func(hctx context.Context, _ *queue.Lease) error {
			onCall.Store(true)
			defer onCall.Store(false)
			started <- struct{}{}
			select { // a long call, until the runner stops it
			case <-hctx.Done():
			case <-time.After(30 * time.Second):
			}
			return hctx.Err()
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Heartbeat: lease / 2, OnEvent: func(ev queue.Event) {
			if ev.Kind == queue.EventError && errors.Is(ev.Err, postgres.ErrClockSkew) && ev.Lease.ContactUUID == contact {
				refused.Add(1)
			}
		}})
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("Work returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the call never started")
	}

	clk.step(-3500 * time.Millisecond)
	stepAt := time.Now()
	var again *queue.Lease
	for again == nil && time.Since(stepAt) < 3*lease {
		l, err := right.TryDequeue(ctx, p.UUID)
		switch {
		case err == nil:
			require.False(t, onCall.Load(), "the other node called %s %v after the step, while the stepped node is still on the call",
				contact, time.Since(stepAt).Round(time.Millisecond))
			again = l
		case errors.Is(err, queue.ErrEmpty):
			time.Sleep(5 * time.Millisecond)
		default:
			require.NoError(t, err)
		}
	}
	require.NotNil(t, again, "the contact was never called again")
	t.Logf("called again %v after the step; %d extensions refused", time.Since(stepAt).Round(time.Millisecond), refused.Load())
	require.Positive(t, refused.Load(), "no extension refused with ErrClockSkew")
	cancel()
	require.NoError(t, <-done)
}

// TestClockWatch_ExtendSteppedBehind: a node whose clock is stepped 3
// minutes behind after Open holds a call. An extension by 10 minutes
// would write an end 7 minutes after now by the other clocks (its own
// clock's now plus 10 minutes), and the other nodes would take the call
// for ended then, 3 minutes before its holder's deadline by its clock: it
// is refused (ErrClockSkew), and the lease keeps the end it had, written
// by a right clock. Its call's other writes go on: MarkInCall, Complete.
// Stepped ahead instead, the node's extensions go on (see
// TestClockWatch_SettlesButJudgesNoLease): they end later by the others'
// clocks, never earlier.
func TestClockWatch_ExtendSteppedBehind(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &steppedClock{}
	holder, stepped, _ := watchNodes(t, ctx, clk)
	p, contacts := clockPool(t, ctx, holder, "behind", 1)
	contact := contacts[0]
	l, err := stepped.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	end := l.Item.LeaseExpiresAt

	clk.step(-3 * time.Minute)
	err = stepped.Extend(ctx, l, 10*time.Minute)
	require.ErrorIs(t, err, postgres.ErrClockSkew, "an extension set by the clock behind")
	it, err := holder.Item(ctx, p.UUID, contact)
	require.NoError(t, err)
	require.Equal(t, end, it.LeaseExpiresAt, "the lease's end moved")
	require.NoError(t, stepped.MarkInCall(ctx, l))
	require.NoError(t, stepped.Complete(ctx, l, "answered"))
	it, err = holder.Item(ctx, p.UUID, contact)
	require.NoError(t, err)
	require.Equal(t, pool.StatusCompleted, it.Status)
}
