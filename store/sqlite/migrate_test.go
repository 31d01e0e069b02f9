package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// versionRow is one row of schema_version.
type versionRow struct {
	Version   int
	AppliedAt int64
}

// versions reads schema_version of the file at path, with a plain
// connection (no poolq involved).
func versions(t *testing.T, path string) []versionRow {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	require.NoError(t, err)
	defer db.Close()
	rows, err := db.Query(`SELECT version, applied_at FROM schema_version ORDER BY version`)
	require.NoError(t, err)
	defer rows.Close()
	var out []versionRow
	for rows.Next() {
		var r versionRow
		require.NoError(t, rows.Scan(&r.Version, &r.AppliedAt))
		out = append(out, r)
	}
	require.NoError(t, rows.Err())
	return out
}

func TestOpen_Migrations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	latest := sqlite.LatestVersion()
	require.Equal(t, countMigrationFiles(t), latest)

	t.Run("NewFileGetsLatest", func(t *testing.T) {
		t.Parallel()
		st, path := MustOpenFile(t, sqlite.Options{})
		require.NoError(t, st.Close())
		rows := versions(t, path)
		require.Len(t, rows, latest)
		for i, r := range rows {
			require.Equal(t, i+1, r.Version)
			require.NotZero(t, r.AppliedAt)
		}
	})

	t.Run("ReopenAppliesNothingKeepsData", func(t *testing.T) {
		t.Parallel()
		st, path := MustOpenFile(t, sqlite.Options{})
		p := insertPool(t, st, 10)
		require.NoError(t, st.Close())
		before := versions(t, path)

		for _, d := range []sqlite.Durability{sqlite.Normal, sqlite.Full} {
			st, err := sqlite.Open(ctx, path, sqlite.Options{Durability: d})
			require.NoError(t, err)
			require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
				got, err := tx.Pool(ctx, p.UUID)
				require.Equal(t, 10, got.ContactsCount)
				return err
			}))
			require.NoError(t, st.Close())
		}
		require.Equal(t, before, versions(t, path))
	})

	t.Run("ErrSchemaTooNew", func(t *testing.T) {
		t.Parallel()
		st, path := MustOpenFile(t, sqlite.Options{})
		insertPool(t, st, 3)
		require.NoError(t, st.Close())

		db, err := sql.Open("sqlite", "file:"+path)
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (?, 1)`, latest+1)
		require.NoError(t, err)
		require.NoError(t, db.Close())
		before := versions(t, path)
		bytesBefore, err := os.ReadFile(path)
		require.NoError(t, err)

		for _, opts := range []sqlite.Options{{}, {Durability: sqlite.Full}} {
			st, err = sqlite.Open(ctx, path, opts)
			require.ErrorIs(t, err, store.ErrSchemaTooNew)
			require.Nil(t, st)
			require.ErrorContains(t, err, fmt.Sprintf("schema version %d", latest+1))
			require.ErrorContains(t, err, fmt.Sprintf("knows up to %d", latest))
		}

		require.Equal(t, before, versions(t, path))
		bytesAfter, err := os.ReadFile(path)
		require.NoError(t, err)
		require.Equal(t, bytesBefore, bytesAfter, "the file is unchanged")
	})

	// A newer poolq migrates the file while this Store runs (another
	// process, a rolling upgrade): the next write fails and writes nothing.
	t.Run("ErrSchemaTooNewWhileOpen", func(t *testing.T) {
		t.Parallel()
		st, path := MustOpenFile(t, sqlite.Options{})
		insertPool(t, st)
		db, err := sql.Open("sqlite", "file:"+path)
		require.NoError(t, err)
		_, err = db.Exec(`INSERT INTO schema_version (version, applied_at) VALUES (?, 1)`, latest+1)
		require.NoError(t, err)
		require.NoError(t, db.Close())

		p := insertPoolParams(uuid.New())
		for range 3 { // every write, not only the first after the migration
			err = st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) })
			require.ErrorIs(t, err, store.ErrSchemaTooNew)
			require.ErrorContains(t, err, "migrated while it ran")
		}
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			_, err := tx.Pool(ctx, p.UUID)
			require.ErrorIs(t, err, store.ErrNotFound, "nothing was written")
			return nil
		}))
	})

	t.Run("MemoryGetsLatest", func(t *testing.T) {
		t.Parallel()
		st := MustOpen(t)
		var v int
		require.NoError(t, sqlite.WriterConn(st).QueryRowContext(ctx, `SELECT max(version) FROM schema_version`).Scan(&v))
		require.Equal(t, latest, v)
	})

	t.Run("ConcurrentOpens", func(t *testing.T) {
		t.Parallel()
		// Two processes opening a new file at once: one migrates, the other
		// finds the work done.
		path := filepath.Join(t.TempDir(), "race.db")
		errs := make(chan error, 4)
		for range 4 {
			go func() {
				st, err := sqlite.Open(ctx, path, sqlite.Options{})
				if err == nil {
					err = st.Close()
				}
				errs <- err
			}()
		}
		for range 4 {
			require.NoError(t, <-errs)
		}
		require.Len(t, versions(t, path), latest)
	})
}

func countMigrationFiles(t *testing.T) int {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	require.NoError(t, err)
	return len(files)
}

// TestOpen_AnotherApplicationsDatabase: Open of a SQLite file that holds
// another application's tables (a mistaken path) fails with ErrNotPoolq
// and changes nothing: no table added, the journal mode kept, not a byte
// of the file written. Also when the application records its own
// migrations in a table named schema_version, as poolq does, whatever the
// version there: below poolq's latest (which poolq's next migrations would
// be tried on), equal to it (which would pass for an up-to-date poolq
// file) or above it (which would pass for a newer poolq's).
func TestOpen_AnotherApplicationsDatabase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		version int // in the application's schema_version; 0: no such table
	}{
		{"Tables", 0},
		{"SchemaVersion3", 3},
		{"SchemaVersion9", 9},
		{"SchemaVersion99", 99},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "crm.db")
			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			defer db.Close()
			stmts := []string{`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)`}
			if tt.version > 0 {
				stmts = append(stmts,
					`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`,
					fmt.Sprintf(`INSERT INTO schema_version VALUES (%d, 0)`, tt.version))
			}
			for _, q := range stmts {
				_, err := db.Exec(q)
				require.NoError(t, err, q)
			}
			schema := func() (objects []string, mode string, file []byte) {
				rows, err := db.Query(`SELECT type || ' ' || name FROM sqlite_schema ORDER BY 1`)
				require.NoError(t, err)
				defer rows.Close()
				for rows.Next() {
					var s string
					require.NoError(t, rows.Scan(&s))
					objects = append(objects, s)
				}
				require.NoError(t, rows.Err())
				require.NoError(t, db.QueryRow(`PRAGMA journal_mode`).Scan(&mode))
				file, err = os.ReadFile(path)
				require.NoError(t, err)
				return objects, mode, file
			}
			before, mode, file := schema()
			require.Equal(t, "delete", mode)

			st, err := sqlite.Open(ctx, path, sqlite.Options{})
			if err == nil {
				st.Close()
			}
			require.ErrorIs(t, err, sqlite.ErrNotPoolq)
			after, modeAfter, fileAfter := schema()
			require.Equal(t, before, after, "no table added")
			require.Equal(t, mode, modeAfter, "the journal mode kept")
			require.Equal(t, file, fileAfter, "the file unchanged")
		})
	}
}
