package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestMultiStore_OpenNewFileAtOnce: several Stores open one new file at
// the same moment (as several processes starting together) and write at
// once. Every Open and every first Write must succeed.
func TestMultiStore_OpenNewFileAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rounds := 8
	if testing.Short() {
		rounds = 2 // CI's race run: the plain run has made all eight
	}
	for round := range rounds {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("new%d.db", round))
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		start := make(chan struct{})
		for i := range 4 {
			wg.Go(func() {
				<-start
				st, err := sqlite.Open(ctx, path, checked)
				if err != nil {
					errs <- fmt.Errorf("round %d store %d: open: %w", round, i, err)
					return
				}
				defer st.Close()
				if err := st.Write(ctx, func(tx store.Tx) error { return nil }); err != nil {
					errs <- fmt.Errorf("round %d store %d: write: %w", round, i, err)
				}
				insertPool(t, st, 3)
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
	}
}

// TestMultiStore_OpenCloseWhileAnotherWrites: one Store writes and reads
// without pause while other Stores on the same file open, read, write and
// close, again and again. No call of either may fail.
func TestMultiStore_OpenCloseWhileAnotherWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, path := MustOpenFile(t, checked)
	p := insertPool(t, a)
	stop := make(chan struct{})
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				err := a.Write(ctx, func(tx store.Tx) error {
					if _, err := tx.InsertItems(ctx, p.UUID, pendingItems(20)); err != nil {
						return err
					}
					due, err := tx.Due(ctx, p.UUID, pool.FIFO, testT0, 10)
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
					errs <- fmt.Errorf("writer %d, write %d: %w", w, n, err)
					return
				}
				if err := a.Read(ctx, func(tx store.Tx) error { _, err := tx.StatusCounts(ctx, p.UUID); return err }); err != nil {
					errs <- fmt.Errorf("writer %d, read %d: %w", w, n, err)
					return
				}
			}
		})
	}
	deadline := time.Now().Add(3 * time.Second)
	var owg sync.WaitGroup
	for o := range 2 {
		owg.Go(func() {
			for n := 0; time.Now().Before(deadline); n++ {
				b, err := sqlite.Open(ctx, path, checked)
				if err != nil {
					errs <- fmt.Errorf("opener %d, open %d: %w", o, n, err)
					return
				}
				err = b.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
				if err == nil {
					err = b.Write(ctx, func(tx store.Tx) error {
						_, err := tx.InsertItems(ctx, p.UUID, pendingItems(2))
						return err
					})
				}
				if cerr := b.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					errs <- fmt.Errorf("opener %d, round %d: %w", o, n, err)
					return
				}
			}
		})
	}
	owg.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, a.Check(ctx))
}
