package campaign_test

import (
	"testing"

	"github.com/poolq/poolq/campaign"
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
