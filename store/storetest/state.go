package storetest

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func stateTests() []test {
	return []test{
		{"RandomWritesInOneTransaction", testStateInOneTransaction},
		{"PoolsCountTheTransactionsItems", testStatePoolsCountTheTransactionsItems},
		{"ItemsCountTheTransactionsWrites", testStateItemsCountTheTransactionsWrites},
		{"SettingsChangedInTheTransaction", testStateSettingsChangedInTheTransaction},
		{"InsertedRetryDueInTheTransaction", testStateInsertedRetryDueInTheTransaction},
		{"CountsBeforeARolledBackSavepoint", testStateCountsBeforeARolledBackSavepoint},
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
		// Write may run its function again, from the committed items: the
		// model starts again from them on every run.
		committed := maps.Clone(model)
		err := b.st.Write(b.ctx, func(tx store.Tx) error {
			model = maps.Clone(committed)
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

// The tests below check what a write transaction answers after its own
// writes, where a store may answer from what it learnt of the pool (its
// counts, its settings, the bound of its retry times) rather than from
// the rows: most of the suite reads in a transaction of its own.

// testStatePoolsCountTheTransactionsItems: Pools, in a write transaction,
// counts the items the transaction added before it.
func testStatePoolsCountTheTransactionsItems(t *testing.T, b *bundle) {
	p := b.insertPool()
	var (
		listed []pool.Pool
		total  int
	)
	b.write(func(tx store.Tx) error {
		if _, err := tx.InsertItems(b.ctx, p.UUID, pending(3)); err != nil {
			return err
		}
		q, err := pool.PoolQuery{}.Normalize()
		if err != nil {
			return err
		}
		listed, total, err = tx.Pools(b.ctx, q)
		return err
	})
	require.Equal(t, 1, total)
	require.Len(t, listed, 1)
	require.Equal(t, 3, listed[0].ContactsCount, "the items added earlier in the transaction")
}

// testStateItemsCountTheTransactionsWrites: Items, in a write
// transaction, totals the pool's items (or a status's) as the
// transaction left them.
func testStateItemsCountTheTransactionsWrites(t *testing.T, b *bundle) {
	p := b.insertPool()
	b.insertItems(p.UUID, pending(4))
	type page struct{ n, total int }
	var all, waiting, done page
	b.write(func(tx store.Tx) error {
		if _, err := tx.InsertItems(b.ctx, p.UUID, pending(2)); err != nil {
			return err
		}
		items, _, err := tx.Items(b.ctx, p.UUID, pool.ItemQuery{Page: 1, PerPage: 100})
		if err != nil {
			return err
		}
		it := items[0]
		it.Status, it.CompletedAt = pool.StatusCompleted, ptr(t0)
		if err := tx.UpdateItem(b.ctx, pool.StatusPending, it); err != nil {
			return err
		}
		for _, c := range []struct {
			s pool.Status
			p *page
		}{{"", &all}, {pool.StatusPending, &waiting}, {pool.StatusCompleted, &done}} {
			got, total, err := tx.Items(b.ctx, p.UUID, pool.ItemQuery{Status: c.s, Page: 1, PerPage: 100})
			if err != nil {
				return err
			}
			*c.p = page{len(got), total}
		}
		return nil
	})
	require.Equal(t, page{6, 6}, all)
	require.Equal(t, page{5, 5}, waiting)
	require.Equal(t, page{1, 1}, done)
}

// testStateSettingsChangedInTheTransaction: after UpdatePool, the same
// write transaction's PoolDue follows the new settings, twice: the cap
// bounds the items it returns, the type orders them.
func testStateSettingsChangedInTheTransaction(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 2 })
	all := ids(b.insertItems(p.UUID, pending(5)))
	now := at(time.Hour)
	for _, c := range []struct {
		typ  pool.Type
		cap  int
		want []int64
	}{
		{pool.Parallel, 4, all[:4]},
		{pool.Parallel, 1, all[:1]},
		{pool.LIFO, 10, all[4:]},
		{pool.FIFO, 10, all[:1]},
	} {
		var got pool.Pool
		var due, again []pool.Item
		b.write(func(tx store.Tx) error {
			cur, err := tx.Pool(b.ctx, p.UUID)
			if err != nil {
				return err
			}
			cur.Type, cur.MaxParallelItems = c.typ, c.cap
			if err := tx.UpdatePool(b.ctx, cur); err != nil {
				return err
			}
			if got, due, err = tx.PoolDue(b.ctx, p.UUID, now, 100); err != nil {
				return err
			}
			_, again, err = tx.PoolDue(b.ctx, p.UUID, now, 100)
			return err
		})
		require.Equal(t, c.typ, got.Type, "%s cap %d", c.typ, c.cap)
		require.Equal(t, c.cap, got.MaxParallelItems, "%s cap %d", c.typ, c.cap)
		require.Equal(t, c.want, ids(due), "%s cap %d", c.typ, c.cap)
		require.Equal(t, c.want, ids(again), "%s cap %d: again", c.typ, c.cap)
	}
}

// testStateInsertedRetryDueInTheTransaction: an item inserted waiting for
// a retry time (a copy, not a new item) is due at that time to the
// transaction that inserted it after reading the pool, not before.
func testStateInsertedRetryDueInTheTransaction(t *testing.T, b *bundle) {
	p := b.insertPool()
	retryAt := at(time.Minute)
	var before, after []pool.Item
	b.write(func(tx store.Tx) error {
		if _, err := tx.Pool(b.ctx, p.UUID); err != nil { // its state: no retry waits
			return err
		}
		it := pool.Item{ContactUUID: uuid.New(), Status: pool.StatusRetrying, Attempts: 1, RetryCount: 1,
			NextRetryAt: &retryAt, AddedAt: t0}
		if _, err := tx.InsertItems(b.ctx, p.UUID, []pool.Item{it}); err != nil {
			return err
		}
		var err error
		if before, err = tx.Due(b.ctx, p.UUID, pool.FIFO, retryAt.Add(-time.Nanosecond), 10); err != nil {
			return err
		}
		after, err = tx.Due(b.ctx, p.UUID, pool.FIFO, retryAt, 10)
		return err
	})
	require.Empty(t, before, "not before its retry time")
	require.Len(t, after, 1, "due at its retry time")
	require.Equal(t, pool.StatusRetrying, after[0].Status)
}

// testStateCountsBeforeARolledBackSavepoint: a savepoint rolled back
// undoes its own writes, not those made before it in the transaction: the
// pool's state read after the rollback counts the items added and
// dispatched before the savepoint, and so does what commits.
func testStateCountsBeforeARolledBackSavepoint(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 3 })
	type seen struct {
		contacts, inFlight, due int
		counts                  map[pool.Status]int
	}
	look := func(tx store.Tx, s *seen) error {
		got, err := tx.Pool(b.ctx, p.UUID)
		if err != nil {
			return err
		}
		s.contacts = got.ContactsCount
		if s.inFlight, err = tx.InFlight(b.ctx, p.UUID); err != nil {
			return err
		}
		if s.counts, err = tx.StatusCounts(b.ctx, p.UUID); err != nil {
			return err
		}
		_, due, err := tx.PoolDue(b.ctx, p.UUID, at(time.Hour), 100)
		s.due = len(due)
		return err
	}
	boom := errors.New("boom")
	var before, after seen
	var spErr error
	b.write(func(tx store.Tx) error {
		if _, err := tx.InsertItems(b.ctx, p.UUID, pending(5)); err != nil {
			return err
		}
		_, due, err := tx.PoolDue(b.ctx, p.UUID, at(time.Hour), 1)
		if err != nil {
			return err
		}
		if len(due) != 1 {
			return fmt.Errorf("PoolDue: %d items, want 1", len(due))
		}
		it := due[0]
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 1, 1, at(2*time.Hour)
		if err := tx.UpdateItems(b.ctx, store.Change{From: pool.StatusPending, Item: it}); err != nil {
			return err
		}
		if err := look(tx, &before); err != nil {
			return err
		}
		spErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			if _, err := tx.InsertItems(b.ctx, p.UUID, pending(2)); err != nil {
				return err
			}
			return boom
		})
		return look(tx, &after)
	})
	require.ErrorIs(t, spErr, boom)
	want := seen{contacts: 5, inFlight: 1, due: 2, counts: pool.ZeroCounts()}
	want.counts[pool.StatusPending], want.counts[pool.StatusProcessing] = 4, 1
	require.Equal(t, want, before, "before the savepoint")
	require.Equal(t, want, after, "after its rollback")
	var counts map[pool.Status]int
	b.read(func(tx store.Tx) (err error) {
		counts, err = tx.StatusCounts(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, want.counts, counts, "committed")
}
