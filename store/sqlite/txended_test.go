package sqlite_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_TransactionEndedBySQLite: after some errors (a full disk, an
// I/O error, no memory) SQLite rolls the whole transaction back by itself
// and the connection is in autocommit mode, where each statement would
// commit on its own. The Write must then fail closed: nothing that ran
// before or after the error is written, and the store goes on working. A
// full disk is made by capping the file at its current size
// (max_page_count on the writer's connection).
func TestStore_TransactionEndedBySQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (*sqlite.Store, pool.Pool, []pool.Item, func()) {
		st, _ := MustOpenFile(t, checked)
		p := insertPool(t, st, 2) // FIFO: cap 1
		items := poolItems(t, st, p.UUID)
		wc := sqlite.WriterConn(st)
		var pages int
		require.NoError(t, wc.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
		_, err := wc.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages))
		require.NoError(t, err)
		return st, p, items, func() {
			_, err := wc.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`)
			require.NoError(t, err)
		}
	}
	fill := func(tx store.Tx, p pool.Pool) error {
		_, err := tx.InsertItems(ctx, p.UUID, pendingItems(3000))
		return err
	}
	// after checks that the failed Write left the pool as it was, and that
	// the store still writes: item 0 claimed in a Write of its own.
	after := func(t *testing.T, st *sqlite.Store, p pool.Pool, items []pool.Item) {
		got := poolItems(t, st, p.UUID)
		require.Len(t, got, 2, "the items inserted before the error")
		require.Equal(t, pool.StatusPending, got[0].Status, "a statement after the error was written")
		require.Zero(t, viewPool(t, st, p.UUID).inFlight)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0]))
		}))
		require.Equal(t, 1, viewPool(t, st, p.UUID).inFlight)
	}

	// As group commit runs a batch again: each operation in a savepoint,
	// its error kept, the next one run. The savepoint after the error must
	// not begin (and its RELEASE commit) a transaction of its own.
	t.Run("Savepoints", func(t *testing.T) {
		t.Parallel()
		st, p, items, uncap := setup(t)
		var errs []error
		err := st.Write(ctx, func(tx store.Tx) error {
			for _, op := range []func(store.Tx) error{
				func(tx store.Tx) error { return fill(tx, p) },
				func(tx store.Tx) error { return tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])) },
			} {
				errs = append(errs, tx.Savepoint(ctx, op))
			}
			return nil
		})
		require.Error(t, err)
		require.ErrorContains(t, errs[0], "full", "the cause is kept")
		require.Error(t, errs[1], "an operation after the transaction ended")
		uncap()
		after(t, st, p, items)
	})

	// An operation that goes on after a failed statement (against the
	// contract of store.Tx, but a store must not turn it into a commit).
	t.Run("StatementsAfter", func(t *testing.T) {
		t.Parallel()
		st, p, items, uncap := setup(t)
		var ferr, uerr error
		err := st.Write(ctx, func(tx store.Tx) error {
			ferr = fill(tx, p)
			uerr = tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0]))
			return nil
		})
		require.ErrorContains(t, ferr, "full")
		require.Error(t, uerr, "a statement after the transaction ended")
		require.Error(t, err)
		uncap()
		after(t, st, p, items)
	})
}
