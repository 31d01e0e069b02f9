package queue_test

// Review (r-input): bad input gets a clear error and changes nothing, on
// both stores. Each test compares a full snapshot of what the engine shows
// (pools with their details, every item with every field, campaigns,
// rules, the DNC list, escalations) before and after the failed call.

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// engineState is everything the engine shows: the pools with their
// details, every item with all its fields (the bookkeeping ones too),
// campaigns, rules, the DNC list and escalations.
type engineState struct {
	Pools       []pool.Detail
	Items       [][]pool.Item
	Campaigns   []campaign.Campaign
	Rules       []campaign.Rule
	DNC         campaign.DNCPage
	Escalations []campaign.Escalation
}

// stateOf returns the engine's state, to compare.
func stateOf(t *testing.T, b *testBundle) engineState {
	t.Helper()
	ctx := b.ctx
	var s engineState
	for page := 1; ; page++ {
		pg, err := b.eng.Pools(ctx, pool.PoolQuery{Page: page, PerPage: pool.MaxPerPage})
		require.NoError(t, err)
		for _, p := range pg.Data {
			d, err := b.eng.Pool(ctx, p.UUID)
			require.NoError(t, err)
			s.Pools = append(s.Pools, d)
			s.Items = append(s.Items, allItems(ctx, t, b.eng, p.UUID, pool.MaxPerPage))
		}
		if page >= pg.LastPage {
			break
		}
	}
	cs, err := b.eng.Campaigns(ctx, campaign.Query{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	for _, c := range cs.Data {
		d, err := b.eng.Campaign(ctx, c.UUID)
		require.NoError(t, err)
		s.Campaigns = append(s.Campaigns, d)
	}
	rs, err := b.eng.Rules(ctx, campaign.RuleQuery{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	s.Rules = rs.Data
	s.DNC, err = b.eng.DNC(ctx, campaign.DNCQuery{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	s.Escalations, err = b.eng.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	return s
}

// TestEngine_AddRefusesEmailsWithSpacesOrControls: pool.Contact says an
// email has "a local part and a domain without spaces or control
// characters", and TestContact_Validate refuses "ada lovelace@example.com".
// Only ASCII spaces and C0 controls are refused: a no-break space, a line
// separator, an ideographic space or a C1 control (NEL) inside an address
// is stored, shown in listings and indexed for search.
func TestEngine_AddRefusesEmailsWithSpacesOrControls(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		p := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, p.UUID, 1)
		for _, c := range []struct{ name, email string }{
			{"NoBreakSpace", "ada\u00a0lovelace@example.com"},
			{"IdeographicSpace", "ada\u3000lovelace@example.com"},
			{"LineSeparator", "ada\u2028lovelace@example.com"},
			{"NextLineC1", "ada\u0085lovelace@example.com"},
			{"C1InDomain", "ada@exa\u009bmple.com"},
			{"EmSpaceInDomain", "ada@example\u2003.com"},
		} {
			t.Run(c.name, func(t *testing.T) {
				before := stateOf(t, b)
				_, err := b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{Email: c.email}})
				require.Equal(t, []string{"items[0].email"}, fieldsOf(t, err), "%q", c.email)
				require.Equal(t, before, stateOf(t, b), "%q: nothing written", c.email)
			})
		}
	})
}

// TestEngine_BadInputWritesNothing: on both stores, calls with bad
// arguments (field errors) or refused by the state of what they name
// (sentinels) return a clear error and leave everything the engine shows
// as it was, the bookkeeping fields of every item included.
func TestEngine_BadInputWritesNothing(t *testing.T) {
	t.Parallel()
	onBothStores(t, func(t *testing.T, b *testBundle) {
		ctx := b.ctx
		p := b.pool(t, pool.Parallel, 10, 3)
		serial := b.pool(t, pool.FIFO, 1, 3)
		ids := b.add(t, p.UUID, 4)
		b.add(t, serial.UUID, 2)
		r := b.rule(t, campaign.CreateRuleParams{})
		c := b.campaignOf(t, r.UUID, serial.UUID)
		_, err := b.eng.AddDNC(ctx, uuid.New())
		require.NoError(t, err)
		l, err := b.eng.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		forged := *l
		forged.Token++

		nul, blank, two, long := "ab\x00cd", "   ", "日本", strings.Repeat("😀", pool.MaxNameLen+1)
		neg, zero := -1, 0
		y10k := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		soon := b.clock.Now().Add(time.Hour)
		invalid := func(fields ...string) func(*testing.T, error) {
			return func(t *testing.T, err error) { require.Equal(t, fields, fieldsOf(t, err)) }
		}
		is := func(target error) func(*testing.T, error) {
			return func(t *testing.T, err error) { require.ErrorIs(t, err, target) }
		}
		for _, tc := range []struct {
			name  string
			call  func() error
			check func(*testing.T, error)
		}{
			{"CreatePoolNUL", func() error {
				_, err := b.eng.CreatePool(ctx, pool.CreateParams{Name: nul, Description: "d\xff"})
				return err
			}, invalid("name", "description")},
			{"CreatePoolTwoRunes", func() error {
				_, err := b.eng.CreatePool(ctx, pool.CreateParams{Name: two, Description: "d"})
				return err
			}, invalid("name")},
			{"CreatePoolTooLong", func() error {
				_, err := b.eng.CreatePool(ctx, pool.CreateParams{Name: long, Description: "d", MaxRetries: &neg})
				return err
			}, invalid("name", "max_retries")},
			{"UpdatePool", func() error {
				_, err := b.eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{Name: &blank, MaxParallelItems: &zero})
				return err
			}, invalid("name", "max_parallel_items")},
			{"DuplicatePoolNUL", func() error {
				_, err := b.eng.DuplicatePool(ctx, p.UUID, pool.DuplicateParams{Name: &nul})
				return err
			}, invalid("name")},
			{"DeletePoolInFlight", func() error { return b.eng.DeletePool(ctx, p.UUID) }, is(queue.ErrInFlight)},
			{"AddNilAmongGood", func() error {
				_, err := b.eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{},
					pool.NewItem{ContactUUID: uuid.New(), Payload: []byte(`{"a":`)})
				return err
			}, invalid("items[1].contact_uuid", "items[2].payload")},
			{"AddZone", func() error {
				_, err := b.eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{TimeZone: "Mars/Olympus_Mons"}})
				return err
			}, invalid("items[0].timezone")},
			{"AddUnknownPool", func() error {
				_, err := b.eng.Add(ctx, uuid.New(), pool.NewItem{ContactUUID: uuid.New()})
				return err
			}, is(store.ErrNotFound)},
			{"SkipInFlight", func() error { _, err := b.eng.Skip(ctx, p.UUID, l.ContactUUID, "x"); return err }, is(queue.ErrInFlight)},
			{"SkipNUL", func() error { _, err := b.eng.Skip(ctx, p.UUID, ids[1], nul); return err }, invalid("note")},
			{"RequeueWaiting", func() error { _, err := b.eng.Requeue(ctx, p.UUID, ids[1]); return err }, is(queue.ErrWrongStatus)},
			{"SetPriorityInFlight", func() error {
				_, err := b.eng.SetPriority(ctx, p.UUID, l.ContactUUID, 9)
				return err
			}, is(queue.ErrInFlight)},
			{"RemoveInFlight", func() error { _, err := b.eng.Remove(ctx, p.UUID, ids[1], l.ContactUUID); return err }, is(queue.ErrInFlight)},
			{"DequeueNZero", func() error { _, err := b.eng.DequeueN(ctx, p.UUID, 0); return err }, invalid("n")},
			{"ForgedToken", func() error { return b.eng.Complete(ctx, &forged, "x") }, is(queue.ErrLeaseLost)},
			{"ExtendNegative", func() error { return b.eng.Extend(ctx, l, -time.Second) }, invalid("duration")},
			{"FailYear10000", func() error { return b.eng.Fail(ctx, l, queue.Failure{RetryAt: y10k}) }, invalid("retry_at")},
			{"FailFinalAndRetryAt", func() error { return b.eng.Fail(ctx, l, queue.Failure{RetryAt: soon, Final: true}) }, invalid("retry_at")},
			{"SettleOneBad", func() error {
				_, err := b.eng.Settle(ctx, queue.Outcome{Lease: l}, queue.Outcome{Lease: l, Note: nul})
				return err
			}, invalid("outcomes[1].note")},
			{"CampaignZone", func() error {
				_, err := b.eng.CreateCampaign(ctx, campaign.CreateParams{Name: "abc", TimeZone: "Local"})
				return err
			}, invalid("timezone")},
			{"StartEqualsEnd", func() error {
				s := "10:00"
				_, err := b.eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "abc", StartTime: &s, EndTime: &s})
				return err
			}, invalid("end_time")},
			{"UpdateRuleBad", func() error {
				_, err := b.eng.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{EscalationTarget: &nul, MaxTotalCalls: &zero})
				return err
			}, invalid("max_total_calls", "escalation_target")},
			{"DeleteRuleInUse", func() error { return b.eng.DeleteRule(ctx, r.UUID) }, is(campaign.ErrConflict)},
			{"PauseDraft", func() error { _, err := b.eng.PauseCampaign(ctx, c.UUID); return err }, is(campaign.ErrWrongStatus)},
			{"AttachNil", func() error { _, err := b.eng.AttachPools(ctx, c.UUID, p.UUID, uuid.Nil); return err }, invalid("pool_uuids[1]")},
			{"AddDNCNil", func() error { _, err := b.eng.AddDNC(ctx, uuid.New(), uuid.Nil); return err }, invalid("contact_uuids[1]")},
			{"ItemsPage", func() error { _, err := b.eng.Items(ctx, p.UUID, pool.ItemQuery{Page: -1, PerPage: 101}); return err }, invalid("page", "per_page")},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := stateOf(t, b)
				var err error
				require.NotPanics(t, func() { err = tc.call() })
				tc.check(t, err)
				require.Equal(t, before, stateOf(t, b), "nothing written")
			})
		}
		require.NoError(t, b.eng.Complete(ctx, l, "the lease still settles"))
	})
}
