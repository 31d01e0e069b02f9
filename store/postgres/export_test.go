package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
)

// QueryRow runs a query in tx, a transaction of this package, for tests.
func QueryRow(ctx context.Context, tx store.Tx, sql string, dest ...any) error {
	return tx.(*txn).tx.QueryRow(ctx, sql).Scan(dest...)
}

// LockKey returns the key of the lock a write transaction of st takes on the
// pool with internal id k.
func LockKey(st *Store, k int64) int64 { return (&txn{s: st}).lockKey(k) }

// LatestVersion is the schema version Open migrates to.
func LatestVersion() int { return latestVersion() }

// MigrateTo creates schema at version target, as an older poolq would
// have left it.
func MigrateTo(ctx context.Context, url, schema string, target int) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["search_path"] = schema
	return migrateTo(ctx, cfg, schema, schemaHash(schema), target)
}

// WriteConn is the hand-run write transaction of a Store, for its tests.
type WriteConn = writeConn

// NewWriteConn returns a WriteConn on c, no transaction begun.
func NewWriteConn(c *pgx.Conn) *WriteConn { return &writeConn{c: c} }

// Commit is commit.
func (w *writeConn) Commit(ctx context.Context, b *pgx.Batch) error { return w.commit(ctx, b) }

// Defer is deferExec.
func (w *writeConn) Defer(sql string, args ...any) { w.deferExec(sql, args...) }

// Flush is flush.
func (w *writeConn) Flush(ctx context.Context) error { return w.flush(ctx) }

// Rollback is rollback.
func (w *writeConn) Rollback(ctx context.Context) error { return w.rollback(ctx) }

// ErrCommitRolledBack is errCommitRolledBack.
var ErrCommitRolledBack = errCommitRolledBack
