package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// The tests below check that a write transaction sees a pool as it is,
// whatever an earlier one left in the Store's cache of pools (cache.go):
// each first lets a write transaction read the pool, so that its state is
// cached, then changes the pool in a way the cache cannot have seen, then
// reads it in a write transaction again.

// poolView is what a write transaction sees of a pool: its row, and the
// dispatch state the cache keeps.
type poolView struct {
	cap, contacts, inFlight int
	leased                  []uuid.UUID // in flight with a lease ended by testT0 + a day
	due                     []uuid.UUID // due at testT0 + a day, FIFO order
}

func viewPool(t *testing.T, st store.Store, id uuid.UUID) poolView {
	t.Helper()
	ctx := context.Background()
	var v poolView
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		p, err := tx.Pool(ctx, id)
		if err != nil {
			return err
		}
		v.cap, v.contacts = p.MaxParallelItems, p.ContactsCount
		if v.inFlight, err = tx.InFlight(ctx, id); err != nil {
			return err
		}
		later := testT0.Add(24 * time.Hour)
		expired, err := tx.Expired(ctx, id, later, 100)
		if err != nil {
			return err
		}
		for _, it := range expired {
			v.leased = append(v.leased, it.ContactUUID)
		}
		due, err := tx.Due(ctx, id, pool.FIFO, later, 100)
		for _, it := range due {
			v.due = append(v.due, it.ContactUUID)
		}
		return err
	}))
	return v
}

// poolItems returns a pool's items in insertion order.
func poolItems(t *testing.T, st store.Store, id uuid.UUID) []pool.Item {
	t.Helper()
	ctx := context.Background()
	var items []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		var err error
		items, _, err = tx.Items(ctx, id, pool.ItemQuery{Page: 1, PerPage: 100})
		return err
	}))
	return items
}

// claimed is it dispatched at testT0 with a lease of an hour.
func claimed(it pool.Item) pool.Item {
	it.Status, it.Attempts, it.Token = pool.StatusProcessing, it.Attempts+1, it.Token+1
	it.StartedAt, it.LeaseExpiresAt = &testT0, testT0.Add(time.Hour)
	return it
}

// retrying is it waiting for a retry a minute after testT0.
func retrying(it pool.Item) pool.Item {
	at := testT0.Add(time.Minute)
	it.Status, it.RetryCount, it.NextRetryAt = pool.StatusRetrying, it.RetryCount+1, &at
	return it
}

func contacts(items ...pool.Item) []uuid.UUID {
	out := make([]uuid.UUID, len(items))
	for i, it := range items {
		out[i] = it.ContactUUID
	}
	return out
}

// eachStore runs fn on a fresh in-memory store and on a fresh file store:
// both keep the cache.
func eachStore(t *testing.T, fn func(t *testing.T, st *sqlite.Store)) {
	eachStoreWith(t, checked, fn)
}

// eachStoreWith is eachStore with the stores opened with opts.
func eachStoreWith(t *testing.T, opts sqlite.Options, fn func(t *testing.T, st *sqlite.Store)) {
	mem, err := sqlite.Open(context.Background(), sqlite.MemoryPath, opts)
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	file, _ := MustOpenFile(t, opts)
	for name, st := range map[string]*sqlite.Store{"Memory": mem, "File": file} {
		t.Run(name, func(t *testing.T) { fn(t, st) })
	}
}

func TestCache_AnotherStoreWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, path := MustOpenFile(t, checked)
	b, err := sqlite.Open(ctx, path, checked)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })

	p := insertPool(t, a, 3)
	items := poolItems(t, a, p.UUID)
	require.Equal(t, poolView{cap: 10, contacts: 3, due: contacts(items...)}, viewPool(t, a, p.UUID))

	// b changes the cap, claims one item, puts another to wait for a retry
	// and adds a fourth: a must see all of it.
	p.MaxParallelItems = 7
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error {
		if err := tx.UpdatePool(ctx, p); err != nil {
			return err
		}
		if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])); err != nil {
			return err
		}
		if err := tx.UpdateItem(ctx, pool.StatusPending, retrying(items[1])); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, pendingItems(1))
		return err
	}))
	items = poolItems(t, a, p.UUID)
	require.Equal(t, poolView{
		cap: 7, contacts: 4, inFlight: 1,
		leased: contacts(items[0]),
		due:    contacts(items[1:]...),
	}, viewPool(t, a, p.UUID))

	// And the other way round.
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[2]))
	}))
	require.Equal(t, 2, viewPool(t, b, p.UUID).inFlight)
}

func TestCache_WritesBeforeThePoolIsRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, st *sqlite.Store) {
		p := insertPool(t, st, 3)
		items := poolItems(t, st, p.UUID)
		viewPool(t, st, p.UUID)

		// Transactions that write the pool's items or row without
		// reading the pool first: the items' writes take the cached
		// state over, the row's drops it.
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0]))
		}))
		require.Equal(t, poolView{cap: 10, contacts: 3, inFlight: 1,
			leased: contacts(items[0]), due: contacts(items[1:]...)}, viewPool(t, st, p.UUID))

		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.DeleteItems(ctx, p.UUID, []int64{items[2].ID})
			return err
		}))
		require.Equal(t, poolView{cap: 10, contacts: 2, inFlight: 1,
			leased: contacts(items[0]), due: contacts(items[1])}, viewPool(t, st, p.UUID))

		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusPending, retrying(items[1]))
		}))
		require.Equal(t, poolView{cap: 10, contacts: 2, inFlight: 1,
			leased: contacts(items[0]), due: contacts(items[1])}, viewPool(t, st, p.UUID))

		p.MaxParallelItems = 5
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.UpdatePool(ctx, p) }))
		require.Equal(t, 5, viewPool(t, st, p.UUID).cap)

		// A pool read, then its row written, then read again in one
		// transaction.
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			p.MaxParallelItems = 6
			if err := tx.UpdatePool(ctx, p); err != nil {
				return err
			}
			got, err := tx.Pool(ctx, p.UUID)
			require.Equal(t, 6, got.MaxParallelItems)
			return err
		}))
		require.Equal(t, 6, viewPool(t, st, p.UUID).cap)
	})
}

func TestCache_Rollbacks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, st *sqlite.Store) {
		p := insertPool(t, st, 3)
		items := poolItems(t, st, p.UUID)
		before := viewPool(t, st, p.UUID)
		errUndo := errors.New("undo")

		// A transaction that rolls back leaves nothing behind.
		err := st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])); err != nil {
				return err
			}
			_, err := tx.InsertItems(ctx, p.UUID, pendingItems(2))
			return errors.Join(err, errUndo)
		})
		require.ErrorIs(t, err, errUndo)
		require.Equal(t, before, viewPool(t, st, p.UUID))

		// A write before a savepoint that is rolled back stays.
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])); err != nil {
				return err
			}
			err := tx.Savepoint(ctx, func(tx store.Tx) error {
				if err := tx.UpdateItem(ctx, pool.StatusPending, claimed(items[1])); err != nil {
					return err
				}
				return errUndo
			})
			if !errors.Is(err, errUndo) {
				return err
			}
			return nil
		}))
		require.Equal(t, poolView{cap: 10, contacts: 3, inFlight: 1,
			leased: contacts(items[0]), due: contacts(items[1:]...)}, viewPool(t, st, p.UUID))
	})
}

func TestCache_PoolDeletedAndItsIDReused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, st *sqlite.Store) {
		a := insertPool(t, st, 2) // the last pool: its internal id is the largest
		viewPool(t, st, a.UUID)
		b := insertPoolParams(uuid.New())
		b.MaxParallelItems = 4
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, a.UUID); err != nil {
				return err
			}
			if err := tx.DeletePool(ctx, a.UUID); err != nil {
				return err
			}
			// SQLite gives b the id a had.
			if err := tx.InsertPool(ctx, b); err != nil {
				return err
			}
			if _, err := tx.Pool(ctx, b.UUID); err != nil {
				return err
			}
			_, err := tx.Pool(ctx, a.UUID)
			require.ErrorIs(t, err, store.ErrNotFound, "a, in the transaction that deleted it")
			return nil
		}))
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.Pool(ctx, a.UUID)
			require.ErrorIs(t, err, store.ErrNotFound, "a, after")
			got, err := tx.Pool(ctx, b.UUID)
			require.Equal(t, 4, got.MaxParallelItems)
			require.Zero(t, got.ContactsCount)
			return err
		}))
	})
}

// TestCache_CheckMode changes a cached pool behind the Store's back, on its
// own writer connection (whose writes the cache does not watch), and
// checks that the next Write in check mode fails on the difference, names
// the pool, the field and both values, leaves the Store usable, and lets
// through what a lower bound allows.
func TestCache_CheckMode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	leaseAt, retryAt := testT0.Add(time.Hour), testT0.Add(time.Minute)
	// setup stores a pool with a leased item, an item in flight without a
	// lease, one waiting for a retry and a Pending one; before runs on the
	// connection before the pool is cached.
	setup := func(t *testing.T, st *sqlite.Store, before string) pool.Pool {
		p := insertPool(t, st)
		items := pendingItems(4)
		items[0].Status, items[0].Attempts, items[0].Token, items[0].LeaseExpiresAt = pool.StatusProcessing, 1, 1, leaseAt
		items[1].Status, items[1].Attempts, items[1].Token = pool.StatusInCall, 1, 1
		items[2].Status, items[2].Attempts, items[2].RetryCount, items[2].NextRetryAt = pool.StatusRetrying, 1, 1, &retryAt
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.InsertItems(ctx, p.UUID, items)
			return err
		}))
		raw(t, st, before)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }))
		require.Equal(t, 1, sqlite.CachedPools(st))
		return p
	}
	for _, tc := range []struct {
		name, before, after string
		want                string // "" when the check must let it through
	}{
		{"Row", "", `UPDATE pools SET max_parallel_items = 3`, "MaxParallelItems: cached 10, database 3"},
		{"ContactsCount", "", `UPDATE pool_counts SET n = n + 1 WHERE status = 'Completed'`, "ContactsCount: cached 4, database 5"},
		{"InFlight", "", `UPDATE items SET status = 'Pending', ready = 1, attempts = 0, token = 0 WHERE status = 'In_Call';
			UPDATE pool_counts SET n = n - 1 WHERE status = 'In_Call';
			UPDATE pool_counts SET n = n + 1 WHERE status = 'Pending'`, "inFlight: cached 2, database 1"},
		// The counts themselves wrong: found against the items, and again
		// at every Write until they are mended.
		{"CountsAgainstItems", "", `UPDATE pool_counts SET n = n - 1 WHERE status = 'In_Call'`, "in flight: 1 counted, 2 items"},
		{"Deleted", "", `DELETE FROM pools`, "cached, but not in the database"},
		{"ExpiryEarlier", "", `UPDATE items SET lease_expires_at = lease_expires_at - 1 WHERE status = 'Processing'`,
			"expiry (a lower bound): cached 2025-06-01T13:00:00Z, database 2025-06-01T12:59:59.999999999Z"},
		{"ExpiryAppears", `UPDATE items SET lease_expires_at = NULL`,
			`UPDATE items SET lease_expires_at = 0 WHERE status = 'In_Call'`,
			"expiry (a lower bound): cached none, database 1970-01-01T00:00:00Z"},
		{"RetryEarlier", "", `UPDATE items SET next_retry_at = next_retry_at - 60000000000 WHERE status = 'Retrying'`,
			"retry (a lower bound): cached 2025-06-01T12:01:00Z, database 2025-06-01T12:00:00Z"},
		{"RetryAppears", `UPDATE items SET ready = 1 WHERE status = 'Retrying'`,
			`UPDATE items SET ready = 0 WHERE status = 'Retrying'`,
			"retry (a lower bound): cached none, database 2025-06-01T12:01:00Z"},
		{"ExpiryLater", "", `UPDATE items SET lease_expires_at = lease_expires_at + 1`, ""},
		{"ExpiryGone", "", `UPDATE items SET lease_expires_at = NULL`, ""},
		{"RetryGone", "", `UPDATE items SET ready = 1 WHERE status = 'Retrying'`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			eachStore(t, func(t *testing.T, st *sqlite.Store) {
				p := setup(t, st, tc.before)
				raw(t, st, tc.after)
				err := st.Write(ctx, func(store.Tx) error { return nil }) // checks the cached pools all the same
				if tc.want == "" {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, sqlite.ErrCacheMismatch)
				require.ErrorContains(t, err, "pool "+p.UUID.String())
				require.ErrorContains(t, err, tc.want)
				require.Zero(t, sqlite.CachedPools(st), "the cache is emptied")
				err = st.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err })
				switch tc.name {
				case "Deleted":
					require.ErrorIs(t, err, store.ErrNotFound, "the next Write reads the pool again")
				case "CountsAgainstItems":
					require.ErrorContains(t, err, tc.want, "the database is still wrong")
				default:
					require.NoError(t, err, "the next Write reads the pool again")
				}
			})
		})
	}

	t.Run("Off", func(t *testing.T) {
		t.Parallel()
		st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		p := setup(t, st, "")
		raw(t, st, `UPDATE pools SET max_parallel_items = 3`)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			got, err := tx.Pool(ctx, p.UUID)
			require.Equal(t, 10, got.MaxParallelItems, "the cache assumes no such write")
			return err
		}))
	})
}

// raw runs query, if any, on the Store's writer connection, between Writes.
func raw(t *testing.T, st *sqlite.Store, query string) {
	t.Helper()
	if query == "" {
		return
	}
	_, err := sqlite.WriterConn(st).ExecContext(context.Background(), query)
	require.NoError(t, err)
}
