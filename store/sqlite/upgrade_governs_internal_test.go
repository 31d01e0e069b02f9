package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store/storetest"
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
	db, exec := searchFileAtVersion(t, path, 11)
	statuses := campaign.Statuses()
	campaigns := make([]uuid.UUID, len(statuses))
	pools := make([]uuid.UUID, len(statuses)+2) // one per status, one of several campaigns, one of none
	for i := range pools {
		pools[i] = uuid.New()
		exec(insertOldPool, pools[i][:])
	}
	several := int64(len(statuses) + 1) // its key
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
	storetest.RequireGoverningUpgrade(t, st, pools, campaigns)
}
