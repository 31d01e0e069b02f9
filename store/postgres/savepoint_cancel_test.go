package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWrite_EndedInASavepoint: a Write whose context ends while a
// statement inside a savepoint waits for another session's lock fails with
// an error wrapping the context's, nothing of it written. The round trip
// ends by closing the connection (pgx's way), so the rollback to the
// savepoint that follows fails too, with "conn closed"; that error used to
// be the Write's, without the context's, and group commit, which gives each
// caller its own context's error only for a Write ended that way, handed it
// to every caller of the batch ("requeue item: postgres: transaction
// unusable after a failed savepoint rollback: … conn closed", a CI flake of
// TestOpsRace_PostgresTwoNodes).
func TestWrite_EndedInASavepoint(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		st := pgtest.Open(t, url, postgres.Options{Locking: l})
		p := newTestPool("held while a savepoint waits")
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		free := holdPool(t, st, p.UUID, nil)
		defer free()

		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		other := newTestPool("written before the savepoint")
		var inner error
		err := st.Write(wctx, func(tx store.Tx) error {
			if err := tx.InsertPool(wctx, other); err != nil {
				return err
			}
			time.AfterFunc(300*time.Millisecond, cancel)
			inner = tx.Savepoint(wctx, func(tx store.Tx) error {
				_, err := tx.Pool(wctx, p.UUID) // waits for the lock held above
				return err
			})
			return nil // as group commit does: the error is the operation's
		})
		require.Error(t, inner, "the wait inside the savepoint ended")
		require.ErrorIs(t, err, context.Canceled, "the Write's error: %v (the savepoint's: %v)", err, inner)
		free()
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			_, err := tx.Pool(ctx, other.UUID)
			require.ErrorIs(t, err, store.ErrNotFound, "a pool of the ended Write was written")
			return nil
		}))
	})
}
