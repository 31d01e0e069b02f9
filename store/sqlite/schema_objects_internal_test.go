package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/poolq/poolq/internal/sqlitefile"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestCheckObjects_NewerPoolqMigratedMeanwhile: a newer poolq migrates the
// file (another process, in a rolling upgrade) between Open's migrate,
// which found this code's latest version, and its check of the schema's
// objects, changing one of them. Open must say the file is newer
// (store.ErrSchemaTooNew), as it does when the newer version is there
// first, not that it was damaged by hand (ErrCorrupt).
func TestCheckObjects_NewerPoolqMigratedMeanwhile(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := openDB(sqlitefile.URI(filepath.Join(t.TempDir(), "poolq.db")))
	defer db.Close()
	db.SetMaxOpenConns(1)
	require.NoError(t, migrate(ctx, db))
	require.NoError(t, checkObjects(ctx, db))
	for _, q := range []string{
		`DROP INDEX items_ready`,
		`CREATE INDEX items_ready ON items (pool_id, id) WHERE ready`,
		fmt.Sprintf(`INSERT INTO schema_version VALUES (%d, 0)`, latestVersion()+1),
	} {
		_, err := db.ExecContext(ctx, q)
		require.NoError(t, err, q)
	}
	err := checkObjects(ctx, db)
	require.ErrorIs(t, err, store.ErrSchemaTooNew)
	require.NotErrorIs(t, err, ErrCorrupt)
}
