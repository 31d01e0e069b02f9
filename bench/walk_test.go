package bench

import (
	"context"
	"fmt"
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store/sqlite"
)

// BenchmarkWalk measures reading a whole pool of n items, 100 a page, in
// items/s (one iteration is one walk):
//
//   - Keyset: ItemQuery.After set to the last item's ID, each page an
//     index seek, so a walk costs what it reads;
//   - PageNumbers: Page 1, 2, …, each page skipping its offset, so a walk
//     costs O(n²/100).
//
// Sizes 10k, 100k and 1M (-short: 10k only); at 1M Keyset only, since a
// walk by page numbers of a million items takes minutes: the quadratic
// cost this benchmark is here to show.
func BenchmarkWalk(b *testing.B) {
	sizes := []int{10_000}
	if !testing.Short() {
		sizes = append(sizes, 100_000, 1_000_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			ctx := context.Background()
			eng, _ := open(b, sqlite.Normal)
			p := mustPool(b, eng, pool.FIFO)
			fill(b, eng, p.UUID, n)
			walks := []struct {
				name string
				next func(q pool.ItemQuery, last pool.Item) pool.ItemQuery
			}{
				{"Keyset", func(q pool.ItemQuery, last pool.Item) pool.ItemQuery { q.After = last.ID; return q }},
				{"PageNumbers", func(q pool.ItemQuery, _ pool.Item) pool.ItemQuery { q.Page++; return q }},
			}
			for _, w := range walks {
				if w.name == "PageNumbers" && n > 100_000 {
					continue
				}
				b.Run(w.name, func(b *testing.B) {
					for b.Loop() {
						seen := 0
						q := pool.ItemQuery{Page: 1, PerPage: pool.MaxPerPage}
						for {
							pg, err := eng.Items(ctx, p.UUID, q)
							if err != nil {
								b.Fatal(err)
							}
							seen += len(pg.Data)
							if len(pg.Data) < pool.MaxPerPage {
								break
							}
							q = w.next(q, pg.Data[len(pg.Data)-1])
						}
						if seen != n {
							b.Fatalf("walked %d items of %d", seen, n)
						}
					}
					perSecond(b, n*b.N)
				})
			}
		})
	}
}
