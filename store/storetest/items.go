package storetest

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

func itemTests() []test {
	return []test{
		{"InsertItems/RoundTrip", testInsertItemsRoundTrip},
		{"InsertItems/SkipsExisting", testInsertItemsSkipsExisting},
		{"InsertItems/IDsNeverReused", testInsertItemsIDsNeverReused},
		{"InsertItems/ContactInTwoPools", testInsertItemsTwoPools},
		{"InsertItems/ErrNotFound", testInsertItemsNotFound},
		{"InsertItems/PayloadNotJSON", testInsertItemsPayloadNotJSON},
		{"InsertItems/PayloadNotJSONIgnored", testInsertItemsPayloadNotJSONIgnored},
		{"InsertItems/LaterKindFailsIgnored", testInsertItemsLaterKindFailsIgnored},
		{"CopyItems/OK", testCopyItems},
		{"CopyItems/Empty", testCopyItemsEmpty},
		{"Item/ErrNotFound", testItemNotFound},
		{"ItemByID/OK", testItemByID},
		{"ItemByID/ErrNotFound", testItemByIDNotFound},
		{"UpdateItem/RoundTrip", testUpdateItemRoundTrip},
		{"UpdateItem/ErrNotFound", testUpdateItemNotFound},
		{"UpdateItem/StaleStatus", testUpdateItemStale},
		{"UpdateItems/Many", testUpdateItemsMany},
		{"UpdateItems/ErrNotFound", testUpdateItemsNotFound},
		{"UpdateItems/ErrNotFoundIgnored", testUpdateItemsNotFoundIgnored},
		{"UpdateItems/ErrNotFoundInSavepoint", testUpdateItemsNotFoundInSavepoint},
		{"UpdateItems/WrongPool", testUpdateItemsWrongPool},
		{"ItemsByID", testItemsByID},
		{"PoolItems", testPoolItems},
		{"PoolItems/ReadBehindTheLock", testPoolItemsBehindLock},
		{"ItemsOfContacts", testItemsOfContacts},
		{"DeleteItems/OK", testDeleteItems},
		{"DeleteItems/NothingToDelete", testDeleteItemsNothing},
		{"DeleteItems/Many", testDeleteItemsMany},
		{"Items/Paging", testItemsPaging},
		{"Items/After", testItemsAfter},
		{"Items/StatusFilter", testItemsStatusFilter},
		{"Items/Search", testItemsSearch},
		{"Items/SearchFollowsWrites", testItemsSearchFollowsWrites},
		{"Items/SearchWords", testItemsSearchWords},
		{"InsertItems/SkipKeepsContact", testInsertItemsSkipKeepsContact},
		{"CopyItems/Contacts", testCopyItemsContacts},
	}
}

// utc returns it with every time in UTC, as a store returns it.
func utc(it pool.Item) pool.Item {
	conv := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	it.StartedAt = conv(it.StartedAt)
	it.CompletedAt = conv(it.CompletedAt)
	it.FailedAt = conv(it.FailedAt)
	it.NextRetryAt = conv(it.NextRetryAt)
	it.AddedAt = it.AddedAt.UTC()
	if !it.LeaseExpiresAt.IsZero() {
		it.LeaseExpiresAt = it.LeaseExpiresAt.UTC()
	}
	return it
}

// fullItems returns items using every field, in several statuses, with
// times in another zone.
func fullItems() []pool.Item {
	tokyo := time.FixedZone("Tokyo", 9*3600)
	tt := func(d time.Duration) *time.Time { v := at(d).In(tokyo); return &v }
	return []pool.Item{
		{
			ContactUUID: uuid.New(), Status: pool.StatusPending, Priority: -7,
			AddedAt: at(1).In(tokyo),
			Payload: json.RawMessage(`{"phone": "+33 1 23 45 67 89", "n": [1, 2.5e3], "name": "Zoë"}`),
			Contact: pool.Contact{Name: "Zoë Ñúñez", PhoneNumber: "+33123456789", Email: "zoe@example.fr", TimeZone: "Europe/Paris"},
		},
		{ContactUUID: uuid.New(), Status: pool.StatusPending, Priority: pow2to50, AddedAt: at(2)},
		{
			ContactUUID: uuid.New(), Status: pool.StatusProcessing, Priority: 3, Attempts: 2, RetryCount: 1,
			StartedAt: tt(time.Minute), NextRetryAt: nil, Notes: "first try: busy",
			AddedAt: at(3), Token: 2, LeaseExpiresAt: at(time.Hour).In(tokyo), Payload: json.RawMessage(`"+1 555"`),
		},
		{
			ContactUUID: uuid.New(), Status: pool.StatusRetrying, Attempts: 1, RetryCount: 1,
			StartedAt: tt(time.Minute), NextRetryAt: tt(2 * time.Hour), Notes: "no answer",
			AddedAt: at(4), Token: 1, Payload: json.RawMessage(`null`),
			Contact: pool.Contact{PhoneNumber: "+15551234567", TimeZone: "America/New_York"},
		},
		{
			ContactUUID: uuid.New(), Status: pool.StatusCompleted, Attempts: 1,
			StartedAt: tt(time.Second), CompletedAt: tt(2 * time.Second), Notes: "answered ✓",
			AddedAt: at(5), Token: 1, Payload: json.RawMessage(`[]`),
		},
		{
			ContactUUID: uuid.New(), Status: pool.StatusFailed, Attempts: 4, RetryCount: 4,
			StartedAt: tt(time.Second), FailedAt: tt(3 * time.Second), Notes: pool.NoteCeiling,
			AddedAt: at(6), Token: 9,
		},
	}
}

func testInsertItemsRoundTrip(t *testing.T, b *bundle) {
	p := b.insertPool()
	want := fullItems()
	got := b.insertItems(p.UUID, want)
	require.Equal(t, 6, b.getPool(p.UUID).ContactsCount)
	for i := range want {
		if i > 0 {
			require.Greater(t, got[i].ID, got[i-1].ID, "IDs grow in the order given")
		}
		w := utc(want[i])
		w.ID = got[i].ID
		w.PoolUUID = p.UUID
		requireJSON(t, w.Payload, got[i].Payload)
		w.Payload = got[i].Payload
		require.Equal(t, w, got[i], "item %d", i)
	}
	require.Equal(t, got, b.allItems(p.UUID, ""))
}

// testInsertItemsSkipsExisting: a contact already in the pool is left
// out, for each kind of item a store may insert its own way: new items,
// new items with contact fields, and items in another state (Retrying,
// Completed, Failed: a store's general insert). Until a review dropped its
// ON CONFLICT, only Counts/RandomOperations caught the last kind failing
// the whole insert on a duplicate.
func testInsertItemsSkipsExisting(t *testing.T, b *bundle) {
	withContact := func(n int) []pool.Item {
		items := pending(n)
		for i := range items {
			items[i].Contact = pool.Contact{Name: fmt.Sprintf("Contact %d", i), TimeZone: "Europe/Paris"}
		}
		return items
	}
	inAnotherState := func(n int) []pool.Item { return fullItems()[3 : 3+n] } // n ≤ 3
	for _, kind := range []struct {
		name string
		mk   func(n int) []pool.Item
	}{{"new", pending}, {"new with contact fields", withContact}, {"in another state", inAnotherState}} {
		p := b.insertPool()
		first := b.insertItems(p.UUID, kind.mk(2))

		again := kind.mk(3)
		again[0].ContactUUID = first[1].ContactUUID
		again[0].Priority = 99
		again[2].ContactUUID = first[0].ContactUUID
		var added int
		b.write(func(tx store.Tx) (err error) {
			added, err = tx.InsertItems(b.ctx, p.UUID, again)
			return err
		})
		require.Equal(t, 1, added, kind.name)

		all := b.allItems(p.UUID, "")
		require.Len(t, all, 3, kind.name)
		require.Equal(t, first, all[:2], "%s: existing items are left as they were", kind.name)
		require.Equal(t, again[1].ContactUUID, all[2].ContactUUID, kind.name)
		require.Greater(t, all[2].ID, first[1].ID, kind.name)
		require.Equal(t, 3, b.getPool(p.UUID).ContactsCount, kind.name)
	}
}

func testInsertItemsIDsNeverReused(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	last := items[2].ID
	b.write(func(tx store.Tx) error { return deleteItem(b.ctx, tx, items[2]) })
	next := b.insertItems(p.UUID, pending(1))
	require.Greater(t, next[0].ID, last, "the newest item's ID is not reused after its deletion")

	b.write(func(tx store.Tx) error { return tx.DeletePool(b.ctx, p.UUID) })
	q := b.insertPool()
	more := b.insertItems(q.UUID, pending(1))
	require.Greater(t, more[0].ID, next[0].ID, "nor after its pool's deletion")
}

func testInsertItemsTwoPools(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := pending(2)
	inP := b.insertItems(p.UUID, items)
	inQ := b.insertItems(q.UUID, items)
	for i := range items {
		require.NotEqual(t, inP[i].ID, inQ[i].ID)
		require.Equal(t, p.UUID, inP[i].PoolUUID)
		require.Equal(t, q.UUID, inQ[i].PoolUUID)
	}
}

func testInsertItemsNotFound(t *testing.T, b *bundle) {
	b.insertPool()
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		_, err := tx.InsertItems(b.ctx, uuid.New(), pending(1))
		return err
	})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// testInsertItemsPayloadNotJSON hands InsertItems a batch whose 71st item
// (past a first chunk of 64) has a payload that is not JSON: the call fails,
// naming the item, and the pool stays empty.
func testInsertItemsPayloadNotJSON(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := pending(80)
	for i := range items {
		items[i].Payload = json.RawMessage(`{"phone":"+15550100"}`)
	}
	items[70].Payload = json.RawMessage(`{"phone":`)
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		_, err := tx.InsertItems(b.ctx, p.UUID, items)
		return err
	})
	require.ErrorContains(t, err, "item 70")
	require.ErrorContains(t, err, "JSON")
	require.Empty(t, b.allItems(p.UUID, ""))
	require.Zero(t, b.getPool(p.UUID).ContactsCount)
}

// testInsertItemsPayloadNotJSONIgnored: the same batch, whose caller goes
// on after the error and returns nil: no item of it is left, whether the
// store checked the batch before writing any (SQLite) or the transaction
// does not commit (PostgreSQL); none written before the bad one (a store
// may write a batch in several statements) that the counts would not
// count.
func testInsertItemsPayloadNotJSONIgnored(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := pending(80)
	items[70].Payload = json.RawMessage(`{"phone":`)
	insertFailsIgnored(t, b, p, items, "item 70")
}

// insertFailsIgnored inserts items into p in a write whose function
// ignores InsertItems' error, which must name want (and so must the
// Write's, if it fails), and checks that no item of the batch is left.
func insertFailsIgnored(t *testing.T, b *bundle, p pool.Pool, items []pool.Item, want string) {
	t.Helper()
	var insErr error
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		_, insErr = tx.InsertItems(b.ctx, p.UUID, items)
		return nil
	})
	require.ErrorContains(t, insErr, want)
	if err != nil {
		require.ErrorContains(t, err, want)
	}
	require.Empty(t, b.allItems(p.UUID, ""))
	require.Zero(t, b.getPool(p.UUID).ContactsCount)
}

// testInsertItemsLaterKindFailsIgnored: as PayloadNotJSONIgnored, for a
// batch whose second item, of another kind than the first (a note: not a
// new item), has a time the store cannot keep. A store that writes a
// batch in runs of one kind must not leave the first run's rows behind:
// SQLite did, written before the second run's arguments failed.
func testInsertItemsLaterKindFailsIgnored(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := pending(2)
	items[1].Notes = "imported"
	items[1].AddedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) // past int64 nanoseconds
	insertFailsIgnored(t, b, p, items, "item 1")
}

func testCopyItems(t *testing.T, b *bundle) {
	src := b.insertPool()
	dst := b.insertPool()
	srcItems := b.insertItems(src.UUID, fullItems())
	now := at(24*time.Hour + 5)

	var n int
	b.write(func(tx store.Tx) (err error) {
		n, err = tx.CopyItems(b.ctx, src.UUID, dst.UUID, now.In(time.FixedZone("x", -3600)))
		return err
	})
	require.Equal(t, len(srcItems), n)

	copies := b.allItems(dst.UUID, "")
	require.Len(t, copies, len(srcItems))
	for i, c := range copies {
		s := srcItems[i]
		if i > 0 {
			require.Greater(t, c.ID, copies[i-1].ID, "copies keep the source's order")
		}
		require.NotEqual(t, s.ID, c.ID)
		require.Equal(t, dst.UUID, c.PoolUUID)
		require.Equal(t, s.ContactUUID, c.ContactUUID)
		require.Equal(t, s.Priority, c.Priority)
		requireJSON(t, s.Payload, c.Payload)
		require.Equal(t, pool.StatusPending, c.Status)
		require.Zero(t, c.Attempts)
		require.Zero(t, c.RetryCount)
		require.Nil(t, c.StartedAt)
		require.Nil(t, c.CompletedAt)
		require.Nil(t, c.FailedAt)
		require.Nil(t, c.NextRetryAt)
		require.Empty(t, c.Notes)
		require.Equal(t, now, c.AddedAt)
		require.True(t, c.LeaseExpiresAt.IsZero())
	}
	require.Equal(t, srcItems, b.allItems(src.UUID, ""), "the source is unchanged")
	require.Equal(t, len(srcItems), b.getPool(dst.UUID).ContactsCount)
	var counts map[pool.Status]int
	b.read(func(tx store.Tx) (err error) {
		counts, err = tx.StatusCounts(b.ctx, dst.UUID)
		return err
	})
	require.Equal(t, len(srcItems), counts[pool.StatusPending])
}

func testCopyItemsEmpty(t *testing.T, b *bundle) {
	src, dst := b.insertPool(), b.insertPool()
	var n int
	b.write(func(tx store.Tx) (err error) {
		n, err = tx.CopyItems(b.ctx, src.UUID, dst.UUID, t0)
		return err
	})
	require.Zero(t, n)
	require.Empty(t, b.allItems(dst.UUID, ""))
}

func testItemNotFound(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	inQ := b.insertItems(q.UUID, pending(1))[0]
	for name, args := range map[string][2]uuid.UUID{
		"UnknownContact":    {p.UUID, uuid.New()},
		"ContactOfAnother":  {p.UUID, inQ.ContactUUID},
		"UnknownPool":       {uuid.New(), inQ.ContactUUID},
		"UnknownPoolAndAll": {uuid.New(), uuid.New()},
	} {
		err := b.st.Read(b.ctx, func(tx store.Tx) error {
			_, err := tx.Item(b.ctx, args[0], args[1])
			return err
		})
		require.ErrorIs(t, err, store.ErrNotFound, name)
	}
}

func testItemByID(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, fullItems())
	for _, it := range items {
		require.Equal(t, it, b.item(it.ID))
	}
}

func testItemByIDNotFound(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(2))
	for _, id := range []int64{0, -1, items[1].ID + 1000} {
		err := b.st.Read(b.ctx, func(tx store.Tx) error {
			_, err := tx.ItemByID(b.ctx, id)
			return err
		})
		require.ErrorIs(t, err, store.ErrNotFound, "id %d", id)
	}
}

func testUpdateItemRoundTrip(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, fullItems())
	neighbours := items[1:]
	it := items[0]

	// Set every mutable field.
	want := it
	want.Status = pool.StatusInCall
	want.Priority = -pow2to40
	want.Attempts = 3
	want.RetryCount = 2
	want.StartedAt = ptr(at(time.Hour + 1))
	want.CompletedAt = ptr(at(2*time.Hour + 2))
	want.FailedAt = ptr(at(3*time.Hour + 3))
	want.NextRetryAt = ptr(at(4*time.Hour + 4))
	want.Notes = "called — ok"
	want.Token = 1 << 33
	want.LeaseExpiresAt = at(5*time.Hour + 5)
	b.update(want)
	require.Equal(t, want, b.item(it.ID))

	// And clear them.
	want.Status = pool.StatusScheduled
	want.Priority = 0
	want.Attempts, want.RetryCount = 0, 0
	want.StartedAt, want.CompletedAt, want.FailedAt = nil, nil, nil
	want.NextRetryAt = ptr(at(6 * time.Hour).In(time.FixedZone("y", 5*3600+1800)))
	want.Notes = ""
	want.Token = 0
	want.LeaseExpiresAt = time.Time{}
	b.update(want)
	require.Equal(t, utc(want), b.item(it.ID))

	for _, n := range neighbours {
		require.Equal(t, n, b.item(n.ID), "other items are unchanged")
	}
}

func testUpdateItemNotFound(t *testing.T, b *bundle) {
	p := b.insertPool()
	it := b.insertItems(p.UUID, pending(1))[0]
	it.ID += 1000
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdateItem(b.ctx, it.Status, it) })
	require.ErrorIs(t, err, store.ErrNotFound)
}

// deleteItem deletes it with DeleteItems, in tx, and fails unless it was
// deleted.
func deleteItem(ctx context.Context, tx store.Tx, it pool.Item) error {
	n, err := tx.DeleteItems(ctx, it.PoolUUID, []int64{it.ID})
	if err == nil && n != 1 {
		err = fmt.Errorf("DeleteItems of item %d deleted %d", it.ID, n)
	}
	return err
}

// recount returns the number of items in each status, every status
// present.
func recount(items []pool.Item) map[pool.Status]int {
	m := pool.ZeroCounts()
	for _, it := range items {
		m[it.Status]++
	}
	return m
}

// testItemsOfContacts reads a pool's items of contacts: every field, a
// contact named twice found once, those not in the pool (in another pool,
// or nowhere) left out; in a read transaction, in a write transaction as
// its first call and after the pool was read. No contact finds none; an
// unknown pool is ErrNotFound.
func testItemsOfContacts(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, fullItems())
	elsewhere := uuid.New()
	b.insertItems(q.UUID, []pool.Item{{ContactUUID: items[0].ContactUUID, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: elsewhere, Status: pool.StatusPending, AddedAt: t0}})
	named := []uuid.UUID{items[2].ContactUUID, elsewhere, items[0].ContactUUID, uuid.New(), items[2].ContactUUID}
	want := []pool.Item{items[0], items[2]}
	// seen is what check's calls answered: a write transaction's function
	// may run again, so it only gathers them, and requireSeen checks them
	// once the transaction is over.
	type seen struct {
		got, none           []pool.Item
		noneErr, unknownErr error
	}
	check := func(s *seen, tx store.Tx, first bool) error {
		if !first {
			if _, err := tx.Pool(b.ctx, p.UUID); err != nil {
				return err
			}
		}
		got, err := tx.ItemsOfContacts(b.ctx, p.UUID, named...)
		if err != nil {
			return err
		}
		slices.SortFunc(got, func(x, y pool.Item) int { return cmp.Compare(x.ID, y.ID) })
		s.got = got
		s.none, s.noneErr = tx.ItemsOfContacts(b.ctx, p.UUID)
		_, s.unknownErr = tx.ItemsOfContacts(b.ctx, uuid.New(), named...)
		return nil
	}
	requireSeen := func(name string, s seen) {
		t.Helper()
		require.Equal(t, want, s.got, name+": the pool's items of the contacts, every field")
		require.NoError(t, s.noneErr, name)
		require.Empty(t, s.none, name+": no contact")
		require.ErrorIs(t, s.unknownErr, store.ErrNotFound, name+": unknown pool")
	}
	var read, first, poolFirst seen
	b.read(func(tx store.Tx) error { return check(&read, tx, false) })
	requireSeen("read", read)
	b.write(func(tx store.Tx) error { first = seen{}; return check(&first, tx, true) })
	requireSeen("write, first call", first)
	b.write(func(tx store.Tx) error { poolFirst = seen{}; return check(&poolFirst, tx, false) })
	requireSeen("write, pool read first", poolFirst)
}

// testDeleteItems deletes some of a pool's items, in any status (in flight
// too: whether they may go is the caller's decision), naming with them an
// item of another pool and an ID that is no item's: only the pool's named
// items go, with their search words, the counts follow (in the write
// transaction too), and every other item is untouched.
func testDeleteItems(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, fullItems())
	others := b.insertItems(q.UUID, contacts(zoe, ada))
	require.Equal(t, pool.StatusProcessing, items[2].Status)
	gone := []pool.Item{items[0], items[2], items[3]} // Zoë's, in flight, Retrying with a phone number
	stay := []pool.Item{items[1]}
	stay = append(stay, items[4:]...)
	named := []int64{items[3].ID, others[0].ID, items[0].ID, items[len(items)-1].ID + 100_000, items[2].ID, items[0].ID}

	var n, inFlight int
	var got pool.Pool
	b.write(func(tx store.Tx) (err error) {
		if n, err = tx.DeleteItems(b.ctx, p.UUID, named); err != nil {
			return err
		}
		if got, err = tx.Pool(b.ctx, p.UUID); err != nil {
			return err
		}
		inFlight, err = tx.InFlight(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, len(stay), got.ContactsCount, "contacts_count in the transaction")
	require.Zero(t, inFlight, "in flight in the transaction")
	require.Equal(t, len(gone), n, "DeleteItems count")

	require.Equal(t, stay, b.allItems(p.UUID, ""), "the items not named are untouched")
	require.Equal(t, others, b.allItems(q.UUID, ""), "another pool's item named is untouched")
	require.Equal(t, len(stay), b.getPool(p.UUID).ContactsCount)
	b.read(func(tx store.Tx) error {
		for _, it := range gone {
			_, err := tx.ItemByID(b.ctx, it.ID)
			require.ErrorIs(t, err, store.ErrNotFound)
			_, err = tx.Item(b.ctx, p.UUID, it.ContactUUID)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
		for i, want := range [][]pool.Item{stay, others} {
			c, err := tx.StatusCounts(b.ctx, []uuid.UUID{p.UUID, q.UUID}[i])
			require.NoError(t, err)
			require.Equal(t, recount(want), c, "status counts of pool %d", i)
		}
		inFlight, err := tx.InFlight(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Zero(t, inFlight)
		return nil
	})
	require.Empty(t, b.search(p.UUID, "zoe", ""), "the deleted items' words are gone")
	require.Empty(t, b.search(p.UUID, "15551234567", ""))
	require.Equal(t, []pool.Contact{zoe}, contactsOf(b.search(q.UUID, "zoe", "")), "another pool's are not")

	// The contacts may be added again, as new items.
	again := b.insertItems(p.UUID, []pool.Item{{ContactUUID: items[0].ContactUUID, Status: pool.StatusPending, AddedAt: t0}})[0]
	require.Greater(t, again.ID, others[1].ID)
}

// testDeleteItemsNothing: no IDs, or only IDs not in the pool, delete
// nothing; an unknown pool is ErrNotFound, with IDs or without.
func testDeleteItemsNothing(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	b.insertItems(p.UUID, pending(2))
	others := b.insertItems(q.UUID, pending(2))
	before := b.snapshot(p, q)
	for name, list := range map[string][]int64{"nil": nil, "another pool's": ids(others), "no item's": {others[1].ID + 100_000}} {
		var n int
		b.write(func(tx store.Tx) (err error) {
			n, err = tx.DeleteItems(b.ctx, p.UUID, list)
			return err
		})
		require.Zero(t, n, name)
	}
	for name, list := range map[string][]int64{"some": ids(others), "nil": nil, "empty": {}} {
		err := b.st.Write(b.ctx, func(tx store.Tx) error {
			_, err := tx.DeleteItems(b.ctx, uuid.New(), list)
			return err
		})
		require.ErrorIs(t, err, store.ErrNotFound, "an unknown pool, %s IDs", name)
	}
	require.Equal(t, before, b.snapshot(p, q), "nothing changed")
}

// testDeleteItemsMany deletes every other item of a pool of 2,500 in one
// call.
func testDeleteItemsMany(t *testing.T, b *bundle) {
	p := b.insertPool()
	var items []pool.Item
	b.write(func(tx store.Tx) error {
		_, err := tx.InsertItems(b.ctx, p.UUID, pending(2500))
		return err
	})
	items = b.allItems(p.UUID, "")
	var gone, stay []pool.Item
	for i, it := range items {
		if i%2 == 0 {
			gone = append(gone, it)
		} else {
			stay = append(stay, it)
		}
	}
	var n int
	b.write(func(tx store.Tx) (err error) {
		n, err = tx.DeleteItems(b.ctx, p.UUID, ids(gone))
		return err
	})
	require.Equal(t, len(gone), n)
	require.Equal(t, stay, b.allItems(p.UUID, ""))
	require.Equal(t, len(stay), b.getPool(p.UUID).ContactsCount)
}

func testItemsPaging(t *testing.T, b *bundle) {
	p, other := b.insertPool(), b.insertPool()
	want := b.insertItems(p.UUID, pending(57))
	b.insertItems(other.UUID, pending(5))

	var got []pool.Item
	for page, size := range []int{25, 25, 7, 0} {
		b.read(func(tx store.Tx) error {
			items, total, err := tx.Items(b.ctx, p.UUID, pool.ItemQuery{Page: page + 1, PerPage: 25})
			require.Len(t, items, size, "page %d", page+1)
			require.Equal(t, 57, total)
			got = append(got, items...)
			return err
		})
	}
	require.Equal(t, want, got)
}

// testItemsAfter: ItemQuery.After seeks past an item ID: pages follow
// from there (the offset counting from the seek), in insertion order,
// whatever the IDs of other pools' items in between, by status too, and
// the total still counts every matching item.
func testItemsAfter(t *testing.T, b *bundle) {
	p, other := b.insertPool(), b.insertPool()
	var want []pool.Item
	for _, n := range []int{20, 20, 17} {
		want = append(want, b.insertItems(p.UUID, pending(n))...)
		b.insertItems(other.UUID, pending(5))
	}
	list := func(q pool.ItemQuery) (items []pool.Item, total int) {
		t.Helper()
		b.read(func(tx store.Tx) (err error) {
			items, total, err = tx.Items(b.ctx, p.UUID, q)
			return err
		})
		return items, total
	}

	var got []pool.Item
	var after int64
	for _, size := range []int{25, 25, 7, 0} {
		items, total := list(pool.ItemQuery{After: after, Page: 1, PerPage: 25})
		require.Len(t, items, size, "after %d", after)
		require.Equal(t, 57, total, "after %d", after)
		got = append(got, items...)
		if len(items) > 0 {
			after = items[len(items)-1].ID
		}
	}
	require.Equal(t, want, got)

	items, total := list(pool.ItemQuery{After: want[9].ID, Page: 2, PerPage: 5})
	require.Equal(t, want[15:20], items, "the offset counts from the seek")
	require.Equal(t, 57, total)
	items, _ = list(pool.ItemQuery{After: want[19].ID + 1, Page: 1, PerPage: 3})
	require.Equal(t, want[20:23], items, "an ID of another pool's item")

	for i := range want {
		if i%3 == 0 {
			want[i].Status = pool.StatusCompleted
			b.update(want[i])
		}
	}
	var done []pool.Item
	for _, it := range want {
		if it.Status == pool.StatusCompleted {
			done = append(done, it)
		}
	}
	got, after = nil, 0
	for pages := 0; ; pages++ {
		require.LessOrEqual(t, pages, len(done), "the walk does not end (after %d)", after)
		items, total := list(pool.ItemQuery{Status: pool.StatusCompleted, After: after, Page: 1, PerPage: 4})
		require.Equal(t, len(done), total, "after %d", after)
		if len(items) == 0 {
			break
		}
		got = append(got, items...)
		after = items[len(items)-1].ID
	}
	require.Equal(t, done, got)
}

func testItemsStatusFilter(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(12))
	statuses := pool.Statuses()
	want := make(map[pool.Status][]pool.Item)
	for i := range items {
		items[i].Status = statuses[i%len(statuses)]
		if i%3 == 0 {
			items[i].Status = pool.StatusFailed
		}
		b.update(items[i])
		want[items[i].Status] = append(want[items[i].Status], items[i])
	}
	for _, s := range statuses {
		got := b.allItems(p.UUID, s)
		if len(want[s]) == 0 {
			require.Empty(t, got, "status %s", s)
			continue
		}
		require.Equal(t, want[s], got, "status %s", s)
		b.read(func(tx store.Tx) error {
			page, total, err := tx.Items(b.ctx, p.UUID, pool.ItemQuery{Status: s, Page: 1, PerPage: 1})
			if err == nil {
				require.Equal(t, len(want[s]), total)
				require.Equal(t, want[s][:1], page)
			}
			return err
		})
	}
}

// testUpdateItemsMany updates batches of sizes around the store's statement
// sizes (1, 2, 8, 9, 64, 65, 150): every item gets its own values, and the
// items left out keep theirs.
func testUpdateItemsMany(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(160))
	for _, n := range []int{1, 2, 8, 9, 64, 65, 150} {
		batch := slices.Clone(items[:n])
		for i := range batch {
			batch[i].Status = pool.StatusProcessing
			batch[i].Attempts = n
			batch[i].Token = int64(1000*n + i)
			batch[i].LeaseExpiresAt = at(time.Duration(n) * time.Minute)
			batch[i].Notes = fmt.Sprintf("batch %d item %d", n, i)
		}
		cs := make([]store.Change, n)
		for i, it := range batch {
			cs[i] = store.Change{From: b.item(it.ID).Status, Item: it}
		}
		b.write(func(tx store.Tx) error { return tx.UpdateItems(b.ctx, cs...) })
		for i, it := range batch {
			require.Equal(t, it, b.item(it.ID), "batch of %d, item %d", n, i)
		}
		for _, it := range items[n:] {
			require.Equal(t, pool.StatusPending, b.item(it.ID).Status, "batch of %d left item %d alone", n, it.ID)
		}
	}
	var counts map[pool.Status]int
	b.read(func(tx store.Tx) error {
		var err error
		counts, err = tx.StatusCounts(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, 150, counts[pool.StatusProcessing], "the status counts follow")
	require.Equal(t, 10, counts[pool.StatusPending])
}

// testUpdateItemsNotFound checks that a batch naming a missing item fails
// with ErrNotFound and, the transaction rolled back, changes nothing.
func testUpdateItemsNotFound(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(10))
	batch := slices.Clone(items)
	for i := range batch {
		batch[i].Notes = "changed"
	}
	batch[7].ID += 1000
	cs := make([]store.Change, len(batch))
	for i, it := range batch {
		cs[i] = store.Change{From: pool.StatusPending, Item: it}
	}
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdateItems(b.ctx, cs...) })
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, it := range items {
		require.Equal(t, it, b.item(it.ID))
	}
}

// notFoundBatch returns changes of items, Pending, to In_Call, the
// second from a status it is not in: UpdateItems finds it not.
func notFoundBatch(items []pool.Item) []store.Change {
	cs := make([]store.Change, len(items))
	for i, it := range items {
		it.Status, it.Notes = pool.StatusInCall, "changed"
		cs[i] = store.Change{From: pool.StatusPending, Item: it}
	}
	cs[1].From = pool.StatusRetrying
	return cs
}

// requireAllPending checks that pool id's counts hold n items, all
// Pending, none in flight.
func (b *bundle) requireAllPending(id uuid.UUID, n int) {
	b.t.Helper()
	b.read(func(tx store.Tx) error {
		counts, err := tx.StatusCounts(b.ctx, id)
		require.NoError(b.t, err)
		require.Equal(b.t, n, counts[pool.StatusPending])
		inFlight, err := tx.InFlight(b.ctx, id)
		require.NoError(b.t, err)
		require.Zero(b.t, inFlight)
		return nil
	})
}

// testUpdateItemsNotFoundIgnored: a transaction whose function goes on
// after UpdateItems failed with ErrNotFound (logs it, say, and returns
// nil) does not commit, as UpdateItems says: the items the batch did find
// are not left changed with counts that do not follow them (an item in
// flight that InFlight does not count lets a FIFO pool give a second).
func testUpdateItemsNotFoundIgnored(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	var updErr error
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		updErr = tx.UpdateItems(b.ctx, notFoundBatch(items)...)
		return nil
	})
	if updErr != nil { // a store may report it later, by the commit (see UpdateItems)
		require.ErrorIs(t, updErr, store.ErrNotFound)
	}
	require.ErrorIs(t, err, store.ErrNotFound, "the transaction committed")
	for _, it := range items {
		require.Equal(t, it, b.item(it.ID))
	}
	b.requireAllPending(p.UUID, 3)
}

// testUpdateItemsNotFoundInSavepoint: the same in a savepoint whose
// function returns nil: the Savepoint fails with ErrNotFound and undoes
// the batch, and the transaction's other writes commit.
func testUpdateItemsNotFoundInSavepoint(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(4))
	other := items[3]
	other.Notes = "written after the savepoint"
	var spErr error
	b.write(func(tx store.Tx) error {
		spErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			_ = tx.UpdateItems(b.ctx, notFoundBatch(items[:3])...)
			return nil
		})
		return tx.UpdateItem(b.ctx, pool.StatusPending, other)
	})
	require.ErrorIs(t, spErr, store.ErrNotFound, "the savepoint ended as if its function had failed")
	for _, it := range items[:3] {
		require.Equal(t, it, b.item(it.ID))
	}
	require.Equal(t, other, b.item(other.ID))
	b.requireAllPending(p.UUID, 4)
}

// testUpdateItemsWrongPool checks that a batch naming an item by its ID
// in another pool than its own fails with ErrNotFound and changes
// nothing: the pool is part of the item's address.
func testUpdateItemsWrongPool(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	others := b.insertItems(q.UUID, pending(1))
	batch := slices.Clone(items)
	for i := range batch {
		batch[i].Notes = "changed"
	}
	batch[1].PoolUUID = q.UUID
	cs := make([]store.Change, len(batch))
	for i, it := range batch {
		cs[i] = store.Change{From: pool.StatusPending, Item: it}
	}
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdateItems(b.ctx, cs...) })
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, it := range append(items, others...) {
		require.Equal(t, it, b.item(it.ID))
	}
}

func testItemsByID(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, fullItems())
	var got []pool.Item
	ids := []int64{items[2].ID, items[0].ID, items[0].ID + 100_000, items[1].ID}
	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		var err error
		got, err = tx.ItemsByID(b.ctx, ids)
		return err
	})
	require.NoError(t, err)
	slices.SortFunc(got, func(x, y pool.Item) int { return cmp.Compare(x.ID, y.ID) })
	require.Equal(t, []pool.Item{items[0], items[1], items[2]}, got, "every field, the missing ID left out")
	err = b.st.Read(b.ctx, func(tx store.Tx) error {
		got, err = tx.ItemsByID(b.ctx, nil)
		return err
	})
	require.NoError(t, err)
	require.Empty(t, got)
}

// testPoolItems checks PoolItems against Pool and ItemsByID: in a read
// transaction, in a write transaction as its first call (PostgreSQL reads
// the items with the lock) and after the pool was read; only the items in
// the pool, the missing ID left out; an unknown pool is ErrNotFound.
func testPoolItems(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, fullItems())
	other := b.insertItems(q.UUID, pending(1))[0]
	ids := []int64{items[2].ID, other.ID, items[0].ID + 100_000, items[0].ID}
	want, wantPool := []pool.Item{items[0], items[2]}, b.getPool(p.UUID)
	check := func(name string, got pool.Pool, found []pool.Item) {
		t.Helper()
		require.Equal(t, wantPool, got, name+": the pool")
		slices.SortFunc(found, func(x, y pool.Item) int { return cmp.Compare(x.ID, y.ID) })
		require.Equal(t, want, found, name+": the pool's items, every field")
	}
	b.read(func(tx store.Tx) error {
		got, found, err := tx.PoolItems(b.ctx, p.UUID, ids)
		require.NoError(t, err)
		check("read", got, found)
		return nil
	})
	// A write transaction's function may run again: it only gathers what
	// PoolItems answered, and the checks come once it returns.
	var got1, got2 pool.Pool
	var found1, found2 []pool.Item
	b.write(func(tx store.Tx) (err error) {
		if got1, found1, err = tx.PoolItems(b.ctx, p.UUID, ids); err != nil {
			return err
		}
		got2, found2, err = tx.PoolItems(b.ctx, p.UUID, ids)
		return err
	})
	check("write, first call", got1, found1)
	check("write, again", got2, found2)
	var one, none []pool.Item
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.Pool(b.ctx, p.UUID); err != nil {
			return err
		}
		if got1, found1, err = tx.PoolItems(b.ctx, p.UUID, ids); err != nil {
			return err
		}
		if _, one, err = tx.PoolItems(b.ctx, p.UUID, []int64{items[1].ID}); err != nil {
			return err
		}
		_, none, err = tx.PoolItems(b.ctx, p.UUID, nil)
		return err
	})
	check("write, after Pool", got1, found1)
	require.Equal(t, []pool.Item{items[1]}, one, "one item")
	require.Empty(t, none, "no IDs")
	for _, write := range []bool{false, true} {
		run := b.st.Read
		if write {
			run = b.st.Write
		}
		err := run(b.ctx, func(tx store.Tx) error {
			_, _, err := tx.PoolItems(b.ctx, uuid.New(), ids)
			return err
		})
		require.ErrorIs(t, err, store.ErrNotFound, "an unknown pool (write %v)", write)
	}
}

// testPoolItemsBehindLock checks that a write transaction's PoolItems
// reads the items as the last writer of the pool left them: a store that
// locks the pool must read them after the lock, not before.
func testPoolItemsBehindLock(t *testing.T, b *bundle) {
	p := b.insertPool()
	it := b.insertItems(p.UUID, pending(1))[0]
	done := b.skipHolding(it)
	var found []pool.Item
	b.write(func(tx store.Tx) error {
		var err error
		_, found, err = tx.PoolItems(b.ctx, p.UUID, []int64{it.ID})
		return err
	})
	require.NoError(t, <-done)
	require.Len(t, found, 1)
	require.Equal(t, pool.StatusSkipped, found[0].Status, "the item as the transaction before left it")
}

// skipHolding starts a write transaction that skips the Pending item it
// and then keeps its pool for 100 ms, during which the caller's own write
// transaction waits for the pool (a store that locks pools) or for the
// writer (SQLite). It returns once the skip is written; done gives the
// transaction's result. A skip that fails before it is written fails the
// test at once, rather than leaving the caller waiting for it.
func (b *bundle) skipHolding(it pool.Item) (done <-chan error) {
	b.t.Helper()
	holding, result := make(chan struct{}), make(chan error, 1)
	var once sync.Once // a store may run the function again
	go func() {
		result <- b.st.Write(b.ctx, func(tx store.Tx) error {
			c := it
			c.Status, c.Notes = pool.StatusSkipped, "written while the other waited"
			if err := tx.UpdateItem(b.ctx, pool.StatusPending, c); err != nil {
				return err
			}
			once.Do(func() { close(holding) })
			time.Sleep(100 * time.Millisecond) // the other is waiting for the pool
			return nil
		})
	}()
	select {
	case <-holding:
		return result
	case err := <-result:
		select {
		case <-holding: // written, and already over
			result <- err
			return result
		default:
		}
		require.NoError(b.t, err, "the transaction that holds the pool")
		require.FailNow(b.t, "the transaction that holds the pool returned without writing its skip")
		return nil
	}
}

// testUpdateItemStale checks that a write naming a status the item is no
// longer in, or another pool, is refused with ErrNotFound and writes
// nothing, counts included: a caller acting on a stale read cannot undo
// another's change or skew the counts.
func testUpdateItemStale(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	b.set(items, 0, status(pool.StatusCompleted))
	before := b.snapshot(p, q)

	done := items[0]
	done.Status, done.Notes = pool.StatusFailed, "stale"
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdateItem(b.ctx, pool.StatusPending, done) })
	require.ErrorIs(t, err, store.ErrNotFound, "the item is Completed, not Pending")

	moved := items[1]
	moved.PoolUUID, moved.Status = q.UUID, pool.StatusSkipped
	err = b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdateItem(b.ctx, pool.StatusPending, moved) })
	require.ErrorIs(t, err, store.ErrNotFound, "the item is in another pool")

	batch := []store.Change{
		{From: pool.StatusPending, Item: withStatus(items[2], pool.StatusSkipped)},
		{From: pool.StatusPending, Item: withStatus(items[0], pool.StatusSkipped)}, // Completed
	}
	err = b.st.Write(b.ctx, func(tx store.Tx) error { return tx.UpdateItems(b.ctx, batch...) })
	require.ErrorIs(t, err, store.ErrNotFound, "one stale item fails the batch")

	require.Equal(t, before, b.snapshot(p, q), "nothing changed")
}

func withStatus(it pool.Item, s pool.Status) pool.Item {
	it.Status = s
	return it
}
