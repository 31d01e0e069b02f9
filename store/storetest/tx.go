package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

func txTests() []test {
	return []test{
		{"Read/ErrReadOnly", testReadOnly},
		{"Write/RollbackOnError", testWriteRollback},
		{"Write/SeesItsOwnWrites", testWriteSeesOwnWrites},
		{"Concurrent", testConcurrent},
		{"Savepoint/UndoesOnlyItsOwn", testSavepoint},
		{"Savepoint/UpdateItemsFailsItsOwn", testSavepointUpdateItems},
		{"Savepoint/DispatchStateAfterRollback", testSavepointDispatchState},
	}
}

// testSavepointUpdateItems checks UpdateItems around savepoints, as group
// commit's second run uses them: a batch with an item not in its From
// status fails its own savepoint with ErrNotFound and undoes the batch
// (the store may check it only when the savepoint ends, not at the call);
// the writes before and after it, the last one at the commit, stand, and
// each is seen by the reads that follow it.
func testSavepointUpdateItems(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	dispatched := func(it pool.Item) pool.Item {
		it.Status, it.Attempts, it.Token = pool.StatusProcessing, 1, 1
		it.LeaseExpiresAt = at(time.Minute)
		return it
	}
	change := func(it pool.Item) store.Change { return store.Change{From: pool.StatusPending, Item: dispatched(it)} }
	// Write may run its function again: it only gathers what the calls
	// answered, and the checks come once it returns.
	boom := errors.New("boom")
	var got []pool.Item
	var wrongErr, boomErr error
	b.write(func(tx store.Tx) (err error) {
		if err := tx.Savepoint(b.ctx, func(tx store.Tx) error { return tx.UpdateItems(b.ctx, change(items[0])) }); err != nil {
			return err
		}
		if got, err = tx.ItemsByID(b.ctx, []int64{items[0].ID}); err != nil {
			return err
		}

		wrong := change(items[2])
		wrong.From = pool.StatusRetrying
		wrongErr = tx.Savepoint(b.ctx, func(tx store.Tx) error { return tx.UpdateItems(b.ctx, change(items[1]), wrong) })

		boomErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			_ = tx.UpdateItems(b.ctx, change(items[1]), wrong) // its error, now or later, is undone with the rest
			return boom
		})

		return tx.UpdateItems(b.ctx, change(items[2])) // the transaction's last write
	})
	require.Equal(t, []pool.Item{dispatched(items[0])}, got, "the write is seen by the next read")
	require.ErrorIs(t, wrongErr, store.ErrNotFound, "an item not in its From status fails the savepoint")
	require.ErrorIs(t, boomErr, boom, "a savepoint that fails after a failing write fails with its own error")
	require.Equal(t, dispatched(items[0]), b.item(items[0].ID))
	require.Equal(t, items[1], b.item(items[1].ID), "undone with its savepoint")
	require.Equal(t, dispatched(items[2]), b.item(items[2].ID))
	var counts map[pool.Status]int
	b.read(func(tx store.Tx) error {
		var err error
		counts, err = tx.StatusCounts(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, map[pool.Status]int{pool.StatusPending: 1, pool.StatusProcessing: 2}, nonZero(counts))
}

// nonZero returns the entries of counts above zero.
func nonZero(counts map[pool.Status]int) map[pool.Status]int {
	out := map[pool.Status]int{}
	for s, n := range counts {
		if n != 0 {
			out[s] = n
		}
	}
	return out
}

// testSavepoint checks that a failing savepoint undoes its own writes, and
// only those, while the transaction goes on and commits the rest.
func testSavepoint(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	boom := errors.New("boom")
	var kept, undone pool.Item
	var spErr error
	b.write(func(tx store.Tx) error {
		kept = items[0]
		kept.Status, kept.Attempts, kept.Token = pool.StatusProcessing, 1, 1
		kept.LeaseExpiresAt = at(time.Minute)
		if err := tx.Savepoint(b.ctx, func(tx store.Tx) error { return tx.UpdateItem(b.ctx, items[0].Status, kept) }); err != nil {
			return err
		}

		spErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			undone = items[1]
			undone.Status = pool.StatusSkipped
			if err := tx.UpdateItem(b.ctx, items[1].Status, undone); err != nil {
				return err
			}
			if _, err := tx.InsertItems(b.ctx, p.UUID, pending(2)); err != nil {
				return err
			}
			if err := tx.DeletePool(b.ctx, p.UUID); err != nil {
				return err
			}
			return boom
		})

		// The transaction goes on: the pool is still there for the next write.
		_, err := tx.InsertItems(b.ctx, p.UUID, pending(1))
		return err
	})
	require.ErrorIs(t, spErr, boom)
	require.Equal(t, kept, b.item(kept.ID))
	require.Equal(t, items[1], b.item(items[1].ID))
	all := b.allItems(p.UUID, "")
	require.Len(t, all, 4, "3 items, plus the one inserted after the failed savepoint")
	var counts map[pool.Status]int
	b.read(func(tx store.Tx) error {
		var err error
		counts, err = tx.StatusCounts(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, 3, counts[pool.StatusPending])
	require.Equal(t, 1, counts[pool.StatusProcessing])
	require.Zero(t, counts[pool.StatusSkipped])

	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		return tx.Savepoint(b.ctx, func(store.Tx) error { return nil })
	})
	require.ErrorIs(t, err, store.ErrReadOnly)
}

// snapshot is everything the suite can read about some pools.
type snapshot struct {
	pools  []pool.Pool
	items  [][]pool.Item
	counts []map[pool.Status]int
}

func (b *bundle) snapshot(ps ...pool.Pool) snapshot {
	b.t.Helper()
	var s snapshot
	for _, p := range ps {
		s.pools = append(s.pools, b.getPool(p.UUID))
		s.items = append(s.items, b.allItems(p.UUID, ""))
		b.read(func(tx store.Tx) error {
			c, err := tx.StatusCounts(b.ctx, p.UUID)
			s.counts = append(s.counts, c)
			return err
		})
	}
	return s
}

func testReadOnly(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	before := b.snapshot(p, q)

	changed := items[0]
	changed.Status = pool.StatusCompleted
	renamed := p
	renamed.Name = "Renamed"
	writes := map[string]func(tx store.Tx) error{
		"InsertPool": func(tx store.Tx) error { return tx.InsertPool(b.ctx, newPool()) },
		"UpdatePool": func(tx store.Tx) error { return tx.UpdatePool(b.ctx, renamed) },
		"DeletePool": func(tx store.Tx) error { return tx.DeletePool(b.ctx, q.UUID) },
		"InsertItems": func(tx store.Tx) error {
			_, err := tx.InsertItems(b.ctx, p.UUID, pending(1))
			return err
		},
		"CopyItems": func(tx store.Tx) error {
			_, err := tx.CopyItems(b.ctx, p.UUID, q.UUID, t0)
			return err
		},
		"UpdateItem": func(tx store.Tx) error { return tx.UpdateItem(b.ctx, items[0].Status, changed) },
		"DeleteItems": func(tx store.Tx) error {
			_, err := tx.DeleteItems(b.ctx, p.UUID, []int64{items[1].ID})
			return err
		},
		"Due": func(tx store.Tx) error {
			_, err := tx.Due(b.ctx, p.UUID, pool.FIFO, t0, 10)
			return err
		},
	}
	for name, w := range writes {
		err := b.st.Read(b.ctx, w)
		require.ErrorIs(t, err, store.ErrReadOnly, name)
		// The transaction is still usable for reads after the refusal.
		err = b.st.Read(b.ctx, func(tx store.Tx) error {
			if err := w(tx); !errors.Is(err, store.ErrReadOnly) {
				return fmt.Errorf("%s: %v, want ErrReadOnly", name, err)
			}
			_, err := tx.Pool(b.ctx, p.UUID)
			return err
		})
		require.NoError(t, err)
	}
	require.Equal(t, before, b.snapshot(p, q), "nothing changed")
}

func testWriteRollback(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	b.set(items, 2, retrying(at(time.Hour)))
	before := b.snapshot(p, q)

	fresh := newPool()
	boom := errors.New("boom")
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(b.ctx, fresh); err != nil {
			return err
		}
		if _, err := tx.InsertItems(b.ctx, fresh.UUID, pending(5)); err != nil {
			return err
		}
		if _, err := tx.InsertItems(b.ctx, p.UUID, pending(2)); err != nil {
			return err
		}
		if _, err := tx.CopyItems(b.ctx, p.UUID, q.UUID, t0); err != nil {
			return err
		}
		renamed := p
		renamed.Name = "Renamed"
		if err := tx.UpdatePool(b.ctx, renamed); err != nil {
			return err
		}
		done := items[0]
		done.Status = pool.StatusCompleted
		if err := tx.UpdateItem(b.ctx, items[0].Status, done); err != nil {
			return err
		}
		if _, err := tx.DeleteItems(b.ctx, p.UUID, []int64{items[1].ID}); err != nil {
			return err
		}
		if _, err := tx.Due(b.ctx, p.UUID, pool.FIFO, at(2*time.Hour), 10); err != nil {
			return err
		}
		if err := tx.DeletePool(b.ctx, q.UUID); err != nil {
			return err
		}
		return fmt.Errorf("after all that: %w", boom)
	})
	require.ErrorIs(t, err, boom, "Write returns fn's error")

	err = b.st.Read(b.ctx, func(tx store.Tx) error {
		_, err := tx.Pool(b.ctx, fresh.UUID)
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound, "the new pool is not there")
	require.Equal(t, before, b.snapshot(p, q), "nothing changed")
	// Not even the due set: the retried item is due only at its time.
	require.Equal(t, ids(items[:2]), b.dueIDs(p.UUID, pool.FIFO, at(time.Hour-1), 10))
}

func testWriteSeesOwnWrites(t *testing.T, b *bundle) {
	p := newPool()
	// Write may run its function again: it only gathers what the calls
	// answered, and the checks come once it returns.
	var added, inFlight int
	var got pool.Pool
	var due []pool.Item
	b.write(func(tx store.Tx) (err error) {
		inFlight = 0
		if err := tx.InsertPool(b.ctx, p); err != nil {
			return err
		}
		if added, err = tx.InsertItems(b.ctx, p.UUID, pending(3)); err != nil {
			return err
		}
		if got, err = tx.Pool(b.ctx, p.UUID); err != nil {
			return err
		}
		if due, err = tx.Due(b.ctx, p.UUID, pool.FIFO, t0, 10); err != nil {
			return err
		}
		if len(due) == 0 {
			return nil // nothing to claim: require.Len fails below
		}
		claimed := due[0]
		claimed.Status = pool.StatusProcessing
		if err := tx.UpdateItem(b.ctx, due[0].Status, claimed); err != nil {
			return err
		}
		inFlight, err = tx.InFlight(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, 3, added)
	require.Equal(t, 3, got.ContactsCount)
	require.Len(t, due, 3)
	require.Equal(t, 1, inFlight)
	require.Equal(t, 3, b.getPool(p.UUID).ContactsCount)
}

// testConcurrent runs writers and readers at once; every write must land
// and every read must see a consistent pool.
func testConcurrent(t *testing.T, b *bundle) {
	const writers, readers, writes = 4, 4, 10
	p := b.insertPool()
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, writers+readers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < writes; i++ {
				err := b.st.Write(ctx, func(tx store.Tx) error {
					if _, err := tx.InsertItems(ctx, p.UUID, pending(2)); err != nil {
						return err
					}
					due, err := tx.Due(ctx, p.UUID, pool.FIFO, t0, 1)
					if err != nil || len(due) == 0 {
						return err
					}
					done := due[0]
					done.Status = pool.StatusCompleted
					return tx.UpdateItem(ctx, due[0].Status, done)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var rg sync.WaitGroup
	for r := 0; r < readers; r++ {
		rg.Add(1)
		go func() {
			defer rg.Done()
			for ctx.Err() == nil {
				err := b.st.Read(ctx, func(tx store.Tx) error {
					got, err := tx.Pool(ctx, p.UUID)
					if err != nil {
						return err
					}
					counts, err := tx.StatusCounts(ctx, p.UUID)
					if err != nil {
						return err
					}
					if sum := counts[pool.StatusPending] + counts[pool.StatusCompleted]; sum != got.ContactsCount {
						return fmt.Errorf("counts %v do not add up to %d", counts, got.ContactsCount)
					}
					if got.ContactsCount != 2*counts[pool.StatusCompleted] {
						return fmt.Errorf("saw half a write: %v", counts)
					}
					return nil
				})
				if err != nil && ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	rg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got := b.getPool(p.UUID)
	require.Equal(t, writers*writes*2, got.ContactsCount)
	require.Len(t, b.allItems(p.UUID, pool.StatusCompleted), writers*writes)
}

// testSavepointDispatchState checks that what a write transaction knows of
// a pool's dispatch (its items in flight, its due set) after a savepoint
// rolled back is as it was before the savepoint: a store that keeps the
// pool's state for the transaction must forget what fn wrote to it.
func testSavepointDispatchState(t *testing.T, b *bundle) {
	p := b.insertPool(func(p *pool.Pool) { p.Type, p.MaxParallelItems = pool.Parallel, 2 })
	items := b.insertItems(p.UUID, pending(2))
	boom := errors.New("boom")
	// Write may run its function again: it only gathers what the calls
	// answered (the savepoint's own check too: spSeen says it was reached),
	// and the checks come once it returns.
	var before, after []pool.Item
	var spSeen bool
	var spInFlight, inFlight int
	var spInFlightErr, spErr error
	b.write(func(tx store.Tx) (err error) {
		spSeen = false
		if _, before, err = tx.PoolDue(b.ctx, p.UUID, t0, 10); err != nil {
			return err
		}
		spErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			it := items[0]
			it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 1, 1, at(time.Minute)
			if err := tx.UpdateItem(b.ctx, pool.StatusPending, it); err != nil {
				return err
			}
			spInFlight, spInFlightErr = tx.InFlight(b.ctx, p.UUID)
			spSeen = true
			return boom
		})
		if inFlight, err = tx.InFlight(b.ctx, p.UUID); err != nil {
			return err
		}
		_, after, err = tx.PoolDue(b.ctx, p.UUID, t0, 10)
		return err
	})
	require.Equal(t, ids(items), ids(before))
	if spSeen {
		require.NoError(t, spInFlightErr)
		require.Equal(t, 1, spInFlight)
	}
	require.ErrorIs(t, spErr, boom)
	require.Zero(t, inFlight, "the savepoint's dispatch is undone")
	require.Equal(t, ids(items), ids(after), "the room the cap leaves is back")
}
