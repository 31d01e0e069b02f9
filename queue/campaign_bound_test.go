package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// campaignBound is the most pools a campaign may have attached.
const campaignBound = queue.MaxPoolsPerCampaign

// onBothStoresRaw runs fn on an engine over a SQLite file store and over a
// PostgreSQL store (when POOLQ_TEST_POSTGRES is set), with the store
// itself, for set-ups the engine would take long over (or refuse).
func onBothStoresRaw(t *testing.T, fn func(t *testing.T, eng *queue.Engine, st store.Store)) {
	t.Helper()
	t.Run("SQLite", func(t *testing.T) {
		oneGoroutine(t)
		st := openFileStore(t, "")
		fn(t, openEngine(t, st, queue.Options{}), st)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		oneGoroutine(t)
		st := pgtest.Open(t, url, postgres.Options{MaxConns: 4})
		fn(t, openEngine(t, st, queue.Options{}), st)
	})
}

// insertPools stores n active pools through st, in one transaction (a
// thousand CreatePools would take seconds), and returns their UUIDs.
func insertPools(t *testing.T, st store.Store, n int) []uuid.UUID {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	ids := make([]uuid.UUID, n)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		for i, id := range ids {
			err := tx.InsertPool(ctx, pool.Pool{UUID: id, Name: fmt.Sprintf("pool %d", i), Description: "bound",
				Type: pool.FIFO, MaxParallelItems: 1, MaxRetries: 3, IsActive: true, CreatedAt: now, UpdatedAt: now})
			if err != nil {
				return err
			}
		}
		return nil
	}))
	return ids
}

// attachRaw attaches pools to campaign id through st, bypassing the
// engine's checks (a campaign made by an older poolq), in transactions of
// campaignBound pools (on PostgreSQL each holds a lock per pool).
func attachRaw(t *testing.T, st store.Store, id uuid.UUID, pools []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	for len(pools) > 0 {
		chunk := pools[:min(len(pools), campaignBound)]
		pools = pools[len(chunk):]
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			for _, p := range chunk {
				if _, err := tx.AttachPool(ctx, id, p); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// requirePastBound checks that err is AttachPools' refusal of a campaign
// left with more than campaignBound pools: a field error on pool_uuids
// naming the bound and the count the call would have left.
func requirePastBound(t *testing.T, err error, would int) {
	t.Helper()
	require.ErrorIs(t, err, validate.ErrInvalid)
	var ve validate.Errors
	require.True(t, errors.As(err, &ve), "a validate.Errors: %v", err)
	require.Len(t, ve, 1, "%v", err)
	require.Equal(t, "pool_uuids", ve[0].Field)
	require.Contains(t, ve[0].Message, fmt.Sprint(campaignBound), "names the bound")
	require.Contains(t, ve[0].Message, fmt.Sprint(would), "names the count the call would leave")
}

// campaignPools returns how many pools campaign id has attached.
func campaignPools(t *testing.T, eng *queue.Engine, id uuid.UUID) int {
	t.Helper()
	c, err := eng.Campaign(context.Background(), id)
	require.NoError(t, err)
	return len(c.PoolUUIDs)
}

// TestAttachPools_AtMostMaxPoolsPerCampaign: a campaign takes pools up to
// the bound, over several calls; pools attached already, duplicates and
// unknown pools in a call do not count; an attach that would leave it past
// the bound is a field error on pool_uuids and attaches nothing (before
// the bound, a campaign of 13,000 pools could be neither started nor
// deleted on PostgreSQL: "out of shared memory").
func TestAttachPools_AtMostMaxPoolsPerCampaign(t *testing.T) {
	onBothStoresRaw(t, func(t *testing.T, eng *queue.Engine, st store.Store) {
		ctx := context.Background()
		ids := insertPools(t, st, campaignBound+2)
		c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "bounded"})
		require.NoError(t, err)

		res, err := eng.AttachPools(ctx, c.UUID, ids[:600]...)
		require.NoError(t, err)
		require.Equal(t, 600, res.PoolsAttached)

		// 100 attached already, one duplicate, one unknown: 400 new, 1,000 in all.
		unknown := uuid.New()
		call := append(append([]uuid.UUID{}, ids[500:campaignBound]...), ids[700], unknown)
		res, err = eng.AttachPools(ctx, c.UUID, call...)
		require.NoError(t, err, "the bound reached, not passed")
		require.Equal(t, campaign.AttachResult{PoolsAttached: 400, PoolsSkipped: 100, PoolUUIDsNotFound: []uuid.UUID{unknown}}, res)
		require.Equal(t, campaignBound, campaignPools(t, eng, c.UUID))

		_, err = eng.AttachPools(ctx, c.UUID, ids[campaignBound])
		requirePastBound(t, err, campaignBound+1)
		_, err = eng.AttachPools(ctx, c.UUID, ids[0], ids[campaignBound], ids[campaignBound+1], ids[campaignBound])
		requirePastBound(t, err, campaignBound+2)
		require.Equal(t, campaignBound, campaignPools(t, eng, c.UUID), "a refused attach attaches nothing")

		// A call that attaches nothing new is no attach past the bound.
		res, err = eng.AttachPools(ctx, c.UUID, ids[0], ids[1], unknown)
		require.NoError(t, err)
		require.Equal(t, campaign.AttachResult{PoolsSkipped: 2, PoolUUIDsNotFound: []uuid.UUID{unknown}}, res)

		// A pool detached makes room for one.
		detached, err := eng.DetachPool(ctx, c.UUID, ids[0])
		require.NoError(t, err)
		require.True(t, detached)
		res, err = eng.AttachPools(ctx, c.UUID, ids[campaignBound])
		require.NoError(t, err)
		require.Equal(t, 1, res.PoolsAttached)
		require.Equal(t, campaignBound, campaignPools(t, eng, c.UUID))
	})
}

// TestAttachPools_PastTheBoundAlready: a campaign that an older poolq let
// past the bound keeps working (start, pause, detach, delete), takes no
// new pool until it is back under the bound, and a repeated attach of its
// own pools still succeeds.
func TestAttachPools_PastTheBoundAlready(t *testing.T) {
	onBothStoresRaw(t, func(t *testing.T, eng *queue.Engine, st store.Store) {
		ctx := context.Background()
		ids := insertPools(t, st, campaignBound+3)
		c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "past the bound"})
		require.NoError(t, err)
		attachRaw(t, st, c.UUID, ids[:campaignBound+1])

		_, err = eng.StartCampaign(ctx, c.UUID)
		require.NoError(t, err)
		_, err = eng.PauseCampaign(ctx, c.UUID)
		require.NoError(t, err)

		_, err = eng.AttachPools(ctx, c.UUID, ids[campaignBound+1])
		requirePastBound(t, err, campaignBound+2)
		res, err := eng.AttachPools(ctx, c.UUID, ids[:3]...)
		require.NoError(t, err, "its own pools again: nothing new")
		require.Equal(t, 3, res.PoolsSkipped)

		for _, p := range ids[:2] {
			detached, err := eng.DetachPool(ctx, c.UUID, p)
			require.NoError(t, err)
			require.True(t, detached)
		}
		require.Equal(t, campaignBound-1, campaignPools(t, eng, c.UUID))
		_, err = eng.AttachPools(ctx, c.UUID, ids[campaignBound+1], ids[campaignBound+2])
		requirePastBound(t, err, campaignBound+1)
		res, err = eng.AttachPools(ctx, c.UUID, ids[campaignBound+1])
		require.NoError(t, err, "back under the bound")
		require.Equal(t, 1, res.PoolsAttached)

		_, err = eng.CompleteCampaign(ctx, c.UUID)
		require.NoError(t, err)
		require.NoError(t, eng.DeleteCampaign(ctx, c.UUID))
	})
}

// TestAttachPools_BoundRace: two engines, each on its own store over one
// database, attach a different pool at once to a campaign one pool short
// of the bound: one attach succeeds, the other is refused, whichever
// commits first (the count is read inside the write transaction, under
// the campaign's lock on PostgreSQL, SQLite's one writer on a file).
func TestAttachPools_BoundRace(t *testing.T) {
	race := func(t *testing.T, engines [2]*queue.Engine, st store.Store) {
		ctx := context.Background()
		ids := insertPools(t, st, campaignBound+1)
		c, err := engines[0].CreateCampaign(ctx, campaign.CreateParams{Name: "raced"})
		require.NoError(t, err)
		attachRaw(t, st, c.UUID, ids[:campaignBound-1])

		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range engines {
			wg.Go(func() {
				_, errs[i] = engines[i].AttachPools(ctx, c.UUID, ids[campaignBound-1+i])
			})
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			if err != nil {
				requirePastBound(t, err, campaignBound+1)
				refused++
			}
		}
		require.Equal(t, 1, refused, "one attach of the two: %v", errs)
		require.Equal(t, campaignBound, campaignPools(t, engines[1], c.UUID))
	}
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "poolq.db")
		a, b := openFileStore(t, path), openFileStore(t, path)
		race(t, [2]*queue.Engine{openEngine(t, a, queue.Options{}), openEngine(t, b, queue.Options{})}, a)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		engines, stores := pgEngines(t, url, 2, queue.Options{})
		race(t, [2]*queue.Engine{engines[0], engines[1]}, stores[0])
	})
}
