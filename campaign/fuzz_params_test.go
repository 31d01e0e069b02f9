package campaign_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// Run one fuzzer at a time, e.g.:
//
//	go test -run='^$' -fuzz='^FuzzCreateRuleParamsJSON$' -fuzztime=30s ./campaign
//	go test -run='^$' -fuzz='^FuzzUpdateRuleParamsJSON$' -fuzztime=30s ./campaign
//	go test -run='^$' -fuzz='^FuzzCampaignParamsJSON$' -fuzztime=30s ./campaign
//
// Without -fuzz, the seeds run as ordinary tests.

var ruleSeeds = []string{
	`{"name":"Standard"}`,
	`{"name":"Standard","type":"call","max_calls_per_day":3,"max_total_calls":10,"retry_interval_minutes":120,"start_time":"09:00","end_time":"18:00","dnc_check":true,"remove_on_opt_out":true,"escalation_after_failed_attempts":2,"escalation_type":"email","escalation_target":"ops@example.com"}`,
	`{"name":"SMS","type":"TEXT","max_calls_per_day":0,"end_time":"xx","retry_interval_minutes":-1,"escalation_type":"\u0000"}`,
	`{"name":"Late","start_time":"19:00"}`,
	`{"name":"Late","type":"text","start_time":"19:00"}`,
	`{"name":"Late","start_time":"19:00","end_time":"23:59"}`,
	`{"name":"Midnight","start_time":"00:00","end_time":"00:00"}`,
	`{"name":"Back","start_time":"10:00","end_time":"09:00"}`,
	`{"name":"Secs","start_time":"09:00:00","end_time":"18:00:00"}`,
	`{"name":"Secs","start_time":"09:00:01"}`,
	`{"name":"Bad","start_time":"9:00","end_time":"24:00"}`,
	`{"name":"Bad","start_time":"٠٩:٠٠"}`,
	`{"name":"Type","type":""}`,
	`{"name":"Type","type":null}`,
	`{"name":"Type","type":"fax"}`,
	`{"name":"Cap","max_calls_per_day":1,"max_total_calls":1,"retry_interval_minutes":527040}`,
	`{"name":"Cap","retry_interval_minutes":527041}`,
	`{"name":"Esc","escalation_after_failed_attempts":-1}`,
	`{"name":"Esc","escalation_type":"  ","escalation_target":" x "}`,
	`{"name":"Esc","escalation_target":"a\nb"}`,
	`{"name":"Esc","escalation_type":"` + strings.Repeat("é", 256) + `"}`,
	`{"name":"ab"}`, `{"name":"  abc  "}`, `{"name":"a\u2028bc"}`, `{}`, `null`, `[]`,
	"{\"name\":\"abc\xff\"}",
}

var ruleRules = map[string][]string{
	"name":                             {validate.RuleRequired, validate.RuleLength, validate.RuleFormat},
	"type":                             {validate.RuleEnum, validate.RuleRange},
	"max_calls_per_day":                {validate.RuleRange},
	"max_total_calls":                  {validate.RuleRange},
	"retry_interval_minutes":           {validate.RuleRange},
	"start_time":                       {validate.RuleFormat, validate.RuleRange},
	"end_time":                         {validate.RuleFormat, validate.RuleRange},
	"escalation_after_failed_attempts": {validate.RuleRange},
	"escalation_type":                  {validate.RuleFormat, validate.RuleLength},
	"escalation_target":                {validate.RuleFormat, validate.RuleLength},
}

func requireRuleErrors(t *testing.T, err error) validate.Errors {
	t.Helper()
	require.ErrorIs(t, err, validate.ErrInvalid)
	var es validate.Errors
	require.ErrorAs(t, err, &es)
	require.NotEmpty(t, es)
	for _, e := range es {
		require.Contains(t, ruleRules[e.Field], e.Rule, "field %q rule %q", e.Field, e.Rule)
		require.NotEmpty(t, e.Message)
	}
	return es
}

func oneLine(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool {
		return r == 0 || unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	})
}

// requireRuleValid checks every rule a stored rule satisfies.
func requireRuleValid(t *testing.T, r campaign.Rule) {
	t.Helper()
	require.Equal(t, strings.TrimSpace(r.Name), r.Name)
	n := utf8.RuneCountInString(r.Name)
	require.True(t, n >= pool.MinNameLen && n <= pool.MaxNameLen && oneLine(r.Name), "name %q", r.Name)
	require.True(t, r.Type.Valid(), "type %q", r.Type)
	require.True(t, r.Window().Valid(), "window %v", r.Window())
	require.GreaterOrEqual(t, r.MaxCallsPerDay, 1)
	require.GreaterOrEqual(t, r.MaxTotalCalls, 1)
	if r.Type == campaign.Text {
		require.Equal(t, 1, r.MaxCallsPerDay)
		require.Equal(t, 1, r.MaxTotalCalls)
		require.Nil(t, r.RetryIntervalMinutes)
		require.Nil(t, r.EndTime)
		require.Nil(t, r.EscalationAfterFailedAttempts)
		require.Nil(t, r.EscalationType)
		require.Nil(t, r.EscalationTarget)
		return
	}
	require.NotNil(t, r.RetryIntervalMinutes)
	require.True(t, *r.RetryIntervalMinutes >= 1 && *r.RetryIntervalMinutes <= campaign.MaxRetryIntervalMinutes)
	require.NotNil(t, r.EndTime)
	require.NotNil(t, r.EscalationAfterFailedAttempts)
	require.GreaterOrEqual(t, *r.EscalationAfterFailedAttempts, 0)
	for _, s := range []*string{r.EscalationType, r.EscalationTarget} {
		if s != nil {
			require.NotEmpty(t, *s)
			require.Equal(t, strings.TrimSpace(*s), *s)
			require.True(t, oneLine(*s), "escalation text %q", *s)
		}
	}
	if r.EscalationType != nil {
		require.LessOrEqual(t, utf8.RuneCountInString(*r.EscalationType), campaign.MaxEscalationTypeLen)
	}
	if r.EscalationTarget != nil {
		require.LessOrEqual(t, utf8.RuneCountInString(*r.EscalationTarget), campaign.MaxEscalationTargetLen)
	}
}

// requireRuleRoundTrip checks that r's JSON, as the API shows it, is a
// create body that makes the same rule again.
func requireRuleRoundTrip(t *testing.T, r campaign.Rule) {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	var p campaign.CreateRuleParams
	require.NoError(t, json.Unmarshal(b, &p), "%s", b)
	twin, err := campaign.NewRule(r.UUID, p, r.CreatedAt)
	require.NoError(t, err, "re-creating from %s", b)
	twin.UpdatedAt = r.UpdatedAt
	require.Equal(t, r, twin, "re-created from %s", b)
}

// ruleFieldsOK is the reference verdict on a create body: the rules of
// campaign/rule.go restated (typeGiven: the body gives a type, not null).
func ruleFieldsOK(p campaign.CreateRuleParams, typeGiven bool) bool {
	ok := true
	name := strings.TrimSpace(p.Name)
	if n := utf8.RuneCountInString(name); !utf8.ValidString(name) || n < pool.MinNameLen || n > pool.MaxNameLen || !oneLine(name) {
		ok = false
	}
	typ := campaign.Call
	if typeGiven {
		t, tok := campaign.ParseRuleType(string(p.Type))
		if !tok {
			ok = false
		} else {
			typ = t
		}
	}
	start, end := campaign.DefaultStartTime, campaign.DefaultEndTime
	if p.StartTime != nil {
		c, err := campaign.ParseClock(*p.StartTime)
		if err != nil {
			return false
		}
		start = c
	}
	if typ == campaign.Text {
		return ok
	}
	if p.EndTime != nil {
		c, err := campaign.ParseClock(*p.EndTime)
		if err != nil {
			return false
		}
		end = c
	}
	if end <= start {
		ok = false
	}
	for _, n := range []*int{p.MaxCallsPerDay, p.MaxTotalCalls} {
		if n != nil && *n < 1 {
			ok = false
		}
	}
	if n := p.RetryIntervalMinutes; n != nil && (*n < 1 || *n > campaign.MaxRetryIntervalMinutes) {
		ok = false
	}
	if n := p.EscalationAfterFailedAttempts; n != nil && *n < 0 {
		ok = false
	}
	if s := p.EscalationType; s != nil && (!oneLine(strings.TrimSpace(*s)) || utf8.RuneCountInString(strings.TrimSpace(*s)) > campaign.MaxEscalationTypeLen) {
		ok = false
	}
	if s := p.EscalationTarget; s != nil && (!oneLine(strings.TrimSpace(*s)) || utf8.RuneCountInString(strings.TrimSpace(*s)) > campaign.MaxEscalationTargetLen) {
		ok = false
	}
	return ok
}

// FuzzCreateRuleParamsJSON: a rule's create body. Validate and NewRule
// agree; they accept exactly the bodies that meet the rules (restated in
// ruleFieldsOK); a refusal is a validate.Errors naming only rule fields; an
// accepted rule keeps every rule of a stored rule, carries the given
// values (a call rule) or the text coercion, and its JSON makes the same
// rule again.
func FuzzCreateRuleParamsJSON(f *testing.F) {
	for _, s := range ruleSeeds {
		f.Add([]byte(s))
	}
	id := uuid.MustParse("7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b")
	now := time.Date(2026, 3, 8, 7, 30, 0, 0, time.FixedZone("X", -3600))

	f.Fuzz(func(t *testing.T, data []byte) {
		var p campaign.CreateRuleParams
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		var fields map[string]json.RawMessage
		typeGiven := false
		if json.Unmarshal(data, &fields) == nil {
			// encoding/json matches keys case-insensitively, the last one
			// winning.
			for k, v := range fields {
				if strings.EqualFold(k, "type") {
					typeGiven = string(v) != "null"
				}
			}
		}
		verr := p.Validate()
		r, err := campaign.NewRule(id, p, now)
		require.Equal(t, verr, err, "NewRule reports what Validate reports")
		wantOK := ruleFieldsOK(p, typeGiven)
		if err != nil {
			require.False(t, wantOK, "a valid body refused: %v", err)
			requireRuleErrors(t, err)
			require.Equal(t, campaign.Rule{}, r)
			return
		}
		require.True(t, wantOK, "an invalid body accepted: %+v", r)
		requireRuleValid(t, r)
		require.Equal(t, id, r.UUID)
		require.Equal(t, now.UTC(), r.CreatedAt)
		require.Equal(t, now.UTC(), r.UpdatedAt)
		require.Equal(t, strings.TrimSpace(p.Name), r.Name)
		if p.StartTime != nil {
			c, _ := campaign.ParseClock(*p.StartTime)
			require.Equal(t, c, r.StartTime)
		}
		if r.Type == campaign.Call {
			for _, g := range []struct {
				given *int
				got   int
			}{{p.MaxCallsPerDay, r.MaxCallsPerDay}, {p.MaxTotalCalls, r.MaxTotalCalls}, {p.RetryIntervalMinutes, *r.RetryIntervalMinutes}, {p.EscalationAfterFailedAttempts, *r.EscalationAfterFailedAttempts}} {
				if g.given != nil {
					require.Equal(t, *g.given, g.got)
				}
			}
			if p.EndTime != nil {
				c, _ := campaign.ParseClock(*p.EndTime)
				require.Equal(t, c, *r.EndTime)
			}
		}
		requireRuleRoundTrip(t, r)
	})
}

// FuzzUpdateRuleParamsJSON: a rule's update body, applied to a call rule
// and to a text rule. Apply either fails with a validate.Errors naming
// only rule fields and returns the rule unchanged, or returns a rule that
// keeps every rule of a stored rule, whose JSON makes it again, which the
// same update leaves unchanged, and changed says whether it differs. What
// ValidateWithoutRule refuses, Apply refuses for every rule, on the same
// fields at least.
func FuzzUpdateRuleParamsJSON(f *testing.F) {
	for _, s := range ruleSeeds {
		f.Add([]byte(s))
	}
	id := uuid.MustParse("7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b")
	now := time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)
	callRule, err := campaign.NewRule(id, campaign.CreateRuleParams{
		Name: "Calls", MaxCallsPerDay: ptr(2), MaxTotalCalls: ptr(5), RetryIntervalMinutes: ptr(30),
		StartTime: ptr("08:30"), EndTime: ptr("20:00"), EscalationAfterFailedAttempts: ptr(3),
		EscalationType: ptr("email"), EscalationTarget: ptr("ops@example.com"), DNCCheck: ptr(false),
	}, now)
	require.NoError(f, err)
	textRule, err := campaign.NewRule(id, campaign.CreateRuleParams{Name: "Texts", Type: campaign.Text, StartTime: ptr("19:00")}, now)
	require.NoError(f, err)

	f.Fuzz(func(t *testing.T, data []byte) {
		var u campaign.UpdateRuleParams
		if err := json.Unmarshal(data, &u); err != nil {
			return
		}
		werr := u.ValidateWithoutRule()
		if werr != nil {
			requireRuleErrors(t, werr)
		}
		for _, base := range []campaign.Rule{callRule, textRule} {
			got, changed, err := u.Apply(base)
			if err != nil {
				es := requireRuleErrors(t, err)
				require.False(t, changed)
				require.Equal(t, base, got, "a refused update returns the rule unchanged")
				if werr != nil {
					for _, field := range werr.(validate.Errors).Fields() {
						require.True(t, es.Has(field), "Apply names %q as ValidateWithoutRule does: %v", field, err)
					}
				}
				continue
			}
			require.NoError(t, werr, "Apply accepted what ValidateWithoutRule refused")
			requireRuleValid(t, got)
			require.Equal(t, base.UUID, got.UUID)
			require.Equal(t, base.CreatedAt, got.CreatedAt)
			bb, _ := json.Marshal(base)
			gb, _ := json.Marshal(got)
			require.Equal(t, string(bb) != string(gb), changed, "changed reports a difference")
			if u.Name != nil {
				require.Equal(t, strings.TrimSpace(*u.Name), got.Name)
			}
			if u.StartTime != nil {
				c, _ := campaign.ParseClock(*u.StartTime)
				require.Equal(t, c, got.StartTime)
			} else {
				require.Equal(t, base.StartTime, got.StartTime, "start_time stays")
			}
			if u.DNCCheck != nil {
				require.Equal(t, *u.DNCCheck, got.DNCCheck)
			} else {
				require.Equal(t, base.DNCCheck, got.DNCCheck)
			}
			if got.Type == campaign.Call && u.MaxCallsPerDay != nil {
				require.Equal(t, *u.MaxCallsPerDay, got.MaxCallsPerDay)
			}
			requireRuleRoundTrip(t, got)

			again, changed, err := u.Apply(got)
			require.NoError(t, err, "the same update again")
			require.False(t, changed, "the same update again changes nothing")
			require.Equal(t, got, again)
		}
	})
}

var campaignSeeds = []string{
	`{"name":"Spring"}`,
	`{"name":"Spring","timezone":"Europe/Paris","rule_uuid":"7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b"}`,
	`{"name":"Spring","rule_uuid":"00000000-0000-0000-0000-000000000000"}`,
	`{"name":"Spring","timezone":"europe/paris"}`,
	`{"name":"Spring","timezone":"UTC"}`,
	`{"name":"Spring","timezone":"Etc/UTC"}`,
	`{"name":"Spring","timezone":"Europe/"}`,
	`{"name":"Spring","timezone":" UTC"}`,
	`{"name":"Sp"}`, `{"name":"  Spring\t"}`, `{"name":"Spr\u0085ing"}`, `{"name":null,"timezone":null}`,
	`{"name":"` + strings.Repeat("ß", 255) + `"}`, `{"name":"` + strings.Repeat("ß", 256) + `"}`,
	"{\"name\":\"Spr\xc0ing\"}", `{}`, `null`,
}

var campaignRules = map[string][]string{
	"name":      {validate.RuleRequired, validate.RuleLength, validate.RuleFormat},
	"timezone":  {validate.RuleFormat},
	"rule_uuid": {validate.RuleRequired},
}

// FuzzCampaignParamsJSON: a campaign's create and update bodies (the same
// bytes read as both). New and UpdateParams.Apply accept exactly the
// names and zones that meet the rules; a refusal names only campaign
// fields and, for Apply, returns the campaign unchanged; an accepted
// campaign's JSON makes it again, and the same update leaves it unchanged.
func FuzzCampaignParamsJSON(f *testing.F) {
	for _, s := range campaignSeeds {
		f.Add([]byte(s))
	}
	id := uuid.MustParse("0190b7a4-8c1e-7000-8000-00000000c0de")
	now := time.Date(2026, 10, 25, 1, 30, 0, 0, time.UTC)
	base, err := campaign.New(id, campaign.CreateParams{Name: "Autumn", TimeZone: "Europe/London"}, now)
	require.NoError(f, err)
	base.PoolUUIDs = []uuid.UUID{id}

	nameOK := func(s string) bool {
		s = strings.TrimSpace(s)
		n := utf8.RuneCountInString(s)
		return utf8.ValidString(s) && n >= pool.MinNameLen && n <= pool.MaxNameLen && oneLine(s)
	}
	zoneOK := func(s string) bool {
		_, err := pool.LoadZone(s)
		return s == "" || err == nil
	}
	check := func(t *testing.T, err error) {
		require.ErrorIs(t, err, validate.ErrInvalid)
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		require.NotEmpty(t, es)
		for _, e := range es {
			require.Contains(t, campaignRules[e.Field], e.Rule, "field %q rule %q", e.Field, e.Rule)
		}
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var p campaign.CreateParams
		if json.Unmarshal(data, &p) == nil {
			c, err := campaign.New(id, p, now)
			wantOK := nameOK(p.Name) && zoneOK(p.TimeZone) && (p.RuleUUID == nil || *p.RuleUUID != uuid.Nil)
			if err != nil {
				require.False(t, wantOK, "a valid body refused: %v", err)
				check(t, err)
				require.Equal(t, campaign.Campaign{}, c)
			} else {
				require.True(t, wantOK, "an invalid body accepted: %+v", c)
				require.Equal(t, strings.TrimSpace(p.Name), c.Name)
				require.Equal(t, p.TimeZone, c.TimeZone)
				require.Equal(t, campaign.Draft, c.Status)
				b, err := json.Marshal(c)
				require.NoError(t, err)
				var again campaign.CreateParams
				require.NoError(t, json.Unmarshal(b, &again))
				twin, err := campaign.New(id, again, now)
				require.NoError(t, err, "re-creating from %s", b)
				twin.PoolUUIDs = c.PoolUUIDs
				require.Equal(t, c, twin)
			}
		}

		var u campaign.UpdateParams
		if json.Unmarshal(data, &u) != nil {
			return
		}
		verr := u.Validate()
		got, changed, err := u.Apply(base)
		wantOK := (u.Name == nil || nameOK(*u.Name)) && (u.TimeZone == nil || zoneOK(*u.TimeZone))
		if err != nil {
			require.False(t, wantOK, "a valid update refused: %v", err)
			require.Equal(t, verr, err, "Apply reports what Validate reports")
			check(t, err)
			require.False(t, changed)
			require.Equal(t, base, got, "a refused update returns the campaign unchanged")
			return
		}
		require.NoError(t, verr)
		require.True(t, wantOK, "an invalid update accepted: %+v", got)
		want := base
		if u.Name != nil {
			want.Name = strings.TrimSpace(*u.Name)
		}
		if u.TimeZone != nil {
			want.TimeZone = *u.TimeZone
		}
		require.Equal(t, want, got)
		require.Equal(t, want.Name != base.Name || want.TimeZone != base.TimeZone, changed)
		again, changed, err := u.Apply(got)
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, got, again)
	})
}

var listQuerySeeds = []string{
	`{}`, `{"page":3,"per_page":100}`, `{"page":-1,"per_page":101}`, `{"page":2147483648}`,
	`{"type":"CALL"}`, `{"type":"fax"}`, `{"status":"active"}`, `{"status":"in process"}`,
	`{"status":"Running"}`, `{"search":"spring"}`, `{"search":"a\u2029b"}`,
	`{"rule_uuid":"7a1e7c2e-5b1f-4c7e-9a0b-1c2d3e4f5a6b"}`, `{"rule_uuid":"00000000-0000-0000-0000-000000000000"}`,
}

// FuzzListQueriesJSON: the rule and campaign listings' queries (the same
// bytes read as both). Normalize fails exactly on the fields that break
// the rules (page, per_page, a one-line search, a known type or status
// in any case, "active" for In Process, a rule_uuid that is not nil),
// naming only those; a normalized query is a fixed point of Normalize
// and comes back through its JSON unchanged.
func FuzzListQueriesJSON(f *testing.F) {
	for _, s := range listQuerySeeds {
		f.Add([]byte(s))
	}
	searchOK := func(s string) bool {
		return utf8.RuneCountInString(s) <= pool.MaxSearchLen && oneLine(s)
	}
	pageWant := func(page, perPage int, want map[string]bool) {
		if page < 0 || page > pool.MaxPage {
			want["page"] = true
		}
		if perPage < 0 || perPage > pool.MaxPerPage {
			want["per_page"] = true
		}
	}
	requireFields := func(t *testing.T, err error, want map[string]bool) {
		t.Helper()
		if len(want) == 0 {
			require.NoError(t, err)
			return
		}
		require.ErrorIs(t, err, validate.ErrInvalid)
		var es validate.Errors
		require.ErrorAs(t, err, &es)
		got := map[string]bool{}
		for _, e := range es {
			got[e.Field] = true
		}
		require.Equal(t, want, got)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var rq campaign.RuleQuery
		if json.Unmarshal(data, &rq) == nil {
			got, err := rq.Normalize()
			want := map[string]bool{}
			pageWant(rq.Page, rq.PerPage, want)
			if !searchOK(rq.Search) {
				want["search"] = true
			}
			if _, ok := campaign.ParseRuleType(string(rq.Type)); rq.Type != "" && !ok {
				want["type"] = true
			}
			requireFields(t, err, want)
			if err == nil {
				require.True(t, got.Page >= 1 && got.PerPage >= 1 && got.PerPage <= pool.MaxPerPage)
				require.True(t, got.Type == "" || got.Type.Valid())
				again, err := got.Normalize()
				require.NoError(t, err)
				require.Equal(t, got, again)
				b, err := json.Marshal(got)
				require.NoError(t, err)
				var back campaign.RuleQuery
				require.NoError(t, json.Unmarshal(b, &back))
				require.Equal(t, got, back)
			}
		}

		var q campaign.Query
		if json.Unmarshal(data, &q) != nil {
			return
		}
		got, err := q.Normalize()
		want := map[string]bool{}
		pageWant(q.Page, q.PerPage, want)
		if !searchOK(q.Search) {
			want["search"] = true
		}
		if _, ok := campaign.ParseStatus(string(q.Status)); q.Status != "" && !ok {
			want["status"] = true
		}
		if q.RuleUUID != nil && *q.RuleUUID == uuid.Nil {
			want["rule_uuid"] = true
		}
		requireFields(t, err, want)
		if err != nil {
			return
		}
		require.True(t, got.Page >= 1 && got.PerPage >= 1 && got.PerPage <= pool.MaxPerPage)
		require.True(t, got.Status == "" || got.Status.Valid(), "status %q", got.Status)
		again, err := got.Normalize()
		require.NoError(t, err)
		require.Equal(t, got, again)
		b, err := json.Marshal(got)
		require.NoError(t, err)
		var back campaign.Query
		require.NoError(t, json.Unmarshal(b, &back))
		require.Equal(t, got, back)
	})
}
