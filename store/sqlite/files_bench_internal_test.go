package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// BenchmarkFilesCheck measures what the check of the files costs every
// write transaction of a file store (files.check: a stat of the database,
// its -wal and its -shm) on its own, a cost too small to tell from the
// noise of a whole Add on a shared disk.
func BenchmarkFilesCheck(b *testing.B) {
	ctx := context.Background()
	st, err := Open(ctx, filepath.Join(b.TempDir(), "poolq.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if st.files == nil || len(st.files.paths) != 3 {
		b.Fatalf("a file store checks its three files, got %v", st.files)
	}
	for b.Loop() {
		if err := st.files.check(); err != nil {
			b.Fatal(err)
		}
	}
}
