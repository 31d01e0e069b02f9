package queue_test

// Review (r-input): bad input gets a clear error and changes nothing, on
// both stores. Each test compares a full snapshot of what the engine shows
// (pools with their details, every item with every field, campaigns,
// rules, the DNC list, escalations) before and after the failed call.

import (
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// stateOf returns everything the engine shows, as text to compare: the
// pools with their details, every item with all its fields (the
// bookkeeping ones too), campaigns, rules, the DNC list and escalations.
func stateOf(t *testing.T, b *testBundle) string {
	t.Helper()
	ctx := b.ctx
	var s []string
	for page := 1; ; page++ {
		pg, err := b.eng.Pools(ctx, pool.PoolQuery{Page: page, PerPage: pool.MaxPerPage})
		require.NoError(t, err)
		for _, p := range pg.Data {
			d, err := b.eng.Pool(ctx, p.UUID)
			require.NoError(t, err)
			s = append(s, fmt.Sprintf("pool %+v", d))
			for _, it := range allItems(ctx, t, b.eng, p.UUID, pool.MaxPerPage) {
				s = append(s, fmt.Sprintf("item %+v payload=%s", it, it.Payload))
			}
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
		s = append(s, fmt.Sprintf("campaign %+v", d))
	}
	rs, err := b.eng.Rules(ctx, campaign.RuleQuery{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	for _, r := range rs.Data {
		s = append(s, fmt.Sprintf("rule %+v", r))
	}
	dnc, err := b.eng.DNC(ctx, campaign.DNCQuery{PerPage: pool.MaxPerPage})
	require.NoError(t, err)
	s = append(s, fmt.Sprintf("dnc %+v", dnc))
	esc, err := b.eng.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(t, err)
	s = append(s, fmt.Sprintf("escalations %+v", esc))
	return fmt.Sprint(s)
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
