package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestMigrate_GoverningPools upgrades a version 11 file, whose attachments
// do not say which govern, to the latest version: each attachment takes
// its campaign's status (a pool of each status, and one attached to a
// Draft, a Completed, an Archived and an In Process campaign, governed by
// the last), a pool of none stays so, and a status written after the
// upgrade is followed.
//
// Not parallel: it narrows the package's migrations while it writes the
// old file (see TestMigrate_CountsWithoutTriggers).
func TestMigrate_GoverningPools(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v11.db")
	db := openDB(path) // 0009 needs poolq_search_words
	db.SetMaxOpenConns(1)
	all := history
	history = all[:11]
	err := migrate(ctx, db)
	history = all
	require.NoError(t, err)
	exec := func(query string, args ...any) {
		t.Helper()
		_, err := db.ExecContext(ctx, query, args...)
		require.NoError(t, err)
	}
	statuses := campaign.Statuses()
	campaigns := make([]uuid.UUID, len(statuses))
	pools := make([]uuid.UUID, len(statuses)+2) // one per status, one of several campaigns, one of none
	for i := range pools {
		pools[i] = uuid.New()
		exec(insertOldPool, pools[i][:])
	}
	several := int64(len(statuses) + 1)
	for i, st := range statuses {
		campaigns[i] = uuid.New()
		exec(`INSERT INTO campaigns (uuid, name, status, timezone, created_at, updated_at, search)
    VALUES (?, 'old campaign', ?, 'UTC', ?, 0, 'old campaign')`, campaigns[i][:], string(st), i)
		exec(`INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES (?, ?, 1)`, i+1, i+1)
		if st != campaign.Paused {
			exec(`INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES (?, ?, 2)`, i+1, several)
		}
	}
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	governors := func(p uuid.UUID) ([]uuid.UUID, bool) {
		t.Helper()
		var ids []uuid.UUID
		var attached bool
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			cs, a, err := tx.PoolGovernors(ctx, p)
			for _, c := range cs {
				ids = append(ids, c.UUID)
			}
			attached = a
			return err
		}))
		return ids, attached
	}
	for i, s := range statuses {
		gov, attached := governors(pools[i])
		require.True(t, attached, s)
		if s.Governs() {
			require.Equal(t, []uuid.UUID{campaigns[i]}, gov, s)
		} else {
			require.Empty(t, gov, s)
		}
	}
	inProcess := slices.Index(statuses, campaign.InProcess)
	gov, attached := governors(pools[several-1])
	require.True(t, attached)
	require.Equal(t, []uuid.UUID{campaigns[inProcess]}, gov, "the In Process one of several")
	gov, attached = governors(pools[several])
	require.Empty(t, gov)
	require.False(t, attached, "a pool of no campaign")

	// A status written after the upgrade is followed.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		c, err := tx.Campaign(ctx, campaigns[inProcess])
		if err != nil {
			return err
		}
		c.Status = campaign.Completed
		return tx.UpdateCampaign(ctx, c)
	}))
	gov, attached = governors(pools[several-1])
	require.Empty(t, gov)
	require.True(t, attached)
}
