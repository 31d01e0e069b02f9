package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

func (b *testBundle) rule(t *testing.T, p campaign.CreateRuleParams) campaign.Rule {
	t.Helper()
	if p.Name == "" {
		p.Name = "Test rule"
	}
	r, err := b.eng.CreateRule(b.ctx, p)
	require.NoError(t, err)
	return r
}

// campaignOf creates a campaign with the rule (none for uuid.Nil) and the
// pools attached.
func (b *testBundle) campaignOf(t *testing.T, rule uuid.UUID, pools ...uuid.UUID) campaign.Campaign {
	t.Helper()
	params := campaign.CreateParams{Name: "Test campaign"}
	if rule != uuid.Nil {
		params.RuleUUID = &rule
	}
	c, err := b.eng.CreateCampaign(b.ctx, params)
	require.NoError(t, err)
	if len(pools) > 0 {
		res, err := b.eng.AttachPools(b.ctx, c.UUID, pools...)
		require.NoError(t, err)
		require.Equal(t, len(pools), res.PoolsAttached)
	}
	c, err = b.eng.Campaign(b.ctx, c.UUID)
	require.NoError(t, err)
	return c
}

// startedCampaignIn creates a campaign under rule whose default time zone
// is zone, attaches pools to it and starts it.
func (b *testBundle) startedCampaignIn(t *testing.T, zone string, rule uuid.UUID, pools ...uuid.UUID) campaign.Campaign {
	t.Helper()
	c, err := b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: "zone", RuleUUID: &rule, TimeZone: zone})
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, pools...)
	require.NoError(t, err)
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	return c
}

// TestEngine_RuleCeilingPrecedence: under a running campaign with a rule,
// an item's ceiling is max_total_calls attempts and its retry delay the
// rule's interval; detached, the pool's own settings apply again.
func TestEngine_RuleCeilingPrecedence(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 0) // alone: one attempt
	ids := b.add(t, p.UUID, 2)
	r := b.rule(t, campaign.CreateRuleParams{MaxTotalCalls: new(3), RetryIntervalMinutes: new(7)})
	c := b.campaignOf(t, r.UUID, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)

	for attempt := 1; attempt <= 3; attempt++ {
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err, "attempt %d", attempt)
		require.Equal(t, ids[0], l.ContactUUID)
		require.Equal(t, attempt, l.Attempt)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		if attempt < 3 {
			require.Equal(t, pool.StatusRetrying, l.Item.Status)
			require.Equal(t, b.clock.Now().Add(7*time.Minute), *l.Item.NextRetryAt, "the rule's retry interval")
			b.clock.Advance(7 * time.Minute)
		} else {
			require.Equal(t, pool.StatusFailed, l.Item.Status, "the rule's ceiling: 3 attempts")
			require.Equal(t, 2, l.Item.RetryCount)
		}
	}

	// Lowering the rule's ceiling fails, at dispatch, an item that reached it.
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
	_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: new(1)})
	require.NoError(t, err)
	require.Equal(t, pool.StatusRetrying, b.item(t, p.UUID, ids[1]).Status, "not retroactive")
	b.clock.Advance(7 * time.Minute)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty)
	require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, ids[1]).Status)
}

// TestEngine_CampaignHoldsItsPools: a pool attached to campaigns is
// dialled only while one of them is In Process.
func TestEngine_CampaignHoldsItsPools(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 5, 3)
	b.add(t, p.UUID, 4)
	c := b.campaignOf(t, uuid.Nil, p.UUID)

	_, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrHeld, "a Draft holds its pools")
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err, "In Process: dialled")
	_, err = b.eng.PauseCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrHeld, "Paused")
	require.NoError(t, b.eng.Complete(b.ctx, l, "an item in flight finishes"))
	_, err = b.eng.ResumeCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrHeld, "Completed: held while attached")
	detached, err := b.eng.DetachPool(b.ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	require.True(t, detached)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err, "attached to none: its own settings")

	// Wrong transitions.
	_, err = b.eng.ResumeCampaign(b.ctx, c.UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)
	_, err = b.eng.ArchiveCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)
}

// TestEngine_OneGoverningCampaignPerPool: a pool has at most one campaign
// In Process or Paused.
func TestEngine_OneGoverningCampaignPerPool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	shared := b.pool(t, pool.FIFO, 1, 3)
	other := b.pool(t, pool.FIFO, 1, 3)
	a := b.campaignOf(t, uuid.Nil, shared.UUID)
	c := b.campaignOf(t, uuid.Nil, other.UUID, shared.UUID) // a Draft may share
	_, err := b.eng.StartCampaign(b.ctx, a.UUID)
	require.NoError(t, err)
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.ErrorIs(t, err, campaign.ErrConflict)
	got, err := b.eng.Campaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.Equal(t, campaign.Draft, got.Status, "refused: nothing changed")

	// Nor can a running campaign take a governed pool.
	d := b.campaignOf(t, uuid.Nil, other.UUID)
	_, err = b.eng.StartCampaign(b.ctx, d.UUID)
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, d.UUID, shared.UUID)
	require.ErrorIs(t, err, campaign.ErrConflict)
	_, err = b.eng.PauseCampaign(b.ctx, a.UUID)
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, d.UUID, shared.UUID)
	require.ErrorIs(t, err, campaign.ErrConflict, "Paused still governs")
	_, err = b.eng.CompleteCampaign(b.ctx, a.UUID)
	require.NoError(t, err)
	res, err := b.eng.AttachPools(b.ctx, d.UUID, shared.UUID)
	require.NoError(t, err, "completed: the pool is free")
	require.Equal(t, 1, res.PoolsAttached)
}

func TestEngine_AttachPools(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p1, p2 := b.pool(t, pool.FIFO, 1, 3), b.pool(t, pool.FIFO, 1, 3)
	inactive := b.pool(t, pool.FIFO, 1, 3)
	_, err := b.eng.UpdatePool(b.ctx, inactive.UUID, pool.UpdateParams{IsActive: new(false)})
	require.NoError(t, err)
	c := b.campaignOf(t, uuid.Nil, p1.UUID)
	unknown := uuid.New()

	res, err := b.eng.AttachPools(b.ctx, c.UUID, p1.UUID, p2.UUID, unknown, p2.UUID)
	require.NoError(t, err)
	require.Equal(t, campaign.AttachResult{PoolsAttached: 1, PoolsSkipped: 1, PoolUUIDsNotFound: []uuid.UUID{unknown}}, res)
	got, err := b.eng.Campaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{p1.UUID, p2.UUID}, got.PoolUUIDs)

	_, err = b.eng.AttachPools(b.ctx, c.UUID, p1.UUID, inactive.UUID)
	require.Equal(t, []string{"pool_uuids[1]"}, fieldsOf(t, err), "an inactive pool cannot be attached")
	_, err = b.eng.AttachPools(b.ctx, c.UUID)
	require.Equal(t, []string{"pool_uuids"}, fieldsOf(t, err))
	many := make([]uuid.UUID, queue.MaxPoolsPerCall+1)
	for i := range many {
		many[i] = uuid.New()
	}
	many[0] = inactive.UUID
	_, err = b.eng.AttachPools(b.ctx, c.UUID, many...)
	require.Equal(t, []string{"pool_uuids"}, fieldsOf(t, err), "too many pools for one call")
	_, err = b.eng.AttachPools(b.ctx, uuid.New(), p1.UUID)
	require.ErrorIs(t, err, store.ErrNotFound)

	d, err := b.eng.Pool(b.ctx, p2.UUID)
	require.NoError(t, err)
	require.Equal(t, []pool.CampaignRef{{UUID: c.UUID, Name: "Test campaign", Status: "Draft"}}, d.Campaigns)

	// A pool deactivated once attached is skipped as attached, not
	// refused: a repeated request does not fail, and attaches the others.
	_, err = b.eng.UpdatePool(b.ctx, p1.UUID, pool.UpdateParams{IsActive: new(false)})
	require.NoError(t, err)
	p3 := b.pool(t, pool.FIFO, 1, 3)
	res, err = b.eng.AttachPools(b.ctx, c.UUID, p1.UUID, p3.UUID)
	require.NoError(t, err)
	require.Equal(t, campaign.AttachResult{PoolsAttached: 1, PoolsSkipped: 1, PoolUUIDsNotFound: []uuid.UUID{}}, res)
}

func TestEngine_DeleteRulesAndCampaigns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	r := b.rule(t, campaign.CreateRuleParams{})
	c := b.campaignOf(t, r.UUID, p.UUID)
	require.ErrorIs(t, b.eng.DeleteRule(b.ctx, r.UUID), campaign.ErrConflict, "in use")
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.ErrorIs(t, b.eng.DeleteCampaign(b.ctx, c.UUID), campaign.ErrConflict, "running")
	_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.DeleteCampaign(b.ctx, c.UUID))
	d, err := b.eng.Pool(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Empty(t, d.Campaigns, "detached with the campaign")
	require.NoError(t, b.eng.DeleteRule(b.ctx, r.UUID))
	_, err = b.eng.Rule(b.ctx, r.UUID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, b.eng.DeleteRule(b.ctx, r.UUID), store.ErrNotFound)
}

// TestEngine_UpdateRuleArgumentsFirst: as every call checks its arguments
// before its context and the engine's state, UpdateRule reports the fields
// that fail whatever the rule (here the name) after Close and with a nil
// context too, as UpdatePool does; only a field whose check needs the
// stored rule (a cap, ignored by a text rule) waits for it, and gets
// ErrClosed.
func TestEngine_UpdateRuleArgumentsFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r := b.rule(t, campaign.CreateRuleParams{Name: "Rule one"})
	p := b.pool(t, pool.FIFO, 1, 3)
	name, zero := "x", 0

	var nilCtx context.Context
	_, err := b.eng.UpdateRule(nilCtx, r.UUID, campaign.UpdateRuleParams{Name: &name, MaxCallsPerDay: &zero})
	require.Equal(t, []string{"name"}, fieldsOf(t, err), "nil ctx")
	_, err = b.eng.UpdateRule(nilCtx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: &zero})
	require.Equal(t, []string{"ctx"}, fieldsOf(t, err))

	require.NoError(t, b.eng.Close())
	_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &zero})
	require.Equal(t, []string{"max_parallel_items"}, fieldsOf(t, err), "UpdatePool after Close")
	_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{Name: &name, MaxCallsPerDay: &zero})
	require.Equal(t, []string{"name"}, fieldsOf(t, err), "UpdateRule after Close")
	_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: &zero})
	require.ErrorIs(t, err, queue.ErrClosed, "without the rule, its type is unknown")
	_, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{Name: new("Rule two")})
	require.ErrorIs(t, err, queue.ErrClosed)
}

// TestEngine_UpdateRuleEveryBadField: an update names every failing field
// at once, each once: those whose rule depends on the stored rule's type
// (a text rule ignores its caps) beside the others. A failed update
// changes nothing. An unknown rule given fields bad whatever the rule gets
// their failures, not store.ErrNotFound.
func TestEngine_UpdateRuleEveryBadField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	call := b.rule(t, campaign.CreateRuleParams{Name: "Rule one"})
	text := b.rule(t, campaign.CreateRuleParams{Name: "Texts", Type: campaign.Text})
	name, zero, late, fax := "x", 0, "25:00", campaign.RuleType("fax")
	toText := campaign.Text

	for _, tc := range []struct {
		name string
		id   uuid.UUID
		u    campaign.UpdateRuleParams
		want []string
	}{
		{"Call", call.UUID, campaign.UpdateRuleParams{Name: &name, MaxCallsPerDay: &zero},
			[]string{"name", "max_calls_per_day"}},
		{"CallEveryField", call.UUID, campaign.UpdateRuleParams{Name: &name, StartTime: &late, MaxTotalCalls: &zero,
			RetryIntervalMinutes: &zero, EscalationAfterFailedAttempts: new(-1)},
			[]string{"name", "start_time", "max_total_calls", "retry_interval_minutes", "escalation_after_failed_attempts"}},
		{"CallBadType", call.UUID, campaign.UpdateRuleParams{Type: &fax, MaxCallsPerDay: &zero},
			[]string{"type", "max_calls_per_day"}},
		{"Text", text.UUID, campaign.UpdateRuleParams{Name: &name, MaxCallsPerDay: &zero}, []string{"name"}},
		{"BecomesText", call.UUID, campaign.UpdateRuleParams{Type: &toText, Name: &name, MaxCallsPerDay: &zero},
			[]string{"name"}},
		{"Unknown", uuid.New(), campaign.UpdateRuleParams{Name: &name, MaxCallsPerDay: &zero}, []string{"name"}},
		{"NilID", uuid.Nil, campaign.UpdateRuleParams{Name: &name, MaxCallsPerDay: &zero}, []string{"uuid", "name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.eng.UpdateRule(b.ctx, tc.id, tc.u)
			var fe validate.Errors
			require.True(t, errors.As(err, &fe), "%v", err)
			require.ElementsMatch(t, tc.want, fe.Fields(), "%v", err)
			require.Len(t, fe, len(tc.want), "each failure once: %v", err)
		})
	}
	_, err := b.eng.UpdateRule(b.ctx, uuid.New(), campaign.UpdateRuleParams{MaxCallsPerDay: &zero})
	require.ErrorIs(t, err, store.ErrNotFound, "without the rule, its type is unknown")

	// Nothing was written.
	for _, r := range []campaign.Rule{call, text} {
		got, err := b.eng.Rule(b.ctx, r.UUID)
		require.NoError(t, err)
		require.Equal(t, r, got)
	}
	rs, err := b.eng.Rules(b.ctx, campaign.RuleQuery{})
	require.NoError(t, err)
	require.Equal(t, 2, rs.Total)
}

func TestEngine_AssignRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 1)
	one := b.rule(t, campaign.CreateRuleParams{Type: campaign.Text}) // one shot
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	got, err := b.eng.AssignRule(b.ctx, c.UUID, one.UUID)
	require.NoError(t, err)
	require.Equal(t, &one.UUID, got.RuleUUID)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, ids[0]).Status, "a text rule: one attempt")

	// Replaced: the new rule decides from then on.
	more := b.rule(t, campaign.CreateRuleParams{MaxTotalCalls: new(5)})
	_, err = b.eng.AssignRule(b.ctx, c.UUID, more.UUID)
	require.NoError(t, err)
	_, err = b.eng.Requeue(b.ctx, p.UUID, ids[0])
	require.NoError(t, err)
	l, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
	require.Equal(t, pool.StatusRetrying, b.item(t, p.UUID, ids[0]).Status)

	_, err = b.eng.AssignRule(b.ctx, c.UUID, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestEngine_DequeueWakesAtStart: a Dequeue blocked on a held pool
// returns once its campaign starts.
func TestEngine_DequeueWakesAtStart(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	before := b.eng.Stats().Operations
	got := make(chan error, 1)
	go func() { _, err := b.eng.Dequeue(b.ctx, p.UUID); got <- err }()
	require.Eventually(t, func() bool { return b.eng.Stats().Operations > before }, 5*time.Second, time.Millisecond)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the Dequeue was not woken by the campaign's start")
	}
}

// TestEngine_DequeueCampaign: a campaign's pools are taken in turn, so the
// one item of a small pool goes out within the first claims, whatever the
// size of the other pool.
func TestEngine_DequeueCampaign(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	big := b.pool(t, pool.Parallel, 100, 3)
	small := b.pool(t, pool.Parallel, 100, 3)
	_, err := b.eng.Add(b.ctx, big.UUID, newItems(20_000)...)
	require.NoError(t, err)
	only := b.add(t, small.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, big.UUID, small.UUID)

	ctx, cancel := context.WithTimeout(b.ctx, 50*time.Millisecond)
	_, err = b.eng.DequeueCampaign(ctx, c.UUID)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "a Draft's pools are not dialled")

	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	claims := 0
	for {
		l, err := b.eng.DequeueCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		claims++
		if l.ContactUUID == only[0] {
			break
		}
		require.Less(t, claims, 3, "the small pool's item waits behind the big pool")
	}
	_, err = b.eng.DequeueCampaign(b.ctx, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)

	// A campaign that finishes will not run again: a DequeueCampaign
	// waiting on it returns, and a later one returns at once.
	one := b.pool(t, pool.FIFO, 1, 3)
	d := b.campaignOf(t, uuid.Nil, one.UUID)
	_, err = b.eng.StartCampaign(b.ctx, d.UUID)
	require.NoError(t, err)
	waiting := make(chan error, 1)
	go func() { _, err := b.eng.DequeueCampaign(b.ctx, d.UUID); waiting <- err }()
	require.True(t, waitUntil(2*time.Second, func() bool { return queue.Waiting(b.eng, d.UUID) == 1 }))
	_, err = b.eng.CompleteCampaign(b.ctx, d.UUID)
	require.NoError(t, err)
	select {
	case err := <-waiting:
		require.ErrorIs(t, err, campaign.ErrWrongStatus)
	case <-time.After(5 * time.Second):
		t.Fatal("DequeueCampaign still waits on a Completed campaign")
	}
	_, err = b.eng.DequeueCampaign(b.ctx, d.UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)

	// Nor does a deleted one (with no pools, whose deletion would wake
	// their waiters).
	draft := b.campaignOf(t, uuid.Nil)
	go func() { _, err := b.eng.DequeueCampaign(b.ctx, draft.UUID); waiting <- err }()
	require.True(t, waitUntil(2*time.Second, func() bool { return queue.Waiting(b.eng, draft.UUID) == 1 }))
	require.NoError(t, b.eng.DeleteCampaign(b.ctx, draft.UUID))
	select {
	case err := <-waiting:
		require.ErrorIs(t, err, store.ErrNotFound)
	case <-time.After(5 * time.Second):
		t.Fatal("DequeueCampaign still waits on a deleted campaign")
	}
}

// TestEngine_WorkOnCampaign: Work on a campaign dials the pools it has
// while it is In Process, including pools attached while it runs.
func TestEngine_WorkOnCampaign(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{PollInterval: time.Hour})
	p1, p2 := b.pool(t, pool.Parallel, 10, 3), b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p1.UUID, 3)
	b.add(t, p2.UUID, 2)
	c := b.campaignOf(t, uuid.Nil, p1.UUID)
	rec := newRecorder(settledN(5))
	ctx, cancel := context.WithCancel(b.ctx)
	done := make(chan error, 1)
	go func() {
		done <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil },
			queue.WorkOptions{Campaigns: []uuid.UUID{c.UUID}, Workers: 2, OnEvent: rec.on})
	}()
	// Nothing until the campaign starts.
	require.Never(t, func() bool { return rec.count(queue.EventDispatched) > 0 }, 100*time.Millisecond, 10*time.Millisecond)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rec.count(queue.EventCompleted) == 3 }, 5*time.Second, time.Millisecond)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, p2.UUID)
	require.NoError(t, err)
	select {
	case <-rec.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the pool attached while the campaign ran was not dialled")
	}
	cancel()
	require.NoError(t, <-done)
	err = b.eng.Work(b.ctx, func(context.Context, *queue.Lease) error { return nil },
		queue.WorkOptions{Campaigns: []uuid.UUID{uuid.New()}})
	require.True(t, errors.Is(err, store.ErrNotFound))
}

// TestEngine_CampaignChangedWhileResubscribing: a campaign's waiters
// (Work's producer, DequeueCampaign) subscribe again to its pools when
// they change; a change to the campaign made in that moment (a pool
// attached, the campaign started) must still wake them, not wait for the
// safety poll (an hour here).
func TestEngine_CampaignChangedWhileResubscribing(t *testing.T) {
	t.Parallel()
	opts := queue.Options{PollInterval: time.Hour}

	t.Run("Work", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, opts)
		p1 := b.pool(t, pool.FIFO, 1, 3)
		p2 := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, p2.UUID, 1)
		c := b.campaignOf(t, uuid.Nil, p1.UUID)
		var once sync.Once
		queue.SetResubscribing(b.eng, func() {
			once.Do(func() { // the start made the producer subscribe to p1: p2 comes now
				_, err := b.eng.AttachPools(b.ctx, c.UUID, p2.UUID)
				if err != nil {
					t.Error(err) // not FailNow: this is the waiter's goroutine
				}
			})
		})
		handled := make(chan struct{}, 1)
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
				handled <- struct{}{}
				return nil
			}, queue.WorkOptions{Campaigns: []uuid.UUID{c.UUID}})
		}()
		require.Eventually(t, func() bool { return queue.Waiting(b.eng, c.UUID) == 1 }, 5*time.Second, time.Millisecond)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		select {
		case <-handled:
		case <-time.After(10 * time.Second):
			t.Fatal("the attached pool's item waits for the safety poll")
		}
		cancel()
		require.NoError(t, <-errc)
	})

	t.Run("DequeueCampaign", func(t *testing.T) {
		t.Parallel()
		b := realEngine(t, opts)
		p := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, p.UUID, 1)
		c := b.campaignOf(t, uuid.Nil, p.UUID) // a Draft: nothing to claim at the first look
		var once sync.Once
		queue.SetResubscribing(b.eng, func() {
			once.Do(func() {
				_, err := b.eng.StartCampaign(b.ctx, c.UUID)
				if err != nil {
					t.Error(err) // not FailNow: this is the waiter's goroutine
				}
			})
		})
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		_, err := b.eng.DequeueCampaign(ctx, c.UUID)
		require.NoError(t, err, "the start's wake-up was lost")
	})
}

// TestEngine_HeldPoolWaitsQuietly: a pool its campaign holds (Paused here)
// is looked at again when something frees it, not on a backoff from its
// past retry times: at its cap, no claim promotes them, so they stay in
// the past and each look would run a write transaction for nothing.
func TestEngine_HeldPoolWaitsQuietly(t *testing.T) {
	t.Parallel()
	held := func(t *testing.T) (*testBundle, pool.Pool, campaign.Campaign) {
		b := realEngine(t, queue.Options{})
		p := b.pool(t, pool.Parallel, 2, 3)
		b.add(t, p.UUID, 2)
		c := b.campaignOf(t, uuid.Nil, p.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		ls, err := queue.TryDequeueN(b.ctx, b.eng, p.UUID, 2)
		require.NoError(t, err)
		require.Len(t, ls, 2)
		require.NoError(t, b.eng.Fail(b.ctx, ls[1], queue.Failure{RetryAt: time.Now().Add(20 * time.Millisecond)}))
		one := 1
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &one}) // at its cap
		require.NoError(t, err)
		_, err = b.eng.PauseCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		time.Sleep(40 * time.Millisecond) // the retry time has passed
		return b, p, c
	}
	const watch = 400 * time.Millisecond // the safety poll is 1 s

	t.Run("Dequeue", func(t *testing.T) {
		t.Parallel()
		b, p, _ := held(t)
		before := b.eng.Stats().Transactions
		ctx, cancel := context.WithTimeout(b.ctx, watch)
		defer cancel()
		_, err := b.eng.Dequeue(ctx, p.UUID)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.LessOrEqual(t, b.eng.Stats().Transactions-before, uint64(2), "claims while held")
	})

	t.Run("Work", func(t *testing.T) {
		t.Parallel()
		b, p, c := held(t)
		before := b.eng.Stats().Transactions
		ctx, cancel := context.WithCancel(b.ctx)
		errc := make(chan error, 1)
		handled := make(chan struct{}, 2)
		go func() {
			errc <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
				handled <- struct{}{}
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
		}()
		time.Sleep(watch)
		require.LessOrEqual(t, b.eng.Stats().Transactions-before, uint64(2), "claims while held")
		// Resumed, the pool is dialled again at once (its retried item:
		// the other is still in flight, at the cap of 1... raised to 2).
		two := 2
		_, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &two})
		require.NoError(t, err)
		_, err = b.eng.ResumeCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		select {
		case <-handled:
		case <-time.After(5 * time.Second):
			t.Fatal("the resumed pool was not dialled")
		}
		cancel()
		require.NoError(t, <-errc)
	})
}

// TestEngine_CampaignClaimAfterDetach: DequeueCampaign and Work on
// campaigns read a campaign's pools, then claim from them; a pool detached
// from the campaign in between, and attached to another running campaign,
// gives the first campaign's caller nothing: its items are the other
// campaign's now (its rule, its script). The hook places the detach at
// that instant; any concurrent DetachPool can fall there. (Both handed the
// lease out once.) A Work serving both campaigns follows the pool.
//
// Each subtest waits on what it can observe, not for a fixed time, so that
// a loaded machine slows it down without failing it: the move, then the
// commit of the claim that follows it (the next write operation), after
// which the item says whether that claim took it; or, for Work serving
// both, the handler's call.
func TestEngine_CampaignClaimAfterDetach(t *testing.T) {
	t.Parallel()
	const patience = 30 * time.Second // a bound for a loaded machine, not an expected time
	type moved struct {
		eng     *queue.Engine
		p, a, b uuid.UUID
		contact uuid.UUID
		ops     chan uint64 // the engine's Operations once the pool has moved
	}
	// setup: pool p of one item in running campaign a, b running too; the
	// first resubscription (between the read of a's pools and the claim)
	// moves p from a to b.
	setup := func(t *testing.T, st string) moved {
		ctx := context.Background()
		opts := queue.Options{PollInterval: 20 * time.Millisecond}
		m := moved{contact: uuid.New(), ops: make(chan uint64, 1)}
		if st == "sqlite" {
			m.eng = openEngine(t, openFileStore(t, ""), opts)
		} else {
			engines, _ := pgEngines(t, pgtest.URL(t), 1, opts)
			m.eng = engines[0]
		}
		eng := m.eng
		pl, err := eng.CreatePool(ctx, pool.CreateParams{Name: "Moved", Description: "d"})
		require.NoError(t, err)
		_, err = eng.Add(ctx, pl.UUID, pool.NewItem{ContactUUID: m.contact})
		require.NoError(t, err)
		ca, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "Campaign A"})
		require.NoError(t, err)
		cb, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "Campaign B"})
		require.NoError(t, err)
		_, err = eng.AttachPools(ctx, ca.UUID, pl.UUID)
		require.NoError(t, err)
		for _, id := range []uuid.UUID{ca.UUID, cb.UUID} {
			_, err = eng.StartCampaign(ctx, id)
			require.NoError(t, err)
		}
		var once sync.Once
		queue.SetResubscribing(eng, func() {
			once.Do(func() {
				ok, err := eng.DetachPool(ctx, ca.UUID, pl.UUID)
				if err == nil && ok {
					_, err = eng.AttachPools(ctx, cb.UUID, pl.UUID)
				}
				if err != nil || !ok {
					panic(fmt.Sprintf("move the pool: %v (detached: %v)", err, ok))
				}
				m.ops <- eng.Stats().Operations
			})
		})
		m.p, m.a, m.b = pl.UUID, ca.UUID, cb.UUID
		return m
	}
	// claimedAfterMove waits until the pool has moved and the claim that
	// follows (the caller's next write: nothing else writes meanwhile) has
	// committed, and reports whether that claim took the item.
	claimedAfterMove := func(t *testing.T, m moved) bool {
		var ops uint64
		select {
		case ops = <-m.ops:
		case <-time.After(patience):
			t.Fatal("the pool was never moved: the caller never read campaign A's pools")
		}
		require.Eventually(t, func() bool { return m.eng.Stats().Operations > ops }, patience, time.Millisecond,
			"no claim after the move")
		it, err := m.eng.Item(context.Background(), m.p, m.contact)
		require.NoError(t, err)
		return it.Status != pool.StatusPending || it.Attempts != 0
	}
	// work runs Work on campaigns until until returns, then stops it, and
	// returns the pools of the leases its handler got; calls receives each.
	work := func(t *testing.T, m moved, until func(calls <-chan uuid.UUID), campaigns ...uuid.UUID) []uuid.UUID {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var mu sync.Mutex
		var got []uuid.UUID
		calls := make(chan uuid.UUID, 10)
		errc := make(chan error, 1)
		go func() {
			errc <- m.eng.Work(ctx, func(_ context.Context, l *queue.Lease) error {
				mu.Lock()
				defer mu.Unlock()
				got = append(got, l.PoolUUID)
				calls <- l.PoolUUID
				return nil
			}, queue.WorkOptions{Campaigns: campaigns, Workers: 1})
		}()
		until(calls)
		cancel()
		require.NoError(t, <-errc)
		mu.Lock()
		defer mu.Unlock()
		return got
	}
	for _, st := range []string{"sqlite", "postgres"} {
		t.Run("DequeueCampaign/"+st, func(t *testing.T) {
			t.Parallel()
			m := setup(t, st)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				l   *queue.Lease
				err error
			}
			done := make(chan result, 1)
			go func() {
				l, err := m.eng.DequeueCampaign(ctx, m.a)
				done <- result{l, err}
			}()
			require.False(t, claimedAfterMove(t, m), "campaign A's claim took an item of a pool no longer A's")
			cancel()
			r := <-done
			require.ErrorIs(t, r.err, context.Canceled, "a lease of a pool no longer campaign A's: %+v", r.l)
		})
		t.Run("Work/"+st, func(t *testing.T) {
			t.Parallel()
			m := setup(t, st)
			var claimed bool
			got := work(t, m, func(<-chan uuid.UUID) { claimed = claimedAfterMove(t, m) }, m.a)
			require.False(t, claimed, "campaign A's claim took an item of a pool no longer A's")
			require.Empty(t, got, "campaign A's handler ran on a pool no longer A's")
		})
		t.Run("WorkForBoth/"+st, func(t *testing.T) {
			t.Parallel()
			m := setup(t, st)
			got := work(t, m, func(calls <-chan uuid.UUID) {
				select {
				case <-calls:
				case <-time.After(patience):
				}
			}, m.a, m.b)
			require.Equal(t, []uuid.UUID{m.p}, got, "the pool moved to B, which Work serves too")
		})
	}
}

// TestEngine_TurnsOfFinishedCampaigns: the engine keeps a DequeueCampaign
// turn for campaigns that may dispatch again, not for every campaign that
// ever did: completing, archiving or deleting one drops its turn, and so
// does a DequeueCampaign that finds it finished or gone (another node's
// doing). (They were kept for the process's life.)
func TestEngine_TurnsOfFinishedCampaigns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "poolq.db")
	eng := openEngine(t, openFileStore(t, path), queue.Options{})
	other := openEngine(t, openFileStore(t, path), queue.Options{}) // another process, on the same file
	dispatched := func() campaign.Campaign {
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "turns", Description: "d"})
		require.NoError(t, err)
		_, err = eng.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "turns"})
		require.NoError(t, err)
		_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
		require.NoError(t, err)
		_, err = eng.StartCampaign(ctx, c.UUID)
		require.NoError(t, err)
		l, err := eng.DequeueCampaign(ctx, c.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Complete(ctx, l, ""))
		return c
	}
	c := dispatched()
	require.Equal(t, 1, queue.Turns(eng))
	_, err := eng.CompleteCampaign(ctx, c.UUID)
	require.NoError(t, err)
	require.Zero(t, queue.Turns(eng), "completed")

	c = dispatched()
	_, err = eng.PauseCampaign(ctx, c.UUID)
	require.NoError(t, err)
	_, err = eng.CompleteCampaign(ctx, c.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.DeleteCampaign(ctx, c.UUID))
	require.Zero(t, queue.Turns(eng), "deleted")

	c = dispatched()
	_, err = other.CompleteCampaign(ctx, c.UUID)
	require.NoError(t, err)
	require.Equal(t, 1, queue.Turns(eng))
	_, err = eng.DequeueCampaign(ctx, c.UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)
	require.Zero(t, queue.Turns(eng), "found completed by another process")
}

// TestEngine_FinishedCampaignTakesNoPool: a Completed or Archived campaign
// will not run again, so a pool attached to it would be held for good (a
// pool of campaigns dispatches only while one of them runs): AttachPools
// refuses it, and changes nothing. AssignRule does not (it holds no pool):
// a rule used only by finished campaigns can be freed.
func TestEngine_FinishedCampaignTakesNoPool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	attached, free := b.pool(t, pool.FIFO, 1, 3), b.pool(t, pool.FIFO, 1, 3)
	b.add(t, free.UUID, 1)
	r := b.rule(t, campaign.CreateRuleParams{})
	for _, archive := range []bool{false, true} {
		old := b.rule(t, campaign.CreateRuleParams{})
		c := b.campaignOf(t, old.UUID, attached.UUID)
		_, err := b.eng.StartCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
		require.NoError(t, err)
		if archive {
			_, err = b.eng.ArchiveCampaign(b.ctx, c.UUID)
			require.NoError(t, err)
		}
		before, err := b.eng.Campaign(b.ctx, c.UUID)
		require.NoError(t, err)

		_, err = b.eng.AttachPools(b.ctx, c.UUID, free.UUID)
		require.ErrorIs(t, err, campaign.ErrWrongStatus, "attach to a %s campaign", before.Status)
		_, err = b.eng.AttachPools(b.ctx, c.UUID, attached.UUID)
		require.ErrorIs(t, err, campaign.ErrWrongStatus, "attach again to a %s campaign", before.Status)

		after, err := b.eng.Campaign(b.ctx, c.UUID)
		require.NoError(t, err)
		require.Equal(t, before, after, "a refused call changed the campaign")

		// A rule it takes, so that the rule it had can be deleted.
		require.ErrorIs(t, b.eng.DeleteRule(b.ctx, old.UUID), campaign.ErrConflict, "a rule a %s campaign uses", before.Status)
		got, err := b.eng.AssignRule(b.ctx, c.UUID, r.UUID)
		require.NoError(t, err, "assign a rule to a %s campaign", before.Status)
		require.Equal(t, &r.UUID, got.RuleUUID)
		require.NoError(t, b.eng.DeleteRule(b.ctx, old.UUID))
		l, err := b.eng.TryDequeue(b.ctx, free.UUID)
		require.NoError(t, err, "the pool the refused attach named still dispatches on its own")
		require.NoError(t, b.eng.Release(b.ctx, l))
	}
}
