package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/storetest"
	"github.com/stretchr/testify/require"
)

// TestOpen_UpgradesVersion11 opens a schema left at version 11, whose
// attachments do not say which govern: each attachment takes its
// campaign's status (a pool of each status, and one attached to a Draft, a
// Completed, an Archived and an In Process campaign, governed by the
// last), a pool of none stays so, and a status written after the upgrade
// is followed.
func TestOpen_UpgradesVersion11(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 11))
	conn := postgres.SchemaConn(t, url, schema)
	statuses := campaign.Statuses()
	campaigns := make([]uuid.UUID, len(statuses))
	pools := make([]uuid.UUID, len(statuses)+2) // one per status, one of several campaigns, one of none
	keys := make([]int64, len(pools))
	for i := range pools {
		p := newTestPool(fmt.Sprintf("version 11 pool %d", i))
		pools[i] = p.UUID
		require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, $3, 'FIFO', $4, $5, $6, $7, $7, $2)
    RETURNING id`, p.UUID, p.Name, p.Description, p.MaxParallelItems, p.MaxRetries, p.IsActive,
			p.CreatedAt.UnixNano()).Scan(&keys[i]))
		_, err := conn.Exec(ctx, `INSERT INTO pool_counts (pool_id) VALUES ($1)`, keys[i])
		require.NoError(t, err)
	}
	several := len(statuses)
	for i, st := range statuses {
		campaigns[i] = uuid.New()
		var ck int64
		require.NoError(t, conn.QueryRow(ctx, `INSERT INTO campaigns (uuid, name, status, timezone, created_at, updated_at,
    search) VALUES ($1, 'old campaign', $2, 'UTC', $3, 0, 'old campaign') RETURNING id`,
			campaigns[i], string(st), i).Scan(&ck))
		_, err := conn.Exec(ctx, `INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES ($1, $2, 1)`, ck, keys[i])
		require.NoError(t, err)
		if st != campaign.Paused {
			_, err = conn.Exec(ctx, `INSERT INTO campaign_pools (campaign_id, pool_id, seq) VALUES ($1, $2, 2)`, ck, keys[several])
			require.NoError(t, err)
		}
	}

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	storetest.RequireGoverningUpgrade(t, st, pools, campaigns)
}
