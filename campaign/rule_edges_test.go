package campaign_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// TestRuleType_Valid: both canonical types are valid, nothing else is.
func TestRuleType_Valid(t *testing.T) {
	t.Parallel()
	for _, rt := range campaign.RuleTypes() {
		require.True(t, rt.Valid(), "%s", rt)
	}
	for _, rt := range []campaign.RuleType{"", "Call", "TEXT", "sms"} {
		require.False(t, rt.Valid(), "%q", rt)
	}
}

// TestNewRule_NameOneLine: a rule's name is one line of text.
func TestNewRule_NameOneLine(t *testing.T) {
	t.Parallel()
	_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Day\ntime"}, t0)
	require.ErrorIs(t, err, validate.ErrInvalid)
	var errs validate.Errors
	require.ErrorAs(t, err, &errs)
	require.Equal(t, "name", errs[0].Field)
}

// TestUpdateRuleParams_ApplyCallToCall: giving type "call" to a call rule
// changes nothing: only a text rule made a call rule gets the defaults.
func TestUpdateRuleParams_ApplyCallToCall(t *testing.T) {
	t.Parallel()
	r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Custom", MaxCallsPerDay: ptr(5),
		MaxTotalCalls: ptr(20), RetryIntervalMinutes: ptr(30), StartTime: ptr("10:00"), EndTime: ptr("12:00"),
		EscalationAfterFailedAttempts: ptr(4), EscalationType: ptr("email"), EscalationTarget: ptr("ops@example.com")}, t0)
	require.NoError(t, err)
	out, changed, err := campaign.UpdateRuleParams{Type: ptr(campaign.RuleType("CALL"))}.Apply(r)
	require.NoError(t, err)
	require.False(t, changed)
	require.Equal(t, r, out)
}

// TestNewRule_RetryIntervalBound: retry_interval_minutes reaches 366 days
// (the engine's bound on a retry time), not one minute more.
func TestNewRule_RetryIntervalBound(t *testing.T) {
	t.Parallel()
	_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Yearly", RetryIntervalMinutes: ptr(366 * 24 * 60)}, t0)
	require.NoError(t, err)
	_, err = campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Yearly", RetryIntervalMinutes: ptr(366*24*60 + 1)}, t0)
	require.ErrorIs(t, err, validate.ErrInvalid)
}

// TestNewRule_KeepsNoPointerOfTheCaller: the rule holds its own values:
// the caller's variables, changed afterwards, do not change it.
func TestNewRule_KeepsNoPointerOfTheCaller(t *testing.T) {
	t.Parallel()
	retry, esc := 30, 2
	r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Mine",
		RetryIntervalMinutes: &retry, EscalationAfterFailedAttempts: &esc}, t0)
	require.NoError(t, err)
	retry, esc = 99, 9
	require.Equal(t, 30, *r.RetryIntervalMinutes)
	require.Equal(t, 2, *r.EscalationAfterFailedAttempts)
}

// TestNewRule_WindowOfAStartThatDidNotParse: a start_time that does not
// parse is its own error, and the window is not judged against it (nor
// against the default start it would have kept): an end of 08:00 is no
// error of its own.
func TestNewRule_WindowOfAStartThatDidNotParse(t *testing.T) {
	t.Parallel()
	_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Morning", StartTime: ptr("9am"), EndTime: ptr("08:00")}, t0)
	var errs validate.Errors
	require.ErrorAs(t, err, &errs)
	require.Len(t, errs, 1, "%v", errs)
	require.Equal(t, "start_time", errs[0].Field)
}

// TestNewRule_EscalationTargetLength: escalation_target takes up to
// MaxEscalationTargetLen characters, escalation_type up to
// MaxEscalationTypeLen.
func TestNewRule_EscalationTargetLength(t *testing.T) {
	t.Parallel()
	long := func(n int) *string { s := strings.Repeat("é", n); return &s }
	_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Escalate",
		EscalationType: long(campaign.MaxEscalationTypeLen), EscalationTarget: long(campaign.MaxEscalationTargetLen)}, t0)
	require.NoError(t, err)
	require.Equal(t, 1000, campaign.MaxEscalationTargetLen)
	require.Equal(t, 255, campaign.MaxEscalationTypeLen)
	for _, p := range []campaign.CreateRuleParams{
		{Name: "Escalate", EscalationType: long(campaign.MaxEscalationTypeLen + 1)},
		{Name: "Escalate", EscalationTarget: long(campaign.MaxEscalationTargetLen + 1)},
	} {
		_, err := campaign.NewRule(ruleID, p, t0)
		require.ErrorIs(t, err, validate.ErrInvalid)
	}
}

// TestRule_MarshalJSONTimestamps: created_at and updated_at each carry
// their own time.
func TestRule_MarshalJSONTimestamps(t *testing.T) {
	t.Parallel()
	r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Stamped"}, t0)
	require.NoError(t, err)
	r.UpdatedAt = t0.Add(time.Hour)
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var got struct {
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
	}
	require.NoError(t, json.Unmarshal(b, &got))
	require.True(t, got.CreatedAt.Equal(t0), "%s", b)
	require.True(t, got.UpdatedAt.Equal(t0.Add(time.Hour)), "%s", b)
}

// TestMarshalJSON_CallerDecidesHTMLEscaping: as in package pool, the JSON
// forms leave <, > and & to the caller's encoder.
func TestMarshalJSON_CallerDecidesHTMLEscaping(t *testing.T) {
	const markup = "<b>Tom & Jerry</b>"
	for name, v := range map[string]any{
		"Campaign":   campaign.Campaign{Name: markup},
		"Rule":       campaign.Rule{Name: markup},
		"Escalation": campaign.Escalation{Type: "sms", Target: markup},
	} {
		raw, err := jsonenc.Marshal(v)
		require.NoError(t, err, name)
		require.Contains(t, string(raw), markup, name)
		escaped, err := json.Marshal(v)
		require.NoError(t, err, name)
		require.NotContains(t, string(escaped), "<", name)
		require.JSONEq(t, string(raw), string(escaped), name)
	}
}
