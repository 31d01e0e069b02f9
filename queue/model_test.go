package queue_test

// TestEngine_Model is a rapid state machine: random sequences of every
// dispatch and item operation run against a real Engine (over a fresh
// SQLite store per run, in memory and on a file, in check mode, with a fake
// clock) and against a plain
// in-memory model written from the doc comments of package queue and
// pool/machine.go. After every action the whole state of the pool it used is
// compared with the model (every pool at the start and end of a run): each
// item's status, attempts, retry count, priority, fencing token, timestamps
// and notes, in insertion order across pages, and the pool's settings,
// contacts_count and status counts. Each dequeue must return exactly the
// model's items (and error), within the cap and the ceiling.
//
// On failure rapid prints the minimal failing sequence (every action logs
// what it did) and the seed to replay it (-rapid.seed=… or
// -rapid.failfile=…); -rapid.v logs the seed of every run as it starts.
//
// The default run (100 random runs of ~2 × 30 actions, on each kind of
// store) takes ~10 s, under -race ~80 s on 2 cores (modernc SQLite is slow
// under the race detector).
// Longer runs:
//
//	go test -race -run 'TestEngine_Model' ./queue -rapid.checks=2000 -rapid.steps=300
//	RAPID_CHECKS=2000 RAPID_STEPS=300 go test -run TestEngine_Model ./queue
//
// (-rapid.steps is rapid's average number of actions per Repeat; each run
// calls Repeat twice, carrying the state over, so a run makes about twice
// that many actions.)

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

const (
	modelLeaseTimeout = 10 * time.Second // queue.Options.LeaseTimeout in the fake timeline
	modelRetryDelay   = 25 * time.Second // queue.Options.RetryDelay in the fake timeline
	modelContacts     = 12               // contact universe, small so Add hits duplicates
	modelMaxHeld      = 24               // leases the test keeps (stale ones included)
	modelRepeats      = 2                // t.Repeat calls per run
)

// modelEpoch starts the fake timeline, with nanoseconds to check that they
// survive the store.
var modelEpoch = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

// modelClock is the fake clock injected as queue.Options.Now.
type modelClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *modelClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *modelClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// modelItem is the model of one item. Zero times mean "null".
type modelItem struct {
	contact   uuid.UUID
	cidx      int   // index in the contact universe
	seq       int   // insertion order in the model
	id        int64 // the store's id, learned from the first listing
	status    pool.Status
	priority  int
	attempts  int
	retries   int
	token     int64
	nextRetry time.Time
	leaseExp  time.Time
	started   time.Time
	completed time.Time
	failed    time.Time
	addedAt   time.Time
	notes     string
	// The count of the latest calling day, kept by dispatches under a
	// rule (campaign.Gate.Admit) and given back by the Release of the
	// dispatch it counted.
	callAt     time.Time
	callsToday int
	callToken  int64
	// The counts of the calling days before (campaign.Gate.Admit).
	prevCallAt      time.Time
	prevCallsToday  int
	olderCallAt     time.Time
	olderCallsToday int
	// callPending marks a dispatch the rule counted whose token the model
	// does not know yet: the engine draws it, and the lease tells it
	// (takeToken).
	callPending bool

	// keptOf is, for the calls a campaign keeps of an item that left
	// its pools (removed, or its pool detached), that item; keptToken
	// the token of its lease if it was in flight then, 0 if not.
	keptOf    *modelItem
	keptToken int64
}

// calledSince is the engine's judgement of an extension of it's lease,
// in p, by its campaigns (queue's calledSince): the contact counts a call
// at or after the lease's end (as stored, grace included) in another pool
// of the campaign governing p, or of a campaign keeping it's call (its
// pool detached mid-call), or in a call one of them kept, other than the
// call kept of this very lease.
func (m *modelMachine) calledSince(p *modelPool, it *modelItem) bool {
	keeps := func(k *modelItem) bool { return k.keptOf == it && k.keptToken != 0 && k.keptToken == it.token }
	var cs []*modelCampaign
	for _, c := range m.campaigns {
		if c == p.governor() || slices.ContainsFunc(c.kept, keeps) {
			cs = append(cs, c)
		}
	}
	end := it.leaseExp
	for _, c := range cs {
		for _, q := range c.pools {
			if o := q.find(it.contact); q != p && o != nil && !o.callAt.Before(end) {
				return true
			}
		}
		for _, k := range c.kept {
			if k.contact == it.contact && !keeps(k) && !k.callAt.Before(end) {
				return true
			}
		}
	}
	return false
}

// callGoesOn reports whether it is a call under way at now: an item in
// flight under a lease not ended, or the calls kept of one still in the
// call it was in when it left (the same token).
func (it *modelItem) callGoesOn(now time.Time) bool {
	if k := it.keptOf; k != nil {
		return it.keptToken != 0 && k.token == it.keptToken && k.inFlight() && k.leaseExp.After(now)
	}
	return it.inFlight() && it.leaseExp.After(now)
}

// kept returns the calls a campaign keeps of it when it leaves the
// campaign's pools: a Completed item of no pool.
func (it *modelItem) kept() *modelItem {
	k := &modelItem{contact: it.contact, status: pool.StatusCompleted, attempts: it.attempts,
		callAt: it.callAt, callsToday: it.callsToday, prevCallAt: it.prevCallAt, prevCallsToday: it.prevCallsToday,
		olderCallAt: it.olderCallAt, olderCallsToday: it.olderCallsToday, keptOf: it}
	if it.inFlight() {
		k.keptToken = it.token
	}
	return k
}

// dueAtOnce is the retry time of an in-flight item that is due at once:
// its first dispatch (a time every claimant's clock has passed), unless
// the clock has gone back before it.
func (it *modelItem) dueAtOnce(now time.Time) time.Time {
	if it.started.IsZero() || it.started.After(now) {
		return now
	}
	return it.started
}

// takeToken records the fencing token of the dispatch of it that l
// leases: the engine draws it, larger than the token before by 1 to
// pool.TokenSpread. A day's call the rule counted for this dispatch
// (callPending) is counted under it.
func (it *modelItem) takeToken(t require.TestingT, l *queue.Lease) {
	require.Greater(t, l.Token, it.token, "lease token of c%d: larger than the item's before", it.cidx)
	require.LessOrEqual(t, l.Token-it.token, int64(pool.TokenSpread), "lease token of c%d: by at most TokenSpread", it.cidx)
	it.token = l.Token
	if it.callPending {
		it.callToken, it.callPending = l.Token, false
	}
}

// called reports whether it has calls a rule counts.
func (it *modelItem) called() bool {
	return it.attempts > 0 || it.callsToday > 0 || it.prevCallsToday > 0 || it.olderCallsToday > 0
}

// asItem is the model item as the pool.Item the rule's gate reads.
func (it *modelItem) asItem() pool.Item {
	out := pool.Item{Status: it.status, Attempts: it.attempts, Token: it.token,
		CallAt: it.callAt, CallsToday: it.callsToday, CallToken: it.callToken,
		PrevCallAt: it.prevCallAt, PrevCallsToday: it.prevCallsToday,
		OlderCallAt: it.olderCallAt, OlderCallsToday: it.olderCallsToday}
	if !it.nextRetry.IsZero() {
		next := it.nextRetry
		out.NextRetryAt = &next
	}
	return out
}

func (it *modelItem) due(now time.Time) bool {
	switch it.status {
	case pool.StatusPending:
		return true
	case pool.StatusRetrying, pool.StatusScheduled:
		return !it.nextRetry.IsZero() && !it.nextRetry.After(now)
	}
	return false
}

func (it *modelItem) inFlight() bool {
	return it.status == pool.StatusProcessing || it.status == pool.StatusInCall
}

func (it *modelItem) waiting() bool {
	return it.status == pool.StatusPending || it.status == pool.StatusRetrying || it.status == pool.StatusScheduled
}

// modelPool is the model of one pool and its items in insertion order.
type modelPool struct {
	m          *modelMachine // for the campaigns that govern it
	idx        int
	id         uuid.UUID
	typ        pool.Type
	maxPar     int
	maxRetries int
	items      []*modelItem
}

func (p *modelPool) capacity() int {
	if p.typ == pool.Parallel {
		return p.maxPar
	}
	return 1
}

// ceiling is the attempts an item may have: the governing campaign's
// rule's max_total_calls, else the pool's max_retries + 1.
func (p *modelPool) ceiling() int {
	if r := p.rule(); r != nil {
		return r.ceiling
	}
	return p.maxRetries + 1
}

// retryDelay is the delay of a retry a failure schedules without a time:
// the governing rule's interval, else the engine's RetryDelay.
func (p *modelPool) retryDelay() time.Duration {
	if r := p.rule(); r != nil && r.retryMin > 0 {
		return time.Duration(r.retryMin) * time.Minute
	}
	return modelRetryDelay
}

func (p *modelPool) find(c uuid.UUID) *modelItem {
	for _, it := range p.items {
		if it.contact == c {
			return it
		}
	}
	return nil
}

func (p *modelPool) inFlight() int {
	n := 0
	for _, it := range p.items {
		if it.inFlight() {
			n++
		}
	}
	return n
}

func (p *modelPool) counts() map[pool.Status]int {
	m := pool.ZeroCounts()
	for _, it := range p.items {
		m[it.status]++
	}
	return m
}

// dueOrdered returns the due items in the pool's dispatch order.
func (p *modelPool) dueOrdered(now time.Time) []*modelItem {
	var due []*modelItem
	for _, it := range p.items {
		if it.due(now) {
			due = append(due, it)
		}
	}
	sort.SliceStable(due, func(i, j int) bool {
		a, b := due[i], due[j]
		switch p.typ {
		case pool.LIFO:
			return a.seq > b.seq
		case pool.Parallel:
			if a.priority != b.priority {
				return a.priority > b.priority
			}
		}
		return a.seq < b.seq
	})
	return due
}

// fail is pool.Item.Failed, written out again for the model, under the
// contact's ceiling (see contactCeiling).
func (p *modelPool) fail(it *modelItem, now, retryAt time.Time, final bool, note string) {
	ceiling, others := p.contactCeiling(it)
	it.notes = note
	it.leaseExp = time.Time{}
	switch {
	case final || it.attempts >= ceiling:
		it.status = pool.StatusFailed
		it.failed = now
		it.nextRetry = time.Time{}
	case !retryAt.IsZero():
		it.retries++
		it.status = pool.StatusScheduled
		it.nextRetry = retryAt
		if due := it.dueAtOnce(now); retryAt.Before(due) {
			it.nextRetry = due // a time past is due at once
		}
	default:
		it.retries++
		it.status = pool.StatusRetrying
		it.nextRetry = now.Add(p.retryDelay())
	}
	if g, ok := p.gate(); ok && it.waiting() {
		// The rule's window and day cap move the retry (the gate's
		// arithmetic is tested against vectors of its own), the contact's
		// calls from the campaign's other pools counted with its own.
		g.Others = others
		out := g.Retry(it.asItem(), now)
		it.status, it.nextRetry = out.Status, *out.NextRetryAt
	}
}

func (p *modelPool) expired(it *modelItem, now time.Time) bool {
	return it.inFlight() && !it.leaseExp.After(now)
}

// expireAll applies every expired lease of the pool as a failed attempt.
func (p *modelPool) expireAll(now time.Time) {
	for _, it := range p.items {
		if p.expired(it, now) {
			p.fail(it, now, time.Time{}, false, pool.NoteExpired)
		}
	}
}

// statusAfterExpiry is the status it would have once the pool's expired
// leases are applied at now.
func (p *modelPool) statusAfterExpiry(it *modelItem, now time.Time) pool.Status {
	if !p.expired(it, now) {
		return it.status
	}
	if ceiling, _ := p.contactCeiling(it); it.attempts >= ceiling {
		return pool.StatusFailed
	}
	return pool.StatusRetrying
}

// contactCeiling is the ceiling of it's attempts at a failure: under a
// rule, max_total_calls less the attempts of the contact's items in the
// campaign's other pools, which it returns too; else the pool's.
func (p *modelPool) contactCeiling(it *modelItem) (int, []pool.Item) {
	ceiling := p.ceiling()
	var others []pool.Item
	for _, o := range p.others(it) {
		ceiling -= o.attempts
		others = append(others, o.asItem())
	}
	return ceiling, others
}

// dequeue is a claim without waiting (TryDequeue, or TryDequeueN) on the model.
func (p *modelPool) dequeue(now time.Time, n int) ([]*modelItem, error) {
	p.expireAll(now)
	if p.held() {
		return nil, queue.ErrHeld
	}
	room := min(n, p.capacity()-p.inFlight())
	due := p.dueOrdered(now)
	if room <= 0 {
		if len(due) > 0 {
			return nil, queue.ErrAtCapacity
		}
		return nil, queue.ErrEmpty
	}
	var out []*modelItem
	for _, it := range due {
		if len(out) == room {
			break
		}
		if it.attempts >= p.ceiling() {
			p.failAtCeiling(it, now, pool.NoteCeiling)
			continue
		}
		// A rule's caps are the contact's across its campaign's pools: one
		// call at a time, max_total_calls in all, max_calls_per_day a day.
		others := p.others(it)
		if slices.ContainsFunc(others, func(o *modelItem) bool { return o.callGoesOn(now) }) {
			continue // passed over, left due
		}
		ceiling := p.ceiling()
		var otherItems []pool.Item
		for _, o := range others {
			ceiling -= o.attempts
			otherItems = append(otherItems, o.asItem())
		}
		if it.attempts >= ceiling {
			p.failAtCeiling(it, now, campaign.NoteContactCeiling)
			continue
		}
		if g, ok := p.gate(); ok {
			g.Others = otherItems
			in, at, admitted := g.Admit(it.asItem(), now)
			if !admitted {
				it.status, it.nextRetry = pool.StatusScheduled, at.UTC() // postponed
				continue
			}
			it.callAt, it.callsToday, it.callPending = in.CallAt, in.CallsToday, true
			it.prevCallAt, it.prevCallsToday = in.PrevCallAt, in.PrevCallsToday
			it.olderCallAt, it.olderCallsToday = in.OlderCallAt, in.OlderCallsToday
		}
		it.status = pool.StatusProcessing
		it.attempts++
		if it.started.IsZero() {
			it.started = now
		}
		it.nextRetry = time.Time{}
		// it.token is the engine's to draw: the lease tells it (takeToken).
		it.leaseExp = now.Add(modelLeaseTimeout + p.m.grace) // as stored; the holder's deadline is the grace earlier
		out = append(out, it)
	}
	if len(out) == 0 {
		return nil, queue.ErrEmpty
	}
	return out, nil
}

// failAtCeiling fails it at dispatch: its attempts (or its contact's)
// reached the ceiling.
func (p *modelPool) failAtCeiling(it *modelItem, now time.Time, note string) {
	it.status = pool.StatusFailed
	it.failed = now
	it.nextRetry = time.Time{}
	it.notes = note
}

// others returns the items of it's contact in the other pools of the
// campaign whose rule governs p; none when no rule does.
func (p *modelPool) others(it *modelItem) []*modelItem {
	if p.rule() == nil {
		return nil
	}
	var out []*modelItem
	for _, q := range p.governor().pools {
		if o := q.find(it.contact); q != p && o != nil {
			out = append(out, o)
		}
	}
	for _, o := range p.governor().kept {
		if o.contact == it.contact {
			out = append(out, o)
		}
	}
	return out
}

// heldLease is a lease the test holds, current or stale.
type heldLease struct {
	l  *queue.Lease
	p  *modelPool
	it *modelItem // the model item it was issued for
}

// current reports whether the model says the lease is the item's current
// one: the item is still in the pool, in flight, with the lease's token.
func (h *heldLease) current() bool {
	return slices.Contains(h.p.items, h.it) && h.it.inFlight() && h.it.token == h.l.Token
}

type modelMachine struct {
	ctx      context.Context
	eng      *queue.Engine
	clock    *modelClock
	perPage  int
	contacts []uuid.UUID
	pools    []*modelPool
	held     []*heldLease
	seq      int
	// grace is the store's lease grace (store.LeaseGracer): the model's
	// leaseExp is a lease's end as stored, its holder's deadline the grace
	// earlier.
	grace time.Duration

	rules     []*modelRule
	campaigns []*modelCampaign

	// Bookkeeping for the invariants that do not use the model.
	prev          map[*modelPool]map[int64]observed // items at the previous check of each pool
	touched       *modelPool                        // the pool the last action used; nil: all may have changed
	skipCheck     bool                              // the last action did not call the engine
	requeued      map[int64]bool                    // ids the last action requeued (terminal may change)
	reprioritized map[int64]bool                    // ids whose priority the last action set
	dispatched    map[*modelPool]bool               // pools the last action dispatched from
}

func (m *modelMachine) now() time.Time { return m.clock.Now() }

func modelPayload(cidx int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"contact":%d}`, cidx))
}

func TestEngine_Model(t *testing.T) {
	t.Parallel()
	// The same machine on both kinds of SQLite store: the in-memory one,
	// and a file with its pool of readers beside the writer.
	t.Run("Memory", func(t *testing.T) {
		t.Parallel()
		modelCheck(t, func(t *rapid.T) store.Store { return openModelStore(t, sqlite.MemoryPath) })
	})
	t.Run("File", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		var runs atomic.Int64
		modelCheck(t, func(t *rapid.T) store.Store {
			return openModelStore(t, filepath.Join(dir, fmt.Sprintf("model-%d.db", runs.Add(1))))
		})
	})
}

// openModelStore opens a fresh SQLite store at path for one run of the
// model, in check mode: every commit compares the store's cached pool
// states with the database. It is removed when the run ends.
func openModelStore(t *rapid.T, path string) store.Store {
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{CheckCache: true})
	require.NoError(t, err, "open store %s", path)
	t.Cleanup(func() {
		_ = st.Close()
		if path != sqlite.MemoryPath {
			_ = os.Remove(path)
			_ = os.Remove(path + "-wal")
			_ = os.Remove(path + "-shm")
		}
	})
	return st
}

// modelCheck runs the model against a fresh, empty store from open per
// run (closed by a Cleanup that open registers).
func modelCheck(t *testing.T, open func(t *rapid.T) store.Store) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		st := open(t)
		// A store shared by nodes keeps a lease the grace past its
		// holder's deadline: the model runs with and without one.
		grace := rapid.SampledFrom([]time.Duration{0, 0, 7 * time.Second}).Draw(t, "lease grace")
		if grace > 0 {
			st = gracedStore{st, grace}
		}
		clk := &modelClock{t: modelEpoch}
		eng, err := queue.New(st, queue.Options{
			Now:          clk.Now,
			LeaseTimeout: modelLeaseTimeout,
			RetryDelay:   modelRetryDelay,
			PollInterval: time.Hour, // never blocks: Dequeue is not used here
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })

		m := &modelMachine{
			ctx:           ctx,
			eng:           eng,
			clock:         clk,
			grace:         grace,
			perPage:       rapid.SampledFrom([]int{5, 100, 100}).Draw(t, "per_page"),
			prev:          map[*modelPool]map[int64]observed{},
			requeued:      map[int64]bool{},
			reprioritized: map[int64]bool{},
			dispatched:    map[*modelPool]bool{},
		}
		for range modelContacts {
			m.contacts = append(m.contacts, uuid.New())
		}
		npools := rapid.IntRange(1, 3).Draw(t, "pools")
		for i := range npools {
			typ := rapid.SampledFrom(pool.Types()).Draw(t, "type")
			maxPar := rapid.IntRange(1, 4).Draw(t, "max_parallel_items")
			maxRetries := rapid.IntRange(0, 3).Draw(t, "max_retries")
			p, err := eng.CreatePool(ctx, pool.CreateParams{
				Name:             fmt.Sprintf("model pool %d", i),
				Description:      "rapid model",
				Type:             typ,
				MaxParallelItems: &maxPar,
				MaxRetries:       &maxRetries,
			})
			require.NoError(t, err, "create pool")
			m.pools = append(m.pools, &modelPool{m: m, idx: i, id: p.UUID, typ: typ, maxPar: maxPar, maxRetries: maxRetries})
			t.Logf("pool %d: %s cap=%d max_retries=%d", i, typ, maxPar, maxRetries)
		}

		m.setupCampaigns(t)
		actions := map[string]func(*rapid.T){
			"":            m.check,
			"Add":         m.add,
			"TryDequeue":  func(t *rapid.T) { m.dequeue(t, false) },
			"DequeueN":    func(t *rapid.T) { m.dequeue(t, true) },
			"Complete":    func(t *rapid.T) { m.settle(t, "complete") },
			"Fail":        func(t *rapid.T) { m.settle(t, "fail") },
			"Release":     func(t *rapid.T) { m.settle(t, "release") },
			"Extend":      func(t *rapid.T) { m.settle(t, "extend") },
			"MarkInCall":  func(t *rapid.T) { m.settle(t, "markInCall") },
			"Redispatch":  m.redispatch,
			"Skip":        m.skip,
			"Requeue":     m.requeue,
			"SetPriority": m.setPriority,
			"Remove":      m.remove,
			"UpdatePool":  m.updatePool,
			"Tick":        m.tick,
			"Jump":        m.jump,
			"ToDeadline":  m.toDeadline,
			"Rewind":      m.rewind,
		}
		maps.Copy(actions, m.campaignActions())
		for range modelRepeats {
			t.Repeat(actions)
		}
		m.check(t) // every pool, at the end
		m.checkStatusFilter(t)
	})
}

// ---- drawing ------------------------------------------------------------

func (m *modelMachine) drawPool(t *rapid.T) *modelPool {
	p := m.pools[rapid.IntRange(0, len(m.pools)-1).Draw(t, "pool")]
	m.touched = p
	return p
}

func (m *modelMachine) drawContact(t *rapid.T) int {
	return rapid.IntRange(0, modelContacts-1).Draw(t, "contact")
}

// drawLease picks a held lease, current ones more often than stale ones.
func (m *modelMachine) drawLease(t *rapid.T) *heldLease {
	if len(m.held) == 0 {
		t.Skip("no lease held")
	}
	var cur []*heldLease
	for _, h := range m.held {
		if h.current() {
			cur = append(cur, h)
		}
	}
	if len(cur) > 0 && rapid.IntRange(0, 3).Draw(t, "stale?") > 0 {
		return cur[rapid.IntRange(0, len(cur)-1).Draw(t, "current lease")]
	}
	return m.held[rapid.IntRange(0, len(m.held)-1).Draw(t, "any lease")]
}

func (m *modelMachine) hold(h *heldLease) {
	m.held = append(m.held, h)
	if len(m.held) > modelMaxHeld {
		m.held = m.held[1:]
	}
}

// ---- actions ------------------------------------------------------------

func (m *modelMachine) add(t *rapid.T) {
	p := m.drawPool(t)
	k := rapid.IntRange(1, 5).Draw(t, "batch size")
	batch := make([]pool.NewItem, k)
	for i := range batch {
		c := m.drawContact(t)
		batch[i] = pool.NewItem{
			ContactUUID: m.contacts[c],
			Priority:    rapid.IntRange(-1, 2).Draw(t, "priority"),
			Payload:     modelPayload(c),
		}
	}
	res, err := m.eng.Add(m.ctx, p.id, batch...)

	now := m.now()
	var want pool.AddResult
	seen := map[uuid.UUID]bool{}
	for _, n := range batch {
		if seen[n.ContactUUID] {
			continue // folded: the first occurrence wins
		}
		seen[n.ContactUUID] = true
		if p.find(n.ContactUUID) != nil {
			want.ContactsSkipped++
			continue
		}
		m.seq++
		p.items = append(p.items, &modelItem{
			contact:  n.ContactUUID,
			cidx:     slices.Index(m.contacts, n.ContactUUID),
			seq:      m.seq,
			status:   pool.StatusPending,
			priority: n.Priority,
			addedAt:  now,
		})
		want.ContactsAdded++
	}
	t.Logf("Add pool=%d %s → %+v err=%v", p.idx, m.describeBatch(batch), res, err)
	require.NoError(t, err, "Add")
	require.Equal(t, want, res, "Add result (added/skipped)")
}

func (m *modelMachine) describeBatch(b []pool.NewItem) string {
	var parts []string
	for _, n := range b {
		parts = append(parts, fmt.Sprintf("c%d/p%d", slices.Index(m.contacts, n.ContactUUID), n.Priority))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func (m *modelMachine) dequeue(t *rapid.T, many bool) {
	m.dequeueFrom(t, m.drawPool(t), many)
}

func (m *modelMachine) dequeueFrom(t *rapid.T, p *modelPool, many bool) {
	n := 1
	var (
		leases []*queue.Lease
		err    error
	)
	if many {
		n = rapid.IntRange(1, 5).Draw(t, "n")
		leases, err = queue.TryDequeueN(m.ctx, m.eng, p.id, n)
	} else {
		var l *queue.Lease
		l, err = m.eng.TryDequeue(m.ctx, p.id)
		if l != nil {
			leases = []*queue.Lease{l}
		}
	}
	now := m.now()
	want, wantErr := p.dequeue(now, n)
	var got []string
	for _, l := range leases {
		got = append(got, fmt.Sprintf("c%d#%d", slices.Index(m.contacts, l.ContactUUID), l.Attempt))
	}
	var exp []string
	for _, it := range want {
		exp = append(exp, fmt.Sprintf("c%d#%d", it.cidx, it.attempts))
	}
	t.Logf("Dequeue pool=%d (%s) n=%d at +%v → %v err=%v (model %v err=%v)",
		p.idx, p.typ, n, now.Sub(modelEpoch), got, err, exp, wantErr)
	if wantErr != nil {
		require.ErrorIs(t, err, wantErr, "dequeue error")
		require.Empty(t, leases, "leases returned with an error")
		return
	}
	require.NoError(t, err, "dequeue")
	require.Equal(t, exp, got, "dequeued items (contact#attempt) in order")
	for i, l := range leases {
		it := want[i]
		require.Equal(t, p.id, l.PoolUUID, "lease pool")
		require.Equal(t, it.contact, l.ContactUUID, "lease contact")
		if it.id != 0 {
			require.Equal(t, it.id, l.ItemID, "lease item id")
		}
		it.takeToken(t, l)
		require.Equal(t, it.attempts, l.Attempt, "lease attempt")
		require.LessOrEqual(t, l.Attempt, p.ceiling(), "dispatched beyond the ceiling")
		require.True(t, l.ExpiresAt.Equal(now.Add(modelLeaseTimeout)), "lease expiry %v, want now+LeaseTimeout %v", l.ExpiresAt, now.Add(modelLeaseTimeout))
		require.Equal(t, pool.StatusProcessing, l.Item.Status, "lease item status")
		require.Equal(t, l.ContactUUID, l.Item.ContactUUID, "lease item contact")
		require.JSONEq(t, string(modelPayload(it.cidx)), string(l.Item.Payload), "payload handed back at dispatch")
		m.hold(&heldLease{l: l, p: p, it: it})
	}
	m.dispatched[p] = true // the check below verifies the cap on the store's counts
}

func (m *modelMachine) settle(t *rapid.T, op string) {
	m.settleLease(t, op, m.drawLease(t))
}

// redispatch gives a lease in Processing back and claims from its pool
// again; when the claim hands the same item out anew, the old lease, stale
// under the new token, is settled: the case fencing is for, which stale
// leases drawn at random rarely meet (their items have mostly left
// flight). The check after it proves that it changed nothing.
func (m *modelMachine) redispatch(t *rapid.T) {
	var cur []*heldLease
	for _, h := range m.held {
		if h.current() && h.it.status == pool.StatusProcessing {
			cur = append(cur, h)
		}
	}
	if len(cur) == 0 {
		t.Skip("no lease in Processing")
	}
	h := cur[rapid.IntRange(0, len(cur)-1).Draw(t, "lease")]
	m.settleLease(t, "release", h)
	if h.it.inFlight() {
		return // its lease had ended: the release was refused
	}
	m.dequeueFrom(t, h.p, false)
	if !h.it.inFlight() || h.it.token == h.l.Token {
		return // another item came first, or none
	}
	op := rapid.SampledFrom([]string{"complete", "fail", "release", "extend", "markInCall"}).Draw(t, "stale op")
	m.settleLease(t, op, h)
}

func (m *modelMachine) settleLease(t *rapid.T, op string, h *heldLease) {
	p, it := h.p, h.it
	m.touched = p
	var (
		failure queue.Failure
		extend  time.Duration
		note    string
	)
	switch op {
	case "complete":
		note = rapid.SampledFrom([]string{"answered", "", "voicemail"}).Draw(t, "note")
	case "fail":
		note = rapid.SampledFrom([]string{"busy", "", "no answer"}).Draw(t, "note")
		failure.Note = note
		switch rapid.SampledFrom([]string{"default", "future", "past", "final"}).Draw(t, "failure") {
		case "future":
			failure.RetryAt = m.now().Add(time.Duration(rapid.IntRange(1, 40).Draw(t, "retry in s")) * time.Second)
		case "past":
			failure.RetryAt = m.now().Add(-time.Duration(rapid.IntRange(0, 20).Draw(t, "retry ago s")) * time.Second)
		case "final":
			failure.Final = true
		}
	case "extend":
		extend = rapid.SampledFrom([]time.Duration{time.Second, 5 * time.Second, modelLeaseTimeout, 30 * time.Second}).Draw(t, "extend by")
	}

	// A lease is a plain value: settling a copy that went through JSON (a
	// webhook, another process) must work the same.
	l := h.l
	if rapid.IntRange(0, 3).Draw(t, "via JSON") == 0 {
		b, err := json.Marshal(h.l)
		require.NoError(t, err)
		l = new(queue.Lease)
		require.NoError(t, json.Unmarshal(b, l))
	}

	current := h.current()
	var err error
	switch op {
	case "complete":
		err = m.eng.Complete(m.ctx, l, note)
	case "fail":
		err = m.eng.Fail(m.ctx, l, failure)
	case "release":
		err = m.eng.Release(m.ctx, l)
	case "extend":
		err = m.eng.Extend(m.ctx, l, extend)
		h.l.ExpiresAt = l.ExpiresAt
	case "markInCall":
		err = m.eng.MarkInCall(m.ctx, l)
	}
	now := m.now()
	t.Logf("%s pool=%d c%d token=%d (current=%v, item %s token=%d exp=+%v) at +%v fail=%+v extend=%v → err=%v",
		op, p.idx, it.cidx, h.l.Token, current, it.status, it.token, it.leaseExp.Sub(modelEpoch), now.Sub(modelEpoch), failure, extend, err)

	switch {
	case !current:
		// The model is left as it is: the check after this action proves
		// that the stale lease changed nothing in the store.
		require.ErrorIs(t, err, queue.ErrLeaseLost, "%s with a stale lease", op)
	case !it.leaseExp.Add(-m.grace).After(now):
		require.ErrorIs(t, err, queue.ErrLeaseLost, "%s with a lease past its deadline", op)
		p.expireAll(now)
	case op == "extend" && m.calledSince(p, it):
		// The contact's call in another pool of a campaign of the lease
		// is counted at or after the lease's end: the engine takes the
		// lease for ended (a claim by a clock ahead may have), which a
		// clock stepped back (Rewind) makes of a call counted before
		// this lease began too. Its transaction applies the pool's other
		// expired leases.
		require.ErrorIs(t, err, queue.ErrLeaseLost, "extend after a call of the contact at or after the lease's end")
		p.expireAll(now)
	case op == "release" && it.status == pool.StatusInCall:
		// The call connected: the attempt counts; the refusal writes
		// nothing (not even the pool's other expiries: its transaction
		// rolls back).
		require.ErrorIs(t, err, queue.ErrWrongStatus, "release of a connected call")
	default:
		require.NoError(t, err, op)
		p.expireAll(now) // every settlement applies the pool's other expired leases first
		switch op {
		case "complete":
			it.status = pool.StatusCompleted
			it.completed = now
			it.notes = note
			it.leaseExp = time.Time{}
		case "fail":
			retryAt := failure.RetryAt
			if !retryAt.IsZero() {
				retryAt = retryAt.UTC()
			}
			p.fail(it, now, retryAt, failure.Final, note)
		case "release":
			day := it.callToken == it.token && it.callsToday > 0
			// The calls kept of it by a detach mid-call give the attempt
			// back too.
			for _, c := range m.campaigns {
				for _, k := range c.kept {
					if k.keptOf == it && k.keptToken == it.token && k.keptToken != 0 && k.attempts > 0 {
						k.attempts--
						if day {
							k.callsToday = max(k.callsToday-1, 0)
						}
						k.keptToken = 0
					}
				}
			}
			it.attempts--
			if day {
				it.callsToday--
			}
			due := it.dueAtOnce(now)
			if it.attempts == 0 {
				it.started = time.Time{}
			}
			it.leaseExp = time.Time{}
			if it.retries == 0 {
				it.status = pool.StatusPending
				it.nextRetry = time.Time{}
			} else {
				it.status = pool.StatusRetrying
				it.nextRetry = due
			}
		case "extend":
			it.leaseExp = now.Add(extend + m.grace)
			require.True(t, h.l.ExpiresAt.Equal(now.Add(extend)), "Extend must update the lease's ExpiresAt: got %v want %v", h.l.ExpiresAt, now.Add(extend))
		case "markInCall":
			it.status = pool.StatusInCall
			require.Equal(t, pool.StatusInCall, l.Item.Status, "MarkInCall must update the lease's item")
		}
	}
}

// itemOp runs Skip, Requeue or SetPriority, which first apply the pool's
// expired leases and roll everything back on error.
func (m *modelMachine) itemOp(t *rapid.T, name string,
	call func(p *modelPool, c uuid.UUID) (pool.Item, error),
	decide func(p *modelPool, it *modelItem, st pool.Status) error,
	apply func(it *modelItem),
) {
	p := m.drawPool(t)
	c := m.drawContact(t)
	got, err := call(p, m.contacts[c])
	now := m.now()
	it := p.find(m.contacts[c])
	var want error
	if it == nil {
		want = store.ErrNotFound
	} else {
		want = decide(p, it, p.statusAfterExpiry(it, now))
	}
	t.Logf("%s pool=%d c%d at +%v → err=%v (model err=%v)", name, p.idx, c, now.Sub(modelEpoch), err, want)
	if want != nil {
		// Everything rolls back, the expiries applied first included:
		// the model stays as it is and the next check proves it.
		require.ErrorIs(t, err, want, name)
		return
	}
	require.NoError(t, err, name)
	p.expireAll(now)
	apply(it)
	m.requireItem(t, got, it, name+" result")
}

func (m *modelMachine) skip(t *rapid.T) {
	note := rapid.SampledFrom([]string{"dnc", ""}).Draw(t, "note")
	m.itemOp(t, "Skip",
		func(p *modelPool, c uuid.UUID) (pool.Item, error) { return m.eng.Skip(m.ctx, p.id, c, note) },
		func(p *modelPool, it *modelItem, st pool.Status) error {
			switch {
			case st == pool.StatusProcessing || st == pool.StatusInCall:
				return queue.ErrInFlight
			case st == pool.StatusCompleted || st == pool.StatusFailed || st == pool.StatusSkipped:
				return queue.ErrWrongStatus
			}
			return nil
		},
		func(it *modelItem) {
			it.status = pool.StatusSkipped
			it.nextRetry = time.Time{}
			it.notes = note
		})
}

func (m *modelMachine) requeue(t *rapid.T) {
	m.itemOp(t, "Requeue",
		func(p *modelPool, c uuid.UUID) (pool.Item, error) { return m.eng.Requeue(m.ctx, p.id, c) },
		func(p *modelPool, it *modelItem, st pool.Status) error {
			switch {
			case st == pool.StatusProcessing || st == pool.StatusInCall:
				return queue.ErrInFlight
			case st == pool.StatusPending || st == pool.StatusRetrying || st == pool.StatusScheduled:
				return queue.ErrWrongStatus
			}
			return nil
		},
		func(it *modelItem) {
			m.requeued[it.id] = true
			it.status = pool.StatusPending
			it.attempts, it.retries = 0, 0
			it.started, it.completed, it.failed, it.nextRetry = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			it.notes = ""
		})
}

func (m *modelMachine) setPriority(t *rapid.T) {
	prio := rapid.IntRange(-1, 2).Draw(t, "priority")
	m.itemOp(t, "SetPriority",
		func(p *modelPool, c uuid.UUID) (pool.Item, error) { return m.eng.SetPriority(m.ctx, p.id, c, prio) },
		func(p *modelPool, it *modelItem, st pool.Status) error {
			if st == pool.StatusProcessing || st == pool.StatusInCall {
				return queue.ErrInFlight
			}
			return nil
		},
		func(it *modelItem) {
			m.reprioritized[it.id] = true
			it.priority = prio
		})
}

func (m *modelMachine) remove(t *rapid.T) {
	p := m.drawPool(t)
	k := rapid.IntRange(1, 3).Draw(t, "remove count")
	var cs []uuid.UUID
	var idx []int
	for range k {
		c := m.drawContact(t)
		idx = append(idx, c)
		cs = append(cs, m.contacts[c])
	}
	n, err := m.eng.Remove(m.ctx, p.id, cs...)
	now := m.now()
	var want error
	for _, c := range cs {
		if it := p.find(c); it != nil {
			if st := p.statusAfterExpiry(it, now); st == pool.StatusProcessing || st == pool.StatusInCall {
				want = queue.ErrInFlight
			}
		}
	}
	t.Logf("Remove pool=%d c%v at +%v → n=%d err=%v (model err=%v)", p.idx, idx, now.Sub(modelEpoch), n, err, want)
	if want != nil {
		require.ErrorIs(t, err, want, "Remove") // and nothing removed: the next check proves it
		return
	}
	require.NoError(t, err, "Remove")
	p.expireAll(now)
	removed := 0
	for _, c := range cs {
		if it := p.find(c); it != nil {
			p.items = slices.DeleteFunc(p.items, func(x *modelItem) bool { return x == it })
			removed++
			if it.called() {
				// Its calls still count in the campaigns of its pool.
				for _, k := range p.campaigns() {
					k.kept = append(k.kept, it.kept())
				}
			}
		}
	}
	require.Equal(t, removed, n, "Remove count")
}

func (m *modelMachine) updatePool(t *rapid.T) {
	p := m.drawPool(t)
	var u pool.UpdateParams
	if rapid.Bool().Draw(t, "change type") {
		typ := rapid.SampledFrom(pool.Types()).Draw(t, "type")
		if rapid.Bool().Draw(t, "lower case") {
			typ = pool.Type(strings.ToLower(string(typ)))
		}
		u.Type = &typ
	}
	if rapid.Bool().Draw(t, "change cap") {
		u.MaxParallelItems = pqPtr(rapid.IntRange(1, 4).Draw(t, "max_parallel_items"))
	}
	if rapid.Bool().Draw(t, "change retries") {
		u.MaxRetries = pqPtr(rapid.IntRange(0, 3).Draw(t, "max_retries"))
	}
	got, err := m.eng.UpdatePool(m.ctx, p.id, u)
	t.Logf("UpdatePool pool=%d type=%v cap=%v retries=%v → err=%v",
		p.idx, derefOr(u.Type, "-"), derefOr(u.MaxParallelItems, -1), derefOr(u.MaxRetries, -1), err)
	require.NoError(t, err, "UpdatePool")
	typ := p.typ
	if u.Type != nil {
		typ, _ = pool.ParseType(string(*u.Type))
	}
	if typ != p.typ || u.MaxParallelItems != nil && *u.MaxParallelItems != p.maxPar ||
		u.MaxRetries != nil && *u.MaxRetries != p.maxRetries {
		p.expireAll(m.now()) // the leases that ended, under the former max_retries
	}
	p.typ = typ
	if u.MaxParallelItems != nil {
		p.maxPar = *u.MaxParallelItems
	}
	if u.MaxRetries != nil {
		p.maxRetries = *u.MaxRetries
	}
	require.Equal(t, p.typ, got.Type, "UpdatePool result type")
	require.Equal(t, p.maxPar, got.MaxParallelItems, "UpdatePool result max_parallel_items")
	require.Equal(t, p.maxRetries, got.MaxRetries, "UpdatePool result max_retries")
	require.Equal(t, len(p.items), got.ContactsCount, "UpdatePool result contacts_count")
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

func (m *modelMachine) tick(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Nanosecond, time.Second, 2 * time.Second, 3 * time.Second, 5 * time.Second}).Draw(t, "tick")
	m.clock.set(m.now().Add(d))
	m.skipCheck = true
	t.Logf("Tick %v → +%v", d, m.now().Sub(modelEpoch))
}

func (m *modelMachine) jump(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{
		modelLeaseTimeout, modelLeaseTimeout + time.Second, modelRetryDelay, modelRetryDelay + time.Second, 40 * time.Second, 2 * time.Minute,
		10 * time.Minute, 7 * time.Hour, 24 * time.Hour, // into and out of the rules' windows, and over days
	}).Draw(t, "jump")
	m.clock.set(m.now().Add(d))
	m.skipCheck = true
	t.Logf("Jump %v → +%v", d, m.now().Sub(modelEpoch))
}

// rewind moves the clock back a little, as a wall clock stepped by NTP, or
// another process with a skewed clock sharing the file, would: "due" and
// "expired" are read against whatever now is.
func (m *modelMachine) rewind(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Nanosecond, time.Second, 3 * time.Second, 12 * time.Second}).Draw(t, "rewind")
	m.clock.set(m.now().Add(-d))
	m.skipCheck = true
	t.Logf("Rewind %v → +%v", d, m.now().Sub(modelEpoch))
}

// toDeadline moves the clock exactly onto (or 1ns before) a future lease
// deadline or retry time: the boundaries where "due" and "expired" flip.
func (m *modelMachine) toDeadline(t *rapid.T) {
	now := m.now()
	var ts []time.Time
	for _, p := range m.pools {
		for _, it := range p.items {
			for _, x := range []time.Time{it.leaseExp, it.leaseExp.Add(-m.grace), it.nextRetry} {
				if !x.IsZero() && x.After(now) {
					ts = append(ts, x)
				}
			}
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
	m.skipCheck = true
	t.Logf("ToDeadline → +%v", to.Sub(modelEpoch))
}

// ---- checks -------------------------------------------------------------

// itemKey renders every field of an item that the engine may change.
func itemKey(it pool.Item) string {
	ts := func(p *time.Time) string {
		if p == nil {
			return "nil"
		}
		return p.UTC().Format(time.RFC3339Nano)
	}
	exp := "zero"
	if !it.LeaseExpiresAt.IsZero() {
		exp = it.LeaseExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return fmt.Sprintf("id=%d contact=%s status=%s prio=%d attempts=%d retries=%d token=%d started=%s completed=%s failed=%s next=%s lease=%s notes=%q added=%s",
		it.ID, it.ContactUUID, it.Status, it.Priority, it.Attempts, it.RetryCount, it.Token,
		ts(it.StartedAt), ts(it.CompletedAt), ts(it.FailedAt), ts(it.NextRetryAt), exp, it.Notes,
		it.AddedAt.UTC().Format(time.RFC3339Nano))
}

func sameTime(got *time.Time, want time.Time) bool {
	if want.IsZero() {
		return got == nil
	}
	return got != nil && got.Equal(want)
}

func fmtModelTime(x time.Time) string {
	if x.IsZero() {
		return "nil"
	}
	return "+" + x.Sub(modelEpoch).String()
}

func fmtTimePtr(x *time.Time) string {
	if x == nil {
		return "nil"
	}
	return fmtModelTime(*x)
}

// requireItem compares an item read from the engine with its model.
func (m *modelMachine) requireItem(t *rapid.T, got pool.Item, want *modelItem, where string) {
	ctx := fmt.Sprintf("%s: item c%d (%s)", where, want.cidx, itemKey(got))
	require.Equal(t, want.contact, got.ContactUUID, "%s: contact", ctx)
	require.Equal(t, want.status, got.Status, "%s: status", ctx)
	require.Equal(t, want.attempts, got.Attempts, "%s: attempts", ctx)
	require.Equal(t, want.retries, got.RetryCount, "%s: retry_count", ctx)
	require.Equal(t, want.priority, got.Priority, "%s: priority", ctx)
	require.Equal(t, want.token, got.Token, "%s: fencing token", ctx)
	require.Equal(t, want.notes, got.Notes, "%s: notes", ctx)
	require.True(t, want.callAt.Equal(got.CallAt), "%s: call_at %v, want %v", ctx, got.CallAt, want.callAt)
	require.Equal(t, want.callsToday, got.CallsToday, "%s: calls today", ctx)
	require.Equal(t, want.callToken, got.CallToken, "%s: call token", ctx)
	require.True(t, want.prevCallAt.Equal(got.PrevCallAt), "%s: prev_call_at %v, want %v", ctx, got.PrevCallAt, want.prevCallAt)
	require.Equal(t, want.prevCallsToday, got.PrevCallsToday, "%s: previous day's calls", ctx)
	require.True(t, want.olderCallAt.Equal(got.OlderCallAt), "%s: older_call_at %v, want %v", ctx, got.OlderCallAt, want.olderCallAt)
	require.Equal(t, want.olderCallsToday, got.OlderCallsToday, "%s: older day's calls", ctx)
	require.True(t, sameTime(got.NextRetryAt, want.nextRetry), "%s: next_retry_at %s, want %s", ctx, fmtTimePtr(got.NextRetryAt), fmtModelTime(want.nextRetry))
	require.True(t, sameTime(got.StartedAt, want.started), "%s: started_at %s, want %s", ctx, fmtTimePtr(got.StartedAt), fmtModelTime(want.started))
	require.True(t, sameTime(got.CompletedAt, want.completed), "%s: completed_at %s, want %s", ctx, fmtTimePtr(got.CompletedAt), fmtModelTime(want.completed))
	require.True(t, sameTime(got.FailedAt, want.failed), "%s: failed_at %s, want %s", ctx, fmtTimePtr(got.FailedAt), fmtModelTime(want.failed))
	require.True(t, got.LeaseExpiresAt.Equal(want.leaseExp), "%s: lease expiry %s, want %s", ctx, fmtModelTime(got.LeaseExpiresAt), fmtModelTime(want.leaseExp))
	require.True(t, got.AddedAt.Equal(want.addedAt), "%s: added_at %s, want %s", ctx, fmtModelTime(got.AddedAt), fmtModelTime(want.addedAt))
	if want.id != 0 {
		require.Equal(t, want.id, got.ID, "%s: id", ctx)
	}
}

// observed is an item as the previous check saw it.
type observed struct {
	key    string
	status pool.Status
}

// check runs after every action: the engine's state equals the model's, and
// the invariants that need no model hold. It reads the pool the action used,
// none after a clock move (which changes nothing by itself), every pool at
// the start and the end of a run. An action on one pool that changed another
// would still be caught at that pool's next check, since the model never
// applies the change.
func (m *modelMachine) check(t *rapid.T) {
	pools := m.pools
	switch {
	case m.skipCheck:
		pools = nil
	case m.touched != nil:
		pools = []*modelPool{m.touched}
	}
	for _, p := range pools {
		items := allItems(m.ctx, t, m.eng, p.id, m.perPage)
		require.Len(t, items, len(p.items), "pool %d: number of items", p.idx)
		now := map[int64]observed{}
		for i, got := range items {
			want := p.items[i]
			if i > 0 {
				require.Greater(t, got.ID, items[i-1].ID, "pool %d: items listed in insertion (id) order", p.idx)
			}
			require.Equal(t, p.id, got.PoolUUID, "pool %d: item pool", p.idx)
			m.requireItem(t, got, want, fmt.Sprintf("pool %d", p.idx))
			if want.id == 0 {
				want.id = got.ID
			}

			// Terminal is final, whatever the model says: only Requeue
			// revives an item, only SetPriority retouches its priority.
			key := itemKey(got)
			if prev, ok := m.prev[p][got.ID]; ok && prev.status.Terminal() && !m.requeued[got.ID] {
				if m.reprioritized[got.ID] {
					require.Equal(t, stripPriority(prev.key), stripPriority(key), "terminal item changed (other than its priority)")
				} else {
					require.Equal(t, prev.key, key, "terminal item changed without Requeue")
				}
			}
			now[got.ID] = observed{key: key, status: got.Status}
		}
		m.prev[p] = now

		d, err := m.eng.Pool(m.ctx, p.id)
		require.NoError(t, err, "get pool")
		require.Equal(t, p.typ, d.Type, "pool %d: type", p.idx)
		require.Equal(t, p.maxPar, d.MaxParallelItems, "pool %d: max_parallel_items", p.idx)
		require.Equal(t, p.maxRetries, d.MaxRetries, "pool %d: max_retries", p.idx)
		require.Equal(t, len(p.items), d.ContactsCount, "pool %d: contacts_count", p.idx)
		require.ElementsMatch(t, p.campaignRefs(), d.Campaigns, "pool %d: campaigns", p.idx)
		require.Equal(t, p.counts(), d.StatusCounts, "pool %d: status_counts", p.idx)
		require.Equal(t, countStatuses(items), d.StatusCounts, "pool %d: status_counts vs a recount of the items", p.idx)
		if m.dispatched[p] {
			// The cap holds at dispatch time, on the store's own counts
			// (nothing ran between the dispatch and this check).
			inFlight := d.StatusCounts[pool.StatusProcessing] + d.StatusCounts[pool.StatusInCall]
			require.LessOrEqual(t, inFlight, d.Cap(), "pool %d: in flight after a dispatch exceeds the cap", p.idx)
		}
		sum := 0
		for _, n := range d.StatusCounts {
			sum += n
		}
		require.Equal(t, d.ContactsCount, sum, "pool %d: status_counts sum to contacts_count", p.idx)
	}
	m.touched, m.skipCheck = nil, false
	m.requeued = map[int64]bool{}
	m.reprioritized = map[int64]bool{}
	m.dispatched = map[*modelPool]bool{}
}

// checkStatusFilter lists every pool's items filtered by each status (the
// status spelled in lower case, which must be accepted) and compares them
// with the model's, in insertion order.
func (m *modelMachine) checkStatusFilter(t *rapid.T) {
	for _, p := range m.pools {
		for _, st := range pool.Statuses() {
			pg, err := m.eng.Items(m.ctx, p.id, pool.ItemQuery{Status: pool.Status(strings.ToLower(string(st))), PerPage: 100})
			require.NoError(t, err, "list %s items", st)
			var want []uuid.UUID
			for _, it := range p.items {
				if it.status == st {
					want = append(want, it.contact)
				}
			}
			var got []uuid.UUID
			for _, it := range pg.Data {
				require.Equal(t, st, it.Status, "pool %d: filtered listing by %s", p.idx, st)
				got = append(got, it.ContactUUID)
			}
			require.Equal(t, want, got, "pool %d: items in status %s, in insertion order", p.idx, st)
			require.Equal(t, len(want), pg.Total, "pool %d: total of status %s", p.idx, st)
		}
	}
}

func stripPriority(key string) string {
	f := strings.Fields(key)
	out := f[:0]
	for _, x := range f {
		if !strings.HasPrefix(x, "prio=") {
			out = append(out, x)
		}
	}
	return strings.Join(out, " ")
}

// TestEngine_SettleAppliesPoolExpiries pins a sentence of queue/doc.go
// ("# Expiry"): the engine applies a pool's expired leases "in the write
// transaction of every dispatch and settlement on the pool". A Complete of
// one lease while another lease of the same pool has expired must therefore
// leave the expired item Retrying (a failed attempt), not Processing.
func TestEngine_SettleAppliesPoolExpiries(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	clk := &modelClock{t: modelEpoch}
	eng := openEngine(t, st, queue.Options{Now: clk.Now, LeaseTimeout: modelLeaseTimeout, RetryDelay: modelRetryDelay})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "expiry", Description: "doc", Type: pool.Parallel, MaxParallelItems: pqPtr(2)})
	require.NoError(t, err)
	a, b := uuid.New(), uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: a}, pool.NewItem{ContactUUID: b})
	require.NoError(t, err)
	la, err := eng.TryDequeue(ctx, p.UUID) // a, lease ends at +10s
	require.NoError(t, err)
	require.Equal(t, a, la.ContactUUID)
	clk.set(modelEpoch.Add(5 * time.Second))
	lb, err := eng.TryDequeue(ctx, p.UUID) // b, lease ends at +15s
	require.NoError(t, err)
	require.Equal(t, b, lb.ContactUUID)

	clk.set(modelEpoch.Add(12 * time.Second)) // a's lease is over, b's is not
	require.NoError(t, eng.Complete(ctx, lb, "answered"))

	it, err := eng.Item(ctx, p.UUID, a)
	require.NoError(t, err)
	require.Equal(t, pool.StatusRetrying, it.Status, "a's lease expired before the settlement of b on the same pool")
	require.Equal(t, 1, it.RetryCount)
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Zero(t, d.StatusCounts[pool.StatusProcessing], "status counts after a settlement on the pool")
}

// TestEngine_SettleAppliesEveryExpiry: TestEngine_SettleAppliesPoolExpiries
// with more expired leases than one reclaim batch (64). queue/doc.go says
// the engine applies a pool's expired leases in the write transaction of
// every dispatch and settlement; the model tests never have more than a
// handful in flight, so nothing checks that reclaim goes past its first
// batch.
func TestEngine_SettleAppliesEveryExpiry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	clk := &modelClock{t: modelEpoch}
	eng := openEngine(t, st, queue.Options{Now: clk.Now, LeaseTimeout: modelLeaseTimeout, RetryDelay: modelRetryDelay})
	const n = 99
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "expiry", Description: "many", Type: pool.Parallel, MaxParallelItems: pqPtr(n + 1)})
	require.NoError(t, err)
	items := make([]pool.NewItem, n+1)
	for i := range items {
		items[i] = pool.NewItem{ContactUUID: uuid.New()}
	}
	_, err = eng.Add(ctx, p.UUID, items...)
	require.NoError(t, err)
	leases, err := eng.DequeueN(ctx, p.UUID, n) // n leases, ending at +10s
	require.NoError(t, err)
	require.Len(t, leases, n)
	clk.set(modelEpoch.Add(5 * time.Second))
	last, err := eng.TryDequeue(ctx, p.UUID) // ends at +15s
	require.NoError(t, err)

	clk.set(modelEpoch.Add(12 * time.Second)) // the n leases are over, last's is not
	require.NoError(t, eng.Complete(ctx, last, "answered"))
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Zero(t, d.StatusCounts[pool.StatusProcessing], "every expired lease applied by the settlement")
	require.Equal(t, n, d.StatusCounts[pool.StatusRetrying])
}
