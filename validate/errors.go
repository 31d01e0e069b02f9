package validate

import (
	"errors"
	"strings"
)

// ErrInvalid is the sentinel under which every validation failure is
// reported: errors.Is(err, ErrInvalid) holds for any [Errors] value, however
// deeply wrapped.
var ErrInvalid = errors.New("invalid input")

// Rule names used in [FieldError.Rule]. They are stable strings that a caller
// may switch on (an HTTP layer may map them to machine codes).
const (
	RuleRequired  = "required"  // the field is missing or blank (a nil UUID too)
	RuleLength    = "length"    // a string's length in runes is out of range
	RuleRange     = "range"     // an integer is out of range
	RuleEnum      = "enum"      // a value is not one of a fixed set
	RuleFormat    = "format"    // a value is malformed: invalid JSON or UTF-8, a NUL or line break, an unknown time zone, a bad phone number, e-mail or "HH:MM"
	RuleExclusive = "exclusive" // the field must not be given with another one
)

// FieldError is one failing field, in the shape of io/fs.PathError: which
// field, which rule, and what is wrong.
type FieldError struct {
	// Field is the field's JSON name, with an index for list elements:
	// "name", "items[3].contact_uuid".
	Field string `json:"field"`
	// Rule is the rule that failed, one of the Rule… constants or a
	// caller-defined name.
	Rule string `json:"rule"`
	// Message says what is wrong, for a person: "must be between 3 and 255
	// characters".
	Message string `json:"message"`
}

// Error returns "field: message".
func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Is reports whether target is [ErrInvalid].
func (e FieldError) Is(target error) bool { return target == ErrInvalid }

// Errors lists every failing field of one value, in the order the rules ran.
// A non-empty Errors is an error that matches [ErrInvalid].
type Errors []FieldError

// Error joins the failures: "invalid input: name: must be …; type: must be …".
func (es Errors) Error() string {
	var b strings.Builder
	b.WriteString(ErrInvalid.Error())
	for i, e := range es {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Is reports whether target is [ErrInvalid].
func (es Errors) Is(target error) bool { return target == ErrInvalid }

// Fields returns the names of the failing fields, in order, without
// duplicates.
func (es Errors) Fields() []string {
	out := make([]string, 0, len(es))
	seen := make(map[string]bool, len(es))
	for _, e := range es {
		if !seen[e.Field] {
			seen[e.Field] = true
			out = append(out, e.Field)
		}
	}
	return out
}

// Has reports whether field failed any rule.
func (es Errors) Has(field string) bool {
	for _, e := range es {
		if e.Field == field {
			return true
		}
	}
	return false
}
