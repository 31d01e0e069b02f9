package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// skewedStore returns a file store as a dialer's looks after weeks of
// work: pool 1 holds 50,000 items, 96% of them Completed or Failed, 300
// Pending, 500 Retrying and 200 Scheduled for later, 100 in flight; 20
// small pools of 50 Pending items each; 200 campaigns, pool 1 attached
// to 100 finished ones and governed by one In Process, each small pool
// attached to ten finished ones. It returns the store and the UUIDs of
// its pools, pool 1's first.
func skewedStore(t *testing.T) (*sqlite.Store, []uuid.UUID) {
	t.Helper()
	ctx := context.Background()
	st, _ := MustOpenFile(t, sqlite.Options{})
	pools := []uuid.UUID{insertPool(t, st, 50_000).UUID}
	for range 20 {
		pools = append(pools, insertPool(t, st, 50).UUID)
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		for i := range 200 {
			c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: campaign.Completed, TimeZone: "UTC",
				CreatedAt: testT0.Add(time.Duration(i) * time.Second), UpdatedAt: testT0}
			if i == 199 {
				c.Status = campaign.InProcess
			}
			if err := tx.InsertCampaign(ctx, c); err != nil {
				return err
			}
			attach := []uuid.UUID{pools[1+i%20]}
			if i >= 99 {
				attach = []uuid.UUID{pools[0]}
			}
			for _, p := range attach {
				if _, err := tx.AttachPool(ctx, c.UUID, p); err != nil {
					return err
				}
			}
		}
		return nil
	}))
	// Pool 1's items by id % 1000: 0-5 Pending, 6-15 Retrying, 16-19
	// Scheduled (both an hour or more ahead), 20 Processing, 21 In_Call,
	// up to 599 Completed, the rest Failed. pool_counts follows.
	now := testT0.UnixMilli()
	for _, q := range []string{
		fmt.Sprintf(`UPDATE items SET status = CASE
    WHEN id %% 1000 < 6 THEN 'Pending'
    WHEN id %% 1000 < 16 THEN 'Retrying'
    WHEN id %% 1000 < 20 THEN 'Scheduled'
    WHEN id %% 1000 = 20 THEN 'Processing'
    WHEN id %% 1000 = 21 THEN 'In_Call'
    WHEN id %% 1000 < 600 THEN 'Completed'
    ELSE 'Failed' END,
  ready = (id %% 1000 < 6),
  attempts = (id %% 1000 >= 6), retry_count = (id %% 1000 >= 6 AND id %% 1000 < 20),
  next_retry_at = CASE WHEN id %% 1000 >= 6 AND id %% 1000 < 20 THEN %d + id * 1000 END,
  lease_expires_at = CASE WHEN id %% 1000 IN (20, 21) THEN %d + id END,
  token = (id %% 1000 IN (20, 21)),
  completed_at = CASE WHEN id %% 1000 >= 22 AND id %% 1000 < 600 THEN %d END,
  failed_at = CASE WHEN id %% 1000 >= 600 THEN %d END
WHERE pool_id = 1`, now+3_600_000, now+60_000, now, now),
		`UPDATE pool_counts SET n = (SELECT count(*) FROM items i WHERE i.pool_id = pool_counts.pool_id AND i.status = pool_counts.status)`,
	} {
		_, err := sqlite.WriterConn(st).ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	return st, pools
}

// TestSchema_QueryPlansAnalyzed: the plans TestSchema_QueryPlans checks
// hold once the file has statistics (sqlite_stat1), as after an
// operator's ANALYZE or an application's PRAGMA optimize, on a pool whose
// items are mostly finished: no statement leaves its index for another
// the statistics make look cheaper (items_pool_status, a scan).
func TestSchema_QueryPlansAnalyzed(t *testing.T) {
	if raceEnabled {
		t.Skip("a plan test: one goroutine's SQL, run without -race (see raceEnabled)")
	}
	t.Parallel()
	ctx := context.Background()
	for _, stmt := range []string{"ANALYZE", "PRAGMA optimize"} {
		t.Run(stmt, func(t *testing.T) {
			t.Parallel()
			st, _ := skewedStore(t)
			w := sqlite.WriterConn(st)
			// The statements PRAGMA optimize looks at: those this
			// connection prepared.
			t.Run("Before", func(t *testing.T) { checkPlans(t, w, planCases, false) })
			_, err := w.ExecContext(ctx, stmt)
			require.NoError(t, err)
			var n int
			require.NoError(t, w.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'items'`).Scan(&n))
			require.Positive(t, n, "items has statistics")
			t.Run("After", func(t *testing.T) { checkPlans(t, w, planCases, true) })
		})
	}
}
