//go:build unix

package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/poolq/poolq/store/sqlite"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// TestOpen_NotARegularFile: a path to a FIFO or a device (/dev/null, for
// "a database I do not keep") is refused at once as a bad path, before
// SQLite opens it: SQLite failed only at the first commit (a disk I/O
// error from the device's fsync), after making a journal file beside it,
// /dev/null-journal, when run as root. Nothing is created beside it.
func TestOpen_NotARegularFile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.db")
	require.NoError(t, syscall.Mkfifo(fifo, 0o644))
	paths := []string{fifo}
	if _, err := os.Stat("/dev/null-journal"); os.IsNotExist(err) {
		paths = append(paths, "/dev/null")
		t.Cleanup(func() { // what a failing run leaves
			for _, s := range []string{"-journal", "-wal", "-shm"} {
				os.Remove("/dev/null" + s)
			}
		})
	}
	for _, path := range paths {
		st, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err == nil {
			st.Close()
		}
		require.ErrorIs(t, err, validate.ErrInvalid, path)
		require.ErrorContains(t, err, "regular file", path)
		for _, s := range []string{"-journal", "-wal", "-shm"} {
			_, err := os.Stat(path + s)
			require.True(t, os.IsNotExist(err), "%s%s made", path, s)
		}
	}
}
