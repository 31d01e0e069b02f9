package queue_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_TwoStoresSeeEachOthersChanges: engine a (its own store) knows
// a pool from its last transaction; engine b (another store on the same
// file, as another process) changes the pool's settings, deletes it,
// pauses its campaign, changes the rule, marks a contact DNC. a's next
// dispatch must follow what b committed, not what a's store kept.
func TestEngine_TwoStoresSeeEachOthersChanges(t *testing.T) {
	t.Parallel()
	for _, check := range []bool{true, false} {
		t.Run(fmt.Sprintf("CheckCache=%v", check), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "shared.db")
			open := func() *queue.Engine {
				st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: check})
				require.NoError(t, err)
				t.Cleanup(func() { _ = st.Close() })
				return openEngine(t, st, queue.Options{LeaseTimeout: time.Minute, RetryDelay: queue.MinRetryDelay})
			}
			a, b := open(), open()

			// Type switch: FIFO to LIFO.
			p, err := a.CreatePool(ctx, pool.CreateParams{Name: "switch", Description: "d", Type: pool.FIFO})
			require.NoError(t, err)
			items := newItems(4)
			_, err = a.Add(ctx, p.UUID, items...)
			require.NoError(t, err)
			l, err := a.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)
			require.Equal(t, items[0].ContactUUID, l.ContactUUID)
			require.NoError(t, a.Complete(ctx, l, "ok"))
			_, err = b.UpdatePool(ctx, p.UUID, pool.UpdateParams{Type: pqPtr(pool.LIFO)})
			require.NoError(t, err)
			l, err = a.TryDequeue(ctx, p.UUID)
			require.NoError(t, err)
			require.Equal(t, items[3].ContactUUID, l.ContactUUID, "a must dispatch in the order b switched to")

			// Cap lowered to 1 (LIFO is serial already): switch to Parallel cap 3, then lower.
			_, err = b.UpdatePool(ctx, p.UUID, pool.UpdateParams{Type: pqPtr(pool.Parallel), MaxParallelItems: pqPtr(3)})
			require.NoError(t, err)
			l2, err := a.TryDequeue(ctx, p.UUID)
			require.NoError(t, err, "a must see the Parallel cap b set")
			_, err = b.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxParallelItems: pqPtr(1)})
			require.NoError(t, err)
			_, err = a.TryDequeue(ctx, p.UUID)
			require.ErrorIs(t, err, queue.ErrAtCapacity, "a must see the cap b lowered")
			require.NoError(t, b.Complete(ctx, l, "ok"))
			_, err = a.TryDequeue(ctx, p.UUID)
			require.ErrorIs(t, err, queue.ErrAtCapacity, "one still in flight, cap 1")
			require.NoError(t, b.Fail(ctx, l2, queue.Failure{Note: "busy"}))

			// max_retries lowered to 0: l2's item (1 attempt, Retrying) fails at dispatch.
			_, err = b.UpdatePool(ctx, p.UUID, pool.UpdateParams{MaxRetries: pqPtr(0)})
			require.NoError(t, err)
			time.Sleep(time.Millisecond)
			for {
				l, err = a.TryDequeue(ctx, p.UUID)
				if err != nil {
					break
				}
				require.NotEqual(t, l2.ContactUUID, l.ContactUUID, "dispatched beyond the ceiling b lowered")
				require.NoError(t, a.Complete(ctx, l, "ok"))
			}
			require.ErrorIs(t, err, queue.ErrEmpty)
			it, err := b.Item(ctx, p.UUID, l2.ContactUUID)
			require.NoError(t, err)
			require.Equal(t, pool.StatusFailed, it.Status)

			// Delete by b, then a new pool by b: a must not dispatch the old one.
			_, err = b.Requeue(ctx, p.UUID, l2.ContactUUID)
			require.NoError(t, err)
			require.NoError(t, b.DeletePool(ctx, p.UUID))
			_, err = a.TryDequeue(ctx, p.UUID)
			require.ErrorIs(t, err, store.ErrNotFound)
			q, err := b.CreatePool(ctx, pool.CreateParams{Name: "again", Description: "d", Type: pool.FIFO})
			require.NoError(t, err)
			_, err = b.Add(ctx, q.UUID, newItems(2)...)
			require.NoError(t, err)
			_, err = a.TryDequeue(ctx, p.UUID)
			require.ErrorIs(t, err, store.ErrNotFound)
			lq, err := a.TryDequeue(ctx, q.UUID)
			require.NoError(t, err)
			_, err = a.TryDequeue(ctx, q.UUID)
			require.ErrorIs(t, err, queue.ErrAtCapacity)
			d, err := b.DuplicatePool(ctx, q.UUID, pool.DuplicateParams{})
			require.NoError(t, err)
			ld, err := a.TryDequeue(ctx, d.UUID)
			require.NoError(t, err)
			require.NoError(t, a.Complete(ctx, ld, "ok"))
			require.NoError(t, a.Complete(ctx, lq, "ok"))

			// Campaign: paused by b, rule changed by b, DNC by b.
			r, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule", MaxTotalCalls: pqPtr(5), DNCCheck: pqPtr(true),
				StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
			require.NoError(t, err)
			c, err := a.CreateCampaign(ctx, campaign.CreateParams{Name: "camp", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
			require.NoError(t, err)
			cp, err := a.CreatePool(ctx, pool.CreateParams{Name: "camp pool", Description: "d", Type: pool.FIFO, MaxRetries: pqPtr(10)})
			require.NoError(t, err)
			citems := newItems(3)
			_, err = a.Add(ctx, cp.UUID, citems...)
			require.NoError(t, err)
			_, err = a.AttachPools(ctx, c.UUID, cp.UUID)
			require.NoError(t, err)
			_, err = a.StartCampaign(ctx, c.UUID)
			require.NoError(t, err)
			lc, err := a.TryDequeue(ctx, cp.UUID)
			require.NoError(t, err)
			require.NoError(t, a.Fail(ctx, lc, queue.Failure{Note: "busy", RetryAt: time.Now()}))
			_, err = b.PauseCampaign(ctx, c.UUID)
			require.NoError(t, err)
			_, err = a.TryDequeue(ctx, cp.UUID)
			require.ErrorIs(t, err, queue.ErrHeld, "a must see the campaign b paused")
			_, err = b.ResumeCampaign(ctx, c.UUID)
			require.NoError(t, err)
			_, err = b.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(1)})
			require.NoError(t, err)
			_, err = b.AddDNC(ctx, citems[1].ContactUUID)
			require.NoError(t, err)
			l, err = a.TryDequeue(ctx, cp.UUID)
			require.NoError(t, err)
			require.Equal(t, citems[2].ContactUUID, l.ContactUUID, "the first is at the rule's new ceiling, the second DNC")
			for i, want := range []pool.Status{pool.StatusFailed, pool.StatusSkipped, pool.StatusProcessing} {
				it, err := b.Item(ctx, cp.UUID, citems[i].ContactUUID)
				require.NoError(t, err)
				require.Equal(t, want, it.Status, "item %d", i)
			}
			for _, e := range []*queue.Engine{a, b} {
				for _, id := range []pool.Pool{q, cp} {
					items := allItems(ctx, t, e, id.UUID, 100)
					dd, err := e.Pool(ctx, id.UUID)
					require.NoError(t, err)
					require.Equal(t, countStatuses(items), dd.StatusCounts)
					require.Equal(t, len(items), dd.ContactsCount)
				}
			}
		})
	}
}
