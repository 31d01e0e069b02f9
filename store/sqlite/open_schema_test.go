package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
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
