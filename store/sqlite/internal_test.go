package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMigrations_Embedded: the embedded schema history loads (the rules
// of its file names are tested in store/internal/migrations).
func TestMigrations_Embedded(t *testing.T) {
	t.Parallel()
	require.NoError(t, historyErr, "the embedded migrations load")
	require.Equal(t, "0001_init.sql", history[0].Name)
	require.Equal(t, latestVersion(), history[len(history)-1].Version)
}

func TestFoldCase(t *testing.T) {
	t.Parallel()
	for _, pair := range [][2]string{
		{"ÉCOLE", "école"},
		{"VIP Customers", "vip customers"},
		{"ΣΊΣΥΦΟΣ", "σίσυφος"}, // final sigma folds with the others
		{"KELVIN \u212a", "kelvin k"},
		{"Straße", "STRAßE"}, // simple folding: ß stays one rune
	} {
		require.Equal(t, foldCase(pair[0]), foldCase(pair[1]), "%q vs %q", pair[0], pair[1])
		require.True(t, strings.EqualFold(pair[0], pair[1]))
	}
	require.NotEqual(t, foldCase("ecole"), foldCase("école"), "accents are kept")
	require.NotEqual(t, foldCase("strasse"), foldCase("straße"))
}

// TestSetWAL_WaitsForAWriter: switching a file to WAL while another
// connection holds the write lock fails at once with SQLITE_BUSY, without
// SQLite's busy handler (it would risk a deadlock); setWAL must wait for
// the lock like the busy handler would, up to its timeout. (Two processes
// opening a new file at once met this in about one Open in a hundred.)
func TestSetWAL_WaitsForAWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// locked returns a connection pool on a new file in rollback-journal
	// mode, and a connection of another pool holding the file's write lock.
	locked := func(t *testing.T) (*sql.DB, *sql.Conn) {
		path := filepath.Join(t.TempDir(), "wal.db")
		open := func() *sql.DB {
			db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
			require.NoError(t, err)
			db.SetMaxOpenConns(1)
			t.Cleanup(func() { db.Close() })
			return db
		}
		other, db := open(), open()
		_, err := other.ExecContext(ctx, `CREATE TABLE t (x)`)
		require.NoError(t, err)
		c, err := other.Conn(ctx)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = c.ExecContext(ctx, `BEGIN IMMEDIATE`)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, `PRAGMA journal_mode = WAL`)
		require.True(t, isBusy(err), "SQLite itself does not wait: %v", err)
		return db, c
	}

	t.Run("Waits", func(t *testing.T) {
		t.Parallel()
		db, c := locked(t)
		// The writer lets go once setWAL has met its lock: setWAL must then
		// try again and succeed.
		met := make(chan struct{})
		released := make(chan error, 1)
		go func() {
			<-met
			_, err := c.ExecContext(ctx, `COMMIT`)
			released <- err
		}()
		tries := 0
		err := setWAL(ctx, db, 5*time.Second, func() {
			if tries++; tries == 1 {
				close(met)
			}
		})
		require.Positive(t, tries, "setWAL met the writer's lock")
		require.NoError(t, err)
		require.NoError(t, <-released)
	})

	t.Run("GivesUp", func(t *testing.T) {
		t.Parallel()
		db, _ := locked(t)
		start := time.Now()
		err := setWAL(ctx, db, 100*time.Millisecond, nil)
		require.True(t, isBusy(err), "%v", err)
		require.Less(t, time.Since(start), 2*time.Second)
	})
}

// TestCachedStatements_NoBareLimit: the statements kept prepared for the
// Store's life that have an ORDER BY and a LIMIT bind the limit through
// limitParam, never as a bare "LIMIT ?", which SQLite prepares again at
// every execution (see limitParam).
func TestCachedStatements_NoBareLimit(t *testing.T) {
	t.Parallel()
	for name, q := range map[string]string{
		"dueFIFOSQL": dueFIFOSQL, "dueLIFOSQL": dueLIFOSQL, "dueParallelSQL": dueParallelSQL,
		"expiredSQL": expiredSQL, "itemsSQL": itemsSQL, "itemsByStatusSQL": itemsByStatusSQL,
		"dncSQL": dncSQL, "escalationsSQL": escalationsSQL, "escalationsOfPoolSQL": escalationsOfPoolSQL,
	} {
		require.Contains(t, q, "ORDER BY", name)
		require.Contains(t, q, limitParam, name)
		require.NotContains(t, q, "LIMIT ?", name)
	}
}
