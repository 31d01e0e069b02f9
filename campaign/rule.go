package campaign

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// RuleType says what a rule's attempts are: calls, or one-shot texts.
type RuleType string

// The rule types.
const (
	Call RuleType = "call"
	Text RuleType = "text"
)

// RuleTypes returns every rule type, in the API's order.
func RuleTypes() []RuleType { return []RuleType{Call, Text} }

// ParseRuleType returns the canonical RuleType for s, in any case.
func ParseRuleType(s string) (RuleType, bool) {
	for _, t := range RuleTypes() {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return RuleType(s), false
}

// Valid reports whether t is a canonical rule type.
func (t RuleType) Valid() bool { return t == Call || t == Text }

// String returns t as written.
func (t RuleType) String() string { return string(t) }

// Limits and defaults of a rule, from the API.
const (
	DefaultRuleType             = Call
	DefaultMaxCallsPerDay       = 3
	DefaultMaxTotalCalls        = 10
	DefaultRetryIntervalMinutes = 120
	DefaultStartTime            = Clock(9 * 60)  // 09:00
	DefaultEndTime              = Clock(18 * 60) // 18:00
	DefaultDNCCheck             = true
	DefaultRemoveOnOptOut       = true

	// MaxRetryIntervalMinutes bounds retry_interval_minutes: 366 days, as
	// the engine bounds a retry time.
	MaxRetryIntervalMinutes = 366 * 24 * 60
	// MaxEscalationTypeLen and MaxEscalationTargetLen bound the escalation
	// fields, in characters.
	MaxEscalationTypeLen   = 255
	MaxEscalationTargetLen = 1000
)

// Rule is a contact rule: how the items of the pools of a campaign that
// uses it are dialled. It marshals to the API's JSON field names; the
// fields a text rule clears are null.
type Rule struct {
	UUID uuid.UUID `json:"uuid"`
	Name string    `json:"name"`
	Type RuleType  `json:"type"`
	// MaxCallsPerDay caps a contact's attempts per calendar day in its
	// time zone, counted over its items in all the campaign's pools.
	MaxCallsPerDay int `json:"max_calls_per_day"`
	// MaxTotalCalls caps a contact's attempts in all, counted over its
	// items in all the campaign's pools: the ceiling of the items it
	// governs, in place of their pool's max_retries + 1.
	MaxTotalCalls int `json:"max_total_calls"`
	// RetryIntervalMinutes is the delay before a failed attempt's retry
	// (nil for a text rule).
	RetryIntervalMinutes *int `json:"retry_interval_minutes"`
	// StartTime and EndTime are the daily calling window, [start, end), in
	// the contact's local time (EndTime nil for a text rule: no end).
	StartTime Clock  `json:"start_time"`
	EndTime   *Clock `json:"end_time"`
	// DNCCheck skips contacts on the do-not-call list.
	DNCCheck bool `json:"dnc_check"`
	// RemoveOnOptOut removes an opted-out contact from the active items.
	RemoveOnOptOut bool `json:"remove_on_opt_out"`
	// EscalationAfterFailedAttempts records an escalation when an item's
	// failed attempts reach it (0 disables; nil for a text rule).
	EscalationAfterFailedAttempts *int `json:"escalation_after_failed_attempts"`
	// EscalationType and EscalationTarget say how and whom an escalation
	// tells: one line of text each, the spaces around it trimmed, nil when
	// blank (at most MaxEscalationTypeLen and MaxEscalationTargetLen
	// characters).
	EscalationType   *string `json:"escalation_type"`
	EscalationTarget *string `json:"escalation_target"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Ceiling returns how many times an item the rule governs may be
// dispatched: MaxTotalCalls.
func (r Rule) Ceiling() int { return r.MaxTotalCalls }

// RetryDelay returns the delay before a failed attempt's retry, and false
// when the rule has none (a text rule: it never retries, its ceiling being
// one attempt).
func (r Rule) RetryDelay() (time.Duration, bool) {
	if r.RetryIntervalMinutes == nil {
		return 0, false
	}
	return time.Duration(*r.RetryIntervalMinutes) * time.Minute, true
}

// MarshalJSON writes the API's rule object, times of day "HH:MM:SS" and
// timestamps as [pool.Timestamp]s.
func (r Rule) MarshalJSON() ([]byte, error) {
	type plain Rule // without this method
	return jsonenc.Marshal(struct {
		plain
		CreatedAt pool.Timestamp `json:"created_at"`
		UpdatedAt pool.Timestamp `json:"updated_at"`
	}{plain(r), pool.Timestamp(r.CreatedAt), pool.Timestamp(r.UpdatedAt)})
}

// CreateRuleParams describes a new rule. Name is required: one line of
// 3–255 characters, trimmed of surrounding white space first (as a
// campaign's and a pool's). Nil fields take the defaults of the rule's
// type, and an empty Type is a call rule (in JSON, a "type" given as "" is
// an error, as in an update). Times of day are "HH:MM" (24 hours;
// "HH:MM:SS" with zero seconds is accepted too).
type CreateRuleParams struct {
	Name                          string   `json:"name"`
	Type                          RuleType `json:"type,omitempty"`
	MaxCallsPerDay                *int     `json:"max_calls_per_day,omitempty"`
	MaxTotalCalls                 *int     `json:"max_total_calls,omitempty"`
	RetryIntervalMinutes          *int     `json:"retry_interval_minutes,omitempty"`
	StartTime                     *string  `json:"start_time,omitempty"`
	EndTime                       *string  `json:"end_time,omitempty"`
	DNCCheck                      *bool    `json:"dnc_check,omitempty"`
	RemoveOnOptOut                *bool    `json:"remove_on_opt_out,omitempty"`
	EscalationAfterFailedAttempts *int     `json:"escalation_after_failed_attempts,omitempty"`
	EscalationType                *string  `json:"escalation_type,omitempty"`
	EscalationTarget              *string  `json:"escalation_target,omitempty"`

	// emptyType records a JSON "type": "" (see UnmarshalJSON).
	emptyType bool
}

// UnmarshalJSON decodes the JSON form. A "type" given as the empty string
// is kept apart from an absent one, so that NewRule refuses it as an
// update does: only an absent type means the default.
func (p *CreateRuleParams) UnmarshalJSON(b []byte) error {
	type plain CreateRuleParams // without this method
	var aux struct {
		plain
		Type *RuleType `json:"type"`
	}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	*p = CreateRuleParams(aux.plain)
	if aux.Type != nil {
		p.Type = *aux.Type
		p.emptyType = *aux.Type == ""
	}
	return nil
}

// UpdateRuleParams changes some fields of a rule: nil fields are left as
// they are, given ones follow the rules of [CreateRuleParams]. An update
// is not retroactive: items already waiting keep their retry times.
type UpdateRuleParams struct {
	Name                          *string   `json:"name,omitempty"`
	Type                          *RuleType `json:"type,omitempty"`
	MaxCallsPerDay                *int      `json:"max_calls_per_day,omitempty"`
	MaxTotalCalls                 *int      `json:"max_total_calls,omitempty"`
	RetryIntervalMinutes          *int      `json:"retry_interval_minutes,omitempty"`
	StartTime                     *string   `json:"start_time,omitempty"`
	EndTime                       *string   `json:"end_time,omitempty"`
	DNCCheck                      *bool     `json:"dnc_check,omitempty"`
	RemoveOnOptOut                *bool     `json:"remove_on_opt_out,omitempty"`
	EscalationAfterFailedAttempts *int      `json:"escalation_after_failed_attempts,omitempty"`
	EscalationType                *string   `json:"escalation_type,omitempty"`
	EscalationTarget              *string   `json:"escalation_target,omitempty"`
}

// NewRule validates p and returns the rule it describes, with the
// defaults of its type applied, the given id, and CreatedAt = UpdatedAt =
// now. On failure it returns a [validate.Errors] listing every failing
// field. A text rule's caps are forced to 1 and its retry interval, end
// time and escalation fields cleared, whatever p says.
func NewRule(id uuid.UUID, p CreateRuleParams, now time.Time) (Rule, error) {
	now = now.UTC()
	r := Rule{UUID: id, Type: DefaultRuleType, CreatedAt: now, UpdatedAt: now}
	r.applyDefaults()
	u := UpdateRuleParams{
		Name: &p.Name, MaxCallsPerDay: p.MaxCallsPerDay, MaxTotalCalls: p.MaxTotalCalls,
		RetryIntervalMinutes: p.RetryIntervalMinutes, StartTime: p.StartTime, EndTime: p.EndTime,
		DNCCheck: p.DNCCheck, RemoveOnOptOut: p.RemoveOnOptOut,
		EscalationAfterFailedAttempts: p.EscalationAfterFailedAttempts,
		EscalationType:                p.EscalationType, EscalationTarget: p.EscalationTarget,
	}
	if p.Type != "" || p.emptyType {
		u.Type = &p.Type
	}
	out, _, err := u.Apply(r)
	if err != nil {
		return Rule{}, err
	}
	out.UpdatedAt = now
	return out, nil
}

// applyDefaults sets r's settings to the defaults of a call rule.
func (r *Rule) applyDefaults() {
	r.MaxCallsPerDay, r.MaxTotalCalls = DefaultMaxCallsPerDay, DefaultMaxTotalCalls
	r.RetryIntervalMinutes = ptr(DefaultRetryIntervalMinutes)
	r.StartTime, r.EndTime = DefaultStartTime, ptr(DefaultEndTime)
	r.DNCCheck, r.RemoveOnOptOut = DefaultDNCCheck, DefaultRemoveOnOptOut
	r.EscalationAfterFailedAttempts = ptr(0)
	r.EscalationType, r.EscalationTarget = nil, nil
}

// Apply validates u against r and returns r with the given fields changed.
// A rule that becomes (or stays) a text rule gets the text coercion; one
// that becomes a call rule gets the call defaults for the fields a text
// rule had forced or cleared (both caps, the retry interval, the end time
// and the escalation fields), unless u gives them: its 1s were not
// chosen. Its name, start time, dnc_check and remove_on_opt_out stay.
// changed reports whether a value
// differs from r's (the caller moves UpdatedAt only then). On failure it
// returns a [validate.Errors] listing every failing field, and r.
func (u UpdateRuleParams) Apply(r Rule) (out Rule, changed bool, err error) {
	var v validate.Validator
	out = r
	if u.Name != nil {
		name := strings.TrimSpace(*u.Name)
		if v.Required("name", name) && v.Length("name", name, pool.MinNameLen, pool.MaxNameLen) && v.Text("name", name, 0) {
			v.Line("name", name)
		}
		out.Name = name
	}
	if u.Type != nil {
		t, ok := ParseRuleType(string(*u.Type))
		v.OneOf("type", string(*u.Type), ok, "call", "text")
		if ok && t == Call && out.Type == Text {
			// The fields a text rule cleared get the call defaults.
			created, updated := out.CreatedAt, out.UpdatedAt
			id, name := out.UUID, out.Name
			dnc, optOut, start := out.DNCCheck, out.RemoveOnOptOut, out.StartTime
			out.applyDefaults()
			out.UUID, out.Name, out.CreatedAt, out.UpdatedAt = id, name, created, updated
			out.DNCCheck, out.RemoveOnOptOut, out.StartTime = dnc, optOut, start
		}
		if ok {
			out.Type = t
		}
	}
	text := out.Type == Text
	// A text rule ignores what it forces: those fields are not checked.
	if u.MaxCallsPerDay != nil && !text && v.IntMin("max_calls_per_day", *u.MaxCallsPerDay, 1) {
		out.MaxCallsPerDay = *u.MaxCallsPerDay
	}
	if u.MaxTotalCalls != nil && !text && v.IntMin("max_total_calls", *u.MaxTotalCalls, 1) {
		out.MaxTotalCalls = *u.MaxTotalCalls
	}
	if u.RetryIntervalMinutes != nil && !text &&
		v.IntRange("retry_interval_minutes", *u.RetryIntervalMinutes, 1, MaxRetryIntervalMinutes) {
		out.RetryIntervalMinutes = ptr(*u.RetryIntervalMinutes)
	}
	// A window is judged only from the clocks that parsed: a start that did
	// not parse leaves only an end of 00:00 wrong whatever the start.
	startOK, endOK := true, true
	if u.StartTime != nil {
		if c, err := ParseClock(*u.StartTime); err != nil {
			startOK = false
			v.Add("start_time", validate.RuleFormat, err.Error())
		} else {
			out.StartTime = c
		}
	}
	if u.EndTime != nil && !text {
		if c, err := ParseClock(*u.EndTime); err != nil {
			endOK = false
			v.Add("end_time", validate.RuleFormat, err.Error())
		} else {
			out.EndTime = ptr(c)
		}
	}
	if u.DNCCheck != nil {
		out.DNCCheck = *u.DNCCheck
	}
	if u.RemoveOnOptOut != nil {
		out.RemoveOnOptOut = *u.RemoveOnOptOut
	}
	if u.EscalationAfterFailedAttempts != nil && !text &&
		v.IntMin("escalation_after_failed_attempts", *u.EscalationAfterFailedAttempts, 0) {
		out.EscalationAfterFailedAttempts = ptr(*u.EscalationAfterFailedAttempts)
	}
	if u.EscalationType != nil && !text {
		if s, ok := escalationText(&v, "escalation_type", *u.EscalationType, MaxEscalationTypeLen); ok {
			out.EscalationType = nullable(s)
		}
	}
	if u.EscalationTarget != nil && !text {
		if s, ok := escalationText(&v, "escalation_target", *u.EscalationTarget, MaxEscalationTargetLen); ok {
			out.EscalationTarget = nullable(s)
		}
	}
	if text {
		out.MaxCallsPerDay, out.MaxTotalCalls = 1, 1
		out.RetryIntervalMinutes, out.EndTime = nil, nil
		out.EscalationAfterFailedAttempts, out.EscalationType, out.EscalationTarget = nil, nil, nil
	} else if endOK && out.EndTime != nil && (*out.EndTime <= out.StartTime && startOK || *out.EndTime == 0) {
		// No overnight windows: a window that crosses midnight is two
		// days' worth of hours, and its day cap ambiguous. The error names
		// the field the caller gave: a start_time alone past the default
		// (or kept) end is the start's fault; a text rule made a call rule
		// gets the default end, which may come before its start.
		switch {
		case u.StartTime != nil && u.EndTime == nil:
			v.Add("start_time", validate.RuleRange,
				fmt.Sprintf("must be before end_time %s (got %s): windows do not cross midnight", *out.EndTime, out.StartTime))
		case u.StartTime == nil && u.EndTime == nil:
			v.Add("type", validate.RuleRange,
				fmt.Sprintf("a call rule gets the default end_time %s, not after this rule's start_time %s: give an end_time (windows do not cross midnight)", *out.EndTime, out.StartTime))
		default:
			v.Add("end_time", validate.RuleRange,
				fmt.Sprintf("must be after start_time %s (got %s): windows do not cross midnight", out.StartTime, *out.EndTime))
		}
	}
	if err := v.Err(); err != nil {
		return r, false, err
	}
	return out, !sameRule(out, r), nil
}

// Validate checks p as NewRule would, without a rule.
func (p CreateRuleParams) Validate() error {
	_, err := NewRule(uuid.Nil, p, time.Time{})
	return err
}

// ValidateWithoutRule checks the fields of u whose rules hold whatever the
// rule u changes: name, type and start_time, every failing one at once
// ([validate.Errors]). It is not the whole check: whether the others count
// depends on the rule's type (a text rule ignores its caps), so only
// [UpdateRuleParams.Apply] checks them, against the rule; it checks these
// three again.
func (u UpdateRuleParams) ValidateWithoutRule() error {
	_, _, err := UpdateRuleParams{Name: u.Name, Type: u.Type, StartTime: u.StartTime}.Apply(Rule{})
	return err
}

// sameRule reports whether a and b hold the same values.
func sameRule(a, b Rule) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func ptr[T any](v T) *T { return &v }

// escalationText checks an escalation type or target: one line of text
// (an address, a channel's name), of at most max characters once the
// spaces around it are trimmed. A blank one means none (nullable).
func escalationText(v *validate.Validator, field, s string, max int) (string, bool) {
	s = strings.TrimSpace(s)
	return s, v.Text(field, s, max) && v.Line(field, s)
}

// nullable returns &s, or nil for "".
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
