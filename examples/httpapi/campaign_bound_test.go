package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestCampaigns_AttachPastTheBound: POST /campaigns/{uuid}/pools that would
// leave a campaign with more than queue.MaxPoolsPerCampaign pools is a 422
// on pool_uuids naming the bound, and attaches nothing; the same body once
// a pool is detached is a 200.
func TestCampaigns_AttachPastTheBound(t *testing.T) {
	t.Parallel()
	var st store.Store
	b := setupOver(t, func(s store.Store) store.Store { st = s; return s })
	ctx := context.Background()
	// The campaign's pools through the store, in one transaction: a
	// thousand POSTs would take seconds.
	ids := make([]uuid.UUID, queue.MaxPoolsPerCampaign+1)
	now := time.Now().UTC().Truncate(time.Second)
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		for i := range ids {
			ids[i] = uuid.Must(uuid.NewV7())
			err := tx.InsertPool(ctx, pool.Pool{UUID: ids[i], Name: fmt.Sprintf("pool %d", i), Description: "bound",
				Type: pool.FIFO, MaxParallelItems: 1, MaxRetries: 3, IsActive: true, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				return err
			}
		}
		return nil
	}))
	c := b.createCampaign("Full", nil)
	_, err := b.eng.AttachPools(ctx, c.UUID, ids[:queue.MaxPoolsPerCampaign]...)
	require.NoError(t, err)

	path := "/api/v1/campaigns/" + c.UUID.String() + "/pools"
	body := `{"pool_uuids": ["` + ids[0].String() + `", "` + ids[queue.MaxPoolsPerCampaign].String() + `"]}`
	res := b.do("POST", path, body)
	requireInvalid(t, res, "pool_uuids")
	require.Contains(t, res.Env.Error.Details, fmt.Sprintf("at most %d pools", queue.MaxPoolsPerCampaign), "body: %s", res.Body)
	got, err := b.eng.Campaign(ctx, c.UUID)
	require.NoError(t, err)
	require.Len(t, got.PoolUUIDs, queue.MaxPoolsPerCampaign, "nothing attached")

	res = b.do("DELETE", path+"/"+ids[1].String(), nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	res = b.do("POST", path, body)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
}

// TestCampaigns_AttachCountsEachPoolOnce: a pool named many times in one
// POST /campaigns/{uuid}/pools is one pool (the handler refused more than
// 100 elements, the listings' page size, repeats counted: a bound
// documented nowhere); more than queue.MaxPoolsPerCall distinct ones is a
// 422 on pool_uuids, the engine's, nothing attached.
func TestCampaigns_AttachCountsEachPoolOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	c := b.createCampaign("Spring", nil)
	path := "/api/v1/campaigns/" + c.UUID.String() + "/pools"

	t.Run("TooMany", func(t *testing.T) {
		ids := make([]uuid.UUID, queue.MaxPoolsPerCall+1)
		for i := range ids {
			ids[i] = uuid.New()
		}
		b.unchanged(func() {
			res := b.do("POST", path, map[string]any{"pool_uuids": ids})
			requireInvalid(t, res, "pool_uuids")
			require.Contains(t, res.Env.Error.Details, fmt.Sprintf("at most %d pools", queue.MaxPoolsPerCall), "body: %s", res.Body)
		})
	})

	t.Run("Repeated", func(t *testing.T) {
		ids := make([]uuid.UUID, queue.MaxPoolsPerCall+1)
		for i := range ids {
			ids[i] = p.UUID
		}
		res := b.do("POST", path, map[string]any{"pool_uuids": ids})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, 1, data[campaign.AttachResult](t, res).PoolsAttached)
	})
}

// TestCampaigns_AttachListsAtMost20BadElements: of 30 malformed elements
// of pool_uuids, the 422 lists the first 20 by index and counts the rest
// against the list, as POST …/contacts and POST /dnc do (it listed all 30).
func TestCampaigns_AttachListsAtMost20BadElements(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.createCampaign("Spring", nil)
	ids := make([]any, 30)
	for i := range ids {
		ids[i] = fmt.Sprintf("bad-%d", i)
	}
	ids[3] = 7 // of the wrong type: listed by decode, within the same 20
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": ids})
		requireInvalid(t, res, "pool_uuids[3]", listed("pool_uuids", 0, 20)...) // decode's first
		require.Contains(t, res.Env.Error.Details, "pool_uuids[3]: must be a string, not number")
		require.Contains(t, res.Env.Error.Details, "10 more invalid UUIDs not listed")
	})
}
