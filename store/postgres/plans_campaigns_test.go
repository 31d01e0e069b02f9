package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPlans_PoolCampaigns: every claim reads what governs its pool
// (govern, through PoolDue's round trip), so that read must be a seek in
// campaign_pools_governs and campaign_pools_pool, whatever the number of
// campaigns in the store or attached to the pool. Here the store holds
// 3,000 campaigns, 301 of them attached to the pool (300 Completed, one In
// Process), and 2,000 attachments of other pools: the plan must start from
// the pool's entries of campaign_pools, never walk campaigns_created (the
// index of the ORDER BY) across every campaign and filter the join, and
// the governing campaign must be found without reading the finished ones.
// Checked as TestPlans does (generic plans, the tables filled and not
// analyzed) and again once they are analyzed.
//
// With an ORDER BY c.created_at, c.uuid both plans walked
// campaigns_created from its first entry, with the pool's campaign_pools
// rows as the inner side of a nested loop, so a claim on any pool, one
// attached to no campaign included, read every campaign of the store
// (20,000 campaigns made a claim's reads 8x slower, ANALYZE or not);
// TestPlans' check of "pool campaigns" missed it: an index scan without
// an Index Cond is not a Seq Scan. The store now sorts the rows itself.
func TestPlans_PoolCampaigns(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	p := newTestPool("campaign plans")
	now := time.Now().UTC()
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		if _, err := tx.InsertItems(ctx, p.UUID, pendingItems(100)); err != nil {
			return err
		}
		others := make([]uuid.UUID, 100)
		for i := range others {
			o := newTestPool("other")
			if err := tx.InsertPool(ctx, o); err != nil {
				return err
			}
			others[i] = o.UUID
		}
		// 3,000 campaigns; pool p attached to one, the other pools to 20
		// each (2,000 attachments).
		for i := range 3000 {
			c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: campaign.Draft, TimeZone: "UTC",
				CreatedAt: now.Add(time.Duration(i) * time.Millisecond), UpdatedAt: now}
			switch {
			case i == 1500:
				c.Status = campaign.InProcess
			case i >= 1200 && i < 1500:
				c.Status = campaign.Completed
			}
			if err := tx.InsertCampaign(ctx, c); err != nil {
				return err
			}
			id := p.UUID
			switch {
			case i >= 1200 && i <= 1500:
			case i < 2000:
				id = others[i%len(others)]
			default:
				continue
			}
			if _, err := tx.AttachPool(ctx, c.UUID, id); err != nil {
				return err
			}
		}
		return nil
	}))
	var k int64
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		return postgres.QueryRow(ctx, tx, fmt.Sprintf("SELECT id FROM pools WHERE uuid = '%s'", p.UUID), &k)
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		gov, attached, err := tx.PoolGovernors(ctx, p.UUID)
		require.True(t, attached)
		require.Len(t, gov, 1)
		require.Equal(t, campaign.InProcess, gov[0].Status)
		return err
	}))
	check := func(when string) {
		for _, s := range postgres.PoolCampaignsStatements {
			arg := strings.ReplaceAll(s.Arg, "$K", fmt.Sprint(k))
			arg = strings.ReplaceAll(arg, "$U", "'"+p.UUID.String()+"'")
			plan, err := postgres.Plan(ctx, st, s.SQL, arg)
			require.NoError(t, err, s.Name)
			require.Contains(t, plan, s.Index, "%s, %s: a seek of the pool's attachments:\n%s", s.Name, when, plan)
			require.NotContains(t, plan, "campaigns_created", "%s, %s: a walk of every campaign:\n%s", s.Name, when, plan)
			require.NotContains(t, plan, "Seq Scan", "%s, %s:\n%s", s.Name, when, plan)
		}
	}
	check("not analyzed")

	conn := postgres.SchemaConn(t, url, st.Schema())
	_, err := conn.Exec(ctx, "ANALYZE pools, campaigns, campaign_pools, rules")
	require.NoError(t, err)
	check("analyzed")
}
