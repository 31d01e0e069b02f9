package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func stateTests() []test {
	return []test{
		{"RandomWritesInOneTransaction", testStateInOneTransaction},
	}
}

// testStateInOneTransaction runs random item writes and dispatch reads in
// one write transaction that first reads the pool, as the queue does. A
// store may learn the pool's dispatch state from that read and answer
// later calls from it (the SQLite store does): InFlight, Expired and Due
// must still answer as the items written so far say, at any time, in any
// order of calls, in every pool order.
func testStateInOneTransaction(t *testing.T, b *bundle) {
	rapid.Check(t, func(rt *rapid.T) {
		p := b.insertPool()
		stored := b.insertItems(p.UUID, pending(8))
		model := make(map[int64]pool.Item, len(stored))
		var all []int64
		for _, it := range stored {
			model[it.ID] = it
			all = append(all, it.ID)
		}
		change := func(rt *rapid.T, id int64) store.Change {
			it := randomItem(rt, model[id].ContactUUID)
			it.ID, it.PoolUUID, it.AddedAt = id, p.UUID, model[id].AddedAt
			return store.Change{From: model[id].Status, Item: it}
		}
		err := b.st.Write(b.ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(b.ctx, p.UUID); err != nil {
				return err
			}
			for step := range rapid.IntRange(1, 40).Draw(rt, "steps") {
				switch action := rapid.SampledFrom([]string{"update", "updates", "pool", "inflight", "expired", "due"}).Draw(rt, "action"); action {
				case "update":
					c := change(rt, rapid.SampledFrom(all).Draw(rt, "id"))
					if err := tx.UpdateItem(b.ctx, c.From, c.Item); err != nil {
						return err
					}
					model[c.Item.ID] = c.Item
				case "updates":
					picked := rapid.SliceOfNDistinct(rapid.SampledFrom(all), 2, 5, rapid.ID[int64]).Draw(rt, "ids")
					cs := make([]store.Change, len(picked))
					for i, id := range picked {
						cs[i] = change(rt, id)
					}
					if err := tx.UpdateItems(b.ctx, cs...); err != nil {
						return err
					}
					for _, c := range cs {
						model[c.Item.ID] = c.Item
					}
				case "pool":
					if _, err := tx.Pool(b.ctx, p.UUID); err != nil {
						return err
					}
				case "inflight":
					n, err := tx.InFlight(b.ctx, p.UUID)
					if err != nil {
						return err
					}
					want := 0
					for _, it := range model {
						if it.Status.InFlight() {
							want++
						}
					}
					if n != want {
						return fmt.Errorf("step %d: InFlight %d, model %d", step, n, want)
					}
				case "expired":
					now := at(time.Duration(rapid.IntRange(0, 13).Draw(rt, "now")) * time.Minute)
					limit := rapid.IntRange(1, 9).Draw(rt, "limit")
					got, err := tx.Expired(b.ctx, p.UUID, now, limit)
					if err != nil {
						return err
					}
					var want []pool.Item
					for _, it := range model {
						if it.Status.InFlight() && !it.LeaseExpiresAt.IsZero() && !it.LeaseExpiresAt.After(now) {
							want = append(want, it)
						}
					}
					slices.SortFunc(want, func(x, y pool.Item) int {
						return cmp.Or(x.LeaseExpiresAt.Compare(y.LeaseExpiresAt), cmp.Compare(x.ID, y.ID))
					})
					want = want[:min(limit, len(want))]
					if !slices.Equal(ids(want), ids(got)) {
						return fmt.Errorf("step %d: Expired(%v, %d) = %v, model %v", step, now, limit, ids(got), ids(want))
					}
				case "due":
					typ := rapid.SampledFrom(pool.Types()).Draw(rt, "type")
					now := at(time.Duration(rapid.IntRange(0, 13).Draw(rt, "now")) * time.Minute)
					limit := rapid.IntRange(1, 9).Draw(rt, "limit")
					got, err := tx.Due(b.ctx, p.UUID, typ, now, limit)
					if err != nil {
						return err
					}
					var want []pool.Item
					for _, it := range model {
						if it.Due(now) {
							want = append(want, it)
						}
					}
					slices.SortFunc(want, dueOrder(typ))
					want = want[:min(limit, len(want))]
					if !slices.Equal(ids(want), ids(got)) {
						return fmt.Errorf("step %d: Due(%s, %v, %d) = %v, model %v", step, typ, now, limit, ids(got), ids(want))
					}
				}
			}
			return nil
		})
		require.NoError(rt, err)
	})
}

// dueOrder orders items as Due returns them for a pool of type typ.
func dueOrder(typ pool.Type) func(x, y pool.Item) int {
	return func(x, y pool.Item) int {
		switch typ {
		case pool.LIFO:
			return cmp.Compare(y.ID, x.ID)
		case pool.Parallel:
			if c := cmp.Compare(y.Priority, x.Priority); c != 0 {
				return c
			}
		}
		return cmp.Compare(x.ID, y.ID)
	}
}
