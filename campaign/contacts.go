package campaign

import (
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// DNCEntry is a contact on the do-not-call list. The list is the
// store's, shared by every pool: an item of a contact on it is never
// dispatched by a pool whose rule has dnc_check (it is Skipped with
// [NoteDNC] when dispatch meets it).
type DNCEntry struct {
	ContactUUID uuid.UUID `json:"contact_uuid"`
	AddedAt     time.Time `json:"added_at"`
}

// MarshalJSON writes added_at as a [pool.Timestamp].
func (d DNCEntry) MarshalJSON() ([]byte, error) {
	return jsonenc.Marshal(struct {
		ContactUUID uuid.UUID      `json:"contact_uuid"`
		AddedAt     pool.Timestamp `json:"added_at"`
	}{d.ContactUUID, pool.Timestamp(d.AddedAt)})
}

// Notes an item gets when a rule skips it, or fails it for its contact.
const (
	NoteDNC    = "do not call" // its contact is on the do-not-call list (dnc_check)
	NoteOptOut = "opted out"   // its contact opted out (remove_on_opt_out)
	// NoteContactCeiling: the contact's attempts in all the campaign's
	// pools reached max_total_calls, its own did not.
	NoteContactCeiling = "contact's max_total_calls reached in the campaign"
	maxPerList         = pool.MaxPerPage // listing bound shared by the contact lists
)

// DNCQuery selects a page of the do-not-call list, oldest entry first.
type DNCQuery struct {
	Page    int `json:"page,omitempty"`
	PerPage int `json:"per_page,omitempty"`
}

// DefaultDNCPerPage is the page size of a DNC listing without one.
const DefaultDNCPerPage = 25

// Normalize validates q and returns it with defaults applied.
func (q DNCQuery) Normalize() (DNCQuery, error) {
	var v validate.Validator
	q.Page, q.PerPage = pageDefaults(&v, q.Page, q.PerPage, DefaultDNCPerPage)
	return q, v.Err()
}

// DNCPage is a page of the do-not-call list.
type DNCPage = pool.Page[DNCEntry]

// Escalation is the record of an item whose failed attempts reached its
// rule's escalation_after_failed_attempts: written once per item, in the
// transaction of the failure that reached it, and kept when the item is
// removed (a consumer that was down lists what it missed by ID).
type Escalation struct {
	// ID orders escalations: it grows with each one recorded, and is
	// never reused. A consumer keeps the last ID it handled.
	ID           int64     `json:"id"`
	PoolUUID     uuid.UUID `json:"pool_uuid"`
	ContactUUID  uuid.UUID `json:"contact_uuid"`
	ItemID       int64     `json:"item_id"`
	CampaignUUID uuid.UUID `json:"campaign_uuid"`
	RuleUUID     uuid.UUID `json:"rule_uuid"`
	// Type and Target are the rule's escalation_type and
	// escalation_target when it was recorded ("" when the rule had none).
	Type   string `json:"escalation_type"`
	Target string `json:"escalation_target"`
	// FailedAttempts is the item's failed attempts when it was recorded:
	// the rule's threshold, or more if the threshold was lowered below
	// what the item had.
	FailedAttempts int       `json:"failed_attempts"`
	At             time.Time `json:"escalated_at"`
}

// MarshalJSON writes escalated_at as a [pool.Timestamp].
func (e Escalation) MarshalJSON() ([]byte, error) {
	type plain Escalation // without this method
	return jsonenc.Marshal(struct {
		plain
		At pool.Timestamp `json:"escalated_at"`
	}{plain(e), pool.Timestamp(e.At)})
}

// EscalationQuery selects escalations in ID order.
type EscalationQuery struct {
	// After keeps escalations whose ID is above it (0: from the first).
	After int64 `json:"after,omitempty"`
	// Limit is how many to return at most, 1 to 100; 0 means 100.
	Limit int `json:"limit,omitempty"`
	// PoolUUID keeps one pool's escalations; nil keeps all.
	PoolUUID *uuid.UUID `json:"pool_uuid,omitempty"`
}

// Normalize validates q and returns it with defaults applied.
func (q EscalationQuery) Normalize() (EscalationQuery, error) {
	var v validate.Validator
	if q.Limit == 0 {
		q.Limit = maxPerList
	}
	v.IntRange("limit", q.Limit, 1, maxPerList)
	v.Check(q.After >= 0, "after", validate.RuleRange, "must be at least 0")
	if q.PoolUUID != nil {
		v.Check(*q.PoolUUID != uuid.Nil, "pool_uuid", validate.RuleRequired, "must not be the nil UUID (nil keeps all)")
	}
	return q, v.Err()
}
