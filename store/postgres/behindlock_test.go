package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestInsertItems_PoolMadeBehindTheLock: an InsertItems that is the
// transaction's first lock sends its INSERT in the batch that takes the
// pool's advisory lock. When the lock statement finds no pool, but the pool
// is committed before the INSERT runs (read committed: a new snapshot per
// statement), the INSERT adds items to a pool whose lock was not taken. The
// transaction must then run again with the lock, not return ErrNotFound
// with the items written and uncounted. The other session's lock on
// pool_counts holds the batch between its statements.
func TestInsertItems_PoolMadeBehindTheLock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 1})
	item := func() pool.Item {
		return pool.Item{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: time.Now().UTC()}
	}
	warm := newTestPool("warm") // the statements prepared before the race
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, warm) }))
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.InsertItems(ctx, warm.UUID, []pool.Item{item()})
		return err
	}))

	other := postgres.SchemaConn(t, url, st.Schema())
	_, err := other.Exec(ctx, "BEGIN")
	require.NoError(t, err)
	_, err = other.Exec(ctx, "LOCK TABLE pool_counts IN ACCESS EXCLUSIVE MODE") // the batch's state read waits
	require.NoError(t, err)

	id := uuid.New()
	var insErr error
	done := make(chan error, 1)
	go func() {
		done <- st.Write(ctx, func(tx store.Tx) error {
			_, insErr = tx.InsertItems(ctx, id, []pool.Item{item(), item(), item()})
			return nil // a store must not count on the caller to roll back
		})
	}()
	time.Sleep(300 * time.Millisecond) // the lock statement has found no pool
	now := time.Now().UnixNano()
	_, err = other.Exec(ctx, `WITH p AS (INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries,
		is_active, created_at, updated_at, search) VALUES ($1, 'late', 'late pool', 'FIFO', 1, 3, true, $2, $2, 'late late pool') RETURNING id)
		INSERT INTO pool_counts (pool_id) SELECT id FROM p`, id, now)
	require.NoError(t, err)
	_, err = other.Exec(ctx, "COMMIT")
	require.NoError(t, err)
	require.NoError(t, <-done)

	var items, pending int
	require.NoError(t, other.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM items i JOIN pools p ON p.id = i.pool_id WHERE p.uuid = $1),
		(SELECT c.pending FROM pool_counts c JOIN pools p ON p.id = c.pool_id WHERE p.uuid = $1)`, id).Scan(&items, &pending))
	require.Equal(t, items, pending, "items written and not counted (InsertItems said %v)", insErr)
	if insErr != nil {
		require.Zero(t, items, "a failed InsertItems wrote items: %v", insErr)
	}
}
