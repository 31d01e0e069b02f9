package pool

import (
	"strings"

	"github.com/poolq/poolq/validate"
)

// CreateParams describes a new pool. Name and Description are required; a
// zero Type and nil pointers take the defaults ([DefaultType],
// [DefaultMaxParallelItems], [DefaultMaxRetries], [DefaultIsActive]). The
// pointers tell "not given" from a given zero: max_retries 0 is valid,
// max_parallel_items 0 is rejected.
type CreateParams struct {
	Name             string `json:"name"`
	Description      string `json:"description"`
	Type             Type   `json:"type,omitempty"`
	MaxParallelItems *int   `json:"max_parallel_items,omitempty"`
	MaxRetries       *int   `json:"max_retries,omitempty"`
	IsActive         *bool  `json:"is_active,omitempty"`
}

// Validate checks every field and returns a [validate.Errors] listing all
// the failing ones, or nil:
//   - name: required, 3–255 characters (runes), no NUL;
//   - description: required (not blank), no NUL;
//   - type: FIFO, LIFO or Parallel in any case, or empty for the default;
//   - max_parallel_items: 1–100 when given;
//   - max_retries: ≥ 0 when given.
func (p CreateParams) Validate() error {
	var v validate.Validator
	checkName(&v, p.Name)
	checkDescription(&v, p.Description)
	if p.Type != "" {
		checkType(&v, p.Type)
	}
	if p.MaxParallelItems != nil {
		checkMaxParallel(&v, *p.MaxParallelItems)
	}
	if p.MaxRetries != nil {
		v.IntMin("max_retries", *p.MaxRetries, 0)
	}
	return v.Err()
}

// UpdateParams changes some fields of a pool: nil fields are left as they
// are, given ones follow the rules of [CreateParams].
type UpdateParams struct {
	Name             *string `json:"name,omitempty"`
	Description      *string `json:"description,omitempty"`
	Type             *Type   `json:"type,omitempty"`
	MaxParallelItems *int    `json:"max_parallel_items,omitempty"`
	MaxRetries       *int    `json:"max_retries,omitempty"`
	IsActive         *bool   `json:"is_active,omitempty"`
}

// Validate checks every given field with the rules of
// [CreateParams.Validate] (a given description may not be blank, a given
// type may not be empty) and returns a [validate.Errors] or nil.
func (u UpdateParams) Validate() error {
	var v validate.Validator
	if u.Name != nil {
		checkName(&v, *u.Name)
	}
	if u.Description != nil {
		checkDescription(&v, *u.Description)
	}
	if u.Type != nil {
		checkType(&v, *u.Type)
	}
	if u.MaxParallelItems != nil {
		checkMaxParallel(&v, *u.MaxParallelItems)
	}
	if u.MaxRetries != nil {
		v.IntMin("max_retries", *u.MaxRetries, 0)
	}
	return v.Err()
}

// Apply validates u and returns p with the given fields changed. changed
// reports whether any value differs from p's; the caller moves UpdatedAt
// only then (an update that changes nothing is not a modification).
func (u UpdateParams) Apply(p Pool) (out Pool, changed bool, err error) {
	if err := u.Validate(); err != nil {
		return p, false, err
	}
	out = p
	if u.Name != nil {
		out.Name = *u.Name
	}
	if u.Description != nil {
		out.Description = *u.Description
	}
	if u.Type != nil {
		out.Type, _ = ParseType(string(*u.Type))
	}
	if u.MaxParallelItems != nil {
		out.MaxParallelItems = *u.MaxParallelItems
	}
	if u.MaxRetries != nil {
		out.MaxRetries = *u.MaxRetries
	}
	if u.IsActive != nil {
		out.IsActive = *u.IsActive
	}
	return out, out != p, nil
}

// DuplicateParams describes a copy of a pool. A nil Name means the source's
// name + " (copy)" (cut to 255 characters); a nil CopyContacts means true.
type DuplicateParams struct {
	Name         *string `json:"name,omitempty"`
	CopyContacts *bool   `json:"copy_contacts,omitempty"`
}

// Validate checks a given name with the name rule.
func (d DuplicateParams) Validate() error {
	var v validate.Validator
	if d.Name != nil {
		checkName(&v, *d.Name)
	}
	return v.Err()
}

// CopyName returns the name of a copy of a pool named src: d.Name when
// given, else src + " (copy)", cut to [MaxNameLen] runes.
func (d DuplicateParams) CopyName(src string) string {
	if d.Name != nil {
		return *d.Name
	}
	r := []rune(src + " (copy)")
	if len(r) > MaxNameLen {
		r = r[:MaxNameLen]
	}
	return string(r)
}

// Copies reports whether the items are copied too (default true).
func (d DuplicateParams) Copies() bool { return d.CopyContacts == nil || *d.CopyContacts }

// Duplicated is the result of duplicating a pool: the new pool and the
// number of items copied into it.
type Duplicated struct {
	Pool
	ContactsCopied int `json:"contacts_copied"`
}

func checkName(v *validate.Validator, name string) {
	if v.Required("name", name) && v.Length("name", name, MinNameLen, MaxNameLen) {
		noNUL(v, "name", name)
	}
}

func checkDescription(v *validate.Validator, d string) {
	if v.Required("description", d) {
		noNUL(v, "description", d)
	}
}

// noNUL rejects a NUL character: SQL text functions (and many clients)
// take it for the end of the string, so "abc\x00" would be stored as one
// thing and measured as another.
func noNUL(v *validate.Validator, field, s string) {
	v.Check(!strings.ContainsRune(s, 0), field, validate.RuleFormat, "must not contain NUL characters")
}

func checkType(v *validate.Validator, t Type) {
	_, ok := ParseType(string(t))
	v.OneOf("type", string(t), ok, typeNames()...)
}

func checkMaxParallel(v *validate.Validator, n int) {
	v.IntRange("max_parallel_items", n, MinParallelItems, MaxParallelItems)
}
