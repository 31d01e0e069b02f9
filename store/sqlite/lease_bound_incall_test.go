package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestExpired_InCallLeaseAfterTheBoundIsReadAgain proves that a write
// transaction's lease bound, read again exactly when Expired finds it stale,
// counts the leases of In_Call items as well as Processing ones: a
// Processing item settled leaves the bound at its lease end, an Expired
// after that end finds nothing and reads the bound again, and the In_Call
// item's lease, ending later, must still be taken back once it ends, in the
// same transaction and in the next one (from the Store's cache).
func TestExpired_InCallLeaseAfterTheBoundIsReadAgain(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st *sqlite.Store) {
		ctx := context.Background()
		p := insertPool(t, st, 2)
		items := poolItems(t, st, p.UUID)
		require.Len(t, items, 2)

		processing := claimed(items[0])
		processing.LeaseExpiresAt = testT0.Add(time.Minute)
		inCall := claimed(items[1])
		inCall.Status, inCall.LeaseExpiresAt = pool.StatusInCall, testT0.Add(10*time.Minute)

		var stale, same, next []pool.Item // Expired at 5 and 11 minutes, 11 in the next transaction
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil { // the pool's dispatch state known
				return err
			}
			if err := tx.UpdateItem(ctx, pool.StatusPending, processing); err != nil {
				return err
			}
			if err := tx.UpdateItem(ctx, pool.StatusPending, inCall); err != nil {
				return err
			}
			done := processing
			done.Status, done.LeaseExpiresAt = pool.StatusCompleted, time.Time{}
			done.CompletedAt = &testT0
			if err := tx.UpdateItem(ctx, pool.StatusProcessing, done); err != nil {
				return err
			}
			// The bound (a minute) is stale: nothing has ended by five.
			var err error
			if stale, err = tx.Expired(ctx, p.UUID, testT0.Add(5*time.Minute), 10); err != nil {
				return err
			}
			same, err = tx.Expired(ctx, p.UUID, testT0.Add(11*time.Minute), 10)
			return err
		}))
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
			var err error
			next, err = tx.Expired(ctx, p.UUID, testT0.Add(11*time.Minute), 10)
			return err
		}))
		require.Empty(t, stale, "no lease ended by five minutes")
		require.Equal(t, contacts(inCall), contacts(same...), "the In_Call lease ended, in the same transaction")
		require.Equal(t, contacts(inCall), contacts(next...), "the In_Call lease ended, in the next transaction")
	})
}
