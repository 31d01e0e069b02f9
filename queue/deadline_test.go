package queue_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/lockholder"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestSQLite_EveryCallLeavesAtItsDeadline: another process holds the
// file's write lock, longer than the callers' deadlines and shorter than
// the store's busy timeout (5 s by default). Every exported call of the
// engine that writes returns by its deadline (plus slack) with an error
// wrapping context.DeadlineExceeded, and writes nothing; the reads go on
// (WAL), and Work and WatchEscalations return at their context's end. The
// writes are one after the other, so each waits behind the previous one's
// transaction, still waiting for the lock with nobody left to run for, as
// well as behind the lock.
func TestSQLite_EveryCallLeavesAtItsDeadline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "deadline.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	eng := openEngine(t, st, queue.Options{})
	ten := 10
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool P", Description: "d", Type: pool.Parallel, MaxParallelItems: &ten})
	require.NoError(t, err)
	items := newItems(4)
	_, err = eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	ls, err := eng.DequeueN(ctx, p.UUID, 2)
	require.NoError(t, err)
	l, l2 := ls[0], ls[1]
	finished := items[3].ContactUUID
	_, err = eng.Skip(ctx, p.UUID, finished, "skipped before")
	require.NoError(t, err)
	waiting := items[2].ContactUUID
	q, err := eng.CreatePool(ctx, pool.CreateParams{Name: "pool Q", Description: "d", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, q.UUID, newItems(1)...)
	require.NoError(t, err)
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule R"})
	require.NoError(t, err)
	r2, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule R2"})
	require.NoError(t, err)
	c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign C", RuleUUID: &r.UUID})
	require.NoError(t, err)
	_, err = eng.AttachPools(ctx, c.UUID, q.UUID)
	require.NoError(t, err)
	_, err = eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	draft, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign D"})
	require.NoError(t, err)
	_, err = eng.AddDNC(ctx, items[0].ContactUUID)
	require.NoError(t, err)
	state := func() []any {
		pd, err := eng.Pool(ctx, p.UUID)
		require.NoError(t, err)
		qd, err := eng.Pool(ctx, q.UUID)
		require.NoError(t, err)
		pools, err := eng.Pools(ctx, pool.PoolQuery{})
		require.NoError(t, err)
		its, err := eng.Items(ctx, p.UUID, pool.ItemQuery{})
		require.NoError(t, err)
		rules, err := eng.Rules(ctx, campaign.RuleQuery{})
		require.NoError(t, err)
		camps, err := eng.Campaigns(ctx, campaign.Query{})
		require.NoError(t, err)
		dnc, err := eng.DNC(ctx, campaign.DNCQuery{})
		require.NoError(t, err)
		return []any{pd, qd, pools, its, rules, camps, dnc}
	}
	before := state()

	unlock := lockholder.Hold(t, path)
	name, one := "renamed", 1
	writes := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"CreatePool", func(ctx context.Context) error {
			_, err := eng.CreatePool(ctx, pool.CreateParams{Name: "new pool", Description: "d"})
			return err
		}},
		{"UpdatePool", func(ctx context.Context) error {
			_, err := eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{Name: &name})
			return err
		}},
		{"DuplicatePool", func(ctx context.Context) error {
			_, err := eng.DuplicatePool(ctx, p.UUID, pool.DuplicateParams{})
			return err
		}},
		{"DeletePool", func(ctx context.Context) error { return eng.DeletePool(ctx, q.UUID) }},
		{"Add", func(ctx context.Context) error { _, err := eng.Add(ctx, p.UUID, newItems(1)...); return err }},
		{"Skip", func(ctx context.Context) error { _, err := eng.Skip(ctx, p.UUID, waiting, "n"); return err }},
		{"Requeue", func(ctx context.Context) error { _, err := eng.Requeue(ctx, p.UUID, finished); return err }},
		{"SetPriority", func(ctx context.Context) error { _, err := eng.SetPriority(ctx, p.UUID, waiting, 9); return err }},
		{"Remove", func(ctx context.Context) error { _, err := eng.Remove(ctx, p.UUID, waiting); return err }},
		{"TryDequeue", func(ctx context.Context) error { _, err := eng.TryDequeue(ctx, p.UUID); return err }},
		{"Dequeue", func(ctx context.Context) error { _, err := eng.Dequeue(ctx, p.UUID); return err }},
		{"DequeueN", func(ctx context.Context) error { _, err := eng.DequeueN(ctx, p.UUID, 3); return err }},
		{"DequeueCampaign", func(ctx context.Context) error { _, err := eng.DequeueCampaign(ctx, c.UUID); return err }},
		{"MarkInCall", func(ctx context.Context) error { return eng.MarkInCall(ctx, l) }},
		{"Extend", func(ctx context.Context) error { return eng.Extend(ctx, l, time.Hour) }},
		{"Complete", func(ctx context.Context) error { return eng.Complete(ctx, l, "answered") }},
		{"Fail", func(ctx context.Context) error { return eng.Fail(ctx, l, queue.Failure{Note: "busy"}) }},
		{"Release", func(ctx context.Context) error { return eng.Release(ctx, l) }},
		{"Settle", func(ctx context.Context) error {
			_, err := eng.Settle(ctx, queue.Outcome{Lease: l, Note: "a"}, queue.Outcome{Lease: l2, Note: "b"})
			return err
		}},
		{"CreateRule", func(ctx context.Context) error {
			_, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "new rule"})
			return err
		}},
		{"UpdateRule", func(ctx context.Context) error {
			_, err := eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: &one})
			return err
		}},
		{"DeleteRule", func(ctx context.Context) error { return eng.DeleteRule(ctx, r2.UUID) }},
		{"CreateCampaign", func(ctx context.Context) error {
			_, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "new campaign"})
			return err
		}},
		{"UpdateCampaign", func(ctx context.Context) error {
			_, err := eng.UpdateCampaign(ctx, c.UUID, campaign.UpdateParams{Name: &name})
			return err
		}},
		{"AssignRule", func(ctx context.Context) error { _, err := eng.AssignRule(ctx, draft.UUID, r2.UUID); return err }},
		{"AttachPools", func(ctx context.Context) error { _, err := eng.AttachPools(ctx, draft.UUID, p.UUID); return err }},
		{"DetachPool", func(ctx context.Context) error { _, err := eng.DetachPool(ctx, c.UUID, q.UUID); return err }},
		{"StartCampaign", func(ctx context.Context) error { _, err := eng.StartCampaign(ctx, draft.UUID); return err }},
		{"PauseCampaign", func(ctx context.Context) error { _, err := eng.PauseCampaign(ctx, c.UUID); return err }},
		{"CompleteCampaign", func(ctx context.Context) error { _, err := eng.CompleteCampaign(ctx, c.UUID); return err }},
		{"DeleteCampaign", func(ctx context.Context) error { return eng.DeleteCampaign(ctx, draft.UUID) }},
		{"AddDNC", func(ctx context.Context) error { _, err := eng.AddDNC(ctx, uuid.New()); return err }},
		{"RemoveDNC", func(ctx context.Context) error { _, err := eng.RemoveDNC(ctx, items[0].ContactUUID); return err }},
		{"OptOut", func(ctx context.Context) error { _, err := eng.OptOut(ctx, waiting); return err }},
	}
	const deadline, slack = 100 * time.Millisecond, time.Second
	var worst time.Duration
	var worstName string
	timedWithin := func(deadline time.Duration, name string, call func(ctx context.Context) error) error {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		start := time.Now()
		err := call(cctx)
		took := time.Since(start)
		if late := took - deadline; late > worst {
			worst, worstName = late, name
		}
		require.Less(t, took, deadline+slack, "%s held past its deadline: %v (%v)", name, took, err)
		return err
	}
	timed := func(name string, call func(ctx context.Context) error) error {
		t.Helper()
		return timedWithin(deadline, name, call)
	}
	for _, w := range writes {
		err := timed(w.name, w.call)
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s behind another process's lock", w.name)
	}
	// Reads are not held by the lock, held until the end: given time
	// enough (a read of a loaded machine's race run may take more than
	// 100 ms), they return. The calls that run until their context ends
	// return at its end.
	read := func(name string, call func(ctx context.Context) error) error {
		t.Helper()
		return timedWithin(5*time.Second, name, call)
	}
	require.NoError(t, read("Pool", func(ctx context.Context) error { _, err := eng.Pool(ctx, p.UUID); return err }))
	require.NoError(t, read("Items", func(ctx context.Context) error {
		_, err := eng.Items(ctx, p.UUID, pool.ItemQuery{})
		return err
	}))
	require.NoError(t, read("Item", func(ctx context.Context) error { _, err := eng.Item(ctx, p.UUID, waiting); return err }))
	require.NoError(t, read("Campaign", func(ctx context.Context) error { _, err := eng.Campaign(ctx, c.UUID); return err }))
	require.NoError(t, read("Rule", func(ctx context.Context) error { _, err := eng.Rule(ctx, r.UUID); return err }))
	require.NoError(t, read("IsDNC", func(ctx context.Context) error { _, err := eng.IsDNC(ctx, waiting); return err }))
	require.NoError(t, read("Escalations", func(ctx context.Context) error {
		_, err := eng.Escalations(ctx, campaign.EscalationQuery{})
		return err
	}))
	err = timed("WatchEscalations", func(ctx context.Context) error {
		return eng.WatchEscalations(ctx, 0, func(campaign.Escalation) error { return nil })
	})
	require.ErrorIs(t, err, context.DeadlineExceeded, "WatchEscalations")
	err = timed("Work", func(ctx context.Context) error {
		return eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil }, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: queue.MinGrace})
	})
	require.True(t, err == nil || errors.Is(err, context.DeadlineExceeded), "Work: %v", err)
	t.Logf("the latest call, %s, returned %v after its deadline of %v", worstName, worst, deadline)

	unlock()
	// A write that changes nothing, after the transactions still waiting
	// for the lock when it was given back.
	n, err := eng.RemoveDNC(ctx, uuid.New())
	require.NoError(t, err)
	require.Zero(t, n)
	require.Equal(t, before, state(), "a call that returned its context's error wrote")
	require.NoError(t, eng.Complete(ctx, l, "answered"), "the lease was left as it was")
}
