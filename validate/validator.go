package validate

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validator collects field failures. The zero value is ready to use; a
// Validator is not safe for concurrent use.
//
//	var v validate.Validator
//	v.Length("name", p.Name, 3, 255)
//	v.IntRange("max_parallel_items", n, 1, 100)
//	return v.Err()
type Validator struct {
	errs Errors
}

// Add records a failure of rule on field.
func (v *Validator) Add(field, rule, message string) {
	v.errs = append(v.errs, FieldError{Field: field, Rule: rule, Message: message})
}

// Merge records every failure of err (an [Errors] or a [FieldError],
// possibly wrapped, or several joined: [errors.Join], fmt.Errorf with
// several %w) with prefix put before each field name ("items[2]." +
// "payload"). Any other non-nil error (or joined branch), an empty Errors
// and a nil *FieldError included, is recorded as a failure of field prefix
// with rule "format": a failure passed in is never dropped.
func (v *Validator) Merge(prefix string, err error) {
	if err != nil && !v.merge(prefix, err) {
		v.Add(strings.TrimSuffix(prefix, "."), RuleFormat, err.Error())
	}
}

// merge records the failures in err's tree (see Merge), each branch of a
// join on its own, and reports whether it recorded any.
func (v *Validator) merge(prefix string, err error) bool {
	switch e := err.(type) {
	case Errors:
		for _, f := range e {
			f.Field = prefix + f.Field
			v.errs = append(v.errs, f)
		}
		return len(e) > 0
	case FieldError:
		return v.merge(prefix, Errors{e})
	case *FieldError:
		if e == nil {
			v.Add(strings.TrimSuffix(prefix, "."), RuleFormat, "invalid (a nil *validate.FieldError)")
			return true
		}
		return v.merge(prefix, Errors{*e})
	case interface{ Unwrap() []error }:
		found := false
		for _, b := range e.Unwrap() {
			if b != nil {
				v.Merge(prefix, b)
				found = true
			}
		}
		return found
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return v.merge(prefix, inner)
		}
	}
	return false
}

// Required fails field when s is empty after trimming white space, or is
// not valid UTF-8 (rule "format"). It reports whether s passed.
func (v *Validator) Required(field, s string) bool {
	if !utf8.ValidString(s) {
		v.Add(field, RuleFormat, "must be valid UTF-8")
		return false
	}
	if strings.TrimSpace(s) == "" {
		v.Add(field, RuleRequired, "is required")
		return false
	}
	return true
}

// Length fails field when s is not between min and max characters long,
// counted in Unicode code points (runes), not bytes. A string that is not
// valid UTF-8 fails with rule "format". It reports whether s passed.
func (v *Validator) Length(field, s string, min, max int) bool {
	if !utf8.ValidString(s) {
		v.Add(field, RuleFormat, "must be valid UTF-8")
		return false
	}
	if n := utf8.RuneCountInString(s); n < min || n > max {
		v.Add(field, RuleLength, fmt.Sprintf("must be between %d and %d characters (got %d)", min, max, n))
		return false
	}
	return true
}

// Text fails field, with rule "format", when s is not valid UTF-8 or holds
// a NUL character (SQL text functions, and many clients, take NUL for the
// end of a string, so "ab\x00c" would be stored as one thing and read as
// another), and with rule "length" when it is longer than max characters
// (runes); max 0 means no limit. It reports whether s passed. Every
// free-text field that enters poolq goes through it.
func (v *Validator) Text(field, s string, max int) bool {
	switch {
	case !utf8.ValidString(s):
		v.Add(field, RuleFormat, "must be valid UTF-8")
		return false
	case strings.IndexByte(s, 0) >= 0:
		v.Add(field, RuleFormat, "must not contain NUL characters")
		return false
	}
	if n := utf8.RuneCountInString(s); max > 0 && n > max {
		v.Add(field, RuleLength, fmt.Sprintf("must be at most %d characters (got %d)", max, n))
		return false
	}
	return true
}

// Line fails field (rule "format") when s contains a control character
// (a line break, a tab, …) or Unicode's line or paragraph separator
// (U+2028, U+2029), which break lines as well — a name or a search term is
// one line of text. It reports whether s passed.
func (v *Validator) Line(field, s string) bool {
	return v.Check(!strings.ContainsFunc(s, breaksLine), field, RuleFormat,
		"must not contain control characters or line separators (line breaks, tabs…)")
}

// breaksLine reports whether r is a control character or a line or
// paragraph separator.
func breaksLine(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// IntRange fails field when n is outside [min, max]. It reports whether n
// passed.
func (v *Validator) IntRange(field string, n, min, max int) bool {
	if n < min || n > max {
		v.Add(field, RuleRange, fmt.Sprintf("must be between %d and %d (got %d)", min, max, n))
		return false
	}
	return true
}

// IntMin fails field when n is less than min. It reports whether n passed.
func (v *Validator) IntMin(field string, n, min int) bool {
	if n < min {
		v.Add(field, RuleRange, fmt.Sprintf("must be at least %d (got %d)", min, n))
		return false
	}
	return true
}

// OneOf fails field when ok is false, with a message listing allowed. The
// caller decides membership (case folding, canonical forms); OneOf only
// reports. It reports ok.
func (v *Validator) OneOf(field, got string, ok bool, allowed ...string) bool {
	if !ok {
		v.Add(field, RuleEnum, fmt.Sprintf("must be one of %s (got %s)", strings.Join(allowed, ", "), Quote(got)))
	}
	return ok
}

// Check fails field with rule and message when ok is false. It reports ok.
func (v *Validator) Check(ok bool, field, rule, message string) bool {
	if !ok {
		v.Add(field, rule, message)
	}
	return ok
}

// Errors returns the failures collected so far (nil when there are none).
func (v *Validator) Errors() Errors { return v.errs }

// Err returns the collected failures as an error, or nil when there are none.
// The returned error is an [Errors] value.
func (v *Validator) Err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return v.errs
}

// quoteMax is the most runes of a caller's value that [Quote] shows.
const quoteMax = 40

// Quote returns s quoted (as %q does) for a message that echoes a
// caller's value: whole when it is at most 40 runes long, else its first
// 40 runes, an ellipsis and its length in bytes, so that a message stays
// short whatever the input (a megabyte sent as an e-mail address is not
// sent back).
func Quote(s string) string {
	n := 0
	for i := range s {
		if n == quoteMax {
			return fmt.Sprintf("%q… (%d bytes)", s[:i], len(s))
		}
		n++
	}
	return fmt.Sprintf("%q", s)
}
