package queue_test

// Edge cases of the claim's rule checks that the property tests do not
// reach (each found by a change to the code that they let pass).

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_OptedOutBeforeAdd: a contact that opted out before its item
// was added is skipped when dispatch meets it, under a rule with
// remove_on_opt_out whether or not it also checks the do-not-call list
// (the claim reads both lists in one statement then); a rule without
// remove_on_opt_out dials it.
func TestEngine_OptedOutBeforeAdd(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	both, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{}) // dnc_check and remove_on_opt_out
	optOnly, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{DNCCheck: new(false)})
	keep, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{RemoveOnOptOut: new(false)})
	c := uuid.New()
	n, err := b.eng.OptOut(b.ctx, c)
	require.NoError(t, err)
	require.Equal(t, 0, n, "no item yet")
	for _, p := range []uuid.UUID{both.UUID, optOnly.UUID, keep.UUID} {
		_, err := b.eng.Add(b.ctx, p, pool.NewItem{ContactUUID: c})
		require.NoError(t, err)
	}
	for _, p := range []uuid.UUID{both.UUID, optOnly.UUID} {
		_, err := b.eng.TryDequeue(b.ctx, p)
		require.ErrorIs(t, err, queue.ErrEmpty, "an opted-out contact dispatched")
		it := b.item(t, p, c)
		require.Equal(t, pool.StatusSkipped, it.Status)
		require.Equal(t, campaign.NoteOptOut, it.Notes)
	}
	l, err := b.eng.TryDequeue(b.ctx, keep.UUID)
	require.NoError(t, err)
	require.Equal(t, c, l.ContactUUID)
}

// TestEngine_EscalationThresholdLoweredBelowAttempts: an item whose failed
// attempts are already past a threshold the rule is updated to (or that
// it gets at all) escalates at its next failure: its failed attempts have
// reached the threshold. Once: the failure after that records nothing.
func TestEngine_EscalationThresholdLoweredBelowAttempts(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p, r := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{
		MaxTotalCalls: new(6), MaxCallsPerDay: new(6), RetryIntervalMinutes: new(1), EscalationAfterFailedAttempts: new(5),
		EscalationType: new("supervisor"), EscalationTarget: new("ops@example.com"),
	})
	c := b.addIn(t, p.UUID, "")
	fail := func() {
		t.Helper()
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		b.clock.Advance(2 * time.Minute)
	}
	fail()
	fail()
	list, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Empty(t, list, "2 failed attempts, threshold 5")

	_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{EscalationAfterFailedAttempts: new(1)})
	require.NoError(t, err)
	fail()
	list, err = b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, list, 1, "3 failed attempts reach a threshold of 1")
	require.Equal(t, c, list[0].ContactUUID)
	require.Equal(t, 3, list[0].FailedAttempts)
	fail()
	list, err = b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, list, 1, "one per item")
}

// TestEngine_OwnCeilingBeforeCallElsewhere: an item whose own attempts
// reach the ceiling (lowered after it failed) is failed when a claim meets
// it, even while its contact is in a call in another pool of the
// campaign: the ceiling comes first, the call elsewhere only passes over
// items that may still be called.
func TestEngine_OwnCeilingBeforeCallElsewhere(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	rp := allDay(10, 10)
	rp.RetryIntervalMinutes = new(1)
	a, q, c := b.sharedContact(t, rp, pool.FIFO, pool.FIFO)
	l, err := b.eng.TryDequeue(b.ctx, a)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	b.clock.Advance(2 * time.Minute)
	l, err = b.eng.TryDequeue(b.ctx, a)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	b.clock.Advance(2 * time.Minute)
	require.Equal(t, 2, b.item(t, a, c).Attempts)

	// The contact's call in the other pool, then the ceiling lowered to
	// the item's attempts.
	call, err := b.eng.TryDequeue(b.ctx, q)
	require.NoError(t, err)
	require.Equal(t, c, call.ContactUUID)
	d, err := b.eng.Pool(b.ctx, a)
	require.NoError(t, err)
	require.Len(t, d.Campaigns, 1)
	cp, err := b.eng.Campaign(b.ctx, d.Campaigns[0].UUID)
	require.NoError(t, err)
	_, err = b.eng.UpdateRule(b.ctx, *cp.RuleUUID, campaign.UpdateRuleParams{MaxTotalCalls: new(2)})
	require.NoError(t, err)

	_, err = b.eng.TryDequeue(b.ctx, a)
	require.ErrorIs(t, err, queue.ErrEmpty)
	it := b.item(t, a, c)
	require.Equal(t, pool.StatusFailed, it.Status, "at its ceiling: failed, not passed over for the call elsewhere")
	require.Equal(t, pool.NoteCeiling, it.Notes)
	require.NoError(t, b.eng.Complete(b.ctx, call, "answered"))
}

// TestEngine_PausedCampaignStillGoverns: a Paused campaign still governs
// its pools: a failure settled while it is paused is judged under its
// rule's ceiling (max_total_calls 1 here), not the pool's max_retries.
func TestEngine_PausedCampaignStillGoverns(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	rp := allDay(5, 1)
	cid, ps := b.runningCampaign(t, rp, pool.FIFO)
	p := ps[0].UUID
	c := uuid.New()
	b.addContacts(t, p, c)
	l, err := b.eng.TryDequeue(b.ctx, p)
	require.NoError(t, err)
	_, err = b.eng.PauseCampaign(b.ctx, cid)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	it := b.item(t, p, c)
	require.Equal(t, pool.StatusFailed, it.Status, "the rule's ceiling of 1, not the pool's max_retries")
}

// TestEngine_OptedOutFinalFailureStaysFailed: the opt-out of a contact in
// flight skips its item only when the failure would retry it. A failure
// that ends the item (a final one, or the last attempt the rule's
// max_total_calls allows, failed or expired) leaves it Failed, and the
// failure (or the claim that applies the expiry) succeeds.
func TestEngine_OptedOutFinalFailureStaysFailed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rule    campaign.CreateRuleParams
		failure queue.Failure
		expire  bool // let the lease expire instead of failing it
	}{
		{"Final", campaign.CreateRuleParams{}, queue.Failure{Final: true, Note: "wrong number"}, false},
		{"LastAttempt", campaign.CreateRuleParams{MaxTotalCalls: new(1)}, queue.Failure{Note: "no answer"}, false},
		{"LastAttemptExpired", campaign.CreateRuleParams{MaxTotalCalls: new(1)}, queue.Failure{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			onBothStores(t, func(t *testing.T, b *testBundle) {
				rule := tt.rule
				rule.StartTime, rule.EndTime = new("08:00"), new("20:00")
				p, _ := b.governed(t, pool.FIFO, "UTC", rule)
				c := b.addIn(t, p.UUID, "")
				l, err := b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err)
				_, err = b.eng.OptOut(b.ctx, c)
				require.NoError(t, err)
				if tt.expire {
					b.clock.Advance(testLease + time.Second)
					_, err = b.eng.TryDequeue(b.ctx, p.UUID) // applies the expiry
					require.ErrorIs(t, err, queue.ErrEmpty)
				} else {
					require.NoError(t, b.eng.Fail(b.ctx, l, tt.failure))
				}
				it := b.item(t, p.UUID, c)
				require.Equal(t, pool.StatusFailed, it.Status)
				require.Equal(t, 0, it.RetryCount)
				require.Equal(t, 1, it.Attempts)
			})
		})
	}
}

// TestEngine_EscalationOfAnEndingFailure: an escalation recorded by the
// failure that ends an item (a final one, or its last attempt) counts
// every attempt the item failed, although the last scheduled no retry.
func TestEngine_EscalationOfAnEndingFailure(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		rule     campaign.CreateRuleParams
		failures []queue.Failure // one per attempt
	}{
		{"FinalFirst", campaign.CreateRuleParams{EscalationAfterFailedAttempts: new(1)}, []queue.Failure{{Final: true}}},
		{"LastAttempt", campaign.CreateRuleParams{MaxTotalCalls: new(2), EscalationAfterFailedAttempts: new(2), RetryIntervalMinutes: new(1)},
			[]queue.Failure{{}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			rule := tt.rule
			rule.EscalationType, rule.EscalationTarget = new("supervisor"), new("ops@example.com")
			p, _ := b.governed(t, pool.FIFO, "", rule)
			c := b.addIn(t, p.UUID, "")
			for i, f := range tt.failures {
				if i > 0 {
					b.clock.Advance(time.Minute + time.Second)
				}
				l, err := b.eng.TryDequeue(b.ctx, p.UUID)
				require.NoError(t, err)
				require.NoError(t, b.eng.Fail(b.ctx, l, f))
			}
			require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, c).Status)
			list, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
			require.NoError(t, err)
			require.Len(t, list, 1)
			require.Equal(t, len(tt.failures), list[0].FailedAttempts)
			require.Equal(t, c, list[0].ContactUUID)
		})
	}
}

// TestEngine_WatchEscalationsAtOnce: WatchEscalations learns of an
// escalation this engine records at once, not at its next poll.
func TestEngine_WatchEscalationsAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
	b := &testBundle{ctx: ctx, eng: eng, st: st, clock: c}

	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{EscalationAfterFailedAttempts: new(1)})
	first := b.addIn(t, p.UUID, "")
	second := b.addIn(t, p.UUID, "")
	fail := func(want uuid.UUID) {
		t.Helper()
		l, err := b.eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, want, l.Item.ContactUUID)
		require.NoError(t, b.eng.Fail(ctx, l, queue.Failure{Note: "no answer"}))
	}
	fail(first) // recorded before the watch: its first look finds it

	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan campaign.Escalation, 10)
	done := make(chan error, 1)
	go func() {
		done <- b.eng.WatchEscalations(wctx, 0, func(e campaign.Escalation) error { seen <- e; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })
	next := func() campaign.Escalation {
		t.Helper()
		select {
		case e := <-seen:
			return e
		case <-time.After(10 * time.Second):
			t.Fatal("no escalation delivered (PollInterval is an hour)")
			return campaign.Escalation{}
		}
	}
	require.Equal(t, first, next().ContactUUID)

	fail(second) // recorded while the watch waits
	require.Equal(t, second, next().ContactUUID)
}
