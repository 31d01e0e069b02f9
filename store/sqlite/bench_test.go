package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

var benchT0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func benchPool(tb testing.TB, st store.Store, typ pool.Type) pool.Pool {
	tb.Helper()
	p := pool.Pool{
		UUID: uuid.New(), Name: "bench", Description: "bench", Type: typ,
		MaxParallelItems: 10, MaxRetries: 3, IsActive: true, CreatedAt: benchT0, UpdatedAt: benchT0,
	}
	require.NoError(tb, st.Write(context.Background(), func(tx store.Tx) error { return tx.InsertPool(context.Background(), p) }))
	return p
}

func benchItems(n int) []pool.Item {
	items := make([]pool.Item, n)
	for i := range items {
		items[i] = pool.Item{
			ContactUUID: uuid.New(), Status: pool.StatusPending, Priority: i % 7, AddedAt: benchT0,
			Payload: []byte(`{"phone":"+33123456789"}`),
		}
	}
	return items
}

// BenchmarkTx_InsertItems adds n new contacts to a pool in one Write, on a
// file store. Making the items (new UUIDs) is part of the measure.
func BenchmarkTx_InsertItems(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, 10, 100, 1_000, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			st, _ := MustOpenFile(b, sqlite.Options{})
			p := benchPool(b, st, pool.FIFO)
			b.ReportAllocs()
			for b.Loop() {
				items := benchItems(n)
				err := st.Write(ctx, func(tx store.Tx) error {
					added, err := tx.InsertItems(ctx, p.UUID, items)
					if err == nil && added != n {
						err = fmt.Errorf("added %d", added)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
		})
	}
}

// BenchmarkTx_Due measures one Due(limit 1) in its own Write, in pools of
// growing size: all Pending, or all but one waiting for a future retry
// time, the one the pool's order meets last (the newest for FIFO, the
// oldest for LIFO, the lowest priority for Parallel). The cost must not
// grow with the pool.
func BenchmarkTx_Due(b *testing.B) {
	ctx := context.Background()
	future := benchT0.Add(time.Hour)
	for _, waiting := range []bool{false, true} {
		for _, n := range []int{1_000, 100_000} {
			for _, typ := range pool.Types() {
				b.Run(fmt.Sprintf("retrying=%v/n=%d/%s", waiting, n, typ), func(b *testing.B) {
					st, _ := MustOpenFile(b, sqlite.Options{})
					p := benchPool(b, st, typ)
					items := benchItems(n)
					if waiting {
						last := n - 1 // the one due, where the order meets it last
						if typ == pool.LIFO {
							last = 0
						}
						for i := range items {
							if i != last {
								items[i].Status = pool.StatusRetrying
								items[i].NextRetryAt = &future
							}
						}
						items[last].Priority = -1
					}
					require.NoError(b, st.Write(ctx, func(tx store.Tx) error {
						_, err := tx.InsertItems(ctx, p.UUID, items)
						return err
					}))
					b.ReportAllocs()
					for b.Loop() {
						err := st.Write(ctx, func(tx store.Tx) error {
							due, err := tx.Due(ctx, p.UUID, typ, benchT0, 1)
							if err == nil && len(due) != 1 {
								err = fmt.Errorf("%d due", len(due))
							}
							return err
						})
						if err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkTx_NextWake measures NextWake in a Read, in pools where n items
// wait for a retry time and n are in flight.
func BenchmarkTx_NextWake(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			st, _ := MustOpenFile(b, sqlite.Options{})
			p := benchPool(b, st, pool.Parallel)
			items := benchItems(2 * n)
			for i := range items {
				at := benchT0.Add(time.Duration(len(items)-i) * time.Second)
				if i%2 == 0 {
					items[i].Status, items[i].NextRetryAt = pool.StatusRetrying, &at
				} else {
					items[i].Status, items[i].LeaseExpiresAt = pool.StatusProcessing, at
				}
			}
			require.NoError(b, st.Write(ctx, func(tx store.Tx) error {
				_, err := tx.InsertItems(ctx, p.UUID, items)
				return err
			}))
			b.ReportAllocs()
			for b.Loop() {
				err := st.Read(ctx, func(tx store.Tx) error {
					_, ok, err := tx.NextWake(ctx, p.UUID)
					if err == nil && !ok {
						err = fmt.Errorf("no wake")
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
