package pool

import "github.com/poolq/poolq/validate"

// Paging defaults and limits.
const (
	DefaultPoolsPerPage = 15  // per_page of a pool listing when none is given
	DefaultItemsPerPage = 25  // per_page of an item listing when none is given
	MaxPerPage          = 100 // largest per_page; larger values are rejected
)

// Page is one page of a listing, in the API's shape. Pages are 1-based;
// LastPage is at least 1, even when Total is 0.
type Page[T any] struct {
	CurrentPage int `json:"current_page"`
	LastPage    int `json:"last_page"`
	PerPage     int `json:"per_page"`
	Total       int `json:"total"`
	Data        []T `json:"data"`
}

// NewPage assembles a page from its data and the total number of rows.
// Data is never nil, so it marshals as [] rather than null. A perPage below
// 1 (a query that skipped Normalize) counts as 1.
func NewPage[T any](page, perPage, total int, data []T) Page[T] {
	if data == nil {
		data = []T{}
	}
	perPage = max(perPage, 1)
	last := (total + perPage - 1) / perPage
	if last < 1 {
		last = 1
	}
	return Page[T]{CurrentPage: page, LastPage: last, PerPage: perPage, Total: total, Data: data}
}

// PoolPage is a page of pools.
type PoolPage = Page[Pool]

// ItemPage is a page of items.
type ItemPage = Page[Item]

// PoolQuery selects a page of pools, ordered by creation (oldest first, ties
// broken by UUID) so pages are stable.
type PoolQuery struct {
	// Page is the 1-based page number. Defaults to 1.
	Page int `json:"page,omitempty"`
	// PerPage is the page size, 1–100. Defaults to 15.
	PerPage int `json:"per_page,omitempty"`
	// Type keeps only pools of this type (any case). Empty keeps all.
	Type Type `json:"type,omitempty"`
	// IsActive keeps only active (true) or inactive (false) pools. Nil keeps
	// all.
	IsActive *bool `json:"is_active,omitempty"`
	// Search keeps pools whose name, description or type contains it,
	// case-insensitively (Unicode simple folding). At most [MaxSearchLen]
	// characters, no control characters (so a match never spans the name
	// and the description). Empty keeps all.
	Search string `json:"search,omitempty"`
}

// Normalize validates q and returns it with defaults applied and Type made
// canonical.
func (q PoolQuery) Normalize() (PoolQuery, error) {
	var v validate.Validator
	q.Page, q.PerPage = pageDefaults(&v, q.Page, q.PerPage, DefaultPoolsPerPage)
	checkSearch(&v, q.Search)
	if q.Type != "" {
		t, ok := ParseType(string(q.Type))
		v.OneOf("type", string(q.Type), ok, typeNames()...)
		q.Type = t
	}
	return q, v.Err()
}

// ItemQuery selects a page of a pool's items in insertion order.
type ItemQuery struct {
	// Status keeps only items in this status (any case). Empty keeps all.
	Status Status `json:"status,omitempty"`
	// Search keeps items where every word of it but the last is a word of
	// the contact's name, email or phone number, and the last begins one,
	// as in a type-ahead box ("ada love" finds "Ada Lovelace"; "+1555"
	// finds "+15551234567"; "example" finds "ada@example.com"), case and
	// diacritics aside (a word is a run of letters, decimal digits and
	// marks, as store.SearchWords cuts and folds it, the same in every
	// store); a search without letters or digits matches nothing. At most
	// [MaxSearchLen] characters, no control characters.
	// Empty keeps all.
	Search string `json:"search,omitempty"`
	// Page is the 1-based page number. Defaults to 1.
	Page int `json:"page,omitempty"`
	// PerPage is the page size, 1–100. Defaults to 25.
	PerPage int `json:"per_page,omitempty"`
	// After keeps only items whose ID is greater: keyset paging, for
	// walking a whole pool. Give the ID of the last item of the page before
	// (0, the default, starts at the first item) and leave Page at 1; a
	// page then costs O(log n + PerPage) however deep it lies, where Page
	// costs what its offset skips. Total, and so LastPage, still count
	// every matching item, those up to After included. The walk is not a
	// snapshot: each page is read as the pool is then, so an item added
	// meanwhile (a larger ID) is met on a later page, and one removed
	// before its page is not. Not part of the REST API (item IDs are not
	// shown there). At least 0.
	After int64 `json:"-"`
}

// Normalize validates q and returns it with defaults applied and Status made
// canonical.
func (q ItemQuery) Normalize() (ItemQuery, error) {
	var v validate.Validator
	if q.After != 0 && q.Page > 1 {
		v.Add("page", validate.RuleExclusive, "must be 1 (or not given) with after: the page follows the item after names")
	}
	v.Check(q.After >= 0, "after", validate.RuleRange, "must be 0 or more (an item's ID)")
	q.Page, q.PerPage = pageDefaults(&v, q.Page, q.PerPage, DefaultItemsPerPage)
	checkSearch(&v, q.Search)
	if q.Status != "" {
		s, ok := ParseStatus(string(q.Status))
		v.OneOf("status", string(q.Status), ok, statusNames()...)
		q.Status = s
	}
	return q, v.Err()
}

// MaxSearchLen is the longest search of a pool or item listing, in
// characters.
const MaxSearchLen = 255

// checkSearch checks the search of a listing: valid UTF-8 without NUL, at
// most MaxSearchLen characters, no control characters.
func checkSearch(v *validate.Validator, search string) {
	if v.Text("search", search, MaxSearchLen) {
		v.Line("search", search)
	}
}

// MaxPage is the largest page number a query accepts, so that the offset
// of a page (page-1)*per_page can never overflow an int64, and a page
// number fits an int on 32-bit systems too.
const MaxPage = 1<<31 - 1

// Offset returns the number of rows before page. It is an int64: the
// offset of a page up to MaxPage overflows a 32-bit int.
func Offset(page, perPage int) int64 { return int64(page-1) * int64(perPage) }

func pageDefaults(v *validate.Validator, page, perPage, def int) (int, int) {
	if page == 0 {
		page = 1
	}
	if perPage == 0 {
		perPage = def
	}
	v.IntRange("page", page, 1, MaxPage)
	v.IntRange("per_page", perPage, 1, MaxPerPage)
	return page, perPage
}
