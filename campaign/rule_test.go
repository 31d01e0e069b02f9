package campaign_test

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

var (
	ruleID = uuid.MustParse("7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b")
	t0     = time.Date(2023, 11, 7, 5, 31, 56, 0, time.UTC)
)

func ptr[T any](v T) *T { return &v }

// fields returns the failing fields of err with their rules, sorted.
func fields(t *testing.T, err error) []string {
	t.Helper()
	require.ErrorIs(t, err, validate.ErrInvalid)
	var es validate.Errors
	require.True(t, errors.As(err, &es))
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Field + ":" + e.Rule
	}
	sort.Strings(out)
	return out
}

// TestClock_TwoASCIIDigits: hours, minutes and seconds are exactly two
// ASCII digits each: no sign, no space, no other script's digits, even
// where strconv would read the number.
func TestClock_TwoASCIIDigits(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"-0:30", "+1:00", "1:00", " 09:00", "09:00 ", "09 :00", "09: 00", "09:0", "٠٩:٠٠", "09:٣٠",
		"09:-0", "-0:-0", "09:00:-0", "09:00:+0", "09:00:0", "09:00:000", "0x:00", "09:00:",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := campaign.ParseClock(in)
			require.Error(t, err, "%q", in)
		})
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]campaign.Clock{"00:00": 0, "09:00": 540, "23:59": 1439, "18:30:00": 1110} {
		got, err := campaign.ParseClock(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "9:00", "24:00", "12:60", "12:5", "12:30:01", "1230", "ab:cd", "+1:00", "12:+5", "12:00:00:00", "-1:00"} {
		_, err := campaign.ParseClock(in)
		require.Error(t, err, "%q", in)
	}
	b, err := json.Marshal(campaign.Clock(545))
	require.NoError(t, err)
	require.Equal(t, `"09:05:00"`, string(b))
	var c campaign.Clock
	require.NoError(t, json.Unmarshal([]byte(`"09:05"`), &c))
	require.Equal(t, campaign.Clock(545), c)
}

func TestNewRule(t *testing.T) {
	t.Parallel()

	t.Run("OKCallDefaults", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "  Standard  "}, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Rule{
			UUID: ruleID, Name: "Standard", Type: campaign.Call, MaxCallsPerDay: 3, MaxTotalCalls: 10,
			RetryIntervalMinutes: ptr(120), StartTime: 540, EndTime: ptr(campaign.Clock(1080)),
			DNCCheck: true, RemoveOnOptOut: true, EscalationAfterFailedAttempts: ptr(0),
			CreatedAt: t0, UpdatedAt: t0,
		}, r)
		require.Equal(t, 10, r.Ceiling())
		d, ok := r.RetryDelay()
		require.True(t, ok)
		require.Equal(t, 2*time.Hour, d)
	})

	t.Run("OKEveryField", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{
			Name: "Evenings", Type: "CALL", MaxCallsPerDay: ptr(2), MaxTotalCalls: ptr(6),
			RetryIntervalMinutes: ptr(30), StartTime: ptr("17:00"), EndTime: ptr("20:30:00"),
			DNCCheck: ptr(false), RemoveOnOptOut: ptr(false), EscalationAfterFailedAttempts: ptr(4),
			EscalationType: ptr("email"), EscalationTarget: ptr("ops@example.com"),
		}, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Rule{
			UUID: ruleID, Name: "Evenings", Type: campaign.Call, MaxCallsPerDay: 2, MaxTotalCalls: 6,
			RetryIntervalMinutes: ptr(30), StartTime: 1020, EndTime: ptr(campaign.Clock(1230)),
			EscalationAfterFailedAttempts: ptr(4), EscalationType: ptr("email"), EscalationTarget: ptr("ops@example.com"),
			CreatedAt: t0, UpdatedAt: t0,
		}, r)
	})

	// A text rule is one-shot: caps 1, no retry interval, no end time, no
	// escalation, whatever the payload says (and the forced fields are not
	// checked).
	t.Run("OKTextCoercion", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{
			Name: "Reminder", Type: "text", MaxCallsPerDay: ptr(-4), MaxTotalCalls: ptr(99),
			RetryIntervalMinutes: ptr(0), StartTime: ptr("10:00"), EndTime: ptr("nonsense"),
			EscalationAfterFailedAttempts: ptr(3), EscalationType: ptr("sms"), EscalationTarget: ptr("x"),
		}, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Rule{
			UUID: ruleID, Name: "Reminder", Type: campaign.Text, MaxCallsPerDay: 1, MaxTotalCalls: 1,
			StartTime: 600, DNCCheck: true, RemoveOnOptOut: true, CreatedAt: t0, UpdatedAt: t0,
		}, r)
		_, ok := r.RetryDelay()
		require.False(t, ok)
		require.Equal(t, 1, r.Ceiling())
		b, err := json.Marshal(r)
		require.NoError(t, err)
		require.JSONEq(t, `{"uuid":"7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b","name":"Reminder","type":"text",
			"max_calls_per_day":1,"max_total_calls":1,"retry_interval_minutes":null,"start_time":"10:00:00",
			"end_time":null,"dnc_check":true,"remove_on_opt_out":true,"escalation_after_failed_attempts":null,
			"escalation_type":null,"escalation_target":null,
			"created_at":"2023-11-07T05:31:56Z","updated_at":"2023-11-07T05:31:56Z"}`, string(b))
	})

	t.Run("ErrEveryFieldAtOnce", func(t *testing.T) {
		t.Parallel()
		_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{
			Name: "ab", Type: "voice", MaxCallsPerDay: ptr(0), MaxTotalCalls: ptr(0),
			RetryIntervalMinutes: ptr(0), StartTime: ptr("9am"), EndTime: ptr("25:00"),
			EscalationAfterFailedAttempts: ptr(-1), EscalationType: ptr(strings.Repeat("t", 256)),
			EscalationTarget: ptr("x\x00"),
		}, t0)
		require.Equal(t, []string{
			"end_time:format", "escalation_after_failed_attempts:range", "escalation_target:format",
			"escalation_type:length", "max_calls_per_day:range", "max_total_calls:range", "name:length",
			"retry_interval_minutes:range", "start_time:format", "type:enum",
		}, fields(t, err))
	})

	t.Run("OKEscalationTrimmed", func(t *testing.T) {
		t.Parallel()
		r, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{
			Name: "Escalate", EscalationType: ptr("  email "), EscalationTarget: ptr("\tops@example.com\n"),
		}, t0)
		require.NoError(t, err)
		require.Equal(t, "email", *r.EscalationType)
		require.Equal(t, "ops@example.com", *r.EscalationTarget)
		r, err = campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Blank", EscalationType: ptr("   ")}, t0)
		require.NoError(t, err)
		require.Nil(t, r.EscalationType, "blank is none")
		out, _, err := campaign.UpdateRuleParams{EscalationTarget: ptr(" +15551234567 ")}.Apply(r)
		require.NoError(t, err)
		require.Equal(t, "+15551234567", *out.EscalationTarget)
	})

	t.Run("ErrEscalationLine", func(t *testing.T) {
		t.Parallel()
		_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{
			Name: "Escalate", EscalationType: ptr("email\nBcc: x"), EscalationTarget: ptr("ops@example.com\r\nX: y"),
		}, t0)
		require.Equal(t, []string{"escalation_target:format", "escalation_type:format"}, fields(t, err))
	})

	t.Run("ErrEmptyTypeInJSON", func(t *testing.T) {
		t.Parallel()
		var p campaign.CreateRuleParams
		require.NoError(t, json.Unmarshal([]byte(`{"name":"Evenings","type":""}`), &p))
		_, err := campaign.NewRule(ruleID, p, t0)
		require.Equal(t, []string{"type:enum"}, fields(t, err), "only an absent type is the default")
		p = campaign.CreateRuleParams{}
		require.NoError(t, json.Unmarshal([]byte(`{"name":"Evenings","type":"TEXT"}`), &p))
		r, err := campaign.NewRule(ruleID, p, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Text, r.Type)
		p = campaign.CreateRuleParams{}
		require.NoError(t, json.Unmarshal([]byte(`{"name":"Evenings","max_total_calls":4}`), &p))
		r, err = campaign.NewRule(ruleID, p, t0)
		require.NoError(t, err)
		require.Equal(t, campaign.Call, r.Type)
		require.Equal(t, 4, r.MaxTotalCalls)
	})

	t.Run("ErrWindow", func(t *testing.T) {
		t.Parallel()
		for _, w := range [][2]string{{"18:00", "09:00"}, {"09:00", "09:00"}, {"22:00", "02:00"}} {
			_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Nights", StartTime: &w[0], EndTime: &w[1]}, t0)
			require.Equal(t, []string{"end_time:range"}, fields(t, err), "%v: no empty or overnight window", w)
		}
		_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Late", StartTime: ptr("19:00")}, t0)
		require.Equal(t, []string{"start_time:range"}, fields(t, err), "a start alone after the default end is the start's fault")
		_, err = campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Late", EndTime: ptr("08:00")}, t0)
		require.Equal(t, []string{"end_time:range"}, fields(t, err), "an end alone before the default start is the end's fault")
		_, err = campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Late", StartTime: ptr("19:00"), EndTime: ptr("7pm")}, t0)
		require.Equal(t, []string{"end_time:format"}, fields(t, err), "a window is not judged from a clock that did not parse")

		// A text rule starting at 19:00 made a call rule gets the default
		// end, 18:00: the type the caller sent is named, not end_time.
		text, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Evening texts", Type: campaign.Text, StartTime: ptr("19:00")}, t0)
		require.NoError(t, err)
		_, _, err = campaign.UpdateRuleParams{Type: ptr(campaign.Call)}.Apply(text)
		require.Equal(t, []string{"type:range"}, fields(t, err))
		_, _, err = campaign.UpdateRuleParams{Type: ptr(campaign.Call), EndTime: ptr("21:00")}.Apply(text)
		require.NoError(t, err, "with an end after its start")
	})

	t.Run("ErrRetryIntervalBound", func(t *testing.T) {
		t.Parallel()
		_, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Slow", RetryIntervalMinutes: ptr(campaign.MaxRetryIntervalMinutes + 1)}, t0)
		require.Equal(t, []string{"retry_interval_minutes:range"}, fields(t, err))
	})
}

func TestUpdateRuleParams_Apply(t *testing.T) {
	t.Parallel()
	call, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Standard", EscalationType: ptr("email")}, t0)
	require.NoError(t, err)

	t.Run("OKPartial", func(t *testing.T) {
		t.Parallel()
		out, changed, err := campaign.UpdateRuleParams{MaxTotalCalls: ptr(4), StartTime: ptr("08:30")}.Apply(call)
		require.NoError(t, err)
		require.True(t, changed)
		want := call
		want.MaxTotalCalls, want.StartTime = 4, 510
		require.Equal(t, want, out)
	})

	t.Run("OKNoChange", func(t *testing.T) {
		t.Parallel()
		out, changed, err := campaign.UpdateRuleParams{MaxTotalCalls: ptr(10), Name: ptr("Standard")}.Apply(call)
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, call, out)
	})

	t.Run("OKBecomesText", func(t *testing.T) {
		t.Parallel()
		out, _, err := campaign.UpdateRuleParams{Type: ptr(campaign.Text), MaxTotalCalls: ptr(8)}.Apply(call)
		require.NoError(t, err)
		require.Equal(t, campaign.Text, out.Type)
		require.Equal(t, 1, out.MaxTotalCalls)
		require.Equal(t, 1, out.MaxCallsPerDay)
		require.Nil(t, out.RetryIntervalMinutes)
		require.Nil(t, out.EndTime)
		require.Nil(t, out.EscalationType)
		require.Nil(t, out.EscalationAfterFailedAttempts)

		// A text rule stays one-shot whatever an update says.
		again, _, err := campaign.UpdateRuleParams{MaxTotalCalls: ptr(5), EndTime: ptr("20:00")}.Apply(out)
		require.NoError(t, err)
		require.Equal(t, 1, again.MaxTotalCalls)
		require.Nil(t, again.EndTime)

		// Back to call: the cleared fields get the call defaults.
		back, _, err := campaign.UpdateRuleParams{Type: ptr(campaign.Call)}.Apply(out)
		require.NoError(t, err)
		require.Equal(t, 10, back.MaxTotalCalls)
		require.Equal(t, 3, back.MaxCallsPerDay)
		require.Equal(t, ptr(120), back.RetryIntervalMinutes)
		require.Equal(t, ptr(campaign.Clock(1080)), back.EndTime)
		require.Equal(t, ptr(0), back.EscalationAfterFailedAttempts)
	})

	t.Run("ErrLeavesRule", func(t *testing.T) {
		t.Parallel()
		out, changed, err := campaign.UpdateRuleParams{Name: ptr(" "), EndTime: ptr("08:00")}.Apply(call)
		require.Equal(t, []string{"end_time:range", "name:required"}, fields(t, err))
		require.False(t, changed)
		require.Equal(t, call, out)
	})

	t.Run("OKEscalationCleared", func(t *testing.T) {
		t.Parallel()
		out, _, err := campaign.UpdateRuleParams{EscalationType: ptr("")}.Apply(call)
		require.NoError(t, err)
		require.Nil(t, out.EscalationType)
	})
}

// TestUpdateRuleParams_ValidateWithoutRule: it checks the fields whose
// rules hold whatever the rule (name, type, start_time), every failing one,
// and leaves the others to Apply: a text rule ignores its caps.
func TestUpdateRuleParams_ValidateWithoutRule(t *testing.T) {
	t.Parallel()
	u := campaign.UpdateRuleParams{Name: ptr("x"), Type: ptr(campaign.RuleType("fax")), StartTime: ptr("25:00"),
		MaxCallsPerDay: ptr(0), EndTime: ptr("00:00")}
	require.Equal(t, []string{"name:length", "start_time:format", "type:enum"}, fields(t, u.ValidateWithoutRule()))
	require.NoError(t, campaign.UpdateRuleParams{MaxCallsPerDay: ptr(0), EndTime: ptr("00:00")}.ValidateWithoutRule())

	// Apply reports what it does, and the others as the rule's type says.
	call, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Standard"}, t0)
	require.NoError(t, err)
	_, _, err = u.Apply(call)
	require.Equal(t, []string{"end_time:range", "max_calls_per_day:range", "name:length", "start_time:format", "type:enum"}, fields(t, err))
	text, err := campaign.NewRule(ruleID, campaign.CreateRuleParams{Name: "Texts", Type: campaign.Text}, t0)
	require.NoError(t, err)
	_, _, err = u.Apply(text)
	require.Equal(t, []string{"name:length", "start_time:format", "type:enum"}, fields(t, err))
}
