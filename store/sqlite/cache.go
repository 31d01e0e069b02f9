package sqlite

import (
	"context"

	"github.com/google/uuid"
)

// Reading a pool with its dispatch state is the first statement of nearly
// every write transaction, and it seeks four indexes: for a serial pool
// dispatched one item at a time it was a seventh of the whole cycle. So
// what a committed write transaction knew of its pools (their rows,
// ContactsCount and dispatch state, kept exact by its own writes) is kept
// for the next ones, in a poolCache that only Write touches, under the
// Store's write lock.
//
// A cached pool is exact as long as nothing else has written since the
// transaction that left it. Three things can:
//
//   - another connection, in this process or another one: every Write
//     starts by reading PRAGMA data_version, which changes whenever another
//     connection has committed, and empties the cache when it has;
//   - the transaction itself, before it read the pool: each write to a pool
//     the transaction has no state for marks the pool stale, and a stale
//     pool is read from the database and dropped from the cache at commit;
//   - a rollback: a savepoint rolled back marks every pool the transaction
//     knew stale, and a transaction that does not commit empties the cache.
//
// The database stays the one source of truth: the cache only saves reading
// again what the writer connection itself wrote.

// maxCachedPools bounds the cache: past it, it starts empty again.
const maxCachedPools = 4096

// dataVersionSQL reads the number that changes when another connection
// commits.
const dataVersionSQL = `PRAGMA data_version`

// poolCache is the pools' states as the last committed write transaction
// left them.
type poolCache struct {
	version int64 // PRAGMA data_version when the states were left
	pools   map[uuid.UUID]*poolState
}

// begin checks, inside a write transaction t that has just begun, that no
// other connection has written since the last one, and empties the cache
// if one has. t uses the cache from then on.
func (c *poolCache) begin(ctx context.Context, t *txn) error {
	var v int64
	if err := t.queryRow(ctx, []any{&v}, dataVersionSQL); err != nil {
		return err
	}
	if v != c.version {
		clear(c.pools)
		c.version = v
	}
	t.cache = c
	return nil
}

// commit keeps what committed transaction t knew of its pools: the pools
// it wrote without knowing them are dropped, the ones it knows replace
// what was there.
func (c *poolCache) commit(t *txn) {
	if len(t.stale) > 0 {
		for id, st := range c.pools {
			if t.stale[st.k] {
				delete(c.pools, id)
			}
		}
	}
	if len(c.pools)+len(t.states) > maxCachedPools {
		clear(c.pools)
	}
	if c.pools == nil {
		c.pools = make(map[uuid.UUID]*poolState, len(t.states))
	}
	for _, st := range t.states {
		c.pools[st.p.UUID] = st // t is over: nothing changes st any more
	}
}

// reset empties the cache: a transaction did not commit.
func (c *poolCache) reset() { clear(c.pools) }

// cached returns the cache's state of pool id, if t may use it: t has not
// written the pool without knowing it.
func (t *txn) cached(id uuid.UUID) *poolState {
	if t.cache == nil {
		return nil
	}
	st := t.cache.pools[id]
	if st == nil || t.stale[st.k] {
		return nil
	}
	if k, ok := t.pools[id]; ok && k != st.k {
		return nil
	}
	return st
}

// markStale records that t wrote pool k without knowing its state: the
// cache's copy of it is out of date.
func (t *txn) markStale(k int64) {
	if t.cache == nil {
		return
	}
	if t.stale == nil {
		t.stale = make(map[int64]bool, 1)
	}
	t.stale[k] = true
}
