package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
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
