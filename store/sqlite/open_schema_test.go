package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// poolqFile makes a poolq file with a pool of 3 items, closed, changes it
// with the statements given, run on a plain connection (an operator's
// sqlite3 shell), and returns its path and its bytes after the change.
func poolqFile(t *testing.T, stmts ...string) (path string, content []byte) {
	t.Helper()
	st, path := MustOpenFile(t, sqlite.Options{})
	insertPool(t, st, 3)
	require.NoError(t, st.Close())
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	for _, q := range stmts {
		_, err := db.Exec(q)
		require.NoError(t, err, q)
	}
	require.NoError(t, db.Close())
	content, err = os.ReadFile(path)
	require.NoError(t, err)
	return path, content
}

// openRefused opens path, which must fail with an error wrapping want,
// and checks that the file's bytes are still content.
func openRefused(t *testing.T, path string, content []byte, want error) error {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err == nil {
		st.Close()
	}
	require.ErrorIs(t, err, want)
	got, rerr := os.ReadFile(path)
	require.NoError(t, rerr)
	require.Equal(t, content, got, "the file unchanged")
	return err
}

// TestOpen_DamagedSchemaVersion: a poolq file whose schema_version was
// emptied or rewritten by hand to a version poolq never writes (0 or
// below: the first is 1) is refused with ErrCorrupt and left unchanged.
// Open panicked on a negative version (it sliced the migrations from it).
func TestOpen_DamagedSchemaVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []int{-1, -100, 0} {
		t.Run(fmt.Sprint(v), func(t *testing.T) {
			t.Parallel()
			path, content := poolqFile(t, `DELETE FROM schema_version`,
				fmt.Sprintf(`INSERT INTO schema_version VALUES (%d, 0)`, v))
			err := openRefused(t, path, content, sqlite.ErrCorrupt)
			require.ErrorContains(t, err, fmt.Sprintf("schema version %d", v))
		})
	}
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		path, content := poolqFile(t, `DELETE FROM schema_version`)
		openRefused(t, path, content, sqlite.ErrCorrupt)
	})
}

// schemaObjects returns the type and name of every object of a new poolq
// file's schema that an operator can drop (not SQLite's own).
func schemaObjects(t *testing.T) [][2]string {
	t.Helper()
	_, path := MustOpenFile(t, sqlite.Options{})
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT type, name FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type, name`)
	require.NoError(t, err)
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var o [2]string
		require.NoError(t, rows.Scan(&o[0], &o[1]))
		out = append(out, o)
	}
	require.NoError(t, rows.Err())
	return out
}

// TestOpen_SchemaChangedByHand: a poolq file at this code's version from
// which an operator dropped an index, a trigger or a table (or recreated
// one otherwise) is refused with ErrCorrupt naming the object, and left
// unchanged, rather than opened: without an index a claim scans the
// table, without a trigger a pool gets no counts or deleted items stay
// searchable, without a table the Store failed at its first use of it.
// Dropping pools, items or pool_counts makes the file no longer poolq's
// (ErrNotPoolq). Objects added by hand (an index, ANALYZE's statistics)
// do not stop Open.
func TestOpen_SchemaChangedByHand(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	objects := schemaObjects(t)
	require.NotEmpty(t, objects)
	for _, o := range objects {
		t.Run(o[0]+"/"+o[1], func(t *testing.T) {
			t.Parallel()
			path, content := poolqFile(t, fmt.Sprintf(`DROP %s "%s"`, o[0], o[1]))
			want := sqlite.ErrCorrupt
			switch o[1] {
			case "pools", "items", "pool_counts":
				want = sqlite.ErrNotPoolq
			}
			err := openRefused(t, path, content, want)
			if want == sqlite.ErrCorrupt {
				require.ErrorContains(t, err, o[1])
			}
		})
	}
	t.Run("IndexRecreatedOtherwise", func(t *testing.T) {
		t.Parallel()
		path, content := poolqFile(t, `DROP INDEX items_ready`, `CREATE INDEX items_ready ON items (pool_id, id)`)
		err := openRefused(t, path, content, sqlite.ErrCorrupt)
		require.ErrorContains(t, err, "items_ready")
	})
	t.Run("ObjectsAdded", func(t *testing.T) {
		t.Parallel()
		path, _ := poolqFile(t, `CREATE INDEX operators_own ON items (name)`, `ANALYZE`)
		st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		require.NoError(t, err)
		require.NoError(t, st.Close())
	})
}

// TestOpen_TruncatedFile: a poolq file cut short (a copy interrupted, a
// disk that filled while it was copied) is refused with ErrCorrupt at
// Open, whatever the cut, and left as it is: SQLite compares the file's
// size with the page count in its header before anything is read.
func TestOpen_TruncatedFile(t *testing.T) {
	t.Parallel()
	st, path := MustOpenFile(t, sqlite.Options{})
	insertPool(t, st, 2000)
	require.NoError(t, st.Close())
	whole, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, n := range []int{len(whole) - 4096, len(whole) / 2, 8192, 4096, 100} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			cut := filepath.Join(t.TempDir(), "cut.db")
			require.NoError(t, os.WriteFile(cut, whole[:n], 0o644))
			openRefused(t, cut, whole[:n], sqlite.ErrCorrupt)
		})
	}
}

// TestOpen_InterruptedCopyWithItsJournal: a backup made with VACUUM INTO
// (or the shell's .backup) and interrupted (a cron job's timeout, a
// reboot) leaves its file beside the rollback journal of the transaction
// that wrote it, whose header says the file had no pages. Opened there (to
// check the backup) or restored with its journal, SQLite rolled the file
// back to empty at the first read, and Open gave it a new poolq schema
// without an error: every pool gone, and a dialer that makes its pools by
// name would call every contact again. Open refuses it with ErrCorrupt,
// the file and its journal as they were.
func TestOpen_InterruptedCopyWithItsJournal(t *testing.T) {
	t.Parallel()
	st, path := MustOpenFile(t, sqlite.Options{})
	insertPool(t, st, 500)
	require.NoError(t, st.Close())
	// A whole backup, as VACUUM INTO writes it; then the journal of its
	// transaction, as a kill before its COMMIT leaves it: SQLite's header
	// (magic, no page records yet, nonce, 0 pages at the start, sector
	// size, page size), padded to the sector.
	backup := filepath.Join(t.TempDir(), "backup.db")
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.Exec(`VACUUM INTO ?`, backup)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	journal := make([]byte, 512)
	copy(journal, []byte{0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7})
	binary.BigEndian.PutUint32(journal[12:], 0x2a2a2a2a) // nonce
	binary.BigEndian.PutUint32(journal[20:], 512)        // sector size
	binary.BigEndian.PutUint32(journal[24:], 4096)       // page size
	require.NoError(t, os.WriteFile(backup+"-journal", journal, 0o644))
	content, err := os.ReadFile(backup)
	require.NoError(t, err)

	err = openRefused(t, backup, content, sqlite.ErrCorrupt)
	require.ErrorContains(t, err, "interrupted copy")
	got, err := os.ReadFile(backup + "-journal")
	require.NoError(t, err)
	require.Equal(t, journal, got, "the journal as it was")

	// Without its journal the same file is the complete backup it looks
	// like (VACUUM INTO writes every page before its COMMIT).
	require.NoError(t, os.Remove(backup+"-journal"))
	restored, err := sqlite.Open(context.Background(), backup, sqlite.Options{QuickCheck: true})
	require.NoError(t, err)
	require.NoError(t, restored.Close())
}
