package pool

import (
	"encoding/json"
	"strings"
	"unicode/utf8"

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

	// emptyType records a JSON "type": "" (see UnmarshalJSON).
	emptyType bool
}

// UnmarshalJSON decodes the JSON form into p, as encoding/json decodes a
// struct: the fields the JSON does not name keep their values, and null
// changes nothing. A "type" given as the empty string is kept apart from an
// absent one, so that Validate refuses it as an update does: only an
// absent type means the default.
func (p *CreateParams) UnmarshalJSON(b []byte) error {
	type plain CreateParams // without this method
	aux := struct {
		plain
		Type *Type `json:"type"`
	}{plain: plain(*p)}
	if err := json.Unmarshal(b, &aux); err != nil {
		return err
	}
	typ := p.Type
	*p = CreateParams(aux.plain)
	p.Type = typ
	if aux.Type != nil {
		p.Type = *aux.Type
		p.emptyType = *aux.Type == ""
	}
	return nil
}

// trimmed returns p with name and description trimmed of surrounding
// white space.
func (p CreateParams) trimmed() CreateParams {
	p.Name = strings.TrimSpace(p.Name)
	p.Description = strings.TrimSpace(p.Description)
	return p
}

// Validate checks every field and returns a [validate.Errors] listing all
// the failing ones, or nil:
//   - name: required, 3–255 characters (runes);
//   - description: required (not blank), at most [MaxDescriptionLen]
//     characters;
//   - type: FIFO, LIFO or Parallel in any case, or empty for the default
//     (in JSON, a type given as "" is an error, as in an update);
//   - max_parallel_items: 1–100 when given;
//   - max_retries: ≥ 0 when given.
//
// Name and description are trimmed of surrounding white space first, as
// the API does: "  VIP " is the 3-character name "VIP". Text must be valid
// UTF-8 without NUL characters.
func (p CreateParams) Validate() error {
	var v validate.Validator
	p.check(&v)
	return v.Err()
}

// check adds p's failing fields to v.
func (p CreateParams) check(v *validate.Validator) {
	p = p.trimmed()
	if p.emptyType {
		checkType(v, "")
	}
	checkName(v, p.Name)
	checkDescription(v, p.Description)
	if p.Type != "" {
		checkType(v, p.Type)
	}
	if p.MaxParallelItems != nil {
		checkMaxParallel(v, *p.MaxParallelItems)
	}
	if p.MaxRetries != nil {
		v.IntMin("max_retries", *p.MaxRetries, 0)
	}
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
// type may not be empty; name and description are trimmed first) and
// returns a [validate.Errors] or nil.
func (u UpdateParams) Validate() error {
	u = u.trimmed()
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

// trimmed returns u with a given name and description trimmed of
// surrounding white space.
func (u UpdateParams) trimmed() UpdateParams {
	if u.Name != nil {
		s := strings.TrimSpace(*u.Name)
		u.Name = &s
	}
	if u.Description != nil {
		s := strings.TrimSpace(*u.Description)
		u.Description = &s
	}
	return u
}

// Apply validates u and returns p with the given fields changed. changed
// reports whether any value differs from p's; the caller moves UpdatedAt
// only then (an update that changes nothing is not a modification).
func (u UpdateParams) Apply(p Pool) (out Pool, changed bool, err error) {
	if err := u.Validate(); err != nil {
		return p, false, err
	}
	u = u.trimmed()
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
// name + " (copy)" (the name cut so that the whole fits 255 characters); a
// nil CopyContacts means true. A given name is trimmed of surrounding white
// space.
type DuplicateParams struct {
	Name         *string `json:"name,omitempty"`
	CopyContacts *bool   `json:"copy_contacts,omitempty"`
}

// Validate checks a given name with the name rule.
func (d DuplicateParams) Validate() error {
	var v validate.Validator
	if d.Name != nil {
		checkName(&v, strings.TrimSpace(*d.Name))
	}
	return v.Err()
}

// copySuffix marks the default name of a copy.
const copySuffix = " (copy)"

// CopyName returns the name of a copy of a pool named src: d.Name when
// given (trimmed), else src + " (copy)", with src cut so that the whole
// fits [MaxNameLen] runes: the marker always shows.
func (d DuplicateParams) CopyName(src string) string {
	if d.Name != nil {
		return strings.TrimSpace(*d.Name)
	}
	r := []rune(src)
	if keep := MaxNameLen - utf8.RuneCountInString(copySuffix); len(r) > keep {
		r = r[:keep]
	}
	return string(r) + copySuffix
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
	if v.Required("name", name) && v.Length("name", name, MinNameLen, MaxNameLen) && v.Text("name", name, 0) {
		// Surrounding white space is trimmed (see New); inside, a line
		// break or other control character is refused.
		v.Line("name", strings.TrimSpace(name))
	}
}

func checkDescription(v *validate.Validator, d string) {
	if v.Required("description", d) {
		v.Text("description", d, MaxDescriptionLen)
	}
}

func checkType(v *validate.Validator, t Type) {
	_, ok := ParseType(string(t))
	v.OneOf("type", string(t), ok, typeNames()...)
}

func checkMaxParallel(v *validate.Validator, n int) {
	v.IntRange("max_parallel_items", n, MinParallelItems, MaxParallelItems)
}
