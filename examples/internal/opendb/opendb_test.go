package opendb

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := Open(context.Background(), dsn+sep+"schema="+pgtest.Schema(t, dsn))
	require.NoError(t, err)
	require.IsType(t, &postgres.Store{}, st)
	require.NoError(t, st.Read(context.Background(), func(store.Tx) error { return nil }))
	require.NoError(t, err, "the schema parameter is poolq's, not sent to the server")
	require.NoError(t, st.Close())
	_, err = Open(context.Background(), dsn+sep+"schema=Not-An-Identifier")
	require.Error(t, err, "the schema is validated")
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	require.Equal(t, "poolq.db", Describe("poolq.db"))
	require.Equal(t, "postgres://dialer:xxxxx@db:5432/calls", Describe("postgres://dialer:s3cret@db:5432/calls"))
	require.Equal(t, "postgresql://db/calls?sslmode=disable", Describe("postgresql://db/calls?sslmode=disable"))
	require.True(t, IsPostgres("postgresql://x"))
	require.False(t, IsPostgres("postgres.db"))
}
