package queue_test

// TestEngine_CallingRules is a rapid state machine for the limits a rule
// puts on dispatch, checked against the rule's own words rather than
// against poolq's window code: a fake clock walks across days and the DST
// changes of 2026 in Pacific/Auckland, Pacific/Chatham, America/New_York
// and Asia/Kolkata; contacts in those zones (or in the campaign's default
// zone) are dispatched, failed, released, put on the do-not-call list and
// opted out at random, and the campaign's default zone is corrected now
// and then (MoveZone), which moves the contacts without a zone of their
// own to the new one between their calls. After every action the test
// checks:
//
//   - every dispatch starts inside the rule's window in the contact's local
//     wall-clock time, with fewer than max_calls_per_day attempts (released
//     ones aside) already on that local date, below max_total_calls, and
//     never for a contact on the do-not-call list or opted out; local is in
//     the contact's zone at the time of the call, and its earlier calls
//     are counted on the dates they fall on in that zone;
//   - every retry time the engine sets (after a failure, an expired lease,
//     or at dispatch for an item outside its window) is the earliest
//     allowed instant at or after the time asked for, found by walking the
//     clock minute by minute; Retrying when that is the time asked for,
//     Scheduled otherwise. For a contact whose zone moved (MoveZone), an
//     allowed instant at or after that earliest one: the engine keeps
//     counts per calling day, not instants, and may count a call of the
//     new zone's day before against the day (README, "Per-day cap");
//   - a claim that finds nothing leaves no waiting item due;
//   - exactly one escalation per item whose failed attempts reached the
//     threshold, none otherwise;
//   - a contact's items are Skipped only for its do-not-call entry or its
//     opt-out, and terminal items stay as they are.
//
// Longer runs: RAPID_CHECKS=1000 go test -run TestEngine_CallingRules ./queue
// (or -rapid.checks=1000 -rapid.steps=200).

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
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

// rulesZones are the contacts' zones: "" is the campaign's default.
var rulesZones = []string{"Pacific/Auckland", "Pacific/Chatham", "America/New_York", "Asia/Kolkata", ""}

// rulesEdges are DST changes of 2026 (and a plain day, for Kolkata): the
// runs start within a day before one of them.
var rulesEdges = []time.Time{
	time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC),   // New York springs forward at 02:00
	time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC),  // New York falls back at 02:00
	time.Date(2026, 4, 4, 14, 0, 0, 0, time.UTC),  // Auckland falls back at 03:00, Chatham at 03:45
	time.Date(2026, 9, 26, 14, 0, 0, 0, time.UTC), // Auckland springs forward at 02:00, Chatham at 02:45
	time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC),
}

const (
	rulesLease = 10 * time.Minute
	rulesItems = 10
)

type rulesItem struct {
	contact uuid.UUID
	loc     *time.Location
	lease   *queue.Lease
	calls   []time.Time // the attempts not given back
	// own says that the contact has a zone of its own (else the
	// campaign's: MoveZone moves it); moved, that its zone has changed.
	own   bool
	moved bool
	fails int // failed attempts: Fail or an expired lease
}

type rulesMachine struct {
	ctx        context.Context
	eng        *queue.Engine
	clk        *clock
	poolID     uuid.UUID
	rule       campaign.Rule
	start      int // the window, in seconds of the local day
	end        int
	retry      time.Duration
	items      []*rulesItem
	byID       map[uuid.UUID]*rulesItem
	dnc        map[uuid.UUID]bool
	opted      map[uuid.UUID]bool
	prev       map[uuid.UUID]pool.Item
	campaignID uuid.UUID
	dispatch   int // dispatches checked, for the log
}

func TestEngine_CallingRules(t *testing.T) {
	if testing.Short() {
		t.Skip("a sequential state machine; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	rulesCheck(t, func(t *rapid.T) store.Store {
		st, err := sqlite.Open(context.Background(), sqlite.MemoryPath, sqlite.Options{CheckCache: true})
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		return st
	})
}

// rulesCheck runs the calling-rules machine on a fresh store from open
// per run (closed by a Cleanup that open registers).
func rulesCheck(t *testing.T, open func(t *rapid.T) store.Store) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		st := open(t)
		edge := rapid.SampledFrom(rulesEdges).Draw(t, "edge")
		clk := &clock{t: edge.Add(-time.Duration(rapid.IntRange(0, 30*60).Draw(t, "minutes before")) * time.Minute)}
		eng, err := queue.New(st, queue.Options{Now: clk.Now, LeaseTimeout: rulesLease, PollInterval: time.Hour})
		require.NoError(t, err)
		t.Cleanup(func() { _ = eng.Close() })
		m := &rulesMachine{ctx: ctx, eng: eng, clk: clk, byID: map[uuid.UUID]*rulesItem{},
			dnc: map[uuid.UUID]bool{}, opted: map[uuid.UUID]bool{}}
		m.setup(t)
		t.Repeat(map[string]func(*rapid.T){
			"":         m.check,
			"Dequeue":  m.dequeue,
			"Complete": func(t *rapid.T) { m.settle(t, "complete") },
			"Fail":     func(t *rapid.T) { m.settle(t, "fail") },
			"Callback": func(t *rapid.T) { m.settle(t, "callback") },
			"Final":    func(t *rapid.T) { m.settle(t, "final") },
			"Release":  func(t *rapid.T) { m.settle(t, "release") },
			"Tick":     m.tick,
			"ToNext":   m.toNext,
			"AddDNC":   m.addDNC,
			"OptOut":   m.optOut,
			"MoveZone": m.moveZone,
		})
		m.check(t)
	})
}

func (m *rulesMachine) setup(t *rapid.T) {
	starts := []string{"00:00", "01:30", "02:00", "02:30", "02:45", "03:00", "09:00", "13:00"}
	ends := []string{"01:00", "02:15", "03:00", "03:30", "04:00", "12:00", "21:00", "23:59"}
	start := rapid.SampledFrom(starts).Draw(t, "start_time")
	end := rapid.SampledFrom(slices.DeleteFunc(ends, func(e string) bool { return e <= start })).Draw(t, "end_time")
	perDay := rapid.IntRange(1, 3).Draw(t, "max_calls_per_day")
	total := rapid.IntRange(1, 6).Draw(t, "max_total_calls")
	retryMin := rapid.SampledFrom([]int{1, 20, 90, 600}).Draw(t, "retry_interval_minutes")
	escAfter := rapid.IntRange(0, 4).Draw(t, "escalation_after_failed_attempts")
	dncCheck := rapid.Bool().Draw(t, "dnc_check")
	optOut := rapid.Bool().Draw(t, "remove_on_opt_out")
	escType, escTarget := "supervisor", "team-7"
	r, err := m.eng.CreateRule(m.ctx, campaign.CreateRuleParams{
		Name: "rules model", MaxCallsPerDay: &perDay, MaxTotalCalls: &total, RetryIntervalMinutes: &retryMin,
		StartTime: &start, EndTime: &end, DNCCheck: &dncCheck, RemoveOnOptOut: &optOut,
		EscalationAfterFailedAttempts: &escAfter, EscalationType: &escType, EscalationTarget: &escTarget,
	})
	require.NoError(t, err, "create rule")
	m.rule, m.start, m.end, m.retry = r, clockSeconds(t, start), clockSeconds(t, end), time.Duration(retryMin)*time.Minute

	zone := rapid.SampledFrom(rulesZones).Draw(t, "campaign zone")
	maxPar := 100
	p, err := m.eng.CreatePool(m.ctx, pool.CreateParams{Name: "rules model", Description: "rapid", Type: pool.Parallel, MaxParallelItems: &maxPar})
	require.NoError(t, err)
	m.poolID = p.UUID
	c, err := m.eng.CreateCampaign(m.ctx, campaign.CreateParams{Name: "rules model", TimeZone: zone, RuleUUID: &r.UUID})
	require.NoError(t, err)
	m.campaignID = c.UUID
	_, err = m.eng.AttachPools(m.ctx, c.UUID, p.UUID)
	require.NoError(t, err)
	_, err = m.eng.StartCampaign(m.ctx, c.UUID)
	require.NoError(t, err)

	var add []pool.NewItem
	var zones []string
	for range rulesItems {
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
		it := &rulesItem{contact: uuid.New(), loc: loc, own: z != ""}
		m.items = append(m.items, it)
		m.byID[it.contact] = it
		add = append(add, pool.NewItem{ContactUUID: it.contact, Contact: pool.Contact{TimeZone: z}})
		zones = append(zones, name)
	}
	_, err = m.eng.Add(m.ctx, p.UUID, add...)
	require.NoError(t, err)
	t.Logf("rule: window %s-%s per_day=%d total=%d retry=%dm escalate_after=%d dnc=%v opt_out=%v; campaign zone %q; contacts in %v; clock %s",
		start, end, perDay, total, retryMin, escAfter, dncCheck, optOut, zone, zones, m.clk.Now().Format(time.RFC3339))
	m.prev = m.snapshot(t)
}

// dateKey is t's date as yyyymmdd, in t's location.
func dateKey(t time.Time) int {
	y, mo, d := t.Date()
	return y*10000 + int(mo)*100 + d
}

func clockSeconds(t *rapid.T, hhmm string) int {
	h, mm, _ := strings.Cut(hhmm, ":")
	hi, err1 := strconv.Atoi(h)
	mi, err2 := strconv.Atoi(mm)
	require.NoError(t, errors.Join(err1, err2))
	return hi*3600 + mi*60
}

// allowed reports whether the rule lets it be attempted at t: inside the
// window in its local time, on a local date with fewer than the day's cap.
func (m *rulesMachine) allowed(it *rulesItem, t time.Time) bool {
	l := t.In(it.loc)
	s := l.Hour()*3600 + l.Minute()*60 + l.Second()
	return s >= m.start && s < m.end && m.callsOn(it, t) < m.rule.MaxCallsPerDay
}

// callsOn counts it's attempts not given back on t's local date, in its
// zone of now.
func (m *rulesMachine) callsOn(it *rulesItem, t time.Time) int {
	day := dateKey(t.In(it.loc))
	n := 0
	for _, c := range it.calls {
		if dateKey(c.In(it.loc)) == day {
			n++
		}
	}
	return n
}

// earliest is the first instant at or after t0 that allowed accepts,
// found by walking whole minutes (every zone offset and window edge is one).
func (m *rulesMachine) earliest(t *rapid.T, it *rulesItem, t0 time.Time) time.Time {
	if m.allowed(it, t0) {
		return t0
	}
	c := t0.Truncate(time.Minute).Add(time.Minute)
	for range 4 * 24 * 60 {
		if m.allowed(it, c) {
			return c
		}
		c = c.Add(time.Minute)
	}
	t.Fatalf("no allowed instant within 4 days of %s", t0)
	return time.Time{}
}

func (m *rulesMachine) snapshot(t *rapid.T) map[uuid.UUID]pool.Item {
	page, err := m.eng.Items(m.ctx, m.poolID, pool.ItemQuery{Page: 1, PerPage: 100})
	require.NoError(t, err)
	require.Len(t, page.Data, rulesItems)
	out := make(map[uuid.UUID]pool.Item, len(page.Data))
	for _, it := range page.Data {
		out[it.ContactUUID] = it
	}
	return out
}

func rulesDue(it pool.Item, now time.Time) bool {
	return it.Status == pool.StatusPending ||
		((it.Status == pool.StatusRetrying || it.Status == pool.StatusScheduled) && !it.NextRetryAt.After(now))
}

// dequeue claims until the pool has nothing due, checking every dispatch.
func (m *rulesMachine) dequeue(t *rapid.T) {
	now := m.clk.Now()
	var got []*queue.Lease
	for range rulesItems + 1 {
		l, err := m.eng.TryDequeue(m.ctx, m.poolID)
		if errors.Is(err, queue.ErrEmpty) {
			break
		}
		require.NoError(t, err, "TryDequeue")
		got = append(got, l)
	}
	cur := m.snapshot(t)
	for _, l := range got {
		it := m.byID[l.ContactUUID]
		require.Nil(t, it.lease, "%s dispatched while its lease is held", l.ContactUUID)
		local := now.In(it.loc)
		require.True(t, m.allowed(it, now), "%s dispatched at %s local (window %s, %d today of %d)",
			l.ContactUUID, local.Format(time.DateTime+" MST"), m.rule.Window(), m.callsOn(it, now), m.rule.MaxCallsPerDay)
		require.LessOrEqual(t, l.Attempt, m.rule.MaxTotalCalls, "attempt beyond max_total_calls")
		require.False(t, m.rule.DNCCheck && m.dnc[l.ContactUUID], "a do-not-call contact dispatched")
		require.False(t, m.rule.RemoveOnOptOut && m.opted[l.ContactUUID], "an opted-out contact dispatched")
		it.calls = append(it.calls, now)
		it.lease = l
		m.dispatch++
	}
	t.Logf("Dequeue at %s: %d dispatched", now.Format(time.RFC3339), len(got))
	for c, was := range m.prev {
		it, after := m.byID[c], cur[c]
		if it.lease != nil && it.lease.ItemID == after.ID && after.Status.InFlight() && slices.Contains(got, it.lease) {
			continue
		}
		if was.Status.Waiting() && rulesDue(was, now) && after.Status == pool.StatusScheduled && after.NextRetryAt.After(now) {
			m.requireRetryAt(t, it, now, *after.NextRetryAt, "%s deferred at %s", c, now)
		}
		require.False(t, rulesDue(after, now) && after.Status.Waiting(), "%s left due (%s) after a claim found nothing", c, after.Status)
	}
	m.observe(t, now, cur, nil)
}

// settle settles a held lease.
func (m *rulesMachine) settle(t *rapid.T, how string) {
	var held []*rulesItem
	for _, it := range m.items {
		if it.lease != nil {
			held = append(held, it)
		}
	}
	if len(held) == 0 {
		t.Skip("no lease held")
	}
	it := rapid.SampledFrom(held).Draw(t, "item")
	now := m.clk.Now()
	var retryAt time.Time
	var err error
	switch how {
	case "complete":
		err = m.eng.Complete(m.ctx, it.lease, "answered")
	case "fail":
		err = m.eng.Fail(m.ctx, it.lease, queue.Failure{Note: "busy"})
	case "callback":
		retryAt = now.Add(time.Duration(rapid.IntRange(1, 36*60).Draw(t, "callback minutes")) * time.Minute)
		err = m.eng.Fail(m.ctx, it.lease, queue.Failure{RetryAt: retryAt, Note: "call me later"})
	case "final":
		err = m.eng.Fail(m.ctx, it.lease, queue.Failure{Final: true, Note: "wrong number"})
	case "release":
		err = m.eng.Release(m.ctx, it.lease)
	}
	t.Logf("%s %s at %s (lease ends %s) → %v", how, it.contact, now.Format(time.RFC3339), it.lease.ExpiresAt.Format(time.RFC3339), err)
	if errors.Is(err, queue.ErrLeaseLost) {
		require.False(t, now.Before(it.lease.ExpiresAt), "lease lost before it ended")
		m.observe(t, now, m.snapshot(t), nil)
		return
	}
	require.NoError(t, err)
	it.lease = nil
	switch how {
	case "release":
		m.giveBack(it)
	case "fail", "callback", "final":
		it.fails++
	}
	cur := m.snapshot(t)
	m.observe(t, now, cur, &settledBy{item: it, how: how, retryAt: retryAt})
}

// giveBack takes a released attempt off the count: the latest (an item
// has one attempt in flight at most, its latest).
func (m *rulesMachine) giveBack(it *rulesItem) {
	it.calls = it.calls[:len(it.calls)-1]
}

type settledBy struct {
	item    *rulesItem
	how     string
	retryAt time.Time
}

// observe checks the change of every item from m.prev to cur made by an
// action at now, then makes cur the new m.prev. s is the settlement the
// action made, if any; any other in-flight item that left flight had its
// lease expire.
func (m *rulesMachine) observe(t *rapid.T, now time.Time, cur map[uuid.UUID]pool.Item, s *settledBy) {
	for c, was := range m.prev {
		it, after := m.byID[c], cur[c]
		if was.Status.Terminal() {
			require.Equal(t, was.Status, after.Status, "%s: terminal items stay", c)
			continue
		}
		if after.Status == pool.StatusSkipped && was.Status != pool.StatusSkipped {
			switch after.Notes {
			case campaign.NoteDNC:
				require.True(t, m.rule.DNCCheck && m.dnc[c], "%s skipped for DNC", c)
			case campaign.NoteOptOut:
				require.True(t, m.rule.RemoveOnOptOut && m.opted[c], "%s skipped for opt-out", c)
			default:
				t.Fatalf("%s skipped with note %q", c, after.Notes)
			}
		}
		if !was.Status.InFlight() || after.Status.InFlight() {
			continue
		}
		// Left flight: settled by s, or its lease expired (a failure).
		t0 := now.Add(m.retry)
		explicit := false
		if s != nil && s.item == it {
			if s.how == "release" {
				require.True(t, after.Status == pool.StatusPending || after.Status == pool.StatusRetrying, "released: %s", after.Status)
				continue
			}
			if s.how == "callback" {
				t0, explicit = s.retryAt, true
			}
		} else {
			require.NotNil(t, it.lease, "%s left flight without a lease held", c)
			require.False(t, now.Before(it.lease.ExpiresAt), "%s left flight before its lease ended", c)
			it.lease = nil
			it.fails++
		}
		if !after.Status.Waiting() {
			continue
		}
		m.requireRetryAt(t, it, t0, *after.NextRetryAt, "%s: retry asked for %s (%s local)", c, t0, t0.In(it.loc).Format(time.DateTime))
		wantStatus := pool.StatusScheduled
		if !explicit && after.NextRetryAt.Equal(t0) {
			wantStatus = pool.StatusRetrying
		}
		require.Equal(t, wantStatus, after.Status, "%s: retry status", c)
	}
	m.checkEscalations(t, cur)
	m.prev = cur
}

// requireRetryAt checks got, the retry time the engine set for it when
// asked for t0: the earliest instant allowed at or after t0, or, for a
// contact whose zone moved, an allowed one at or after it.
func (m *rulesMachine) requireRetryAt(t *rapid.T, it *rulesItem, t0, got time.Time, msg string, args ...any) {
	t.Helper()
	want := m.earliest(t, it, t0)
	if !it.moved {
		require.Equal(t, want, got, append([]any{msg}, args...)...)
		return
	}
	require.False(t, got.Before(want), append([]any{msg + ": before the earliest allowed %s"}, append(args, want)...)...)
	require.True(t, m.allowed(it, got), append([]any{msg + ": not allowed (%s local, %d calls that day)"},
		append(args, got.In(it.loc).Format(time.DateTime+" MST"), m.callsOn(it, got))...)...)
}

// moveZone corrects the campaign's default zone: the contacts without a
// zone of their own are in the new one from then on.
func (m *rulesMachine) moveZone(t *rapid.T) {
	name := rapid.SampledFrom([]string{"Pacific/Auckland", "Pacific/Chatham", "America/New_York", "Asia/Kolkata",
		"Asia/Tokyo", "America/Los_Angeles", "Europe/London", "Pacific/Kiritimati", "Pacific/Pago_Pago"}).Draw(t, "new campaign zone")
	_, err := m.eng.UpdateCampaign(m.ctx, m.campaignID, campaign.UpdateParams{TimeZone: &name})
	require.NoError(t, err)
	t.Logf("MoveZone → %s", name)
	// The update applies the leases that ended before it in the old zone
	// (as a rule's update does, under the old rule): observed so.
	m.observe(t, m.clk.Now(), m.snapshot(t), nil)
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	for _, it := range m.items {
		if !it.own && it.loc.String() != name {
			it.loc, it.moved = loc, true
		}
	}
}

func (m *rulesMachine) checkEscalations(t *rapid.T, cur map[uuid.UUID]pool.Item) {
	esc, err := m.eng.Escalations(m.ctx, campaign.EscalationQuery{Limit: 100})
	require.NoError(t, err)
	got := map[uuid.UUID]campaign.Escalation{}
	for _, e := range esc {
		_, dup := got[e.ContactUUID]
		require.False(t, dup, "two escalations for %s", e.ContactUUID)
		got[e.ContactUUID] = e
	}
	n := 0
	if m.rule.EscalationAfterFailedAttempts != nil {
		n = *m.rule.EscalationAfterFailedAttempts
	}
	for _, it := range m.items {
		e, ok := got[it.contact]
		if n == 0 || it.fails < n {
			require.False(t, ok, "%s escalated after %d failed attempts (threshold %d)", it.contact, it.fails, n)
			continue
		}
		require.True(t, ok, "%s not escalated after %d failed attempts (threshold %d)", it.contact, it.fails, n)
		require.Equal(t, n, e.FailedAttempts)
		require.Equal(t, cur[it.contact].ID, e.ItemID)
		require.Equal(t, m.rule.UUID, e.RuleUUID)
		require.Equal(t, "supervisor", e.Type)
		require.Equal(t, "team-7", e.Target)
	}
}

func (m *rulesMachine) check(t *rapid.T) {
	now := m.clk.Now()
	cur := m.snapshot(t)
	m.observe(t, now, cur, nil)
	for c, it := range cur {
		held := m.byID[c].lease != nil
		require.Equal(t, held, it.Status.InFlight(), "%s: %s, lease held %v", c, it.Status, held)
		require.LessOrEqual(t, it.Attempts, m.rule.MaxTotalCalls)
	}
}

func (m *rulesMachine) tick(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Minute, 7 * time.Minute, 30 * time.Minute, time.Hour, 3 * time.Hour, 8 * time.Hour, 24 * time.Hour}).Draw(t, "tick")
	m.clk.Advance(d)
	t.Logf("Tick %s → %s", d, m.clk.Now().Format(time.RFC3339))
}

// toNext moves the clock to the next retry time or lease end, or a second
// before it: the edges of windows and days.
func (m *rulesMachine) toNext(t *rapid.T) {
	now := m.clk.Now()
	var next time.Time
	for c, it := range m.prev {
		var at time.Time
		switch {
		case it.NextRetryAt != nil && it.Status.Waiting():
			at = *it.NextRetryAt
		case m.byID[c].lease != nil:
			at = m.byID[c].lease.ExpiresAt
		}
		if at.After(now) && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	jumpTo(t, m.clk, now, next)
}

func (m *rulesMachine) addDNC(t *rapid.T) {
	it := rapid.SampledFrom(m.items).Draw(t, "item")
	n, err := m.eng.AddDNC(m.ctx, it.contact)
	require.NoError(t, err)
	require.Equal(t, !m.dnc[it.contact], n == 1, "AddDNC count")
	m.dnc[it.contact] = true
	t.Logf("AddDNC %s", it.contact)
	m.observe(t, m.clk.Now(), m.snapshot(t), nil)
}

func (m *rulesMachine) optOut(t *rapid.T) {
	it := rapid.SampledFrom(m.items).Draw(t, "item")
	was := m.prev[it.contact]
	m.opted[it.contact] = true
	n, err := m.eng.OptOut(m.ctx, it.contact)
	require.NoError(t, err)
	cur := m.snapshot(t)
	t.Logf("OptOut %s (%s) → %d skipped", it.contact, was.Status, n)
	switch {
	case m.rule.RemoveOnOptOut && was.Status.Waiting():
		require.Equal(t, 1, n)
		require.Equal(t, pool.StatusSkipped, cur[it.contact].Status, "a waiting opted-out item is skipped at once")
	case m.rule.RemoveOnOptOut && was.Status.InFlight() && !m.clk.Now().Before(it.lease.ExpiresAt):
		require.LessOrEqual(t, n, 1, "an expired lease's item") // skipped when its expiry is applied
	default:
		require.Equal(t, 0, n, "nothing waiting to skip")
	}
	m.observe(t, m.clk.Now(), cur, nil)
}

// jumpTo moves clk from now to next (or a second before it, drawn), the
// next instant something is due in a rules model, or skips the step when
// nothing is ahead (next zero).
func jumpTo(t *rapid.T, clk *clock, now, next time.Time) {
	if next.IsZero() {
		t.Skip("nothing ahead")
	}
	if rapid.Bool().Draw(t, "a second early") {
		next = next.Add(-time.Second)
	}
	clk.Advance(next.Sub(now))
	t.Logf("ToNext → %s", clk.Now().Format(time.RFC3339))
}
