package sqlite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/poolq/poolq/store"
)

// Check mode ([Options.CheckCache]) verifies the cache of pools (cache.go)
// against the database at every commit, so that a wrong state surfaces in
// the Write that left it rather than as a wrong dispatch later. Write calls
// check after the transaction's count changes are written and its states
// are in the cache, before COMMIT: the database then holds what the
// transaction commits, and the cache what the next transaction starts from.
//
// What is promised, and so checked, for every cached pool (state.go):
//
//   - its row and ContactsCount are the database's;
//   - inFlight is the exact number of its items in flight, and so is
//     pool_counts' (which the cache is read from): both are compared with
//     the items themselves;
//   - each of the two times is a lower bound: when the database has an
//     earliest lease expiry (retry time), the cached one is present and at
//     or before it. A cached time when the database has none is allowed:
//     the bound is stale, and costs only a statement that finds nothing.

// inFlightItemsSQL counts a pool's items in flight, on items_lease (at most
// the pool's cap, 100).
const inFlightItemsSQL = `SELECT count(*) FROM items WHERE pool_id = ? AND status IN ('Processing', 'In_Call')`

// check compares every pool state in the cache with the database, read
// again in t, the write transaction about to commit. It returns an error
// wrapping [ErrCacheMismatch] that lists every difference, or nil.
func (c *poolCache) check(ctx context.Context, t *txn) error {
	var diffs []string
	if len(c.keys) != len(c.states) {
		diffs = append(diffs, fmt.Sprintf("%d pools by UUID, %d by internal id", len(c.keys), len(c.states)))
	}
	for _, k := range slices.Sorted(maps.Keys(c.states)) {
		kept := c.states[k]
		if kept.k != k {
			diffs = append(diffs, fmt.Sprintf("pool %s cached under internal id %d, has %d", kept.p.UUID, k, kept.k))
		}
		if got, ok := c.keys[kept.p.UUID]; !ok || got != k {
			diffs = append(diffs, fmt.Sprintf("pool %s (id %d): its UUID leads to id %d (found: %v)", kept.p.UUID, k, got, ok))
		}
		s, err := t.stmt(ctx, poolStateByKeySQL)
		if err != nil {
			return wrap("commit: check cache", err)
		}
		exact, err := scanPoolState(s.QueryRowContext(ctx, k))
		if err = translate(err); errors.Is(err, store.ErrNotFound) {
			diffs = append(diffs, fmt.Sprintf("pool %s (id %d): cached, but not in the database", kept.p.UUID, k))
			continue
		} else if err != nil {
			return wrap("commit: check cache", err)
		}
		diffs = append(diffs, diffState(kept, &exact)...)
		var n int
		if err := t.queryRow(ctx, []any{&n}, inFlightItemsSQL, k); err != nil {
			return wrap("commit: check cache", err)
		}
		if n != exact.inFlight {
			diffs = append(diffs, fmt.Sprintf("pool %s (id %d): in flight: %d counted, %d items", kept.p.UUID, k, exact.inFlight, n))
		}
	}
	if len(diffs) > 0 {
		return fmt.Errorf("sqlite: commit: %w: %s", ErrCacheMismatch, strings.Join(diffs, "; "))
	}
	return nil
}

// diffState lists how the kept state of a pool differs from its exact
// state in the database, beyond what a lower bound allows.
func diffState(kept, exact *poolState) []string {
	var out []string
	differ := func(field string, cached, db any) {
		out = append(out, fmt.Sprintf("pool %s (id %d): %s: cached %v, database %v", kept.p.UUID, kept.k, field, cached, db))
	}
	a, b := kept.p, exact.p
	for _, f := range []struct {
		name         string
		cached, base any
	}{
		{"UUID", a.UUID, b.UUID},
		{"Name", strconv.Quote(a.Name), strconv.Quote(b.Name)},
		{"Description", strconv.Quote(a.Description), strconv.Quote(b.Description)},
		{"Type", string(a.Type), string(b.Type)},
		{"MaxParallelItems", a.MaxParallelItems, b.MaxParallelItems},
		{"MaxRetries", a.MaxRetries, b.MaxRetries},
		{"IsActive", a.IsActive, b.IsActive},
		{"ContactsCount", a.ContactsCount, b.ContactsCount},
		{"CreatedAt", a.CreatedAt.Format(time.RFC3339Nano), b.CreatedAt.Format(time.RFC3339Nano)},
		{"UpdatedAt", a.UpdatedAt.Format(time.RFC3339Nano), b.UpdatedAt.Format(time.RFC3339Nano)},
		{"inFlight", kept.inFlight, exact.inFlight},
	} {
		if f.cached != f.base {
			differ(f.name, f.cached, f.base)
		}
	}
	if len(out) == 0 && a != b { // a field of pool.Pool the list above lacks
		differ("row", a, b)
	}
	bound := func(field string, has bool, n int64, dbHas bool, dbN int64) {
		if dbHas && (!has || n > dbN) {
			differ(field+" (a lower bound)", showBound(has, n), showBound(dbHas, dbN))
		}
	}
	bound("expiry", kept.hasExpiry, kept.expiry, exact.hasExpiry, exact.expiry)
	bound("retry", kept.hasRetry, kept.retry, exact.hasRetry, exact.retry)
	return out
}

// showBound formats a time of a pool's state.
func showBound(has bool, n int64) string {
	if !has {
		return "none"
	}
	return fromNanos(n).Format(time.RFC3339Nano)
}
