package queue_test

// Checks of what the doc comments of the campaign, rule and contact methods
// promise, read as a caller programming against godoc would.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestGodoc_DNCCounts: AddDNC "returns how many were not on it", RemoveDNC
// "how many were on it": a contact named twice in one call is one contact.
func TestGodoc_DNCCounts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c1, c2 := uuid.New(), uuid.New()
	n, err := b.eng.AddDNC(b.ctx, c1, c1, c2)
	require.NoError(t, err)
	require.Equal(t, 2, n, "two contacts were not on the list")
	n, err = b.eng.AddDNC(b.ctx, c1, c2)
	require.NoError(t, err)
	require.Equal(t, 0, n, "both on it already")
	n, err = b.eng.RemoveDNC(b.ctx, c2, c2, uuid.New())
	require.NoError(t, err)
	require.Equal(t, 1, n, "one contact was on the list")
	on, err := b.eng.IsDNC(b.ctx, c2)
	require.NoError(t, err)
	require.False(t, on)
	pg, err := b.eng.DNC(b.ctx, campaign.DNCQuery{})
	require.NoError(t, err)
	require.Equal(t, campaign.DefaultDNCPerPage, pg.PerPage)
	require.Len(t, pg.Data, 1)
	require.Equal(t, c1, pg.Data[0].ContactUUID)
}

// TestGodoc_DNCOldestFirst: DNC lists "oldest entry first".
func TestGodoc_DNCOldestFirst(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var want []uuid.UUID
	for range 5 {
		c := uuid.New()
		_, err := b.eng.AddDNC(b.ctx, c)
		require.NoError(t, err)
		want = append(want, c)
		b.clock.Advance(time.Second)
	}
	pg, err := b.eng.DNC(b.ctx, campaign.DNCQuery{})
	require.NoError(t, err)
	var got []uuid.UUID
	for _, d := range pg.Data {
		got = append(got, d.ContactUUID)
	}
	require.Equal(t, want, got)
}

// TestGodoc_CampaignTransitions: each transition method is refused with
// campaign.ErrWrongStatus from a status it does not leave, and changes
// nothing then.
func TestGodoc_CampaignTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	type step func() (campaign.Campaign, error)
	pause := func() (campaign.Campaign, error) { return b.eng.PauseCampaign(b.ctx, c.UUID) }
	resume := func() (campaign.Campaign, error) { return b.eng.ResumeCampaign(b.ctx, c.UUID) }
	complete := func() (campaign.Campaign, error) { return b.eng.CompleteCampaign(b.ctx, c.UUID) }
	archive := func() (campaign.Campaign, error) { return b.eng.ArchiveCampaign(b.ctx, c.UUID) }
	start := func() (campaign.Campaign, error) { return b.eng.StartCampaign(b.ctx, c.UUID) }
	wrong := func(status campaign.Status, steps ...step) {
		t.Helper()
		for i, s := range steps {
			_, err := s()
			require.ErrorIs(t, err, campaign.ErrWrongStatus, "step %d from %s", i, status)
			got, err := b.eng.Campaign(b.ctx, c.UUID)
			require.NoError(t, err)
			require.Equal(t, status, got.Status)
		}
	}
	wrong(campaign.Draft, pause, resume, complete, archive)
	got, err := start()
	require.NoError(t, err)
	require.Equal(t, campaign.InProcess, got.Status)
	wrong(campaign.InProcess, start, resume, archive)
	_, err = pause()
	require.NoError(t, err)
	wrong(campaign.Paused, start, pause, archive)
	_, err = complete()
	require.NoError(t, err)
	wrong(campaign.Completed, start, pause, resume, complete)
	_, err = archive()
	require.NoError(t, err)
	wrong(campaign.Archived, start, pause, resume, complete, archive)
}

// TestGodoc_DequeueCampaignFinished: "a campaign Completed or Archived ...
// gets an error wrapping campaign.ErrWrongStatus, at once"; an unknown one
// store.ErrNotFound.
func TestGodoc_DequeueCampaignFinished(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.DequeueCampaign(b.ctx, c.UUID) // b.ctx never ends: "at once" or the test hangs
	require.ErrorIs(t, err, campaign.ErrWrongStatus)
	_, err = b.eng.ArchiveCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.DequeueCampaign(b.ctx, c.UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)
	_, err = b.eng.DequeueCampaign(b.ctx, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound)
	// CompleteCampaign: "it no longer governs its pools, which stay held
	// while attached to it".
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.Error(t, err, "a pool attached only to a finished campaign is held")
	_, err = b.eng.DetachPool(b.ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err, "detached: it dispatches under its own settings")
	require.NotNil(t, l)
}

// TestGodoc_DeleteRuleFinishedCampaign: DeleteRule "is refused with
// campaign.ErrConflict while a campaign uses it" (a finished one too), and
// AssignRule of another rule to a finished campaign frees it.
func TestGodoc_DeleteRuleFinishedCampaign(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	r1 := b.rule(t, campaign.CreateRuleParams{})
	r2 := b.rule(t, campaign.CreateRuleParams{Name: "Other rule"})
	c := b.campaignOf(t, r1.UUID, b.pool(t, pool.FIFO, 1, 3).UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.CompleteCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.ErrorIs(t, b.eng.DeleteRule(b.ctx, r1.UUID), campaign.ErrConflict)
	got, err := b.eng.AssignRule(b.ctx, c.UUID, r2.UUID)
	require.NoError(t, err)
	require.Equal(t, &r2.UUID, got.RuleUUID)
	require.NoError(t, b.eng.DeleteRule(b.ctx, r1.UUID))
	_, err = b.eng.AssignRule(b.ctx, c.UUID, r1.UUID)
	require.ErrorIs(t, err, store.ErrNotFound, "the rule")
	_, err = b.eng.AssignRule(b.ctx, uuid.New(), r2.UUID)
	require.ErrorIs(t, err, store.ErrNotFound, "the campaign")
}

// TestGodoc_OptOut: OptOut skips the waiting items of pools under a rule
// with remove_on_opt_out, returns how many, leaves the others, and is
// harmless twice; a pool that comes under such a rule later skips the
// item when dispatch meets it.
func TestGodoc_OptOut(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	governed, free := b.pool(t, pool.FIFO, 1, 3), b.pool(t, pool.FIFO, 1, 3)
	r := b.rule(t, campaign.CreateRuleParams{StartTime: new("00:00"), EndTime: new("23:59")})
	contact := uuid.New()
	for _, p := range []uuid.UUID{governed.UUID, free.UUID} {
		_, err := b.eng.Add(b.ctx, p, pool.NewItem{ContactUUID: contact})
		require.NoError(t, err)
	}
	c := b.campaignOf(t, r.UUID, governed.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	n, err := b.eng.OptOut(b.ctx, contact)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	it := b.item(t, governed.UUID, contact)
	require.Equal(t, pool.StatusSkipped, it.Status)
	require.Equal(t, campaign.NoteOptOut, it.Notes)
	require.Equal(t, pool.StatusPending, b.item(t, free.UUID, contact).Status)
	n, err = b.eng.OptOut(b.ctx, contact)
	require.NoError(t, err)
	require.Equal(t, 0, n, "twice: nothing more to skip")

	c2 := b.campaignOf(t, r.UUID, free.UUID)
	_, err = b.eng.StartCampaign(b.ctx, c2.UUID)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, free.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty)
	it = b.item(t, free.UUID, contact)
	require.Equal(t, pool.StatusSkipped, it.Status)
	require.Equal(t, campaign.NoteOptOut, it.Notes)
}

// TestGodoc_WatchEscalationsFnError: WatchEscalations returns fn's error
// as it is ("that error") and calls fn no more; Escalations lists in ID
// order, filtered by pool, Limit capping.
func TestGodoc_WatchEscalationsFnError(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	r := b.rule(t, campaign.CreateRuleParams{StartTime: new("00:00"), EndTime: new("23:59"),
		RetryIntervalMinutes: new(1), EscalationAfterFailedAttempts: new(1)})
	p1, p2 := b.pool(t, pool.Parallel, 10, 3), b.pool(t, pool.Parallel, 10, 3)
	b.add(t, p1.UUID, 2)
	b.add(t, p2.UUID, 1)
	c := b.campaignOf(t, r.UUID, p1.UUID, p2.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	for _, p := range []uuid.UUID{p1.UUID, p2.UUID, p1.UUID} {
		l, err := b.eng.TryDequeue(b.ctx, p)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
	}
	all, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, all, 3)
	require.Equal(t, []uuid.UUID{p1.UUID, p2.UUID, p1.UUID}, []uuid.UUID{all[0].PoolUUID, all[1].PoolUUID, all[2].PoolUUID})
	require.Less(t, all[0].ID, all[1].ID)
	require.Less(t, all[1].ID, all[2].ID)
	one, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{PoolUUID: &p1.UUID, After: all[0].ID})
	require.NoError(t, err)
	require.Equal(t, []campaign.Escalation{all[2]}, one)
	lim, err := b.eng.Escalations(b.ctx, campaign.EscalationQuery{Limit: 2})
	require.NoError(t, err)
	require.Equal(t, all[:2], lim)

	stop := errors.New("stop")
	var seen []int64
	err = b.eng.WatchEscalations(b.ctx, all[0].ID, func(e campaign.Escalation) error {
		seen = append(seen, e.ID)
		return stop
	})
	require.Same(t, stop, err, "fn's error as it is")
	require.Equal(t, []int64{all[1].ID}, seen)
}

// TestGodoc_RulesPaging: Rules "Page defaults to 1, PerPage to 15 (at most
// 100)", oldest first, filtered by type and by search in name, escalation
// type and target.
func TestGodoc_RulesPaging(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	var want []uuid.UUID
	for i := range 17 {
		p := campaign.CreateRuleParams{Name: "Rule of test"}
		if i == 3 {
			p.Type = campaign.Text
		}
		if i == 5 {
			p.EscalationTarget = new("ops@EXAMPLE.org")
		}
		want = append(want, b.rule(t, p).UUID)
		b.clock.Advance(time.Millisecond)
	}
	pg, err := b.eng.Rules(b.ctx, campaign.RuleQuery{})
	require.NoError(t, err)
	require.Equal(t, 1, pg.CurrentPage)
	require.Equal(t, 15, pg.PerPage)
	require.Equal(t, 2, pg.LastPage)
	require.Equal(t, 17, pg.Total)
	for i, r := range pg.Data {
		require.Equal(t, want[i], r.UUID, "oldest first")
	}
	_, err = b.eng.Rules(b.ctx, campaign.RuleQuery{PerPage: 101})
	require.Equal(t, []string{"per_page"}, fieldsOf(t, err))
	pg, err = b.eng.Rules(b.ctx, campaign.RuleQuery{Type: "TEXT"})
	require.NoError(t, err)
	require.Len(t, pg.Data, 1)
	require.Equal(t, want[3], pg.Data[0].UUID)
	pg, err = b.eng.Rules(b.ctx, campaign.RuleQuery{Search: "example"})
	require.NoError(t, err)
	require.Len(t, pg.Data, 1)
	require.Equal(t, want[5], pg.Data[0].UUID)
}

// TestGodoc_AttachPoolsErrors: AttachPools: "On any error nothing is
// attached"; an inactive pool is named by its index in pools; a Completed
// or Archived campaign gets campaign.ErrWrongStatus; a pool governed by
// another campaign cannot be attached to one In Process or Paused
// (campaign.ErrConflict), but may be to a Draft.
func TestGodoc_AttachPoolsErrors(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	ok, inactive := b.pool(t, pool.FIFO, 1, 3), b.pool(t, pool.FIFO, 1, 3)
	_, err := b.eng.UpdatePool(b.ctx, inactive.UUID, pool.UpdateParams{IsActive: new(false)})
	require.NoError(t, err)
	c := b.campaignOf(t, uuid.Nil)
	_, err = b.eng.AttachPools(b.ctx, c.UUID, ok.UUID, ok.UUID, inactive.UUID)
	require.Equal(t, []string{"pool_uuids[2]"}, fieldsOf(t, err))
	got, err := b.eng.Campaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.Empty(t, got.PoolUUIDs, "nothing attached on an error")

	held := b.pool(t, pool.FIFO, 1, 3)
	owner := b.campaignOf(t, uuid.Nil, held.UUID)
	_, err = b.eng.StartCampaign(b.ctx, owner.UUID)
	require.NoError(t, err)
	_, err = b.eng.PauseCampaign(b.ctx, owner.UUID)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, held.UUID)
	require.ErrorIs(t, err, queue.ErrHeld, "paused: held")

	other := b.campaignOf(t, uuid.Nil, ok.UUID)
	_, err = b.eng.StartCampaign(b.ctx, other.UUID)
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, other.UUID, held.UUID)
	require.ErrorIs(t, err, campaign.ErrConflict)
	res, err := b.eng.AttachPools(b.ctx, c.UUID, held.UUID)
	require.NoError(t, err, "a Draft may share a governed pool")
	require.Equal(t, 1, res.PoolsAttached)
	_, err = b.eng.StartCampaign(b.ctx, c.UUID)
	require.ErrorIs(t, err, campaign.ErrConflict, "start: another campaign (Paused) has one of its pools")
	require.ErrorIs(t, b.eng.DeleteCampaign(b.ctx, owner.UUID), campaign.ErrConflict, "Paused")

	_, err = b.eng.CompleteCampaign(b.ctx, other.UUID)
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, other.UUID, b.pool(t, pool.FIFO, 1, 3).UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)
	_, err = b.eng.ArchiveCampaign(b.ctx, other.UUID)
	require.NoError(t, err)
	_, err = b.eng.AttachPools(b.ctx, other.UUID, b.pool(t, pool.FIFO, 1, 3).UUID)
	require.ErrorIs(t, err, campaign.ErrWrongStatus)

	_, err = b.eng.CreateCampaign(b.ctx, campaign.CreateParams{Name: "No such rule", RuleUUID: new(uuid.New())})
	require.ErrorIs(t, err, store.ErrNotFound, "CreateCampaign: an unknown rule")
}

// TestGodoc_DetachPool: DetachPool "reports whether it was attached";
// "Errors: store.ErrNotFound for the campaign or the pool".
func TestGodoc_DetachPool(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	p, q := b.pool(t, pool.FIFO, 1, 3), b.pool(t, pool.FIFO, 1, 3)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	det, err := b.eng.DetachPool(b.ctx, c.UUID, q.UUID)
	require.NoError(t, err)
	require.False(t, det)
	_, err = b.eng.DetachPool(b.ctx, c.UUID, uuid.New())
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown pool")
	_, err = b.eng.DetachPool(b.ctx, uuid.New(), p.UUID)
	require.ErrorIs(t, err, store.ErrNotFound, "an unknown campaign")
	det, err = b.eng.DetachPool(b.ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	require.True(t, det)
}

// TestGodoc_PauseLetsInFlightFinish: PauseCampaign: "its pools are held
// (no new dispatch; items in flight finish)".
func TestGodoc_PauseLetsInFlightFinish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 5, 3)
	b.add(t, p.UUID, 3)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	_, err = b.eng.PauseCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrHeld)
	require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
	got, err := b.eng.ResumeCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	require.Equal(t, campaign.InProcess, got.Status)
	_, err = b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
}

// TestGodoc_UpdateRuleNoChange: UpdateRuleParams.Apply's changed says
// whether a value differs, "the caller moves UpdatedAt only then".
func TestGodoc_UpdateRuleNoChange(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	r := b.rule(t, campaign.CreateRuleParams{})
	b.clock.Advance(time.Hour)
	got, err := b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{Name: new(r.Name), EndTime: new("18:00")})
	require.NoError(t, err)
	require.Equal(t, r, got)
	got, err = b.eng.UpdateRule(b.ctx, r.UUID, campaign.UpdateRuleParams{EndTime: new("17:00")})
	require.NoError(t, err)
	require.Equal(t, b.clock.Now(), got.UpdatedAt)
	require.Equal(t, r.CreatedAt, got.CreatedAt)
	stored, err := b.eng.Rule(b.ctx, r.UUID)
	require.NoError(t, err)
	require.Equal(t, got, stored)
}

// TestGodoc_OptOutInFlight: OptOut: "An item of the contact in flight
// finishes its attempt: completed, it stays Completed; failed, it is
// Skipped instead of retried."
func TestGodoc_OptOutInFlight(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	r := b.rule(t, campaign.CreateRuleParams{StartTime: new("00:00"), EndTime: new("23:59")})
	p := b.pool(t, pool.Parallel, 5, 3)
	cs := b.add(t, p.UUID, 2)
	c := b.campaignOf(t, r.UUID, p.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)
	l1, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	l2, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	for _, ct := range cs {
		n, err := b.eng.OptOut(b.ctx, ct)
		require.NoError(t, err)
		require.Equal(t, 0, n, "in flight: not skipped now")
	}
	require.NoError(t, b.eng.Complete(b.ctx, l1, "answered"))
	require.NoError(t, b.eng.Fail(b.ctx, l2, queue.Failure{Note: "busy"}))
	require.Equal(t, pool.StatusCompleted, b.item(t, p.UUID, l1.ContactUUID).Status)
	it := b.item(t, p.UUID, l2.ContactUUID)
	require.Equal(t, pool.StatusSkipped, it.Status, "failed after the opt-out: skipped, not retried")
}

// TestGodoc_EscalationOnceAndLowered: an item "records exactly one
// escalation"; FailedAttempts is "the rule's threshold, or more if the
// threshold was lowered below what the item had"; Type and Target are ""
// when the rule has none; WatchEscalations sees one this engine records "at
// once" (not after PollInterval).
func TestGodoc_EscalationOnceAndLowered(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := openMemStoreForGodoc(t)
	c := newClock()
	eng := openEngine(t, st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: time.Hour})
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "Rule", StartTime: new("00:00"), EndTime: new("23:59"),
		RetryIntervalMinutes: new(1), MaxTotalCalls: new(10), MaxCallsPerDay: new(10), EscalationAfterFailedAttempts: new(3)})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "Pool", Description: "d", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	cp, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "Camp", RuleUUID: &r.UUID})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, cp.UUID, p.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, cp.UUID)
	require.NoError(t, err)

	got := make(chan campaign.Escalation, 10)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- eng.WatchEscalations(wctx, 0, func(e campaign.Escalation) error { got <- e; return nil })
	}()
	fail := func() {
		t.Helper()
		l, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.Fail(ctx, l, queue.Failure{Note: "busy"}))
		c.Advance(2 * time.Minute)
	}
	fail()
	fail()
	_, err = eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{EscalationAfterFailedAttempts: new(1)})
	require.NoError(t, err)
	fail()
	var e campaign.Escalation
	select {
	case e = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("WatchEscalations did not see the escalation at once")
	}
	require.Equal(t, 3, e.FailedAttempts, "threshold lowered below what the item had")
	require.Equal(t, "", e.Type)
	require.Equal(t, "", e.Target)
	require.Equal(t, r.UUID, e.RuleUUID)
	require.Equal(t, cp.UUID, e.CampaignUUID)
	fail()
	all, err := eng.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	require.Len(t, all, 1, "one escalation per item")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	require.Empty(t, got)
}

// openMemStoreForGodoc opens a fresh in-memory SQLite store, closed when
// the test ends.
func openMemStoreForGodoc(t *testing.T) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(t.Context(), ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// readFailStore fails every Read with errRead once failing is set.
type readFailStore struct {
	store.Store
	failing atomic.Bool
}

var errRead = errors.New("the database is unreachable")

func (s *readFailStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	if s.failing.Load() {
		return errRead
	}
	return s.Store.Read(ctx, fn)
}

// TestGodoc_WatchEscalationsReadError: WatchEscalations returns when a read
// fails, with an error wrapping the store's ("it does not retry"): a
// consumer restarts it from the last escalation it handled.
func TestGodoc_WatchEscalationsReadError(t *testing.T) {
	oneGoroutine(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	rs := &readFailStore{Store: st}
	eng, err := queue.New(rs, queue.Options{PollInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		close(started)
		done <- eng.WatchEscalations(ctx, 0, func(campaign.Escalation) error { return nil })
	}()
	<-started
	rs.failing.Store(true) // at its next read, at the latest its poll's
	select {
	case err := <-done:
		require.ErrorIs(t, err, errRead)
	case <-time.After(5 * time.Second):
		t.Fatal("WatchEscalations went on past a failed read")
	}
}
