package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/leakcheck"
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
// 1 ms, a look at least every 100 ms (Work's, after a claim refused).
func watchNodes(t *testing.T, ctx context.Context, clk *steppedClock) (holder, other *queue.Engine, otherStore *postgres.Store) {
	t.Helper()
	url := pgtest.URL(t)
	schema := pgtest.Schema(t, url)
	open := func(ctx context.Context, now func() time.Time) (*queue.Engine, *postgres.Store) {
		st, err := postgres.Open(ctx, url, postgres.Options{Schema: schema, MaxConns: 2})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		eng, err := queue.New(st, queue.Options{Now: now, LeaseTimeout: time.Minute, RetryDelay: time.Millisecond,
			PollInterval: 100 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })
		return eng, st
	}
	holder, _ = open(ctx, nil)
	other, otherStore = open(postgres.WithClock(ctx, clk.Now), clk.Now)
	return holder, other, otherStore
}

// clockPool creates a Parallel pool named name on eng with n new
// contacts, which it returns.
func clockPool(t *testing.T, ctx context.Context, eng *queue.Engine, name string, n int) (pool.Pool, []uuid.UUID) {
	t.Helper()
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: name, Description: "clock", Type: pool.Parallel})
	require.NoError(t, err)
	contacts := make([]uuid.UUID, n)
	items := make([]pool.NewItem, n)
	for i := range contacts {
		contacts[i] = uuid.New()
		items[i] = pool.NewItem{ContactUUID: contacts[i]}
	}
	_, err = eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	return p, contacts
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

// TestClockWatch_SteppedBehindAfterOpen: a node stepped 3 minutes behind
// after Open would write leases that end, by every other clock, minutes
// before its own deadline, and the others would take its live calls for
// ended: its claims are refused too, until its clock is back.
func TestClockWatch_SteppedBehindAfterOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &steppedClock{}
	holder, stepped, _ := watchNodes(t, ctx, clk)
	p, _ := clockPool(t, ctx, holder, "stepped", 1)

	clk.step(-3 * time.Minute)
	_, err := stepped.TryDequeue(ctx, p.UUID)
	require.ErrorIs(t, err, postgres.ErrClockSkew)
	require.ErrorContains(t, err, "behind the database server's")
	clk.step(0)
	_, err = stepped.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
}

// TestClockWatch_Drift: a clock that moves away from the server's with the
// process's monotonic clock (an oscillator drifting, the server's clock
// stepped), which no operation sees by itself, is found by the Store's
// next measure of the server's clock (every 20 ms here), and its claims
// are refused; once it is back, the next measure lets them through again.
func TestClockWatch_Drift(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &steppedClock{}
	origin := clk.Now()
	moving := postgres.WithClockWatch(ctx, 20*time.Millisecond, func() time.Duration { return clk.Now().Sub(origin) })
	holder, drifted, _ := watchNodes(t, moving, clk)
	p, _ := clockPool(t, ctx, holder, "drift", 1)

	clk.step(time.Minute)
	require.Eventually(t, func() bool {
		_, err := drifted.TryDequeue(ctx, p.UUID)
		return errors.Is(err, postgres.ErrClockSkew)
	}, 5*time.Second, 10*time.Millisecond, "the drift is never found")
	clk.step(0)
	require.Eventually(t, func() bool {
		_, err := drifted.TryDequeue(ctx, p.UUID) // claims the item, or finds it claimed before the drift was found
		return err == nil || errors.Is(err, queue.ErrEmpty)
	}, 5*time.Second, 10*time.Millisecond, "the clock back, claims are still refused")
}

// TestClockWatch_SettlesButJudgesNoLease: while its clock is 2.5 minutes
// ahead, a node still settles and extends its own call (its deadline, by
// its own clock, has not come), but takes no lease of another node for
// ended on the way (every write on a pool's items applies its ended
// leases): the other node's call, ended by the clock ahead only, goes on.
// Nor does it detach a pool of a campaign, which judges which calls are
// still on.
func TestClockWatch_SettlesButJudgesNoLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &steppedClock{}
	holder, stepped, _ := watchNodes(t, ctx, clk)
	p, _ := clockPool(t, ctx, holder, "settles", 2)
	held, err := holder.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	own, err := stepped.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, stepped.Extend(ctx, own, 10*time.Minute))

	// Past the held lease's end, grace included (1 min + 60 s), within
	// the stepped node's own deadline (10 min).
	clk.step(150 * time.Second)
	require.NoError(t, stepped.Extend(ctx, own, 10*time.Minute), "its own call")
	require.NoError(t, stepped.Complete(ctx, own, "answered"), "its own call")
	require.NoError(t, holder.Complete(ctx, held, "answered"), "the other node's call was taken for ended")

	c, err := holder.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign"})
	require.NoError(t, err)
	_, err = holder.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = stepped.DetachPool(ctx, c.UUID, p.UUID)
	require.ErrorIs(t, err, postgres.ErrClockSkew)
	clk.step(0)
	detached, err := stepped.DetachPool(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	require.True(t, detached)
}

// TestClockWatch_Work: Work on a node whose clock is stepped ahead after
// Open reports each refused claim as an EventError wrapping ErrClockSkew,
// starts no handler, and goes on: once the clock is back, it calls.
func TestClockWatch_Work(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &steppedClock{}
	holder, stepped, _ := watchNodes(t, ctx, clk)
	p, contacts := clockPool(t, ctx, holder, "work", 1)
	contact := contacts[0]

	clk.step(3 * time.Minute)
	skewed := make(chan struct{}, 1)
	called := make(chan uuid.UUID, 1)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- stepped.Work(wctx, func(_ context.Context, l *queue.Lease) error {
			called <- l.ContactUUID
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: func(ev queue.Event) {
			if ev.Kind == queue.EventError && errors.Is(ev.Err, postgres.ErrClockSkew) {
				select {
				case skewed <- struct{}{}:
				default:
				}
			}
		}})
	}()
	select {
	case <-skewed:
	case c := <-called:
		t.Fatalf("Work called %s with its clock 3 minutes ahead", c)
	case err := <-done:
		t.Fatalf("Work returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no EventError wrapping ErrClockSkew")
	}
	clk.step(0)
	select {
	case c := <-called:
		require.Equal(t, contact, c)
	case err := <-done:
		t.Fatalf("Work returned %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Work did not call once the clock was back")
	}
	cancel()
	require.NoError(t, <-done)
}

// TestClockWatch_NoFalseSkew: a Store that measures the server's clock
// every 2 ms, with the tightest MaxClockSkew (1 ms), on a host whose clock
// is the server's, refuses none of 1 s of claims and settlements: every
// measure counts only the skew its round trips prove.
func TestClockWatch_NoFalseSkew(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	wctx := postgres.WithClockWatch(ctx, 2*time.Millisecond, nil)
	st, err := postgres.Open(wctx, url, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 2,
		MaxClockSkew: postgres.MinMaxClockSkew})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	eng, err := queue.New(st, queue.Options{PollInterval: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "normal", Description: "clock", Type: pool.Parallel})
	require.NoError(t, err)
	claims := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); claims++ {
		_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
		require.NoError(t, err)
		l, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err, "claim %d", claims)
		require.NoError(t, eng.Complete(ctx, l, "answered"), "claim %d", claims)
	}
	t.Logf("%d claims", claims)
}

// watchGoroutines returns the number of goroutines measuring a Store's
// skew (clockWatch's).
func watchGoroutines() int {
	count := 0
	for _, g := range leakcheck.Stacks() {
		if strings.Contains(g, "(*clockWatch).start") {
			count++
		}
	}
	return count
}

// TestClockWatch_Close: a Store's watch runs one goroutine from Open, which
// Close ends before it returns; a Store opened with a negative
// MaxClockSkew runs none, and judges by its clock however far it is from
// the server's. Not parallel: it counts the process's goroutines.
func TestClockWatch_Close(t *testing.T) {
	url := pgtest.URL(t)
	ctx := context.Background()
	before := watchGoroutines()
	clk := &steppedClock{}
	st, err := postgres.Open(postgres.WithClock(ctx, clk.Now), url, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 2})
	require.NoError(t, err)
	require.Equal(t, before+1, watchGoroutines(), "the watch's goroutine")
	require.NoError(t, st.Close())
	// Close waits for the goroutine to end its work; it may take a moment
	// more to be gone.
	require.Eventually(t, func() bool { return watchGoroutines() == before }, 5*time.Second, time.Millisecond, "left after Close")

	st, err = postgres.Open(postgres.WithClock(ctx, clk.Now), url, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 2,
		MaxClockSkew: -1})
	require.NoError(t, err)
	defer st.Close()
	require.Equal(t, before, watchGoroutines(), "no watch")
	eng, err := queue.New(st, queue.Options{Now: clk.Now, PollInterval: time.Hour})
	require.NoError(t, err)
	defer eng.Close()
	p, _ := clockPool(t, ctx, eng, "unwatched", 1)
	clk.step(time.Hour)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err, "MaxClockSkew negative: no check")
	clk.step(-time.Hour)
	require.NoError(t, eng.Extend(ctx, l, time.Minute), "MaxClockSkew negative: no check, behind either")
}
