package queue_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// The claims that commit long after they were judged (see lateClaimSlack
// in dispatch.go); TestPostgres_LateClaimGivesItsLeasesBack has the real
// case, a commit's answer learned late on PostgreSQL.

// TestEngine_LateClaimGiveBackTriedAgain: a claim that commits long after
// it was judged (here its answer 2.2 s late) gives its leases back; the
// first release fails (the database busy for a moment, as it just was) and
// is tried again, so the item is not left in flight, held by no one, to
// come back at its lease's end as a failed attempt (under max_retries 0,
// Failed, never called). The dequeue then looks again and gets the item,
// its given-back attempt uncounted. (The release was tried once.)
func TestEngine_LateClaimGiveBackTriedAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	fs := &failingStore{Store: st, once: true}
	eng, err := queue.New(fs, queue.Options{LeaseTimeout: 10 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	zero := 0
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "late", Description: "d", MaxRetries: &zero})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	fs.after = func() { time.Sleep(2200 * time.Millisecond) } // the claim's answer, late
	fs.armed.Store(true)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err, "the give-back tried again, the next look claims the item")
	require.Equal(t, c, l.ContactUUID)
	require.Equal(t, 1, l.Attempt, "the late claim's attempt was given back")
	require.NoError(t, eng.Complete(ctx, l, ""))
}

// TestEngine_LateClaimsBound: a store that commits every claim late fails
// a dequeue after maxLateClaims (3) late claims in a row, each given back,
// also after transactions that only deferred items (a rule's DNC contacts
// at the head of the pool, a thousand a transaction). (Those counted
// against the bound, which was checked for equality: past 3,000 deferred
// items it never fired, and the call claimed and gave back the same item
// for as long as its context lasted.)
func TestEngine_LateClaimsBound(t *testing.T) {
	t.Parallel()
	for _, deferred := range []int{0, 3500} {
		t.Run(fmt.Sprintf("Deferred=%d", deferred), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			clk := &tickingClock{t: time.Date(2026, 3, 2, 0, 1, 0, 0, time.UTC), step: 3 * time.Second}
			eng := openEngine(t, openFileStore(t, ""), queue.Options{Now: clk.Now})
			start, end := "00:00", "23:59"
			r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "DNC checked", StartTime: &start, EndTime: &end, DNCCheck: pqPtr(true)})
			require.NoError(t, err)
			c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "Late claims", RuleUUID: &r.UUID})
			require.NoError(t, err)
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "late", Description: "d", Type: pool.Parallel})
			require.NoError(t, err)
			items := newItems(deferred + 1) // the DNC contacts first, then one to call
			dnc := make([]uuid.UUID, deferred)
			for i := range dnc {
				dnc[i] = items[i].ContactUUID
			}
			if deferred > 0 {
				_, err = eng.AddDNC(ctx, dnc...)
				require.NoError(t, err)
			}
			_, err = eng.Add(ctx, p.UUID, items...)
			require.NoError(t, err)
			_, err = eng.AttachPools(ctx, c.UUID, p.UUID)
			require.NoError(t, err)
			_, err = eng.StartCampaign(ctx, c.UUID)
			require.NoError(t, err)

			dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			before := eng.Stats().Transactions
			_, err = eng.DequeueN(dctx, p.UUID, 5)
			require.ErrorContains(t, err, "3 times in a row")
			// The deferrals (4 transactions), then 3 claims, each followed
			// by the release of its lease.
			require.LessOrEqual(t, eng.Stats().Transactions-before, uint64(12))
			it, err := eng.Item(ctx, p.UUID, items[deferred].ContactUUID)
			require.NoError(t, err)
			require.Equal(t, pool.StatusPending, it.Status, "given back")
			require.Zero(t, it.Attempts, "given back, unattempted")
		})
	}
}
