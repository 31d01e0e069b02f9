//go:build unix

package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_FileMovedWhileOpen: an operator deletes, renames or replaces
// the database file, its -wal or its -shm while a Store has them open (a
// "reset" with rm, a restore with mv, a cleanup script that takes -wal
// and -shm for leftovers). SQLite goes on writing through the descriptors
// it holds, into files no process will open again, and a Write returned
// nil for changes that were gone (at the Store's Close for a deleted file;
// at a crash, before a checkpoint, for a deleted -wal). Every Write after
// such a change must fail with ErrFileMoved, and commit nothing; the file
// that replaced the database must not be written to; and once the files
// are back at their paths (a rename undone), Writes go on.
func TestStore_FileMovedWhileOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name string
		move func(t *testing.T, path string) (undo func())
	}{
		{"DatabaseRemoved", func(t *testing.T, path string) func() {
			require.NoError(t, os.Remove(path))
			return nil
		}},
		{"DatabaseRenamed", func(t *testing.T, path string) func() {
			require.NoError(t, os.Rename(path, path+".old"))
			return func() { require.NoError(t, os.Rename(path+".old", path)) }
		}},
		{"DatabaseReplaced", func(t *testing.T, path string) func() {
			// A backup restored with mv: another poolq file.
			other := filepath.Join(t.TempDir(), "backup.db")
			st, err := sqlite.Open(ctx, other, sqlite.Options{})
			require.NoError(t, err)
			require.NoError(t, st.Close())
			require.NoError(t, os.Rename(other, path))
			return nil
		}},
		{"LogRemoved", func(t *testing.T, path string) func() {
			require.NoError(t, os.Remove(path+"-wal"))
			return nil
		}},
		{"IndexRemoved", func(t *testing.T, path string) func() {
			require.NoError(t, os.Remove(path+"-shm"))
			return nil
		}},
		{"SymlinkRepointed", func(t *testing.T, path string) func() {
			// path is a link (see below) to a.db; a deploy points it at
			// another file.
			other := filepath.Join(filepath.Dir(path), "b.db")
			st, err := sqlite.Open(ctx, other, sqlite.Options{})
			require.NoError(t, err)
			require.NoError(t, st.Close())
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.Symlink("b.db", path))
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "poolq.db")
			if tt.name == "SymlinkRepointed" {
				require.NoError(t, os.Symlink("a.db", path))
			}
			st, err := sqlite.Open(ctx, path, checked)
			require.NoError(t, err)
			defer st.Close()
			insertPool(t, st, 3)

			undo := tt.move(t, path)
			before, _ := os.ReadFile(path)
			for range 2 { // every Write, not only the first after the change
				p := insertPoolParams(uuid.New())
				err = st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) })
				require.ErrorIs(t, err, sqlite.ErrFileMoved)
				require.False(t, poolExists(t, st, p.UUID), "nothing committed")
			}
			after, _ := os.ReadFile(path)
			require.Equal(t, before, after, "the file now at the path is not written to")
			if undo != nil {
				undo()
				insertPool(t, st, 3)
			}
		})
	}
}

// TestStore_JournalModeKeptWhileOpen: another process (an operator's
// sqlite3 shell) cannot take the file out of WAL mode while a Store has it
// open, which would drop the guarantees of the package documentation
// (readers beside the writer, synchronous=NORMAL's meaning): SQLite
// refuses it as long as another connection holds the file, and the Store
// always holds it, its writer's connection for its whole life.
func TestStore_JournalModeKeptWhileOpen(t *testing.T) {
	t.Parallel()
	st, path := MustOpenFile(t, checked)
	insertPool(t, st, 3)
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer db.Close()
	for _, mode := range []string{"DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"} {
		var got string
		err := db.QueryRow("PRAGMA journal_mode = " + mode).Scan(&got)
		if err == nil {
			require.Equal(t, "wal", got, "PRAGMA journal_mode = %s", mode)
		}
		insertPool(t, st, 3)
	}
	var got string
	require.NoError(t, db.QueryRow("PRAGMA journal_mode").Scan(&got))
	require.Equal(t, "wal", got)
}

// TestEngine_FileMovedWhileOpen: an engine over a Store whose database
// file was deleted fails its writes at once with ErrFileMoved (a blocking
// Dequeue too, rather than waiting out its context), reads what the Store
// holds open, and closes.
func TestEngine_FileMovedWhileOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, checked)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "file deleted", Description: "rm while open", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	require.NoError(t, os.Remove(path))
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.ErrorIs(t, err, sqlite.ErrFileMoved)
	require.ErrorIs(t, eng.Complete(ctx, l, "answered"), sqlite.ErrFileMoved)
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = eng.Dequeue(dctx, p.UUID)
	require.ErrorIs(t, err, sqlite.ErrFileMoved)
	require.NoError(t, dctx.Err(), "failed at once")
	items, err := eng.Items(ctx, p.UUID, pool.ItemQuery{})
	require.NoError(t, err)
	require.Equal(t, 2, items.Total, "reads go on, from the file the Store holds")
	require.NoError(t, eng.Close())
}
