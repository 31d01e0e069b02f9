package campaign_test

// Checks of what the package's doc comments promise, read as a caller
// programming against godoc would.

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// TestGodoc_StatusAfterWraps: Status.After returns s and an error
// wrapping ErrWrongStatus when s does not allow a, and s and an error that
// does not wrap it for an unknown action.
func TestGodoc_StatusAfterWraps(t *testing.T) {
	t.Parallel()
	actions := []campaign.Action{campaign.Start, campaign.Pause, campaign.Resume, campaign.Complete, campaign.Archive, "restart"}
	for _, s := range campaign.Statuses() {
		for _, a := range actions {
			to, err := s.After(a)
			if a == "restart" {
				require.Error(t, err)
				require.NotErrorIs(t, err, campaign.ErrWrongStatus, "an unknown action is not a wrong status")
				require.Equal(t, s, to)
				continue
			}
			if err != nil {
				require.ErrorIs(t, err, campaign.ErrWrongStatus, "%s after %q", s, a)
				require.Equal(t, s, to)
			}
		}
	}
}

// TestGodoc_ParseStatus: "in any case; "Active" ... is In Process"; and
// Statuses in the order a campaign goes through them.
func TestGodoc_ParseStatus(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]campaign.Status{"active": campaign.InProcess, "IN PROCESS": campaign.InProcess, "paused": campaign.Paused} {
		got, ok := campaign.ParseStatus(in)
		require.True(t, ok, in)
		require.Equal(t, want, got)
	}
	_, ok := campaign.ParseStatus("InProcess")
	require.False(t, ok)
	q, err := campaign.Query{Status: "ACTIVE"}.Normalize()
	require.NoError(t, err)
	require.Equal(t, campaign.InProcess, q.Status)
	require.Equal(t, 1, q.Page)
	require.Equal(t, campaign.DefaultCampaignsPerPage, q.PerPage)
}

// TestGodoc_ParseClock: "HH:MM" with exactly two ASCII digits each, or
// "HH:MM:SS" with seconds "00"; nothing else.
func TestGodoc_ParseClock(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]campaign.Clock{"00:00": 0, "23:59": 1439, "09:30:00": 570} {
		got, err := campaign.ParseClock(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"9:00", "+9:00", " 09:00", "09:00 ", "24:00", "23:60", "09:00:01", "09:00:", "09", "", "０９:００", "09:00:00:00", "-1:00"} {
		_, err := campaign.ParseClock(in)
		require.Error(t, err, "%q", in)
	}
	require.Equal(t, "24:00:00", campaign.Clock(campaign.MinutesPerDay).String(), "End = MinutesPerDay is written 24:00:00")
	require.Equal(t, "[09:00:00, 24:00:00)", campaign.Window{Start: 540, End: campaign.MinutesPerDay}.String())
}

// TestGodoc_RuleDefaultsAndText: "a call rule has the API's defaults (3
// calls a day, 10 in all, 120 minutes between attempts, 09:00–18:00); a
// text rule is one-shot: both caps are forced to 1, and the retry
// interval, end time and escalation fields are cleared, whatever the
// payload said"; "the fields a text rule clears are null" in JSON.
func TestGodoc_RuleDefaultsAndText(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "Call rule"}, now)
	require.NoError(t, err)
	require.Equal(t, campaign.Call, r.Type)
	require.Equal(t, 3, r.MaxCallsPerDay)
	require.Equal(t, 10, r.MaxTotalCalls)
	d, ok := r.RetryDelay()
	require.True(t, ok)
	require.Equal(t, 120*time.Minute, d)
	require.Equal(t, campaign.Window{Start: 9 * 60, End: 18 * 60}, r.Window())
	require.True(t, r.DNCCheck)
	require.True(t, r.RemoveOnOptOut)
	require.Equal(t, 0, *r.EscalationAfterFailedAttempts)
	require.Equal(t, now.UTC(), r.CreatedAt)
	require.Equal(t, r.CreatedAt, r.UpdatedAt)
	require.Equal(t, time.UTC, r.CreatedAt.Location())

	txt, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{
		Name: "Text rule", Type: "TEXT", MaxCallsPerDay: new(0), MaxTotalCalls: new(-5),
		RetryIntervalMinutes: new(5), EndTime: new("bad"), EscalationAfterFailedAttempts: new(2),
		EscalationType: new("email"), EscalationTarget: new("a@b.c"), StartTime: new("10:00"),
	}, now)
	require.NoError(t, err, "a text rule ignores what it forces")
	require.Equal(t, campaign.Text, txt.Type)
	require.Equal(t, 1, txt.MaxCallsPerDay)
	require.Equal(t, 1, txt.MaxTotalCalls)
	require.Equal(t, 1, txt.Ceiling())
	_, ok = txt.RetryDelay()
	require.False(t, ok)
	require.Nil(t, txt.EndTime)
	require.Nil(t, txt.EscalationAfterFailedAttempts)
	require.Nil(t, txt.EscalationType)
	require.Nil(t, txt.EscalationTarget)
	require.Equal(t, campaign.Window{Start: 600, End: campaign.MinutesPerDay}, txt.Window())
	raw, err := json.Marshal(txt)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, f := range []string{"retry_interval_minutes", "end_time", "escalation_after_failed_attempts", "escalation_type", "escalation_target"} {
		v, ok := m[f]
		require.True(t, ok, f)
		require.Nil(t, v, f)
	}
	require.Equal(t, "10:00:00", m["start_time"])
}

// TestGodoc_CreateRuleParamsJSONType: in JSON "a "type" given as "" is an
// error, as in an update"; an absent or null one is a call rule.
func TestGodoc_CreateRuleParamsJSONType(t *testing.T) {
	t.Parallel()
	var p campaign.CreateRuleParams
	require.NoError(t, json.Unmarshal([]byte(`{"name":"Some rule","type":""}`), &p))
	err := p.Validate()
	var fe validate.Errors
	require.True(t, errors.As(err, &fe), "%v", err)
	require.Equal(t, []string{"type"}, fe.Fields())
	for _, in := range []string{`{"name":"Some rule"}`, `{"name":"Some rule","type":null}`} {
		p = campaign.CreateRuleParams{}
		require.NoError(t, json.Unmarshal([]byte(in), &p))
		require.NoError(t, p.Validate(), in)
	}
	var u campaign.UpdateRuleParams
	require.NoError(t, json.Unmarshal([]byte(`{"type":""}`), &u))
	require.Error(t, u.ValidateWithoutRule())
}

// TestGodoc_EscalationText: escalation type and target are "one line of
// text each, the spaces around it trimmed, nil when blank".
func TestGodoc_EscalationText(t *testing.T) {
	t.Parallel()
	r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "Rule",
		EscalationType: new("  email  "), EscalationTarget: new("   ")}, time.Now())
	require.NoError(t, err)
	require.Equal(t, "email", *r.EscalationType)
	require.Nil(t, r.EscalationTarget)
	_, err = campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "Rule",
		EscalationType: new("a\nb")}, time.Now())
	require.Error(t, err)
}

// TestGodoc_ApplyChanged: Apply's changed "reports whether a value differs
// from r's"; on failure it returns r and every failing field.
func TestGodoc_ApplyChanged(t *testing.T) {
	t.Parallel()
	r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "Rule"}, time.Now())
	require.NoError(t, err)
	out, changed, err := campaign.UpdateRuleParams{Name: new(" Rule "), StartTime: new("09:00:00"), MaxCallsPerDay: new(3)}.Apply(r)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, r, out)
	out, changed, err = campaign.UpdateRuleParams{Name: new("x"), MaxTotalCalls: new(0), EndTime: new("08:00")}.Apply(r)
	require.Error(t, err)
	require.False(t, changed)
	require.Equal(t, r, out)
	var fe validate.Errors
	require.True(t, errors.As(err, &fe))
	require.ElementsMatch(t, []string{"name", "max_total_calls", "end_time"}, fe.Fields())
}

// TestGodoc_EscalationQuery: "Limit is how many to return at most, 1 to
// 100; 0 means 100".
func TestGodoc_EscalationQuery(t *testing.T) {
	t.Parallel()
	q, err := campaign.EscalationQuery{}.Normalize()
	require.NoError(t, err)
	require.Equal(t, 100, q.Limit)
	for _, lim := range []int{-1, 101} {
		_, err = campaign.EscalationQuery{Limit: lim}.Normalize()
		require.Error(t, err, "limit %d", lim)
	}
	_, err = campaign.EscalationQuery{After: -1}.Normalize()
	require.Error(t, err)
}

// TestGodoc_CampaignJSON: "pool_uuids never null"; timestamps as
// pool.Timestamp; New gives a Draft, UTC times.
func TestGodoc_CampaignJSON(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.FixedZone("x", 3600))
	c, err := campaign.New(uuid.New(), campaign.CreateParams{Name: "  Campaign  "}, now)
	require.NoError(t, err)
	require.Equal(t, campaign.Draft, c.Status)
	require.Equal(t, "Campaign", c.Name)
	raw, err := json.Marshal(c)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Equal(t, []any{}, m["pool_uuids"])
	require.Equal(t, "2026-03-01T11:00:00Z", m["created_at"])
	_, err = campaign.New(uuid.New(), campaign.CreateParams{Name: "ab"}, now)
	require.Error(t, err, "name is 3–255 characters")
	_, err = campaign.New(uuid.New(), campaign.CreateParams{Name: "Campaign", TimeZone: "Mars/Base"}, now)
	require.Error(t, err)
}

// TestGodoc_WindowNoAlloc: the Window methods "do not allocate".
func TestGodoc_WindowNoAlloc(t *testing.T) {
	loc, err := pool.LoadZone("America/New_York")
	require.NoError(t, err)
	w := campaign.Window{Start: 9 * 60, End: 18 * 60}
	now := time.Date(2026, 3, 7, 20, 0, 0, 0, time.UTC) // before the spring change
	var sink time.Time
	allocs := testing.AllocsPerRun(100, func() {
		sink = w.NextAllowed(now, loc)
		sink = w.NextDayStart(sink, loc)
		_ = w.Contains(sink, loc)
		_ = campaign.LocalDay(sink, loc)
	})
	require.Zero(t, allocs)
}

// TestGodoc_GateEarliestItself: Earliest "is t itself when t is such an
// instant".
func TestGodoc_GateEarliestItself(t *testing.T) {
	t.Parallel()
	g := campaign.Gate{Window: campaign.Window{Start: 0, End: campaign.MinutesPerDay}, PerDay: 3, Loc: time.UTC}
	now := time.Date(2026, 3, 7, 20, 0, 0, 123, time.UTC)
	require.True(t, g.Earliest(pool.Item{}, now).Equal(now))
}

// TestGodoc_WindowResultsUTC: the Window methods "return instants in UTC
// (time.Time values with no monotonic clock reading)"; one already in the
// window "is returned as it is, to the nanosecond".
func TestGodoc_WindowResultsUTC(t *testing.T) {
	t.Parallel()
	loc, err := pool.LoadZone("Europe/Paris")
	require.NoError(t, err)
	now := time.Now() // carries a monotonic reading
	for _, w := range []campaign.Window{{Start: 0, End: campaign.MinutesPerDay}, {Start: 0, End: 1}, {Start: 1439, End: 1440}} {
		for _, got := range []time.Time{w.NextAllowed(now, loc), w.NextDayStart(now, loc), w.NextAllowed(now.In(loc), loc)} {
			require.Equal(t, time.UTC, got.Location(), "%s", w)
			require.Equal(t, got, got.Round(0), "%s: no monotonic reading", w)
		}
	}
	full := campaign.Window{Start: 0, End: campaign.MinutesPerDay}
	require.Equal(t, now.UnixNano(), full.NextAllowed(now, loc).UnixNano())
	g := campaign.Gate{Window: full, PerDay: 1, Loc: loc}
	require.True(t, g.Earliest(pool.Item{}, now).Equal(now), "Earliest is t itself when allowed")
}

// TestGodoc_TextBecomesCall: Apply: "one that becomes a call rule gets the
// call defaults for the fields a text rule had forced or cleared (both
// caps, the retry interval, the end time and the escalation fields),
// unless u gives them"; "its name, start time, dnc_check and
// remove_on_opt_out stay".
func TestGodoc_TextBecomesCall(t *testing.T) {
	t.Parallel()
	txt, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "Texts", Type: campaign.Text, StartTime: new("08:00"), DNCCheck: new(false)}, time.Now())
	require.NoError(t, err)
	call := campaign.Call
	out, changed, err := campaign.UpdateRuleParams{Type: &call}.Apply(txt)
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, campaign.Clock(8*60), out.StartTime, "kept")
	require.Equal(t, campaign.DefaultEndTime, *out.EndTime, "cleared: the default")
	require.Equal(t, campaign.DefaultRetryIntervalMinutes, *out.RetryIntervalMinutes, "cleared: the default")
	require.Equal(t, 0, *out.EscalationAfterFailedAttempts, "cleared: the default")
	require.Equal(t, campaign.DefaultMaxCallsPerDay, out.MaxCallsPerDay, "forced: the default")
	require.Equal(t, campaign.DefaultMaxTotalCalls, out.MaxTotalCalls, "forced: the default")
	require.Equal(t, txt.Name, out.Name)
	require.Equal(t, txt.DNCCheck, out.DNCCheck)
	require.Equal(t, txt.RemoveOnOptOut, out.RemoveOnOptOut)
	out, _, err = campaign.UpdateRuleParams{Type: &call, MaxTotalCalls: new(4)}.Apply(txt)
	require.NoError(t, err)
	require.Equal(t, 4, out.MaxTotalCalls, "given: kept")
}
