package pool

import (
	"encoding/json"
	"strings"
)

// Type is a pool's processing order. It is a string enum: the canonical
// spellings are the API's, and the store's schema repeats them in a CHECK.
type Type string

// The pool types.
const (
	// FIFO dispatches due items oldest first, one at a time.
	FIFO Type = "FIFO"
	// LIFO dispatches due items newest first, one at a time.
	LIFO Type = "LIFO"
	// Parallel dispatches due items by priority (highest first) then oldest
	// first, with up to max_parallel_items in flight.
	Parallel Type = "Parallel"
)

// Types returns every pool type, in the API's order.
func Types() []Type { return []Type{FIFO, LIFO, Parallel} }

// ParseType returns the canonical Type for s, matched case-insensitively
// ("fifo", "Lifo", "PARALLEL"); ok is false when s names no type.
func ParseType(s string) (t Type, ok bool) {
	for _, t := range Types() {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return Type(s), false
}

// Valid reports whether t is one of the canonical types.
func (t Type) Valid() bool { return t == FIFO || t == LIFO || t == Parallel }

// String returns t as written.
func (t Type) String() string { return string(t) }

// Serial reports whether at most one item of a pool of this type may be in
// flight at a time (FIFO and LIFO).
func (t Type) Serial() bool { return t != Parallel }

// UnmarshalJSON decodes a JSON string, canonicalizing a known type written
// in any case. An unknown string is kept as it is, so that validation can
// report it as a field error rather than decoding failing.
func (t *Type) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t, _ = ParseType(s)
	return nil
}

func typeNames() []string {
	out := make([]string, 0, 3)
	for _, t := range Types() {
		out = append(out, string(t))
	}
	return out
}
