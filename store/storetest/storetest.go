// Package storetest is the conformance suite of poolq's persistence
// contract: every [store.Store] implementation runs [Run] from its own tests
// and must pass it unchanged.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { return MustOpen(t) })
//	}
//
// The suite checks what the doc comments of package store promise, method
// by method: round trips of every field (times in UTC to the nanosecond),
// the sentinel errors, paging and filters, the dispatch orders and the due
// set, the per-status counts against a recount after random operations,
// read-only and rolled-back transactions, Close. It checks nothing an
// implementation may choose freely (error texts, the encoding of UUIDs).
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// Large ints that a store must keep exactly: beyond 32 bits where an int
// has 64 (2^33, 2^40, 2^50), and 2^30 where it has 32 bits (386, arm), the
// largest power of two it holds.
const (
	pow2to33 = 1 << min(33, strconv.IntSize-2)
	pow2to40 = 1 << min(40, strconv.IntSize-2)
	pow2to50 = 1 << min(50, strconv.IntSize-2)
)

// Run runs the conformance suite as subtests of t. open must return a new,
// empty store for each call, closed by a t.Cleanup it registers (which
// closes again the stores a subtest closed itself); subtests call it from
// parallel goroutines.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	run(t, open, func(string) bool { return true })
}

// RunConcurrent runs the part of the suite whose tests work from several
// goroutines at once (writers and readers together, a read behind
// another transaction's lock), as Run does. It is for a run under the
// race detector of a store whose whole suite has run without it: the
// other tests make their calls one at a time. The package's own test
// TestSeveral checks the list of those tests against the suite's source,
// so a new test that starts goroutines cannot be left out.
func RunConcurrent(t *testing.T, open func(t *testing.T) store.Store) {
	run(t, open, func(name string) bool { return several[name] })
}

// several names the tests that work from several goroutines: every test
// whose function, or a helper of this package it calls, has a go
// statement or a call of a method Go, AfterFunc or Parallel, and no other.
// TestSeveral fails on a test missing from it, a test in it that starts
// no goroutine, and a name that matches no test.
//
// The names are listed here rather than marked by a field of test next to
// each entry: a third field would have to be written in every positional
// entry ({"name", fn}) of every group's table, over a hundred, and a branch
// that adds a test as {"name", fn} would no longer compile; with
// TestSeveral this list cannot fall out of step with the source anyway.
var several = map[string]bool{
	"Transactions/Concurrent":              true,
	"Contacts/DNC/Concurrent":              true,
	"Contacts/InsertEscalation/Concurrent": true,
	"Dispatch/PoolDue/ReadBehindTheLock":   true,
	"Items/PoolItems/ReadBehindTheLock":    true,
}

// group is one of the suite's groups of tests.
type group struct {
	name  string
	tests []test
}

func groups() []group {
	return []group{
		{"Pools", poolTests()},
		{"Items", itemTests()},
		{"Dispatch", dispatchTests()},
		{"Transactions", txTests()},
		{"Counts", countTests()},
		{"Campaigns", campaignTests()},
		{"Contacts", contactTests()},
		{"State", stateTests()},
		{"Close", closeTests()},
	}
}

func run(t *testing.T, open func(t *testing.T) store.Store, keep func(name string) bool) {
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				if !keep(g.name + "/" + tc.name) {
					continue
				}
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.fn(t, setup(t, open))
				})
			}
		})
	}
}

// test is one subtest of the suite. One whose fn starts goroutines is
// named in several as well, for RunConcurrent.
type test struct {
	name string
	fn   func(t *testing.T, b *bundle)
}

// bundle is what every subtest gets: a fresh store and helpers bound to t.
type bundle struct {
	t   *testing.T
	st  store.Store
	ctx context.Context
}

func setup(t *testing.T, open func(t *testing.T) store.Store) *bundle {
	return &bundle{t: t, st: open(t), ctx: context.Background()}
}

// t0 is the suite's reference time: nanoseconds set, in UTC.
var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)

// at returns t0 + d.
func at(d time.Duration) time.Time { return t0.Add(d) }

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// write runs fn in a write transaction and requires it to succeed.
func (b *bundle) write(fn func(tx store.Tx) error) {
	b.t.Helper()
	require.NoError(b.t, b.st.Write(b.ctx, fn))
}

// read runs fn in a read transaction and requires it to succeed.
func (b *bundle) read(fn func(tx store.Tx) error) {
	b.t.Helper()
	require.NoError(b.t, b.st.Read(b.ctx, fn))
}

// inTx runs fn in a write transaction when write is true, else in a read
// one, and requires it to succeed.
func (b *bundle) inTx(write bool, fn func(tx store.Tx) error) {
	b.t.Helper()
	if write {
		b.write(fn)
	} else {
		b.read(fn)
	}
}

// newPool returns a valid pool that is not stored yet, changed by mods.
func newPool(mods ...func(*pool.Pool)) pool.Pool {
	p := pool.Pool{
		UUID:             uuid.New(),
		Name:             "Pool " + uuid.NewString()[:8],
		Description:      "A test pool",
		Type:             pool.FIFO,
		MaxParallelItems: 10,
		MaxRetries:       3,
		IsActive:         true,
		CreatedAt:        t0,
		UpdatedAt:        t0,
	}
	for _, m := range mods {
		m(&p)
	}
	return p
}

// insertPool stores a new pool changed by mods and returns it.
func (b *bundle) insertPool(mods ...func(*pool.Pool)) pool.Pool {
	b.t.Helper()
	p := newPool(mods...)
	b.write(func(tx store.Tx) error { return tx.InsertPool(b.ctx, p) })
	return p
}

// getPool reads a pool.
func (b *bundle) getPool(id uuid.UUID) pool.Pool {
	b.t.Helper()
	var p pool.Pool
	b.read(func(tx store.Tx) (err error) {
		p, err = tx.Pool(b.ctx, id)
		return err
	})
	return p
}

// pending returns n Pending items with new contacts, added at t0 + i ns.
func pending(n int) []pool.Item {
	out := make([]pool.Item, n)
	for i := range out {
		out[i] = pool.Item{
			ContactUUID: uuid.New(),
			Status:      pool.StatusPending,
			AddedAt:     at(time.Duration(i)),
		}
	}
	return out
}

// insertItems stores items in pool id and returns them as stored, in
// insertion order (IDs assigned).
func (b *bundle) insertItems(id uuid.UUID, items []pool.Item) []pool.Item {
	b.t.Helper()
	var added int
	b.write(func(tx store.Tx) (err error) {
		added, err = tx.InsertItems(b.ctx, id, items)
		return err
	})
	require.Equal(b.t, len(items), added, "InsertItems added")
	out := make([]pool.Item, len(items))
	b.read(func(tx store.Tx) error {
		for i, it := range items {
			got, err := tx.Item(b.ctx, id, it.ContactUUID)
			if err != nil {
				return err
			}
			out[i] = got
		}
		return nil
	})
	return out
}

// item reads an item by ID.
func (b *bundle) item(id int64) pool.Item {
	b.t.Helper()
	var it pool.Item
	b.read(func(tx store.Tx) (err error) {
		it, err = tx.ItemByID(b.ctx, id)
		return err
	})
	return it
}

// update stores it, from the status it is in.
func (b *bundle) update(it pool.Item) {
	b.t.Helper()
	from := b.item(it.ID).Status
	b.write(func(tx store.Tx) error { return tx.UpdateItem(b.ctx, from, it) })
}

// allItems lists every item of a pool, all pages, optionally of one status.
func (b *bundle) allItems(id uuid.UUID, status pool.Status) []pool.Item {
	b.t.Helper()
	var out []pool.Item
	b.read(func(tx store.Tx) error {
		var err error
		out, err = listAll(b.ctx, tx, id, status)
		return err
	})
	return out
}

// listAll pages through a pool's items 100 at a time.
func listAll(ctx context.Context, tx store.Tx, id uuid.UUID, status pool.Status) ([]pool.Item, error) {
	var out []pool.Item
	for page := 1; ; page++ {
		got, total, err := tx.Items(ctx, id, pool.ItemQuery{Status: status, Page: page, PerPage: pool.MaxPerPage})
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
		if len(got) < pool.MaxPerPage {
			if total != len(out) {
				return nil, fmt.Errorf("items total %d, listed %d", total, len(out))
			}
			return out, nil
		}
	}
}

// ids returns the IDs of items.
func ids(items []pool.Item) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	return out
}

// requireJSON requires two payloads to hold the same bytes, nil and empty
// alike.
func requireJSON(t *testing.T, want, got json.RawMessage) {
	t.Helper()
	if len(want) == 0 {
		require.Empty(t, got)
		return
	}
	require.Equal(t, string(want), string(got))
}
