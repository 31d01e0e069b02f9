package bench

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store/sqlite"
)

// BenchmarkSearch measures an item listing with ?search= (the first page,
// with its total) on a pool of n items that all carry contact fields, at
// 10k and 1M items (-short: 100k), p50/p99 per listing:
//
//   - Phone: one item's phone number (a seek, whatever n);
//   - Name: "contact 0500000", a word every item has, then one item's
//     number (whole words are seeks; only the last word is a prefix);
//   - Prefix: "c50", the beginning of about one email in ninety (c50,
//     c500–c509, c5000–c5099…: 1.1 %);
//   - Common: "example", the beginning of every email: its cost grows
//     with the matches, all n of them.
//
// A listing is not a rate: no items/s here.
func BenchmarkSearch(b *testing.B) {
	sizes := []int{10_000, 1_000_000}
	if testing.Short() {
		sizes[1] = 100_000
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			eng, _ := open(b, sqlite.Normal)
			p := mustPool(b, eng, pool.Parallel)
			fillContacts(b, eng.Add, p.UUID, n)
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
						pg, err := eng.Items(ctx, p.UUID, pool.ItemQuery{Search: tc.search})
						if err != nil {
							b.Fatal(err)
						}
						lat = append(lat, time.Since(start))
						if pg.Total == 0 {
							b.Fatalf("search %q found nothing", tc.search)
						}
					}
					reportPercentiles(b, lat)
				})
			}
		})
	}
}

// fillContacts adds n Pending items with contact fields to a pool, in
// batches of 10k: "Contact 0000042", +1555000042, c42@example3.com.
func fillContacts(b *testing.B, add func(context.Context, uuid.UUID, ...pool.NewItem) (pool.AddResult, error), id uuid.UUID, n int) {
	b.Helper()
	const batch = 10_000
	items := make([]pool.NewItem, 0, batch)
	for done := 0; done < n; {
		items = items[:0]
		for k := 0; k < batch && done < n; k++ {
			items = append(items, contactItem(done))
			done++
		}
		if _, err := add(context.Background(), id, items...); err != nil {
			b.Fatal(err)
		}
	}
}

// contactItem is the i-th new item with contact fields.
func contactItem(i int) pool.NewItem {
	return pool.NewItem{ContactUUID: uuid.New(), Priority: i % 10, Contact: pool.Contact{
		Name:        fmt.Sprintf("Contact %07d", i),
		PhoneNumber: fmt.Sprintf("+1555%07d", i),
		Email:       fmt.Sprintf("c%d@example%d.com", i, i%10),
		TimeZone:    "America/New_York",
	}}
}
