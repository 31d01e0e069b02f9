package queue_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEngine_ThreeStoresChaos: three engines, each on its own store over
// one file (three processes), dispatch and settle the items of several
// pools while one of them changes the pools' settings (type, cap,
// max_retries), duplicates and deletes pools, pauses and resumes a
// campaign, changes its rule and marks contacts DNC. In check mode a
// stale cached state fails the Write that used it; without it, the
// counts are compared with a recount afterwards.
func TestEngine_ThreeStoresChaos(t *testing.T) {
	t.Parallel()
	for _, check := range []bool{true, false} {
		t.Run(fmt.Sprintf("CheckCache=%v", check), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "shared.db")
			var engines []*queue.Engine
			for range 3 {
				st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: check})
				require.NoError(t, err)
				t.Cleanup(func() { _ = st.Close() })
				engines = append(engines, openEngine(t, st, queue.Options{LeaseTimeout: time.Minute, RetryDelay: time.Millisecond, PollInterval: 5 * time.Millisecond}))
			}
			boss := engines[2]
			var pools []uuid.UUID
			var contacts []uuid.UUID
			for i := range 4 {
				p, err := boss.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("pool %d", i), Description: "d",
					Type: []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel, pool.Parallel}[i], MaxParallelItems: pqPtr(3), MaxRetries: pqPtr(2)})
				require.NoError(t, err)
				items := newItems(80)
				for _, it := range items {
					contacts = append(contacts, it.ContactUUID)
				}
				_, err = boss.Add(ctx, p.UUID, items...)
				require.NoError(t, err)
				pools = append(pools, p.UUID)
			}
			r, err := boss.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule", MaxTotalCalls: pqPtr(3), DNCCheck: pqPtr(true),
				StartTime: pqPtr("00:00"), EndTime: pqPtr("23:59")})
			require.NoError(t, err)
			c, err := boss.CreateCampaign(ctx, campaign.CreateParams{Name: "camp", RuleUUID: &r.UUID, TimeZone: noonZone(time.Now())})
			require.NoError(t, err)
			_, err = boss.AttachPools(ctx, c.UUID, pools[3])
			require.NoError(t, err)
			_, err = boss.StartCampaign(ctx, c.UUID)
			require.NoError(t, err)

			runCtx, cancel := context.WithTimeout(ctx, 4*time.Second)
			defer cancel()
			var (
				mu       sync.Mutex
				problems []string
				leases   atomic.Int64
			)
			problem := func(format string, args ...any) {
				mu.Lock()
				problems = append(problems, fmt.Sprintf(format, args...))
				mu.Unlock()
				cancel()
			}
			var wg sync.WaitGroup
			for w := range 6 {
				eng := engines[w%2]
				wg.Go(func() {
					rng := rand.New(rand.NewPCG(uint64(w), 1))
					for runCtx.Err() == nil {
						mu.Lock()
						id := pools[rng.IntN(len(pools))]
						mu.Unlock()
						ls, err := queue.TryDequeueN(ctx, eng, id, 1+rng.IntN(3))
						switch {
						case isOneOf(err, queue.ErrEmpty, queue.ErrAtCapacity, queue.ErrHeld, store.ErrNotFound, store.ErrLockTimeout):
							time.Sleep(time.Millisecond)
							continue
						case err != nil:
							problem("worker %d: dequeue: %v", w, err)
							return
						}
						leases.Add(int64(len(ls)))
						time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
						for _, l := range ls {
							var err error
							switch rng.IntN(4) {
							case 0:
								err = eng.Fail(ctx, l, queue.Failure{Note: "busy"})
							case 1:
								err = eng.Release(ctx, l)
							default:
								err = eng.Complete(ctx, l, "ok")
							}
							if err != nil {
								problem("worker %d: settle: %v", w, err)
								return
							}
						}
					}
				})
			}
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(99, 1))
				var copies []uuid.UUID
				for runCtx.Err() == nil {
					mu.Lock()
					id := pools[rng.IntN(3)]
					mu.Unlock()
					var err error
					switch rng.IntN(9) {
					case 0:
						_, err = boss.UpdatePool(ctx, id, pool.UpdateParams{Type: pqPtr([]pool.Type{pool.FIFO, pool.LIFO, pool.Parallel}[rng.IntN(3)])})
					case 1:
						_, err = boss.UpdatePool(ctx, id, pool.UpdateParams{MaxParallelItems: pqPtr(1 + rng.IntN(4))})
					case 2:
						_, err = boss.UpdatePool(ctx, id, pool.UpdateParams{MaxRetries: pqPtr(rng.IntN(3))})
					case 3:
						var d pool.Duplicated
						d, err = boss.DuplicatePool(ctx, id, pool.DuplicateParams{})
						if err == nil {
							copies = append(copies, d.UUID)
							mu.Lock()
							pools = append(pools, d.UUID) // racy read by workers is avoided below
							mu.Unlock()
						}
					case 4:
						if len(copies) > 0 {
							err = boss.DeletePool(ctx, copies[0])
							if err == nil {
								copies = copies[1:]
							}
						}
					case 5:
						if rng.IntN(2) == 0 {
							_, err = boss.PauseCampaign(ctx, c.UUID)
						} else {
							_, err = boss.ResumeCampaign(ctx, c.UUID)
						}
						if errors.Is(err, campaign.ErrWrongStatus) {
							err = nil
						}
					case 6:
						_, err = boss.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(1 + rng.IntN(3))})
					case 7:
						_, err = boss.AddDNC(ctx, contacts[rng.IntN(len(contacts))])
					default:
						_, err = boss.Add(ctx, id, newItems(1+rng.IntN(5))...)
					}
					if err != nil && !isOneOf(err, queue.ErrInFlight, store.ErrLockTimeout) {
						problem("boss: %v", err)
						return
					}
					time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				}
			})
			wg.Wait()
			require.Empty(t, problems)
			t.Logf("%d leases", leases.Load())
			mu.Lock()
			all := append([]uuid.UUID(nil), pools...)
			mu.Unlock()
			for _, id := range all {
				for _, e := range engines {
					d, err := e.Pool(ctx, id)
					if errors.Is(err, store.ErrNotFound) {
						continue
					}
					require.NoError(t, err)
					items := allItems(ctx, t, e, id, 100)
					require.Equal(t, countStatuses(items), d.StatusCounts, "pool %s: status_counts vs a recount", id)
					require.Equal(t, len(items), d.ContactsCount)
					for _, it := range items {
						require.LessOrEqual(t, it.Attempts, 3, "attempts beyond every ceiling there was")
					}
				}
			}
		})
	}
}
