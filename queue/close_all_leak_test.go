package queue_test

import (
	"context"
	"errors"
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

// afterCloseCalls closes an engine over st (and st, when closeStore), then
// calls every exported method with valid arguments: each returns an error
// wrapping ErrClosed, promptly.
func afterCloseCalls(t *testing.T, st store.Store, closeStore bool) {
	ctx := context.Background()
	eng, err := queue.New(st, queue.Options{PollInterval: time.Hour})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "xxx", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	c1, c2 := uuid.New(), uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c1}, pool.NewItem{ContactUUID: c2})
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule one"})
	require.NoError(t, err)
	cp, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "camp one", RuleUUID: &r.UUID})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, cp.UUID, p.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	if closeStore {
		require.NoError(t, st.Close())
	}
	name := "new name"
	one := 1
	calls := map[string]func() error{
		"CreateRule": func() error { _, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule two"}); return err },
		"UpdateRule": func() error {
			_, err := eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{Name: &name})
			return err
		},
		"Rule":       func() error { _, err := eng.Rule(ctx, r.UUID); return err },
		"Rules":      func() error { _, err := eng.Rules(ctx, campaign.RuleQuery{}); return err },
		"DeleteRule": func() error { return eng.DeleteRule(ctx, r.UUID) },
		"CreateCamp": func() error { _, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "c two"}); return err },
		"UpdateCamp": func() error {
			_, err := eng.UpdateCampaign(ctx, cp.UUID, campaign.UpdateParams{Name: &name})
			return err
		},
		"Campaign":    func() error { _, err := eng.Campaign(ctx, cp.UUID); return err },
		"Campaigns":   func() error { _, err := eng.Campaigns(ctx, campaign.Query{}); return err },
		"DeleteCamp":  func() error { return eng.DeleteCampaign(ctx, cp.UUID) },
		"Start":       func() error { _, err := eng.StartCampaign(ctx, cp.UUID); return err },
		"Pause":       func() error { _, err := eng.PauseCampaign(ctx, cp.UUID); return err },
		"Resume":      func() error { _, err := eng.ResumeCampaign(ctx, cp.UUID); return err },
		"Complete C":  func() error { _, err := eng.CompleteCampaign(ctx, cp.UUID); return err },
		"Archive":     func() error { _, err := eng.ArchiveCampaign(ctx, cp.UUID); return err },
		"AssignRule":  func() error { _, err := eng.AssignRule(ctx, cp.UUID, r.UUID); return err },
		"Attach":      func() error { _, err := eng.AttachPools(ctx, cp.UUID, p.UUID); return err },
		"Detach":      func() error { _, err := eng.DetachPool(ctx, cp.UUID, p.UUID); return err },
		"DeqCamp":     func() error { _, err := eng.DequeueCampaign(ctx, cp.UUID); return err },
		"AddDNC":      func() error { _, err := eng.AddDNC(ctx, c2); return err },
		"RemoveDNC":   func() error { _, err := eng.RemoveDNC(ctx, c2); return err },
		"IsDNC":       func() error { _, err := eng.IsDNC(ctx, c2); return err },
		"DNC":         func() error { _, err := eng.DNC(ctx, campaign.DNCQuery{}); return err },
		"OptOut":      func() error { _, err := eng.OptOut(ctx, c2); return err },
		"Escalations": func() error { _, err := eng.Escalations(ctx, campaign.EscalationQuery{}); return err },
		"WatchEsc": func() error {
			return eng.WatchEscalations(ctx, 0, func(campaign.Escalation) error { return nil })
		},
		"TryDequeue": func() error { _, err := eng.TryDequeue(ctx, p.UUID); return err },
		"Dequeue":    func() error { _, err := eng.Dequeue(ctx, p.UUID); return err },
		"DequeueN":   func() error { _, err := eng.DequeueN(ctx, p.UUID, 2); return err },
		"Add":        func() error { _, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); return err },
		"Items":      func() error { _, err := eng.Items(ctx, p.UUID, pool.ItemQuery{}); return err },
		"Item":       func() error { _, err := eng.Item(ctx, p.UUID, c2); return err },
		"Skip":       func() error { _, err := eng.Skip(ctx, p.UUID, c2, "n"); return err },
		"Requeue":    func() error { _, err := eng.Requeue(ctx, p.UUID, c2); return err },
		"SetPrio":    func() error { _, err := eng.SetPriority(ctx, p.UUID, c2, 3); return err },
		"Remove":     func() error { _, err := eng.Remove(ctx, p.UUID, c2); return err },
		"MarkInCall": func() error { return eng.MarkInCall(ctx, l) },
		"Extend":     func() error { return eng.Extend(ctx, l, time.Minute) },
		"Complete":   func() error { return eng.Complete(ctx, l, "n") },
		"Fail":       func() error { return eng.Fail(ctx, l, queue.Failure{Note: "x"}) },
		"Release":    func() error { return eng.Release(ctx, l) },
		"Settle":     func() error { _, err := eng.Settle(ctx, queue.Outcome{Lease: l}); return err },
		"CreatePool": func() error {
			_, err := eng.CreatePool(ctx, pool.CreateParams{Name: "abc", Description: "d"})
			return err
		},
		"UpdatePool": func() error {
			_, err := eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &one})
			return err
		},
		"Pool":       func() error { _, err := eng.Pool(ctx, p.UUID); return err },
		"Pools":      func() error { _, err := eng.Pools(ctx, pool.PoolQuery{}); return err },
		"DeletePool": func() error { return eng.DeletePool(ctx, p.UUID) },
		"Duplicate":  func() error { _, err := eng.DuplicatePool(ctx, p.UUID, pool.DuplicateParams{}); return err },
		"Work": func() error {
			return eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil }, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}})
		},
		"WorkCamp": func() error {
			return eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil }, queue.WorkOptions{Campaigns: []uuid.UUID{cp.UUID}})
		},
	}
	for name, call := range calls {
		done := make(chan error, 1)
		go func() { done <- call() }()
		select {
		case err := <-done:
			if !errors.Is(err, queue.ErrClosed) {
				t.Errorf("%s after Close: %v", name, err)
			}
		case <-time.After(3 * time.Second):
			t.Errorf("%s after Close: hangs", name)
		}
	}
	_ = eng.Close()
}

// TestEngine_EveryCallAfterClose: every exported method of a closed engine
// returns ErrClosed at once, whether the store is still open or closed.
func TestEngine_EveryCallAfterCloseSQLite(t *testing.T) {
	t.Parallel()
	for _, cs := range []bool{false, true} {
		st, err := sqlite.Open(context.Background(), t.TempDir()+"/x.db", sqlite.Options{})
		require.NoError(t, err)
		afterCloseCalls(t, st, cs)
		require.NoError(t, st.Close())
	}
}

func TestEngine_EveryCallAfterClosePostgres(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, cs := range []bool{false, true} {
		st := pgtest.Open(t, url, postgres.Options{})
		afterCloseCalls(t, st, cs)
	}
}
