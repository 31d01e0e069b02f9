package opendb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

func TestOpen_SQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "x.db")
	st, err := Open(context.Background(), path)
	require.NoError(t, err)
	require.IsType(t, &sqlite.Store{}, st)
	require.NoError(t, st.Close())
	_, err = os.Stat(path)
	require.NoError(t, err, "the file is created")
}

// TestOpen_Postgres needs the server of POOLQ_TEST_POSTGRES (CI sets it);
// the store goes in a schema of its own, dropped at the end.
func TestOpen_Postgres(t *testing.T) {
	t.Parallel()
	dsn := pgtest.URL(t)
	st, err := Open(context.Background(), pgtest.WithParams(dsn, "schema="+pgtest.Schema(t, dsn)))
	require.NoError(t, err)
	require.IsType(t, &postgres.Store{}, st)
	require.NoError(t, st.Read(context.Background(), func(store.Tx) error { return nil }))
	require.NoError(t, err, "the schema parameter is poolq's, not sent to the server")
	require.NoError(t, st.Close())
	_, err = Open(context.Background(), pgtest.WithParams(dsn, "schema=Not-An-Identifier"))
	require.Error(t, err, "the schema is validated")
}

// TestOpen_BadURLHidesItsPassword: a PostgreSQL URL that does not parse
// (a % or # not escaped in its password) is refused without the password
// in the error, which the examples print: url.Parse's own error quotes the
// whole URL.
func TestOpen_BadURLHidesItsPassword(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"postgres://bob:s3cret%zz@127.0.0.1:1/db", "postgres://bob:s3cret#1@127.0.0.1:1/db"} {
		_, err := Open(context.Background(), db)
		require.Error(t, err, db)
		require.NotContains(t, err.Error(), "s3cret", db)
	}
}

// TestLock: a second Lock of one name waits for the first to be given
// back; other names and other databases do not.
func TestLock(t *testing.T) {
	t.Parallel()
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		testLock(t, filepath.Join(t.TempDir(), "x.db"), filepath.Join(t.TempDir(), "y.db"))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		dsn := pgtest.URL(t)
		testLock(t, pgtest.WithParams(dsn, "schema="+pgtest.Schema(t, dsn)), pgtest.WithParams(dsn, "schema="+pgtest.Schema(t, dsn)))
		// A URL Open takes (pgxpool's pool_* parameters), Lock takes.
		unlock, err := Lock(context.Background(), pgtest.WithParams(dsn, "pool_max_conns=4&schema="+pgtest.Schema(t, dsn)), "setup")
		require.NoError(t, err)
		unlock()
	})
}

func testLock(t *testing.T, db, otherDB string) {
	ctx := context.Background()
	unlock, err := Lock(ctx, db, "setup")
	require.NoError(t, err)
	for _, c := range []struct{ db, name string }{{db, "other"}, {otherDB, "setup"}} {
		u, err := Lock(ctx, c.db, c.name)
		require.NoError(t, err, "a lock of another name or database is free")
		u()
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = Lock(short, db, "setup")
	require.Error(t, err, "held: the second waits until its context ends")
	got := make(chan error, 1)
	go func() {
		u, err := Lock(ctx, db, "setup")
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the second Lock returned while the first was held: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the second Lock did not get the lock given back")
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	require.Equal(t, "poolq.db", Describe("poolq.db"))
	require.Equal(t, "postgres://dialer:xxxxx@db:5432/calls", Describe("postgres://dialer:s3cret@db:5432/calls"))
	require.Equal(t, "postgresql://db/calls?sslmode=disable", Describe("postgresql://db/calls?sslmode=disable"))
	require.True(t, IsPostgres("postgresql://x"))
	require.False(t, IsPostgres("postgres.db"))
}

// TestLock_OddPaths: on SQLite, Lock locks the file beside the database
// that the store would open under that name (db + ".lock-" + name), for
// every path the store takes as it does: one that begins with "//" (a
// path, not a URI's host), one with the characters a URI gives a meaning
// to, a file whose name begins with "file:" ("./file:…"). The lock file
// is created under exactly its name, and nothing else; a second Lock
// waits for the first.
func TestLock_OddPaths(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		db   func(dir string) string
	}{
		{"TwoSlashes", func(dir string) string { return "/" + filepath.Join(dir, "a.db") }},
		{"URICharacters", func(dir string) string { return filepath.Join(dir, "a b?c=d#e%20f.db") }},
		{"FileColon", func(dir string) string { return dir + "/./file:x.db" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			db := c.db(dir)
			st, err := Open(context.Background(), db)
			require.NoError(t, err, "the store takes %q", db)
			require.NoError(t, st.Close())
			testLock(t, db, filepath.Join(t.TempDir(), "y.db"))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			base := filepath.Base(db)
			require.Subset(t, names, []string{base, base + ".lock-setup", base + ".lock-other"},
				"the lock files beside the database, under their names")
			for _, n := range names {
				require.True(t, strings.HasPrefix(n, base), "a file the path does not name: %q", n)
			}
		})
	}
}
