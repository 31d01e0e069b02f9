package sqlite

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/poolq/poolq/pool"
)

// The per-status counts (table pool_counts) are kept by the statements of
// the store, not by triggers: a write transaction adds up in memory what
// its item writes change (each write knows the status it leaves and the
// one it enters), and applies the sums in one statement when it commits,
// or before it reads pool_counts itself. A batch that moves a hundred
// items from Pending to Processing updates two counts once, where a
// trigger updated them a hundred times each: triggers were a fifth of the
// cost of a batch update.

// countKey is one count: a pool's internal id and a status.
type countKey struct {
	pool   int64
	status pool.Status
}

// count adds d to the pending change of the count of pool k in status s,
// and to the pool's state if the transaction has one or can take the
// cache's (with no state in either, the pool is read from the database
// when it is next needed).
func (t *txn) count(k int64, s pool.Status, d int) {
	if d == 0 {
		return
	}
	if t.deltas == nil {
		t.deltas = make(map[countKey]int, 4)
	}
	if st := t.state(k); st != nil {
		st.p.ContactsCount += d
		if s.InFlight() {
			if st.inFlight += d; st.inFlight == 0 {
				st.hasExpiry = false // no lease left to end
			}
		}
	}
	key := countKey{k, s}
	if n := t.deltas[key] + d; n != 0 {
		t.deltas[key] = n
	} else {
		delete(t.deltas, key)
	}
}

// forgetCounts drops the pending changes of pool k (deleted, with its
// counts).
func (t *txn) forgetCounts(k int64) {
	for key := range t.deltas {
		if key.pool == k {
			delete(t.deltas, key)
		}
	}
}

// updateCountsSQL maps each of insertSizes to a statement adding that many
// changes to pool_counts.
var updateCountsSQL = func() map[int]string {
	m := make(map[int]string, len(insertSizes))
	for _, n := range insertSizes {
		m[n] = `UPDATE OR FAIL pool_counts SET n = n + v.column3
FROM (VALUES ` + strings.Repeat("(?, ?, ?), ", n-1) + `(?, ?, ?)) AS v
WHERE pool_counts.pool_id = v.column1 AND pool_counts.status = v.column2`
	}
	return m
}()

// flushCounts writes the pending count changes to pool_counts. Every write
// transaction calls it before COMMIT, and every read of pool_counts first.
// A count that would go below zero fails its CHECK: the writes that led
// there were wrong, and the transaction must not commit.
func (t *txn) flushCounts(ctx context.Context) error {
	if len(t.deltas) == 0 {
		return nil
	}
	type change struct {
		key countKey
		d   int
	}
	list := make([]change, 0, len(t.deltas))
	for k, d := range t.deltas {
		list = append(list, change{k, d})
	}
	slices.SortFunc(list, func(a, b change) int { // one order, whatever the map's
		return cmp.Or(cmp.Compare(a.key.pool, b.key.pool), cmp.Compare(a.key.status, b.key.status))
	})
	if _, err := execChunks(ctx, t, "update counts", 0, list, updateCountsSQL, func(args []any, _ int, c change) ([]any, error) {
		return append(args, c.key.pool, string(c.key.status), c.d), nil
	}); err != nil {
		return err
	}
	clear(t.deltas)
	return nil
}
