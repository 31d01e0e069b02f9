package postgres

import (
	"context"

	"github.com/poolq/poolq/store"
)

// QueryRow runs a query in tx, a transaction of this package, for tests.
func QueryRow(ctx context.Context, tx store.Tx, sql string, dest ...any) error {
	return tx.(*txn).tx.QueryRow(ctx, sql).Scan(dest...)
}

// LockKey returns the key of the lock a write transaction of st takes on the
// pool with internal id k.
func LockKey(st *Store, k int64) int64 { return (&txn{s: st}).lockKey(k) }
