package pool

import (
	"encoding/json"
	"strings"
)

// Status is an item's place in the state machine. The spellings are the
// API's, exactly ("In_Call" with its underscore).
type Status string

// The item statuses. An item is Scheduled for a time its caller named
// ([Failure.RetryAt]) or, under a campaign's rule, for the earliest time the
// rule's window or day cap allows ([Item.Postponed]).
const (
	StatusPending    Status = "Pending"    // waiting to be picked up
	StatusProcessing Status = "Processing" // dispatched, being attempted
	StatusInCall     Status = "In_Call"    // dispatched, the call connected
	StatusRetrying   Status = "Retrying"   // failed, waiting for its retry time
	StatusScheduled  Status = "Scheduled"  // waiting for a time a caller or a rule set
	StatusCompleted  Status = "Completed"  // terminal: succeeded
	StatusFailed     Status = "Failed"     // terminal: out of attempts or failed for good
	StatusSkipped    Status = "Skipped"    // terminal: withdrawn
)

// Statuses returns every status, in the API's order.
func Statuses() []Status {
	return []Status{
		StatusPending, StatusProcessing, StatusInCall, StatusRetrying,
		StatusScheduled, StatusCompleted, StatusFailed, StatusSkipped,
	}
}

// ParseStatus returns the canonical Status for s, matched
// case-insensitively; ok is false when s names no status.
func ParseStatus(s string) (st Status, ok bool) {
	for _, st := range Statuses() {
		if strings.EqualFold(s, string(st)) {
			return st, true
		}
	}
	return Status(s), false
}

// Valid reports whether s is one of the canonical statuses.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusProcessing, StatusInCall, StatusRetrying,
		StatusScheduled, StatusCompleted, StatusFailed, StatusSkipped:
		return true
	}
	return false
}

// String returns s as written.
func (s Status) String() string { return string(s) }

// Waiting reports whether s is Pending, Retrying or Scheduled: an item that
// may be dispatched once it is due.
func (s Status) Waiting() bool {
	return s == StatusPending || s == StatusRetrying || s == StatusScheduled
}

// InFlight reports whether s is Processing or In_Call: an item held by a
// lease.
func (s Status) InFlight() bool { return s == StatusProcessing || s == StatusInCall }

// Terminal reports whether s is Completed, Failed or Skipped: an item that is
// never dispatched again unless requeued.
func (s Status) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusSkipped
}

// UnmarshalJSON decodes a JSON string, canonicalizing a known status written
// in any case; an unknown string is kept for validation to report.
func (s *Status) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	*s, _ = ParseStatus(str)
	return nil
}

func statusNames() []string {
	out := make([]string, 0, 8)
	for _, s := range Statuses() {
		out = append(out, string(s))
	}
	return out
}
