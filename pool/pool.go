package pool

import (
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/poolq/poolq/validate"
)

// Limits and defaults of a pool, from the contact-pool API.
const (
	MinNameLen        = 3    // shortest name, in characters (runes)
	MaxNameLen        = 255  // longest name, in characters (runes)
	MaxDescriptionLen = 4000 // longest description, in characters (runes)

	DefaultType             = FIFO // type when none is given
	DefaultMaxParallelItems = 10   // max_parallel_items when none is given
	MinParallelItems        = 1    // smallest max_parallel_items
	MaxParallelItems        = 100  // largest max_parallel_items; larger values are rejected, never clamped
	DefaultMaxRetries       = 3    // max_retries when none is given
	DefaultIsActive         = true // is_active when none is given
)

// Pool is a bucket of contacts with a processing order, an in-flight cap and
// a retry ceiling. It marshals to the API's JSON field names.
type Pool struct {
	UUID        uuid.UUID `json:"uuid"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Type        Type      `json:"type"`
	// MaxParallelItems caps the items in flight of a Parallel pool. FIFO and
	// LIFO pools keep it (it applies again if the type changes) but are
	// serial: see [Pool.Cap].
	MaxParallelItems int `json:"max_parallel_items"`
	// MaxRetries is the number of retries after the first attempt: an item
	// is dispatched at most MaxRetries+1 times.
	MaxRetries int `json:"max_retries"`
	// IsActive hides a pool from new campaign builders when false. It does
	// not stop dispatch.
	IsActive bool `json:"is_active"`
	// ContactsCount is the number of items in the pool (read-only).
	ContactsCount int       `json:"contacts_count"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// Cap returns how many items of p may be in flight at once: 1 for FIFO and
// LIFO, MaxParallelItems for Parallel.
func (p Pool) Cap() int {
	if p.Type.Serial() {
		return 1
	}
	return p.MaxParallelItems
}

// Ceiling returns how many times an item of p may be dispatched:
// MaxRetries + 1, saturating at math.MaxInt (max_retries has no upper
// bound).
func (p Pool) Ceiling() int {
	if p.MaxRetries == math.MaxInt {
		return math.MaxInt
	}
	return p.MaxRetries + 1
}

// Detail is one pool with the number of its items in each status. Every
// status is present in StatusCounts, zeros included, and the counts sum to
// ContactsCount.
type Detail struct {
	Pool
	StatusCounts map[Status]int `json:"status_counts"`
	// Campaigns are the campaigns the pool is attached to, oldest first.
	Campaigns []CampaignRef `json:"campaigns"`
}

// CampaignRef names a campaign a pool is attached to, in the pool's
// detail. Status is one of package campaign's statuses ("In Process"…).
type CampaignRef struct {
	UUID   uuid.UUID `json:"uuid"`
	Name   string    `json:"name"`
	Status string    `json:"status"`
}

// ZeroCounts returns a map with every status at zero.
func ZeroCounts() map[Status]int {
	m := make(map[Status]int, 8)
	for _, s := range Statuses() {
		m[s] = 0
	}
	return m
}

// New validates p and returns the pool it describes, with defaults applied,
// the given id, and CreatedAt = UpdatedAt = now (in UTC). On failure it
// returns a [validate.Errors] listing every failing field, the nil id
// ("uuid") included.
func New(id uuid.UUID, p CreateParams, now time.Time) (Pool, error) {
	var v validate.Validator
	v.Check(id != uuid.Nil, "uuid", validate.RuleRequired, "is required (not the nil UUID)")
	p.check(&v)
	if err := v.Err(); err != nil {
		return Pool{}, err
	}
	p = p.trimmed()
	now = now.UTC()
	out := Pool{
		UUID:             id,
		Name:             p.Name,
		Description:      p.Description,
		Type:             DefaultType,
		MaxParallelItems: DefaultMaxParallelItems,
		MaxRetries:       DefaultMaxRetries,
		IsActive:         DefaultIsActive,
		CreatedAt:        now,
		UpdatedAt:        now,
	}
	if p.Type != "" {
		out.Type, _ = ParseType(string(p.Type))
	}
	if p.MaxParallelItems != nil {
		out.MaxParallelItems = *p.MaxParallelItems
	}
	if p.MaxRetries != nil {
		out.MaxRetries = *p.MaxRetries
	}
	if p.IsActive != nil {
		out.IsActive = *p.IsActive
	}
	return out, nil
}
