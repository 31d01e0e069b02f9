package sqlite_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// BenchmarkTwoStores measures two Stores writing to one file, as two
// processes do (each has its own write connection; the file's lock is
// between them). The README's "Limits" and "Durability" quote it, with
// the numbers in bench/RESULTS.md:
//
//   - ImportBeside: one Store inserts 500-item batches without pause; each
//     b.N is one single-item write of the other, timed (ns/op and mean-ms
//     are their mean, p50-ms, max-ms), then a 1 ms pause outside the
//     timer; timeouts counts those that failed with store.ErrLockTimeout
//     after the busy timeout (5 s).
//   - EveryMillisecond, FlatOut: both Stores commit b.N cycles (five items
//     added, five completed, about 14 log pages), one a millisecond or
//     without pause; wal-MB is the largest size of the -wal file.
func BenchmarkTwoStores(b *testing.B) {
	b.Run("ImportBeside", func(b *testing.B) {
		ctx := context.Background()
		a, path := MustOpenFile(b, sqlite.Options{})
		other, err := sqlite.Open(ctx, path, sqlite.Options{})
		require.NoError(b, err)
		b.Cleanup(func() { other.Close() })
		pa, pb := insertPool(b, a), insertPool(b, other)

		var stop atomic.Bool
		importErr := make(chan error, 1)
		go func() {
			for !stop.Load() {
				err := a.Write(ctx, func(tx store.Tx) error {
					_, err := tx.InsertItems(ctx, pa.UUID, pendingItems(500))
					return err
				})
				if err != nil && !errors.Is(err, store.ErrLockTimeout) {
					importErr <- err
					return
				}
			}
			importErr <- nil
		}()
		time.Sleep(100 * time.Millisecond) // the import under way
		var waits []time.Duration
		timeouts := 0
		b.ResetTimer()
		for b.Loop() {
			start := time.Now()
			err := other.Write(ctx, func(tx store.Tx) error {
				_, err := tx.InsertItems(ctx, pb.UUID, pendingItems(1))
				return err
			})
			waits = append(waits, time.Since(start))
			if errors.Is(err, store.ErrLockTimeout) {
				timeouts++
			} else if err != nil {
				b.Fatal(err)
			}
			b.StopTimer() // the pause is not a write: ns/op is the writes' mean
			time.Sleep(time.Millisecond)
			b.StartTimer()
		}
		b.StopTimer()
		stop.Store(true)
		require.NoError(b, <-importErr)
		slices.Sort(waits)
		ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
		var sum time.Duration
		for _, w := range waits {
			sum += w
		}
		b.ReportMetric(ms(sum/time.Duration(len(waits))), "mean-ms")
		b.ReportMetric(ms(waits[len(waits)/2]), "p50-ms")
		b.ReportMetric(ms(waits[len(waits)-1]), "max-ms")
		b.ReportMetric(float64(timeouts), "timeouts")
	})
	for _, c := range []struct {
		name string
		gap  time.Duration
	}{{"EveryMillisecond", time.Millisecond}, {"FlatOut", 0}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			a, path := MustOpenFile(b, sqlite.Options{})
			other, err := sqlite.Open(ctx, path, sqlite.Options{})
			require.NoError(b, err)
			b.Cleanup(func() { other.Close() })
			var most atomic.Int64
			errs := make([]error, 2)
			var wg sync.WaitGroup
			b.ResetTimer()
			for i, st := range []*sqlite.Store{a, other} {
				p := insertPool(b, st)
				wg.Go(func() {
					for range b.N {
						if errs[i] = cycle(ctx, st, p.UUID); errs[i] != nil {
							return
						}
						fi, err := os.Stat(path + "-wal")
						if err != nil {
							errs[i] = err
							return
						}
						for m := most.Load(); fi.Size() > m && !most.CompareAndSwap(m, fi.Size()); m = most.Load() {
						}
						time.Sleep(c.gap)
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			require.NoError(b, errs[0])
			require.NoError(b, errs[1])
			b.ReportMetric(float64(most.Load())/1e6, "wal-MB")
		})
	}
}
