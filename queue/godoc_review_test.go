package queue_test

// Probes of godoc claims, read as a dialer engineer integrating from the
// documentation alone (go doc -all ./queue, ./campaign, ./pool).

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// DequeueN: "a larger n claims as many as 100 would".
func TestGodocReview_DequeueNOverMax(t *testing.T) {
	b := setup(t)
	p := b.pool(t, pool.Parallel, 100, 3).UUID
	b.add(t, p, 150)
	ls, err := b.eng.DequeueN(b.ctx, p, 1000)
	require.NoError(t, err)
	require.Len(t, ls, 100)
}

// gdRunning starts a campaign under rule p over one new pool of type typ
// (max_retries 20) and returns the campaign, rule and pool.
func gdRunning(t *testing.T, b *testBundle, p campaign.CreateRuleParams, typ pool.Type) (uuid.UUID, uuid.UUID, uuid.UUID) {
	t.Helper()
	r := b.rule(t, p)
	pl := b.pool(t, typ, 10, 20).UUID
	c := b.campaignOf(t, r.UUID, pl)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	return c.UUID, r.UUID, pl
}

// gdSlowPoll is a bundle whose engine polls once an hour, so that a
// blocked call returns only on the wake-ups the doc lists.
func gdSlowPoll(t *testing.T, st store.Store) *testBundle {
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
	return &testBundle{ctx: context.Background(), eng: eng, clock: c}
}

func gdStoresSlow(t *testing.T, f func(t *testing.T, b *testBundle)) {
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		f(t, gdSlowPoll(t, st))
	})
	t.Run("postgres", func(t *testing.T) {
		url := pgtest.URL(t)
		st, err := postgres.Open(context.Background(), url, postgres.Options{Schema: pgtest.Schema(t, url), MaxConns: 4})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		f(t, gdSlowPoll(t, st))
	})
}

// gdBlocked runs f in a goroutine and returns its result channel.
func gdBlocked(f func() (*queue.Lease, error)) chan campaignResult {
	ch := make(chan campaignResult, 1)
	go func() { l, err := f(); ch <- campaignResult{l, err} }()
	return ch
}

func gdWait(t *testing.T, ch chan campaignResult, what string) campaignResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(3 * time.Second):
		t.Fatalf("%s: still blocked after 3 s", what)
		return campaignResult{}
	}
}

func gdNotYet(t *testing.T, ch chan campaignResult) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("returned too early: %v %v", r.l, r.err)
	case <-time.After(150 * time.Millisecond):
	}
}

// Leases that have ended are "applied first, as failed attempts under the
// former settings" by UpdatePool, AttachPools, DetachPool and UpdateRule.
func TestGodocReview_EndedLeasesAppliedFirst(t *testing.T) {
	onBothStores(t, func(t *testing.T, b *testBundle) {
		past := func() { b.clock.Advance(5 * time.Minute) } // past the lease and PostgreSQL's grace

		// UpdatePool: max_retries 1 -> 0.
		p := b.pool(t, pool.FIFO, 1, 1).UUID
		c := b.add(t, p, 1)[0]
		_, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		past()
		_, err = b.eng.UpdatePool(b.ctx, p, pool.UpdateParams{MaxRetries: new(0)})
		require.NoError(t, err)
		require.Equal(t, pool.StatusRetrying, b.item(t, p, c).Status, "UpdatePool: under the former max_retries")

		// AttachPools to a running campaign: pool max_retries 0, rule total 5.
		cr, _, _ := gdRunning(t, b, allDay(5, 5), pool.FIFO)
		p2 := b.pool(t, pool.FIFO, 1, 0).UUID
		c2 := b.add(t, p2, 1)[0]
		_, err = b.eng.TryDequeue(b.ctx, p2)
		require.NoError(t, err)
		past()
		_, err = b.eng.AttachPools(b.ctx, cr, p2)
		require.NoError(t, err)
		require.Equal(t, pool.StatusFailed, b.item(t, p2, c2).Status, "AttachPools: under its own settings")

		// DetachPool: rule total 5, pool max_retries 0.
		cd, _, p3 := gdRunning(t, b, allDay(5, 5), pool.FIFO)
		_, err = b.eng.UpdatePool(b.ctx, p3, pool.UpdateParams{MaxRetries: new(0)})
		require.NoError(t, err)
		c3 := b.add(t, p3, 1)[0]
		_, err = b.eng.TryDequeue(b.ctx, p3)
		require.NoError(t, err)
		past()
		_, err = b.eng.DetachPool(b.ctx, cd, p3)
		require.NoError(t, err)
		require.Equal(t, pool.StatusRetrying, b.item(t, p3, c3).Status, "DetachPool: under the campaign")

		// UpdateRule: total 5 -> 1.
		_, r4, p4 := gdRunning(t, b, allDay(5, 5), pool.FIFO)
		c4 := b.add(t, p4, 1)[0]
		_, err = b.eng.TryDequeue(b.ctx, p4)
		require.NoError(t, err)
		past()
		_, err = b.eng.UpdateRule(b.ctx, r4, campaign.UpdateRuleParams{MaxTotalCalls: new(1)})
		require.NoError(t, err)
		require.Equal(t, pool.StatusRetrying, b.item(t, p4, c4).Status, "UpdateRule: under the old values")
	})
}

// Rules, Campaigns and Pools searches are "case-insensitive", on every store.
func TestGodocReview_SearchCaseInsensitiveUnicode(t *testing.T) {
	onBothStores(t, func(t *testing.T, b *testBundle) {
		rp := allDay(1, 1)
		rp.Name = "Relance Été"
		rp.EscalationTarget = new("Équipe Österreich")
		b.rule(t, rp)
		_, err := b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: "Campagne ÉTÉ"})
		require.NoError(t, err)
		_, err = b.eng.CreatePool(b.ctx, pool.CreateParams{Name: "Liste ÉTÉ", Description: "Österreich"})
		require.NoError(t, err)
		for _, s := range []string{"été", "ÉTÉ", "Été"} {
			rg, err := b.eng.Rules(b.ctx, campaign.RuleQuery{Search: s})
			require.NoError(t, err)
			cg, err := b.eng.Campaigns(b.ctx, campaign.Query{Search: s})
			require.NoError(t, err)
			pg, err := b.eng.Pools(b.ctx, pool.PoolQuery{Search: s})
			require.NoError(t, err)
			if rg.Total != 1 || cg.Total != 1 || pg.Total != 1 {
				t.Errorf("search %q: rules %d, campaigns %d, pools %d; want 1 each", s, rg.Total, cg.Total, pg.Total)
			}
		}
		rg, err := b.eng.Rules(b.ctx, campaign.RuleQuery{Search: "équipe ösTERREICH"})
		require.NoError(t, err)
		require.Equal(t, 1, rg.Total, "rule search in escalation target")
	})
}

// TryDequeue: "the items a claim skips, postpones or fails on its way leave
// the due set, each once, about 1,000 a transaction (a claim that meets more
// commits those and goes on in the next)".
func TestGodocReview_ClaimPastManyPostponed(t *testing.T) {
	onBothStores(t, func(t *testing.T, b *testBundle) {
		rp := campaign.CreateRuleParams{Name: "Office", MaxCallsPerDay: new(5), MaxTotalCalls: new(5), StartTime: new("09:00"), EndTime: new("18:00")}
		_, _, p := gdRunning(t, b, rp, pool.FIFO)
		const n = 2500
		items := make([]pool.NewItem, n+1)
		for i := range n {
			items[i] = pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{TimeZone: "Asia/Tokyo"}}
		}
		ok := uuid.New()
		items[n] = pool.NewItem{ContactUUID: ok, Contact: pool.Contact{TimeZone: "Europe/London"}}
		_, err := b.eng.Add(b.ctx, p, items...)
		require.NoError(t, err)
		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		require.Equal(t, ok, l.ContactUUID)
		require.Equal(t, n, b.counts(t, p)[pool.StatusScheduled])
	})
}

// Dequeue on a held pool waits "until one starts or resumes (or the pool is
// detached)": DeleteCampaign "detaches its pools"; and under a rule, "the
// end of a call from another of the campaign's pools to a contact whose
// item the last look passed over" wakes it.
func TestGodocReview_DequeueWakesOnDeleteCampaignAndCallEnd(t *testing.T) {
	gdStoresSlow(t, func(t *testing.T, b *testBundle) {
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		defer cancel()
		p := b.pool(t, pool.FIFO, 1, 3).UUID
		b.add(t, p, 1)
		c := b.campaignOf(t, uuid.Nil, p)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		ch := gdBlocked(func() (*queue.Lease, error) { return b.eng.Dequeue(ctx, p) })
		gdNotYet(t, ch)
		require.NoError(t, b.eng.DeleteCampaign(b.ctx, c.UUID))
		r := gdWait(t, ch, "DeleteCampaign")
		require.NoError(t, r.err)

		a, q, _ := b.sharedContact(t, allDay(5, 5), pool.Parallel, pool.Parallel)
		la, err := b.eng.TryDequeue(b.ctx, a)
		require.NoError(t, err)
		ch = gdBlocked(func() (*queue.Lease, error) { return b.eng.Dequeue(ctx, q) })
		gdNotYet(t, ch)
		require.NoError(t, b.eng.Fail(b.ctx, la, queue.Failure{Note: "busy"}))
		r = gdWait(t, ch, "end of the call from the other pool")
		require.NoError(t, r.err)
	})
}

// OptOut of a contact in flight: a Release gives it back unattempted, and
// a lease expiry is a failed attempt; neither may lead to calling an
// opted-out contact again under remove_on_opt_out.
func TestGodocReview_OptOutThenReleaseOrExpiry(t *testing.T) {
	onBothStores(t, func(t *testing.T, b *testBundle) {
		_, _, p := gdRunning(t, b, allDay(5, 5), pool.Parallel)
		cs := b.add(t, p, 2)
		ls, err := b.eng.DequeueN(b.ctx, p, 2)
		require.NoError(t, err)
		for _, c := range cs {
			_, err := b.eng.OptOut(b.ctx, c)
			require.NoError(t, err)
		}
		var rel, exp *queue.Lease = ls[0], ls[1]
		require.NoError(t, b.eng.Release(b.ctx, rel))
		t.Logf("released: %s", rel.Item.Status)
		b.clock.Advance(5 * time.Minute)
		_, err = b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty)
		for _, c := range cs {
			it := b.item(t, p, c)
			require.Equal(t, pool.StatusSkipped, it.Status, "contact %s: %s %q", c, it.Status, it.Notes)
		}
		_ = exp
	})
}

// Fail: "Under a running campaign's rule, its max_total_calls and
// retry_interval_minutes stand for max_retries + 1 and RetryDelay"; a
// completed campaign "no longer governs its pools".
func TestGodocReview_FailUnderRuleAndAfterCompletion(t *testing.T) {
	onBothStores(t, func(t *testing.T, b *testBundle) {
		c, _, p := gdRunning(t, b, allDay(5, 5), pool.Parallel) // retry 30 min
		_, err := b.eng.UpdatePool(b.ctx, p, pool.UpdateParams{MaxRetries: new(0)})
		require.NoError(t, err)
		b.add(t, p, 2)
		ls, err := b.eng.DequeueN(b.ctx, p, 2)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, ls[0], queue.Failure{}))
		require.Equal(t, pool.StatusRetrying, ls[0].Item.Status)
		require.True(t, ls[0].Item.NextRetryAt.Equal(b.clock.Now().Add(30*time.Minute)), "%v", ls[0].Item.NextRetryAt)
		_, err = b.eng.CompleteCampaign(b.ctx, c)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, ls[1], queue.Failure{}))
		t.Logf("after completion: %s next %v", ls[1].Item.Status, ls[1].Item.NextRetryAt)
		require.Equal(t, pool.StatusFailed, ls[1].Item.Status, "the pool's own max_retries 0 decides once the campaign no longer governs")
	})
}

// campaign.CreateRuleParams says only "Name is required"; NewRule (and
// Engine.CreateRule) refuse a name shorter than 3 characters, longer than
// 255 or of more than one line, and trim it, as a campaign's and a pool's.
// The doc now says so.
func TestGodocReview_RuleNameBounds(t *testing.T) {
	b := setup(t)
	for _, name := range []string{"VM", "  ab  ", strings.Repeat("r", pool.MaxNameLen+1), "a\nbc"} {
		_, err := b.eng.CreateRule(b.ctx, campaign.CreateRuleParams{Name: name})
		require.Equal(t, []string{"name"}, fieldsOf(t, err), "%q", name)
	}
	r, err := b.eng.CreateRule(b.ctx, campaign.CreateRuleParams{Name: " abc "})
	require.NoError(t, err)
	require.Equal(t, "abc", r.Name)
}
