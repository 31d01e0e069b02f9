package queue_test

// TestDifferential_SQLiteVsPostgres drives two engines — one over a fresh
// in-memory SQLite store (check mode), one over a fresh PostgreSQL schema —
// through the same random sequence of calls (pgregory.net/rapid), with one
// injected clock (queue.Options.Now) that the test moves, and fails on the
// first difference between them. It proves that the two stores give the
// engine the same behaviour, call for call, where the model tests only
// prove each store against the model's subset of it: validation errors,
// deleted and duplicated pools, contact fields and time zones, searches,
// pool listings, the do-not-call list, opt-outs and escalations are
// compared too.
//
// Compared, after each call: what it returns (errors by errors.Is against
// the sentinels of queue, pool, store and campaign, validation errors by
// their list of (field, rule); results field by field); and then the
// observable state: every pool's detail (settings, contacts_count,
// status_counts, campaigns), every pool's items page by page (and a page
// filtered by a status, and a search), the pool listing, every campaign and
// rule, and the escalations. What differs by construction is mapped, not
// dropped: the UUIDs each engine assigns (pools, campaigns, rules) map to
// each other by the order of creation; item and escalation IDs map by
// position (the PostgreSQL store's sequence skips the IDs of transactions
// rolled back: store/postgres/doc.go, Caveats), and the mapping must stay a
// bijection; fencing tokens are random steps (pool.Item.Token), so only
// whether an item has one, and whether its day's call is the current
// dispatch's, are compared. Leases compare by pool, contact, item, attempt,
// expiry and item, never by token.
//
// PostgreSQL is needed: without POOLQ_TEST_POSTGRES the test skips. It is a
// soak: a plain `go test ./queue` runs 3 checks (about 10 s); ask for
// more with POOLQ_DIFFERENTIAL_CHECKS (rapid's -rapid.steps / RAPID_STEPS
// set the length of each, as for the model tests):
//
//	POOLQ_TEST_POSTGRES='postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
//	POOLQ_DIFFERENTIAL_CHECKS=300 go test -run TestDifferential ./queue -count=1
//
// On a difference rapid prints the minimal failing sequence (each call is
// logged with both results) and the seed (-rapid.seed=…).

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
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
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

const (
	diffChecksEnv     = "POOLQ_DIFFERENTIAL_CHECKS"
	diffDefaultChecks = 3  // checks of a plain go test run
	diffContacts      = 10 // contact universe: small, so that Add meets duplicates
	diffMaxPools      = 4  // pools created at most (deleted ones included)
	diffMaxHeld       = 16 // lease pairs kept, stale ones included
)

// diffChecks is how many checks to run: POOLQ_DIFFERENTIAL_CHECKS, else
// diffDefaultChecks.
func diffChecks(t *testing.T) int {
	s := os.Getenv(diffChecksEnv)
	if s == "" {
		return diffDefaultChecks
	}
	n, err := strconv.Atoi(s)
	require.NoError(t, err, diffChecksEnv)
	require.Positive(t, n, diffChecksEnv)
	return n
}

func TestDifferential_SQLiteVsPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("a soak: not under -short (CI's race run); the plain run runs it")
	}
	url := pgtest.URL(t)
	t.Parallel()
	limit := int64(diffChecks(t))
	// rapid runs its own number of checks (-rapid.checks, RAPID_CHECKS, 100
	// by default) per Check: the runs past the limit return at once, until
	// one has failed (rapid then shrinks it, running it again and again:
	// those runs must all be real). A limit above rapid's number takes
	// several Checks.
	perCheck := int64(100)
	if f := flag.Lookup("rapid.checks"); f != nil {
		if n, err := strconv.ParseInt(f.Value.String(), 10, 64); err == nil && n > 0 {
			perCheck = n
		}
	}
	var runs atomic.Int64
	var failed atomic.Bool
	for done := int64(0); done < limit && !t.Failed(); done += perCheck {
		rapid.Check(t, func(rt *rapid.T) {
			if !failed.Load() && runs.Add(1) > limit {
				return
			}
			defer func() {
				if r := recover(); r != nil {
					failed.Store(true)
					panic(r)
				}
				if rt.Failed() {
					failed.Store(true)
				}
			}()
			diffRun(rt, url)
		})
	}
	t.Logf("%d differential checks", min(runs.Load(), limit))
}

// ---- the machine ----------------------------------------------------------

type diffPool struct {
	idx     int
	a, b    uuid.UUID
	deleted bool
}

type diffCampaign struct {
	idx  int
	a, b uuid.UUID
}

type diffRule struct {
	idx  int
	a, b uuid.UUID
}

// diffLease is one dispatch as both engines made it.
type diffLease struct {
	a, b *queue.Lease
	what string
}

type diffMachine struct {
	ctx      context.Context
	clock    *modelClock
	a, b     *queue.Engine
	perPage  int
	contacts []uuid.UUID

	pools     []*diffPool
	campaigns []*diffCampaign
	rules     []*diffRule
	held      []*diffLease

	bToA map[uuid.UUID]uuid.UUID // B's UUIDs (pools, campaigns, rules) as A's
	ids  diffIDMap               // item IDs
	escs diffIDMap               // escalation IDs

	deadlines []time.Time // lease ends and retry times seen at the last check
}

// diffIDMap maps B's IDs to A's, a bijection.
type diffIDMap struct{ bToA, aToB map[int64]int64 }

func newDiffIDMap() diffIDMap {
	return diffIDMap{bToA: map[int64]int64{}, aToB: map[int64]int64{}}
}

// pair records that B's id b is A's id a, and fails if either was paired
// with another.
func (m diffIDMap) pair(t *rapid.T, what string, a, b int64) {
	if x, ok := m.bToA[b]; ok {
		require.Equal(t, x, a, "%s: B's id %d was A's %d, now A's %d", what, b, x, a)
		return
	}
	if y, ok := m.aToB[a]; ok {
		require.Equal(t, y, b, "%s: A's id %d was B's %d, now B's %d", what, a, y, b)
	}
	m.bToA[b], m.aToB[a] = a, b
}

func diffRun(t *rapid.T, url string) {
	ctx := context.Background()
	clk := &modelClock{t: modelEpoch}
	opts := queue.Options{
		Now:          clk.Now,
		LeaseTimeout: modelLeaseTimeout,
		RetryDelay:   modelRetryDelay,
		PollInterval: time.Hour, // nothing here waits
	}
	open := func(st store.Store) *queue.Engine {
		eng, err := queue.New(st, opts)
		require.NoError(t, err, "queue.New")
		t.Cleanup(func() { _ = eng.Close() })
		return eng
	}
	m := &diffMachine{
		ctx:     ctx,
		clock:   clk,
		a:       open(openModelStore(t, sqlite.MemoryPath)),
		b:       open(pgtest.Open(t, url, postgres.Options{MaxConns: 2})),
		perPage: rapid.SampledFrom([]int{3, 100}).Draw(t, "per_page"),
		bToA:    map[uuid.UUID]uuid.UUID{},
		ids:     newDiffIDMap(),
		escs:    newDiffIDMap(),
	}
	for range diffContacts {
		m.contacts = append(m.contacts, uuid.New())
	}
	for range rapid.IntRange(1, 3).Draw(t, "pools") {
		m.createPool(t)
	}
	for i := range 2 {
		m.createRule(t, i)
	}
	for i := range 2 {
		m.createCampaign(t, i)
	}
	m.check(t)

	t.Repeat(map[string]func(*rapid.T){
		"":                m.check,
		"CreatePool":      m.createPool,
		"UpdatePool":      m.updatePool,
		"DeletePool":      m.deletePool,
		"DuplicatePool":   m.duplicatePool,
		"Add":             m.add,
		"Skip":            m.skip,
		"Requeue":         m.requeue,
		"SetPriority":     m.setPriority,
		"Remove":          m.remove,
		"TryDequeue":      func(t *rapid.T) { m.dequeue(t, false) },
		"DequeueN":        func(t *rapid.T) { m.dequeue(t, true) },
		"Complete":        func(t *rapid.T) { m.settle(t, "Complete") },
		"Fail":            func(t *rapid.T) { m.settle(t, "Fail") },
		"Release":         func(t *rapid.T) { m.settle(t, "Release") },
		"Extend":          func(t *rapid.T) { m.settle(t, "Extend") },
		"MarkInCall":      func(t *rapid.T) { m.settle(t, "MarkInCall") },
		"Settle":          m.settleMany,
		"Clock":           m.moveClock,
		"ToDeadline":      m.toDeadline,
		"Attach":          m.attach,
		"Detach":          m.detach,
		"CampaignAction":  m.campaignAction,
		"AssignRule":      m.assignRule,
		"UpdateRule":      m.updateRule,
		"DequeueCampaign": m.dequeueCampaign,
		"DNC":             m.dnc,
		"OptOut":          m.optOut,
		// Twice the weight for the calls that make the rest interesting.
		"Add'":            m.add,
		"TryDequeue'":     func(t *rapid.T) { m.dequeue(t, false) },
		"Fail'":           func(t *rapid.T) { m.settle(t, "Fail") },
		"Clock'":          m.moveClock,
		"CampaignAction'": m.campaignAction,
	})
	m.check(t)
}

// ---- comparing ------------------------------------------------------------

// diffSentinels are the errors a call may return, by name.
var diffSentinels = []struct {
	name string
	err  error
}{
	{"store.ErrNotFound", store.ErrNotFound},
	{"queue.ErrEmpty", queue.ErrEmpty},
	{"queue.ErrAtCapacity", queue.ErrAtCapacity},
	{"queue.ErrHeld", queue.ErrHeld},
	{"queue.ErrLeaseLost", queue.ErrLeaseLost},
	{"queue.ErrInFlight", queue.ErrInFlight},
	{"queue.ErrWrongStatus", queue.ErrWrongStatus},
	{"queue.ErrClosed", queue.ErrClosed},
	{"campaign.ErrWrongStatus", campaign.ErrWrongStatus},
	{"campaign.ErrConflict", campaign.ErrConflict},
	{"store.ErrConflict", store.ErrConflict},
}

// errClass names err: nil, the sentinels it is, or its field errors. An
// error none of them describes fails the test: no call here should return
// one.
func errClass(t *rapid.T, side string, err error) string {
	if err == nil {
		return "nil"
	}
	var fe validate.Errors
	if errors.As(err, &fe) {
		require.ErrorIs(t, err, validate.ErrInvalid, "%s: field errors not under validate.ErrInvalid: %v", side, err)
		var parts []string
		for _, f := range fe {
			parts = append(parts, f.Field+":"+f.Rule)
		}
		return "invalid[" + strings.Join(parts, " ") + "]"
	}
	var names []string
	for _, s := range diffSentinels {
		if errors.Is(err, s.err) {
			names = append(names, s.name)
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: unexpected error %v", side, err)
	}
	return strings.Join(names, "+")
}

// sameErr fails unless ea and eb are the same kind of error, and reports
// whether they are nil.
func (m *diffMachine) sameErr(t *rapid.T, what string, ea, eb error) bool {
	ca, cb := errClass(t, "sqlite", ea), errClass(t, "postgres", eb)
	require.Equal(t, ca, cb, "%s: error differs: sqlite %v, postgres %v", what, ea, eb)
	return ea == nil
}

// mapB returns B's UUID u as A's (unchanged if it is a contact or nil).
func (m *diffMachine) mapB(u uuid.UUID) uuid.UUID {
	if a, ok := m.bToA[u]; ok {
		return a
	}
	return u
}

// learn pairs A's and B's UUIDs of one new thing.
func (m *diffMachine) learn(t *rapid.T, a, b uuid.UUID) {
	require.NotEqual(t, uuid.Nil, a)
	require.NotEqual(t, uuid.Nil, b)
	m.bToA[b] = a
}

// normItem is it with what differs by construction made comparable: B's
// UUIDs and ids as A's, the fencing tokens reduced to what they say.
func (m *diffMachine) normItem(t *rapid.T, it pool.Item, isB bool) pool.Item {
	if isB {
		it.PoolUUID = m.mapB(it.PoolUUID)
		a, ok := m.ids.bToA[it.ID]
		require.True(t, ok, "postgres item id %d (contact %s) never paired", it.ID, it.ContactUUID)
		it.ID = a
	}
	switch {
	case it.CallToken == 0:
	case it.CallToken == it.Token:
		it.CallToken = -1 // the day's call is the current dispatch's
	default:
		it.CallToken = -2 // an earlier dispatch's
	}
	if it.Token != 0 {
		it.Token = 1
	}
	return it
}

// sameItem compares an item as both engines return it, pairing their ids.
func (m *diffMachine) sameItem(t *rapid.T, what string, ia, ib pool.Item) {
	require.Equal(t, ia.ContactUUID, ib.ContactUUID, "%s: contact", what)
	m.ids.pair(t, what, ia.ID, ib.ID)
	require.Equal(t, m.normItem(t, ia, false), m.normItem(t, ib, true), "%s: item differs", what)
}

func (m *diffMachine) sameItems(t *rapid.T, what string, a, b []pool.Item) {
	require.Equal(t, len(a), len(b), "%s: number of items", what)
	for i := range a {
		m.sameItem(t, fmt.Sprintf("%s[%d]", what, i), a[i], b[i])
	}
}

func (m *diffMachine) normPool(p pool.Pool, isB bool) pool.Pool {
	if isB {
		p.UUID = m.mapB(p.UUID)
	}
	return p
}

func (m *diffMachine) normDetail(d pool.Detail, isB bool) pool.Detail {
	d.Pool = m.normPool(d.Pool, isB)
	if isB {
		d.Campaigns = slices.Clone(d.Campaigns)
		for i := range d.Campaigns {
			d.Campaigns[i].UUID = m.mapB(d.Campaigns[i].UUID)
		}
	}
	return d
}

func (m *diffMachine) normCampaign(c campaign.Campaign, isB bool) campaign.Campaign {
	if isB {
		c.UUID = m.mapB(c.UUID)
		if c.RuleUUID != nil {
			r := m.mapB(*c.RuleUUID)
			c.RuleUUID = &r
		}
		c.PoolUUIDs = slices.Clone(c.PoolUUIDs)
		for i := range c.PoolUUIDs {
			c.PoolUUIDs[i] = m.mapB(c.PoolUUIDs[i])
		}
	}
	return c
}

func (m *diffMachine) normRule(r campaign.Rule, isB bool) campaign.Rule {
	if isB {
		r.UUID = m.mapB(r.UUID)
	}
	return r
}

// sameLeases compares the leases of one claim on both engines.
func (m *diffMachine) sameLeases(t *rapid.T, what string, la, lb []*queue.Lease) {
	require.Equal(t, len(la), len(lb), "%s: number of leases", what)
	for i := range la {
		a, b := la[i], lb[i]
		w := fmt.Sprintf("%s: lease %d", what, i)
		require.Equal(t, a.PoolUUID, m.mapB(b.PoolUUID), "%s: pool", w)
		require.Equal(t, a.ContactUUID, b.ContactUUID, "%s: contact", w)
		require.Equal(t, a.Attempt, b.Attempt, "%s: attempt", w)
		require.True(t, a.ExpiresAt.Equal(b.ExpiresAt), "%s: expires_at %v vs %v", w, a.ExpiresAt, b.ExpiresAt)
		m.ids.pair(t, w, a.ItemID, b.ItemID)
		require.Equal(t, a.ItemID, a.Item.ID, "%s: sqlite lease item", w)
		require.Equal(t, b.ItemID, b.Item.ID, "%s: postgres lease item", w)
		require.Equal(t, a.Token, a.Item.Token, "%s: sqlite lease token vs its item's", w)
		require.Equal(t, b.Token, b.Item.Token, "%s: postgres lease token vs its item's", w)
		m.sameItem(t, w+" item", a.Item, b.Item)
		m.hold(&diffLease{a: a, b: b, what: fmt.Sprintf("%s#%d", m.contactName(a.ContactUUID), a.Attempt)})
	}
}

func (m *diffMachine) hold(h *diffLease) {
	m.held = append(m.held, h)
	if len(m.held) > diffMaxHeld {
		m.held = m.held[1:]
	}
}

func (m *diffMachine) contactName(c uuid.UUID) string {
	if i := slices.Index(m.contacts, c); i >= 0 {
		return fmt.Sprintf("c%d", i)
	}
	return c.String()
}

// ---- the state after each step -----------------------------------------

func (m *diffMachine) check(t *rapid.T) {
	var deadlines []time.Time
	for _, p := range m.pools {
		w := fmt.Sprintf("pool %d", p.idx)
		da, ea := m.a.Pool(m.ctx, p.a)
		db, eb := m.b.Pool(m.ctx, p.b)
		if !m.sameErr(t, w+": Pool", ea, eb) {
			require.True(t, p.deleted, "%s: not found, yet not deleted", w)
			continue
		}
		require.False(t, p.deleted, "%s: found after its deletion", w)
		require.Equal(t, m.normDetail(da, false), m.normDetail(db, true), "%s: detail differs", w)

		ia, ib := allItems(m.ctx, t, m.a, p.a, m.perPage), allItems(m.ctx, t, m.b, p.b, m.perPage)
		m.sameItems(t, w+": items", ia, ib)
		// A page filtered by a status, and a search of the contacts.
		q := pool.ItemQuery{
			Status: rapid.SampledFrom(pool.Statuses()).Draw(t, "status filter"),
			Search: rapid.SampledFrom([]string{"", "ada", "lovelace 3", "+155500000"}).Draw(t, "search"),
		}
		fa, ea := m.a.Items(m.ctx, p.a, q)
		fb, eb := m.b.Items(m.ctx, p.b, q)
		require.True(t, m.sameErr(t, w+": Items filtered", ea, eb))
		require.Equal(t, []int{fa.CurrentPage, fa.LastPage, fa.PerPage, fa.Total}, []int{fb.CurrentPage, fb.LastPage, fb.PerPage, fb.Total}, "%s: page of %+v", w, q)
		m.sameItems(t, fmt.Sprintf("%s: items %+v", w, q), fa.Data, fb.Data)
		for _, it := range ia {
			if !it.LeaseExpiresAt.IsZero() {
				deadlines = append(deadlines, it.LeaseExpiresAt)
			}
			if it.NextRetryAt != nil {
				deadlines = append(deadlines, *it.NextRetryAt)
			}
		}
	}
	m.deadlines = deadlines

	// Listings: pools (by creation; the test makes every pool's created_at
	// distinct, since ties are broken by UUID, which differs by
	// construction), campaigns' and rules' details, escalations.
	pa, ea := m.a.Pools(m.ctx, pool.PoolQuery{PerPage: pool.MaxPerPage})
	pb, eb := m.b.Pools(m.ctx, pool.PoolQuery{PerPage: pool.MaxPerPage})
	require.True(t, m.sameErr(t, "Pools", ea, eb))
	for i := range pb.Data {
		pb.Data[i] = m.normPool(pb.Data[i], true)
	}
	require.Equal(t, pa, pb, "Pools listing differs")

	q := pool.PoolQuery{
		Page:    rapid.IntRange(1, 2).Draw(t, "pools page"),
		PerPage: 2,
		Type:    pool.Type(rapid.SampledFrom([]string{"", "", "fifo", "Parallel"}).Draw(t, "pools type")),
		Search:  rapid.SampledFrom([]string{"", "", "POOL 1", "copy", "pö", "lifo"}).Draw(t, "pools search"),
	}
	if rapid.IntRange(0, 2).Draw(t, "pools active filter") == 0 {
		q.IsActive = pqPtr(rapid.Bool().Draw(t, "pools active"))
	}
	pa, ea = m.a.Pools(m.ctx, q)
	pb, eb = m.b.Pools(m.ctx, q)
	require.True(t, m.sameErr(t, "Pools filtered", ea, eb))
	for i := range pb.Data {
		pb.Data[i] = m.normPool(pb.Data[i], true)
	}
	require.Equal(t, pa, pb, "Pools listing %+v differs", q)

	// One item by its contact.
	if len(m.pools) > 0 {
		p := m.pools[rapid.IntRange(0, len(m.pools)-1).Draw(t, "item pool")]
		c := m.contacts[m.drawContact(t)]
		ia, ea := m.a.Item(m.ctx, p.a, c)
		ib, eb := m.b.Item(m.ctx, p.b, c)
		if m.sameErr(t, "Item", ea, eb) {
			m.sameItem(t, "Item", ia, ib)
		}
	}

	// The campaigns and rules, each and listed (every one has a
	// created_at of its own: see createRule), and the do-not-call list.
	ka, ea := m.a.Campaigns(m.ctx, campaign.Query{PerPage: 100})
	kb, eb := m.b.Campaigns(m.ctx, campaign.Query{PerPage: 100})
	require.True(t, m.sameErr(t, "Campaigns", ea, eb))
	for i := range kb.Data {
		kb.Data[i] = m.normCampaign(kb.Data[i], true)
	}
	require.Equal(t, ka, kb, "Campaigns listing differs")
	la, ea := m.a.Rules(m.ctx, campaign.RuleQuery{PerPage: 100})
	lb, eb := m.b.Rules(m.ctx, campaign.RuleQuery{PerPage: 100})
	require.True(t, m.sameErr(t, "Rules", ea, eb))
	for i := range lb.Data {
		lb.Data[i] = m.normRule(lb.Data[i], true)
	}
	require.Equal(t, la, lb, "Rules listing differs")
	na, ea := m.a.DNC(m.ctx, campaign.DNCQuery{PerPage: 100})
	nb, eb := m.b.DNC(m.ctx, campaign.DNCQuery{PerPage: 100})
	require.True(t, m.sameErr(t, "DNC", ea, eb))
	require.Equal(t, na, nb, "DNC listing differs")

	for _, c := range m.campaigns {
		ca, ea := m.a.Campaign(m.ctx, c.a)
		cb, eb := m.b.Campaign(m.ctx, c.b)
		require.True(t, m.sameErr(t, "Campaign", ea, eb))
		require.Equal(t, ca, m.normCampaign(cb, true), "campaign %d differs", c.idx)
	}
	for _, r := range m.rules {
		ra, ea := m.a.Rule(m.ctx, r.a)
		rb, eb := m.b.Rule(m.ctx, r.b)
		require.True(t, m.sameErr(t, "Rule", ea, eb))
		require.Equal(t, ra, m.normRule(rb, true), "rule %d differs", r.idx)
	}
	xa, ea := m.a.Escalations(m.ctx, campaign.EscalationQuery{})
	xb, eb := m.b.Escalations(m.ctx, campaign.EscalationQuery{})
	require.True(t, m.sameErr(t, "Escalations", ea, eb))
	require.Equal(t, len(xa), len(xb), "number of escalations")
	for i := range xa {
		a, b := xa[i], xb[i]
		m.escs.pair(t, "escalation", a.ID, b.ID)
		m.ids.pair(t, "escalation item", a.ItemID, b.ItemID)
		b.ID, b.ItemID = a.ID, a.ItemID
		b.PoolUUID, b.CampaignUUID, b.RuleUUID = m.mapB(b.PoolUUID), m.mapB(b.CampaignUUID), m.mapB(b.RuleUUID)
		require.Equal(t, a, b, "escalation %d differs", i)
	}
}

// ---- drawing --------------------------------------------------------------

// drawPool picks a pool, a deleted one now and then.
func (m *diffMachine) drawPool(t *rapid.T) *diffPool {
	if len(m.pools) == 0 {
		t.Skip("no pool")
	}
	var live []*diffPool
	for _, p := range m.pools {
		if !p.deleted {
			live = append(live, p)
		}
	}
	if len(live) == 0 || (len(live) < len(m.pools) && rapid.IntRange(0, 9).Draw(t, "deleted pool?") == 0) {
		return m.pools[rapid.IntRange(0, len(m.pools)-1).Draw(t, "any pool")]
	}
	return live[rapid.IntRange(0, len(live)-1).Draw(t, "pool")]
}

func (m *diffMachine) drawContact(t *rapid.T) int {
	return rapid.IntRange(0, diffContacts-1).Draw(t, "contact")
}

func (m *diffMachine) drawCampaign(t *rapid.T) *diffCampaign {
	return m.campaigns[rapid.IntRange(0, len(m.campaigns)-1).Draw(t, "campaign")]
}

func (m *diffMachine) drawRule(t *rapid.T) *diffRule {
	return m.rules[rapid.IntRange(0, len(m.rules)-1).Draw(t, "rule")]
}

// ---- pools ----------------------------------------------------------------

func (m *diffMachine) createPool(t *rapid.T) {
	if len(m.pools) >= diffMaxPools {
		t.Skip("enough pools")
	}
	// A created_at of its own: pools created at one instant list in UUID
	// order (pool.PoolQuery), which differs by construction.
	m.clock.set(m.clock.Now().Add(time.Millisecond))
	p := pool.CreateParams{
		Name:        fmt.Sprintf("diff pool %d", len(m.pools)),
		Description: "differential",
		Type:        pool.Type(rapid.SampledFrom([]string{"FIFO", "LIFO", "Parallel", "parallel", "lifo"}).Draw(t, "type")),
	}
	if rapid.Bool().Draw(t, "set cap") {
		p.MaxParallelItems = pqPtr(rapid.IntRange(1, 4).Draw(t, "max_parallel_items"))
	}
	if rapid.Bool().Draw(t, "set retries") {
		p.MaxRetries = pqPtr(diffRetries.Draw(t, "max_retries"))
	}
	if rapid.IntRange(0, 5).Draw(t, "bad input?") == 0 {
		switch rapid.IntRange(0, 3).Draw(t, "bad field") {
		case 0:
			p.Name = "ab"
		case 1:
			p.Description = "  "
		case 2:
			p.MaxParallelItems = pqPtr(rapid.SampledFrom([]int{0, 101}).Draw(t, "bad cap"))
		case 3:
			p.Type, p.MaxRetries = "Random", pqPtr(-1)
		}
	}
	pa, ea := m.a.CreatePool(m.ctx, p)
	pb, eb := m.b.CreatePool(m.ctx, p)
	t.Logf("CreatePool %q type=%s cap=%v retries=%v → %v / %v", p.Name, p.Type, derefOr(p.MaxParallelItems, -1), derefOr(p.MaxRetries, -1), ea, eb)
	if !m.sameErr(t, "CreatePool", ea, eb) {
		return
	}
	m.learn(t, pa.UUID, pb.UUID)
	require.Equal(t, pa, m.normPool(pb, true), "CreatePool result")
	m.pools = append(m.pools, &diffPool{idx: len(m.pools), a: pa.UUID, b: pb.UUID})
}

func (m *diffMachine) updatePool(t *rapid.T) {
	p := m.drawPool(t)
	var u pool.UpdateParams
	if rapid.Bool().Draw(t, "change type") {
		u.Type = pqPtr(pool.Type(rapid.SampledFrom([]string{"FIFO", "LIFO", "Parallel", "fifo", "PARALLEL"}).Draw(t, "type")))
	}
	if rapid.Bool().Draw(t, "change cap") {
		u.MaxParallelItems = pqPtr(rapid.IntRange(0, 4).Draw(t, "max_parallel_items")) // 0 is refused
	}
	if rapid.Bool().Draw(t, "change retries") {
		u.MaxRetries = pqPtr(rapid.OneOf(diffRetries, rapid.Just(-1)).Draw(t, "max_retries")) // -1 is refused
	}
	if rapid.IntRange(0, 3).Draw(t, "change active") == 0 {
		u.IsActive = pqPtr(rapid.Bool().Draw(t, "is_active"))
	}
	if rapid.IntRange(0, 5).Draw(t, "rename") == 0 {
		u.Name = pqPtr(rapid.SampledFrom([]string{"renamed pool", "x", "Pööl ✓"}).Draw(t, "name"))
	}
	pa, ea := m.a.UpdatePool(m.ctx, p.a, u)
	pb, eb := m.b.UpdatePool(m.ctx, p.b, u)
	t.Logf("UpdatePool pool=%d type=%v cap=%v retries=%v active=%v name=%v → %v / %v", p.idx,
		derefOr(u.Type, "-"), derefOr(u.MaxParallelItems, -9), derefOr(u.MaxRetries, -9), derefOr(u.IsActive, false), derefOr(u.Name, "-"), ea, eb)
	if m.sameErr(t, "UpdatePool", ea, eb) {
		require.Equal(t, pa, m.normPool(pb, true), "UpdatePool result")
	}
}

func (m *diffMachine) deletePool(t *rapid.T) {
	p := m.drawPool(t)
	ea := m.a.DeletePool(m.ctx, p.a)
	eb := m.b.DeletePool(m.ctx, p.b)
	t.Logf("DeletePool pool=%d → %v / %v", p.idx, ea, eb)
	if m.sameErr(t, "DeletePool", ea, eb) {
		p.deleted = true
	}
}

func (m *diffMachine) duplicatePool(t *rapid.T) {
	if len(m.pools) >= diffMaxPools {
		t.Skip("enough pools")
	}
	p := m.drawPool(t)
	m.clock.set(m.clock.Now().Add(time.Millisecond)) // a created_at of its own
	var d pool.DuplicateParams
	if rapid.Bool().Draw(t, "copy contacts given") {
		d.CopyContacts = pqPtr(rapid.Bool().Draw(t, "copy contacts"))
	}
	if rapid.IntRange(0, 3).Draw(t, "name given") == 0 {
		d.Name = pqPtr(rapid.SampledFrom([]string{"the copy", "no"}).Draw(t, "copy name"))
	}
	ra, ea := m.a.DuplicatePool(m.ctx, p.a, d)
	rb, eb := m.b.DuplicatePool(m.ctx, p.b, d)
	t.Logf("DuplicatePool pool=%d copy=%v name=%v → %v / %v", p.idx, derefOr(d.CopyContacts, true), derefOr(d.Name, "-"), ea, eb)
	if !m.sameErr(t, "DuplicatePool", ea, eb) {
		return
	}
	m.learn(t, ra.UUID, rb.UUID)
	m.pools = append(m.pools, &diffPool{idx: len(m.pools), a: ra.UUID, b: rb.UUID})
	rb.Pool = m.normPool(rb.Pool, true)
	require.Equal(t, ra, rb, "DuplicatePool result")
}

// ---- items ----------------------------------------------------------------

var (
	// Priorities and retry ceilings: small ones, and the extremes of an int
	// (each store keeps 64 bits; a ceiling of max_retries + 1 overflows;
	// 2^31 where an int holds it).
	diffPriority = rapid.OneOf(rapid.IntRange(-1, 2), rapid.SampledFrom([]int{math.MinInt, math.MaxInt}))
	diffRetries  = rapid.OneOf(rapid.IntRange(0, 3), rapid.SampledFrom([]int{min(math.MaxInt32+1, math.MaxInt), math.MaxInt}))
	// Payloads: the caller's bytes must come back exactly.
	diffPayloads = []string{`{"contact":%d}`, ` { "contact" : %d , "x":"\u00e9é" } `, `[%d,null,1.50]`}
)

var diffZones = []string{"", "", "UTC", "America/New_York", "Asia/Kolkata"}

func (m *diffMachine) add(t *rapid.T) {
	p := m.drawPool(t)
	k := rapid.IntRange(1, 5).Draw(t, "batch size")
	batch := make([]pool.NewItem, k)
	var desc []string
	for i := range batch {
		c := m.drawContact(t)
		n := pool.NewItem{
			ContactUUID: m.contacts[c],
			Priority:    diffPriority.Draw(t, "priority"),
			Payload:     json.RawMessage(fmt.Sprintf(rapid.SampledFrom(diffPayloads).Draw(t, "payload"), c)),
		}
		if rapid.Bool().Draw(t, "contact fields") {
			n.Contact = pool.Contact{
				Name:        fmt.Sprintf("Ada Lövelace %d", c),
				PhoneNumber: fmt.Sprintf("+1555000%04d", c),
				TimeZone:    rapid.SampledFrom(diffZones).Draw(t, "zone"),
			}
		}
		batch[i] = n
		desc = append(desc, fmt.Sprintf("c%d/p%d/%s", c, n.Priority, n.TimeZone))
	}
	if rapid.IntRange(0, 5).Draw(t, "bad input?") == 0 {
		i := rapid.IntRange(0, k-1).Draw(t, "bad index")
		switch rapid.IntRange(0, 3).Draw(t, "bad field") {
		case 0:
			batch[i].ContactUUID = uuid.Nil
		case 1:
			batch[i].Payload = json.RawMessage(`{"open":`)
		case 2:
			batch[i].PhoneNumber = "555-1234"
		case 3:
			batch[i].TimeZone = "Mars/Olympus"
		}
		desc[i] += "(bad)"
	}
	ra, ea := m.a.Add(m.ctx, p.a, batch...)
	rb, eb := m.b.Add(m.ctx, p.b, batch...)
	t.Logf("Add pool=%d %v → %+v %v / %+v %v", p.idx, desc, ra, ea, rb, eb)
	if m.sameErr(t, "Add", ea, eb) {
		require.Equal(t, ra, rb, "Add result")
	}
}

// itemOp runs one call on a pool's item on both engines and compares
// the items returned.
func (m *diffMachine) itemOp(t *rapid.T, name string, call func(e *queue.Engine, p uuid.UUID, c uuid.UUID) (pool.Item, error)) {
	p := m.drawPool(t)
	c := m.drawContact(t)
	ia, ea := call(m.a, p.a, m.contacts[c])
	ib, eb := call(m.b, p.b, m.contacts[c])
	t.Logf("%s pool=%d c%d at +%v → %s %v / %s %v", name, p.idx, c, m.clock.Now().Sub(modelEpoch), ia.Status, ea, ib.Status, eb)
	if m.sameErr(t, name, ea, eb) {
		m.sameItem(t, name+" result", ia, ib)
	}
}

func (m *diffMachine) skip(t *rapid.T) {
	note := rapid.SampledFrom([]string{"dnc", "", "nicht anrufen ☎"}).Draw(t, "note")
	m.itemOp(t, "Skip", func(e *queue.Engine, p, c uuid.UUID) (pool.Item, error) { return e.Skip(m.ctx, p, c, note) })
}

func (m *diffMachine) requeue(t *rapid.T) {
	m.itemOp(t, "Requeue", func(e *queue.Engine, p, c uuid.UUID) (pool.Item, error) { return e.Requeue(m.ctx, p, c) })
}

func (m *diffMachine) setPriority(t *rapid.T) {
	prio := diffPriority.Draw(t, "priority")
	m.itemOp(t, "SetPriority", func(e *queue.Engine, p, c uuid.UUID) (pool.Item, error) {
		return e.SetPriority(m.ctx, p, c, prio)
	})
}

func (m *diffMachine) remove(t *rapid.T) {
	p := m.drawPool(t)
	var cs []uuid.UUID
	for range rapid.IntRange(0, 3).Draw(t, "remove count") { // none is refused
		cs = append(cs, m.contacts[m.drawContact(t)])
	}
	na, ea := m.a.Remove(m.ctx, p.a, cs...)
	nb, eb := m.b.Remove(m.ctx, p.b, cs...)
	t.Logf("Remove pool=%d %d contacts → %d %v / %d %v", p.idx, len(cs), na, ea, nb, eb)
	if m.sameErr(t, "Remove", ea, eb) {
		require.Equal(t, na, nb, "Remove count")
	}
}

// ---- dispatch -------------------------------------------------------------

func (m *diffMachine) dequeue(t *rapid.T, many bool) {
	p := m.drawPool(t)
	var (
		la, lb []*queue.Lease
		ea, eb error
		n      = 1
	)
	if many {
		// DequeueN's claim without its wait (nothing here may block).
		n = rapid.IntRange(1, 5).Draw(t, "n")
		la, ea = queue.TryDequeueN(m.ctx, m.a, p.a, n)
		lb, eb = queue.TryDequeueN(m.ctx, m.b, p.b, n)
	} else {
		var a, b *queue.Lease
		a, ea = m.a.TryDequeue(m.ctx, p.a)
		b, eb = m.b.TryDequeue(m.ctx, p.b)
		if a != nil {
			la = append(la, a)
		}
		if b != nil {
			lb = append(lb, b)
		}
	}
	t.Logf("Dequeue pool=%d n=%d at +%v → %s %v / %s %v", p.idx, n, m.clock.Now().Sub(modelEpoch), m.leasesStr(la), ea, m.leasesStr(lb), eb)
	m.sameErr(t, "Dequeue", ea, eb)
	m.sameLeases(t, "Dequeue", la, lb)
}

func (m *diffMachine) leasesStr(ls []*queue.Lease) string {
	var s []string
	for _, l := range ls {
		s = append(s, fmt.Sprintf("%s#%d", m.contactName(l.ContactUUID), l.Attempt))
	}
	return "[" + strings.Join(s, " ") + "]"
}

func (m *diffMachine) settle(t *rapid.T, op string) {
	if len(m.held) == 0 {
		t.Skip("no lease held")
	}
	h := m.held[rapid.IntRange(0, len(m.held)-1).Draw(t, "lease")]
	var (
		f    queue.Failure
		ext  time.Duration
		note string
	)
	switch op {
	case "Complete":
		note = rapid.SampledFrom([]string{"answered", "", "voicemail"}).Draw(t, "note")
	case "Fail":
		f.Note = rapid.SampledFrom([]string{"busy", "", "no answer"}).Draw(t, "note")
		switch rapid.SampledFrom([]string{"default", "future", "past", "final"}).Draw(t, "failure") {
		case "future":
			f.RetryAt = m.clock.Now().Add(time.Duration(rapid.IntRange(1, 40).Draw(t, "retry in s")) * time.Second)
		case "past":
			f.RetryAt = m.clock.Now().Add(-time.Duration(rapid.IntRange(0, 20).Draw(t, "retry ago s")) * time.Second)
		case "final":
			f.Final = true
		}
	case "Extend":
		ext = rapid.SampledFrom([]time.Duration{0, time.Second, modelLeaseTimeout, 30 * time.Second}).Draw(t, "extend by")
	}
	// Each engine settles its own copy: Extend and MarkInCall change the
	// lease they are given.
	run := func(e *queue.Engine, l *queue.Lease) error {
		switch op {
		case "Complete":
			return e.Complete(m.ctx, l, note)
		case "Fail":
			return e.Fail(m.ctx, l, f)
		case "Release":
			return e.Release(m.ctx, l)
		case "Extend":
			return e.Extend(m.ctx, l, ext)
		default:
			return e.MarkInCall(m.ctx, l)
		}
	}
	ea := run(m.a, h.a)
	eb := run(m.b, h.b)
	t.Logf("%s %s at +%v note=%q fail=%+v extend=%v → %v / %v", op, h.what, m.clock.Now().Sub(modelEpoch), note, f, ext, ea, eb)
	m.sameErr(t, op, ea, eb)
	require.True(t, h.a.ExpiresAt.Equal(h.b.ExpiresAt), "%s: lease expires_at after it: %v vs %v", op, h.a.ExpiresAt, h.b.ExpiresAt)
	require.Equal(t, h.a.Item.Status, h.b.Item.Status, "%s: lease item status after it", op)
}

// settleMany settles a few held leases (the same one twice, now and then)
// in one Engine.Settle.
func (m *diffMachine) settleMany(t *rapid.T) {
	if len(m.held) == 0 {
		t.Skip("no lease held")
	}
	var oa, ob []queue.Outcome
	var desc []string
	for range rapid.IntRange(1, 3).Draw(t, "outcomes") {
		h := m.held[rapid.IntRange(0, len(m.held)-1).Draw(t, "lease")]
		o := queue.Outcome{Note: rapid.SampledFrom([]string{"", "answered"}).Draw(t, "note")}
		switch rapid.IntRange(0, 5).Draw(t, "outcome") {
		case 0:
			o.Failure = &queue.Failure{Note: "busy"}
		case 1:
			o.Failure = &queue.Failure{Final: true}
		case 2:
			o.Failure = &queue.Failure{RetryAt: m.clock.Now().Add(7 * time.Second)}
		}
		if o.Failure != nil && rapid.IntRange(0, 3).Draw(t, "note beside a failure") > 0 {
			o.Note = "" // a Note beside a Failure is refused: now and then only
		}
		a, b := o, o
		a.Lease, b.Lease = h.a, h.b
		oa, ob = append(oa, a), append(ob, b)
		desc = append(desc, fmt.Sprintf("%s fail=%v note=%q", h.what, o.Failure != nil, o.Note))
	}
	ra, ea := m.a.Settle(m.ctx, oa...)
	rb, eb := m.b.Settle(m.ctx, ob...)
	t.Logf("Settle %v at +%v → %v %v / %v %v", desc, m.clock.Now().Sub(modelEpoch), ra, ea, rb, eb)
	m.sameErr(t, "Settle", ea, eb)
	require.Equal(t, len(ra), len(rb), "Settle: number of results")
	for i := range ra {
		m.sameErr(t, fmt.Sprintf("Settle result %d", i), ra[i], rb[i])
	}
}

// ---- the clock ------------------------------------------------------------

func (m *diffMachine) moveClock(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{
		time.Nanosecond, time.Second, 5 * time.Second, modelLeaseTimeout, modelRetryDelay + time.Second,
		2 * time.Minute, 7 * time.Hour, 24 * time.Hour, // into and out of the rules' windows, and over days
		-time.Nanosecond, -3 * time.Second, // a clock stepped back
	}).Draw(t, "clock by")
	m.clock.set(m.clock.Now().Add(d))
	t.Logf("Clock %v → +%v", d, m.clock.Now().Sub(modelEpoch))
}

// toDeadline moves the clock onto (or 1ns before) a lease end or retry
// time seen at the last check: where "due" and "expired" flip.
func (m *diffMachine) toDeadline(t *rapid.T) {
	now := m.clock.Now()
	var ts []time.Time
	for _, x := range m.deadlines {
		if x.After(now) {
			ts = append(ts, x)
		}
	}
	if len(ts) == 0 {
		t.Skip("no future deadline")
	}
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	to := ts[rapid.IntRange(0, len(ts)-1).Draw(t, "deadline")]
	if rapid.Bool().Draw(t, "just before") && to.Add(-time.Nanosecond).After(now) {
		to = to.Add(-time.Nanosecond)
	}
	m.clock.set(to)
	t.Logf("ToDeadline → +%v", to.Sub(modelEpoch))
}

// ---- campaigns and rules ----------------------------------------------------

var diffWindows = []string{"00:00-23:59", "03:00-03:06", "03:05-04:00", "08:30-09:00", "22:00-23:00"}

func (m *diffMachine) createRule(t *rapid.T, i int) {
	m.clock.set(m.clock.Now().Add(time.Millisecond)) // a created_at of its own (listings break ties by UUID)
	p := campaign.CreateRuleParams{Name: fmt.Sprintf("diff rule %d", i)}
	w := rapid.SampledFrom(diffWindows).Draw(t, "window")
	p.StartTime = pqPtr(w[:5])
	if rapid.IntRange(0, 3).Draw(t, "text rule?") == 0 {
		p.Type = campaign.Text
	} else {
		p.EndTime = pqPtr(w[6:])
		p.MaxTotalCalls = pqPtr(rapid.IntRange(1, 4).Draw(t, "max_total_calls"))
		p.RetryIntervalMinutes = pqPtr(rapid.IntRange(1, 3).Draw(t, "retry_interval_minutes"))
		p.MaxCallsPerDay = pqPtr(rapid.IntRange(1, 5).Draw(t, "max_calls_per_day"))
		if rapid.Bool().Draw(t, "escalate") {
			p.EscalationAfterFailedAttempts = pqPtr(rapid.IntRange(1, 2).Draw(t, "escalation after"))
			p.EscalationType, p.EscalationTarget = pqPtr("email"), pqPtr("lead@example.com")
		}
	}
	p.DNCCheck = pqPtr(rapid.Bool().Draw(t, "dnc_check"))
	p.RemoveOnOptOut = pqPtr(rapid.Bool().Draw(t, "remove_on_opt_out"))
	ra, ea := m.a.CreateRule(m.ctx, p)
	rb, eb := m.b.CreateRule(m.ctx, p)
	t.Logf("CreateRule %d type=%s window=%s → %v / %v", i, p.Type, w, ea, eb)
	require.True(t, m.sameErr(t, "CreateRule", ea, eb), "CreateRule")
	m.learn(t, ra.UUID, rb.UUID)
	require.Equal(t, ra, m.normRule(rb, true), "CreateRule result")
	m.rules = append(m.rules, &diffRule{idx: i, a: ra.UUID, b: rb.UUID})
}

func (m *diffMachine) createCampaign(t *rapid.T, i int) {
	m.clock.set(m.clock.Now().Add(time.Millisecond)) // a created_at of its own
	p := campaign.CreateParams{Name: fmt.Sprintf("diff campaign %d", i), TimeZone: rapid.SampledFrom(diffZones).Draw(t, "campaign zone")}
	pa, pb := p, p
	if k := rapid.IntRange(-1, len(m.rules)-1).Draw(t, "campaign rule"); k >= 0 {
		pa.RuleUUID, pb.RuleUUID = &m.rules[k].a, &m.rules[k].b
	}
	ca, ea := m.a.CreateCampaign(m.ctx, pa)
	cb, eb := m.b.CreateCampaign(m.ctx, pb)
	t.Logf("CreateCampaign %d zone=%q → %v / %v", i, p.TimeZone, ea, eb)
	require.True(t, m.sameErr(t, "CreateCampaign", ea, eb), "CreateCampaign")
	m.learn(t, ca.UUID, cb.UUID)
	require.Equal(t, ca, m.normCampaign(cb, true), "CreateCampaign result")
	m.campaigns = append(m.campaigns, &diffCampaign{idx: i, a: ca.UUID, b: cb.UUID})
}

func (m *diffMachine) attach(t *rapid.T) {
	c := m.drawCampaign(t)
	p := m.drawPool(t)
	ra, ea := m.a.AttachPools(m.ctx, c.a, p.a)
	rb, eb := m.b.AttachPools(m.ctx, c.b, p.b)
	t.Logf("Attach campaign=%d pool=%d → %+v %v / %+v %v", c.idx, p.idx, ra, ea, rb, eb)
	if m.sameErr(t, "AttachPools", ea, eb) {
		rb.PoolUUIDsNotFound = slices.Clone(rb.PoolUUIDsNotFound)
		for i, u := range rb.PoolUUIDsNotFound {
			rb.PoolUUIDsNotFound[i] = m.mapB(u)
		}
		require.Equal(t, ra, rb, "AttachPools result")
	}
}

func (m *diffMachine) detach(t *rapid.T) {
	c := m.drawCampaign(t)
	p := m.drawPool(t)
	da, ea := m.a.DetachPool(m.ctx, c.a, p.a)
	db, eb := m.b.DetachPool(m.ctx, c.b, p.b)
	t.Logf("Detach campaign=%d pool=%d → %v %v / %v %v", c.idx, p.idx, da, ea, db, eb)
	if m.sameErr(t, "DetachPool", ea, eb) {
		require.Equal(t, da, db, "DetachPool result")
	}
}

func (m *diffMachine) campaignAction(t *rapid.T) {
	c := m.drawCampaign(t)
	a := rapid.SampledFrom([]campaign.Action{campaign.Start, campaign.Pause, campaign.Resume, campaign.Complete, campaign.Archive}).Draw(t, "action")
	run := func(e *queue.Engine, id uuid.UUID) (campaign.Campaign, error) {
		switch a {
		case campaign.Start:
			return e.StartCampaign(m.ctx, id)
		case campaign.Pause:
			return e.PauseCampaign(m.ctx, id)
		case campaign.Resume:
			return e.ResumeCampaign(m.ctx, id)
		case campaign.Complete:
			return e.CompleteCampaign(m.ctx, id)
		default:
			return e.ArchiveCampaign(m.ctx, id)
		}
	}
	ca, ea := run(m.a, c.a)
	cb, eb := run(m.b, c.b)
	t.Logf("%s campaign=%d → %s %v / %s %v", a, c.idx, ca.Status, ea, cb.Status, eb)
	if m.sameErr(t, string(a), ea, eb) {
		require.Equal(t, ca, m.normCampaign(cb, true), "%s result", a)
	}
}

func (m *diffMachine) assignRule(t *rapid.T) {
	c := m.drawCampaign(t)
	r := m.drawRule(t)
	ca, ea := m.a.AssignRule(m.ctx, c.a, r.a)
	cb, eb := m.b.AssignRule(m.ctx, c.b, r.b)
	t.Logf("AssignRule campaign=%d rule=%d → %v / %v", c.idx, r.idx, ea, eb)
	if m.sameErr(t, "AssignRule", ea, eb) {
		require.Equal(t, ca, m.normCampaign(cb, true), "AssignRule result")
	}
}

func (m *diffMachine) updateRule(t *rapid.T) {
	r := m.drawRule(t)
	var u campaign.UpdateRuleParams
	switch rapid.IntRange(0, 5).Draw(t, "retype") {
	case 0:
		u.Type = pqPtr(campaign.Text)
	case 1:
		u.Type = pqPtr(campaign.Call)
	}
	if rapid.Bool().Draw(t, "change max_total_calls") {
		u.MaxTotalCalls = pqPtr(rapid.IntRange(0, 4).Draw(t, "max_total_calls"))
	}
	if rapid.Bool().Draw(t, "change retry interval") {
		u.RetryIntervalMinutes = pqPtr(rapid.IntRange(1, 3).Draw(t, "retry_interval_minutes"))
	}
	if rapid.Bool().Draw(t, "change max_calls_per_day") {
		u.MaxCallsPerDay = pqPtr(rapid.IntRange(1, 5).Draw(t, "max_calls_per_day"))
	}
	if rapid.Bool().Draw(t, "change window") {
		w := rapid.SampledFrom(diffWindows).Draw(t, "window")
		u.StartTime, u.EndTime = pqPtr(w[:5]), pqPtr(w[6:])
	}
	if rapid.IntRange(0, 3).Draw(t, "change lists") == 0 {
		u.DNCCheck = pqPtr(rapid.Bool().Draw(t, "dnc_check"))
		u.RemoveOnOptOut = pqPtr(rapid.Bool().Draw(t, "remove_on_opt_out"))
	}
	if rapid.IntRange(0, 3).Draw(t, "change escalation") == 0 {
		u.EscalationAfterFailedAttempts = pqPtr(rapid.IntRange(0, 2).Draw(t, "escalation after"))
	}
	ra, ea := m.a.UpdateRule(m.ctx, r.a, u)
	rb, eb := m.b.UpdateRule(m.ctx, r.b, u)
	t.Logf("UpdateRule rule=%d type=%v total=%v retry=%v per_day=%v window=%v-%v → %v / %v", r.idx,
		derefOr(u.Type, "-"), derefOr(u.MaxTotalCalls, -1), derefOr(u.RetryIntervalMinutes, -1),
		derefOr(u.MaxCallsPerDay, -1), derefOr(u.StartTime, "-"), derefOr(u.EndTime, "-"), ea, eb)
	if m.sameErr(t, "UpdateRule", ea, eb) {
		require.Equal(t, ra, m.normRule(rb, true), "UpdateRule result")
	}
}

func (m *diffMachine) dequeueCampaign(t *rapid.T) {
	c := m.drawCampaign(t)
	// DequeueCampaign's pass without its wait.
	a, ea := queue.TryDequeueCampaign(m.ctx, m.a, c.a)
	b, eb := queue.TryDequeueCampaign(m.ctx, m.b, c.b)
	var la, lb []*queue.Lease
	if a != nil {
		la = append(la, a)
	}
	if b != nil {
		lb = append(lb, b)
	}
	t.Logf("DequeueCampaign campaign=%d at +%v → %s %v / %s %v", c.idx, m.clock.Now().Sub(modelEpoch), m.leasesStr(la), ea, m.leasesStr(lb), eb)
	m.sameErr(t, "DequeueCampaign", ea, eb)
	m.sameLeases(t, "DequeueCampaign", la, lb)
}

func (m *diffMachine) dnc(t *rapid.T) {
	var cs []uuid.UUID
	for range rapid.IntRange(1, 2).Draw(t, "dnc count") {
		cs = append(cs, m.contacts[m.drawContact(t)])
	}
	add := rapid.Bool().Draw(t, "add to dnc")
	run := m.a.RemoveDNC
	runB := m.b.RemoveDNC
	if add {
		run, runB = m.a.AddDNC, m.b.AddDNC
	}
	na, ea := run(m.ctx, cs...)
	nb, eb := runB(m.ctx, cs...)
	t.Logf("DNC add=%v %d contacts → %d %v / %d %v", add, len(cs), na, ea, nb, eb)
	if m.sameErr(t, "DNC", ea, eb) {
		require.Equal(t, na, nb, "DNC count")
	}
	for _, c := range cs {
		xa, ea := m.a.IsDNC(m.ctx, c)
		xb, eb := m.b.IsDNC(m.ctx, c)
		require.True(t, m.sameErr(t, "IsDNC", ea, eb))
		require.Equal(t, xa, xb, "IsDNC %s", m.contactName(c))
	}
}

func (m *diffMachine) optOut(t *rapid.T) {
	c := m.drawContact(t)
	na, ea := m.a.OptOut(m.ctx, m.contacts[c])
	nb, eb := m.b.OptOut(m.ctx, m.contacts[c])
	t.Logf("OptOut c%d at +%v → %d %v / %d %v", c, m.clock.Now().Sub(modelEpoch), na, ea, nb, eb)
	if m.sameErr(t, "OptOut", ea, eb) {
		require.Equal(t, na, nb, "OptOut count")
	}
}
