package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestPostgres_UpdateRuleRacingAPauseAcrossPages: UpdateRule listed the
// rule's In Process campaigns 100 a page at a growing OFFSET, each page a
// statement of its own (READ COMMITTED: a fresh snapshot). A pause (or a
// completion, or an AssignRule to another rule; none takes the rule's
// lock) of a campaign on page 1, committed before page 2 was read, moved
// every later campaign up one place: the 101st, still In Process, was on
// neither page, and its pool was not locked. A claim of that pool on node
// a read the old rule, UpdateRule on node b returned without waiting for
// it, and the claim committed a call the new rule forbids. UpdateRule now
// reads the pools of the rule's governing campaigns in one statement
// (store.Tx.RulePools); the pause comes after it here.
func TestPostgres_UpdateRuleRacingAPauseAcrossPages(t *testing.T) {
	firstSt, first, second, a, b, r := ruleRaceNodes(t)
	ctx := context.Background()
	now := time.Now().UTC()
	// A full first page of running campaigns of r (without pools), written
	// in one transaction, then c, the 101st, running with pool p.
	var first100 []campaign.Campaign
	err := firstSt.Write(ctx, func(tx store.Tx) error {
		for range pool.MaxPerPage {
			f, err := campaign.New(uuid.Must(uuid.NewV7()), campaign.CreateParams{Name: "filler", RuleUUID: &r.UUID, TimeZone: "UTC"}, now.Add(-time.Minute))
			if err != nil {
				return err
			}
			f.Status = campaign.InProcess
			if err := tx.InsertCampaign(ctx, f); err != nil {
				return err
			}
			first100 = append(first100, f)
		}
		return nil
	})
	require.NoError(t, err)
	c, err := a.CreateCampaign(ctx, campaign.CreateParams{Name: "last", RuleUUID: &r.UUID, TimeZone: noonZone(now)})
	require.NoError(t, err)
	p, err := a.CreatePool(ctx, pool.CreateParams{Name: "pool", Description: "d"})
	require.NoError(t, err)
	_, err = a.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	_, err = a.AttachPools(ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = a.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)

	// b: UpdateRule reads the pools of r's governing campaigns (once
	// listed a page of them, without c), then waits.
	resumeB, updated := updateRuleListed(t, b, second, r.UUID)
	// a: a campaign of page 1 pauses (it takes no rule's lock: it does not
	// wait for b), and a claim of p reads the rule.
	paused := make(chan error, 1)
	go func() { _, err := a.PauseCampaign(ctx, first100[0].UUID); paused <- err }()
	select {
	case err := <-paused:
		require.NoError(t, err, "pause")
	case <-time.After(5 * time.Second):
		resumeB.open()
		t.Fatal("the pause waited for UpdateRule")
	}
	requireUpdateWaitsForClaim(t, a, first, p.UUID, resumeB, updated,
		fmt.Sprintf(" (campaign %s, the 101st In Process, was on neither page once one of the first 100 paused)", c.UUID))
}
