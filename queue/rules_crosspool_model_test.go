package queue_test

// TestEngine_CallingRulesAcrossPools is a rapid state machine for the caps
// a rule puts on a contact across the pools of its campaign (README, "The
// caps are the contact's, across the campaign"), which
// TestEngine_CallingRules, whose contacts are each in one pool, cannot
// reach. One campaign In Process, under a rule, draws from 2 or 3 pools
// (Parallel, FIFO or LIFO); its contacts (in the zones and around the DST
// changes of TestEngine_CallingRules) have items in several of them,
// added, removed (their calls kept) and requeued as the run goes. Claims
// are made in one pool (TryDequeue), in all of them until each is empty,
// across the campaign (DequeueCampaign), and at the very end of a lease in
// the contact's other pools first; calls are completed, failed
// (with the rule's retry, a callback time, or for good), released,
// extended or left to expire; a fake clock walks across windows and local
// days; contacts go on the do-not-call list or opt out. A plain model
// counts every contact's attempts (its items', and those kept of its
// removed items) and its calls (instants, a released one given back), and
// after every call of the engine the test checks:
//
//   - every dispatch is of a contact with no other call under a lease
//     that has not ended, in any of the campaign's pools; inside the
//     window in the contact's local time; with fewer than
//     max_calls_per_day calls of the contact on that local date in all
//     the pools, and fewer than max_total_calls attempts in all; never
//     for a contact on the do-not-call list or opted out (as the rule
//     asks); each item's attempts are the model's, the lease's attempt
//     number the next;
//   - no two items of one contact are ever in flight under leases that
//     have not ended (read from the store, not the model);
//   - a claim that finds nothing in a pool leaves due there only the
//     items whose contact is in a call from another pool (passed over),
//     and one that finds the pool at capacity is in a FIFO or LIFO pool
//     with a call under way; DequeueCampaign gives a lease whenever the
//     model knows an item it may give;
//   - a due item a claim postpones becomes Scheduled at the earliest
//     instant the rule allows, its contact's calls in every pool counted;
//     one it fails is of a contact whose attempts reached max_total_calls;
//     and in the rule's order: an item whose contact is in a call from
//     another pool is passed over, neither failed, skipped nor postponed,
//     and one whose contact has no attempts left is failed, not skipped
//     or postponed;
//   - a failed attempt (Fail, a callback, or an expired lease) fails its
//     item when the contact's attempts in all the pools reach
//     max_total_calls, skips it when the contact opted out (under
//     remove_on_opt_out), and otherwise retries it at the earliest instant
//     the rule allows at or after the time asked for, Retrying when that
//     is the time asked for (Scheduled otherwise, and always for a
//     callback), the contact's calls of the day in all the pools counted;
//   - a lease is lost (settled, extended) exactly when it has ended;
//   - exactly one escalation per item whose failed attempts reached the
//     threshold; items are Skipped only for the lists; terminal items stay
//     as they are until requeued.
//
// The contacts' zones do not move (that is TestEngine_CallingRules'), and
// every item of a contact has the contact's zone, as the README asks.
// Longer runs:
//
//	RAPID_CHECKS=1000 go test ./queue -run CallingRulesAcrossPools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

const xpLease = 10 * time.Minute

// xpContact is the model of one contact of the campaign.
type xpContact struct {
	idx  int
	id   uuid.UUID
	zone string // its items' time zone; "" is the campaign's
	loc  *time.Location
	// calls are the instants of its calls that count (not given back), in
	// every pool of the campaign, its removed items' too.
	calls []time.Time
	kept  int // attempts of its items removed from the campaign's pools
	dnc   bool
	opted bool
}

// xpPool is the model of one of the campaign's pools.
type xpPool struct {
	idx   int
	id    uuid.UUID
	typ   pool.Type
	items map[uuid.UUID]*xpItem // its items, by contact
}

// xpItem is the model of one item, from its Add to its Remove.
type xpItem struct {
	c        *xpContact
	p        *xpPool
	id       int64 // the engine's, read after the Add
	attempts int
	lease    *queue.Lease
	callAt   time.Time // the instant of lease's call
	// escalated is the failed attempt count at which its escalation was
	// recorded, 0 for none.
	escalated int
}

// xpAct is what an engine call did, for observe.
type xpAct struct {
	name     string
	claim    *xpPool        // a claim in this pool (TryDequeue, DequeueCampaign)
	leases   []*queue.Lease // dispatched by it
	settled  *xpItem        // settled by it
	how      string         // complete, fail, callback, final, release
	retryAt  time.Time      // a callback's time
	requeued *xpItem
	opted    *xpContact // opted out by it
}

type xpMachine struct {
	ctx        context.Context
	eng        *queue.Engine
	clk        *clock
	rule       campaign.Rule
	start, end int // the window, in seconds of the local day
	retry      time.Duration
	escAfter   int
	campaignID uuid.UUID
	pools      []*xpPool
	contacts   []*xpContact
	all        []*xpItem // every item ever added
	byID       map[int64]*xpItem
	prev       map[int64]pool.Item // the engine's items after the latest call
	dispatched int
}

func TestEngine_CallingRulesAcrossPools(t *testing.T) {
	if testing.Short() {
		t.Skip("a sequential state machine; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	xpCheck(t, func(t *rapid.T) store.Store {
		st, err := sqlite.Open(context.Background(), sqlite.MemoryPath, sqlite.Options{CheckCache: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// TestPostgres_CallingRulesAcrossPools runs the machine on three stores of
// one schema taking turns, as three nodes would.
func TestPostgres_CallingRulesAcrossPools(t *testing.T) {
	if testing.Short() {
		t.Skip("a sequential state machine; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	url := pgtest.URL(t)
	t.Parallel()
	schemas := pgtest.NewSchemas(t, url)
	xpCheck(t, func(t *rapid.T) store.Store {
		return newTurnStore(schemas.Nodes(t, postgres.Options{MaxConns: 2}, 3))
	})
}

// xpCheck runs the machine on a fresh store from open per run.
func xpCheck(t *testing.T, open func(t *rapid.T) store.Store) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		st := open(t)
		edge := rapid.SampledFrom(rulesEdges).Draw(t, "edge")
		clk := &clock{t: edge.Add(-time.Duration(rapid.IntRange(0, 30*60).Draw(t, "minutes before")) * time.Minute)}
		eng, err := queue.New(st, queue.Options{Now: clk.Now, LeaseTimeout: xpLease, PollInterval: time.Hour})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })
		m := &xpMachine{ctx: ctx, eng: eng, clk: clk, byID: map[int64]*xpItem{}, prev: map[int64]pool.Item{}}
		m.setup(t)
		t.Repeat(map[string]func(*rapid.T){
			"":            m.check,
			"Add":         m.add,
			"Dequeue":     m.dequeue,
			"DequeueAll":  m.dequeueAll,
			"DequeueAll ": m.dequeueAll, // twice as likely: the calls are the point
			"DequeueCamp": m.dequeueCampaign,
			"Complete":    func(t *rapid.T) { m.settle(t, "complete") },
			"Fail":        func(t *rapid.T) { m.settle(t, "fail") },
			"Callback":    func(t *rapid.T) { m.settle(t, "callback") },
			"Final":       func(t *rapid.T) { m.settle(t, "final") },
			"Release":     func(t *rapid.T) { m.settle(t, "release") },
			"Extend":      m.extend,
			"Remove":      m.remove,
			"Requeue":     m.requeue,
			"AtLeaseEnd":  m.atLeaseEnd,
			"Tick":        m.tick,
			"ToNext":      m.toNext,
			"AddDNC":      m.addDNC,
			"OptOut":      m.optOut,
		})
		m.final(t)
		t.Logf("%d dispatches", m.dispatched)
	})
}

func (m *xpMachine) setup(t *rapid.T) {
	starts := []string{"00:00", "01:30", "02:00", "02:30", "03:00", "09:00", "13:00"}
	ends := []string{"01:00", "02:15", "03:00", "03:30", "12:00", "21:00", "23:59"}
	// Half the runs call all day (the caps decide), half in the windows
	// of TestEngine_CallingRules, around DST changes.
	start, end := "00:00", "23:59"
	if rapid.Bool().Draw(t, "narrow window") {
		start = rapid.SampledFrom(starts).Draw(t, "start_time")
		end = rapid.SampledFrom(slices.DeleteFunc(ends, func(e string) bool { return e <= start })).Draw(t, "end_time")
	}
	perDay := rapid.IntRange(1, 3).Draw(t, "max_calls_per_day")
	total := rapid.IntRange(1, 5).Draw(t, "max_total_calls")
	retryMin := rapid.SampledFrom([]int{1, 20, 90, 600}).Draw(t, "retry_interval_minutes")
	escAfter := rapid.IntRange(0, 3).Draw(t, "escalation_after_failed_attempts")
	dncCheck := rapid.Bool().Draw(t, "dnc_check")
	optOut := rapid.Bool().Draw(t, "remove_on_opt_out")
	escType, escTarget := "supervisor", "team-9"
	r, err := m.eng.CreateRule(m.ctx, campaign.CreateRuleParams{
		Name: "cross-pool model", MaxCallsPerDay: &perDay, MaxTotalCalls: &total, RetryIntervalMinutes: &retryMin,
		StartTime: &start, EndTime: &end, DNCCheck: &dncCheck, RemoveOnOptOut: &optOut,
		EscalationAfterFailedAttempts: &escAfter, EscalationType: &escType, EscalationTarget: &escTarget,
	})
	require.NoError(t, err, "create rule")
	m.rule, m.start, m.end = r, clockSeconds(t, start), clockSeconds(t, end)
	m.retry, m.escAfter = time.Duration(retryMin)*time.Minute, escAfter

	zone := rapid.SampledFrom(rulesZones).Draw(t, "campaign zone")
	c, err := m.eng.CreateCampaign(m.ctx, campaign.CreateParams{Name: "cross-pool model", TimeZone: zone, RuleUUID: &r.UUID})
	require.NoError(t, err)
	m.campaignID = c.UUID
	nPools := rapid.IntRange(2, 3).Draw(t, "pools")
	var ids []uuid.UUID
	var types []pool.Type
	for i := range nPools {
		typ := rapid.SampledFrom([]pool.Type{pool.Parallel, pool.Parallel, pool.FIFO, pool.LIFO}).Draw(t, "pool type")
		// The pool's own max_retries is below the rule's ceiling at times:
		// the rule's takes precedence.
		retries := rapid.IntRange(0, 5).Draw(t, "max_retries")
		params := pool.CreateParams{Name: "cross-pool model", Description: "rapid", Type: typ, MaxRetries: &retries}
		if typ == pool.Parallel {
			maxPar := 100
			params.MaxParallelItems = &maxPar
		}
		p, err := m.eng.CreatePool(m.ctx, params)
		require.NoError(t, err)
		m.pools = append(m.pools, &xpPool{idx: i, id: p.UUID, typ: typ, items: map[uuid.UUID]*xpItem{}})
		ids = append(ids, p.UUID)
		types = append(types, typ)
	}
	_, err = m.eng.AttachPools(m.ctx, c.UUID, ids...)
	require.NoError(t, err)
	_, err = m.eng.StartCampaign(m.ctx, c.UUID)
	require.NoError(t, err)

	nContacts := rapid.IntRange(2, 5).Draw(t, "contacts")
	var zones []string
	for i := range nContacts {
		z := rapid.SampledFrom(rulesZones).Draw(t, "contact zone")
		name := z
		if name == "" {
			name = zone
		}
		if name == "" {
			name = "UTC"
		}
		loc, err := time.LoadLocation(name)
		require.NoError(t, err)
		m.contacts = append(m.contacts, &xpContact{idx: i, id: uuid.New(), zone: z, loc: loc})
		zones = append(zones, name)
	}
	t.Logf("rule: window %s-%s per_day=%d total=%d retry=%dm escalate_after=%d dnc=%v opt_out=%v; campaign zone %q; pools %v; contacts in %v; clock %s",
		start, end, perDay, total, retryMin, escAfter, dncCheck, optOut, zone, types, zones, m.clk.Now().Format(time.RFC3339))
	// Most contacts start in most pools.
	for _, p := range m.pools {
		var add []*xpContact
		for _, c := range m.contacts {
			if rapid.IntRange(0, 3).Draw(t, "in pool?") > 0 {
				add = append(add, c)
			}
		}
		if len(add) > 0 {
			m.addItems(t, p, add...)
		}
	}
	m.dequeueAll(t) // the calls are the point: a short run makes some
}

// addItems adds items of contacts to p (none of them in it), and observes.
func (m *xpMachine) addItems(t *rapid.T, p *xpPool, contacts ...*xpContact) {
	add := make([]pool.NewItem, len(contacts))
	for i, c := range contacts {
		add[i] = pool.NewItem{ContactUUID: c.id, Contact: pool.Contact{TimeZone: c.zone}}
		it := &xpItem{c: c, p: p}
		p.items[c.id] = it
		m.all = append(m.all, it)
	}
	_, err := m.eng.Add(m.ctx, p.id, add...)
	require.NoError(t, err)
	m.observe(t, &xpAct{name: "Add"})
}

// ---- the model's arithmetic ----------------------------------------------

// callsOn counts c's calls on t's local date, in all the pools.
func (m *xpMachine) callsOn(c *xpContact, t time.Time) int {
	day := dateKey(t.In(c.loc))
	n := 0
	for _, at := range c.calls {
		if dateKey(at.In(c.loc)) == day {
			n++
		}
	}
	return n
}

// allowed reports whether the rule lets c be called at t: inside the
// window in its local time, on a local date with fewer calls than the cap.
func (m *xpMachine) allowed(c *xpContact, t time.Time) bool {
	l := t.In(c.loc)
	s := l.Hour()*3600 + l.Minute()*60 + l.Second()
	return s >= m.start && s < m.end && m.callsOn(c, t) < m.rule.MaxCallsPerDay
}

// earliest is the first instant at or after t0 that allowed accepts,
// found by walking whole minutes.
func (m *xpMachine) earliest(t *rapid.T, c *xpContact, t0 time.Time) time.Time {
	if m.allowed(c, t0) {
		return t0
	}
	at := t0.Truncate(time.Minute).Add(time.Minute)
	for range 4 * 24 * 60 {
		if m.allowed(c, at) {
			return at
		}
		at = at.Add(time.Minute)
	}
	t.Fatalf("no allowed instant within 4 days of %s", t0)
	return time.Time{}
}

// total is c's attempts in the campaign: its items' and those kept.
func (m *xpMachine) total(c *xpContact) int {
	n := c.kept
	for _, p := range m.pools {
		if it := p.items[c.id]; it != nil {
			n += it.attempts
		}
	}
	return n
}

// inCall returns the item of c, other than but, under a lease that has not
// ended at now, or nil.
func (m *xpMachine) inCall(c *xpContact, but *xpItem, now time.Time) *xpItem {
	for _, p := range m.pools {
		if it := p.items[c.id]; it != nil && it != but && it.lease != nil && it.lease.ExpiresAt.After(now) {
			return it
		}
	}
	return nil
}

// busy reports whether p is a FIFO or LIFO pool with a call under a lease
// that has not ended: at its cap of 1.
func (m *xpMachine) busy(p *xpPool, now time.Time) bool {
	if !p.typ.Serial() {
		return false
	}
	for _, it := range p.items {
		if it.lease != nil && it.lease.ExpiresAt.After(now) {
			return true
		}
	}
	return false
}

// barred reports whether the rule's lists bar c.
func (m *xpMachine) barred(c *xpContact) bool {
	return m.rule.DNCCheck && c.dnc || m.rule.RemoveOnOptOut && c.opted
}

// giveBack takes the call at of c off its count.
func (c *xpContact) giveBack(at time.Time) bool {
	i := slices.IndexFunc(c.calls, func(x time.Time) bool { return x.Equal(at) })
	if i < 0 {
		return false
	}
	c.calls = slices.Delete(c.calls, i, i+1)
	return true
}

// xpSameTime reports whether a and b are both nil or the same instant.
func xpSameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// ---- observation ---------------------------------------------------------

// snapshot reads every item of the campaign's pools, by ID, and checks
// that they are the model's.
func (m *xpMachine) snapshot(t *rapid.T) map[int64]pool.Item {
	out := map[int64]pool.Item{}
	for _, p := range m.pools {
		page, err := m.eng.Items(m.ctx, p.id, pool.ItemQuery{Page: 1, PerPage: 100})
		require.NoError(t, err)
		require.Len(t, page.Data, len(p.items), "pool %d's items", p.idx)
		for _, it := range page.Data {
			x := p.items[it.ContactUUID]
			require.NotNil(t, x, "pool %d has an item of %s the model does not", p.idx, it.ContactUUID)
			if x.id == 0 {
				x.id = it.ID
				m.byID[it.ID] = x
			}
			require.Equal(t, x.id, it.ID, "pool %d, contact %d", p.idx, x.c.idx)
			out[it.ID] = it
		}
	}
	return out
}

func (m *xpMachine) name(x *xpItem) string {
	return fmt.Sprintf("contact %d in pool %d", x.c.idx, x.p.idx)
}

// failure records a failed attempt of x (a settlement or an expired
// lease): the escalation it may record.
func (m *xpMachine) failure(x *xpItem) {
	if m.escAfter > 0 && x.escalated == 0 && x.attempts >= m.escAfter {
		x.escalated = x.attempts
	}
}

// requireFailure checks after, the item x became after a failed attempt
// at now that asked for a retry at t0 (explicit: a callback's).
func (m *xpMachine) requireFailure(t *rapid.T, x *xpItem, after pool.Item, now, t0 time.Time, explicit, final bool) {
	t.Helper()
	n := m.name(x)
	switch {
	case m.total(x.c) >= m.rule.MaxTotalCalls:
		require.Equal(t, pool.StatusFailed, after.Status, "%s: failed with the contact's %d attempts of %d in the campaign", n, m.total(x.c), m.rule.MaxTotalCalls)
	case final:
		require.Equal(t, pool.StatusFailed, after.Status, "%s: a final failure", n)
	case m.rule.RemoveOnOptOut && x.c.opted:
		require.Equal(t, pool.StatusSkipped, after.Status, "%s: failed after its contact opted out", n)
		require.Equal(t, campaign.NoteOptOut, after.Notes)
	default:
		require.True(t, after.Status.Waiting(), "%s: failed with %d attempts of %d in the campaign: %s", n, m.total(x.c), m.rule.MaxTotalCalls, after.Status)
		require.NotNil(t, after.NextRetryAt, "%s: no retry time", n)
		want := m.earliest(t, x.c, t0)
		require.Equal(t, want, *after.NextRetryAt, "%s: retry asked for %s (%s local) at %s, with %d calls that day in all pools",
			n, t0.Format(time.RFC3339), t0.In(x.c.loc).Format(time.DateTime+" MST"), now.Format(time.RFC3339), m.callsOn(x.c, t0))
		status := pool.StatusScheduled
		if !explicit && want.Equal(t0) {
			status = pool.StatusRetrying
		}
		require.Equal(t, status, after.Status, "%s: retry status", n)
	}
}

// observe applies to the model what act, a call of the engine made at the
// clock's time, did, reads the engine's items and checks every change
// from the previous reading. Everything but a dispatch that act made
// happened before it (a claim applies its pool's expired leases, and
// postpones or fails due items, before the item it dispatches;
// DequeueCampaign claims in the pools before the one that gives), so
// those changes are checked against the counts without act's dispatch.
func (m *xpMachine) observe(t *rapid.T, act *xpAct) {
	t.Helper()
	now := m.clk.Now()
	var dispatched []*xpItem
	for _, l := range act.leases {
		require.NotNil(t, act.claim, "a lease from %s", act.name)
		require.Equal(t, act.claim.id, l.PoolUUID, "a lease of another pool")
		x := act.claim.items[l.ContactUUID]
		require.NotNil(t, x, "a lease of a contact the pool does not hold")
		n := m.name(x)
		if x.lease != nil {
			// Expired, then dispatched again in the same claim.
			require.False(t, now.Before(x.lease.ExpiresAt), "%s dispatched while its lease has not ended", n)
			m.failure(x)
			x.lease = nil
		}
		if o := m.inCall(x.c, x, now); o != nil {
			t.Fatalf("%s dispatched at %s while in a call from pool %d whose lease ends %s: two calls of one contact at once",
				n, now.Format(time.RFC3339), o.p.idx, o.lease.ExpiresAt.Format(time.RFC3339))
		}
		require.True(t, m.allowed(x.c, now), "%s dispatched at %s local (window %s) with %d calls that day in all pools (cap %d)",
			n, now.In(x.c.loc).Format(time.DateTime+" MST"), m.rule.Window(), m.callsOn(x.c, now), m.rule.MaxCallsPerDay)
		require.Less(t, m.total(x.c), m.rule.MaxTotalCalls, "%s dispatched with the contact's attempts in all pools at max_total_calls", n)
		require.False(t, m.rule.DNCCheck && x.c.dnc, "%s dispatched on the do-not-call list", n)
		require.False(t, m.rule.RemoveOnOptOut && x.c.opted, "%s dispatched after opting out", n)
		require.Equal(t, x.attempts+1, l.Attempt, "%s: attempt number", n)
		dispatched = append(dispatched, x)
	}
	if x := act.settled; x != nil {
		switch act.how {
		case "release":
			x.attempts--
			require.True(t, x.c.giveBack(x.callAt))
		case "fail", "callback", "final":
			m.failure(x)
		}
		x.lease = nil
	}
	if x := act.requeued; x != nil {
		x.attempts = 0
	}

	cur := m.snapshot(t)
	for id, after := range cur {
		x := m.byID[id]
		n := m.name(x)
		was, seen := m.prev[id]
		if !seen {
			require.Equal(t, pool.StatusPending, after.Status, "%s: added", n)
			continue
		}
		if after.Status == pool.StatusSkipped && was.Status != pool.StatusSkipped {
			switch after.Notes {
			case campaign.NoteDNC:
				require.True(t, m.rule.DNCCheck && x.c.dnc, "%s skipped for DNC", n)
				require.NotNil(t, act.claim, "%s skipped for DNC by %s", n, act.name)
				// The contact's ceiling, and its call elsewhere, come first.
				require.Less(t, m.total(x.c), m.rule.MaxTotalCalls, "%s skipped for DNC, not failed at the contact's ceiling", n)
				m.requireNoCall(t, x, now, "%s skipped for DNC, not passed over for its call elsewhere")
			case campaign.NoteOptOut:
				require.True(t, m.rule.RemoveOnOptOut && x.c.opted, "%s skipped for opt-out", n)
			default:
				t.Fatalf("%s skipped with note %q", n, after.Notes)
			}
		}
		switch {
		case x == act.requeued:
			require.Equal(t, pool.StatusPending, after.Status, "%s: requeued", n)
		case was.Status.Terminal():
			require.Equal(t, was.Status, after.Status, "%s: terminal items stay", n)
		case after.Status.InFlight() && slices.Contains(dispatched, x):
			require.Equal(t, x.p.id, act.claim.id)
		case after.Status.InFlight():
			require.NotNil(t, x.lease, "%s in flight with no lease held", n)
			require.Equal(t, x.lease.Token, after.Token, "%s: in flight under another lease", n)
		case was.Status.InFlight() && x == act.settled:
			switch act.how {
			case "release":
				require.True(t, after.Status.Waiting() && after.Due(now), "%s released: %s", n, after.Status)
			case "complete":
				require.Equal(t, pool.StatusCompleted, after.Status, "%s completed", n)
			case "callback":
				m.requireFailure(t, x, after, now, act.retryAt, true, false)
			default:
				m.requireFailure(t, x, after, now, now.Add(m.retry), false, act.how == "final")
			}
		case was.Status.InFlight():
			// Left flight unsettled: its lease expired.
			require.NotNil(t, x.lease, "%s left flight with no lease held", n)
			require.False(t, now.Before(x.lease.ExpiresAt), "%s left flight before its lease ended", n)
			x.lease = nil
			m.failure(x)
			if after.Status == pool.StatusSkipped && act.opted == x.c {
				break // OptOut applied the expiry and skipped it
			}
			m.requireFailure(t, x, after, now, now.Add(m.retry), false, false)
		case was.Status.Waiting() && after.Status == pool.StatusFailed:
			require.NotNil(t, act.claim, "%s failed by %s", n, act.name)
			require.True(t, was.Due(now), "%s failed before it was due", n)
			m.requireNoCall(t, x, now, "%s failed, not passed over for its call elsewhere")
			require.GreaterOrEqual(t, m.total(x.c), m.rule.MaxTotalCalls, "%s failed at dispatch with its contact's %d attempts of %d", n, m.total(x.c), m.rule.MaxTotalCalls)
		case was.Status.Waiting() && after.Status.Waiting():
			if act.claim == nil || !was.Due(now) || after.Due(now) {
				require.Equal(t, was.Status, after.Status, "%s changed by %s", n, act.name)
				require.True(t, xpSameTime(was.NextRetryAt, after.NextRetryAt), "%s's retry time changed by %s: %v to %v", n, act.name, was.NextRetryAt, after.NextRetryAt)
				continue
			}
			require.Equal(t, pool.StatusScheduled, after.Status, "%s postponed", n)
			m.requireNoCall(t, x, now, "%s postponed, not passed over for its call elsewhere")
			require.Less(t, m.total(x.c), m.rule.MaxTotalCalls, "%s postponed, not failed at the contact's ceiling", n)
			require.False(t, m.barred(x.c), "%s postponed, not skipped", n)
			want := m.earliest(t, x.c, now)
			require.Equal(t, want, *after.NextRetryAt, "%s postponed at %s (%s local, %d calls that day in all pools)",
				n, now.Format(time.RFC3339), now.In(x.c.loc).Format(time.DateTime+" MST"), m.callsOn(x.c, now))
		}
	}
	for i, x := range dispatched {
		l := act.leases[i]
		require.True(t, cur[x.id].Status.InFlight(), "%s dispatched: %s", m.name(x), cur[x.id].Status)
		require.Equal(t, l.Token, cur[x.id].Token, "%s dispatched under another lease", m.name(x))
		x.attempts++
		x.lease, x.callAt = l, now
		x.c.calls = append(x.c.calls, now)
		m.dispatched++
	}
	for id, after := range cur {
		x := m.byID[id]
		require.Equal(t, x.attempts, after.Attempts, "%s: attempts", m.name(x))
		if x.lease != nil {
			require.True(t, after.Status.InFlight(), "%s: lease held, item %s", m.name(x), after.Status)
		}
	}
	if m.escAfter > 0 || act.name == "final" {
		m.checkEscalations(t)
	}
	m.checkContacts(t, cur, now)
	m.prev = cur
}

// checkContacts checks the contacts' caps, on the model's counts and on
// the store's leases.
func (m *xpMachine) checkContacts(t *rapid.T, cur map[int64]pool.Item, now time.Time) {
	for _, c := range m.contacts {
		require.LessOrEqual(t, m.total(c), m.rule.MaxTotalCalls, "contact %d's attempts in all pools", c.idx)
		perDate := map[int]int{}
		for _, at := range c.calls {
			perDate[dateKey(at.In(c.loc))]++
		}
		for d, k := range perDate {
			require.LessOrEqual(t, k, m.rule.MaxCallsPerDay, "contact %d's calls on %d in all pools", c.idx, d)
		}
	}
	live := map[uuid.UUID]int{}
	for _, it := range cur {
		if it.Status.InFlight() && it.LeaseExpiresAt.After(now) {
			live[it.ContactUUID]++
			require.Equal(t, 1, live[it.ContactUUID], "contact %s in two calls under leases not ended", it.ContactUUID)
		}
	}
}

func (m *xpMachine) checkEscalations(t *rapid.T) {
	esc, err := m.eng.Escalations(m.ctx, campaign.EscalationQuery{Limit: 100})
	require.NoError(t, err)
	require.Less(t, len(esc), 100)
	got := map[int64]campaign.Escalation{}
	for _, e := range esc {
		_, dup := got[e.ItemID]
		require.False(t, dup, "two escalations of item %d", e.ItemID)
		got[e.ItemID] = e
	}
	require.Len(t, got, len(slices.DeleteFunc(slices.Clone(m.all), func(x *xpItem) bool { return x.escalated == 0 })), "escalations")
	for _, x := range m.all {
		if x.escalated == 0 {
			continue
		}
		e, ok := got[x.id]
		require.True(t, ok, "%s not escalated after %d failed attempts (threshold %d)", m.name(x), x.escalated, m.escAfter)
		require.Equal(t, x.escalated, e.FailedAttempts)
		require.Equal(t, x.c.id, e.ContactUUID)
		require.Equal(t, x.p.id, e.PoolUUID)
		require.Equal(t, m.campaignID, e.CampaignUUID)
		require.Equal(t, m.rule.UUID, e.RuleUUID)
		require.Equal(t, "supervisor", e.Type)
		require.Equal(t, "team-9", e.Target)
	}
}

// requireNothingLeft checks, after a claim in p found nothing (ErrEmpty,
// or ErrAtCapacity when full), what it left due.
func (m *xpMachine) requireNothingLeft(t *rapid.T, p *xpPool, err error) {
	now := m.clk.Now()
	if errors.Is(err, queue.ErrAtCapacity) {
		require.True(t, m.busy(p, now), "pool %d (%s) at capacity with no call under way", p.idx, p.typ)
		return
	}
	require.ErrorIs(t, err, queue.ErrEmpty)
	for _, x := range p.items {
		it := m.prev[x.id]
		if !it.Status.Waiting() || !it.Due(now) {
			continue
		}
		require.NotNil(t, m.inCall(x.c, x, now), "%s left due (%s, %d attempts of the contact's %d, %d calls today of %d, %s local) by a claim that found nothing",
			m.name(x), it.Status, m.total(x.c), m.rule.MaxTotalCalls, m.callsOn(x.c, now), m.rule.MaxCallsPerDay, now.In(x.c.loc).Format(time.DateTime+" MST"))
	}
}

// requireNoCall checks that x's contact is in no call from another pool:
// what msg says of x happened because it was not.
func (m *xpMachine) requireNoCall(t *rapid.T, x *xpItem, now time.Time, msg string) {
	t.Helper()
	if o := m.inCall(x.c, x, now); o != nil {
		t.Fatalf(msg+" (pool %d's lease ends %s, now %s)", m.name(x), o.p.idx, o.lease.ExpiresAt.Format(time.RFC3339), now.Format(time.RFC3339))
	}
}

// ---- actions -------------------------------------------------------------

// check is rapid's check after every action: every call of the engine
// has been observed already (reads change nothing), so the model's own
// counts are checked; the run ends with a reading (final).
func (m *xpMachine) check(t *rapid.T) {
	for _, c := range m.contacts {
		require.LessOrEqual(t, m.total(c), m.rule.MaxTotalCalls, "contact %d's attempts in all pools", c.idx)
	}
}

// final reads the items once more, and checks them.
func (m *xpMachine) final(t *rapid.T) {
	m.observe(t, &xpAct{name: "final"})
}

func (m *xpMachine) add(t *rapid.T) {
	p := rapid.SampledFrom(m.pools).Draw(t, "pool")
	var out []*xpContact
	for _, c := range m.contacts {
		if p.items[c.id] == nil {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		t.Skip("every contact in the pool")
	}
	c := rapid.SampledFrom(out).Draw(t, "contact")
	t.Logf("Add contact %d to pool %d", c.idx, p.idx)
	m.addItems(t, p, c)
}

// claim makes one claim in p and observes it.
func (m *xpMachine) claim(t *rapid.T, p *xpPool) (*queue.Lease, error) {
	l, err := m.eng.TryDequeue(m.ctx, p.id)
	act := &xpAct{name: "TryDequeue", claim: p}
	if err == nil {
		act.leases = []*queue.Lease{l}
		t.Logf("TryDequeue pool %d at %s → contact %d", p.idx, m.clk.Now().Format(time.RFC3339), p.items[l.ContactUUID].c.idx)
	} else {
		require.True(t, errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity), "TryDequeue: %v", err)
		t.Logf("TryDequeue pool %d at %s → %v", p.idx, m.clk.Now().Format(time.RFC3339), err)
	}
	m.observe(t, act)
	if err != nil {
		m.requireNothingLeft(t, p, err)
	}
	return l, err
}

func (m *xpMachine) dequeue(t *rapid.T) {
	_, _ = m.claim(t, rapid.SampledFrom(m.pools).Draw(t, "pool"))
}

// dequeueAll claims in every pool, in a random order, until each gives
// nothing.
func (m *xpMachine) dequeueAll(t *rapid.T) {
	order := rapid.Permutation(m.pools).Draw(t, "order")
	for _, p := range order {
		for range len(m.contacts) + 1 {
			if _, err := m.claim(t, p); err != nil {
				break
			}
		}
	}
}

// dispatchable reports whether the model knows an item that a claim in its
// pool would dispatch now.
func (m *xpMachine) dispatchable(now time.Time) bool {
	for _, p := range m.pools {
		if m.busy(p, now) {
			continue
		}
		for _, x := range p.items {
			it := m.prev[x.id]
			if it.Status.Waiting() && it.Due(now) && m.inCall(x.c, x, now) == nil && m.allowed(x.c, now) &&
				m.total(x.c) < m.rule.MaxTotalCalls && !m.barred(x.c) {
				return true
			}
		}
	}
	return false
}

// dequeueCampaign claims across the campaign's pools when the model knows
// an item one of them would give: DequeueCampaign must give one (it waits
// otherwise, and the clock is the test's).
func (m *xpMachine) dequeueCampaign(t *rapid.T) {
	now := m.clk.Now()
	if !m.dispatchable(now) {
		t.Skip("nothing to dispatch")
	}
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	l, err := m.eng.DequeueCampaign(ctx, m.campaignID)
	require.NoError(t, err, "DequeueCampaign with an item the model may dispatch")
	var p *xpPool
	for _, q := range m.pools {
		if q.id == l.PoolUUID {
			p = q
		}
	}
	require.NotNil(t, p, "a lease of a pool not in the campaign")
	t.Logf("DequeueCampaign at %s → contact %d in pool %d", now.Format(time.RFC3339), p.items[l.ContactUUID].c.idx, p.idx)
	m.observe(t, &xpAct{name: "DequeueCampaign", claim: p, leases: []*queue.Lease{l}})
}

func (m *xpMachine) held() []*xpItem {
	var out []*xpItem
	for _, p := range m.pools {
		for _, c := range m.contacts {
			if x := p.items[c.id]; x != nil && x.lease != nil {
				out = append(out, x)
			}
		}
	}
	return out
}

// settle settles a held lease.
func (m *xpMachine) settle(t *rapid.T, how string) {
	held := m.held()
	if len(held) == 0 {
		t.Skip("no lease held")
	}
	x := rapid.SampledFrom(held).Draw(t, "lease")
	now := m.clk.Now()
	act := &xpAct{name: how, how: how}
	var err error
	switch how {
	case "complete":
		err = m.eng.Complete(m.ctx, x.lease, "answered")
	case "fail":
		err = m.eng.Fail(m.ctx, x.lease, queue.Failure{Note: "busy"})
	case "callback":
		act.retryAt = now.Add(time.Duration(rapid.IntRange(1, 36*60).Draw(t, "callback minutes")) * time.Minute)
		err = m.eng.Fail(m.ctx, x.lease, queue.Failure{RetryAt: act.retryAt, Note: "call me later"})
	case "final":
		err = m.eng.Fail(m.ctx, x.lease, queue.Failure{Final: true, Note: "wrong number"})
	case "release":
		err = m.eng.Release(m.ctx, x.lease)
	}
	t.Logf("%s %s at %s (lease ends %s) → %v", how, m.name(x), now.Format(time.RFC3339), x.lease.ExpiresAt.Format(time.RFC3339), err)
	if errors.Is(err, queue.ErrLeaseLost) {
		require.False(t, now.Before(x.lease.ExpiresAt), "%s: lease lost before it ended", m.name(x))
		m.observe(t, act)
		return
	}
	require.NoError(t, err)
	require.True(t, now.Before(x.lease.ExpiresAt), "%s: settled after its lease ended", m.name(x))
	act.settled = x
	m.observe(t, act)
}

func (m *xpMachine) extend(t *rapid.T) {
	held := m.held()
	if len(held) == 0 {
		t.Skip("no lease held")
	}
	x := rapid.SampledFrom(held).Draw(t, "lease")
	d := rapid.SampledFrom([]time.Duration{time.Minute, 10 * time.Minute, 2 * time.Hour}).Draw(t, "extend by")
	now, end := m.clk.Now(), x.lease.ExpiresAt
	l := *x.lease
	err := m.eng.Extend(m.ctx, &l, d)
	t.Logf("Extend %s by %s at %s (lease ends %s) → %v", m.name(x), d, now.Format(time.RFC3339), end.Format(time.RFC3339), err)
	if now.Before(end) {
		require.NoError(t, err, "%s: extension of a lease that has not ended", m.name(x))
		require.Equal(t, now.Add(d), l.ExpiresAt)
		x.lease = &l
	} else {
		require.ErrorIs(t, err, queue.ErrLeaseLost, "%s: extension of a lease that ended", m.name(x))
	}
	m.observe(t, &xpAct{name: "Extend"})
}

func (m *xpMachine) remove(t *rapid.T) {
	var out []*xpItem
	for _, p := range m.pools {
		for _, c := range m.contacts {
			if x := p.items[c.id]; x != nil && x.lease == nil {
				out = append(out, x)
			}
		}
	}
	if len(out) == 0 {
		t.Skip("nothing to remove")
	}
	x := rapid.SampledFrom(out).Draw(t, "item")
	n, err := m.eng.Remove(m.ctx, x.p.id, x.c.id)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	t.Logf("Remove %s (%d attempts, kept)", m.name(x), x.attempts)
	x.c.kept += x.attempts
	delete(x.p.items, x.c.id)
	delete(m.prev, x.id)
	m.observe(t, &xpAct{name: "Remove"})
}

func (m *xpMachine) requeue(t *rapid.T) {
	var out []*xpItem
	for _, p := range m.pools {
		for _, c := range m.contacts {
			if x := p.items[c.id]; x != nil && m.prev[x.id].Status.Terminal() {
				out = append(out, x)
			}
		}
	}
	if len(out) == 0 {
		t.Skip("nothing finished")
	}
	x := rapid.SampledFrom(out).Draw(t, "item")
	_, err := m.eng.Requeue(m.ctx, x.p.id, x.c.id)
	require.NoError(t, err)
	t.Logf("Requeue %s (%d attempts)", m.name(x), x.attempts)
	m.observe(t, &xpAct{name: "Requeue", requeued: x})
}

// atLeaseEnd moves the clock to the very end of a lease (a call that has
// ended, though no write has applied its expiry yet) and claims in the
// contact's other pools first, then in the lease's.
func (m *xpMachine) atLeaseEnd(t *rapid.T) {
	now := m.clk.Now()
	var ahead []*xpItem
	for _, x := range m.held() {
		if x.lease.ExpiresAt.After(now) {
			ahead = append(ahead, x)
		}
	}
	if len(ahead) == 0 {
		t.Skip("no lease ends ahead")
	}
	x := rapid.SampledFrom(ahead).Draw(t, "lease")
	m.clk.Advance(x.lease.ExpiresAt.Sub(now))
	t.Logf("AtLeaseEnd of %s → %s", m.name(x), m.clk.Now().Format(time.RFC3339))
	for _, p := range append(slices.DeleteFunc(slices.Clone(m.pools), func(p *xpPool) bool { return p == x.p }), x.p) {
		_, _ = m.claim(t, p)
	}
}

func (m *xpMachine) tick(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Minute, 7 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 8 * time.Hour, 24 * time.Hour}).Draw(t, "tick")
	m.clk.Advance(d)
	t.Logf("Tick %s → %s", d, m.clk.Now().Format(time.RFC3339))
}

// toNext moves the clock to the next retry time or lease end, or a second
// before it.
func (m *xpMachine) toNext(t *rapid.T) {
	now := m.clk.Now()
	var next time.Time
	for _, p := range m.pools {
		for _, x := range p.items {
			var at time.Time
			switch it := m.prev[x.id]; {
			case x.lease != nil:
				at = x.lease.ExpiresAt
			case it.NextRetryAt != nil && it.Status.Waiting():
				at = *it.NextRetryAt
			}
			if at.After(now) && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	jumpTo(t, m.clk, now, next)
}

func (m *xpMachine) addDNC(t *rapid.T) {
	c := rapid.SampledFrom(m.contacts).Draw(t, "contact")
	n, err := m.eng.AddDNC(m.ctx, c.id)
	require.NoError(t, err)
	require.Equal(t, !c.dnc, n == 1, "AddDNC count")
	c.dnc = true
	t.Logf("AddDNC contact %d", c.idx)
	m.observe(t, &xpAct{name: "AddDNC"})
}

func (m *xpMachine) optOut(t *rapid.T) {
	c := rapid.SampledFrom(m.contacts).Draw(t, "contact")
	now := m.clk.Now()
	waiting, expired := 0, 0
	for _, p := range m.pools {
		if x := p.items[c.id]; x != nil {
			switch {
			case m.prev[x.id].Status.Waiting():
				waiting++
			case x.lease != nil && !now.Before(x.lease.ExpiresAt):
				expired++
			}
		}
	}
	c.opted = true
	n, err := m.eng.OptOut(m.ctx, c.id)
	require.NoError(t, err)
	t.Logf("OptOut contact %d → %d skipped", c.idx, n)
	m.observe(t, &xpAct{name: "OptOut", opted: c})
	if !m.rule.RemoveOnOptOut {
		require.Equal(t, 0, n, "nothing to skip without remove_on_opt_out")
		return
	}
	require.GreaterOrEqual(t, n, waiting, "OptOut count")
	require.LessOrEqual(t, n, waiting+expired, "OptOut count")
	for _, p := range m.pools {
		if x := p.items[c.id]; x != nil {
			require.False(t, m.prev[x.id].Status.Waiting(), "%s waiting after its contact opted out", m.name(x))
		}
	}
}
