package queue_test

// The campaign half of TestEngine_Model: rules and campaigns, created at
// the start of each run, and actions that attach and detach pools, move
// campaigns through their statuses, assign rules and update them, and claim
// across a campaign's pools, interleaved with every item action of the
// model. The model's pools read their governance from here (see
// modelPool.ceiling, retryDelay, held), so that every dispatch, expiry and
// failure the model predicts is the one the governing rule decides:
//
//   - a pool attached to campaigns none of which is In Process dispatches
//     nothing (ErrHeld), whatever is due;
//   - no lease is ever issued beyond the governing ceiling (the rule's
//     max_total_calls while its campaign is In Process or Paused, the
//     pool's max_retries + 1 otherwise);
//   - a rule update never changes a time already scheduled: every item's
//     next_retry_at is read before and after it, and compared.

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

const (
	modelRules     = 2 // rules per run
	modelCampaigns = 2 // campaigns per run: enough for the one-governor conflicts
)

// modelRule is the model of a rule: what governs dispatch.
type modelRule struct {
	idx      int
	id       uuid.UUID
	text     bool
	ceiling  int // max_total_calls
	retryMin int // retry_interval_minutes; 0 for none (a text rule)
	perDay   int // max_calls_per_day
	start    campaign.Clock
	end      campaign.Clock // campaign.MinutesPerDay for a text rule (no end)
}

// modelCampaign is the model of a campaign.
type modelCampaign struct {
	idx    int
	id     uuid.UUID
	name   string
	zone   string // the contacts' zone (the model's items have none); "" is UTC
	status campaign.Status
	rule   *modelRule
	pools  []*modelPool // in the order attached
	turn   int          // the engine's round-robin turn (in memory)
	kept   []*modelItem // the calls of items removed from its pools (Completed, of no pool)
}

func (c *modelCampaign) has(p *modelPool) bool { return slices.Contains(c.pools, p) }

// campaigns returns the campaigns p is attached to.
func (p *modelPool) campaigns() []*modelCampaign {
	var out []*modelCampaign
	for _, c := range p.m.campaigns {
		if c.has(p) {
			out = append(out, c)
		}
	}
	return out
}

// governor returns the campaign In Process or Paused that p is attached
// to: at most one, the engine sees to it (and the model checks it).
func (p *modelPool) governor() *modelCampaign {
	var g *modelCampaign
	for _, c := range p.campaigns() {
		if c.status == campaign.InProcess || c.status == campaign.Paused {
			if g != nil {
				panic(fmt.Sprintf("pool %d governed by campaigns %d and %d", p.idx, g.idx, c.idx))
			}
			g = c
		}
	}
	return g
}

// held reports whether p's campaigns hold it: it is attached to some,
// none In Process.
func (p *modelPool) held() bool {
	if len(p.campaigns()) == 0 {
		return false
	}
	g := p.governor()
	return g == nil || g.status != campaign.InProcess
}

// rule returns the rule that governs p, nil for none.
func (p *modelPool) rule() *modelRule {
	if g := p.governor(); g != nil {
		return g.rule
	}
	return nil
}

// gate is the calling window and day cap of the rule that governs p, in
// its campaign's zone, and false when no rule governs it.
func (p *modelPool) gate() (campaign.Gate, bool) {
	r := p.rule()
	if r == nil {
		return campaign.Gate{}, false
	}
	loc := time.UTC
	if z := p.governor().zone; z != "" {
		var err error
		if loc, err = pool.LoadZone(z); err != nil {
			panic(err)
		}
	}
	return campaign.Gate{Window: campaign.Window{Start: r.start, End: r.end}, PerDay: r.perDay, Loc: loc}, true
}

// campaignRefs is the campaigns of p as its detail shows them.
func (p *modelPool) campaignRefs() []pool.CampaignRef {
	out := []pool.CampaignRef{}
	for _, c := range p.campaigns() {
		out = append(out, pool.CampaignRef{UUID: c.id, Name: c.name, Status: string(c.status)})
	}
	return out
}

// setupCampaigns creates the run's rules and campaigns (Draft, no pools).
func (m *modelMachine) setupCampaigns(t *rapid.T) {
	for i := range modelRules {
		r := &modelRule{idx: i, text: rapid.IntRange(0, 3).Draw(t, "text rule?") == 0}
		p := campaign.CreateRuleParams{Name: fmt.Sprintf("model rule %d", i)}
		// Windows around the model's epoch (03:04 UTC; 22:04 and 08:34
		// in the campaigns' zones), from always open to a few minutes.
		w := rapid.SampledFrom([]string{"00:00-23:59", "03:00-03:06", "03:05-04:00", "08:30-09:00", "22:00-23:00"}).Draw(t, "window")
		start, end := w[:5], w[6:]
		p.StartTime = &start
		r.start = mustClock(start)
		if r.text {
			p.Type = campaign.Text
			r.ceiling, r.perDay, r.end = 1, 1, campaign.MinutesPerDay
		} else {
			r.ceiling = rapid.IntRange(1, 4).Draw(t, "max_total_calls")
			r.retryMin = rapid.IntRange(1, 3).Draw(t, "retry_interval_minutes")
			r.perDay = rapid.IntRange(1, 5).Draw(t, "max_calls_per_day")
			r.end = mustClock(end)
			p.MaxTotalCalls, p.RetryIntervalMinutes, p.MaxCallsPerDay, p.EndTime = &r.ceiling, &r.retryMin, &r.perDay, &end
		}
		got, err := m.eng.CreateRule(m.ctx, p)
		require.NoError(t, err, "create rule")
		r.id = got.UUID
		m.rules = append(m.rules, r)
		t.Logf("rule %d: text=%v max_total_calls=%d retry=%dm per_day=%d window=%s-%s", i, r.text, r.ceiling, r.retryMin, r.perDay, r.start, r.end)
	}
	for i := range modelCampaigns {
		c := &modelCampaign{idx: i, name: fmt.Sprintf("model campaign %d", i), status: campaign.Draft,
			zone: rapid.SampledFrom([]string{"", "UTC", "America/New_York", "Asia/Kolkata"}).Draw(t, "campaign zone")}
		p := campaign.CreateParams{Name: c.name, TimeZone: c.zone}
		if k := rapid.IntRange(-1, modelRules-1).Draw(t, "campaign rule"); k >= 0 {
			c.rule = m.rules[k]
			p.RuleUUID = &c.rule.id
		}
		got, err := m.eng.CreateCampaign(m.ctx, p)
		require.NoError(t, err, "create campaign")
		c.id = got.UUID
		m.campaigns = append(m.campaigns, c)
		t.Logf("campaign %d: rule=%v zone=%q", i, ruleIdx(c.rule), c.zone)
	}
}

func ruleIdx(r *modelRule) string {
	if r == nil {
		return "none"
	}
	return fmt.Sprint(r.idx)
}

func (m *modelMachine) campaignActions() map[string]func(*rapid.T) {
	return map[string]func(*rapid.T){
		"Attach":          m.attach,
		"Detach":          m.detach,
		"CampaignAction":  m.campaignAction,
		"AssignRule":      m.assignRule,
		"UpdateRule":      m.updateRule,
		"DequeueCampaign": m.dequeueCampaign,
	}
}

func (m *modelMachine) drawCampaign(t *rapid.T) *modelCampaign {
	return m.campaigns[rapid.IntRange(0, len(m.campaigns)-1).Draw(t, "campaign")]
}

func (m *modelMachine) drawRule(t *rapid.T) *modelRule {
	return m.rules[rapid.IntRange(0, len(m.rules)-1).Draw(t, "rule")]
}

// otherGovernor returns the campaign other than c that governs p, nil
// for none.
func otherGovernor(p *modelPool, c *modelCampaign) *modelCampaign {
	if g := p.governor(); g != nil && g != c {
		return g
	}
	return nil
}

func (m *modelMachine) attach(t *rapid.T) {
	c := m.drawCampaign(t)
	p := m.drawPool(t)
	res, err := m.eng.AttachPools(m.ctx, c.id, p.id)
	t.Logf("Attach campaign=%d (%s) pool=%d → %+v err=%v", c.idx, c.status, p.idx, res, err)
	governs := c.status == campaign.InProcess || c.status == campaign.Paused
	switch {
	case c.status == campaign.Completed || c.status == campaign.Archived:
		require.ErrorIs(t, err, campaign.ErrWrongStatus, "Attach to a campaign that will not run again")
	case c.has(p):
		require.NoError(t, err, "Attach")
		require.Equal(t, 1, res.PoolsSkipped, "Attach of a pool attached already")
	case governs && otherGovernor(p, c) != nil:
		require.ErrorIs(t, err, campaign.ErrConflict, "Attach of a pool another campaign governs")
	default:
		require.NoError(t, err, "Attach")
		require.Equal(t, 1, res.PoolsAttached, "Attach")
		p.expireAll(m.now()) // the leases that ended, under what governed the pool before
		c.pools = append(c.pools, p)
		// Its items count as items again, not as the calls kept of them.
		c.kept = slices.DeleteFunc(c.kept, func(k *modelItem) bool { return slices.Contains(p.items, k.keptOf) })
	}
}

func (m *modelMachine) detach(t *rapid.T) {
	c := m.drawCampaign(t)
	p := m.drawPool(t)
	detached, err := m.eng.DetachPool(m.ctx, c.id, p.id)
	t.Logf("Detach campaign=%d pool=%d → %v err=%v", c.idx, p.idx, detached, err)
	if c.callAcross(p, m.now()) { // whatever c's status: a call goes on after c completes
		require.ErrorIs(t, err, queue.ErrInFlight, "Detach of a pool while a contact it shares with the campaign is in a call")
		return
	}
	require.NoError(t, err, "Detach")
	require.Equal(t, c.has(p), detached, "Detach reports whether the pool was attached")
	if detached {
		// Its leases that ended are failed attempts under the campaign,
		// before it leaves.
		p.expireAll(m.now())
		// Its items' calls still count in the campaign.
		for _, it := range p.items {
			if it.called() {
				c.kept = append(c.kept, it.kept())
			}
		}
	}
	c.pools = slices.DeleteFunc(c.pools, func(x *modelPool) bool { return x == p })
}

// callAcross reports whether a contact is in a call (a lease not ended at
// now) from a pool of c and has an item in another pool of c, one of the
// two being p: detaching p would put the call and the item apart.
func (c *modelCampaign) callAcross(p *modelPool, now time.Time) bool {
	for _, q := range c.pools {
		for _, it := range q.items {
			if !it.inFlight() || !it.leaseExp.After(now) {
				continue
			}
			for _, r := range c.pools {
				if r != q && (q == p || r == p) && r.find(it.contact) != nil {
					return true
				}
			}
		}
	}
	return false
}

// modelAfter is the campaign status machine, written out again.
func modelAfter(from campaign.Status, a campaign.Action) (campaign.Status, bool) {
	switch {
	case a == campaign.Start && from == campaign.Draft:
		return campaign.InProcess, true
	case a == campaign.Pause && from == campaign.InProcess:
		return campaign.Paused, true
	case a == campaign.Resume && from == campaign.Paused:
		return campaign.InProcess, true
	case a == campaign.Complete && (from == campaign.InProcess || from == campaign.Paused):
		return campaign.Completed, true
	case a == campaign.Archive && from == campaign.Completed:
		return campaign.Archived, true
	}
	return from, false
}

func (m *modelMachine) campaignAction(t *rapid.T) {
	c := m.drawCampaign(t)
	a := rapid.SampledFrom([]campaign.Action{campaign.Start, campaign.Pause, campaign.Resume, campaign.Complete, campaign.Archive}).Draw(t, "action")
	var (
		got campaign.Campaign
		err error
	)
	switch a {
	case campaign.Start:
		got, err = m.eng.StartCampaign(m.ctx, c.id)
	case campaign.Pause:
		got, err = m.eng.PauseCampaign(m.ctx, c.id)
	case campaign.Resume:
		got, err = m.eng.ResumeCampaign(m.ctx, c.id)
	case campaign.Complete:
		got, err = m.eng.CompleteCampaign(m.ctx, c.id)
	case campaign.Archive:
		got, err = m.eng.ArchiveCampaign(m.ctx, c.id)
	}
	t.Logf("%s campaign=%d (%s) → %s err=%v", a, c.idx, c.status, got.Status, err)
	m.touched = nil // every pool of the campaign may change governance
	to, ok := modelAfter(c.status, a)
	if !ok {
		require.ErrorIs(t, err, campaign.ErrWrongStatus, "%s from %s", a, c.status)
		return
	}
	if to == campaign.InProcess || to == campaign.Paused {
		for _, p := range c.pools {
			if otherGovernor(p, c) != nil {
				require.ErrorIs(t, err, campaign.ErrConflict, "%s with pool %d governed by another campaign", a, p.idx)
				return
			}
		}
	}
	require.NoError(t, err, string(a))
	for _, p := range c.pools {
		p.expireAll(m.now()) // the leases that ended, under the campaign's former status
	}
	c.status = to
	require.Equal(t, to, got.Status, "%s result status", a)
}

func (m *modelMachine) assignRule(t *rapid.T) {
	c := m.drawCampaign(t)
	r := m.drawRule(t)
	got, err := m.eng.AssignRule(m.ctx, c.id, r.id)
	t.Logf("AssignRule campaign=%d (%s) rule=%d → err=%v", c.idx, c.status, r.idx, err)
	require.NoError(t, err, "AssignRule")
	require.Equal(t, &r.id, got.RuleUUID, "AssignRule result")
	for _, p := range c.pools {
		p.expireAll(m.now()) // the leases that ended, under the former rule
	}
	c.rule = r
	m.touched = nil
}

func (m *modelMachine) updateRule(t *rapid.T) {
	r := m.drawRule(t)
	var u campaign.UpdateRuleParams
	switch rapid.IntRange(0, 5).Draw(t, "retype") {
	case 0:
		u.Type = pqPtr(campaign.Text)
	case 1:
		u.Type = pqPtr(campaign.Call)
	}
	if rapid.Bool().Draw(t, "change max_total_calls") {
		u.MaxTotalCalls = pqPtr(rapid.IntRange(1, 4).Draw(t, "max_total_calls"))
	}
	if rapid.Bool().Draw(t, "change retry interval") {
		u.RetryIntervalMinutes = pqPtr(rapid.IntRange(1, 3).Draw(t, "retry_interval_minutes"))
	}
	if rapid.Bool().Draw(t, "change max_calls_per_day") {
		u.MaxCallsPerDay = pqPtr(rapid.IntRange(1, 5).Draw(t, "max_calls_per_day"))
	}
	if rapid.Bool().Draw(t, "change window") {
		w := rapid.SampledFrom([]string{"00:00-23:59", "03:00-03:06", "03:05-04:00", "08:30-09:00", "22:00-23:00"}).Draw(t, "window")
		u.StartTime, u.EndTime = pqPtr(w[:5]), pqPtr(w[6:])
	}

	// What the rule becomes, as campaign.UpdateRuleParams.Apply says.
	want := *r
	if u.Type != nil {
		toText := *u.Type == campaign.Text
		if want.text && !toText {
			// The fields a text rule cleared get the call defaults.
			want.ceiling, want.retryMin = campaign.DefaultMaxTotalCalls, campaign.DefaultRetryIntervalMinutes
			want.perDay, want.end = campaign.DefaultMaxCallsPerDay, campaign.DefaultEndTime
		}
		want.text = toText
	}
	if u.StartTime != nil {
		want.start = mustClock(*u.StartTime)
	}
	if want.text {
		want.ceiling, want.retryMin, want.perDay, want.end = 1, 0, 1, campaign.MinutesPerDay
	} else {
		if u.MaxTotalCalls != nil {
			want.ceiling = *u.MaxTotalCalls
		}
		if u.RetryIntervalMinutes != nil {
			want.retryMin = *u.RetryIntervalMinutes
		}
		if u.MaxCallsPerDay != nil {
			want.perDay = *u.MaxCallsPerDay
		}
		if u.EndTime != nil {
			want.end = mustClock(*u.EndTime)
		}
	}

	// A change applies the leases that ended in the pools the rule
	// governs first, under the rule as it was: those items change, the
	// others keep their times.
	r0, err := m.eng.Rule(m.ctx, r.id)
	require.NoError(t, err)
	_, changed, applyErr := u.Apply(r0)
	var expiring []*modelPool
	expired := map[int64]bool{}
	if changed && applyErr == nil {
		for _, c := range m.campaigns {
			if c.rule == r && (c.status == campaign.InProcess || c.status == campaign.Paused) {
				for _, p := range c.pools {
					expiring = append(expiring, p)
					for _, it := range p.items {
						if p.expired(it, m.now()) {
							expired[it.id] = true
						}
					}
				}
			}
		}
	}
	before := m.scheduled(t)
	got, err := m.eng.UpdateRule(m.ctx, r.id, u)
	t.Logf("UpdateRule rule=%d type=%v max_total_calls=%v retry=%v per_day=%v window=%v-%v → err=%v",
		r.idx, derefOr(u.Type, "-"), derefOr(u.MaxTotalCalls, -1), derefOr(u.RetryIntervalMinutes, -1),
		derefOr(u.MaxCallsPerDay, -1), derefOr(u.StartTime, "-"), derefOr(u.EndTime, "-"), err)
	after := m.scheduled(t)
	for id := range expired {
		delete(before, id)
		delete(after, id)
	}
	require.Equal(t, before, after, "a rule update changed a time already scheduled")
	m.skipCheck = len(expired) == 0 // the items were compared above; nothing else changes
	if !want.text && want.end <= want.start {
		require.ErrorIs(t, err, validate.ErrInvalid, "a window that ends before it starts")
		return
	}
	require.NoError(t, err, "UpdateRule")
	for _, p := range expiring {
		p.expireAll(m.now())
	}
	*r = want
	require.Equal(t, r.ceiling, got.MaxTotalCalls, "UpdateRule result max_total_calls")
	require.Equal(t, r.perDay, got.MaxCallsPerDay, "UpdateRule result max_calls_per_day")
	require.Equal(t, campaign.Window{Start: r.start, End: r.end}, got.Window(), "UpdateRule result window")
	if r.retryMin == 0 {
		require.Nil(t, got.RetryIntervalMinutes, "UpdateRule result retry_interval_minutes")
	} else {
		require.Equal(t, &r.retryMin, got.RetryIntervalMinutes, "UpdateRule result retry_interval_minutes")
	}
}

// mustClock parses "HH:MM".
func mustClock(s string) campaign.Clock {
	c, err := campaign.ParseClock(s)
	if err != nil {
		panic(err)
	}
	return c
}

// scheduled reads every item's next_retry_at, by item id.
func (m *modelMachine) scheduled(t *rapid.T) map[int64]string {
	out := map[int64]string{}
	for _, p := range m.pools {
		for _, it := range allItems(m.ctx, t, m.eng, p.id, pool.MaxPerPage) {
			out[it.ID] = fmtTimePtr(it.NextRetryAt)
		}
	}
	return out
}

// dequeueCampaign claims across a campaign's pools, one look without
// waiting (queue.TryDequeueCampaign: DequeueCampaign's pass), and checks
// that the lease comes from the pool whose turn it is, or the next that has
// one.
func (m *modelMachine) dequeueCampaign(t *rapid.T) {
	c := m.drawCampaign(t)
	l, err := queue.TryDequeueCampaign(m.ctx, m.eng, c.id)
	now := m.now()
	m.touched = nil

	var (
		want   *modelItem
		from   *modelPool
		tried  []string
		exp    = "nothing"
		gotStr = "nothing"
	)
	if c.status == campaign.InProcess && len(c.pools) > 0 {
		start := c.turn % len(c.pools)
		for k := range c.pools {
			i := (start + k) % len(c.pools)
			p := c.pools[i]
			items, perr := p.dequeue(now, 1)
			tried = append(tried, fmt.Sprintf("pool %d: %v", p.idx, perr))
			if perr == nil {
				want, from, c.turn = items[0], p, i+1
				exp = fmt.Sprintf("pool %d c%d#%d", p.idx, want.cidx, want.attempts)
				break
			}
		}
	}
	if l != nil {
		gotStr = fmt.Sprintf("pool %s c%d#%d", l.PoolUUID, slices.Index(m.contacts, l.ContactUUID), l.Attempt)
	}
	t.Logf("DequeueCampaign campaign=%d (%s) at +%v → %s err=%v (model %s, tried %v)",
		c.idx, c.status, now.Sub(modelEpoch), gotStr, err, exp, tried)
	if want == nil {
		require.ErrorIs(t, err, queue.ErrEmpty, "DequeueCampaign with nothing to give")
		require.Nil(t, l)
		return
	}
	require.NoError(t, err, "DequeueCampaign")
	require.Equal(t, from.id, l.PoolUUID, "DequeueCampaign: the pool whose turn it is")
	require.Equal(t, want.contact, l.ContactUUID, "DequeueCampaign: the pool's next item")
	want.takeToken(t, l)
	require.Equal(t, want.attempts, l.Attempt, "DequeueCampaign: lease attempt")
	require.LessOrEqual(t, l.Attempt, from.ceiling(), "dispatched beyond the governing ceiling")
	m.hold(&heldLease{l: l, p: from, it: want})
	m.dispatched[from] = true
}
