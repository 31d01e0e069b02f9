package campaign_test

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// pageOverMax is the page number after pool.MaxPage where an int holds it
// (64-bit systems); where it does not (32-bit), the smallest int, which is
// out of range too.
var pageOverMax = func() int {
	if p := int64(pool.MaxPage) + 1; p <= math.MaxInt {
		return int(p)
	}
	return math.MinInt
}()

// TestNew_NameBounds: a campaign's name is 3–255 characters (runes, not
// bytes) and one line, on create and on update alike.
func TestNew_NameBounds(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	c, err := campaign.New(id, campaign.CreateParams{Name: "Spring"}, t0)
	require.NoError(t, err)
	for name, want := range map[string][]string{
		"日本語":                    nil, // 3 runes, 9 bytes
		"ab":                     {"name:length"},
		strings.Repeat("é", 255): nil,
		strings.Repeat("é", 256): {"name:length"},
		"Spring\ndrive":          {"name:format"},
		"Spring\u2028drive":      {"name:format"},
	} {
		got, err := campaign.New(id, campaign.CreateParams{Name: name}, t0)
		upd, _, uerr := campaign.UpdateParams{Name: ptr(name)}.Apply(c)
		if want == nil {
			require.NoError(t, err, "%q", name)
			require.Equal(t, name, got.Name)
			require.NoError(t, uerr, "%q", name)
			require.Equal(t, name, upd.Name)
			continue
		}
		require.Equal(t, want, fields(t, err), "%q", name)
		require.Equal(t, want, fields(t, uerr), "%q", name)
	}
}

// TestUpdateParams_ApplyChanged: Apply reports whether a value changed:
// the same name (trimmed) and zone change nothing; a zone alone, or one
// cleared, does.
func TestUpdateParams_ApplyChanged(t *testing.T) {
	t.Parallel()
	c, err := campaign.New(uuid.New(), campaign.CreateParams{Name: "Spring drive", TimeZone: "Europe/Paris"}, t0)
	require.NoError(t, err)

	out, changed, err := campaign.UpdateParams{Name: ptr("  Spring drive "), TimeZone: ptr("Europe/Paris")}.Apply(c)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, c, out)

	out, changed, err = campaign.UpdateParams{TimeZone: ptr("Asia/Tokyo")}.Apply(c)
	require.NoError(t, err)
	require.True(t, changed, "the zone alone is a change")
	require.Equal(t, "Asia/Tokyo", out.TimeZone)
	require.Equal(t, c.Name, out.Name)

	out, changed, err = campaign.UpdateParams{TimeZone: ptr("")}.Apply(c)
	require.NoError(t, err)
	require.True(t, changed, "clearing the zone (UTC) is a change")
	require.Empty(t, out.TimeZone)

	// A failure returns c as it was, not with the valid fields changed.
	out, changed, err = campaign.UpdateParams{Name: ptr("Autumn drive"), TimeZone: ptr("Mars/Base")}.Apply(c)
	require.Error(t, err)
	require.False(t, changed)
	require.Equal(t, c, out, "a failed Apply returns c as it was")

	require.NoError(t, campaign.UpdateParams{}.Validate())
	require.Equal(t, []string{"name:length", "timezone:format"},
		fields(t, campaign.UpdateParams{Name: ptr(" ab "), TimeZone: ptr("Mars/Base")}.Validate()))
}

// TestQuery_NormalizeEdges: the campaign listing's status is canonical,
// its search one line of at most 255 characters, its rule not the nil
// UUID, its page 1 or more and per_page 1–100.
func TestQuery_NormalizeEdges(t *testing.T) {
	t.Parallel()
	q, err := campaign.Query{Status: "paused", Search: strings.Repeat("é", pool.MaxSearchLen), Page: pool.MaxPage, PerPage: pool.MaxPerPage}.Normalize()
	require.NoError(t, err)
	require.Equal(t, campaign.Paused, q.Status)
	require.Equal(t, pool.MaxPage, q.Page)
	require.Equal(t, pool.MaxPerPage, q.PerPage)

	for _, tc := range []struct {
		q    campaign.Query
		want []string
	}{
		{campaign.Query{Status: "Running"}, []string{"status:enum"}},
		{campaign.Query{Search: "a\nb"}, []string{"search:format"}},
		{campaign.Query{Search: strings.Repeat("é", pool.MaxSearchLen+1)}, []string{"search:length"}},
		{campaign.Query{RuleUUID: &uuid.Nil}, []string{"rule_uuid:required"}},
		{campaign.Query{Page: -1}, []string{"page:range"}},
		{campaign.Query{Page: pageOverMax}, []string{"page:range"}},
		{campaign.Query{PerPage: -1}, []string{"per_page:range"}},
		{campaign.Query{PerPage: pool.MaxPerPage + 1}, []string{"per_page:range"}},
	} {
		_, err := tc.q.Normalize()
		require.Equal(t, tc.want, fields(t, err), "%+v", tc.q)
	}
	rid := uuid.New()
	q, err = campaign.Query{RuleUUID: &rid}.Normalize()
	require.NoError(t, err)
	require.Equal(t, campaign.DefaultCampaignsPerPage, q.PerPage)
}

// TestRuleQuery_NormalizeEdges: the rule listing's type is canonical
// (any case), call or text; its search one line of at most 255
// characters; 15 rules a page by default.
func TestRuleQuery_NormalizeEdges(t *testing.T) {
	t.Parallel()
	q, err := campaign.RuleQuery{Type: "CALL"}.Normalize()
	require.NoError(t, err)
	require.Equal(t, campaign.Call, q.Type)
	require.Equal(t, 1, q.Page)
	require.Equal(t, 15, q.PerPage)
	require.Equal(t, 15, campaign.DefaultRulesPerPage)
	for _, tc := range []struct {
		q    campaign.RuleQuery
		want []string
	}{
		{campaign.RuleQuery{Type: "sms"}, []string{"type:enum"}},
		{campaign.RuleQuery{Search: "a\tb"}, []string{"search:format"}},
		{campaign.RuleQuery{Search: strings.Repeat("é", pool.MaxSearchLen+1)}, []string{"search:length"}},
		{campaign.RuleQuery{Page: -1, PerPage: pool.MaxPerPage + 1}, []string{"page:range", "per_page:range"}},
	} {
		_, err := tc.q.Normalize()
		require.Equal(t, tc.want, fields(t, err), "%+v", tc.q)
	}
}

// TestDNCQuery_Normalize: 25 entries a page by default, 1–100.
func TestDNCQuery_Normalize(t *testing.T) {
	t.Parallel()
	q, err := campaign.DNCQuery{}.Normalize()
	require.NoError(t, err)
	require.Equal(t, campaign.DNCQuery{Page: 1, PerPage: 25}, q)
	_, err = campaign.DNCQuery{Page: -1, PerPage: pool.MaxPerPage + 1}.Normalize()
	require.Equal(t, []string{"page:range", "per_page:range"}, fields(t, err))
}

// TestEscalationQuery_NormalizeEdges: after 0 (from the first) and a limit
// of 100 are allowed; a pool filter must not be the nil UUID.
func TestEscalationQuery_NormalizeEdges(t *testing.T) {
	t.Parallel()
	q, err := campaign.EscalationQuery{After: 0, Limit: 100}.Normalize()
	require.NoError(t, err)
	require.Equal(t, 100, q.Limit)
	q, err = campaign.EscalationQuery{Limit: 1}.Normalize()
	require.NoError(t, err)
	require.Equal(t, 1, q.Limit)
	_, err = campaign.EscalationQuery{PoolUUID: &uuid.Nil}.Normalize()
	require.Equal(t, []string{"pool_uuid:required"}, fields(t, err))
}

// TestStatus_Finished: Completed and Archived are finished (no transition
// leads out of them to In Process), and govern nothing; the others are
// not finished.
func TestStatus_Finished(t *testing.T) {
	t.Parallel()
	for _, s := range campaign.Statuses() {
		done := s == campaign.Completed || s == campaign.Archived
		require.Equal(t, done, s.Finished(), s)
		if done {
			require.False(t, s.Governs(), s)
			require.False(t, s.Dispatches(), s)
			to, err := s.After(campaign.Resume)
			require.ErrorIs(t, err, campaign.ErrWrongStatus)
			require.Equal(t, s, to)
			to, err = s.After(campaign.Start)
			require.ErrorIs(t, err, campaign.ErrWrongStatus)
			require.Equal(t, s, to)
		}
	}
}

// TestNew_TimesInUTC: New's CreatedAt and UpdatedAt are now in UTC, the
// same instant, whatever now's location (DESIGN: "UTC").
func TestNew_TimesInUTC(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("UTC+1", 3600))
	c, err := campaign.New(uuid.New(), campaign.CreateParams{Name: "Spring"}, now)
	require.NoError(t, err)
	require.Equal(t, time.UTC, c.CreatedAt.Location())
	require.Equal(t, time.UTC, c.UpdatedAt.Location())
	require.True(t, c.CreatedAt.Equal(now))
	require.Equal(t, c.CreatedAt, c.UpdatedAt)
}

// TestContactsJSON: a do-not-call entry and an escalation marshal to the
// API's field names, their times as pool.Timestamp: UTC, whole seconds.
func TestContactsJSON(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.FixedZone("UTC+1", 3600))
	c, p := uuid.New(), uuid.New()
	b, err := json.Marshal(campaign.DNCEntry{ContactUUID: c, AddedAt: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"contact_uuid":"`+c.String()+`","added_at":"2026-03-01T11:00:00Z"}`, string(b))

	b, err = json.Marshal(campaign.Escalation{ID: 7, PoolUUID: p, ContactUUID: c, ItemID: 9, CampaignUUID: p, RuleUUID: ruleID,
		Type: "email", Target: "ops@example.com", FailedAttempts: 3, At: at})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":7,"pool_uuid":"`+p.String()+`","contact_uuid":"`+c.String()+`","item_id":9,
		"campaign_uuid":"`+p.String()+`","rule_uuid":"`+ruleID.String()+`","escalation_type":"email",
		"escalation_target":"ops@example.com","failed_attempts":3,"escalated_at":"2026-03-01T11:00:00Z"}`, string(b))
}

// TestNotes_AsDocumented: the notes a rule's skip writes are the words the
// engine's doc comments promise (queue.Engine.AddDNC: note "do not call";
// queue.Engine.OptOut: note "opted out"), which a host may match.
func TestNotes_AsDocumented(t *testing.T) {
	t.Parallel()
	require.Equal(t, "do not call", campaign.NoteDNC)
	require.Equal(t, "opted out", campaign.NoteOptOut)
}
