package postgres_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
)

// BenchmarkSearch measures an item listing with a search (the first page of
// 25, with its total) on a pool of n items that all carry contact fields,
// beside another pool of n/10, at 10k and 100k items (and 1M with
// POOLQ_BENCH_1M=1), p50 and p99 per listing; the cases are those of
// bench/search_test.go (the SQLite store's):
//
//   - Phone: one item's phone number (a seek, whatever n);
//   - Name: "contact 0500000", a word every item has, then one item's
//     number;
//   - Prefix: "c50", the beginning of about one email in ninety (c50,
//     c500–c509, c5000–c5099…: 1.1 %);
//   - Common: "example", the beginning of every email: its cost grows
//     with the matches, all n of them.
func BenchmarkSearch(b *testing.B) {
	url := pgtest.URL(b)
	sizes := []int{10_000, 100_000}
	if os.Getenv("POOLQ_BENCH_1M") != "" {
		sizes = append(sizes, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st := pgtest.Open(b, url, postgres.Options{})
			other := newTestPool("other")
			p := newTestPool("searched")
			for _, q := range []pool.Pool{other, p} {
				if err := st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, q) }); err != nil {
					b.Fatal(err)
				}
			}
			fillContacts(b, st, other.UUID, n/10)
			start := time.Now()
			fillContacts(b, st, p.UUID, n)
			b.Logf("added %d items with contact fields in %v (%.0f items/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
			for _, tc := range []struct{ name, search string }{
				{"Phone", fmt.Sprintf("+1555%07d", n/2)},
				{"Name", fmt.Sprintf("contact %07d", n/2)},
				{"Prefix", "c50"},
				{"Common", "example"},
			} {
				b.Run(tc.name, func(b *testing.B) {
					lat := make([]time.Duration, 0, 64)
					for b.Loop() {
						start := time.Now()
						var total int
						err := st.Read(ctx, func(tx store.Tx) (err error) {
							_, total, err = tx.Items(ctx, p.UUID, pool.ItemQuery{Search: tc.search, Page: 1, PerPage: 25})
							return err
						})
						if err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
						if total == 0 {
							b.Fatalf("search %q found nothing", tc.search)
						}
					}
					slices.Sort(lat)
					b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
				})
			}
		})
	}
}

// fillContacts adds n Pending items with contact fields to a pool, in
// batches of 10k: "Contact 0000042", +1555000042, c42@example2.com.
func fillContacts(b *testing.B, st store.Store, id uuid.UUID, n int) {
	b.Helper()
	insertBatches(b, st, id, contactBatches(n, true))
}

// contactBatches returns n new Pending items in batches of 10,000,
// priorities 0 to 9, with contact fields (a name, a phone number, an email
// and a zone, each item's own) when with is set.
func contactBatches(n int, with bool) [][]pool.Item {
	const batch = 10_000
	now := time.Now().UTC()
	var out [][]pool.Item
	for done := 0; done < n; {
		items := make([]pool.Item, 0, batch)
		for k := 0; k < batch && done < n; k++ {
			it := pool.Item{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: now, Priority: done % 10}
			if with {
				it.Contact = pool.Contact{
					Name:        fmt.Sprintf("Contact %07d", done),
					PhoneNumber: fmt.Sprintf("+1555%07d", done),
					Email:       fmt.Sprintf("c%d@example%d.com", done, done%10),
					TimeZone:    "America/New_York",
				}
			}
			items = append(items, it)
			done++
		}
		out = append(out, items)
	}
	return out
}

// insertBatches adds each batch to pool id in a Write of its own.
func insertBatches(b *testing.B, st store.Store, id uuid.UUID, batches [][]pool.Item) {
	b.Helper()
	ctx := context.Background()
	for _, items := range batches {
		if err := st.Write(ctx, func(tx store.Tx) error { _, err := tx.InsertItems(ctx, id, items); return err }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertContacts measures a bulk add of 100k items (batches of
// 10k) without contact fields and with them (four more columns, and the
// words of each in items_search), in items/s.
func BenchmarkInsertContacts(b *testing.B) {
	url := pgtest.URL(b)
	const n = 100_000
	for _, with := range []bool{false, true} {
		b.Run(map[bool]string{false: "Without", true: "With"}[with], func(b *testing.B) {
			ctx := context.Background()
			var elapsed time.Duration
			for b.Loop() {
				b.StopTimer()
				st := pgtest.Open(b, url, postgres.Options{})
				p := newTestPool("bulk")
				if err := st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }); err != nil {
					b.Fatal(err)
				}
				batches := contactBatches(n, with) // made before the timer, alike but for the contact fields
				b.StartTimer()
				start := time.Now()
				insertBatches(b, st, p.UUID, batches)
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "items/s")
		})
	}
}
