package queue_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
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
	for i := range campaigns {
		// Running campaigns of r, their pools attached through the store
		// (13,000 CreatePools and starts would take long).
		ids := insertPools(t, st, campaignBound)
		c, err := campaign.New(uuid.Must(uuid.NewV7()), campaign.CreateParams{Name: "campaign " + strconv.Itoa(i),
			RuleUUID: &r.UUID, TimeZone: "UTC"}, time.Now().UTC())
		require.NoError(t, err)
		c.Status = campaign.InProcess
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertCampaign(ctx, c) }))
		attachRaw(t, st, c.UUID, ids)
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
