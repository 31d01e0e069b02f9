//go:build linux

package sqlite_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestOpen_ReadOnlyFile: a poolq file, and its directory, that the process
// may not write (a read-only mount, a file owned by another user). Open
// fails at once with SQLite's error, neither hanging nor trying again; a store opened before its file and directory became
// read-only (chmod) goes on working: it writes through the descriptors it
// has open. Run in a child process, as user nobody when the test runs as
// root, whom no permission stops.
func TestOpen_ReadOnlyFile(t *testing.T) {
	if dir := os.Getenv("POOLQ_READONLY_CHILD"); dir != "" {
		readOnlyChild(t, dir)
		return
	}
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "poolq.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	_, err = eng.CreatePool(ctx, pool.CreateParams{Name: "read-only", Description: "its file read-only"})
	require.NoError(t, err)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	require.NoError(t, os.Chmod(path, 0o444))
	require.NoError(t, os.Chmod(dir, 0o555))
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	// The child may need to reach dir as another user: open the way.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o005 != 0o005 {
			require.NoError(t, os.Chmod(d, fi.Mode().Perm()|0o005))
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOpen_ReadOnlyFile$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "POOLQ_READONLY_CHILD="+dir)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child:\n%s", out)
	require.Contains(t, string(out), "--- PASS: TestOpen_ReadOnlyFile")
	t.Logf("the child:\n%s", out)
}

func readOnlyChild(t *testing.T, dir string) {
	if os.Geteuid() == 0 {
		require.NoError(t, syscall.Setuid(65534), "become nobody")
	}
	ctx := context.Background()
	start := time.Now()
	_, err := sqlite.Open(ctx, filepath.Join(dir, "poolq.db"), sqlite.Options{})
	require.Error(t, err)
	t.Logf("open: %v (%v)", err, time.Since(start))
	// SQLite's words: "attempt to write a readonly database" when it
	// cannot make the log's index beside the file, "unable to open
	// database file" when it cannot open it.
	require.True(t, strings.Contains(err.Error(), "readonly") || strings.Contains(err.Error(), "unable to open database file"),
		"SQLite's error: %v", err)
	require.Less(t, time.Since(start), time.Second, "no waiting, no tries again")

	// A store opened while it could write, whose file then becomes
	// read-only.
	own := t.TempDir()
	path := filepath.Join(own, "poolq.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer eng.Close()
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "made read-only", Description: "chmod after open", Type: pool.Parallel})
	require.NoError(t, err)
	for _, f := range []string{path, path + "-wal", path + "-shm", own} {
		require.NoError(t, os.Chmod(f, 0o555))
	}
	defer os.Chmod(own, 0o755)
	_, err = eng.Add(ctx, p.UUID, newContacts(500)...)
	require.NoError(t, err, "written through the descriptors open")
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Complete(ctx, l, "answered"))
	items, err := eng.Items(ctx, p.UUID, pool.ItemQuery{})
	require.NoError(t, err)
	require.Equal(t, 500, items.Total)
}
