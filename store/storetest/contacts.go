package storetest

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// The contact lists of calling rules: the items of a contact across pools,
// the do-not-call list, opt-outs, escalations, and the calling day an item
// carries.

func contactTests() []test {
	return []test{
		{"ContactItems/OK", testContactItems},
		{"ContactItems/SeesItsOwnWrites", testContactItemsOwnWrites},
		{"CampaignItems/OK", testCampaignItems},
		{"CampaignItems/SeesItsOwnWrites", testCampaignItemsOwnWrites},
		{"CampaignCalls/OK", testCampaignCalls},
		{"KeepCalls/OK", testKeepCalls},
		{"KeepCalls/RollbackOnError", testKeepCallsRollback},
		{"KeepCalls/NotForFinishedCampaigns", testKeepCallsFinished},
		{"KeepCalls/DetachNotForFinishedCampaigns", testKeepCallsDetachFinished},
		{"KeepCalls/GoWhenCampaignFinishes", testKeepCallsGoWhenFinished},
		{"KeepCalls/DetachAttach", testKeepCallsDetach},
		{"KeepCalls/ReleaseKeptCall", testReleaseKeptCall},
		{"KeepCalls/ReleaseKeptCallWithoutAttempts", testReleaseKeptCallNoAttempts},
		{"KeepCalls/ReleaseKeptCallWithoutDayCall", testReleaseKeptCallNoDayCall},
		{"KeepCalls/CallGoesOn", testKeptCallGoesOn},
		{"KeepCalls/KeepingCampaigns", testKeepingCampaigns},
		{"DNC/AddRemove", testDNCAddRemove},
		{"DNC/OnDNC", testOnDNC},
		{"DNC/Listed", testListed},
		{"DNC/Paging", testDNCPaging},
		{"DNC/TiesInContactOrder", testDNCTies},
		{"DNC/Concurrent", testDNCConcurrent},
		{"OptOut/OK", testOptOut},
		{"InsertEscalation/OK", testInsertEscalation},
		{"InsertEscalation/Concurrent", testInsertEscalationConcurrent},
		{"Escalations/Query", testEscalationsQuery},
		{"Escalations/OutliveTheirPool", testEscalationsOutlivePool},
		{"CallDay/RoundTrip", testCallDayRoundTrip},
		{"CallDay/PrevRoundTrip", testPrevCallDayRoundTrip},
		{"CallDay/PrevKept", testPrevCallDayKept},
		{"CallDay/OlderRoundTrip", testOlderCallDayRoundTrip},
		{"CallDay/OlderKept", testOlderCallDayKept},
		{"Contacts/ErrReadOnly", testContactsReadOnly},
		{"Contacts/RollbackOnError", testContactsRollback},
		{"Contacts/Savepoint", testContactsSavepoint},
	}
}

// tokyo is a zone other than UTC, for times a store must return in UTC.
var tokyo = time.FixedZone("Tokyo", 9*3600)

// contactItems returns the items of a contact, read in a read transaction
// or, with write, in a write transaction.
func (b *bundle) contactItems(contact uuid.UUID, write bool) []pool.Item {
	b.t.Helper()
	var out []pool.Item
	fn := func(tx store.Tx) (err error) {
		out, err = tx.ContactItems(b.ctx, contact)
		return err
	}
	b.inTx(write, fn)
	return out
}

// poolsOf returns the pools of items, in their order.
func poolsOf(items []pool.Item) []uuid.UUID {
	out := make([]uuid.UUID, len(items))
	for i, it := range items {
		out[i] = it.PoolUUID
	}
	return out
}

// testContactItems checks that ContactItems returns a contact's items in
// every pool, as ItemByID does (PoolUUID set), and only its own, in pool
// order: the same order of pools for every contact, whatever the order in
// which the items were added.
func testContactItems(t *testing.T, b *bundle) {
	p1, p2, p3, other := b.insertPool(), b.insertPool(), b.insertPool(), b.insertPool()
	c, d, lone := uuid.New(), uuid.New(), uuid.New()
	with := func(contacts ...uuid.UUID) []pool.Item {
		items := pending(len(contacts) + 2) // and two other contacts
		for i, x := range contacts {
			items[i+1].ContactUUID = x
		}
		return items
	}
	// c is added to p3, p1, p2 in that order, d to p2, p3, p1: by ID alone
	// their items would come in two different orders of pools.
	b.insertItems(p3.UUID, with(c))
	b.insertItems(p2.UUID, with(d))
	b.insertItems(p1.UUID, with(c))
	b.insertItems(p3.UUID, with(d))
	b.insertItems(p2.UUID, with(c))
	b.insertItems(p1.UUID, with(d))
	b.insertItems(other.UUID, with(lone))
	b.insertItems(other.UUID, pending(3))

	// Every item of c, each as ItemByID returns it.
	byPool := func(contact uuid.UUID) map[uuid.UUID]pool.Item {
		out := map[uuid.UUID]pool.Item{}
		b.read(func(tx store.Tx) error {
			for _, p := range []pool.Pool{p1, p2, p3} {
				it, err := tx.Item(b.ctx, p.UUID, contact)
				if err != nil {
					return err
				}
				it, err = tx.ItemByID(b.ctx, it.ID)
				out[p.UUID] = it
				if err != nil {
					return err
				}
			}
			return nil
		})
		return out
	}
	for _, write := range []bool{false, true} {
		gotC, gotD := b.contactItems(c, write), b.contactItems(d, write)
		require.Len(t, gotC, 3, "write %v", write)
		require.Len(t, gotD, 3, "write %v", write)
		require.ElementsMatch(t, []uuid.UUID{p1.UUID, p2.UUID, p3.UUID}, poolsOf(gotC), "one item in each pool")
		require.Equal(t, poolsOf(gotC), poolsOf(gotD), "in pool order, the same for every contact")
		for contact, got := range map[uuid.UUID][]pool.Item{c: gotC, d: gotD} {
			want := byPool(contact)
			for _, it := range got {
				require.Equal(t, contact, it.ContactUUID, "only the contact's items")
				require.Equal(t, want[it.PoolUUID], it, "as ItemByID returns it")
			}
		}

		require.Equal(t, []uuid.UUID{other.UUID}, poolsOf(b.contactItems(lone, write)))
		require.Empty(t, b.contactItems(uuid.New(), write), "an unknown contact has none")
	}

	// A deleted item, and a deleted pool's, are gone.
	gone := b.contactItems(c, false)
	b.write(func(tx store.Tx) error { return deleteItem(b.ctx, tx, gone[0]) })
	b.write(func(tx store.Tx) error { return tx.DeletePool(b.ctx, gone[1].PoolUUID) })
	require.Equal(t, gone[2:], b.contactItems(c, false))
	require.Equal(t, gone[2:], b.contactItems(c, true))
	require.Len(t, b.contactItems(d, false), 2)
}

// campaignItems returns CampaignItems(id, except, contacts...), read in a
// read transaction or, with write, in a write transaction.
func (b *bundle) campaignItems(write bool, id, except uuid.UUID, contacts ...uuid.UUID) []pool.Item {
	b.t.Helper()
	var out []pool.Item
	fn := func(tx store.Tx) (err error) {
		out, err = tx.CampaignItems(b.ctx, id, except, contacts...)
		return err
	}
	b.inTx(write, fn)
	return out
}

// attachAll attaches pools to campaign id in one write transaction.
func (b *bundle) attachAll(id uuid.UUID, pools ...pool.Pool) {
	b.t.Helper()
	b.write(func(tx store.Tx) error {
		for _, p := range pools {
			if _, err := tx.AttachPool(b.ctx, id, p.UUID); err != nil {
				return err
			}
		}
		return nil
	})
}

// testCampaignItems checks that CampaignItems returns the items of the
// contacts asked for in the campaign's pools but one, as ItemByID does
// (PoolUUID set), and none of a pool of another campaign or of none.
func testCampaignItems(t *testing.T, b *bundle) {
	c, d, e := uuid.New(), uuid.New(), uuid.New()
	p1, p2, p3, other, none := b.insertPool(), b.insertPool(), b.insertPool(), b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2, p3)
	b.attachAll(b.insertCampaign(newCampaign(nil)).UUID, other)
	add := func(p pool.Pool, contacts ...uuid.UUID) map[uuid.UUID]pool.Item {
		items := make([]pool.Item, len(contacts))
		for i, c := range contacts {
			items[i] = pool.Item{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}
		}
		out := map[uuid.UUID]pool.Item{}
		for _, it := range b.insertItems(p.UUID, items) {
			out[it.ContactUUID] = b.item(it.ID)
		}
		return out
	}
	in1, in2, in3 := add(p1, c, e), add(p2, c, d), add(p3, uuid.New(), c)
	add(other, c, d, e)
	add(none, c, d, e)

	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []pool.Item{in2[c], in3[c], in2[d]}, b.campaignItems(write, k.UUID, p1.UUID, c, d, e))
		require.ElementsMatch(t, []pool.Item{in2[c], in3[c]}, b.campaignItems(write, k.UUID, p1.UUID, c), "one contact")
		require.ElementsMatch(t, []pool.Item{in1[c], in3[c]}, b.campaignItems(write, k.UUID, p2.UUID, c))
		require.ElementsMatch(t, []pool.Item{in1[c], in2[c], in3[c], in1[e]}, b.campaignItems(write, k.UUID, none.UUID, c, e),
			"except a pool not in the campaign: all of its pools")
		require.Empty(t, b.campaignItems(write, k.UUID, p2.UUID, d), "d is in p2 only")
		require.Empty(t, b.campaignItems(write, k.UUID, p1.UUID), "no contacts")
		require.Empty(t, b.campaignItems(write, k.UUID, p1.UUID, uuid.New()), "an unknown contact")
		require.Empty(t, b.campaignItems(write, uuid.New(), p1.UUID, c, d, e), "an unknown campaign")
	}
}

// testCampaignItemsOwnWrites checks that CampaignItems in a write
// transaction sees what it wrote before: an item changed, a pool attached,
// one detached.
func testCampaignItemsOwnWrites(t *testing.T, b *bundle) {
	c := uuid.New()
	p1, p2, p3, later := b.insertPool(), b.insertPool(), b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2, p3)
	var items []pool.Item
	for _, p := range []pool.Pool{p1, p2, p3, later} {
		items = append(items, b.insertItems(p.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}})[0])
	}
	var got []pool.Item
	changed := b.item(items[1].ID)
	b.write(func(tx store.Tx) error {
		changed.Status, changed.Attempts, changed.Token = pool.StatusProcessing, 1, 1
		changed.LeaseExpiresAt = at(time.Hour)
		if err := tx.UpdateItem(b.ctx, pool.StatusPending, changed); err != nil {
			return err
		}
		if _, err := tx.AttachPool(b.ctx, k.UUID, later.UUID); err != nil {
			return err
		}
		if _, err := tx.DetachPool(b.ctx, k.UUID, p3.UUID); err != nil {
			return err
		}
		var err error
		got, err = tx.CampaignItems(b.ctx, k.UUID, p1.UUID, c)
		return err
	})
	require.ElementsMatch(t, []uuid.UUID{p2.UUID, later.UUID}, poolsOf(got))
	require.ElementsMatch(t, got, b.campaignItems(false, k.UUID, p1.UUID, c), "as committed")
	for _, it := range got {
		require.Equal(t, b.item(it.ID), it)
		if it.PoolUUID == p2.UUID {
			require.Equal(t, pool.StatusProcessing, it.Status)
			require.Equal(t, 1, it.Attempts)
		}
	}
}

// kept is the item of no pool that CampaignItems returns for a kept call
// of it.
func kept(it pool.Item) pool.Item {
	return pool.Item{ContactUUID: it.ContactUUID, Status: pool.StatusCompleted, Attempts: it.Attempts,
		CallAt: it.CallAt, CallsToday: it.CallsToday, PrevCallAt: it.PrevCallAt, PrevCallsToday: it.PrevCallsToday,
		OlderCallAt: it.OlderCallAt, OlderCallsToday: it.OlderCallsToday,
		AddedAt: time.Unix(0, 0).UTC()}
}

// keptInCall is the item of no pool that CampaignItems returns for the
// call kept of it while it is still in that call (same token, in flight):
// its status and lease end tell that the call goes on.
func keptInCall(it pool.Item) pool.Item {
	k := kept(it)
	k.Status, k.LeaseExpiresAt = it.Status, it.LeaseExpiresAt
	return k
}

// keepCalls runs KeepCalls(poolID, contacts...) then deletes the items of
// contacts of pool poolID (all of them when none), in one transaction, as
// the engine removes items.
func (b *bundle) keepCalls(poolID uuid.UUID, contacts ...uuid.UUID) {
	b.t.Helper()
	b.write(func(tx store.Tx) error {
		if err := tx.KeepCalls(b.ctx, poolID, contacts...); err != nil {
			return err
		}
		if len(contacts) == 0 {
			return tx.DeletePool(b.ctx, poolID)
		}
		items, err := tx.ItemsOfContacts(b.ctx, poolID, contacts...)
		if err != nil {
			return err
		}
		_, err = tx.DeleteItems(b.ctx, poolID, ids(items))
		return err
	})
}

// testKeepCalls checks that KeepCalls keeps the attempts and the day's
// count of the items asked for (every item of the pool when none is) that
// have either, for each campaign of the pool, and that CampaignItems
// returns them from then on, whatever pool is left out, as Completed
// items of no pool; a pool of no campaign keeps nothing, and deleting the
// campaign deletes them.
func testKeepCalls(t *testing.T, b *bundle) {
	c, d, e, f, g := uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()
	p1, p2, none := b.insertPool(), b.insertPool(), b.insertPool()
	k1, k2 := b.insertCampaign(newCampaign(nil)), b.insertCampaign(newCampaign(nil))
	b.attachAll(k1.UUID, p1, p2)
	b.attachAll(k2.UUID, p1)
	mk := func(p pool.Pool, contacts ...uuid.UUID) []pool.Item {
		items := make([]pool.Item, len(contacts))
		for i, x := range contacts {
			items[i] = pool.Item{ContactUUID: x, Status: pool.StatusPending, AddedAt: t0}
		}
		return b.insertItems(p.UUID, items)
	}
	in1, in2 := mk(p1, c, d, e, f, g), mk(p2, c)
	mk(none, c)
	b.set(in1, 0, func(it *pool.Item) { // two attempts, one of them today
		it.Status, it.Attempts, it.Token = pool.StatusCompleted, 2, 2
		it.CallAt, it.CallsToday, it.CallToken = at(time.Hour), 1, 2
	})
	b.set(in1, 2, func(it *pool.Item) { it.CallAt, it.CallsToday, it.CallToken = at(2*time.Hour), 1, 1 }) // requeued: its day's count alone
	b.set(in1, 3, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1 })     // a call on no calling day
	b.set(in2, 0, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1 })
	b.set(in1, 4, func(it *pool.Item) { it.CallAt, it.CallsToday, it.CallToken = at(3*time.Hour), 1, 1 }) // as e, kept with the pool
	for i := range in1 {
		in1[i] = b.item(in1[i].ID)
	}
	in2[0] = b.item(in2[0].ID)

	b.keepCalls(none.UUID, c)                 // no campaign: nothing kept
	b.keepCalls(p1.UUID, c, d, e, uuid.New()) // d has no call, e its day's count alone, the last is not in p1
	keptC := kept(in1[0])
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []pool.Item{in2[0], keptC}, b.campaignItems(write, k1.UUID, p1.UUID, c, d))
		require.ElementsMatch(t, []pool.Item{keptC}, b.campaignItems(write, k1.UUID, p2.UUID, c),
			"kept whatever pool is left out")
		require.ElementsMatch(t, []pool.Item{keptC}, b.campaignItems(write, k2.UUID, p1.UUID, c, d), "kept for each campaign")
		require.Empty(t, b.campaignItems(write, k1.UUID, p2.UUID, d), "no call: nothing kept")
		require.ElementsMatch(t, []pool.Item{kept(in1[2])}, b.campaignItems(write, k1.UUID, p2.UUID, e),
			"a requeued item's day's count is kept")
	}
	b.keepCalls(p1.UUID) // the rest of p1, with the pool
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []pool.Item{in2[0], keptC}, b.campaignItems(write, k1.UUID, uuid.Nil, c))
		require.ElementsMatch(t, []pool.Item{kept(in1[2]), kept(in1[3]), kept(in1[4])}, b.campaignItems(write, k2.UUID, uuid.Nil, e, f, g),
			"a requeued item's day's count is kept with the pool too")
		require.ElementsMatch(t, []pool.Item{kept(in1[3])}, b.campaignItems(write, k1.UUID, p2.UUID, f), "one contact")
	}
	b.keepCalls(p2.UUID, c) // twice kept: both count
	require.ElementsMatch(t, []pool.Item{kept(in2[0]), keptC}, b.campaignItems(false, k1.UUID, uuid.Nil, c))

	b.write(func(tx store.Tx) error { return tx.DeleteCampaign(b.ctx, k2.UUID) })
	b.write(func(tx store.Tx) error {
		if err := tx.InsertCampaign(b.ctx, k2); err != nil { // the same UUID: a campaign anew
			return err
		}
		_, err := tx.AttachPool(b.ctx, k2.UUID, none.UUID)
		return err
	})
	require.Empty(t, b.campaignItems(false, k2.UUID, uuid.Nil, c, e, f), "deleted with their campaign")
	b.write(func(tx store.Tx) error { return tx.KeepCalls(b.ctx, uuid.New()) }) // an unknown pool keeps nothing
	err := b.st.Read(b.ctx, func(tx store.Tx) error { return tx.KeepCalls(b.ctx, p2.UUID) })
	require.ErrorIs(t, err, store.ErrReadOnly)
}

// testKeepCallsFinished: KeepCalls keeps the calls of the removed items
// for each campaign of the pool that may dispatch again (Draft, In
// Process, Paused), one contact at a time and with the whole pool, and
// none for a Completed or Archived one: it never reads them, and a pool
// reused by a campaign a day would write a record per called item and
// finished campaign.
func testKeepCallsFinished(t *testing.T, b *bundle) {
	p := b.insertPool()
	byStatus := map[campaign.Status]campaign.Campaign{}
	for _, st := range campaign.Statuses() {
		byStatus[st] = b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.Status = st }))
		b.attachAll(byStatus[st].UUID, p)
	}
	c, d := uuid.New(), uuid.New()
	items := b.insertItems(p.UUID, []pool.Item{
		{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
	})
	for i := range items {
		b.set(items, i, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1 })
		items[i] = b.item(items[i].ID)
	}
	b.keepCalls(p.UUID, c) // one contact
	b.keepCalls(p.UUID)    // the rest, with the pool
	for st, k := range byStatus {
		got := b.campaignItems(false, k.UUID, uuid.Nil, c, d)
		if st.Finished() {
			require.Empty(t, got, "%s: nothing kept", st)
		} else {
			require.ElementsMatch(t, []pool.Item{kept(items[0]), kept(items[1])}, got, "%s: kept", st)
		}
	}
}

// testKeepCallsDetachFinished checks that DetachPool keeps the calls of
// the pool's items only for a campaign that may dispatch again: detaching a
// pool of a million called items from an archived campaign wrote a million
// records that nothing reads.
func testKeepCallsDetachFinished(t *testing.T, b *bundle) {
	for _, st := range campaign.Statuses() {
		p := b.insertPool()
		k := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.Status = st }))
		b.attachAll(k.UUID, p)
		c, d := uuid.New(), uuid.New()
		items := b.insertItems(p.UUID, []pool.Item{
			{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
			{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
		})
		for i := range items {
			b.set(items, i, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1 })
			items[i] = b.item(items[i].ID)
		}
		var ok bool
		b.write(func(tx store.Tx) (err error) {
			ok, err = tx.DetachPool(b.ctx, k.UUID, p.UUID)
			return err
		})
		require.True(t, ok, "%s: detached", st)
		got := b.campaignItems(false, k.UUID, uuid.Nil, c, d)
		if st.Finished() {
			require.Empty(t, got, "%s: nothing kept", st)
		} else {
			require.ElementsMatch(t, []pool.Item{kept(items[0]), kept(items[1])}, got, "%s: kept", st)
		}
	}
}

// testKeepCallsGoWhenFinished checks that UpdateCampaign writing a
// campaign Completed or Archived deletes the calls kept for it, in its
// transaction: those of a removed item and those of a detached pool, one
// of them still in its call. Nothing reads them once it is finished (it
// never dispatches again), and they stayed until the campaign was
// deleted. A rename or a pause keeps them, the calls kept of the same
// item for another campaign stay, and a transaction that fails keeps them.
func testKeepCallsGoWhenFinished(t *testing.T, b *bundle) {
	for _, to := range []campaign.Status{campaign.Completed, campaign.Archived} {
		c, d, e := uuid.New(), uuid.New(), uuid.New()
		p1, p2 := b.insertPool(), b.insertPool()
		k := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.Status = campaign.InProcess }))
		other := b.insertCampaign(newCampaign(nil)) // a Draft: it may dial again
		b.attachAll(k.UUID, p1, p2)
		b.attachAll(other.UUID, p2)
		in1 := b.insertItems(p1.UUID, []pool.Item{
			{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
			{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
		})
		in2 := b.insertItems(p2.UUID, []pool.Item{{ContactUUID: e, Status: pool.StatusPending, AddedAt: t0}})
		b.set(in1, 0, func(it *pool.Item) { // in a call when its pool leaves
			it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 1, 5, at(time.Hour)
			it.CallAt, it.CallsToday, it.CallToken = at(0), 1, 5
		})
		b.set(in1, 1, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1 })
		b.set(in2, 0, func(it *pool.Item) {
			it.Status, it.Attempts, it.Token = pool.StatusFailed, 2, 2
			it.CallAt, it.CallsToday, it.CallToken = at(0), 1, 2
		})
		for i := range in1 {
			in1[i] = b.item(in1[i].ID)
		}
		in2[0] = b.item(in2[0].ID)
		b.keepCalls(p2.UUID, e) // removed: kept for k and other
		b.write(func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, k.UUID, p1.UUID); return err })
		all := []pool.Item{keptInCall(in1[0]), kept(in1[1]), kept(in2[0])}
		requireKept := func(msg string) {
			t.Helper()
			for _, write := range []bool{false, true} {
				require.ElementsMatch(t, all, b.campaignItems(write, k.UUID, p2.UUID, c, d, e), "%s: %s", to, msg)
			}
		}
		requireKept("kept while it runs")

		update := func(mod func(*campaign.Campaign)) func(tx store.Tx) error {
			return func(tx store.Tx) error {
				nc, err := tx.Campaign(b.ctx, k.UUID)
				if err != nil {
					return err
				}
				mod(&nc)
				return tx.UpdateCampaign(b.ctx, nc)
			}
		}
		b.write(update(func(nc *campaign.Campaign) { nc.Name += " renamed" }))
		requireKept("renamed")
		b.write(update(func(nc *campaign.Campaign) { nc.Status = campaign.Paused }))
		requireKept("paused")
		boom := errors.New("boom")
		err := b.st.Write(b.ctx, func(tx store.Tx) error {
			if err := update(func(nc *campaign.Campaign) { nc.Status = to })(tx); err != nil {
				return err
			}
			return boom
		})
		require.ErrorIs(t, err, boom)
		requireKept("its transaction failed")

		b.write(update(func(nc *campaign.Campaign) { nc.Status = to }))
		for _, write := range []bool{false, true} {
			require.Empty(t, b.campaignItems(write, k.UUID, p2.UUID, c, d, e), "%s: its kept calls go", to)
			require.ElementsMatch(t, []pool.Item{kept(in2[0])}, b.campaignItems(write, other.UUID, p2.UUID, e),
				"%s: those kept for another campaign stay", to)
		}
		// The call under way when its pool left ends, given back: nothing
		// kept to give it back in, and no error.
		b.write(func(tx store.Tx) error { return tx.ReleaseKeptCall(b.ctx, in1[0].ID, 5, true) })
		require.Equal(t, to, b.getCampaign(k.UUID).Status)
	}
}

// testKeepCallsDetach checks that DetachPool keeps the calls of the
// pool's items for the campaign it leaves, and that AttachPool to it
// again drops them for the items still in the pool (they count as items
// again) but not for the items removed meanwhile.
func testKeepCallsDetach(t *testing.T, b *bundle) {
	c, d, e := uuid.New(), uuid.New(), uuid.New()
	p1, p2 := b.insertPool(), b.insertPool()
	k, other := b.insertCampaign(newCampaign(nil)), b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	b.attachAll(other.UUID, p1)
	items := b.insertItems(p1.UUID, []pool.Item{
		{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: e, Status: pool.StatusPending, AddedAt: t0},
	})
	called := func(i int) {
		b.set(items, i, func(it *pool.Item) {
			it.Status, it.Attempts, it.Token = pool.StatusFailed, it.Attempts+1, it.Token+1
			it.CallAt, it.CallsToday, it.CallToken = at(time.Duration(it.Attempts)*time.Hour), it.CallsToday+1, it.Token
		})
		items[i] = b.item(items[i].ID)
	}
	called(0)
	called(2)
	detach := func(id, poolID uuid.UUID) bool {
		var ok bool
		b.write(func(tx store.Tx) (err error) {
			ok, err = tx.DetachPool(b.ctx, id, poolID)
			return err
		})
		return ok
	}
	require.True(t, detach(k.UUID, p1.UUID))
	require.False(t, detach(k.UUID, p1.UUID), "detached already: nothing kept twice")
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []pool.Item{kept(items[0]), kept(items[2])}, b.campaignItems(write, k.UUID, p2.UUID, c, d, e))
		require.ElementsMatch(t, items, b.campaignItems(write, other.UUID, uuid.Nil, c, d, e),
			"kept for the campaign left only: the other's has the items")
	}
	called(0)               // dispatched while detached
	b.keepCalls(p1.UUID, e) // removed while detached: kept for other, the pool's campaign now
	b.attachAll(k.UUID, p1)
	require.ElementsMatch(t, []pool.Item{items[0], items[1], kept(items[2])}, b.campaignItems(false, k.UUID, p2.UUID, c, d, e),
		"c counts as its item again; e's item is gone, its calls stay kept")
	require.ElementsMatch(t, []pool.Item{items[0], items[1], kept(items[2])}, b.campaignItems(true, k.UUID, p2.UUID, c, d, e))
	require.ElementsMatch(t, []pool.Item{kept(items[2])}, b.campaignItems(false, other.UUID, p1.UUID, c, d, e))
	require.True(t, detach(k.UUID, p1.UUID))
	b.attachAll(k.UUID, p1)
	require.ElementsMatch(t, []pool.Item{items[0], items[1], kept(items[2])}, b.campaignItems(false, k.UUID, p2.UUID, c, d, e),
		"detached and attached again: counted once")

	// Attaching a pool again drops the calls kept of its own items only:
	// another pool's, detached and not attached again, stay kept.
	f, p3 := uuid.New(), b.insertPool()
	b.attachAll(k.UUID, p3)
	in3 := b.insertItems(p3.UUID, []pool.Item{{ContactUUID: f, Status: pool.StatusPending, AddedAt: t0}})
	b.set(in3, 0, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1 })
	in3[0] = b.item(in3[0].ID)
	require.True(t, detach(k.UUID, p3.UUID))
	require.True(t, detach(k.UUID, p1.UUID))
	b.attachAll(k.UUID, p1)
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []pool.Item{kept(in3[0])}, b.campaignItems(write, k.UUID, p2.UUID, f),
			"another pool's calls stay kept")
	}
}

// testReleaseKeptCall checks that the calls kept of an item in flight when
// its pool was detached give back that lease's attempt (and its day's
// call when asked) once, and nothing for another token or another item.
func testReleaseKeptCall(t *testing.T, b *bundle) {
	c, d, e := uuid.New(), uuid.New(), uuid.New()
	p1, p2 := b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	items := b.insertItems(p1.UUID, []pool.Item{
		{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: e, Status: pool.StatusPending, AddedAt: t0},
	})
	b.set(items, 0, func(it *pool.Item) { // in a call the rule counted
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 2, 5, at(time.Hour)
		it.CallAt, it.CallsToday, it.CallToken = at(0), 1, 5
	})
	b.set(items, 1, func(it *pool.Item) { // in a call the rule did not count; a counted one before
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusInCall, 2, 4, at(time.Hour)
		it.CallAt, it.CallsToday, it.CallToken = at(0), 1, 3
	})
	b.set(items, 2, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 7 }) // settled
	for i := range items {
		items[i] = b.item(items[i].ID)
	}
	b.write(func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, k.UUID, p1.UUID); return err })
	release := func(id, token int64, day bool) {
		b.write(func(tx store.Tx) error { return tx.ReleaseKeptCall(b.ctx, id, token, day) })
	}
	keptC, keptD, keptE := keptInCall(items[0]), keptInCall(items[1]), kept(items[2])
	require.ElementsMatch(t, []pool.Item{keptC, keptD, keptE}, b.campaignItems(false, k.UUID, p2.UUID, c, d, e))

	release(items[0].ID, 5, true)
	keptC = kept(items[0]) // given back: no call goes on under it
	keptC.Attempts, keptC.CallsToday = 1, 0
	release(items[0].ID, 5, true)  // given back once
	release(items[1].ID, 3, false) // not its lease's token
	release(items[2].ID, 7, false) // not in flight when kept
	require.ElementsMatch(t, []pool.Item{keptC, keptD, keptE}, b.campaignItems(false, k.UUID, p2.UUID, c, d, e))
	release(items[1].ID, 4, false)
	keptD = kept(items[1])
	keptD.Attempts = 1
	require.ElementsMatch(t, []pool.Item{keptC, keptD, keptE}, b.campaignItems(true, k.UUID, p2.UUID, c, d, e))
	err := b.st.Read(b.ctx, func(tx store.Tx) error { return tx.ReleaseKeptCall(b.ctx, items[1].ID, 4, false) })
	require.ErrorIs(t, err, store.ErrReadOnly)
}

// testKeepingCampaigns checks that KeepingCampaigns returns the
// campaigns a pool was detached from while the item was in flight under
// the lease asked, in read and write transactions: not for another token,
// not once the attempt was given back (ReleaseKeptCall), not for an item
// settled before the detach, not for a campaign the pool is attached to
// again (its kept calls dropped), and none for an unknown item.
func testKeepingCampaigns(t *testing.T, b *bundle) {
	p := b.insertPool()
	k1, k2, k3 := b.insertCampaign(newCampaign(nil)), b.insertCampaign(newCampaign(nil)), b.insertCampaign(newCampaign(nil))
	b.attachAll(k1.UUID, p)
	b.attachAll(k2.UUID, p)
	b.attachAll(k3.UUID, p)
	items := b.insertItems(p.UUID, []pool.Item{
		{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: t0},
	})
	b.set(items, 0, func(it *pool.Item) {
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusInCall, 1, 5, at(time.Hour)
		it.CallAt, it.CallsToday, it.CallToken = at(0), 1, 5
	})
	b.set(items, 1, func(it *pool.Item) { it.Status, it.Attempts, it.Token = pool.StatusCompleted, 1, 7 })
	b.write(func(tx store.Tx) error {
		for _, k := range []campaign.Campaign{k1, k2, k3} {
			if _, err := tx.DetachPool(b.ctx, k.UUID, p.UUID); err != nil {
				return err
			}
		}
		return nil
	})
	b.attachAll(k3.UUID, p)
	keeping := func(write bool, id, token int64) []uuid.UUID {
		var out []uuid.UUID
		b.inTx(write, func(tx store.Tx) (err error) { out, err = tx.KeepingCampaigns(b.ctx, id, token); return err })
		require.NotNil(t, out)
		return out
	}
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []uuid.UUID{k1.UUID, k2.UUID}, keeping(write, items[0].ID, 5))
		require.Empty(t, keeping(write, items[0].ID, 4), "another token")
		require.Empty(t, keeping(write, items[1].ID, 7), "settled before the detach")
		require.Empty(t, keeping(write, items[1].ID+1000, 5), "an unknown item")
	}
	b.write(func(tx store.Tx) error { return tx.ReleaseKeptCall(b.ctx, items[0].ID, 5, true) })
	require.Empty(t, keeping(false, items[0].ID, 5), "given back")
}

// testReleaseKeptCallNoAttempts checks that ReleaseKeptCall of a call kept
// under a lease with no attempt counted (the store holds what it is given:
// an item in flight with Attempts 0) takes no attempt below zero and does
// not fail.
func testReleaseKeptCallNoAttempts(t *testing.T, b *bundle) {
	c := uuid.New()
	p1, p2 := b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	items := b.insertItems(p1.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}})
	b.set(items, 0, func(it *pool.Item) {
		it.Status, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 5, at(time.Hour)
		it.CallAt, it.CallsToday, it.CallToken = at(0), 1, 5
	})
	b.write(func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, k.UUID, p1.UUID); return err })
	b.write(func(tx store.Tx) error { return tx.ReleaseKeptCall(b.ctx, items[0].ID, 5, true) })
	got := b.campaignItems(false, k.UUID, p2.UUID, c)
	require.Len(t, got, 1)
	require.Zero(t, got[0].Attempts)
}

// testReleaseKeptCallNoDayCall checks that ReleaseKeptCall with day of a
// call kept under a lease with no call counted today (a day's count of 0)
// gives back the attempt, keeps the day's count at zero and does not fail.
func testReleaseKeptCallNoDayCall(t *testing.T, b *bundle) {
	c := uuid.New()
	p1, p2 := b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	items := b.insertItems(p1.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}})
	b.set(items, 0, func(it *pool.Item) {
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 1, 5, at(time.Hour)
	})
	b.write(func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, k.UUID, p1.UUID); return err })
	b.write(func(tx store.Tx) error { return tx.ReleaseKeptCall(b.ctx, items[0].ID, 5, true) })
	got := b.campaignItems(false, k.UUID, p2.UUID, c)
	require.Len(t, got, 1)
	require.Zero(t, got[0].Attempts, "the attempt given back")
	require.Zero(t, got[0].CallsToday)
}

// testKeptCallGoesOn checks that the call kept of an item in flight when
// its pool left the campaign is a call under way (the item's status and
// lease end) while the item is in flight under that lease's token, and a
// kept Completed call once it settles or is dispatched again: a claim in
// the campaign must not call the contact while the call goes on.
func testKeptCallGoesOn(t *testing.T, b *bundle) {
	c, d, e := uuid.New(), uuid.New(), uuid.New()
	p1, p2 := b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	items := b.insertItems(p1.UUID, []pool.Item{
		{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: e, Status: pool.StatusPending, AddedAt: t0},
	})
	b.set(items, 0, func(it *pool.Item) {
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusInCall, 1, 5, at(time.Hour)
	})
	b.set(items, 1, func(it *pool.Item) {
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusProcessing, 1, 9, at(time.Minute)
	})
	b.set(items, 2, func(it *pool.Item) {
		it.Status, it.Attempts, it.Token, it.LeaseExpiresAt = pool.StatusInCall, 1, 7, at(time.Hour)
	})
	for i := range items {
		items[i] = b.item(items[i].ID)
	}
	b.write(func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, k.UUID, p1.UUID); return err })
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, []pool.Item{keptInCall(items[0]), keptInCall(items[1]), keptInCall(items[2])},
			b.campaignItems(write, k.UUID, p2.UUID, c, d, e), "the calls go on")
		require.Equal(t, []pool.Item{keptInCall(items[1])}, b.campaignItems(write, k.UUID, p2.UUID, d), "one contact")
	}

	ended := []pool.Item{kept(items[0]), kept(items[1]), kept(items[2])} // as they were kept

	b.set(items, 0, func(it *pool.Item) { // settled
		it.Status, it.LeaseExpiresAt, it.CompletedAt = pool.StatusCompleted, time.Time{}, ptr(at(time.Second))
	})
	b.set(items, 1, func(it *pool.Item) { // expired, then dispatched again under the pool's own settings
		it.Attempts, it.Token, it.LeaseExpiresAt = 2, 12, at(2*time.Hour)
	})
	b.set(items, 2, func(it *pool.Item) { // settled to wait for a retry: its token stays
		it.Status, it.LeaseExpiresAt, it.RetryCount, it.NextRetryAt = pool.StatusRetrying, time.Time{}, 1, ptr(at(time.Hour))
	})
	for _, write := range []bool{false, true} {
		require.ElementsMatch(t, ended, b.campaignItems(write, k.UUID, p2.UUID, c, d, e),
			"the kept calls ended; d's new call is not the campaign's")
	}
}

// testKeepCallsRollback checks that calls kept in a transaction that
// fails are not kept.
func testKeepCallsRollback(t *testing.T, b *bundle) {
	c := uuid.New()
	p1, p2 := b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	it := b.insertItems(p1.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}})[0]
	it.Status, it.Attempts, it.Token = pool.StatusFailed, 1, 1
	b.update(it)
	boom := errors.New("boom")
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		if err := tx.KeepCalls(b.ctx, p1.UUID, c); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Empty(t, b.campaignItems(false, k.UUID, p1.UUID, c))
	var spErr error
	b.write(func(tx store.Tx) error {
		spErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			if err := tx.KeepCalls(b.ctx, p1.UUID, c); err != nil {
				return err
			}
			return boom
		})
		return nil
	})
	require.ErrorIs(t, spErr, boom)
	require.Empty(t, b.campaignItems(false, k.UUID, p1.UUID, c), "rolled back to the savepoint")
}

// testCampaignCalls checks that CampaignCalls returns the items in flight
// in the campaign's pools whose lease ends after the time asked, as
// ItemByID does (PoolUUID set): not those of a pool of another campaign or
// of none, not a lease that ended then or before, not a waiting item.
func testCampaignCalls(t *testing.T, b *bundle) {
	p1, p2, other := b.insertPool(), b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2)
	inFlight := func(st pool.Status, lease time.Duration) pool.Item {
		return pool.Item{ContactUUID: uuid.New(), Status: st, Attempts: 1, StartedAt: ptr(t0), AddedAt: t0,
			Token: 1, LeaseExpiresAt: at(lease)}
	}
	in1 := b.insertItems(p1.UUID, []pool.Item{
		inFlight(pool.StatusProcessing, time.Hour),
		inFlight(pool.StatusInCall, 2*time.Hour),
		inFlight(pool.StatusProcessing, 30*time.Minute), // ends at the time asked: ended
		{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: t0},
	})
	in2 := b.insertItems(p2.UUID, []pool.Item{inFlight(pool.StatusInCall, 3*time.Hour)})
	b.insertItems(other.UUID, []pool.Item{inFlight(pool.StatusProcessing, time.Hour)})
	var want []pool.Item
	for _, it := range []pool.Item{in1[0], in1[1], in2[0]} {
		want = append(want, b.item(it.ID))
	}
	for _, write := range []bool{false, true} {
		var got, none []pool.Item
		fn := func(tx store.Tx) (err error) {
			if got, err = tx.CampaignCalls(b.ctx, k.UUID, at(30*time.Minute)); err != nil {
				return err
			}
			none, err = tx.CampaignCalls(b.ctx, uuid.New(), t0)
			return err
		}
		b.inTx(write, fn)
		require.ElementsMatch(t, want, got)
		require.Empty(t, none, "an unknown campaign")
	}
}

// testContactItemsOwnWrites checks that ContactItems in a write
// transaction sees what it wrote before: an item added, one changed, a
// pool deleted.
func testContactItemsOwnWrites(t *testing.T, b *bundle) {
	c := uuid.New()
	p, gone := b.insertPool(), b.insertPool()
	first := b.insertItems(p.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}})[0]
	b.insertItems(gone.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0}})
	fresh := newPool()
	var got []pool.Item
	b.write(func(tx store.Tx) error {
		changed := first
		changed.Status, changed.Notes, changed.CallAt, changed.CallsToday, changed.CallToken = pool.StatusSkipped, "withdrawn", at(3*time.Hour), 1, 1
		if err := tx.UpdateItem(b.ctx, first.Status, changed); err != nil {
			return err
		}
		if err := tx.DeletePool(b.ctx, gone.UUID); err != nil {
			return err
		}
		if err := tx.InsertPool(b.ctx, fresh); err != nil {
			return err
		}
		_, err := tx.InsertItems(b.ctx, fresh.UUID, []pool.Item{{ContactUUID: c, Status: pool.StatusPending, AddedAt: at(1)}})
		if err != nil {
			return err
		}
		got, err = tx.ContactItems(b.ctx, c)
		return err
	})
	require.ElementsMatch(t, []uuid.UUID{p.UUID, fresh.UUID}, poolsOf(got))
	require.Equal(t, got, b.contactItems(c, false), "as committed")
	for _, it := range got {
		require.Equal(t, b.item(it.ID), it)
		if it.PoolUUID == p.UUID {
			require.Equal(t, pool.StatusSkipped, it.Status)
			require.Equal(t, at(3*time.Hour), it.CallAt)
			require.Equal(t, 1, it.CallsToday)
			require.Equal(t, int64(1), it.CallToken)
		}
	}
}

func (b *bundle) addDNC(at time.Time, contacts ...uuid.UUID) int {
	b.t.Helper()
	var n int
	b.write(func(tx store.Tx) (err error) { n, err = tx.AddDNC(b.ctx, at, contacts...); return err })
	return n
}

func (b *bundle) removeDNC(contacts ...uuid.UUID) int {
	b.t.Helper()
	var n int
	b.write(func(tx store.Tx) (err error) { n, err = tx.RemoveDNC(b.ctx, contacts...); return err })
	return n
}

func (b *bundle) onDNC(contacts ...uuid.UUID) map[uuid.UUID]bool {
	b.t.Helper()
	var out map[uuid.UUID]bool
	b.read(func(tx store.Tx) (err error) { out, err = tx.OnDNC(b.ctx, contacts...); return err })
	return out
}

// dnc returns a page of the do-not-call list; q is normalized first.
func (b *bundle) dnc(q campaign.DNCQuery) ([]campaign.DNCEntry, int) {
	b.t.Helper()
	q, err := q.Normalize()
	require.NoError(b.t, err)
	var out []campaign.DNCEntry
	var total int
	b.read(func(tx store.Tx) (err error) { out, total, err = tx.DNC(b.ctx, q); return err })
	return out, total
}

// allDNC returns the whole do-not-call list.
func (b *bundle) allDNC() []campaign.DNCEntry {
	b.t.Helper()
	out, total := b.dnc(campaign.DNCQuery{PerPage: pool.MaxPerPage})
	require.Len(b.t, out, total, "the list fits on a page")
	return out
}

// sortedUUIDs returns ids in the order of their bytes.
func sortedUUIDs(ids ...uuid.UUID) []uuid.UUID {
	out := slices.Clone(ids)
	slices.SortFunc(out, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return out
}

// entry returns a do-not-call entry as the list holds it.
func entry(contact uuid.UUID, added time.Time) campaign.DNCEntry {
	return campaign.DNCEntry{ContactUUID: contact, AddedAt: added.UTC()}
}

// setOf returns contacts as a set, as OnDNC and OptedOut return them.
func setOf(contacts ...uuid.UUID) map[uuid.UUID]bool {
	out := map[uuid.UUID]bool{}
	for _, c := range contacts {
		out[c] = true
	}
	return out
}

func testDNCAddRemove(t *testing.T, b *bundle) {
	a, c, d := uuid.New(), uuid.New(), uuid.New()
	require.Equal(t, 2, b.addDNC(at(1).In(tokyo), a, c, a), "a contact twice in one call counts once")
	require.Equal(t, 1, b.addDNC(at(5), c, d), "c is on the list already")
	require.Zero(t, b.addDNC(at(6), a, c, d), "all on it already")
	require.Zero(t, b.addDNC(at(7)), "no contacts")

	ac := sortedUUIDs(a, c)
	want := []campaign.DNCEntry{entry(ac[0], at(1)), entry(ac[1], at(1)), entry(d, at(5))}
	require.Equal(t, want, b.allDNC(), "an entry keeps the time it was first added, in UTC")

	require.Equal(t, 1, b.removeDNC(c, uuid.New(), c), "only c was on the list")
	require.Zero(t, b.removeDNC(c), "c is off it already")
	require.Zero(t, b.removeDNC(), "no contacts")
	require.Equal(t, []campaign.DNCEntry{entry(a, at(1)), entry(d, at(5))}, b.allDNC())

	require.Equal(t, 1, b.addDNC(at(9), c), "put back")
	require.Equal(t, []campaign.DNCEntry{entry(a, at(1)), entry(d, at(5)), entry(c, at(9))}, b.allDNC(), "with its new time")

	// In one transaction: what AddDNC added it finds there.
	e := uuid.New()
	var added, again, removed int
	b.write(func(tx store.Tx) (err error) {
		if added, err = tx.AddDNC(b.ctx, at(10), e); err != nil {
			return err
		}
		if again, err = tx.AddDNC(b.ctx, at(11), e); err != nil {
			return err
		}
		removed, err = tx.RemoveDNC(b.ctx, e, a)
		return err
	})
	require.Equal(t, 1, added)
	require.Zero(t, again, "added earlier in the transaction")
	require.Equal(t, 2, removed)
	require.Equal(t, []campaign.DNCEntry{entry(d, at(5)), entry(c, at(9))}, b.allDNC())
}

func testOnDNC(t *testing.T, b *bundle) {
	on1, on2, off1, off2 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	require.Empty(t, b.onDNC(on1, off1), "an empty list")
	b.addDNC(t0, on1, on2)
	require.Equal(t, setOf(on1, on2), b.onDNC(off1, on1, off2, on2, on1))
	require.Equal(t, setOf(on2), b.onDNC(on2))
	require.Empty(t, b.onDNC(off1, off2))
	require.Empty(t, b.onDNC(), "no contacts")

	b.removeDNC(on1)
	require.Equal(t, setOf(on2), b.onDNC(on1, on2))

	// In a write transaction, before commit.
	var got map[uuid.UUID]bool
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.AddDNC(b.ctx, t0, off1); err != nil {
			return err
		}
		got, err = tx.OnDNC(b.ctx, on1, on2, off1, off2)
		return err
	})
	require.Equal(t, setOf(on2, off1), got)
	require.Equal(t, setOf(on2, off1), b.onDNC(on1, on2, off1, off2))
}

// testListed: Listed answers what OnDNC and OptedOut answer, for one
// contact and for many, read or written in the same transaction.
func testListed(t *testing.T, b *bundle) {
	dnc, opted, both, none := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	listed := func(contacts ...uuid.UUID) (d, o map[uuid.UUID]bool) {
		b.read(func(tx store.Tx) (err error) { d, o, err = tx.Listed(b.ctx, contacts...); return err })
		return d, o
	}
	d, o := listed(dnc, opted)
	require.Empty(t, d, "empty lists")
	require.Empty(t, o, "empty lists")
	b.addDNC(t0, dnc, both)
	b.write(func(tx store.Tx) error {
		for _, c := range []uuid.UUID{opted, both} {
			if _, err := tx.OptOut(b.ctx, c, t0); err != nil {
				return err
			}
		}
		return nil
	})
	for _, c := range []uuid.UUID{dnc, opted, both, none} {
		d, o := listed(c)
		require.Equal(t, b.onDNC(c), d, "one contact: DNC of %s", c)
		var wantOpted map[uuid.UUID]bool
		b.read(func(tx store.Tx) (err error) { wantOpted, err = tx.OptedOut(b.ctx, c); return err })
		require.Equal(t, wantOpted, o, "one contact: opted out %s", c)
	}
	d, o = listed(none, both, dnc, opted, both)
	require.Equal(t, setOf(dnc, both), d)
	require.Equal(t, setOf(opted, both), o)
	d, o = listed()
	require.Empty(t, d, "no contacts")
	require.Empty(t, o, "no contacts")

	// In a write transaction, before commit.
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.AddDNC(b.ctx, t0, none); err != nil {
			return err
		}
		d, o, err = tx.Listed(b.ctx, none)
		return err
	})
	require.Equal(t, setOf(none), d)
	require.Empty(t, o)
}

// testDNCPaging checks the order of the list (oldest first, to the
// nanosecond, ties by contact UUID) and its pages.
func testDNCPaging(t *testing.T, b *bundle) {
	late, z, w := uuid.New(), uuid.New(), uuid.New()
	ys := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	b.addDNC(at(3*time.Second), late)
	b.addDNC(at(2*time.Second).In(tokyo), ys...)
	b.addDNC(at(time.Second), z)
	b.addDNC(at(2*time.Second+1), w) // a nanosecond after the ys
	ys = sortedUUIDs(ys...)
	want := []campaign.DNCEntry{
		entry(z, at(time.Second)),
		entry(ys[0], at(2*time.Second)), entry(ys[1], at(2*time.Second)), entry(ys[2], at(2*time.Second)),
		entry(w, at(2*time.Second+1)),
		entry(late, at(3*time.Second)),
	}

	got, total := b.dnc(campaign.DNCQuery{})
	require.Equal(t, want, got, "the default page holds them all")
	require.Equal(t, 6, total)
	var pages []campaign.DNCEntry
	for page := 1; page <= 3; page++ {
		got, total := b.dnc(campaign.DNCQuery{Page: page, PerPage: 2})
		require.Equal(t, want[2*(page-1):2*page], got, "page %d", page)
		require.Equal(t, 6, total, "page %d", page)
		pages = append(pages, got...)
	}
	require.Equal(t, want, pages)
	got, total = b.dnc(campaign.DNCQuery{Page: 2, PerPage: 4})
	require.Equal(t, want[4:], got, "a short last page")
	require.Equal(t, 6, total)
	got, total = b.dnc(campaign.DNCQuery{Page: 4, PerPage: 2})
	require.Empty(t, got, "past the end")
	require.Equal(t, 6, total)

	b.removeDNC(ys[1], late)
	got, total = b.dnc(campaign.DNCQuery{Page: 2, PerPage: 2})
	require.Equal(t, []campaign.DNCEntry{want[3], want[4]}, got)
	require.Equal(t, 4, total)
}

// testDNCConcurrent adds the same contacts, in different orders, from
// several writers at once: each is added once, by one of them.
func testDNCConcurrent(t *testing.T, b *bundle) {
	const writers, contacts = 6, 20
	all := make([]uuid.UUID, contacts)
	for i := range all {
		all[i] = uuid.New()
	}
	var wg sync.WaitGroup
	added := make([]int, writers)
	errs := make([]error, writers)
	for w := range writers {
		mine := slices.Clone(all)
		rand.Shuffle(len(mine), func(i, j int) { mine[i], mine[j] = mine[j], mine[i] })
		wg.Go(func() {
			errs[w] = b.st.Write(b.ctx, func(tx store.Tx) (err error) {
				added[w], err = tx.AddDNC(b.ctx, at(time.Duration(w)), mine...)
				return err
			})
		})
	}
	wg.Wait()
	sum := 0
	for w := range writers {
		require.NoError(t, errs[w], "writer %d", w)
		sum += added[w]
	}
	require.Equal(t, contacts, sum, "each contact added once")
	require.Len(t, b.allDNC(), contacts)
	require.Equal(t, setOf(all...), b.onDNC(all...))
}

func (b *bundle) optOut(contact uuid.UUID, at time.Time) bool {
	b.t.Helper()
	var added bool
	b.write(func(tx store.Tx) (err error) { added, err = tx.OptOut(b.ctx, contact, at); return err })
	return added
}

func (b *bundle) optedOut(contacts ...uuid.UUID) map[uuid.UUID]bool {
	b.t.Helper()
	var out map[uuid.UUID]bool
	b.read(func(tx store.Tx) (err error) { out, err = tx.OptedOut(b.ctx, contacts...); return err })
	return out
}

func testOptOut(t *testing.T, b *bundle) {
	c, d, e := uuid.New(), uuid.New(), uuid.New()
	require.Empty(t, b.optedOut(c, d, e), "nobody yet")
	require.True(t, b.optOut(c, at(1).In(tokyo)))
	require.False(t, b.optOut(c, at(2)), "opted out already")
	require.True(t, b.optOut(d, at(3)))
	require.Equal(t, setOf(c, d), b.optedOut(e, c, d, c))
	require.Equal(t, setOf(d), b.optedOut(d))
	require.Empty(t, b.optedOut(e))
	require.Empty(t, b.optedOut(), "no contacts")
	require.Empty(t, b.onDNC(c, d), "opting out does not put a contact on the do-not-call list")
	b.addDNC(t0, e)
	require.Empty(t, b.optedOut(e), "nor the other way round")

	// In one transaction: what OptOut recorded it finds there.
	var added, again bool
	var got map[uuid.UUID]bool
	b.write(func(tx store.Tx) (err error) {
		if added, err = tx.OptOut(b.ctx, e, at(4)); err != nil {
			return err
		}
		if again, err = tx.OptOut(b.ctx, e, at(5)); err != nil {
			return err
		}
		got, err = tx.OptedOut(b.ctx, c, e)
		return err
	})
	require.True(t, added)
	require.False(t, again, "recorded earlier in the transaction")
	require.Equal(t, setOf(c, e), got)
	require.Equal(t, setOf(c, d, e), b.optedOut(c, d, e))
}

// escalation returns an escalation of an item that is not recorded yet,
// using every field.
func escalation(it pool.Item, failed int, when time.Time) campaign.Escalation {
	return campaign.Escalation{
		PoolUUID: it.PoolUUID, ContactUUID: it.ContactUUID, ItemID: it.ID,
		CampaignUUID: uuid.New(), RuleUUID: uuid.New(),
		Type: "email", Target: "ops+é@example.com", FailedAttempts: failed, At: when,
	}
}

// insertEscalation records e; the result is what InsertEscalation
// returned.
func (b *bundle) insertEscalation(e campaign.Escalation) (campaign.Escalation, bool) {
	b.t.Helper()
	var added bool
	b.write(func(tx store.Tx) (err error) { e, added, err = tx.InsertEscalation(b.ctx, e); return err })
	return e, added
}

// escalations lists escalations; q is normalized first.
func (b *bundle) escalations(q campaign.EscalationQuery) []campaign.Escalation {
	b.t.Helper()
	q, err := q.Normalize()
	require.NoError(b.t, err)
	var out []campaign.Escalation
	b.read(func(tx store.Tx) (err error) { out, err = tx.Escalations(b.ctx, q); return err })
	return out
}

// recorded returns e as InsertEscalation records it: with id, in UTC.
func recorded(e campaign.Escalation, id int64) campaign.Escalation {
	e.ID = id
	e.At = e.At.UTC()
	return e
}

func testInsertEscalation(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(4))

	e0 := escalation(items[2], 3, at(time.Minute).In(tokyo))
	got0, added := b.insertEscalation(e0)
	require.True(t, added)
	require.Positive(t, got0.ID)
	require.Equal(t, recorded(e0, got0.ID), got0, "e with its ID, in UTC")

	e1 := escalation(items[0], 5, at(time.Second)) // an older item, an earlier time
	e1.Type, e1.Target = "", ""                    // a rule without them
	got1, added := b.insertEscalation(e1)
	require.True(t, added)
	require.Greater(t, got1.ID, got0.ID, "IDs grow")
	require.Equal(t, recorded(e1, got1.ID), got1)

	// A second escalation of an item records nothing, whatever it says.
	again := escalation(items[2], 9, at(time.Hour))
	again.PoolUUID, again.Type = uuid.New(), "sms"
	_, added = b.insertEscalation(again)
	require.False(t, added, "item %d has one already", items[2].ID)
	require.Equal(t, []campaign.Escalation{got0, got1}, b.escalations(campaign.EscalationQuery{}), "nothing written")

	// Twice in one transaction: the second records nothing either.
	var got2 campaign.Escalation
	var secondAdded bool
	var list []campaign.Escalation
	b.write(func(tx store.Tx) (err error) {
		if got2, added, err = tx.InsertEscalation(b.ctx, escalation(items[3], 3, at(2))); err != nil {
			return err
		}
		if _, secondAdded, err = tx.InsertEscalation(b.ctx, escalation(items[3], 4, at(3))); err != nil {
			return err
		}
		list, err = tx.Escalations(b.ctx, campaign.EscalationQuery{After: got1.ID, Limit: 10})
		return err
	})
	require.True(t, added)
	require.False(t, secondAdded, "recorded earlier in the transaction")
	require.Equal(t, []campaign.Escalation{got2}, list, "seen before commit")
	require.Greater(t, got2.ID, got1.ID, "IDs grow")
	require.Equal(t, []campaign.Escalation{got0, got1, got2}, b.escalations(campaign.EscalationQuery{}))
}

// testInsertEscalationConcurrent records escalations from several writers
// at once, each of one item of its own and one shared: the shared one is
// recorded once, every ID is distinct, and the list is in ID order.
func testInsertEscalationConcurrent(t *testing.T, b *bundle) {
	const writers = 6
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(writers+1))
	shared := items[writers]
	var wg sync.WaitGroup
	added := make([]bool, writers)
	errs := make([]error, writers)
	for w := range writers {
		wg.Go(func() {
			errs[w] = b.st.Write(b.ctx, func(tx store.Tx) error {
				var err error
				if _, added[w], err = tx.InsertEscalation(b.ctx, escalation(shared, 3, at(time.Duration(w)))); err != nil {
					return err
				}
				_, ok, err := tx.InsertEscalation(b.ctx, escalation(items[w], 3, at(time.Duration(w))))
				if err == nil && !ok {
					err = errors.New("an item of its own was not recorded")
				}
				return err
			})
		})
	}
	wg.Wait()
	once := 0
	for w := range writers {
		require.NoError(t, errs[w], "writer %d", w)
		if added[w] {
			once++
		}
	}
	require.Equal(t, 1, once, "the shared item is escalated once")
	list := b.escalations(campaign.EscalationQuery{})
	require.Len(t, list, writers+1)
	seen := map[int64]bool{}
	for i, e := range list {
		if i > 0 {
			require.Greater(t, e.ID, list[i-1].ID, "in ID order")
		}
		require.False(t, seen[e.ItemID], "item %d escalated twice", e.ItemID)
		seen[e.ItemID] = true
	}
	require.Len(t, seen, writers+1)
}

func testEscalationsQuery(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	inP := b.insertItems(p.UUID, pending(3))
	inQ := b.insertItems(q.UUID, pending(2))
	// Recorded in an order that neither item IDs nor times follow.
	var es []campaign.Escalation
	for i, it := range []pool.Item{inP[2], inQ[1], inP[0], inP[1], inQ[0]} {
		e, added := b.insertEscalation(escalation(it, 3+i, at(time.Duration(10-i)*time.Second)))
		require.True(t, added)
		es = append(es, e)
	}
	ofP := []campaign.Escalation{es[0], es[2], es[3]}
	ofQ := []campaign.Escalation{es[1], es[4]}

	for name, c := range map[string]struct {
		q    campaign.EscalationQuery
		want []campaign.Escalation
	}{
		"All":           {campaign.EscalationQuery{}, es},
		"After":         {campaign.EscalationQuery{After: es[1].ID}, es[2:]},
		"AfterLast":     {campaign.EscalationQuery{After: es[4].ID}, nil},
		"Limit":         {campaign.EscalationQuery{Limit: 2}, es[:2]},
		"AfterLimit":    {campaign.EscalationQuery{After: es[1].ID, Limit: 2}, es[2:4]},
		"Pool":          {campaign.EscalationQuery{PoolUUID: &p.UUID}, ofP},
		"OtherPool":     {campaign.EscalationQuery{PoolUUID: &q.UUID}, ofQ},
		"PoolAfter":     {campaign.EscalationQuery{PoolUUID: &p.UUID, After: es[0].ID}, ofP[1:]},
		"PoolLimit":     {campaign.EscalationQuery{PoolUUID: &p.UUID, After: es[0].ID, Limit: 1}, ofP[1:2]},
		"PoolAfterLast": {campaign.EscalationQuery{PoolUUID: &q.UUID, After: es[4].ID}, nil},
		"UnknownPool":   {campaign.EscalationQuery{PoolUUID: ptr(uuid.New())}, nil},
	} {
		got := b.escalations(c.q)
		if len(c.want) == 0 {
			require.Empty(t, got, name)
			continue
		}
		require.Equal(t, c.want, got, name)
	}

	// A consumer that pages by the last ID it handled sees each once.
	var seen []campaign.Escalation
	for after := int64(0); ; {
		got := b.escalations(campaign.EscalationQuery{After: after, Limit: 2})
		if len(got) == 0 {
			break
		}
		seen = append(seen, got...)
		after = got[len(got)-1].ID
	}
	require.Equal(t, es, seen)
}

// testEscalationsOutlivePool checks that escalations stay when their item,
// then their pool, is deleted, and still count for the item.
func testEscalationsOutlivePool(t *testing.T, b *bundle) {
	p, q := b.insertPool(), b.insertPool()
	inP := b.insertItems(p.UUID, pending(2))
	inQ := b.insertItems(q.UUID, pending(1))
	e0, _ := b.insertEscalation(escalation(inP[0], 3, at(1)))
	e1, _ := b.insertEscalation(escalation(inQ[0], 3, at(2)))
	e2, _ := b.insertEscalation(escalation(inP[1], 3, at(3)))
	all := []campaign.Escalation{e0, e1, e2}

	b.write(func(tx store.Tx) error { return deleteItem(b.ctx, tx, inP[1]) })
	require.Equal(t, all, b.escalations(campaign.EscalationQuery{}), "the item deleted")
	b.write(func(tx store.Tx) error { return tx.DeletePool(b.ctx, p.UUID) })
	require.Equal(t, all, b.escalations(campaign.EscalationQuery{}), "the pool deleted")
	require.Equal(t, []campaign.Escalation{e0, e2}, b.escalations(campaign.EscalationQuery{PoolUUID: &p.UUID}))

	_, added := b.insertEscalation(escalation(inP[0], 4, at(4)))
	require.False(t, added, "the item's escalation is still there")
	e3, added := b.insertEscalation(escalation(b.insertItems(q.UUID, pending(1))[0], 3, at(5)))
	require.True(t, added)
	require.Greater(t, e3.ID, e2.ID)
	require.Equal(t, append(all, e3), b.escalations(campaign.EscalationQuery{}))
}

// testCallDayRoundTrip checks that an item's count of its calling day (its
// latest counted call, the day's calls, the counted dispatch's token) is
// stored by InsertItems, UpdateItem and UpdateItems, and returned by every
// method that reads items; CopyItems does not copy it.
func testCallDayRoundTrip(t *testing.T, b *bundle) {
	p := b.insertPool() // FIFO
	items := b.insertItems(p.UUID, pending(6))
	for _, it := range items {
		require.Zero(t, it.CallAt)
		require.Zero(t, it.CallsToday)
		require.Zero(t, it.CallToken)
	}
	soon := at(time.Minute)

	// UpdateItem: items[0] dispatched then given back on day 20162, still
	// counted once.
	items[0].CallAt, items[0].CallsToday, items[0].CallToken, items[0].Attempts = at(-time.Hour), 1, 1, 1
	b.update(items[0])

	// UpdateItems: three items at once, each with its own values, the
	// extremes of the types among them.
	from := []pool.Status{items[1].Status, items[2].Status, items[3].Status}
	retrying(soon)(&items[1])
	items[1].CallAt, items[1].CallsToday, items[1].CallToken = time.Date(2261, 12, 31, 0, 0, 0, 0, time.UTC), pow2to33, math.MaxInt64
	scheduled(soon)(&items[2])
	items[2].CallAt, items[2].CallsToday, items[2].CallToken = time.Unix(0, -3).UTC(), 2, 2
	items[3].CallAt, items[3].CallsToday, items[3].CallToken = at(7), 0, 0
	b.write(func(tx store.Tx) error {
		return tx.UpdateItems(b.ctx, store.Change{From: from[0], Item: items[1]},
			store.Change{From: from[1], Item: items[2]}, store.Change{From: from[2], Item: items[3]})
	})

	// items[4] in flight, its lease ended: found by Expired.
	inFlight(pool.StatusProcessing, soon)(&items[4])
	items[4].CallAt, items[4].CallsToday, items[4].CallToken = at(time.Second), 3, 4
	b.update(items[4])

	// InsertItems stores them too.
	inserted := pending(1)
	inserted[0].Status, inserted[0].Attempts, inserted[0].CallAt, inserted[0].CallsToday, inserted[0].CallToken = pool.StatusRetrying, 1, at(-2*time.Hour), 2, 1
	inserted[0].NextRetryAt = &soon
	inserted[0].AddedAt = at(10)
	items = append(items, b.insertItems(p.UUID, inserted)...)
	require.Equal(t, at(-2*time.Hour), items[6].CallAt)
	require.Equal(t, 2, items[6].CallsToday)
	require.Equal(t, int64(1), items[6].CallToken)

	// Every reader returns them.
	for _, it := range items {
		require.Equal(t, it, b.item(it.ID), "ItemByID %d", it.ID)
		require.Equal(t, []pool.Item{it}, b.contactItems(it.ContactUUID, false), "ContactItems %d", it.ID)
	}
	require.Equal(t, items, b.allItems(p.UUID, ""), "Items")
	require.Equal(t, []pool.Item{items[1], items[6]}, b.allItems(p.UUID, pool.StatusRetrying), "Items of a status")
	b.read(func(tx store.Tx) error {
		for _, it := range items {
			got, err := tx.Item(b.ctx, p.UUID, it.ContactUUID)
			require.NoError(t, err)
			require.Equal(t, it, got, "Item %d", it.ID)
		}
		got, err := tx.ItemsByID(b.ctx, ids(items))
		require.ElementsMatch(t, items, got, "ItemsByID")
		return err
	})
	var expired []pool.Item
	b.read(func(tx store.Tx) (err error) { expired, err = tx.Expired(b.ctx, p.UUID, soon, 10); return err })
	require.Equal(t, []pool.Item{items[4]}, expired, "Expired")
	due := b.due(p.UUID, pool.FIFO, soon, 10)
	require.Equal(t, []pool.Item{items[0], items[1], items[2], items[3], items[5], items[6]}, due, "Due")

	// Back to zero: a new day's count starts from nothing.
	items[0].CallAt, items[0].CallsToday, items[0].CallToken = time.Time{}, 0, 0
	b.update(items[0])
	require.Equal(t, items[0], b.item(items[0].ID))
	from = []pool.Status{items[1].Status}
	items[1].CallAt, items[1].CallsToday, items[1].CallToken = time.Time{}, 0, 0
	b.write(func(tx store.Tx) error { return tx.UpdateItems(b.ctx, store.Change{From: from[0], Item: items[1]}) })
	require.Equal(t, items[1], b.item(items[1].ID))

	// A copy starts afresh.
	q := b.insertPool()
	b.write(func(tx store.Tx) error { _, err := tx.CopyItems(b.ctx, p.UUID, q.UUID, at(time.Hour)); return err })
	for _, it := range b.allItems(q.UUID, "") {
		require.Zero(t, it.CallAt, "a copy")
		require.Zero(t, it.CallsToday, "a copy")
		require.Zero(t, it.CallToken, "a copy")
	}
}

// testPrevCallDayRoundTrip checks that the count of an item's calling day
// before the latest (PrevCallAt, PrevCallsToday) is stored by
// InsertItems, UpdateItem and UpdateItems, apart from the latest day's,
// and returned by every method that reads items; a new item and a copy
// have none.
func testPrevCallDayRoundTrip(t *testing.T, b *bundle) {
	testLaterCallDayRoundTrip(t, b, laterCallDayRoundTrip{
		day: 1,
		// UpdateItem: a previous day and a latest one.
		updated:         []dayCount{{at(-time.Hour), 1}, {at(-25 * time.Hour), 2}},
		updatedAttempts: 3,
		// UpdateItems: each its own values, the extremes of the types
		// among them; a previous day whose latest day's calls were all
		// given back.
		updatedTogether: [2][]dayCount{
			{{at(time.Hour), 1}, {time.Date(2261, 12, 31, 0, 0, 0, 0, time.UTC), pow2to33}},
			{{at(-time.Minute), 0}, {time.Unix(0, -3).UTC(), 4}},
		},
		inserted:         []dayCount{{at(-time.Hour), 1}, {at(-30 * time.Hour), 1}},
		insertedAttempts: 2,
	})
}

// testPrevCallDayKept checks that the calls kept of an item (KeepCalls of
// some contacts or of the pool, DetachPool) keep its previous calling
// day's count too, that CampaignItems returns it, and that an item whose
// only counted calls are of that day is kept.
func testPrevCallDayKept(t *testing.T, b *bundle) {
	testLaterCallDayKept(t, b, laterCallDayKept{
		day:      1,
		attempts: 3,
		days:     []dayCount{{at(time.Hour), 1}, {at(-20 * time.Hour), 2}},
		alone:    at(-20 * time.Hour),
	})
}

// testOlderCallDayRoundTrip checks that the count of an item's calling
// day before the previous one (OlderCallAt, OlderCallsToday) is stored by
// InsertItems, UpdateItem and UpdateItems, apart from the later days',
// and returned by every method that reads items; a new item and a copy
// have none.
func testOlderCallDayRoundTrip(t *testing.T, b *bundle) {
	testLaterCallDayRoundTrip(t, b, laterCallDayRoundTrip{
		day: 2,
		// UpdateItem: three days.
		updated:         []dayCount{{at(-time.Hour), 1}, {at(-25 * time.Hour), 2}, {at(-49 * time.Hour), 3}},
		updatedAttempts: 4,
		// UpdateItems: each its own values, the extremes of the types
		// among them; an older day whose later days' calls were all given
		// back.
		updatedTogether: [2][]dayCount{
			{{at(time.Hour), 1}, {at(-time.Hour), 1}, {time.Date(2261, 12, 31, 0, 0, 0, 0, time.UTC), pow2to33}},
			{{at(-time.Minute), 0}, {}, {time.Unix(0, -3).UTC(), 4}},
		},
		inserted:         []dayCount{{at(-time.Hour), 1}, {at(-30 * time.Hour), 1}, {at(-60 * time.Hour), 1}},
		insertedAttempts: 3,
	})
}

// testOlderCallDayKept checks that the calls kept of an item (KeepCalls
// of some contacts or of the pool, DetachPool) keep its older calling
// day's count too, that CampaignItems returns it, and that an item whose
// only counted calls are of that day is kept.
func testOlderCallDayKept(t *testing.T, b *bundle) {
	testLaterCallDayKept(t, b, laterCallDayKept{
		day:      2,
		attempts: 4,
		days:     []dayCount{{at(time.Hour), 1}, {at(-20 * time.Hour), 1}, {at(-44 * time.Hour), 2}},
		alone:    at(-44 * time.Hour),
	})
}

// callDay is one of the calling days an item counts: its name in
// messages and the item's fields that hold its count.
type callDay struct {
	name   string
	fields func(*pool.Item) (*time.Time, *int)
}

// callDays are the calling days an item counts, latest first.
var callDays = []callDay{
	{"latest", func(it *pool.Item) (*time.Time, *int) { return &it.CallAt, &it.CallsToday }},
	{"previous", func(it *pool.Item) (*time.Time, *int) { return &it.PrevCallAt, &it.PrevCallsToday }},
	{"older", func(it *pool.Item) (*time.Time, *int) { return &it.OlderCallAt, &it.OlderCallsToday }},
}

// dayCount is the count of one calling day: its latest counted call and
// the day's calls.
type dayCount struct {
	at time.Time
	n  int
}

// setCallDays sets it's counts of days, latest first, as callDays.
func setCallDays(it *pool.Item, days ...dayCount) {
	for i, d := range days {
		when, n := callDays[i].fields(it)
		*when, *n = d.at, d.n
	}
}

// requireCallDay checks that it counts want on day.
func requireCallDay(t *testing.T, want dayCount, it pool.Item, day callDay) {
	t.Helper()
	when, n := day.fields(&it)
	require.Equal(t, want.at, *when, "the %s day", day.name)
	require.Equal(t, want.n, *n, "the %s day", day.name)
}

// laterCallDayRoundTrip is what testLaterCallDayRoundTrip stores of the
// calling day callDays[day] and of the days after it (each list latest
// first, as callDays, through that day).
type laterCallDayRoundTrip struct {
	day int
	// updated and updatedAttempts are items[0]'s, stored by UpdateItem
	// (with CallToken 1).
	updated         []dayCount
	updatedAttempts int
	// updatedTogether are items[1]'s and items[2]'s, stored by one
	// UpdateItems.
	updatedTogether [2][]dayCount
	// inserted and insertedAttempts are a Completed item's, stored by
	// InsertItems.
	inserted         []dayCount
	insertedAttempts int
}

// testLaterCallDayRoundTrip checks that the count of an item's calling
// day r.day (1 or later) is stored by InsertItems, UpdateItem and
// UpdateItems, apart from the later days', and returned by every method
// that reads items; a new item and a copy have none.
func testLaterCallDayRoundTrip(t *testing.T, b *bundle, r laterCallDayRoundTrip) {
	day := callDays[r.day]
	p := b.insertPool() // FIFO
	items := b.insertItems(p.UUID, pending(4))
	for _, it := range items {
		requireCallDay(t, dayCount{}, it, day)
	}

	setCallDays(&items[0], r.updated...)
	items[0].CallToken, items[0].Attempts = 1, r.updatedAttempts
	b.update(items[0])

	from := []pool.Status{items[1].Status, items[2].Status}
	setCallDays(&items[1], r.updatedTogether[0]...)
	setCallDays(&items[2], r.updatedTogether[1]...)
	b.write(func(tx store.Tx) error {
		return tx.UpdateItems(b.ctx, store.Change{From: from[0], Item: items[1]}, store.Change{From: from[1], Item: items[2]})
	})

	// InsertItems stores them too.
	inserted := pending(1)
	inserted[0].Status, inserted[0].Attempts = pool.StatusCompleted, r.insertedAttempts
	setCallDays(&inserted[0], r.inserted...)
	inserted[0].CompletedAt = ptr(at(-time.Hour))
	inserted[0].AddedAt = at(10)
	items = append(items, b.insertItems(p.UUID, inserted)...)
	requireCallDay(t, r.inserted[r.day], items[4], day)

	for _, it := range items {
		require.Equal(t, it, b.item(it.ID), "ItemByID %d", it.ID)
		require.Equal(t, []pool.Item{it}, b.contactItems(it.ContactUUID, false), "ContactItems %d", it.ID)
	}
	require.Equal(t, items, b.allItems(p.UUID, ""), "Items")
	require.Equal(t, items[0], b.item(items[0].ID))
	for i, want := range r.updated { // each day apart from the others
		requireCallDay(t, want, b.item(items[0].ID), callDays[i])
	}

	// Back to none.
	when, n := day.fields(&items[0])
	*when, *n = time.Time{}, 0
	b.update(items[0])
	require.Equal(t, items[0], b.item(items[0].ID))

	q := b.insertPool()
	b.write(func(tx store.Tx) error { _, err := tx.CopyItems(b.ctx, p.UUID, q.UUID, at(time.Hour)); return err })
	for _, it := range b.allItems(q.UUID, "") {
		when, n := day.fields(&it)
		require.Zero(t, *when, "a copy")
		require.Zero(t, *n, "a copy")
	}
}

// laterCallDayKept is what testLaterCallDayKept stores of the calling day
// callDays[day] and of the days after it.
type laterCallDayKept struct {
	day int
	// attempts and days (latest first, as callDays, through day) are a
	// Failed item's, its Token and CallToken attempts.
	attempts int
	days     []dayCount
	// alone is the day's latest call of the items whose only counted
	// call is of that day.
	alone time.Time
}

// testLaterCallDayKept checks that the calls kept of an item (KeepCalls
// of some contacts or of the pool, DetachPool) keep the count of its
// calling day r.day (1 or later) too, that CampaignItems returns it, and
// that an item whose only counted calls are of that day is kept.
func testLaterCallDayKept(t *testing.T, b *bundle, r laterCallDayKept) {
	day := callDays[r.day]
	// alone gives an item one call counted on r.alone, its later days'
	// calls given back.
	alone := func(it *pool.Item) {
		it.CallAt = at(time.Hour)
		when, n := day.fields(it)
		*when, *n = r.alone, 1
	}
	c, d, e, f := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	p1, p2, p3 := b.insertPool(), b.insertPool(), b.insertPool()
	k := b.insertCampaign(newCampaign(nil))
	b.attachAll(k.UUID, p1, p2, p3)
	items := b.insertItems(p1.UUID, []pool.Item{
		{ContactUUID: c, Status: pool.StatusPending, AddedAt: t0},
		{ContactUUID: d, Status: pool.StatusPending, AddedAt: t0},
	})
	b.set(items, 0, func(it *pool.Item) {
		it.Status, it.Attempts, it.Token = pool.StatusFailed, r.attempts, int64(r.attempts)
		setCallDays(it, r.days...)
		it.CallToken = int64(r.attempts)
	})
	b.set(items, 1, alone) // requeued, its later days' calls given back: the day alone
	items[0], items[1] = b.item(items[0].ID), b.item(items[1].ID)
	require.Zero(t, items[1].Attempts)
	for _, later := range callDays[:r.day] {
		_, n := later.fields(&items[1])
		require.Zero(t, *n, "the %s day", later.name)
	}

	b.keepCalls(p1.UUID, c)
	require.ElementsMatch(t, []pool.Item{kept(items[0])}, b.campaignItems(false, k.UUID, p1.UUID, c))
	got := b.campaignItems(true, k.UUID, p1.UUID, c)[0]
	_, n := day.fields(&got)
	require.Equal(t, r.days[r.day].n, *n)
	b.keepCalls(p1.UUID) // the rest of the pool
	require.ElementsMatch(t, []pool.Item{kept(items[1])}, b.campaignItems(true, k.UUID, p1.UUID, d),
		"the %s day's count alone is kept", day.name)

	// DetachPool keeps them too.
	in := b.insertItems(p2.UUID, []pool.Item{{ContactUUID: e, Status: pool.StatusPending, AddedAt: t0}})
	b.set(in, 0, alone)
	in[0] = b.item(in[0].ID)
	b.write(func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, k.UUID, p2.UUID); return err })
	require.ElementsMatch(t, []pool.Item{kept(in[0])}, b.campaignItems(false, k.UUID, p3.UUID, e))

	// KeepCalls of a contact keeps the day's count alone too.
	in = b.insertItems(p3.UUID, []pool.Item{{ContactUUID: f, Status: pool.StatusPending, AddedAt: t0}})
	b.set(in, 0, alone)
	in[0] = b.item(in[0].ID)
	b.keepCalls(p3.UUID, f)
	require.ElementsMatch(t, []pool.Item{kept(in[0])}, b.campaignItems(true, k.UUID, p3.UUID, f))
}

// testContactsReadOnly checks that the writes of the contact lists are
// refused in a read transaction and change nothing.
func testContactsReadOnly(t *testing.T, b *bundle) {
	p := b.insertPool()
	it := b.insertItems(p.UUID, pending(1))[0]
	c := uuid.New()
	for name, w := range map[string]func(tx store.Tx) error{
		"AddDNC":    func(tx store.Tx) error { _, err := tx.AddDNC(b.ctx, t0, c); return err },
		"RemoveDNC": func(tx store.Tx) error { _, err := tx.RemoveDNC(b.ctx, c); return err },
		"OptOut":    func(tx store.Tx) error { _, err := tx.OptOut(b.ctx, c, t0); return err },
		"InsertEscalation": func(tx store.Tx) error {
			_, _, err := tx.InsertEscalation(b.ctx, escalation(it, 3, t0))
			return err
		},
	} {
		require.ErrorIs(t, b.st.Read(b.ctx, w), store.ErrReadOnly, name)
		// The transaction is still usable for reads after the refusal.
		b.read(func(tx store.Tx) error {
			require.ErrorIs(t, w(tx), store.ErrReadOnly, name)
			got, err := tx.OnDNC(b.ctx, c)
			require.Empty(t, got)
			return err
		})
	}
	require.Empty(t, b.allDNC())
	require.Empty(t, b.optedOut(c))
	require.Empty(t, b.escalations(campaign.EscalationQuery{}))
}

// contactState is everything the suite can read of the contact lists.
type contactState struct {
	dnc         []campaign.DNCEntry
	onDNC, outs map[uuid.UUID]bool
	escalations []campaign.Escalation
}

func (b *bundle) contactState(contacts ...uuid.UUID) contactState {
	b.t.Helper()
	return contactState{b.allDNC(), b.onDNC(contacts...), b.optedOut(contacts...),
		b.escalations(campaign.EscalationQuery{})}
}

// testContactsRollback checks that a write transaction that fails leaves
// the contact lists, and the calling days of items, as they were.
func testContactsRollback(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(3))
	a, c, d := uuid.New(), uuid.New(), uuid.New()
	b.addDNC(at(1), a)
	b.optOut(d, at(1))
	first, _ := b.insertEscalation(escalation(items[0], 3, at(1)))
	before := b.contactState(a, c, d)
	require.Equal(t, []campaign.Escalation{first}, before.escalations)

	boom := errors.New("boom")
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		if _, err := tx.AddDNC(b.ctx, at(2), c, a); err != nil {
			return err
		}
		if _, err := tx.RemoveDNC(b.ctx, a); err != nil {
			return err
		}
		if _, err := tx.OptOut(b.ctx, c, at(2)); err != nil {
			return err
		}
		if _, _, err := tx.InsertEscalation(b.ctx, escalation(items[1], 3, at(2))); err != nil {
			return err
		}
		counted := items[2]
		counted.CallAt, counted.CallsToday, counted.CallToken = at(2), 1, 1
		if err := tx.UpdateItem(b.ctx, items[2].Status, counted); err != nil {
			return err
		}
		return boom
	})
	require.ErrorIs(t, err, boom)
	require.Equal(t, before, b.contactState(a, c, d), "nothing changed")
	require.Equal(t, items[2], b.item(items[2].ID), "nor the item's calling day")

	// What the failed transaction wrote is not there to be found.
	require.Equal(t, 1, b.addDNC(at(3), c))
	require.True(t, b.optOut(c, at(3)))
	e, added := b.insertEscalation(escalation(items[1], 3, at(3)))
	require.True(t, added)
	require.Greater(t, e.ID, first.ID)
	require.Equal(t, []campaign.Escalation{first, e}, b.escalations(campaign.EscalationQuery{}))
}

// testContactsSavepoint checks that a failing savepoint undoes its writes
// to the contact lists, and only those.
func testContactsSavepoint(t *testing.T, b *bundle) {
	p := b.insertPool()
	items := b.insertItems(p.UUID, pending(2))
	a, c, d := uuid.New(), uuid.New(), uuid.New()
	boom := errors.New("boom")
	var kept []campaign.Escalation
	// Write may run its function again: it gathers what it saw afresh on
	// every run, and the checks come once it returns.
	var spErr error
	var on, outs map[uuid.UUID]bool
	var added []bool
	b.write(func(tx store.Tx) (err error) {
		kept, added = nil, nil
		if _, err := tx.AddDNC(b.ctx, at(1), a); err != nil {
			return err
		}
		spErr = tx.Savepoint(b.ctx, func(tx store.Tx) error {
			if _, err := tx.AddDNC(b.ctx, at(2), c); err != nil {
				return err
			}
			if _, err := tx.RemoveDNC(b.ctx, a); err != nil {
				return err
			}
			if _, err := tx.OptOut(b.ctx, d, at(2)); err != nil {
				return err
			}
			if _, _, err := tx.InsertEscalation(b.ctx, escalation(items[0], 3, at(2))); err != nil {
				return err
			}
			return boom
		})

		// The transaction goes on, without what the savepoint wrote.
		if on, err = tx.OnDNC(b.ctx, a, c); err != nil {
			return err
		}
		if outs, err = tx.OptedOut(b.ctx, d); err != nil {
			return err
		}
		for _, it := range items {
			e, ok, err := tx.InsertEscalation(b.ctx, escalation(it, 3, at(3)))
			if err != nil {
				return err
			}
			added = append(added, ok)
			kept = append(kept, e)
		}
		return nil
	})
	require.ErrorIs(t, spErr, boom)
	require.Equal(t, setOf(a), on)
	require.Empty(t, outs)
	for i, it := range items {
		require.True(t, added[i], "item %d", it.ID)
	}
	require.Equal(t, []campaign.DNCEntry{entry(a, at(1))}, b.allDNC())
	require.Empty(t, b.optedOut(d))
	require.Greater(t, kept[1].ID, kept[0].ID)
	require.Equal(t, kept, b.escalations(campaign.EscalationQuery{}))
}

// testDNCTies checks that contacts added at the same time are listed in
// the order of their UUIDs, whatever the order they were added in: pages
// read one after another neither repeat nor miss one.
func testDNCTies(t *testing.T, b *bundle) {
	cs := sortedUUIDs(uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New())
	var want []campaign.DNCEntry
	for i := range cs {
		b.addDNC(at(time.Second), cs[len(cs)-1-i]) // the last first, one by one
		want = append(want, entry(cs[i], at(time.Second)))
	}
	got, _ := b.dnc(campaign.DNCQuery{})
	require.Equal(t, want, got)
	var pages []campaign.DNCEntry
	for page := 1; page <= 3; page++ {
		got, _ := b.dnc(campaign.DNCQuery{Page: page, PerPage: 2})
		pages = append(pages, got...)
	}
	require.Equal(t, want, pages)
}
