package queue_test

// Review (branch r-session): UpdateRule racing an AttachPools to a running
// campaign of the rule, on two PostgreSQL nodes.

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_UpdateRuleRacingAnAttach: as
// TestPostgres_UpdateRuleRacingAStart, for a pool attached (AttachPools)
// to a campaign running under rule r after node b's UpdateRule(r) listed
// r's campaigns and their pools. UpdateRule promises that no claim under
// the old values commits after it returns; the rule's lock (LockRule)
// orders starts and assignments after it, not attachments: the new pool
// is not among the pools UpdateRule locks, a claim of it on node a reads
// the old rule, UpdateRule returns, and the claim then commits a call the
// new rule forbids (outside its new window).
func TestPostgres_UpdateRuleRacingAnAttach(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	firstSt := pgtest.Open(t, url, postgres.Options{})
	first := &pausingStore{Store: firstSt}
	second := &pausingStore{Store: pgtest.OpenSchema(t, url, postgres.Options{Schema: firstSt.Schema()})}
	a := openEngine(t, first, queue.Options{})
	b := openEngine(t, second, queue.Options{})
	ctx := context.Background()

	now := time.Now().UTC()
	if now.Hour() == 23 || now.Hour() == 0 {
		t.Skip("needs a UTC time away from midnight: the windows below are 00:00-23:59 and 23:58-23:59")
	}
	r, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "all day", StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
	require.NoError(t, err)
	c, err := a.CreateCampaign(ctx, campaign.CreateParams{Name: "running", RuleUUID: &r.UUID, TimeZone: "UTC"})
	require.NoError(t, err)
	p1, err := a.CreatePool(ctx, pool.CreateParams{Name: "attached before", Description: "d"})
	require.NoError(t, err)
	p2, err := a.CreatePool(ctx, pool.CreateParams{Name: "attached during the update", Description: "d"})
	require.NoError(t, err)
	_, err = a.Add(ctx, p2.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	_, err = a.AttachPools(ctx, c.UUID, p1.UUID)
	require.NoError(t, err)
	_, err = a.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	// b: UpdateRule takes the rule's lock, lists the rule's campaigns (c,
	// with p1), then waits.
	listed, resumeB := make(chan struct{}), make(chan struct{})
	second.setCampaignsHook(func() { close(listed); <-resumeB })
	updated := make(chan error, 1)
	go func() {
		_, err := b.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{StartTime: pqPtr("23:58")}) // now is outside
		updated <- err
	}()
	select {
	case <-listed:
	case err := <-updated:
		t.Fatalf("UpdateRule returned before it listed the rule's campaigns: %v", err)
	}
	// a: p2 is attached to the running campaign.
	attached := make(chan error, 1)
	go func() { _, err := a.AttachPools(ctx, c.UUID, p2.UUID); attached <- err }()
	select {
	case err := <-attached:
		require.NoError(t, err, "AttachPools")
	case <-time.After(time.Second):
		// The attach waits for the update: then p2 is claimed under the
		// new rule, and nothing is due in its window.
		close(resumeB)
		require.NoError(t, <-updated, "UpdateRule")
		require.NoError(t, <-attached, "AttachPools")
		_, err := a.TryDequeue(ctx, p2.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty, "a claim after the update, outside its window")
		return
	}
	// a: a claim of p2 reads the (old) rule, and waits.
	ruleRead, resumeA := make(chan struct{}), make(chan struct{})
	first.setHook(func() { close(ruleRead); <-resumeA })
	claimed := make(chan error, 1)
	var lease *queue.Lease
	go func() {
		var err error
		lease, err = a.TryDequeue(ctx, p2.UUID)
		claimed <- err
	}()
	<-ruleRead
	close(resumeB)
	var returned bool
	select {
	case err := <-updated:
		require.NoError(t, err, "UpdateRule")
		returned = true
	case <-time.After(500 * time.Millisecond):
	}
	close(resumeA)
	claimErr := <-claimed
	if !returned {
		require.NoError(t, <-updated, "UpdateRule")
	}
	if returned && claimErr == nil {
		t.Fatalf("UpdateRule returned while a claim under the old rule, of a pool attached during the update, was under way; the claim then committed: contact %s dispatched at %s, outside the new window 23:58-23:59",
			lease.ContactUUID, now.Format("15:04"))
	}
}
