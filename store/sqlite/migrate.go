package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/internal/migrations"
)

// migrationFiles holds the schema, one numbered file per version:
// migrations/0001_init.sql, migrations/0002_….sql, applied in order.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// history is the schema's versions, loaded once.
var history, historyErr = migrations.Load(migrationFiles, "migrations")

// latestVersion is the highest schema version this code knows.
func latestVersion() int { return len(history) }

const (
	versionTableExistsSQL = `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`
	createVersionTableSQL = `CREATE TABLE schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at INTEGER NOT NULL
) STRICT`
	// poolqTablesSQL counts what tells poolq's schema_version from another
	// application's table of that common name: the tables migration 0001
	// makes, in the same transaction as schema_version and its first row,
	// and the pools column no other application is likely to have. No
	// migration may drop or rename them, or an older poolq would take a
	// newer poolq's file for another application's.
	poolqTablesSQL = `SELECT (SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN ('pools', 'items', 'pool_counts'))
    + (SELECT count(*) FROM pragma_table_info('pools') WHERE name = 'max_parallel_items')`
	poolqTables       = 4
	currentVersionSQL = `SELECT coalesce(max(version), 0) FROM schema_version`
	countObjectsSQL   = `SELECT count(*) FROM sqlite_schema`
	recordVersionSQL  = `INSERT INTO schema_version (version, applied_at) VALUES (?, ?)`
)

// migrate brings db's schema to the latest version in one write
// transaction: either every missing migration is applied and recorded in
// schema_version, or none. A database whose version is newer than this code
// knows is left untouched, with an error wrapping [store.ErrSchemaTooNew].
//
// A file already at the latest version is read, not locked. Otherwise the
// migration takes the write lock, and waits for it, as long as ctx allows,
// beyond the busy timeout: another process may be migrating the file, which
// holds the lock for as long as the migration runs (0009 indexes every
// item again: seconds for a million).
func migrate(ctx context.Context, db *sql.DB) (err error) {
	if historyErr != nil {
		return historyErr
	}
	current, err := schemaVersion(ctx, db)
	if err != nil {
		return err
	}
	if current > latestVersion() {
		return fmt.Errorf("migrate: schema version %d, this poolq knows up to %d: %w",
			current, latestVersion(), store.ErrSchemaTooNew)
	}
	if current == latestVersion() {
		return nil
	}
	tx, err := beginMigration(ctx, db)
	if err != nil {
		return migrateErr("begin", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	current, err = schemaVersion(ctx, tx) // again, under the lock
	if err != nil {
		return err
	}
	latest := latestVersion()
	if current > latest {
		return fmt.Errorf("migrate: schema version %d, this poolq knows up to %d: %w",
			current, latest, store.ErrSchemaTooNew)
	}
	if current == latest {
		return migrateErr("commit", tx.Commit())
	}
	if current == 0 {
		// A new file is empty; one with tables but no version is another
		// application's, and is not poolq's to change.
		var objects int
		if err := tx.QueryRowContext(ctx, countObjectsSQL).Scan(&objects); err != nil {
			return migrateErr("read schema", err)
		}
		if objects > 0 {
			var n int
			if err := tx.QueryRowContext(ctx, poolqTablesSQL).Scan(&n); err != nil {
				return migrateErr("read schema", err)
			}
			if n == poolqTables {
				return fmt.Errorf("migrate: poolq's tables without their schema_version table (dropped by hand?): %w", ErrCorrupt)
			}
			return fmt.Errorf("migrate: %w (%d schema objects and no schema_version table)", ErrNotPoolq, objects)
		}
		if _, err := tx.ExecContext(ctx, createVersionTableSQL); err != nil {
			return migrateErr("create schema_version", err)
		}
	}
	for _, m := range history[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return migrateErr(m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, recordVersionSQL, m.Version, time.Now().UnixNano()); err != nil {
			return migrateErr(m.Name, err)
		}
	}
	if err := bumpSchemaCookie(ctx, tx); err != nil {
		return err
	}
	return migrateErr("commit", tx.Commit())
}

// bumpSchemaCookie adds one to the schema cookie (PRAGMA schema_version,
// SQLite's own counter, not poolq's version), so that the other
// connections to the file parse the schema again before their next
// statement. DDL bumps it by itself; a migration that edits sqlite_schema
// directly (0003) does not, and needs this step of SQLite's documented
// procedure. (The migrating connection re-parses through the migration's
// own PRAGMA writable_schema = RESET.)
func bumpSchemaCookie(ctx context.Context, tx *sql.Tx) error {
	var cookie int64
	if err := tx.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&cookie); err != nil {
		return migrateErr("read schema cookie", err)
	}
	_, err := tx.ExecContext(ctx, "PRAGMA schema_version = "+strconv.FormatInt(cookie+1, 10))
	return migrateErr("bump schema cookie", err)
}

// beginMigration begins migrate's write transaction (BEGIN IMMEDIATE: one
// migrator at a time), trying again while the file's write lock is held
// past the busy timeout, until ctx ends.
func beginMigration(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	for pause := time.Millisecond; ; pause = min(2*pause, 100*time.Millisecond) {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil || !isBusy(err) {
			return tx, err
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
	}
}

// schemaVersion returns the version recorded in schema_version, 0 for a
// database without one (a new file). A schema_version without poolq's
// tables beside it is another application's: an error wrapping
// [ErrNotPoolq]; one beside them that records no version of 1 or more
// was emptied or rewritten by hand: an error wrapping [ErrCorrupt].
// migrate returns either before it writes anything.
func schemaVersion(ctx context.Context, tx interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int, error) {
	var n int
	if err := tx.QueryRowContext(ctx, versionTableExistsSQL).Scan(&n); err != nil {
		return 0, migrateErr("read schema version", err)
	}
	if n == 0 {
		return 0, nil
	}
	if err := tx.QueryRowContext(ctx, poolqTablesSQL).Scan(&n); err != nil {
		return 0, migrateErr("read schema", err)
	}
	if n != poolqTables {
		return 0, fmt.Errorf("migrate: %w (a schema_version table without poolq's pools, items and pool_counts)", ErrNotPoolq)
	}
	var v int
	if err := tx.QueryRowContext(ctx, currentVersionSQL).Scan(&v); err != nil {
		return 0, migrateErr("read schema version", err)
	}
	if v < 1 {
		// poolq records version 1 in the transaction that makes its
		// tables: none, or one below, is a table emptied or rewritten by
		// hand, from which no migration may be guessed.
		return 0, fmt.Errorf("migrate: schema version %d beside poolq's tables (poolq's versions begin at 1): %w", v, ErrCorrupt)
	}
	return v, nil
}

// schemaObjectsSQL lists a schema's objects; an index of a table's
// PRIMARY KEY or UNIQUE constraint has no sql.
const schemaObjectsSQL = `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_schema`

// wantSchema returns the objects of the schema at the latest version, as
// readSchema reads them from an empty in-memory database migrated once
// per process.
var wantSchema = sync.OnceValues(func() (map[string]string, error) {
	ctx := context.Background()
	db := openDB(MemoryPath)
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection: one in-memory database
	if err := migrate(ctx, db); err != nil {
		return nil, err
	}
	return readSchema(ctx, db)
})

// readSchema returns the objects of db's schema, keyed by type and name
// ("index items_ready"), each with its table and its SQL text.
func readSchema(ctx context.Context, db interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, schemaObjectsSQL)
	if err != nil {
		return nil, migrateErr("read schema", err)
	}
	defer rows.Close()
	objects := make(map[string]string)
	for rows.Next() {
		var typ, name, table, text string
		if err := rows.Scan(&typ, &name, &table, &text); err != nil {
			return nil, migrateErr("read schema", err)
		}
		objects[typ+" "+name] = table + "\n" + text
	}
	if err := rows.Err(); err != nil {
		return nil, migrateErr("read schema", err)
	}
	return objects, nil
}

// checkObjects returns an error wrapping [ErrCorrupt] that names every
// object of poolq's schema (table, index, trigger) that db, a file at the
// latest version, lacks or holds with other SQL than a new file's: one
// dropped or recreated by hand. Without an index a claim scans its table;
// without a trigger a new pool has no counts, or a deleted item stays in
// the search index. Objects that are not poolq's (an operator's index,
// ANALYZE's statistics) are no concern of it. A file that a newer poolq
// has migrated since migrate looked (another process) is reported as
// migrate does: [store.ErrSchemaTooNew].
func checkObjects(ctx context.Context, db *sql.DB) error {
	want, err := wantSchema()
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}) // the version and the objects of one moment
	if err != nil {
		return migrateErr("read schema", err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, currentVersionSQL).Scan(&v); err != nil {
		return migrateErr("read schema version", err)
	}
	if v > latestVersion() {
		return fmt.Errorf("schema version %d, this poolq knows up to %d: %w", v, latestVersion(), store.ErrSchemaTooNew)
	}
	got, err := readSchema(ctx, tx)
	if err != nil {
		return err
	}
	var bad []string
	for k, w := range want {
		if g, ok := got[k]; !ok {
			bad = append(bad, k+" missing")
		} else if g != w {
			bad = append(bad, k+" differs")
		}
	}
	if len(bad) == 0 {
		return nil
	}
	slices.Sort(bad)
	return fmt.Errorf("schema of version %d changed by hand: %s: %w", latestVersion(), strings.Join(bad, ", "), ErrCorrupt)
}

// migrateErr translates err and prefixes it with "migrate: step: ", or
// returns nil for a nil err. The caller adds the database's name.
func migrateErr(step string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("migrate: %s: %w", step, translate(err))
}

// checkSchema fails a write transaction t on a file that a newer poolq has
// migrated since this Store opened it (another process, in a rolling
// upgrade): [store.ErrSchemaTooNew], rather than go on with rules the file
// no longer keeps (the day's count of migration 7, kept apart by old and
// new processes, let a contact be called past max_calls_per_day). Write
// runs it when another connection has written since its last transaction,
// so a file that only this Store writes never pays for it.
func checkSchema(ctx context.Context, t *txn) error {
	var v int
	if err := t.queryRow(ctx, []any{&v}, currentVersionSQL); err != nil {
		return wrap("read schema version", err)
	}
	if v > latestVersion() {
		return fmt.Errorf("sqlite: schema version %d, this poolq knows up to %d (migrated while it ran): %w",
			v, latestVersion(), store.ErrSchemaTooNew)
	}
	return nil
}
