package queue_test

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_MaxBatchOfDistinctPools: the largest batch MaxBatch
// allows, every operation on a pool of its own, commits on PostgreSQL:
// MaxMaxBatch concurrent Adds to as many pools share a few transactions,
// each holding a lock per pool, and every one succeeds. (A batch of 13,000
// such operations failed as a whole with "out of shared memory" on a
// server at its default max_locks_per_transaction: see MaxMaxBatch.)
func TestPostgres_MaxBatchOfDistinctPools(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	setup := openEngine(t, st, queue.Options{})
	ids := make([]uuid.UUID, queue.MaxMaxBatch)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := setup.CreatePool(ctx, pool.CreateParams{Name: "pool " + strconv.Itoa(i), Description: "one of many"})
			if err == nil {
				ids[i] = p.UUID
			}
			require.NoError(t, err)
		}()
	}
	wg.Wait()

	eng := openEngine(t, st, queue.Options{MaxBatch: queue.MaxMaxBatch})
	gate := make(chan struct{})
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			_, errs[i] = eng.Add(ctx, id, pool.NewItem{ContactUUID: uuid.New()})
		}()
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "the Add to pool %d of %d", i, len(ids))
	}
	s := eng.Stats()
	t.Logf("%d Adds on as many pools in %d transactions", s.Operations, s.Transactions)
	// They waited together: the batches were large, hundreds of pools'
	// locks in one transaction (one goroutine per Add, all let go at once;
	// the first transaction takes those that arrived first, the next
	// nearly all the rest).
	require.LessOrEqual(t, s.Transactions, uint64(len(ids)/50), "the Adds shared transactions")
	for _, id := range ids {
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, 1, d.ContactsCount)
	}
}
