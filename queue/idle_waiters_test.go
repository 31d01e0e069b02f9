package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// bothStores runs fn as a subtest on a new in-memory SQLite store, and on
// a new PostgreSQL store when POOLQ_TEST_POSTGRES names a server (as
// eachStore does, for tests whose calls run on many goroutines).
func bothStores(t *testing.T, fn func(t *testing.T, st store.Store)) {
	t.Run("SQLite", func(t *testing.T) {
		st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{CheckCache: true})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		fn(t, st)
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		fn(t, pgtest.Open(t, pgtest.URL(t), postgres.Options{}))
	})
}

// TestIdleWaiters_PollWithoutWriting: a waiter blocked on a pool with
// nothing to give (a Dequeue, a Work on that pool, a Work on all of them;
// the pool empty, full, waiting for a retry, or held by its campaign)
// looks at its safety poll with one read transaction, and makes no write
// transaction. A dialer keeps hundreds to thousands of pools, most of them
// empty, each with a waiter: a claim at each poll cost the store a write
// a waiter a second (PollInterval), which group commit ran beside the busy
// pools' claims and settlements; on PostgreSQL 2,000 idle Dequeues cut a
// busy pool's 16 workers from about 5,400 to 2,200-2,600 items a second
// (README, "Many pools").
func TestIdleWaiters_PollWithoutWriting(t *testing.T) {
	const (
		pools = 12
		poll  = 20 * time.Millisecond
		watch = 300 * time.Millisecond
	)
	for _, kind := range []string{"Dequeue", "WorkOnePool", "WorkAllPools"} {
		t.Run(kind, func(t *testing.T) {
			bothStores(t, func(t *testing.T, st store.Store) {
				cs := &txCountStore{Store: st}
				eng := openEngine(t, cs, queue.Options{PollInterval: poll})
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				b := &testBundle{ctx: context.Background(), eng: eng}
				ids := b.emptyPools(t, pools)
				// One pool full (its one slot leased for an hour), one with
				// a retry due in an hour: neither may give before then.
				full := b.pool(t, pool.FIFO, 1, 3).UUID
				b.add(t, full, 2)
				_, err := eng.TryDequeue(ctx, full)
				require.NoError(t, err)
				later := b.pool(t, pool.FIFO, 1, 3).UUID
				b.add(t, later, 1)
				l, err := eng.TryDequeue(ctx, later)
				require.NoError(t, err)
				require.NoError(t, eng.Fail(ctx, l, queue.Failure{RetryAt: time.Now().Add(time.Hour)}))
				// One pool with an item due, held by the draft campaign it
				// is attached to.
				held := b.pool(t, pool.FIFO, 1, 3).UUID
				b.add(t, held, 1)
				rule, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "a rule"})
				require.NoError(t, err)
				c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "a draft", RuleUUID: &rule.UUID})
				require.NoError(t, err)
				_, err = eng.AttachPools(ctx, c.UUID, held)
				require.NoError(t, err)
				ids = append(ids, full, later, held)

				ops := eng.Stats().Operations
				got := make(chan *queue.Lease, len(ids))
				done := make(chan error, len(ids))
				handler := func(ctx context.Context, l *queue.Lease) error { got <- l; return nil }
				switch kind {
				case "Dequeue":
					for _, id := range ids {
						go func() {
							l, err := eng.Dequeue(ctx, id)
							if err == nil {
								got <- l
							}
							done <- err
						}()
					}
				case "WorkOnePool":
					for _, id := range ids {
						go func() { done <- eng.Work(ctx, handler, queue.WorkOptions{Pools: []uuid.UUID{id}, Grace: time.Second}) }()
					}
				case "WorkAllPools":
					go func() { done <- eng.Work(ctx, handler, queue.WorkOptions{Pools: ids, Grace: time.Second}) }()
				}
				require.True(t, waitUntil(5*time.Second, func() bool {
					for _, id := range ids {
						if queue.Waiting(eng, id) == 0 {
							return false
						}
					}
					return true
				}), "every pool has its waiter")
				// A waiter's first look is a claim (Work on all pools reads
				// first, and claims in the held pool alone).
				firsts := uint64(len(ids))
				if kind == "WorkAllPools" {
					firsts = 1
				}
				require.True(t, waitUntil(10*time.Second, func() bool { return eng.Stats().Operations-ops >= firsts }), "the first looks")
				reads, writes := cs.quietWrites(10 * poll)
				time.Sleep(watch)
				r, w := cs.reads.Load(), cs.writes.Load()
				waiters := len(ids)
				if kind == "WorkAllPools" {
					waiters = 1
				}
				polls := int64(waiters) * int64(watch/poll)
				t.Logf("%d waiters, %v: %d write transactions, %d read transactions (%d polls at most)", waiters, watch, w-writes, r-reads, polls)
				require.Zero(t, w-writes, "an idle waiter's poll writes nothing")
				require.Positive(t, r-reads, "the waiters poll")
				require.LessOrEqual(t, r-reads, polls+int64(waiters), "one read a poll")

				// A waiter still wakes on an Add. How soon is
				// TestManyPools_WaitersWakeAndClose's to say; here the bound
				// is loose (on PostgreSQL, in a CI run with three test
				// binaries on two cores, the Add and the claim it woke took
				// 278 ms together), and timed from the Add's return.
				b.add(t, ids[3], 1)
				start := time.Now()
				select {
				case <-got:
				case <-time.After(5 * time.Second):
					t.Fatal("no lease after an Add")
				}
				require.Less(t, time.Since(start), 50*poll, "woken soon after the Add")
				cancel()
				for range cap(done) - map[bool]int{true: len(ids) - 1, false: 0}[kind == "WorkAllPools"] {
					if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
						require.NoError(t, err)
					}
				}
			})
		})
	}
}

// quietWrites waits until s has begun no write transaction for d (the
// waiters' first looks are over), 2 s at most, and returns its counts
// then.
func (s *txCountStore) quietWrites(d time.Duration) (reads, writes int64) {
	writes = s.writes.Load()
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		time.Sleep(d)
		w := s.writes.Load()
		if w == writes {
			break
		}
		writes = w
	}
	return s.reads.Load(), writes
}
