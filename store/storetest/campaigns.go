package storetest

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

func campaignTests() []test {
	return []test{
		{"Rules/RoundTrip", testRulesRoundTrip},
		{"Rules/ErrNotFound", testRulesNotFound},
		{"Rules/List", testRulesList},
		{"Rules/TiesInUUIDOrder", testRulesTies},
		{"Campaigns/RoundTrip", testCampaignsRoundTrip},
		{"Campaigns/ErrNotFound", testCampaignsNotFound},
		{"Campaigns/AttachDetach", testCampaignsAttach},
		{"Campaigns/PoolCampaignsOrder", testPoolCampaignsOrder},
		{"Campaigns/PoolGovernors", testPoolGovernors},
		{"Campaigns/RulePools", testRulePools},
		{"Campaigns/SeenInTheirTransaction", testCampaignsInTx},
		{"Campaigns/DeleteDetaches", testCampaignsDeleteDetaches},
		{"Campaigns/List", testCampaignsList},
		{"Campaigns/ListFiltersTogether", testCampaignsListFilters},
		{"Campaigns/TiesInUUIDOrder", testCampaignsTies},
	}
}

// fullRules returns a call rule using every field and a text rule.
func fullRules() []campaign.Rule {
	tokyo := time.FixedZone("Tokyo", 9*3600)
	end := campaign.Clock(20*60 + 30)
	return []campaign.Rule{
		{
			UUID: uuid.New(), Name: "Évenings ✓", Type: campaign.Call, MaxCallsPerDay: 2, MaxTotalCalls: 7,
			RetryIntervalMinutes: ptr(45), StartTime: 17 * 60, EndTime: &end, DNCCheck: true, RemoveOnOptOut: false,
			EscalationAfterFailedAttempts: ptr(3), EscalationType: ptr("email"), EscalationTarget: ptr("ops@example.com"),
			CreatedAt: at(1).In(tokyo), UpdatedAt: at(2),
		},
		{
			UUID: uuid.New(), Name: "Reminder", Type: campaign.Text, MaxCallsPerDay: 1, MaxTotalCalls: 1,
			StartTime: 0, DNCCheck: false, RemoveOnOptOut: true, CreatedAt: at(3), UpdatedAt: at(3),
		},
	}
}

func utcRule(r campaign.Rule) campaign.Rule {
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r
}

func (b *bundle) insertRule(r campaign.Rule) campaign.Rule {
	b.t.Helper()
	b.write(func(tx store.Tx) error { return tx.InsertRule(b.ctx, r) })
	return utcRule(r)
}

func (b *bundle) getRule(id uuid.UUID) campaign.Rule {
	b.t.Helper()
	var r campaign.Rule
	b.read(func(tx store.Tx) (err error) { r, err = tx.Rule(b.ctx, id); return err })
	return r
}

func testRulesRoundTrip(t *testing.T, b *bundle) {
	for _, r := range fullRules() {
		want := b.insertRule(r)
		require.Equal(t, want, b.getRule(r.UUID))
	}
	r := fullRules()[0]
	b.insertRule(r)
	err := b.st.Write(b.ctx, func(tx store.Tx) error { return tx.InsertRule(b.ctx, r) })
	require.ErrorIs(t, err, store.ErrConflict)

	// An update stores every setting, not the creation time.
	r.Name, r.MaxTotalCalls, r.EndTime, r.EscalationType, r.RetryIntervalMinutes = "Mornings", 2, nil, nil, nil
	r.StartTime, r.DNCCheck = 8*60, false
	r.Type, r.MaxCallsPerDay, r.RemoveOnOptOut = campaign.Text, 3, true
	r.EscalationAfterFailedAttempts, r.EscalationTarget = ptr(5), ptr("night@example.com")
	r.CreatedAt, r.UpdatedAt = at(100), at(200)
	b.write(func(tx store.Tx) error { return tx.UpdateRule(b.ctx, r) })
	want := utcRule(r)
	want.CreatedAt = fullRules()[0].CreatedAt.UTC()
	got := b.getRule(r.UUID)
	want.CreatedAt = got.CreatedAt // the first insert's, kept
	require.Equal(t, want, got)
	require.True(t, got.CreatedAt.Equal(at(1)))

	b.write(func(tx store.Tx) error { return tx.DeleteRule(b.ctx, r.UUID) })
	err = b.st.Read(b.ctx, func(tx store.Tx) error { _, err := tx.Rule(b.ctx, r.UUID); return err })
	require.ErrorIs(t, err, store.ErrNotFound)
}

func testRulesNotFound(t *testing.T, b *bundle) {
	id := uuid.New()
	r := fullRules()[0]
	r.UUID = id
	for name, fn := range map[string]func(tx store.Tx) error{
		"Rule":       func(tx store.Tx) error { _, err := tx.Rule(b.ctx, id); return err },
		"UpdateRule": func(tx store.Tx) error { return tx.UpdateRule(b.ctx, r) },
		"DeleteRule": func(tx store.Tx) error { return tx.DeleteRule(b.ctx, id) },
		"LockRule":   func(tx store.Tx) error { return tx.LockRule(b.ctx, id) },
	} {
		require.ErrorIs(t, b.st.Write(b.ctx, fn), store.ErrNotFound, name)
	}

	// A rule that exists is locked; in a read transaction, LockRule is a
	// write (the lock is held for one) and refused.
	known := b.insertRule(fullRules()[0])
	b.write(func(tx store.Tx) error { return tx.LockRule(b.ctx, known.UUID) })
	err := b.st.Read(b.ctx, func(tx store.Tx) error { return tx.LockRule(b.ctx, known.UUID) })
	require.ErrorIs(t, err, store.ErrReadOnly)
}

func (b *bundle) listRules(q campaign.RuleQuery) ([]uuid.UUID, int) {
	b.t.Helper()
	q, err := q.Normalize()
	require.NoError(b.t, err)
	var out []uuid.UUID
	var total int
	b.read(func(tx store.Tx) error {
		rs, n, err := tx.Rules(b.ctx, q)
		for _, r := range rs {
			out = append(out, r.UUID)
		}
		total = n
		return err
	})
	return out, total
}

func testRulesList(t *testing.T, b *bundle) {
	rs := fullRules()
	a := b.insertRule(rs[0]) // at(1)
	text := b.insertRule(rs[1])
	c := campaign.Rule{UUID: uuid.New(), Name: "Callbacks", Type: campaign.Call, MaxCallsPerDay: 1, MaxTotalCalls: 1,
		EscalationTarget: ptr("Team ÉCOLE"), CreatedAt: at(2), UpdatedAt: at(2)}
	b.insertRule(c)

	got, total := b.listRules(campaign.RuleQuery{})
	require.Equal(t, []uuid.UUID{a.UUID, c.UUID, text.UUID}, got, "oldest first")
	require.Equal(t, 3, total)
	got, total = b.listRules(campaign.RuleQuery{Type: "TEXT"})
	require.Equal(t, []uuid.UUID{text.UUID}, got)
	require.Equal(t, 1, total)
	for search, want := range map[string][]uuid.UUID{
		"évenings": {a.UUID},         // name, another case
		"EMAIL":    {a.UUID},         // escalation type
		"@example": {a.UUID},         // escalation target
		"école":    {c.UUID},         //
		"e":        {a.UUID, c.UUID}, // (text has "Reminder")
		"nothing":  nil,
	} {
		got, total := b.listRules(campaign.RuleQuery{Search: search})
		if search == "e" {
			want = []uuid.UUID{a.UUID, c.UUID, text.UUID}
		}
		require.Equal(t, want, got, search)
		require.Equal(t, len(want), total, search)
	}
	got, total = b.listRules(campaign.RuleQuery{Page: 2, PerPage: 2})
	require.Equal(t, []uuid.UUID{text.UUID}, got)
	require.Equal(t, 3, total)
}

// testRulesTies: rules made at the same instant are listed in UUID order,
// on one page and across pages, whatever the order they were made in.
func testRulesTies(t *testing.T, b *bundle) {
	ids := sortedUUIDs(uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New())
	for i := range ids {
		r := fullRules()[1]
		r.UUID, r.CreatedAt = ids[len(ids)-1-i], at(time.Second) // the last first
		b.insertRule(r)
	}
	got, _ := b.listRules(campaign.RuleQuery{})
	require.Equal(t, ids, got)
	var pages []uuid.UUID
	for page := 1; page <= 3; page++ {
		got, _ := b.listRules(campaign.RuleQuery{Page: page, PerPage: 2})
		pages = append(pages, got...)
	}
	require.Equal(t, ids, pages)
}

// testCampaignsTies: campaigns made at the same instant are in UUID order,
// whatever the order they were made and attached in: in Campaigns, on one
// page and across pages, and in PoolCampaigns, read in a read transaction
// and in a write transaction (with the pool's lock, and after a write to
// campaigns).
func testCampaignsTies(t *testing.T, b *bundle) {
	p := b.insertPool()
	ids := sortedUUIDs(uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New())
	for i := range ids {
		c := newCampaign(nil, func(c *campaign.Campaign) { c.UUID, c.CreatedAt = ids[len(ids)-1-i], at(time.Second) })
		b.insertCampaign(c) // the last first
		b.attachAll(c.UUID, p)
	}
	all, _ := b.listCampaigns(campaign.Query{})
	require.Equal(t, ids, campaignIDs(all))
	var pages []uuid.UUID
	for page := 1; page <= 3; page++ {
		got, _ := b.listCampaigns(campaign.Query{Page: page, PerPage: 2})
		pages = append(pages, campaignIDs(got)...)
	}
	require.Equal(t, ids, pages)

	of := func(tx store.Tx) []uuid.UUID {
		cs, err := tx.PoolCampaigns(b.ctx, p.UUID)
		require.NoError(t, err)
		return campaignIDs(cs)
	}
	b.read(func(tx store.Tx) error {
		require.Equal(t, ids, of(tx), "read transaction")
		return nil
	})
	// Write may run its function again: it only gathers what it saw, and
	// the checks come once it returns.
	var withLock, afterWrite []uuid.UUID
	b.write(func(tx store.Tx) error {
		cs, err := tx.PoolCampaigns(b.ctx, p.UUID)
		if err != nil {
			return err
		}
		withLock = campaignIDs(cs)
		c, err := tx.Campaign(b.ctx, ids[0])
		if err != nil {
			return err
		}
		c.Name = "Renamed"
		if err := tx.UpdateCampaign(b.ctx, c); err != nil {
			return err
		}
		if cs, err = tx.PoolCampaigns(b.ctx, p.UUID); err != nil {
			return err
		}
		afterWrite = campaignIDs(cs)
		return nil
	})
	require.Equal(t, ids, withLock, "write transaction, with the lock")
	require.Equal(t, ids, afterWrite, "write transaction, after a write to campaigns")
}

func newCampaign(rule *uuid.UUID, mods ...func(*campaign.Campaign)) campaign.Campaign {
	c := campaign.Campaign{UUID: uuid.New(), Name: "Campaign " + uuid.NewString()[:8], Status: campaign.Draft,
		RuleUUID: rule, TimeZone: "Europe/Paris", CreatedAt: t0, UpdatedAt: t0}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func (b *bundle) insertCampaign(c campaign.Campaign) campaign.Campaign {
	b.t.Helper()
	b.write(func(tx store.Tx) error { return tx.InsertCampaign(b.ctx, c) })
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.PoolUUIDs = []uuid.UUID{}
	return c
}

func (b *bundle) getCampaign(id uuid.UUID) campaign.Campaign {
	b.t.Helper()
	var c campaign.Campaign
	b.read(func(tx store.Tx) (err error) { c, err = tx.Campaign(b.ctx, id); return err })
	return c
}

func testCampaignsRoundTrip(t *testing.T, b *bundle) {
	r := b.insertRule(fullRules()[0])
	with := b.insertCampaign(newCampaign(&r.UUID))
	without := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.TimeZone = "" }))
	require.Equal(t, with, b.getCampaign(with.UUID))
	require.Equal(t, without, b.getCampaign(without.UUID))
	err := b.st.Write(b.ctx, func(tx store.Tx) error {
		return tx.InsertCampaign(b.ctx, newCampaign(nil, func(c *campaign.Campaign) { c.UUID = with.UUID }))
	})
	require.ErrorIs(t, err, store.ErrConflict)

	// An update stores name, status, rule and time zone.
	other := b.insertRule(fullRules()[1])
	with.Name, with.Status, with.RuleUUID, with.TimeZone, with.UpdatedAt = "Renamed", campaign.InProcess, &other.UUID, "Asia/Kolkata", at(9)
	b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, with) })
	require.Equal(t, with, b.getCampaign(with.UUID))
	with.RuleUUID = nil
	b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, with) })
	require.Nil(t, b.getCampaign(with.UUID).RuleUUID, "the rule taken away")
}

func testCampaignsNotFound(t *testing.T, b *bundle) {
	p := b.insertPool()
	known := b.insertCampaign(newCampaign(nil))
	unknownRule := uuid.New()
	id := uuid.New()
	for name, fn := range map[string]func(tx store.Tx) error{
		"Campaign": func(tx store.Tx) error { _, err := tx.Campaign(b.ctx, id); return err },
		"UpdateCampaign": func(tx store.Tx) error {
			return tx.UpdateCampaign(b.ctx, newCampaign(nil, func(c *campaign.Campaign) { c.UUID = id }))
		},
		"DeleteCampaign": func(tx store.Tx) error { return tx.DeleteCampaign(b.ctx, id) },
		"AttachUnknownCampaign": func(tx store.Tx) error {
			_, err := tx.AttachPool(b.ctx, id, p.UUID)
			return err
		},
		"AttachUnknownPool": func(tx store.Tx) error { _, err := tx.AttachPool(b.ctx, known.UUID, uuid.New()); return err },
		"DetachUnknownPool": func(tx store.Tx) error { _, err := tx.DetachPool(b.ctx, known.UUID, uuid.New()); return err },
		"PoolCampaigns":     func(tx store.Tx) error { _, err := tx.PoolCampaigns(b.ctx, uuid.New()); return err },
		"PoolGovernors":     func(tx store.Tx) error { _, _, err := tx.PoolGovernors(b.ctx, uuid.New()); return err },
		"InsertWithUnknownRule": func(tx store.Tx) error {
			return tx.InsertCampaign(b.ctx, newCampaign(&unknownRule))
		},
		"UpdateWithUnknownRule": func(tx store.Tx) error {
			c := known
			c.RuleUUID = &unknownRule
			return tx.UpdateCampaign(b.ctx, c)
		},
	} {
		err := b.st.Write(b.ctx, fn)
		require.ErrorIs(t, err, store.ErrNotFound, name)
	}
	require.Equal(t, known, b.getCampaign(known.UUID), "unchanged")
}

func (b *bundle) poolCampaigns(id uuid.UUID) []uuid.UUID {
	b.t.Helper()
	var out []uuid.UUID
	b.read(func(tx store.Tx) error {
		cs, err := tx.PoolCampaigns(b.ctx, id)
		for _, c := range cs {
			require.Empty(b.t, c.PoolUUIDs, "PoolCampaigns leaves PoolUUIDs out")
			out = append(out, c.UUID)
		}
		return err
	})
	return out
}

// governors returns what PoolGovernors answers for pool id in a read
// transaction (see governorsIn).
func (b *bundle) governors(id uuid.UUID) (gov []uuid.UUID, attached bool) {
	b.t.Helper()
	b.read(func(tx store.Tx) error {
		gov, attached = b.governorsIn(tx, id)
		return nil
	})
	return gov, attached
}

// governorsIn returns what PoolGovernors answers for pool id in tx, and
// requires it to agree with PoolCampaigns: the governing campaigns among
// those attached, in their order, whole but for PoolUUIDs; attached when
// there is any.
func (b *bundle) governorsIn(tx store.Tx, id uuid.UUID) ([]uuid.UUID, bool) {
	b.t.Helper()
	g, err := b.poolGovernorsIn(tx, id)
	require.NoError(b.t, err)
	return b.requireGovernors(g)
}

// poolGovernors is what PoolCampaigns and PoolGovernors answer for a
// pool in one transaction.
type poolGovernors struct {
	all, gov []campaign.Campaign
	attached bool
}

// poolGovernorsIn reads PoolCampaigns and PoolGovernors for pool id in
// tx, for requireGovernors to check once the transaction is over (a write
// transaction's function may run again: it must not fail the test).
func (b *bundle) poolGovernorsIn(tx store.Tx, id uuid.UUID) (g poolGovernors, err error) {
	if g.all, err = tx.PoolCampaigns(b.ctx, id); err != nil {
		return g, err
	}
	g.gov, g.attached, err = tx.PoolGovernors(b.ctx, id)
	return g, err
}

// requireGovernors requires PoolGovernors to agree with PoolCampaigns in
// g (see governorsIn), and returns the governors' IDs and attached.
func (b *bundle) requireGovernors(g poolGovernors) ([]uuid.UUID, bool) {
	b.t.Helper()
	var want []campaign.Campaign
	for _, c := range g.all {
		if c.Status.Governs() {
			want = append(want, c)
		}
	}
	if len(want)+len(g.gov) > 0 {
		require.Equal(b.t, want, g.gov, "the governing ones of PoolCampaigns")
	}
	require.Equal(b.t, len(g.all) > 0, g.attached, "attached")
	return campaignIDs(g.gov), g.attached
}

// testPoolGovernors: PoolGovernors follows a campaign's status through
// every change (UpdateCampaign), an attach to a campaign of each status,
// a detach and a deletion; finds the governing campaign among many
// finished ones; orders several by CreatedAt then UUID; and tells a pool
// attached to finished campaigns only from one attached to none.
func testPoolGovernors(t *testing.T, b *bundle) {
	p := b.insertPool()
	gov, attached := b.governors(p.UUID)
	require.Empty(t, gov)
	require.False(t, attached, "a pool of no campaign")

	// An attach takes the campaign's status, whichever it is.
	for _, st := range campaign.Statuses() {
		q := b.insertPool()
		c := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.Status = st }))
		b.attachAll(c.UUID, q)
		gov, attached := b.governors(q.UUID)
		require.True(t, attached, st)
		if st.Governs() {
			require.Equal(t, []uuid.UUID{c.UUID}, gov, st)
		} else {
			require.Empty(t, gov, st)
		}
	}

	// A campaign's status changes, each in a transaction of its own; a
	// change of its name keeps what it is.
	c := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(5) }))
	b.attachAll(c.UUID, p)
	for _, st := range []campaign.Status{campaign.Draft, campaign.InProcess, campaign.Paused, campaign.InProcess,
		campaign.Paused, campaign.Completed, campaign.InProcess, campaign.Archived} {
		c.Status = st
		b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, c) })
		gov, attached := b.governors(p.UUID)
		require.True(t, attached)
		if st.Governs() {
			require.Equal(t, []uuid.UUID{c.UUID}, gov, st)
		} else {
			require.Empty(t, gov, st)
		}
		c.Name += "!"
		b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, c) })
		again, _ := b.governors(p.UUID)
		require.Equal(t, gov, again, "%s, renamed", st)
	}
	gov, attached = b.governors(p.UUID)
	require.Empty(t, gov)
	require.True(t, attached, "attached to an archived campaign")

	// Among many finished campaigns, the running one.
	for i := range 20 {
		f := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) {
			c.Status = campaign.Completed
			c.CreatedAt = at(time.Duration(i))
		}))
		b.attachAll(f.UUID, p)
	}
	run := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(7) }))
	b.attachAll(run.UUID, p)
	run.Status = campaign.InProcess
	b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, run) })
	gov, _ = b.governors(p.UUID)
	require.Equal(t, []uuid.UUID{run.UUID}, gov)

	// Two governing (the engine never lets it happen; the store answers
	// both), by CreatedAt then UUID.
	early := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.Status = campaign.Paused; c.CreatedAt = at(6) }))
	b.attachAll(early.UUID, p)
	gov, _ = b.governors(p.UUID)
	require.Equal(t, []uuid.UUID{early.UUID, run.UUID}, gov)

	// Detached, deleted: governing no more, and attached only to the
	// finished ones.
	b.write(func(tx store.Tx) error {
		_, err := tx.DetachPool(b.ctx, early.UUID, p.UUID)
		return err
	})
	gov, _ = b.governors(p.UUID)
	require.Equal(t, []uuid.UUID{run.UUID}, gov)
	b.write(func(tx store.Tx) error { return tx.DeleteCampaign(b.ctx, run.UUID) })
	gov, attached = b.governors(p.UUID)
	require.Empty(t, gov)
	require.True(t, attached)

	// Attached again to a running campaign it left, it is governed again.
	b.attachAll(early.UUID, p)
	gov, _ = b.governors(p.UUID)
	require.Equal(t, []uuid.UUID{early.UUID}, gov)
}

// testRulePools: RulePools gives the pools of the campaigns a rule
// governs, In Process or Paused, that hold a lease ended at the instant
// asked (one that ends at it included), each once, and follows status
// changes and attachments in its own transaction; nothing of other
// statuses, other rules or an unknown rule, no pool whose leases have not
// ended nor one whose lease that ended is no longer in flight.
func testRulePools(t *testing.T, b *bundle) {
	r := b.insertRule(fullRules()[0])
	other := b.insertRule(fullRules()[1])
	endedBy := at(time.Hour)
	inFlight := func(st pool.Status, lease time.Time) pool.Item {
		return pool.Item{ContactUUID: uuid.New(), Status: st, Attempts: 1, StartedAt: ptr(t0), AddedAt: t0,
			Token: 1, LeaseExpiresAt: lease}
	}
	var governed []uuid.UUID
	campaignIn := func(rule uuid.UUID, st campaign.Status, pools int) campaign.Campaign {
		c := b.insertCampaign(newCampaign(&rule))
		for i := range pools {
			p := b.insertPool()
			b.write(func(tx store.Tx) error { _, err := tx.AttachPool(b.ctx, c.UUID, p.UUID); return err })
			c.PoolUUIDs = append(c.PoolUUIDs, p.UUID)
			// Pools 0, 2, …: a lease ended at endedBy, one not yet; pools
			// 1, 3, …: leases not ended, and a lease ended whose item was
			// settled since.
			if i%2 == 0 {
				b.insertItems(p.UUID, []pool.Item{inFlight(pool.StatusInCall, endedBy), inFlight(pool.StatusProcessing, endedBy.Add(1))})
				if rule == r.UUID && st.Governs() {
					governed = append(governed, p.UUID)
				}
				continue
			}
			its := b.insertItems(p.UUID, []pool.Item{inFlight(pool.StatusProcessing, endedBy.Add(1)), inFlight(pool.StatusProcessing, at(0))})
			settled := its[1]
			settled.Status, settled.CompletedAt, settled.LeaseExpiresAt = pool.StatusCompleted, ptr(t0), time.Time{}
			b.update(settled)
		}
		c.Status = st
		b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, c) })
		return c
	}
	for _, st := range campaign.Statuses() {
		campaignIn(r.UUID, st, 2)
		campaignIn(other.UUID, st, 1)
	}
	campaignIn(r.UUID, campaign.InProcess, 0)
	require.Len(t, governed, 2, "In Process and Paused, one pool each with a lease ended")
	rulePools := func(tx store.Tx, rule uuid.UUID) []uuid.UUID {
		ps, err := tx.RulePools(b.ctx, rule, endedBy)
		require.NoError(t, err)
		return ps
	}
	b.read(func(tx store.Tx) error {
		require.ElementsMatch(t, governed, rulePools(tx, r.UUID))
		require.Empty(t, rulePools(tx, uuid.New()), "an unknown rule")
		ps, err := tx.RulePools(b.ctx, r.UUID, endedBy.Add(-1))
		require.NoError(t, err)
		require.Empty(t, ps, "no lease ended a nanosecond before")
		return nil
	})

	// In a write transaction: a Draft that starts, sharing a pool with a
	// running campaign, counts it once; a running one that completes
	// leaves.
	draft := campaignIn(r.UUID, campaign.Draft, 1)
	running := campaignIn(r.UUID, campaign.InProcess, 1)
	// Write may run its function again: it only gathers what RulePools
	// answered, and the checks come once it returns.
	var completed, again []uuid.UUID
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.AttachPool(b.ctx, draft.UUID, running.PoolUUIDs[0]); err != nil {
			return err
		}
		draft.Status = campaign.InProcess
		if err := tx.UpdateCampaign(b.ctx, draft); err != nil {
			return err
		}
		running.Status = campaign.Completed
		if err := tx.UpdateCampaign(b.ctx, running); err != nil {
			return err
		}
		if completed, err = tx.RulePools(b.ctx, r.UUID, endedBy); err != nil {
			return err
		}
		running.Status = campaign.InProcess
		if err := tx.UpdateCampaign(b.ctx, running); err != nil {
			return err
		}
		again, err = tx.RulePools(b.ctx, r.UUID, endedBy)
		return err
	})
	// governed holds running's pool already.
	want := append(slices.Clone(governed), draft.PoolUUIDs[0])
	require.ElementsMatch(t, want, completed)
	require.ElementsMatch(t, want, again, "a pool of two governing campaigns, once")
}

// testPoolCampaignsOrder: a pool's campaigns come ordered by CreatedAt,
// then by UUID (byte by byte) among those created at the same instant,
// whatever the order they were created and attached in.
func testPoolCampaignsOrder(t *testing.T, b *bundle) {
	p := b.insertPool()
	ids := make([]uuid.UUID, 6)
	for i := range ids {
		ids[i] = uuid.New()
	}
	created := func(i int) time.Time { return at(time.Duration(i/3) * time.Second) } // three a second
	for _, i := range []int{4, 1, 5, 0, 3, 2} {
		c := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.UUID, c.CreatedAt = ids[i], created(i) }))
		b.write(func(tx store.Tx) error { _, err := tx.AttachPool(b.ctx, c.UUID, p.UUID); return err })
	}
	want := slices.Clone(ids)
	slices.SortFunc(want, func(x, y uuid.UUID) int {
		i, j := slices.Index(ids, x), slices.Index(ids, y)
		if c := created(i).Compare(created(j)); c != 0 {
			return c
		}
		return bytes.Compare(x[:], y[:])
	})
	require.Equal(t, want, b.poolCampaigns(p.UUID))
}

func testCampaignsAttach(t *testing.T, b *bundle) {
	p1, p2, p3 := b.insertPool(), b.insertPool(), b.insertPool()
	c := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(1) }))
	d := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(2) }))
	attach := func(c campaign.Campaign, p pool.Pool) bool {
		var ok bool
		b.write(func(tx store.Tx) (err error) { ok, err = tx.AttachPool(b.ctx, c.UUID, p.UUID); return err })
		return ok
	}
	detach := func(c campaign.Campaign, p pool.Pool) bool {
		var ok bool
		b.write(func(tx store.Tx) (err error) { ok, err = tx.DetachPool(b.ctx, c.UUID, p.UUID); return err })
		return ok
	}
	require.True(t, attach(c, p2))
	require.True(t, attach(c, p1))
	require.False(t, attach(c, p2), "attached already")
	require.True(t, attach(c, p3))
	require.True(t, attach(d, p1))
	require.Equal(t, []uuid.UUID{p2.UUID, p1.UUID, p3.UUID}, b.getCampaign(c.UUID).PoolUUIDs, "in attachment order")
	require.Equal(t, []uuid.UUID{c.UUID, d.UUID}, b.poolCampaigns(p1.UUID), "oldest first")
	require.Empty(t, b.poolCampaigns(b.insertPool().UUID), "a pool of no campaign")

	require.True(t, detach(c, p1))
	require.False(t, detach(c, p1), "detached already")
	require.Equal(t, []uuid.UUID{p2.UUID, p3.UUID}, b.getCampaign(c.UUID).PoolUUIDs)
	require.Equal(t, []uuid.UUID{d.UUID}, b.poolCampaigns(p1.UUID))
	require.True(t, attach(c, p1))
	require.Equal(t, []uuid.UUID{p2.UUID, p3.UUID, p1.UUID}, b.getCampaign(c.UUID).PoolUUIDs, "attached again: last")
}

func testCampaignsDeleteDetaches(t *testing.T, b *bundle) {
	p1, p2 := b.insertPool(), b.insertPool()
	c := b.insertCampaign(newCampaign(nil))
	d := b.insertCampaign(newCampaign(nil))
	b.write(func(tx store.Tx) error {
		for _, pair := range [][2]uuid.UUID{{c.UUID, p1.UUID}, {c.UUID, p2.UUID}, {d.UUID, p1.UUID}} {
			if _, err := tx.AttachPool(b.ctx, pair[0], pair[1]); err != nil {
				return err
			}
		}
		return nil
	})
	b.write(func(tx store.Tx) error { return tx.DeleteCampaign(b.ctx, c.UUID) })
	require.Equal(t, []uuid.UUID{d.UUID}, b.poolCampaigns(p1.UUID))
	require.Empty(t, b.poolCampaigns(p2.UUID))
	err := b.st.Read(b.ctx, func(tx store.Tx) error { _, err := tx.Campaign(b.ctx, c.UUID); return err })
	require.True(t, errors.Is(err, store.ErrNotFound))

	b.write(func(tx store.Tx) error { return tx.DeletePool(b.ctx, p1.UUID) })
	require.Empty(t, b.getCampaign(d.UUID).PoolUUIDs, "a deleted pool is detached")
}

func (b *bundle) listCampaigns(q campaign.Query) ([]campaign.Campaign, int) {
	b.t.Helper()
	q, err := q.Normalize()
	require.NoError(b.t, err)
	var out []campaign.Campaign
	var total int
	b.read(func(tx store.Tx) (err error) {
		out, total, err = tx.Campaigns(b.ctx, q)
		return err
	})
	return out, total
}

func campaignIDs(cs []campaign.Campaign) []uuid.UUID {
	var out []uuid.UUID
	for _, c := range cs {
		out = append(out, c.UUID)
	}
	return out
}

func testCampaignsList(t *testing.T, b *bundle) {
	r := b.insertRule(fullRules()[0])
	p := b.insertPool()
	spring := b.insertCampaign(newCampaign(&r.UUID, func(c *campaign.Campaign) { c.Name = "Spring Drive"; c.CreatedAt = at(1) }))
	autumn := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) {
		c.Name, c.Status, c.CreatedAt = "Autumn drive", campaign.InProcess, at(2)
	}))
	école := b.insertCampaign(newCampaign(&r.UUID, func(c *campaign.Campaign) { c.Name = "ÉCOLE"; c.CreatedAt = at(3) }))
	b.write(func(tx store.Tx) error { _, err := tx.AttachPool(b.ctx, autumn.UUID, p.UUID); return err })

	all, total := b.listCampaigns(campaign.Query{})
	require.Equal(t, []uuid.UUID{spring.UUID, autumn.UUID, école.UUID}, campaignIDs(all))
	require.Equal(t, 3, total)
	require.Equal(t, []uuid.UUID{p.UUID}, all[1].PoolUUIDs, "with their pools")
	require.Equal(t, []uuid.UUID{}, all[0].PoolUUIDs)

	got, total := b.listCampaigns(campaign.Query{Status: "active"})
	require.Equal(t, []uuid.UUID{autumn.UUID}, campaignIDs(got))
	require.Equal(t, 1, total)
	got, _ = b.listCampaigns(campaign.Query{Search: "DRIVE"})
	require.Equal(t, []uuid.UUID{spring.UUID, autumn.UUID}, campaignIDs(got))
	got, _ = b.listCampaigns(campaign.Query{Search: "école"})
	require.Equal(t, []uuid.UUID{école.UUID}, campaignIDs(got))
	got, total = b.listCampaigns(campaign.Query{RuleUUID: &r.UUID})
	require.Equal(t, []uuid.UUID{spring.UUID, école.UUID}, campaignIDs(got))
	require.Equal(t, 2, total)
	got, total = b.listCampaigns(campaign.Query{RuleUUID: ptr(uuid.New())})
	require.Empty(t, got)
	require.Zero(t, total)
	got, total = b.listCampaigns(campaign.Query{Page: 2, PerPage: 2})
	require.Equal(t, []uuid.UUID{école.UUID}, campaignIDs(got))
	require.Equal(t, 3, total)
}

// testCampaignsListFilters: the filters of a campaign listing hold
// together (status and rule, status and search, all three), and the pages
// of a status's or a rule's campaigns are in creation order, ties in UUID
// order, whatever index serves them; a status change moves a campaign
// from one status's listing to the other's.
func testCampaignsListFilters(t *testing.T, b *bundle) {
	r := b.insertRule(fullRules()[0])
	other := b.insertRule(fullRules()[0])
	// Eight campaigns: even ones Paused, odd ones Draft; 0–3 under r,
	// 4–5 under other, 6–7 under none; names "north …" for 0, 1, 4, 5;
	// 2 and 3 created at the same time, 3 with the smaller UUID.
	ids := sortedUUIDs(uuid.New(), uuid.New())
	cs := make([]campaign.Campaign, 8)
	for i := range cs {
		rule := &r.UUID
		switch {
		case i >= 6:
			rule = nil
		case i >= 4:
			rule = &other.UUID
		}
		cs[i] = newCampaign(rule, func(c *campaign.Campaign) {
			c.Status, c.CreatedAt, c.Name = campaign.Draft, at(time.Duration(10-i)*time.Second), "south campaign"
			if i%2 == 0 {
				c.Status = campaign.Paused
			}
			if i%4 < 2 {
				c.Name = "north campaign"
			}
			if i == 2 || i == 3 {
				c.UUID, c.CreatedAt = ids[3-i], at(time.Hour) // created last
			}
		})
	}
	for _, c := range cs {
		b.insertCampaign(c) // 0 first: created after 1, …, 7
	}
	ofIDs := func(is ...int) []uuid.UUID {
		var out []uuid.UUID
		for _, i := range is {
			out = append(out, cs[i].UUID)
		}
		return out
	}
	list := func(q campaign.Query) ([]uuid.UUID, int) {
		t.Helper()
		got, total := b.listCampaigns(q)
		return campaignIDs(got), total
	}
	for _, tc := range []struct {
		name  string
		q     campaign.Query
		want  []uuid.UUID
		total int
	}{
		{"status", campaign.Query{Status: campaign.Paused}, ofIDs(6, 4, 0, 2), 4},
		{"status page 2", campaign.Query{Status: campaign.Paused, Page: 2, PerPage: 3}, ofIDs(2), 4},
		{"status and rule", campaign.Query{Status: campaign.Draft, RuleUUID: &r.UUID}, ofIDs(1, 3), 2},
		{"status and search", campaign.Query{Status: campaign.Paused, Search: "NORTH"}, ofIDs(4, 0), 2},
		{"status, search and rule", campaign.Query{Status: campaign.Draft, Search: "north", RuleUUID: &other.UUID}, ofIDs(5), 1},
		{"rule", campaign.Query{RuleUUID: &r.UUID}, ofIDs(1, 0, 3, 2), 4},
		{"rule page 2", campaign.Query{RuleUUID: &r.UUID, Page: 2, PerPage: 3}, ofIDs(2), 4},
		{"rule and search", campaign.Query{RuleUUID: &other.UUID, Search: "south"}, nil, 0},
		{"status of none", campaign.Query{Status: campaign.Archived}, nil, 0},
	} {
		got, total := list(tc.q)
		require.Equal(t, tc.want, got, tc.name)
		require.Equal(t, tc.total, total, tc.name)
	}

	moved := cs[1]
	moved.Status = campaign.Paused
	b.write(func(tx store.Tx) error { return tx.UpdateCampaign(b.ctx, moved) })
	got, total := list(campaign.Query{Status: campaign.Paused})
	require.Equal(t, ofIDs(6, 4, 1, 0, 2), got, "a status change moves it")
	require.Equal(t, 5, total)
	got, total = list(campaign.Query{Status: campaign.Draft})
	require.Equal(t, ofIDs(7, 5, 3), got)
	require.Equal(t, 3, total)
}

// testCampaignsInTx: in one write transaction that has named the pool
// first (as a dispatch does), PoolCampaigns follows the transaction's own
// writes to the pool's campaigns: an attach, a status change, a new
// campaign, a detach, a deletion; and so it does after an attach that
// named the pool first.
func testCampaignsInTx(t *testing.T, b *bundle) {
	p := b.insertPool()
	c := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(1) }))
	d := newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(2) })
	// Write may run its function again: it only gathers what each step
	// saw (afresh on every run, from c's status before it), and the checks
	// come once it returns.
	type step struct {
		want, got []campaign.Campaign
		gov       poolGovernors
	}
	var steps []step
	status := c.Status
	b.write(func(tx store.Tx) error {
		steps, c.Status = nil, status
		seen := func(want ...campaign.Campaign) error {
			cs, err := tx.PoolCampaigns(b.ctx, p.UUID)
			if err != nil {
				return err
			}
			var got []campaign.Campaign
			for _, c := range cs {
				got = append(got, campaign.Campaign{UUID: c.UUID, Status: c.Status})
			}
			var w []campaign.Campaign
			for _, c := range want {
				w = append(w, campaign.Campaign{UUID: c.UUID, Status: c.Status})
			}
			g, err := b.poolGovernorsIn(tx, p.UUID) // and PoolGovernors follows too
			if err != nil {
				return err
			}
			steps = append(steps, step{want: w, got: got, gov: g})
			return nil
		}
		if _, err := tx.InFlight(b.ctx, p.UUID); err != nil { // names the pool first
			return err
		}
		if err := seen(); err != nil {
			return err
		}
		if _, err := tx.AttachPool(b.ctx, c.UUID, p.UUID); err != nil {
			return err
		}
		if err := seen(c); err != nil {
			return err
		}
		c.Status = campaign.InProcess
		if err := tx.UpdateCampaign(b.ctx, c); err != nil {
			return err
		}
		if err := seen(c); err != nil {
			return err
		}
		if err := tx.InsertCampaign(b.ctx, d); err != nil {
			return err
		}
		if _, err := tx.AttachPool(b.ctx, d.UUID, p.UUID); err != nil {
			return err
		}
		if err := seen(c, d); err != nil {
			return err
		}
		if _, err := tx.DetachPool(b.ctx, c.UUID, p.UUID); err != nil {
			return err
		}
		if err := seen(d); err != nil {
			return err
		}
		if err := tx.DeleteCampaign(b.ctx, d.UUID); err != nil {
			return err
		}
		return seen()
	})
	require.Len(t, steps, 6)
	for _, s := range steps {
		require.Equal(t, s.want, s.got)
		b.requireGovernors(s.gov)
	}
	// An attach that is the first to name the pool.
	var cs []campaign.Campaign
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.AttachPool(b.ctx, c.UUID, p.UUID); err != nil {
			return err
		}
		cs, err = tx.PoolCampaigns(b.ctx, p.UUID)
		return err
	})
	require.Len(t, cs, 1)
	require.Equal(t, c.UUID, cs[0].UUID)
	// Read with the pool's lock, several campaigns come in their order.
	e := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(3) }))
	f := b.insertCampaign(newCampaign(nil, func(c *campaign.Campaign) { c.CreatedAt = at(0) }))
	b.attachAll(e.UUID, p)
	b.attachAll(f.UUID, p)
	b.write(func(tx store.Tx) (err error) {
		if _, err := tx.InFlight(b.ctx, p.UUID); err != nil { // names the pool first
			return err
		}
		cs, err = tx.PoolCampaigns(b.ctx, p.UUID)
		return err
	})
	require.Equal(t, []uuid.UUID{f.UUID, c.UUID, e.UUID}, campaignIDs(cs))
}
