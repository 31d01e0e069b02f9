package sqlite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_ConcurrentFile hammers one file through two Stores, as two
// processes would: writers add items and dispatch them, readers check that
// every snapshot adds up. No error may surface, SQLITE_BUSY included: the
// writer of each Store is one connection, BEGIN IMMEDIATE takes the file
// lock up front, and the busy timeout absorbs the other Store's writes.
func TestStore_ConcurrentFile(t *testing.T) {
	t.Parallel()
	const (
		writers = 6 // per Store
		readers = 3 // per Store
		writes  = 15
	)
	ctx := context.Background()
	a, path := MustOpenFile(t, checked)
	b, err := sqlite.Open(ctx, path, sqlite.Options{Durability: sqlite.Full, CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	p := insertPool(t, a)

	var wg, rg sync.WaitGroup
	rctx, stop := context.WithCancel(ctx)
	errs := make(chan error, 2*(writers+readers))
	for _, st := range []*sqlite.Store{a, b} {
		for range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range writes {
					err := st.Write(ctx, func(tx store.Tx) error {
						if _, err := tx.InsertItems(ctx, p.UUID, pendingItems(3)); err != nil {
							return err
						}
						due, err := tx.Due(ctx, p.UUID, pool.FIFO, testT0, 2)
						if err != nil {
							return err
						}
						for _, it := range due {
							from := it.Status
							it.Status = pool.StatusCompleted
							if err := tx.UpdateItem(ctx, from, it); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						errs <- fmt.Errorf("write: %w", err)
						return
					}
				}
			}()
		}
		for range readers {
			rg.Add(1)
			go func() {
				defer rg.Done()
				for rctx.Err() == nil {
					err := st.Read(ctx, func(tx store.Tx) error {
						got, err := tx.Pool(ctx, p.UUID)
						if err != nil {
							return err
						}
						counts, err := tx.StatusCounts(ctx, p.UUID)
						if err != nil {
							return err
						}
						// Each write adds 3 items and completes 2.
						writes := got.ContactsCount / 3
						if got.ContactsCount%3 != 0 || counts[pool.StatusCompleted] != 2*writes ||
							counts[pool.StatusPending] != writes {
							return fmt.Errorf("inconsistent snapshot: %d items, %v", got.ContactsCount, counts)
						}
						return nil
					})
					if err != nil {
						errs <- fmt.Errorf("read: %w", err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	stop()
	rg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	total := 2 * writers * writes
	require.NoError(t, a.Read(ctx, func(tx store.Tx) error {
		got, err := tx.Pool(ctx, p.UUID)
		require.Equal(t, 3*total, got.ContactsCount)
		return err
	}))
}

// TestStore_ReadSnapshot checks that a Read sees one snapshot while a Write
// commits beside it.
func TestStore_ReadSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := MustOpenFile(t, checked)
	p := insertPool(t, st, 5)

	count := func(tx store.Tx) int {
		got, err := tx.Pool(ctx, p.UUID)
		require.NoError(t, err)
		return got.ContactsCount
	}
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		require.Equal(t, 5, count(tx))
		require.NoError(t, st.Write(ctx, func(wtx store.Tx) error {
			_, err := wtx.InsertItems(ctx, p.UUID, pendingItems(2))
			return err
		}))
		require.Equal(t, 5, count(tx), "the Read still sees its snapshot")
		return nil
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		require.Equal(t, 7, count(tx))
		return nil
	}))
}
