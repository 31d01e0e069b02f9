package postgres_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWrite_ManyPoolsAnyOrder has writers of several stores lock pools in
// random orders, as group commit's batches do: every Write succeeds, the
// lock order restarts stay inside the store, and the counts add up.
func TestWrite_ManyPoolsAnyOrder(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	first := pgtest.Open(t, url, postgres.Options{})
	stores := []*postgres.Store{first,
		pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema()}),
		pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema()})}
	var pools []pool.Pool
	for i := range 4 {
		p := newTestPool("pool " + string(rune('a'+i)))
		require.NoError(t, first.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		pools = append(pools, p)
	}
	const writers, writes = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			st := stores[w%len(stores)]
			for range writes {
				order := rng.Perm(len(pools))[:1+rng.IntN(len(pools))]
				err := st.Write(ctx, func(tx store.Tx) error {
					for _, i := range order {
						if _, err := tx.InsertItems(ctx, pools[i].UUID, pendingItems(1)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var retries uint64
	for _, st := range stores {
		retries += st.Stats().Retries
	}
	t.Logf("%d retries", retries)
}
