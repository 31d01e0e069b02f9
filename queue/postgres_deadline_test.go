package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// lockWait is a pool P (cap 2) with a lease l of its first item, a pool Q
// of a running campaign C under rule R, and a second store on the same
// schema (other) whose transactions hold their locks: what the tests of a
// call left waiting for another node's lock use.
type lockWait struct {
	eng    *queue.Engine
	other  store.Store
	p, q   pool.Pool
	r      campaign.Rule
	l      *queue.Lease
	items  []pool.NewItem
	before pool.Detail // P's, once l is claimed
}

func newLockWait(t *testing.T, url string) *lockWait {
	t.Helper()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4}) // the default LockTimeout: 30 s
	w := &lockWait{other: pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})}
	w.eng = openEngine(t, st, queue.Options{})
	two := 2
	var err error
	w.p, err = w.eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d", Type: pool.Parallel, MaxParallelItems: &two})
	require.NoError(t, err)
	w.items = newItems(3)
	_, err = w.eng.Add(ctx, w.p.UUID, w.items...)
	require.NoError(t, err)
	w.l, err = w.eng.TryDequeue(ctx, w.p.UUID)
	require.NoError(t, err)
	w.q = parallelPoolOfOne(t, w.eng, "pool Q")
	w.r, err = w.eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule R"})
	require.NoError(t, err)
	c, err := w.eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign C", RuleUUID: &w.r.UUID})
	require.NoError(t, err)
	_, err = w.eng.AttachPools(ctx, c.UUID, w.q.UUID)
	require.NoError(t, err)
	_, err = w.eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	w.before, err = w.eng.Pool(ctx, w.p.UUID)
	require.NoError(t, err)
	return w
}

// hold makes other hold P's lock, and Q's with R's (shared, as a claim
// under R does), for d, and returns what waits for both to end.
func (w *lockWait) hold(t *testing.T, d time.Duration) func() {
	heldP := holdPool(t, w.other, w.p.UUID, d)
	heldR := holdPool(t, w.other, w.q.UUID, d, w.r.UUID)
	return func() {
		require.NoError(t, <-heldP)
		require.NoError(t, <-heldR)
	}
}

// lockWaitCall is a call that waits for P's lock, or R's.
type lockWaitCall struct {
	name string
	call func(ctx context.Context) error
}

// calls returns a call of each kind that waits for P's lock or R's;
// none of them is written if it fails.
func (w *lockWait) calls() []lockWaitCall {
	eng, p, l := w.eng, w.p, w.l
	three, name := 3, "rule R renamed"
	skipped := w.items[2].ContactUUID // still Pending: the claim took the first
	return []lockWaitCall{
		{"TryDequeue", func(ctx context.Context) error { _, err := eng.TryDequeue(ctx, p.UUID); return err }},
		{"Dequeue", func(ctx context.Context) error { _, err := eng.Dequeue(ctx, p.UUID); return err }},
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
			_, err := eng.UpdateRule(ctx, w.r.UUID, campaign.UpdateRuleParams{Name: &name})
			return err
		}},
	}
}

// leaveAfter is when the callers of leaveEach leave, and leaveSlack how
// much later they may return.
const leaveAfter, leaveSlack = 200 * time.Millisecond, time.Second

// leaveEach runs every call of w.calls under a context from leave, which
// ends leaveAfter in (how: its deadline or its cancellation), and checks
// that each returns by leaveSlack later with an error wrapping want.
func (w *lockWait) leaveEach(t *testing.T, how string, want error, leave func() (context.Context, context.CancelFunc)) {
	t.Helper()
	var worst time.Duration
	for _, tc := range w.calls() {
		cctx, cancel := leave()
		start := time.Now()
		err := tc.call(cctx)
		took := time.Since(start)
		cancel()
		worst = max(worst, took-leaveAfter)
		require.ErrorIs(t, err, want, "%s behind another node's lock", tc.name)
		require.Less(t, took, leaveAfter+leaveSlack, "%s held past %s: %v", tc.name, how, took)
	}
	t.Logf("the latest call returned %v after %s", worst, how)
}

// requireNothingWritten checks that none of the calls was written.
func (w *lockWait) requireNothingWritten(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	after, err := w.eng.Pool(ctx, w.p.UUID)
	require.NoError(t, err)
	require.Equal(t, w.before.Pool.ContactsCount, after.Pool.ContactsCount, "an Add was written")
	require.Equal(t, w.before.Pool.MaxParallelItems, after.Pool.MaxParallelItems, "an UpdatePool was written")
	require.Equal(t, w.before.StatusCounts, after.StatusCounts, "a claim, a Skip or the Complete was written")
	got, err := w.eng.Rule(ctx, w.r.UUID)
	require.NoError(t, err)
	require.Equal(t, w.r.Name, got.Name, "the UpdateRule was written")
	it, err := w.eng.Item(ctx, w.p.UUID, w.l.ContactUUID)
	require.NoError(t, err)
	require.True(t, w.l.ExpiresAt.Equal(it.LeaseExpiresAt), "the Extend was written: %v, then %v", w.l.ExpiresAt, it.LeaseExpiresAt)
}

// TestPostgres_CallerLeavesALockWaitAtItsDeadline: another node's
// transaction holds a pool's lock (and a rule's, shared, as a claim under
// it does) for much less than the store's LockTimeout (30 s) but much more
// than the callers' deadlines. A call whose context has a deadline, and
// whose write runs alone, returns by its deadline (plus slack) with an
// error wrapping context.DeadlineExceeded, and nothing of it is written;
// the pool is not taken for one held past the lock timeout (the next call
// waits for it again, and goes through once it is free).
func TestPostgres_CallerLeavesALockWaitAtItsDeadline(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	w := newLockWait(t, url)
	waitHeld := w.hold(t, 4*time.Second)
	w.leaveEach(t, "its deadline", context.DeadlineExceeded, func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, leaveAfter)
	})
	waitHeld()
	w.requireNothingWritten(t)

	// The pool was not taken for one held past the lock timeout: a call
	// with time enough waits for its lock, and goes through.
	heldP := holdPool(t, w.other, w.p.UUID, 300*time.Millisecond)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, w.eng.Complete(cctx, w.l, "answered"), "a Complete with time enough to wait")
	require.NoError(t, <-heldP)
}

// TestPostgres_CallerLeavesASilentServerAtItsDeadline: the server stops
// answering (a partition: nothing forwarded, nothing closed) just as a
// claim with a 200 ms deadline begins its transaction on a connection the
// pool hands out without a ping. The claim returns by its deadline (plus
// slack), with an error wrapping context.DeadlineExceeded, not at the
// round trip's bound (LockTimeout plus 5 s here; 60 s by default), and
// nothing of it is written: its COMMIT was never sent.
func TestPostgres_CallerLeavesASilentServerAtItsDeadline(t *testing.T) {
	pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	px, st := proxiedStore(t, connFailOptions)
	eng := openEngine(t, st, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "silent", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(3)...) // its connection, idle for less than a second, is handed out unpinged
	require.NoError(t, err)
	px.frozen.Store(true)

	const deadline, slack = 200 * time.Millisecond, time.Second
	cctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	start := time.Now()
	_, err = eng.TryDequeue(cctx, p.UUID)
	took := time.Since(start)
	t.Logf("TryDequeue returned %v after its deadline of %v: %v", took-deadline, deadline, err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, took, deadline+slack, "TryDequeue held past its deadline by a silent server")

	px.frozen.Store(false)
	px.closeConns() // the connections it silenced
	require.Eventually(t, func() bool {
		d, err := eng.Pool(ctx, p.UUID)
		if err != nil {
			return false
		}
		require.Zero(t, d.StatusCounts[pool.StatusProcessing], "the claim was written")
		return true
	}, 10*time.Second, 50*time.Millisecond)
}
