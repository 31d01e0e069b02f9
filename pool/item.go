package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/poolq/poolq/validate"
)

// MaxPayloadBytes is the largest payload an item may carry. A dialer keeps
// what it needs to place the call there (a phone number, a display name), not
// documents; the limit keeps dispatch rows small.
const MaxPayloadBytes = 64 << 10

// MaxPayloadDepth is how deeply a payload's arrays and objects may nest.
// encoding/json refuses to marshal a value nested past 10,000 levels: a
// payload near that limit, wrapped in a lease or a response, could be
// stored and claimed but never handed back. A dialer's payload is a few
// levels deep.
const MaxPayloadDepth = 64

// Item is one contact in one pool. The JSON form has the API's field names;
// the bookkeeping fields (ID, PoolUUID, Token, LeaseExpiresAt, and the
// counts of the calling days: CallAt to OlderCallsToday) are not
// marshalled.
type Item struct {
	// ID is assigned by the store when the item is added. It grows with
	// insertion and is never reused, so it is the item's insertion order and
	// (with Token) names one dispatch of one item unambiguously.
	ID       int64     `json:"-"`
	PoolUUID uuid.UUID `json:"-"`

	ContactUUID uuid.UUID `json:"contact_uuid"`
	// Contact is the contact's name, phone number, email and time zone, as
	// they were when it was added (JSON: name, phone_number, email,
	// timezone, null when unknown).
	Contact
	Status Status `json:"status"`
	// Priority orders a Parallel pool (higher first); FIFO and LIFO keep it
	// but ignore it.
	Priority int `json:"priority"`
	// Attempts counts dispatches that were not given back with Release.
	Attempts int `json:"attempts"`
	// RetryCount counts the retries that failed attempts (lease expiries
	// included) scheduled: a failure that ends the item does not count, so
	// it never exceeds the retries the ceiling in force at each failure
	// allowed (the pool's max_retries, or a governing rule's
	// max_total_calls - 1); lowering the ceiling later does not lower it.
	RetryCount  int        `json:"retry_count"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
	FailedAt    *time.Time `json:"failed_at"`
	NextRetryAt *time.Time `json:"next_retry_at"`
	// Notes is the note of the latest settlement (or skip).
	Notes   string          `json:"notes"`
	AddedAt time.Time       `json:"added_at"`
	Payload json.RawMessage `json:"payload,omitempty"`

	// Token is the fencing token of the latest dispatch, 0 before the
	// first: only a lease presenting the current one may settle the item.
	// Every dispatch makes it larger by a random step of 1 to
	// [TokenSpread], so that a dispatch whose commit was lost in a crash
	// does not leave its token to the next one (see [Item.Dispatched]):
	// tokens are positive, strictly increasing per item, and unpredictable,
	// not consecutive.
	Token int64 `json:"-"`
	// LeaseExpiresAt is when the current lease ends for everyone but its
	// holder, when it is taken back; zero unless in flight. On a store
	// with a lease grace (PostgreSQL's, see store.LeaseGracer), that is
	// the grace after the holder's deadline (queue.Lease.ExpiresAt).
	LeaseExpiresAt time.Time `json:"-"`

	// CallAt, CallsToday and CallToken count the attempts of the item's
	// latest calling day, for a rule's max_calls_per_day: CallAt is the
	// latest instant of a dispatch a rule counted (a clock behind it
	// counts its dispatch on CallAt's date, see campaign.Gate), CallsToday the
	// dispatches it counted on that instant's local date (in the contact's
	// zone, whatever zone that is when they are read, see campaign.Gate),
	// not given back, and CallToken the token of the latest dispatch it
	// counted: a give-back returns the day's call only when it is that
	// dispatch's. Zero for an item never dispatched under a rule.
	CallAt     time.Time `json:"-"`
	CallsToday int       `json:"-"`
	CallToken  int64     `json:"-"`
	// PrevCallAt and PrevCallsToday are the same count of the calling
	// day before the latest: CallAt and CallsToday as they were when a
	// counted call started a later date, kept because a zone moved west
	// can put that day's calls on the latest one's date (see
	// campaign.Gate). Zero when there was none with calls.
	PrevCallAt     time.Time `json:"-"`
	PrevCallsToday int       `json:"-"`
	// OlderCallAt and OlderCallsToday are the same count of the calling
	// day before that: PrevCallAt and PrevCallsToday as they were when a
	// counted call started a later date (plus the count before them when
	// its calls were not all two days older than that call, which in one
	// zone is rare, see campaign.Gate.Admit). Zero when there was none
	// with calls.
	OlderCallAt     time.Time `json:"-"`
	OlderCallsToday int       `json:"-"`
}

// Due reports whether it may be dispatched at now: it is Pending, or
// Retrying or Scheduled with NextRetryAt at or before now.
func (it Item) Due(now time.Time) bool {
	switch it.Status {
	case StatusPending:
		return true
	case StatusRetrying, StatusScheduled:
		return it.NextRetryAt != nil && !it.NextRetryAt.After(now)
	}
	return false
}

// NewItem is a contact to add to a pool.
type NewItem struct {
	// ContactUUID names the contact; the host owns contacts. Required (not
	// the nil UUID).
	ContactUUID uuid.UUID `json:"contact_uuid"`
	// Contact is a copy of the contact's fields that the item keeps:
	// optional, validated (see [Contact]).
	Contact
	// Priority orders Parallel pools, higher first. Defaults to 0.
	Priority int `json:"priority,omitempty"`
	// Payload is opaque JSON handed back at dispatch (a phone number, a
	// name). Optional; at most [MaxPayloadBytes], nested at most
	// [MaxPayloadDepth] deep.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Item returns the Pending item n describes, added to pool at now.
func (n NewItem) Item(pool uuid.UUID, now time.Time) Item {
	return Item{
		PoolUUID:    pool,
		ContactUUID: n.ContactUUID,
		Contact:     n.Contact,
		Status:      StatusPending,
		Priority:    n.Priority,
		AddedAt:     now.UTC(),
		Payload:     n.Payload,
	}
}

// PrepareItems validates a batch and folds duplicates: the first occurrence
// of a contact wins (its priority, contact fields and payload), later ones
// are dropped. A batch must hold at least one item. Failures name the
// index: "items[3].contact_uuid" (nil UUID), "items[4].phone_number" (see
// [Contact]), "items[5].payload" (not JSON, or too
// large, or not valid UTF-8: JSON text is UTF-8, or nested deeper than
// [MaxPayloadDepth]). Any failure rejects the
// whole batch.
func PrepareItems(items []NewItem) ([]NewItem, error) {
	return PrepareItemsContext(context.Background(), items)
}

// prepareChunk is how many items PrepareItemsContext checks between two
// looks at its context: at most 4 MiB of payloads.
const prepareChunk = 64

// PrepareItemsContext is [PrepareItems] for a batch large enough that its
// caller may leave before it is checked (a million contacts take seconds):
// it looks at ctx before each 64 items past the first 64 and returns ctx's
// error once ctx has ended. A batch of at most 64 items is checked whole
// whatever ctx says. A nil ctx is a field error ("ctx").
func PrepareItemsContext(ctx context.Context, items []NewItem) ([]NewItem, error) {
	var v validate.Validator
	if ctx == nil {
		v.Add("ctx", validate.RuleRequired, "is required (not nil: use context.Background())")
		ctx = context.Background() // the items are checked too, every failure reported at once
	}
	if len(items) == 0 {
		v.Add("items", validate.RuleRequired, "at least one item is required")
		return nil, v.Err()
	}
	seen := make(map[uuid.UUID]struct{}, len(items))
	out := make([]NewItem, 0, len(items))
	for i, n := range items {
		if i > 0 && i%prepareChunk == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		// Each item is checked under its own field names, and its
		// failures, if any, renamed after its index: a valid item (nearly
		// every one of a million) costs no formatting.
		var iv validate.Validator
		n.check(&iv)
		if err := iv.Err(); err != nil {
			v.Merge(fmt.Sprintf("items[%d].", i), err)
		}
		if _, dup := seen[n.ContactUUID]; dup {
			continue
		}
		seen[n.ContactUUID] = struct{}{}
		out = append(out, n)
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// check validates n's fields, named by their JSON names.
func (n NewItem) check(v *validate.Validator) {
	v.Check(n.ContactUUID != uuid.Nil, "contact_uuid", validate.RuleRequired, "is required (not the nil UUID)")
	n.Contact.check(v, "")
	if len(n.Payload) == 0 {
		return
	}
	switch {
	case len(n.Payload) > MaxPayloadBytes:
		v.Add("payload", validate.RuleLength,
			fmt.Sprintf("must be at most %d bytes (got %d)", MaxPayloadBytes, len(n.Payload)))
	case !utf8.Valid(n.Payload):
		v.Add("payload", validate.RuleFormat, "must be valid UTF-8")
	case !json.Valid(n.Payload):
		v.Add("payload", validate.RuleFormat, "must be valid JSON")
	case jsonDepth(n.Payload) > MaxPayloadDepth:
		v.Add("payload", validate.RuleFormat,
			fmt.Sprintf("must nest arrays and objects at most %d deep", MaxPayloadDepth))
	}
}

// jsonDepth returns how deeply the arrays and objects of b, valid JSON,
// nest: 0 for a scalar. O(len(b)).
func jsonDepth(b []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

// AddResult reports a batch add: ContactsAdded new items, ContactsSkipped
// contacts already in the pool. Duplicates inside the batch are folded
// before counting, so the two add up to the number of distinct contacts.
type AddResult struct {
	ContactsAdded   int `json:"contacts_added"`
	ContactsSkipped int `json:"contacts_skipped"`
}
