package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFiles_CheckSeesReplacedFile: files.check fails with ErrFileMoved
// once a path names another file than at statFiles, on every system. On
// Windows, a FileInfo reads its file's identity (volume and file index)
// when os.SameFile first needs it, through the path: an identity first
// read at the check would be the new file's, and a replaced file would
// pass. (SQLite's open files cannot be renamed or deleted on Windows, but
// the path given to Open, when not the database's own, can name another
// file later.)
func TestFiles_CheckSeesReplacedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, []byte("a"), 0o644))
	require.NoError(t, os.WriteFile(b, []byte("b"), 0o644))
	f, err := statFiles([]string{a})
	require.NoError(t, err)
	require.NoError(t, f.check())

	require.NoError(t, os.Rename(b, a))
	err = f.check()
	require.True(t, errors.Is(err, ErrFileMoved), "a replaced file: %v", err)

	require.NoError(t, os.Remove(a))
	require.ErrorIs(t, f.check(), ErrFileMoved, "a deleted file")
}
