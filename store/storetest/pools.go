package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

func poolTests() []test {
	return []test{
		{"InsertPool/RoundTrip", testInsertPoolRoundTrip},
		{"InsertPool/ErrConflict", testInsertPoolConflict},
		{"Pool/ErrNotFound", testPoolNotFound},
		{"UpdatePool/OK", testUpdatePool},
		{"UpdatePool/ErrNotFound", testUpdatePoolNotFound},
		{"DeletePool/OK", testDeletePool},
		{"DeletePool/ErrNotFound", testDeletePoolNotFound},
		{"DeletePool/SameTransaction", testDeletePoolSameTx},
		{"DeletePool/CountsGoWithThePool", testDeletePoolCountsGo},
		{"Pools/Paging", testPoolsPaging},
		{"Pools/Filters", testPoolsFilters},
		{"Pools/Search", testPoolsSearch},
		{"Pools/ContactsCount", testPoolsContactsCount},
		{"StatusCounts/OK", testStatusCounts},
		{"StatusCounts/ErrNotFound", testStatusCountsNotFound},
	}
}

func testInsertPoolRoundTrip(t *testing.T, b *bundle) {
	paris := time.FixedZone("Paris", 3600)
	for _, want := range []pool.Pool{
		newPool(func(p *pool.Pool) {
			p.Name = "Écoles — 日本語 names"
			p.Description = "multi\nline, \"quoted\" 'text' %_"
			p.Type = pool.Parallel
			p.MaxParallelItems = 100
			p.MaxRetries = 0
			p.IsActive = false
			p.CreatedAt = time.Date(2024, 2, 29, 23, 59, 59, 999999999, paris)
			p.UpdatedAt = time.Date(2030, 1, 1, 0, 0, 0, 1, paris)
		}),
		newPool(func(p *pool.Pool) {
			p.Type = pool.LIFO
			p.MaxParallelItems = 1
			p.MaxRetries = pow2to40
		}),
	} {
		in := want
		in.ContactsCount = 42 // ignored
		b.write(func(tx store.Tx) error { return tx.InsertPool(b.ctx, in) })

		want.CreatedAt = want.CreatedAt.UTC()
		want.UpdatedAt = want.UpdatedAt.UTC()
		got := b.getPool(want.UUID)
		require.Equal(t, want, got)
		require.Equal(t, time.UTC, got.CreatedAt.Location())
		require.Equal(t, time.UTC, got.UpdatedAt.Location())
	}
}

func testInsertPoolConflict(t *testing.T, b *bundle) {
	p := b.insertPool()
	dup := newPool(func(d *pool.Pool) { d.UUID = p.UUID; d.Name = "Another name" })
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.InsertPool(b.ctx, dup) })
	require.ErrorIs(t, err, store.ErrConflict)
	require.Equal(t, p, b.getPool(p.UUID), "the first pool is unchanged")

	// Names may repeat.
	b.insertPool(func(d *pool.Pool) { d.Name = p.Name })
}

func testPoolNotFound(t *testing.T, b *bundle) {
	b.insertPool()
	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		_, err := tx.Pool(b.ctx, uuid.New())
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testUpdatePool(t *testing.T, b *bundle) {
	p := b.insertPool()
	other := b.insertPool()
	b.insertItems(p.UUID, pending(3))

	want := p
	want.Name = "Renamed ünïcode"
	want.Description = "new description"
	want.Type = pool.Parallel
	want.MaxParallelItems = 55
	want.MaxRetries = 9
	want.IsActive = false
	want.UpdatedAt = at(time.Hour + 7)
	in := want
	in.CreatedAt = at(99 * time.Hour) // never stored
	in.ContactsCount = 1000           // read-only
	b.write(func(tx store.Tx) error { return tx.UpdatePool(b.ctx, in) })

	want.ContactsCount = 3
	require.Equal(t, want, b.getPool(p.UUID))
	require.Equal(t, other, b.getPool(other.UUID), "other pools are unchanged")
}

func testUpdatePoolNotFound(t *testing.T, b *bundle) {
	b.insertPool()
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdatePool(b.ctx, newPool()) })
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testDeletePool(t *testing.T, b *bundle) {
	p := b.insertPool()
	other := b.insertPool()
	items := b.insertItems(p.UUID, pending(5))
	kept := b.insertItems(other.UUID, pending(2))

	b.write(func(tx store.Tx) error { return tx.DeletePool(b.ctx, p.UUID) })

	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(b.ctx, p.UUID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Pool: %v, want ErrNotFound", err)
		}
		if _, err := tx.StatusCounts(b.ctx, p.UUID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("StatusCounts: %v, want ErrNotFound", err)
		}
		for _, it := range items {
			if _, err := tx.ItemByID(b.ctx, it.ID); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ItemByID(%d): %v, want ErrNotFound", it.ID, err)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 2, b.getPool(other.UUID).ContactsCount)
	require.Equal(t, kept, b.allItems(other.UUID, ""))

	// The pool's contacts may join a new pool with the same UUID.
	again := b.insertPool(func(n *pool.Pool) { n.UUID = p.UUID })
	b.insertItems(again.UUID, items)
	require.Equal(t, 5, b.getPool(p.UUID).ContactsCount)
}

// testDeletePoolSameTx uses a pool after deleting it, and after inserting
// it again, in one transaction.
func testDeletePoolSameTx(t *testing.T, b *bundle) {
	p := b.insertPool()
	b.insertItems(p.UUID, pending(2))
	// Write may run its function again: it only gathers what the calls
	// answered, and the checks come once it returns.
	var countsErr, insertErr, poolErr error
	var n int
	var counts map[pool.Status]int
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.StatusCounts(b.ctx, p.UUID); err != nil {
			return err
		}
		if err := tx.DeletePool(b.ctx, p.UUID); err != nil {
			return err
		}
		_, countsErr = tx.StatusCounts(b.ctx, p.UUID)
		_, insertErr = tx.InsertItems(b.ctx, p.UUID, pending(1))
		_, poolErr = tx.Pool(b.ctx, p.UUID)

		if err := tx.InsertPool(b.ctx, p); err != nil {
			return err
		}
		if n, err = tx.InsertItems(b.ctx, p.UUID, pending(3)); err != nil {
			return err
		}
		counts, err = tx.StatusCounts(b.ctx, p.UUID)
		return err
	})
	require.ErrorIs(t, countsErr, store.ErrNotFound, "StatusCounts")
	require.ErrorIs(t, insertErr, store.ErrNotFound, "InsertItems")
	require.ErrorIs(t, poolErr, store.ErrNotFound, "Pool")
	require.Equal(t, 3, n)
	require.Equal(t, 3, counts[pool.StatusPending])
	require.Equal(t, 3, b.getPool(p.UUID).ContactsCount)
}

// testDeletePoolCountsGo: the counts a transaction changed for a pool it
// then deletes go with the pool: a pool inserted after it in the same
// transaction (which a store may give the same internal key) starts at
// zero in every status.
func testDeletePoolCountsGo(t *testing.T, b *bundle) {
	gone, next := newPool(), newPool()
	var inTx map[pool.Status]int
	b.write(func(tx store.Tx) (err error) {
		if err = tx.InsertPool(b.ctx, gone); err != nil {
			return err
		}
		if _, err = tx.InsertItems(b.ctx, gone.UUID, pending(3)); err != nil {
			return err
		}
		if err = tx.DeletePool(b.ctx, gone.UUID); err != nil {
			return err
		}
		if err = tx.InsertPool(b.ctx, next); err != nil {
			return err
		}
		inTx, err = tx.StatusCounts(b.ctx, next.UUID)
		return err
	})
	require.Equal(t, pool.ZeroCounts(), inTx, "in the transaction")
	var after map[pool.Status]int
	b.read(func(tx store.Tx) (err error) {
		after, err = tx.StatusCounts(b.ctx, next.UUID)
		return err
	})
	require.Equal(t, pool.ZeroCounts(), after, "committed")
	require.Zero(t, b.getPool(next.UUID).ContactsCount)
}

func testDeletePoolNotFound(t *testing.T, b *bundle) {
	b.insertPool()
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.DeletePool(b.ctx, uuid.New()) })
	require.ErrorIs(t, err, store.ErrNotFound)
}

// listPools returns one page of pools and the total.
func (b *bundle) listPools(q pool.PoolQuery) ([]pool.Pool, int) {
	b.t.Helper()
	q, err := q.Normalize()
	require.NoError(b.t, err)
	var out []pool.Pool
	var total int
	b.read(func(tx store.Tx) (err error) {
		out, total, err = tx.Pools(b.ctx, q)
		return err
	})
	return out, total
}

func poolIDs(ps []pool.Pool) []uuid.UUID {
	out := make([]uuid.UUID, len(ps))
	for i, p := range ps {
		out[i] = p.UUID
	}
	return out
}

func testPoolsPaging(t *testing.T, b *bundle) {
	// Inserted out of order; three share one creation time, so the UUID
	// breaks the tie.
	created := []time.Duration{5, 1, 3, 3, 3, 0, 9}
	var want []pool.Pool
	for _, c := range created {
		want = append(want, b.insertPool(func(p *pool.Pool) { p.CreatedAt = at(c * time.Second) }))
	}
	slices.SortFunc(want, func(x, y pool.Pool) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(x.UUID[:], y.UUID[:])
	})

	var got []pool.Pool
	for page, size := range []int{3, 3, 1} {
		ps, total := b.listPools(pool.PoolQuery{Page: page + 1, PerPage: 3})
		require.Equal(t, len(want), total)
		require.Len(t, ps, size, "page %d", page+1)
		got = append(got, ps...)
	}
	require.Equal(t, want, got)

	ps, total := b.listPools(pool.PoolQuery{Page: 4, PerPage: 3})
	require.Empty(t, ps, "past the last page")
	require.Equal(t, len(want), total)

	ps, _ = b.listPools(pool.PoolQuery{Page: 1, PerPage: 100})
	require.Equal(t, want, ps)
}

func testPoolsFilters(t *testing.T, b *bundle) {
	fifo := b.insertPool(func(p *pool.Pool) { p.Type = pool.FIFO; p.CreatedAt = at(1) })
	lifoOff := b.insertPool(func(p *pool.Pool) { p.Type = pool.LIFO; p.IsActive = false; p.CreatedAt = at(2) })
	par := b.insertPool(func(p *pool.Pool) { p.Type = pool.Parallel; p.CreatedAt = at(3) })
	parOff := b.insertPool(func(p *pool.Pool) { p.Type = pool.Parallel; p.IsActive = false; p.CreatedAt = at(4) })

	for _, tc := range []struct {
		name  string
		q     pool.PoolQuery
		want  []pool.Pool
		total int
	}{
		{"All", pool.PoolQuery{}, []pool.Pool{fifo, lifoOff, par, parOff}, 4},
		{"TypeFIFO", pool.PoolQuery{Type: pool.FIFO}, []pool.Pool{fifo}, 1},
		{"TypeLIFO", pool.PoolQuery{Type: pool.LIFO}, []pool.Pool{lifoOff}, 1},
		{"TypeParallel", pool.PoolQuery{Type: "parallel"}, []pool.Pool{par, parOff}, 2},
		{"Active", pool.PoolQuery{IsActive: ptr(true)}, []pool.Pool{fifo, par}, 2},
		{"Inactive", pool.PoolQuery{IsActive: ptr(false)}, []pool.Pool{lifoOff, parOff}, 2},
		{"TypeAndInactive", pool.PoolQuery{Type: pool.Parallel, IsActive: ptr(false)}, []pool.Pool{parOff}, 1},
		{"InactivePage2", pool.PoolQuery{IsActive: ptr(false), PerPage: 1, Page: 2}, []pool.Pool{parOff}, 2},
	} {
		got, total := b.listPools(tc.q)
		require.Equal(t, poolIDs(tc.want), poolIDs(got), tc.name)
		require.Equal(t, tc.total, total, tc.name)
	}
}

func testPoolsSearch(t *testing.T, b *bundle) {
	ecole := b.insertPool(func(p *pool.Pool) { p.Name = "école du Nord"; p.Description = "Lille"; p.CreatedAt = at(1) })
	vip := b.insertPool(func(p *pool.Pool) { p.Name = "VIP customers"; p.Description = "High-value leads"; p.CreatedAt = at(2) })
	under := b.insertPool(func(p *pool.Pool) { p.Name = "a_b 100%"; p.Description = "literal wildcards"; p.CreatedAt = at(3) })
	greek := b.insertPool(func(p *pool.Pool) {
		p.Name = "ΣΊΣΥΦΟΣ"
		p.Description = "Στρασβούργο"
		p.Type = pool.Parallel
		p.CreatedAt = at(4)
	})

	for _, tc := range []struct {
		search string
		want   []pool.Pool
	}{
		{"ÉCOLE", []pool.Pool{ecole}},
		{"École Du", []pool.Pool{ecole}},
		{"ecole", nil}, // case, not accents
		{"lille", []pool.Pool{ecole}},
		{"vip", []pool.Pool{vip}},
		{"HIGH-VALUE", []pool.Pool{vip}},
		{"e", []pool.Pool{ecole, vip, under, greek}}, // greek by its type, Parallel
		{"fifo", []pool.Pool{ecole, vip, under}},     // the type, any case
		{"PARALLEL", []pool.Pool{greek}},
		{"allel", []pool.Pool{greek}},
		{"_", []pool.Pool{under}},
		{"%", []pool.Pool{under}},
		{"a%b", nil},
		{"σίσυφος", []pool.Pool{greek}},
		{"ΣΤΡΑΣ", []pool.Pool{greek}},
		{"no such pool", nil},
	} {
		got, total := b.listPools(pool.PoolQuery{Search: tc.search})
		require.Equal(t, poolIDs(tc.want), poolIDs(got), "search %q", tc.search)
		require.Equal(t, len(tc.want), total, "search %q", tc.search)
	}

	got, total := b.listPools(pool.PoolQuery{Search: "E", Type: pool.FIFO, IsActive: ptr(true), PerPage: 2, Page: 2})
	require.Equal(t, 3, total)
	require.Equal(t, poolIDs([]pool.Pool{under}), poolIDs(got))

	// The search follows updates.
	vip.Name = "Ordinary customers"
	vip.Description = "leads"
	b.write(func(tx store.Tx) error { return tx.UpdatePool(b.ctx, vip) })
	got, _ = b.listPools(pool.PoolQuery{Search: "VIP"})
	require.Empty(t, got)
	got, _ = b.listPools(pool.PoolQuery{Search: "ORDINARY"})
	require.Equal(t, poolIDs([]pool.Pool{vip}), poolIDs(got))
}

func testPoolsContactsCount(t *testing.T, b *bundle) {
	empty := b.insertPool(func(p *pool.Pool) { p.CreatedAt = at(1) })
	full := b.insertPool(func(p *pool.Pool) { p.CreatedAt = at(2) })
	items := b.insertItems(full.UUID, pending(4))
	items[0].Status = pool.StatusCompleted
	b.update(items[0])

	got, _ := b.listPools(pool.PoolQuery{})
	require.Len(t, got, 2)
	require.Equal(t, 0, got[0].ContactsCount)
	require.Equal(t, 4, got[1].ContactsCount)
	require.Equal(t, 0, b.getPool(empty.UUID).ContactsCount)
	require.Equal(t, 4, b.getPool(full.UUID).ContactsCount)
}

func testStatusCounts(t *testing.T, b *bundle) {
	p := b.insertPool()
	counts := func() map[pool.Status]int {
		var m map[pool.Status]int
		b.read(func(tx store.Tx) (err error) {
			m, err = tx.StatusCounts(b.ctx, p.UUID)
			return err
		})
		return m
	}
	require.Equal(t, pool.ZeroCounts(), counts(), "every status, zeros included")

	items := b.insertItems(p.UUID, pending(6))
	for i, s := range []pool.Status{pool.StatusProcessing, pool.StatusInCall, pool.StatusRetrying, pool.StatusFailed, pool.StatusFailed} {
		items[i].Status = s
		b.update(items[i])
	}
	want := pool.ZeroCounts()
	want[pool.StatusPending] = 1
	want[pool.StatusProcessing] = 1
	want[pool.StatusInCall] = 1
	want[pool.StatusRetrying] = 1
	want[pool.StatusFailed] = 2
	require.Equal(t, want, counts())
	require.Equal(t, 6, b.getPool(p.UUID).ContactsCount)
}

func testStatusCountsNotFound(t *testing.T, b *bundle) {
	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		_, err := tx.StatusCounts(b.ctx, uuid.New())
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound)
}
