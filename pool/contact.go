package pool

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/poolq/poolq/validate"
)

// Limits of a contact's fields.
const (
	MaxContactNameLen = 255 // longest name, in characters
	MaxEmailLen       = 254 // longest email address, in bytes (RFC 5321's path limit)
)

// Contact is what an item carries of its contact, copied from the host's
// contact record when the contact is added to a pool: shown with the item
// under the API's names, searchable in item listings, and (TimeZone) the
// zone the calling rules of a campaign use. Every field is optional; an
// empty one is unknown (null in JSON). A contact added again to a pool it
// is in keeps the fields it was first added with.
type Contact struct {
	// Name is the contact's display name, at most 255 characters.
	Name string `json:"name,omitempty"`
	// PhoneNumber is the number to dial, in E.164 form: "+" then 2 to 15
	// digits, the first not 0 ("+15551234567"). No spaces or dashes.
	PhoneNumber string `json:"phone_number,omitempty"`
	// Email is an address of the form local@domain.tld, at most 254 bytes.
	Email string `json:"email,omitempty"`
	// TimeZone is an IANA zone name ("America/New_York", "UTC"), loadable
	// from the zone database that poolq embeds; "Local" is refused, being
	// the host's.
	TimeZone string `json:"timezone,omitempty"`
}

// IsZero reports whether c has no field set.
func (c Contact) IsZero() bool { return c == Contact{} }

// check validates c's fields, named prefix + their JSON names.
func (c Contact) check(v *validate.Validator, prefix string) {
	// The messages are built only for a field that fails: Add checks a
	// million contacts in one call.
	if c.Name != "" && v.Text(prefix+"name", c.Name, MaxContactNameLen) {
		_ = v.Check(strings.TrimSpace(c.Name) == c.Name, prefix+"name", validate.RuleFormat,
			"must not begin or end with white space") &&
			v.Line(prefix+"name", c.Name)
	}
	if c.PhoneNumber != "" && !isE164(c.PhoneNumber) {
		v.Add(prefix+"phone_number", validate.RuleFormat,
			fmt.Sprintf("must be an E.164 number like +15551234567 (got %s)", validate.Quote(c.PhoneNumber)))
	}
	if c.Email != "" {
		field := prefix + "email"
		switch {
		case len(c.Email) > MaxEmailLen:
			v.Add(field, validate.RuleLength, fmt.Sprintf("must be at most %d bytes (got %d)", MaxEmailLen, len(c.Email)))
		case !v.Text(field, c.Email, 0):
		case !isEmail(c.Email):
			v.Add(field, validate.RuleFormat,
				fmt.Sprintf("must be an address like name@example.com (got %s)", validate.Quote(c.Email)))
		}
	}
	if c.TimeZone != "" && !validZone(c.TimeZone) {
		v.Add(prefix+"timezone", validate.RuleFormat,
			fmt.Sprintf("must be an IANA time zone like America/New_York (got %s)", validate.Quote(c.TimeZone)))
	}
}

// isE164 reports whether s is "+" followed by 2 to 15 digits, the first
// not 0.
func isE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9' {
		return false
	}
	for i := 2; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isEmail reports whether s has the shape local@domain.tld: one @, a local
// part and a domain without spaces or control characters, the domain of
// dot-separated non-empty labels, at least two. It checks the shape only:
// whether the address exists is the host's business.
func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") {
		return false
	}
	for _, r := range s {
		// Any white space or control character, not only ASCII's: a
		// no-break space, NEL (a C1 control) or a line separator inside an
		// address is not an address (unicode.IsSpace holds for U+2028 and
		// U+2029 too).
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return false
		}
	}
	labels := strings.Split(domain, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
	}
	return true
}

// ValidTimeZone reports whether name is an IANA time zone poolq accepts:
// one of the zone database it embeds, "Local" (the host's) excepted.
func ValidTimeZone(name string) bool { return validZone(name) }

// validZone reports whether name is a zone [LoadZone] loads: validation
// and the calling-window arithmetic read one database, the embedded one,
// so a zone accepted here is never one the arithmetic cannot load. LoadZone
// keeps the zones it loads (only valid names, so at most the database's
// ~600); an unknown name costs a map lookup and is not kept.
func validZone(name string) bool {
	_, err := LoadZone(name)
	return err == nil
}
