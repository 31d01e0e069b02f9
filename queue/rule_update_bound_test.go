package queue_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_UpdateRuleOfManyFullCampaigns: a rule governs 13 running
// campaigns of MaxPoolsPerCampaign pools each, which the API allows (the
// campaigns a rule governs are not bounded). UpdateRule took the lock of
// each of their 13,000 pools in one transaction: on PostgreSQL 15 at the
// defaults (max_locks_per_transaction 64, max_connections 100: about
// 12,600 locks at most in one transaction) it failed with "out of shared
// memory" (SQLSTATE 53200) after 1.9 s, so the rule could not be updated
// at all, and meanwhile another session's Adds to a pool of no campaign
// failed the same way. (At 12 campaigns it took 2.3 s and succeeded.)
func TestPostgres_UpdateRuleOfManyFullCampaigns(t *testing.T) {
	url := pgtest.URL(t)
	oneGoroutine(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
	eng := openEngine(t, st, queue.Options{})
	r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "shared by many", StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
	require.NoError(t, err)
	const campaigns = 13
	admin, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer admin.Close(ctx)
	for i := range campaigns {
		// Running campaigns of r, made through the store, their pools
		// inserted and attached in SQL (bulkAttachPools).
		c, err := campaign.New(uuid.Must(uuid.NewV7()), campaign.CreateParams{Name: "campaign " + strconv.Itoa(i),
			RuleUUID: &r.UUID, TimeZone: "UTC"}, time.Now().UTC())
		require.NoError(t, err)
		c.Status = campaign.InProcess
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertCampaign(ctx, c) }))
		bulkAttachPools(t, admin, st.Schema(), c.UUID, campaignBound)
		require.Equal(t, campaignBound, campaignPools(t, eng, c.UUID), "the engine reads the pools attached in SQL")
	}

	// Another node adds to a pool of no campaign while the rule is updated.
	other := openEngine(t, pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2}), queue.Options{})
	p, err := other.CreatePool(ctx, pool.CreateParams{Name: "elsewhere", Description: "d"})
	require.NoError(t, err)
	var (
		stop      atomic.Bool
		adds      atomic.Int64
		wg        sync.WaitGroup
		addErrsMu sync.Mutex
		addErrs   []error
	)
	wg.Go(func() {
		for !stop.Load() {
			if _, err := other.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); err != nil {
				addErrsMu.Lock()
				addErrs = append(addErrs, err)
				addErrsMu.Unlock()
			}
			adds.Add(1)
		}
	})
	start := time.Now()
	got, err := eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(5)})
	took := time.Since(start)
	stop.Store(true)
	wg.Wait()
	t.Logf("UpdateRule of a rule governing %d pools: %v; %d Adds on another node meanwhile", campaigns*campaignBound, took, adds.Load())
	require.NoError(t, err, "UpdateRule of a rule governing %d campaigns of %d pools", campaigns, campaignBound)
	require.Equal(t, 5, got.MaxTotalCalls)
	require.Empty(t, addErrs, "another node's Adds during the update")
}

// bulkAttachPools makes n FIFO pools in schema's tables and attaches them
// to campaign id, which is In Process, in one statement on conn: the rows
// the store's InsertPool and AttachPool write (a pool, its counts, an
// attachment that governs), without their 2n round trips (through the
// store, 13,000 pools took 21 s on a quiet machine and up to 122 s in CI,
// for a test of one UpdateRule). search is the store's case folding of
// name and description, which for ASCII is upper().
func bulkAttachPools(t *testing.T, conn *pgx.Conn, schema string, id uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UnixNano()
	table := func(name string) string { return pgx.Identifier{schema, name}.Sanitize() }
	tag, err := conn.Exec(ctx, `WITH p AS (
    INSERT INTO `+table("pools")+` (uuid, name, description, type, max_parallel_items, max_retries,
        is_active, created_at, updated_at, search)
    SELECT gen_random_uuid(), 'pool ' || i, 'bound', 'FIFO', 1, 3, true, $2, $2, upper('pool ' || i || E'\nbound')
    FROM generate_series(1, $3::int) i
    RETURNING id
), counts AS (
    INSERT INTO `+table("pool_counts")+` (pool_id) SELECT id FROM p RETURNING pool_id
)
INSERT INTO `+table("campaign_pools")+` (campaign_id, pool_id, seq, governs)
SELECT c.id, counts.pool_id, row_number() OVER (ORDER BY counts.pool_id), true
FROM counts, `+table("campaigns")+` c WHERE c.uuid = $1`, id, now, n)
	require.NoError(t, err)
	require.EqualValues(t, n, tag.RowsAffected(), "pools attached to campaign %v", id)
}
