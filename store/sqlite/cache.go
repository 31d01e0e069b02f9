package sqlite

import (
	"context"

	"github.com/google/uuid"
)

// Reading a pool with its dispatch state is the first statement of nearly
// every write transaction, and it seeks four indexes: a large share of a
// serial pool's cycle, where each transaction dispatches or settles one
// item (bench/RESULTS.md has the numbers). So what a committed write
// transaction knew of its pools (their rows,
// ContactsCount and dispatch state, kept exact by its own writes) is kept
// for the next ones, in a poolCache that only Write touches, while it holds
// the writer's turn (Store.turn).
//
// A cached pool is exact as long as nothing else has written since the
// transaction that left it. Three things can:
//
//   - another connection, in this process or another one: every Write
//     starts by reading PRAGMA data_version, which changes whenever another
//     connection has committed, and empties the cache when it has;
//   - the transaction itself: a write to a pool's items takes the cached
//     state over and keeps it current (see state.go); a write to the
//     pool's row marks the pool stale, and a stale pool is read from the
//     database and dropped from the cache at commit;
//   - a rollback: a savepoint rolled back marks every pool the transaction
//     knew stale, and a transaction that does not commit empties the cache.
//
// The database stays the one source of truth: the cache only saves reading
// again what the writer connection itself wrote. Check mode
// (Options.CheckCache, cachecheck.go) compares the two at every commit.

// maxCachedPools bounds the cache: past it, it starts empty again.
const maxCachedPools = 4096

// dataVersionSQL reads the number that changes when another connection
// commits.
const dataVersionSQL = `PRAGMA data_version`

// poolCache is the pools' states as the last committed write transaction
// left them.
type poolCache struct {
	version int64                // PRAGMA data_version when the states were left
	states  map[int64]*poolState // by the pools' internal ids
	keys    map[uuid.UUID]int64  // the internal id of each pool in states
}

// begin checks, inside a write transaction t that has just begun, that no
// other connection has written since the last one, and empties the cache
// if one has (and reports so: changed). t uses the cache from then on.
func (c *poolCache) begin(ctx context.Context, t *txn) (changed bool, err error) {
	var v int64
	if err := t.queryRow(ctx, []any{&v}, dataVersionSQL); err != nil {
		return false, err
	}
	if v != c.version {
		c.reset()
		c.version = v
		changed = true
	}
	t.cache = c
	return changed, nil
}

// commit keeps what transaction t knew of its pools, once t has written
// everything and is about to commit (a commit that fails resets the
// cache): the pools it wrote without knowing them are dropped, the ones it
// knows replace what was there.
func (c *poolCache) commit(t *txn) {
	for k := range t.stale {
		if st := c.states[k]; st != nil {
			delete(c.keys, st.p.UUID)
			delete(c.states, k)
		}
	}
	if len(c.states)+len(t.states) > maxCachedPools {
		c.reset()
	}
	if c.states == nil {
		c.states = make(map[int64]*poolState, len(t.states))
		c.keys = make(map[uuid.UUID]int64, len(t.states))
	}
	for k, st := range t.states { // t is over: nothing changes st any more
		if old := c.states[k]; old != nil && old.p.UUID != st.p.UUID {
			delete(c.keys, old.p.UUID)
		}
		if old, ok := c.keys[st.p.UUID]; ok && old != k {
			delete(c.states, old)
		}
		c.states[k], c.keys[st.p.UUID] = st, k
	}
}

// reset empties the cache: a transaction did not commit, or another
// connection wrote.
func (c *poolCache) reset() {
	clear(c.states)
	clear(c.keys)
}

// invalidate empties the cache and forgets its data version, so that the
// next transaction's begin reports a change.
func (c *poolCache) invalidate() {
	c.reset()
	c.version = -1 // PRAGMA data_version is never negative
}

// state returns t's state of pool k: the one t has, else the cache's if t
// may use it (t has not written the pool without knowing it), which t
// adopts from then on; else nil.
func (t *txn) state(k int64) *poolState {
	if st := t.states[k]; st != nil {
		return st
	}
	if t.cache == nil || t.stale[k] {
		return nil
	}
	c := t.cache.states[k]
	if c == nil {
		return nil
	}
	st := *c
	t.rememberPool(st.p.UUID, k)
	t.setState(&st)
	return &st
}

// stateByID is state for a pool known by its UUID, nil if t has no state
// for it.
func (t *txn) stateByID(id uuid.UUID) *poolState {
	k, ok := t.pools[id]
	if !ok && t.cache != nil {
		k, ok = t.cache.keys[id]
	}
	if !ok {
		return nil
	}
	if st := t.state(k); st != nil && st.p.UUID == id {
		return st
	}
	return nil
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
