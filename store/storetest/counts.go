package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func countTests() []test {
	return []test{
		{"RandomOperations", testCountsRandomOperations},
	}
}

// countsModel is the expected content of two pools: p, where items come
// and go, and q, which receives copies of p.
type countsModel struct {
	b        *bundle
	p, q     pool.Pool
	created  bool                       // p and q are stored
	contacts []uuid.UUID                // the contacts operations draw from
	items    [2]map[uuid.UUID]pool.Item // by contact, as stored, for p and q
}

// testCountsRandomOperations runs random sequences of writes and checks,
// after each, that the per-status counts, contacts_count and InFlight equal
// a recount of the items listed, and that the items are those of a plain
// model. Due is checked against the model too, order included. Writes may
// first read the pools, as the queue does: a store may keep what a write
// transaction learnt of a pool for the later ones (the SQLite store does),
// and what it kept must follow every write.
func testCountsRandomOperations(t *testing.T, b *bundle) {
	rapid.Check(t, func(rt *rapid.T) {
		m := &countsModel{b: b, p: newPool(), q: newPool()}
		m.items = [2]map[uuid.UUID]pool.Item{{}, {}}
		for range 10 {
			m.contacts = append(m.contacts, uuid.New())
		}
		m.write(rt, func(tx store.Tx) error {
			if err := tx.InsertPool(b.ctx, m.p); err != nil {
				return err
			}
			return tx.InsertPool(b.ctx, m.q)
		})
		m.created = true
		actions := map[string]func(*rapid.T){
			"InsertItems": m.insertItems,
			"UpdateItem":  m.updateItem,
			"DeleteItems": m.deleteItems,
			"CopyItems":   m.copyItems,
			"Due":         m.due,
			"ResetCopy":   m.resetCopy,
		}
		names := slices.Sorted(maps.Keys(actions))
		m.check(rt)
		for range rapid.IntRange(1, maxSteps).Draw(rt, "steps") {
			actions[rapid.SampledFrom(names).Draw(rt, "action")](rt)
			m.check(rt)
		}
		// The store stays the size of one case: a store that checks what
		// it keeps of every pool at each commit (the SQLite store's check
		// mode) would otherwise slow down case after case.
		m.write(rt, func(tx store.Tx) error {
			if err := tx.DeletePool(b.ctx, m.p.UUID); err != nil {
				return err
			}
			return tx.DeletePool(b.ctx, m.q.UUID)
		})
	})
}

// write runs fn in a write transaction that, once the pools are stored,
// reads them first when the draw says so.
func (m *countsModel) write(rt *rapid.T, fn func(tx store.Tx) error) {
	rt.Helper()
	first := m.created && rapid.Bool().Draw(rt, "read pools first")
	require.NoError(rt, m.b.st.Write(m.b.ctx, func(tx store.Tx) error {
		if first {
			for _, p := range []pool.Pool{m.p, m.q} {
				if _, err := tx.Pool(m.b.ctx, p.UUID); err != nil {
					return err
				}
			}
		}
		return fn(tx)
	}))
}

// refresh reads back the item of contact c in pool i into the model.
func (m *countsModel) refresh(tx store.Tx, i int, c uuid.UUID) error {
	ps := [2]pool.Pool{m.p, m.q}
	it, err := tx.Item(m.b.ctx, ps[i].UUID, c)
	m.items[i][c] = it
	return err
}

// existing returns the contacts of p's items, sorted, so draws are
// reproducible.
func (m *countsModel) existing() []uuid.UUID {
	out := make([]uuid.UUID, 0, len(m.items[0]))
	for c := range m.items[0] {
		out = append(out, c)
	}
	slices.SortFunc(out, func(x, y uuid.UUID) int { return slices.Compare(x[:], y[:]) })
	return out
}

func (m *countsModel) insertItems(rt *rapid.T) {
	batch := rapid.SliceOfN(rapid.SampledFrom(m.contacts), 1, 6).Draw(rt, "contacts")
	items := make([]pool.Item, len(batch))
	want := 0
	fresh := map[uuid.UUID]pool.Item{}
	for i, c := range batch {
		items[i] = randomItem(rt, c)
		if _, ok := m.items[0][c]; !ok {
			if _, dup := fresh[c]; !dup {
				fresh[c] = items[i]
				want++
			}
		}
	}
	var added int
	m.write(rt, func(tx store.Tx) (err error) {
		if added, err = tx.InsertItems(m.b.ctx, m.p.UUID, items); err != nil {
			return err
		}
		for c := range fresh {
			if err := m.refresh(tx, 0, c); err != nil {
				return err
			}
		}
		return nil
	})
	require.Equal(rt, want, added)
	for c, first := range fresh {
		first.ID = m.items[0][c].ID
		require.True(rt, equalItems(first, m.items[0][c]), "the first of a contact's items is stored")
	}
}

func (m *countsModel) updateItem(rt *rapid.T) {
	cs := m.existing()
	if len(cs) == 0 {
		return
	}
	c := rapid.SampledFrom(cs).Draw(rt, "contact")
	it := randomItem(rt, c)
	it.ID = m.items[0][c].ID
	it.PoolUUID = m.p.UUID
	from := m.items[0][c].Status
	m.write(rt, func(tx store.Tx) error { return tx.UpdateItem(m.b.ctx, from, it) })
	m.items[0][c] = it
}

// deleteItems deletes some of p's items, naming with them an item of q
// and an ID that is no item's, which stay as they are.
func (m *countsModel) deleteItems(rt *rapid.T) {
	cs := m.existing()
	if len(cs) == 0 {
		return
	}
	gone := rapid.SliceOfNDistinct(rapid.SampledFrom(cs), 1, 4, func(c uuid.UUID) uuid.UUID { return c }).Draw(rt, "contacts")
	var named []int64
	for _, c := range gone {
		named = append(named, m.items[0][c].ID)
	}
	if len(m.items[1]) > 0 { // one of q's, left alone
		named = append(named, slices.Min(ids(slices.Collect(maps.Values(m.items[1])))))
	}
	named = append(named, 1<<40) // no item's
	var n int
	m.write(rt, func(tx store.Tx) (err error) {
		n, err = tx.DeleteItems(m.b.ctx, m.p.UUID, named)
		return err
	})
	require.Equal(rt, len(gone), n, "DeleteItems count")
	for _, c := range gone {
		delete(m.items[0], c)
	}
}

func (m *countsModel) copyItems(rt *rapid.T) {
	var fresh []uuid.UUID
	for _, c := range m.existing() {
		if _, ok := m.items[1][c]; !ok {
			fresh = append(fresh, c)
		}
	}
	var n int
	m.write(rt, func(tx store.Tx) (err error) {
		if n, err = tx.CopyItems(m.b.ctx, m.p.UUID, m.q.UUID, t0); err != nil {
			return err
		}
		for _, c := range fresh {
			if err := m.refresh(tx, 1, c); err != nil {
				return err
			}
		}
		return nil
	})
	require.Equal(rt, len(fresh), n, "CopyItems count")
	for _, c := range fresh {
		want := pool.Item{ID: m.items[1][c].ID, ContactUUID: c, Status: pool.StatusPending, Priority: m.items[0][c].Priority}
		require.True(rt, equalItems(want, m.items[1][c]), "a copy is Pending with its priority")
	}
}

func (m *countsModel) resetCopy(rt *rapid.T) {
	m.write(rt, func(tx store.Tx) error {
		if err := tx.DeletePool(m.b.ctx, m.q.UUID); err != nil {
			return err
		}
		return tx.InsertPool(m.b.ctx, m.q)
	})
	m.items[1] = map[uuid.UUID]pool.Item{}
}

func (m *countsModel) due(rt *rapid.T) {
	typ := rapid.SampledFrom(pool.Types()).Draw(rt, "type")
	now := at(time.Duration(rapid.IntRange(0, 12).Draw(rt, "now")) * time.Minute)
	limit := rapid.IntRange(1, 12).Draw(rt, "limit")

	var want []pool.Item
	for _, c := range m.existing() {
		if it := m.items[0][c]; it.Due(now) {
			want = append(want, it)
		}
	}
	slices.SortFunc(want, dueOrder(typ))
	want = want[:min(limit, len(want))]

	var got []pool.Item
	m.write(rt, func(tx store.Tx) (err error) {
		got, err = tx.Due(m.b.ctx, m.p.UUID, typ, now, limit)
		return err
	})
	require.Equal(rt, ids(want), ids(got), "Due(%s, %v, %d)", typ, now, limit)
}

// check compares the counts with a recount and the items with the model,
// in a read transaction, then contacts_count and InFlight with the model in
// a write transaction, which a store may answer from what it kept of
// earlier ones.
func (m *countsModel) check(rt *rapid.T) {
	m.checkRead(rt)
	m.write(rt, func(tx store.Tx) error {
		for i, p := range []pool.Pool{m.p, m.q} {
			inFlight := 0
			for _, it := range m.items[i] {
				if it.Status.InFlight() {
					inFlight++
				}
			}
			got, err := tx.Pool(m.b.ctx, p.UUID)
			if err != nil {
				return err
			}
			if got.ContactsCount != len(m.items[i]) {
				return fmt.Errorf("pool %d, write transaction: contacts_count %d, model %d", i, got.ContactsCount, len(m.items[i]))
			}
			n, err := tx.InFlight(m.b.ctx, p.UUID)
			if err != nil {
				return err
			}
			if n != inFlight {
				return fmt.Errorf("pool %d, write transaction: InFlight %d, model %d", i, n, inFlight)
			}
		}
		return nil
	})
}

// checkRead is the part of check in a read transaction.
func (m *countsModel) checkRead(rt *rapid.T) {
	err := m.b.st.Read(m.b.ctx, func(tx store.Tx) error {
		for i, p := range []pool.Pool{m.p, m.q} {
			items, err := listAll(m.b.ctx, tx, p.UUID, "")
			if err != nil {
				return err
			}
			recount := pool.ZeroCounts()
			for _, it := range items {
				recount[it.Status]++
				if want := m.items[i][it.ContactUUID]; !equalItems(want, it) {
					return fmt.Errorf("pool %d: item %v, model %v", i, it, want)
				}
			}
			if len(items) != len(m.items[i]) {
				return fmt.Errorf("pool %d: %d items, model %d", i, len(items), len(m.items[i]))
			}
			counts, err := tx.StatusCounts(m.b.ctx, p.UUID)
			if err != nil {
				return err
			}
			if !equalCounts(recount, counts) {
				return fmt.Errorf("pool %d: StatusCounts %v, recount %v", i, counts, recount)
			}
			got, err := tx.Pool(m.b.ctx, p.UUID)
			if err != nil {
				return err
			}
			if got.ContactsCount != len(items) {
				return fmt.Errorf("pool %d: contacts_count %d, recount %d", i, got.ContactsCount, len(items))
			}
			n, err := tx.InFlight(m.b.ctx, p.UUID)
			if err != nil {
				return err
			}
			if want := recount[pool.StatusProcessing] + recount[pool.StatusInCall]; n != want {
				return fmt.Errorf("pool %d: InFlight %d, recount %d", i, n, want)
			}
		}
		return nil
	})
	require.NoError(rt, err)
}

// randomItem returns an item of contact c in a random status, with the
// fields that status uses.
func randomItem(rt *rapid.T, c uuid.UUID) pool.Item {
	it := pool.Item{
		ContactUUID: c,
		Status:      rapid.SampledFrom(pool.Statuses()).Draw(rt, "status"),
		Priority:    rapid.IntRange(-2, 2).Draw(rt, "priority"),
		AddedAt:     t0,
	}
	when := at(time.Duration(rapid.IntRange(0, 12).Draw(rt, "when")) * time.Minute)
	switch {
	case it.Status == pool.StatusRetrying || it.Status == pool.StatusScheduled:
		it.NextRetryAt = &when
		it.Attempts, it.RetryCount = 1, 1
	case it.Status.InFlight():
		it.LeaseExpiresAt = when
		it.Attempts, it.Token = 1, 1
	}
	return it
}

func equalItems(x, y pool.Item) bool {
	return x.ID == y.ID && x.Status == y.Status && x.Priority == y.Priority &&
		x.ContactUUID == y.ContactUUID && x.LeaseExpiresAt.Equal(y.LeaseExpiresAt) &&
		(x.NextRetryAt == nil) == (y.NextRetryAt == nil) &&
		(x.NextRetryAt == nil || x.NextRetryAt.Equal(*y.NextRetryAt))
}

func equalCounts(x, y map[pool.Status]int) bool {
	if len(x) != len(y) {
		return false
	}
	for s, n := range x {
		if y[s] != n {
			return false
		}
	}
	return true
}
