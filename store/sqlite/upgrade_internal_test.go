package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestMigrate_CountsWithoutTriggers upgrades a version 1 file, whose counts
// the triggers kept, to the latest version, where the store keeps them: the
// counts carry over, the item triggers are gone (a write is counted once,
// not twice), and writes after the upgrade keep the counts equal to a
// recount. On the way, 0003 rewrites constraints in place: the file passes
// integrity_check after it.
//
// Not parallel: it narrows the package's migrations to the first while it
// writes the old file (parallel tests start after it has put them back).
func TestMigrate_CountsWithoutTriggers(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	// Version 1, written as its code did: plain statements, counts by
	// triggers. (Not through Open: today's statements do not prepare on
	// an old schema.)
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	all := migrations
	migrations = all[:1]
	err = migrate(ctx, db)
	migrations = all
	require.NoError(t, err)
	poolID := uuid.New()
	_, err = db.ExecContext(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries,
    is_active, created_at, updated_at, search) VALUES (?, 'old pool', 'x', 'FIFO', 10, 3, 1, 0, 0, 'old pool')`, poolID[:])
	require.NoError(t, err)
	for i := range 5 {
		c := uuid.New()
		_, err = db.ExecContext(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready) VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1)`, c[:], i)
		require.NoError(t, err)
	}
	_, err = db.ExecContext(ctx, `UPDATE items SET status = 'Completed', ready = 0 WHERE id IN (1, 2)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{})
	require.NoError(t, err)
	defer st.Close()
	var triggers []string
	rows, err := st.wc.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name`)
	require.NoError(t, err)
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		triggers = append(triggers, name)
	}
	require.NoError(t, rows.Err())
	require.Equal(t, []string{"items_search_delete", "pools_counts_init"}, triggers)

	// Migration 0003 edited the tables' text in place: the file is sound,
	// its rows satisfy the constraints, none is an IN list any more, the
	// JSON check is gone and the foreign key of items is deferred.
	var check string
	require.NoError(t, st.wc.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)
	var inLists int
	require.NoError(t, st.wc.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema
WHERE type = 'table' AND (sql LIKE '%status IN (%' OR sql LIKE '%type IN (%')`).Scan(&inLists))
	require.Zero(t, inLists)
	var items string
	require.NoError(t, st.wc.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'items'`).Scan(&items))
	require.Contains(t, items, "DEFERRABLE INITIALLY DEFERRED")
	require.NotContains(t, items, "json_valid")

	counts := func() map[pool.Status]int {
		var out map[pool.Status]int
		require.NoError(t, st.Read(ctx, func(tx store.Tx) (err error) {
			out, err = tx.StatusCounts(ctx, poolID)
			return err
		}))
		return out
	}
	want := pool.ZeroCounts()
	want[pool.StatusPending], want[pool.StatusCompleted] = 3, 2
	require.Equal(t, want, counts(), "the counts carry over")

	// After the upgrade: a claim, a deletion and an insert, each counted once.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, poolID); err != nil {
			return err
		}
		due, err := tx.Due(ctx, poolID, pool.FIFO, time.Unix(0, 10), 1)
		if err != nil {
			return err
		}
		claimed := due[0]
		claimed.Status, claimed.Attempts, claimed.Token = pool.StatusProcessing, 1, 1
		claimed.LeaseExpiresAt = time.Unix(60, 0)
		if err := tx.UpdateItem(ctx, pool.StatusPending, claimed); err != nil {
			return err
		}
		if err := tx.DeleteItem(ctx, 1); err != nil {
			return err
		}
		_, err = tx.InsertItems(ctx, poolID, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: time.Unix(0, 9)}})
		return err
	}))
	want[pool.StatusPending], want[pool.StatusProcessing], want[pool.StatusCompleted] = 3, 1, 1
	require.Equal(t, want, counts())

	// 0004: the old items have no contact fields; a new one has, and the
	// search finds it.
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.InsertItems(ctx, poolID, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending,
			AddedAt: time.Unix(0, 11), Contact: pool.Contact{Name: "Ada Lovelace", PhoneNumber: "+15551234567"}}})
		return err
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		all, _, err := tx.Items(ctx, poolID, pool.ItemQuery{Page: 1, PerPage: 100})
		require.NoError(t, err)
		require.Len(t, all, 6)
		for _, it := range all[:5] {
			require.True(t, it.Contact.IsZero(), "an item from before 0004")
		}
		found, total, err := tx.Items(ctx, poolID, pool.ItemQuery{Search: "lovelace", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		require.Equal(t, "Ada Lovelace", found[0].Name)
		return nil
	}))
}
