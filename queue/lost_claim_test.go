package queue_test

// TestFencing_LostClaim: a claim whose commit is lost in a crash (SQLite's
// synchronous=NORMAL on power loss, PostgreSQL's synchronous_commit=off on
// a server crash) leaves its lease with a holder that survived it. The next
// claim of the item must not hand out that lease's token again: the lost
// lease settles nothing, and the new one stays valid.

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestFencing_LostClaim(t *testing.T) {
	t.Parallel()

	// The database file itself goes back to a copy taken before the
	// claim, as the file a power loss leaves behind would.
	t.Run("SQLiteFileRestored", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		dir := t.TempDir()
		path := filepath.Join(dir, "poolq.db")
		open := func() (*sqlite.Store, *queue.Engine) {
			st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: true})
			require.NoError(t, err)
			eng, err := queue.New(st, queue.Options{})
			require.NoError(t, err)
			return st, eng
		}
		shut := func(st *sqlite.Store, eng *queue.Engine) {
			require.NoError(t, eng.Close())
			require.NoError(t, st.Close())
		}

		st, eng := open()
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "Lost claims", Description: "d"})
		require.NoError(t, err)
		contact := uuid.New()
		_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact})
		require.NoError(t, err)
		shut(st, eng)
		saved := filepath.Join(t.TempDir(), "saved")
		copyDBFiles(t, dir, saved)

		st, eng = open()
		lost, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		shut(st, eng)

		removeDBFiles(t, dir)
		copyDBFiles(t, saved, dir) // the claim's commit is lost
		st, eng = open()
		defer shut(st, eng)
		requireLostClaimFenced(ctx, t, eng, lost)
	})

	// The item's row goes back to what it was before the claim, through
	// the store's own write (which keeps its counts), on either store.
	rowRestored := func(t *testing.T, st store.Store) {
		ctx := context.Background()
		eng := openEngine(t, st, queue.Options{})
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "Lost claims", Description: "d"})
		require.NoError(t, err)
		contact := uuid.New()
		_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: contact})
		require.NoError(t, err)
		var before pool.Item
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			before, err = tx.Item(ctx, p.UUID, contact)
			return err
		}))

		lost, err := eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { // the claim's commit is lost
			return tx.UpdateItems(ctx, store.Change{From: pool.StatusProcessing, Item: before})
		}))
		requireLostClaimFenced(ctx, t, eng, lost)
	}
	t.Run("SQLiteRowRestored", func(t *testing.T) {
		t.Parallel()
		rowRestored(t, openFileStore(t, ""))
	})
	t.Run("PostgresRowRestored", func(t *testing.T) {
		url := pgtest.URL(t)
		t.Parallel()
		rowRestored(t, pgtest.Open(t, url, postgres.Options{MaxConns: 2}))
	})
}

// requireLostClaimFenced claims again the item of lost, a lease whose
// claim was lost, and checks that lost settles nothing while the new
// lease settles the item.
func requireLostClaimFenced(ctx context.Context, t *testing.T, eng *queue.Engine, lost *queue.Lease) {
	t.Helper()
	cur, err := eng.TryDequeue(ctx, lost.PoolUUID)
	require.NoError(t, err, "claim after the lost one")
	require.Equal(t, lost.ItemID, cur.ItemID, "the same item")
	require.Equal(t, lost.Attempt, cur.Attempt, "the lost claim's attempt is not counted")

	require.ErrorIs(t, eng.Complete(ctx, lost, "by the lost lease"), queue.ErrLeaseLost,
		"the lost claim's lease (token %d) settled the new claim (token %d)", lost.Token, cur.Token)
	require.ErrorIs(t, eng.Fail(ctx, lost, queue.Failure{Final: true}), queue.ErrLeaseLost)
	require.ErrorIs(t, eng.MarkInCall(ctx, lost), queue.ErrLeaseLost)
	require.Greater(t, cur.Token, int64(0))

	require.NoError(t, eng.MarkInCall(ctx, cur), "the new lease is still the item's")
	require.NoError(t, eng.Complete(ctx, cur, "answered"))
	pg, err := eng.Items(ctx, lost.PoolUUID, pool.ItemQuery{})
	require.NoError(t, err)
	require.Len(t, pg.Data, 1)
	require.Equal(t, pool.StatusCompleted, pg.Data[0].Status)
	require.Equal(t, "answered", pg.Data[0].Notes)
	require.Equal(t, cur.Token, pg.Data[0].Token)
}

// copyDBFiles copies the files of the database poolq.db in from (the file,
// its WAL and shared memory, when there) into to.
func copyDBFiles(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o755))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	n := 0
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "poolq.db") {
			continue
		}
		src, err := os.Open(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		dst, err := os.Create(filepath.Join(to, e.Name()))
		require.NoError(t, err)
		_, err = io.Copy(dst, src)
		require.NoError(t, err)
		require.NoError(t, src.Close())
		require.NoError(t, dst.Close())
		n++
	}
	require.NotZero(t, n, "no database in %s", from)
}

// removeDBFiles removes the files of the database poolq.db in dir.
func removeDBFiles(t *testing.T, dir string) {
	t.Helper()
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		err := os.Remove(filepath.Join(dir, "poolq.db"+suffix))
		if !os.IsNotExist(err) {
			require.NoError(t, err)
		}
	}
}
