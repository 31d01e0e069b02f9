package postgres

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
	// migrateLockSQL takes the schema's migration lock: an advisory lock
	// with two int keys, a space apart from the bigint keys of pool locks.
	migrateLockSQL = `SELECT pg_advisory_xact_lock($1::int, 0)`
	// unboundedSQL lifts, for the migration's transaction, the bounds a
	// DBA may have set for the role or the database (ALTER ROLE … SET
	// lock_timeout, statement_timeout): a node that opens while another
	// migrates waits for the migration lock however long the migration
	// runs, and a migration is not cut off half-way through a large table
	// (Open's ctx still bounds both).
	unboundedSQL          = `SELECT set_config('lock_timeout', '0', true), set_config('statement_timeout', '0', true)`
	versionTableExistsSQL = `SELECT to_regclass(format('%I.schema_version', $1::text)) IS NOT NULL`
	poolqTablesExistSQL   = `SELECT to_regclass(format('%I.pools', $1::text)) IS NOT NULL
	AND to_regclass(format('%I.items', $1::text)) IS NOT NULL
	AND to_regclass(format('%I.pool_counts', $1::text)) IS NOT NULL`
	// schemaExistsSQL looks the schema up by its exact name.
	schemaExistsSQL       = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`
	createVersionTableSQL = `CREATE TABLE schema_version (
    version    integer PRIMARY KEY,
    applied_at bigint  NOT NULL
)`
	currentVersionSQL = `SELECT coalesce(max(version), 0) FROM schema_version`
	recordVersionSQL  = `INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)`
)

// migrate brings the schema to the latest version in one transaction,
// creating it if needed, on a connection of its own, under the schema's
// migration lock: several processes opening the store at once wait for
// each other, and the first migrates. Either every missing migration is
// applied and recorded in schema_version, or none. A schema whose version
// is newer than this code knows is left untouched, with an error wrapping
// [store.ErrSchemaTooNew].
func migrate(ctx context.Context, conn *pgx.Conn, schema string, lockNS int64) error {
	return migrateTo(ctx, conn, schema, lockNS, latestVersion())
}

// migrateTo is migrate up to version target (tests make old schemas with
// it): a schema above target is left as it is if this code knows its
// version, and refused if not.
func migrateTo(ctx context.Context, conn *pgx.Conn, schema string, lockNS int64, target int) (err error) {
	if historyErr != nil {
		return historyErr
	}
	// READ COMMITTED whatever the server's default: each statement must see
	// what a node that held the lock before committed. Under REPEATABLE READ
	// the snapshot would be taken at the lock statement, before its wait,
	// and a node that waited would run the migrations again.
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(ctx) // on a connection prepare closes: one cut short costs nothing
		}
	}()
	if _, err := tx.Exec(ctx, unboundedSQL); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := tx.Exec(ctx, migrateLockSQL, int32(lockNS)); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, versionTableExistsSQL, schema).Scan(&exists); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	current := 0
	if exists {
		// poolq's first migration makes schema_version and these tables
		// in one transaction: without them, the versions are not poolq's.
		var ours bool
		if err := tx.QueryRow(ctx, poolqTablesExistSQL, schema).Scan(&ours); err != nil {
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
		if !ours {
			return fmt.Errorf("migrate: %w (a schema_version table without poolq's pools, items and pool_counts)", ErrNotPoolq)
		}
		if err := tx.QueryRow(ctx, currentVersionSQL).Scan(&current); err != nil {
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
	}
	latest := latestVersion()
	if current > latest {
		return fmt.Errorf("migrate: schema version %d, this poolq knows up to %d: %w",
			current, latest, store.ErrSchemaTooNew)
	}
	if current >= target {
		return tx.Commit(ctx) // no DDL: a role that may only read and write the tables opens it
	}
	if current == 0 {
		if err := createSchema(ctx, tx, schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, createVersionTableSQL); err != nil {
			return fmt.Errorf("migrate: create schema_version: %w", err)
		}
	}
	for _, m := range history[current:target] {
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
		if _, err := tx.Exec(ctx, recordVersionSQL, m.Version, time.Now().UnixNano()); err != nil {
			return fmt.Errorf("migrate: %s: %w", m.Name, err)
		}
	}
	if err := setGuard(ctx, tx, schema, target); err != nil {
		return fmt.Errorf("migrate: schema guard: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// createSchema creates schema unless it exists. CREATE SCHEMA IF NOT
// EXISTS alone would not do: it checks the right to create schemas in the
// database before it looks for the schema, and so fails for a role a DBA
// confined to a schema made for it (USAGE and CREATE on the schema only).
// The IF NOT EXISTS stays for a schema created between the look-up and the
// CREATE by someone not holding the migration lock (nodes opening the
// schema at once hold it, and wait for each other).
func createSchema(ctx context.Context, tx pgx.Tx, schema string) error {
	var exists bool
	if err := tx.QueryRow(ctx, schemaExistsSQL, schema).Scan(&exists); err != nil {
		return fmt.Errorf("migrate: look up schema: %w", err)
	}
	if exists {
		return nil
	}
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return fmt.Errorf("migrate: create schema: %w", err)
	}
	return nil
}

// guardCol is a column of the statements that lock a pool or a campaign,
// which every write of a pool's items or of a campaign takes first: a call
// of the schema guard of the version this code migrates to (made by
// migration 7 and setGuard), resolved in the schema on the connections'
// search_path. Each migration replaces the guards of the versions before
// its own with functions that raise SQLSTATE PQ001 (setGuard), so a node
// still running an older poolq when a newer one migrates the schema under
// it (a rolling upgrade) fails those writes with [store.ErrSchemaTooNew]
// (see translate) instead of going on with rules the schema no longer
// keeps. Being a column of a statement the transaction sends anyway, it
// costs no round trip and no statement.
var guardCol = fmt.Sprintf("poolq_schema_v%d()", latestVersion())

// guardName is the schema-qualified name of the guard of version v.
func guardName(schema string, v int) string {
	return pgx.Identifier{schema, fmt.Sprintf("poolq_schema_v%d", v)}.Sanitize()
}

// setGuard makes the guard of version v in schema, and makes those of the
// versions before it (from 7, the first with one) raise PQ001.
func setGuard(ctx context.Context, tx pgx.Tx, schema string, v int) error {
	for old := firstGuard; old < v; old++ {
		_, err := tx.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
	RAISE EXCEPTION 'poolq schema migrated from version %d to %d' USING ERRCODE = '%s';
END $$`, guardName(schema, old), old, v, codeSchemaMigrated))
		if err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, fmt.Sprintf("CREATE OR REPLACE FUNCTION %s() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT %d'",
		guardName(schema, v), v))
	return err
}

// firstGuard is the first version with a schema guard (migration 7).
const firstGuard = 7
