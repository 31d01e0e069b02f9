package storetest

import (
	"context"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// RequireGoverningUpgrade checks, for a store's test of the migration that
// records which attachments govern (version 12), what st answers once
// upgraded. Before it, the test made with the old schema, for each status
// i of campaign.Statuses(), campaigns[i] with that status attached to
// pools[i]; the campaigns of every status but Paused attached to pool
// pools[n] (n the number of statuses); and pools[n+1] attached to none.
// Each attachment takes its campaign's status (pools[n] is governed by the
// In Process one), pools[n+1] is not attached, and a status written after
// the upgrade is followed, read in a write transaction that locks the pool
// first, as a claim does.
func RequireGoverningUpgrade(t *testing.T, st store.Store, pools, campaigns []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	statuses := campaign.Statuses()
	require.Len(t, campaigns, len(statuses))
	require.Len(t, pools, len(statuses)+2)
	governors := func(tx store.Tx, p uuid.UUID) ([]uuid.UUID, bool) {
		t.Helper()
		cs, attached, err := tx.PoolGovernors(ctx, p)
		require.NoError(t, err)
		return campaignIDs(cs), attached
	}
	several := len(statuses)
	inProcess := slices.Index(statuses, campaign.InProcess)
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		for i, s := range statuses {
			gov, attached := governors(tx, pools[i])
			require.True(t, attached, s)
			if s.Governs() {
				require.Equal(t, []uuid.UUID{campaigns[i]}, gov, s)
			} else {
				require.Empty(t, gov, s)
			}
		}
		gov, attached := governors(tx, pools[several])
		require.True(t, attached)
		require.Equal(t, []uuid.UUID{campaigns[inProcess]}, gov, "the In Process one of several")
		gov, attached = governors(tx, pools[several+1])
		require.Empty(t, gov)
		require.False(t, attached, "a pool of no campaign")
		return nil
	}))

	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		c, err := tx.Campaign(ctx, campaigns[inProcess])
		if err != nil {
			return err
		}
		c.Status = campaign.Completed
		return tx.UpdateCampaign(ctx, c)
	}))
	// Write may run its function again: it only gathers what
	// PoolGovernors answered, and the checks come once it returns.
	var gov []campaign.Campaign
	var attached bool
	require.NoError(t, st.Write(ctx, func(tx store.Tx) (err error) {
		if _, err := tx.InFlight(ctx, pools[several]); err != nil {
			return err
		}
		gov, attached, err = tx.PoolGovernors(ctx, pools[several])
		return err
	}))
	require.Empty(t, campaignIDs(gov), "completed after the upgrade")
	require.True(t, attached)
}
