package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// TestOpen_NotADatabase: a path that names a file that is not SQLite's (a
// mistaken path: a text file, a flag file of one byte) fails to open with
// an error wrapping ErrCorrupt, and the file is left as it was, whatever
// its size. An empty file is a new database.
func TestOpen_NotADatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, content := range [][]byte{[]byte("1"), []byte("\n"), []byte("x\n"), []byte("not a database\n"),
		bytes.Repeat([]byte("z"), 100), bytes.Repeat([]byte("z"), 4096), bytes.Repeat([]byte("z"), 10000)} {
		t.Run(fmt.Sprint(len(content)), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "settings")
			require.NoError(t, os.WriteFile(path, content, 0o644))
			st, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err == nil {
				st.Close()
			}
			require.ErrorIs(t, err, sqlite.ErrCorrupt)
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, content, got, "the file unchanged")
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "no journal, WAL or shared memory file left")
		})
	}
}

// TestOpen_OddPaths: a directory, a file in a missing directory or in a
// file, and bad options fail clearly and create nothing; two in-memory stores are two
// databases.
func TestOpen_OddPaths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	// SQLite says "unable to open database file (14)" for each of the
	// three, from its first read: neither the path nor what is wrong.
	_, err := sqlite.Open(ctx, dir, sqlite.Options{})
	require.ErrorIs(t, err, validate.ErrInvalid)
	require.ErrorContains(t, err, "path: must name a regular file, or none yet (got a directory: "+dir+")")
	missing := filepath.Join(dir, "missing", "x.db")
	_, err = sqlite.Open(ctx, missing, sqlite.Options{})
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, missing+": its directory: ")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "file"), nil, 0o644))
	inFile := filepath.Join(dir, "file", "x.db")
	_, err = sqlite.Open(ctx, inFile, sqlite.Options{})
	require.ErrorContains(t, err, inFile+": its directory "+filepath.Join(dir, "file")+" is not a directory")
	require.NoError(t, os.Remove(filepath.Join(dir, "file")))
	_, err = sqlite.Open(ctx, filepath.Join(dir, "bad.db"), sqlite.Options{Durability: 7, BusyTimeout: -1})
	require.ErrorIs(t, err, validate.ErrInvalid)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)

	a := MustOpen(t)
	b := MustOpen(t)
	p := insertPool(t, a, 2)
	require.NoError(t, a.Read(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, p.UUID); return err }))
	require.NoError(t, b.Read(ctx, func(tx store.Tx) error {
		_, err := tx.Pool(ctx, p.UUID)
		require.ErrorIs(t, err, store.ErrNotFound, "another in-memory database")
		return nil
	}))
}

// TestOpen_EmptyFile: a file of no bytes (made by touch, or by a
// provisioning script ahead of the service) is a new database: Open gives
// it poolq's schema, in WAL mode.
func TestOpen_EmptyFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dialer.db")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	p := insertPool(t, st, 3)
	require.True(t, poolExists(t, st, p.UUID))
	_, err = os.Stat(path + "-wal")
	require.NoError(t, err, "in WAL mode")
}
