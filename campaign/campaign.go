package campaign

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// Errors of campaigns. Package queue returns them as they are.
var (
	// ErrWrongStatus is returned for a transition the campaign's status
	// does not allow (pausing a draft, resuming a completed campaign).
	ErrWrongStatus = errors.New("campaign: not allowed in the campaign's status")
	// ErrConflict is returned when a change would give a pool two
	// governing campaigns (starting a campaign, or attaching a pool to one
	// that runs or is paused, while another In Process or Paused campaign
	// has the pool; a paused campaign already holds its pools, so resuming
	// it conflicts with nothing), or would remove what something still uses (a rule
	// assigned to a campaign; a campaign In Process or Paused).
	ErrConflict = errors.New("campaign: conflicts with another campaign")
)

// Status is a campaign's state, one of the API's spellings.
type Status string

// The campaign statuses.
const (
	Draft     Status = "Draft"
	InProcess Status = "In Process" // running: its pools are dialled
	Paused    Status = "Paused"     // holding its pools: not dialled
	Completed Status = "Completed"
	Archived  Status = "Archived"
)

// Statuses returns every status, in the order a campaign goes through them.
func Statuses() []Status { return []Status{Draft, InProcess, Paused, Completed, Archived} }

// ParseStatus returns the canonical Status for s, in any case; "Active"
// (another spelling of the API's pages) is In Process.
func ParseStatus(s string) (Status, bool) {
	if strings.EqualFold(s, "Active") {
		return InProcess, true
	}
	for _, st := range Statuses() {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return Status(s), false
}

// Valid reports whether s is a canonical status.
func (s Status) Valid() bool {
	for _, st := range Statuses() {
		if s == st {
			return true
		}
	}
	return false
}

// String returns s as written.
func (s Status) String() string { return string(s) }

// Governs reports whether a campaign in status s governs its pools: it
// holds them (no other campaign may run them), and its rule is theirs. In
// Process and Paused do.
func (s Status) Governs() bool { return s == InProcess || s == Paused }

// Dispatches reports whether the pools of a campaign in status s are
// dialled: In Process only.
func (s Status) Dispatches() bool { return s == InProcess }

// Finished reports whether a campaign in status s is done: Completed or
// Archived, which no transition leads out of to In Process. Its pools are
// never dialled again under it.
func (s Status) Finished() bool { return s == Completed || s == Archived }

// Action is a transition of a campaign's status.
type Action string

// The campaign actions.
const (
	Start    Action = "start"    // Draft → In Process
	Pause    Action = "pause"    // In Process → Paused
	Resume   Action = "resume"   // Paused → In Process
	Complete Action = "complete" // In Process or Paused → Completed
	Archive  Action = "archive"  // Completed → Archived
)

// After returns the status a campaign in status s moves to with a. When s
// does not allow a, it returns s and an error wrapping [ErrWrongStatus];
// for an action that is none of the constants above, s and an error that
// does not (the caller's mistake, not the campaign's status).
func (s Status) After(a Action) (Status, error) {
	var to Status
	var from []Status
	switch a {
	case Start:
		to, from = InProcess, []Status{Draft}
	case Pause:
		to, from = Paused, []Status{InProcess}
	case Resume:
		to, from = InProcess, []Status{Paused}
	case Complete:
		to, from = Completed, []Status{InProcess, Paused}
	case Archive:
		to, from = Archived, []Status{Completed}
	default:
		return s, fmt.Errorf("campaign: unknown action %q", a)
	}
	for _, f := range from {
		if s == f {
			return to, nil
		}
	}
	return s, fmt.Errorf("%s a campaign that is %s: %w", a, s, ErrWrongStatus)
}

// Campaign draws from its pools under at most one rule. It marshals to
// the API's JSON field names.
type Campaign struct {
	UUID   uuid.UUID `json:"uuid"`
	Name   string    `json:"name"`
	Status Status    `json:"status"`
	// RuleUUID is the campaign's rule, nil for none.
	RuleUUID *uuid.UUID `json:"rule_uuid"`
	// TimeZone is the IANA zone of the contacts that have none; empty for
	// UTC.
	TimeZone string `json:"timezone"`
	// PoolUUIDs are the attached pools, in the order of attachment.
	PoolUUIDs []uuid.UUID `json:"pool_uuids"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
}

// Ref is what a pool's detail shows of a campaign it is attached to.
type Ref = pool.CampaignRef

// MarshalJSON writes the API's campaign object, pool_uuids never null.
func (c Campaign) MarshalJSON() ([]byte, error) {
	type plain Campaign // without this method
	if c.PoolUUIDs == nil {
		c.PoolUUIDs = []uuid.UUID{}
	}
	return jsonenc.Marshal(struct {
		plain
		CreatedAt pool.Timestamp `json:"created_at"`
		UpdatedAt pool.Timestamp `json:"updated_at"`
	}{plain(c), pool.Timestamp(c.CreatedAt), pool.Timestamp(c.UpdatedAt)})
}

// CreateParams describes a new campaign, a Draft. Name is required (3–255
// characters); RuleUUID and TimeZone are optional. Pools are attached
// afterwards ([AttachResult]).
type CreateParams struct {
	Name     string     `json:"name"`
	RuleUUID *uuid.UUID `json:"rule_uuid,omitempty"`
	TimeZone string     `json:"timezone,omitempty"`
}

// UpdateParams changes a campaign's name or default time zone.
type UpdateParams struct {
	Name     *string `json:"name,omitempty"`
	TimeZone *string `json:"timezone,omitempty"`
}

// New validates p and returns the Draft campaign it describes, with the
// given id and CreatedAt = UpdatedAt = now.
func New(id uuid.UUID, p CreateParams, now time.Time) (Campaign, error) {
	var v validate.Validator
	name := strings.TrimSpace(p.Name)
	checkName(&v, name)
	checkZone(&v, p.TimeZone)
	if p.RuleUUID != nil {
		v.Check(*p.RuleUUID != uuid.Nil, "rule_uuid", validate.RuleRequired, "must not be the nil UUID")
	}
	if err := v.Err(); err != nil {
		return Campaign{}, err
	}
	now = now.UTC()
	return Campaign{UUID: id, Name: name, Status: Draft, RuleUUID: p.RuleUUID, TimeZone: p.TimeZone,
		CreatedAt: now, UpdatedAt: now}, nil
}

// Validate checks u's fields, every failing one at once ([validate.Errors]).
func (u UpdateParams) Validate() error {
	_, _, err := u.Apply(Campaign{})
	return err
}

// Apply validates u and returns c with the given fields changed, and
// whether a value changed (the caller moves UpdatedAt only then). On
// failure it returns a [validate.Errors] listing every failing field, c
// as it was, and false.
func (u UpdateParams) Apply(c Campaign) (Campaign, bool, error) {
	var v validate.Validator
	out := c
	if u.Name != nil {
		out.Name = strings.TrimSpace(*u.Name)
		checkName(&v, out.Name)
	}
	if u.TimeZone != nil {
		checkZone(&v, *u.TimeZone)
		out.TimeZone = *u.TimeZone
	}
	if err := v.Err(); err != nil {
		return c, false, err
	}
	return out, out.Name != c.Name || out.TimeZone != c.TimeZone, nil
}

func checkName(v *validate.Validator, name string) {
	if v.Required("name", name) && v.Length("name", name, pool.MinNameLen, pool.MaxNameLen) && v.Text("name", name, 0) {
		v.Line("name", name)
	}
}

// checkZone checks an optional IANA zone with pool.Contact's rule.
func checkZone(v *validate.Validator, zone string) {
	if zone != "" {
		v.Check(pool.ValidTimeZone(zone), "timezone", validate.RuleFormat,
			fmt.Sprintf("must be an IANA time zone like America/New_York (got %s)", validate.Quote(zone)))
	}
}

// AttachResult reports an attach: the pools attached now, those attached
// already, and the UUIDs that name no pool (the call does not fail for
// them).
type AttachResult struct {
	PoolsAttached     int         `json:"pools_attached"`
	PoolsSkipped      int         `json:"pools_skipped"`
	PoolUUIDsNotFound []uuid.UUID `json:"pool_uuids_not_found"`
}

// Paging defaults of the listings.
const (
	DefaultRulesPerPage     = 15
	DefaultCampaignsPerPage = 15
)

// RuleQuery selects a page of rules, oldest first.
type RuleQuery struct {
	Page    int `json:"page,omitempty"`
	PerPage int `json:"per_page,omitempty"`
	// Type keeps only rules of this type (any case). Empty keeps all.
	Type RuleType `json:"type,omitempty"`
	// Search keeps rules whose name, escalation type or escalation target
	// contains it, case-insensitively. Empty keeps all.
	Search string `json:"search,omitempty"`
}

// Normalize validates q and returns it with defaults applied and Type
// made canonical.
func (q RuleQuery) Normalize() (RuleQuery, error) {
	var v validate.Validator
	q.Page, q.PerPage = pageDefaults(&v, q.Page, q.PerPage, DefaultRulesPerPage)
	if q.Type != "" {
		t, ok := ParseRuleType(string(q.Type))
		v.OneOf("type", string(q.Type), ok, "call", "text")
		q.Type = t
	}
	if v.Text("search", q.Search, pool.MaxSearchLen) {
		v.Line("search", q.Search) // a rule's search runs over fields joined by line breaks
	}
	return q, v.Err()
}

// Query selects a page of campaigns, oldest first.
type Query struct {
	Page    int `json:"page,omitempty"`
	PerPage int `json:"per_page,omitempty"`
	// Status keeps only campaigns in this status (any case; "Active" is In
	// Process). Empty keeps all.
	Status Status `json:"status,omitempty"`
	// Search keeps campaigns whose name contains it, case-insensitively.
	Search string `json:"search,omitempty"`
	// RuleUUID keeps only the campaigns of this rule. Nil keeps all.
	RuleUUID *uuid.UUID `json:"rule_uuid,omitempty"`
}

// Normalize validates q and returns it with defaults applied and Status
// made canonical.
func (q Query) Normalize() (Query, error) {
	var v validate.Validator
	q.Page, q.PerPage = pageDefaults(&v, q.Page, q.PerPage, DefaultCampaignsPerPage)
	if q.Status != "" {
		s, ok := ParseStatus(string(q.Status))
		names := make([]string, 0, 5)
		for _, st := range Statuses() {
			names = append(names, string(st))
		}
		v.OneOf("status", string(q.Status), ok, names...)
		q.Status = s
	}
	if v.Text("search", q.Search, pool.MaxSearchLen) {
		v.Line("search", q.Search)
	}
	if q.RuleUUID != nil {
		v.Check(*q.RuleUUID != uuid.Nil, "rule_uuid", validate.RuleRequired, "must not be the nil UUID (nil keeps all)")
	}
	return q, v.Err()
}

func pageDefaults(v *validate.Validator, page, perPage, def int) (int, int) {
	if page == 0 {
		page = 1
	}
	if perPage == 0 {
		perPage = def
	}
	v.IntRange("page", page, 1, pool.MaxPage)
	v.IntRange("per_page", perPage, 1, pool.MaxPerPage)
	return page, perPage
}

// RulePage is a page of rules; Page is a page of campaigns.
type (
	RulePage = pool.Page[Rule]
	Page     = pool.Page[Campaign]
)
