package pool_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// Run one fuzzer at a time, e.g.:
//
//	go test -run='^$' -fuzz='^FuzzNewItemsJSON$' -fuzztime=30s ./pool
//	go test -run='^$' -fuzz='^FuzzItemQueryJSON$' -fuzztime=30s ./pool
//	go test -run='^$' -fuzz='^FuzzPoolQueryJSON$' -fuzztime=30s ./pool

var newItemSeeds = []string{
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","name":"Ada Lovelace","phone_number":"+15551234567","email":"ada@example.com","timezone":"America/New_York","priority":5,"payload":{"phone":"+15551234567"}}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","priority":-3,"payload":[1,2,{"a":null}]},{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","payload":"x"}]`,
	`[{"contact_uuid":"00000000-0000-0000-0000-000000000000"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","name":" Ada"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","name":"Ada\u2028Lovelace"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","name":"A\u0000"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","name":"` + strings.Repeat("語", 256) + `"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","phone_number":"+0123"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","phone_number":"+1234567890123456"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","phone_number":"+123456789012345"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","phone_number":"5551234567"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","email":"a@b"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","email":"a b@c.d"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","email":"a@@c.d"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","email":"a@-c.d"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","email":"ü@bücher.example"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","email":"` + strings.Repeat("a", 65) + `@c.d"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","timezone":"Mars/Olympus"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","timezone":"UTC"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","timezone":"Etc/GMT+5"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","timezone":"utc"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","timezone":"../zone1970.tab"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","timezone":"Local"}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","payload":"\"a]\\\"{\""}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","payload":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","payload":` + strings.Repeat("[", 65) + strings.Repeat("]", 65) + `}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","payload":{"<a>":"&"}}]`,
	`[{"contact_uuid":"0190b7a4-8c1e-7000-8000-000000000001","payload":null}]`,
	`[]`, `null`, `[null]`, `[{}]`,
}

// jsonDepthRef is the nesting depth of arrays and objects of the valid JSON
// value b, read with encoding/json's tokenizer (apart from the pool's own
// scanner).
func jsonDepthRef(t *testing.T, b []byte) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return deepest
		}
		require.NoError(t, err, "payload %q", b)
		if d, ok := tok.(json.Delim); ok {
			if d == '[' || d == '{' {
				depth++
				deepest = max(deepest, depth)
			} else {
				depth--
			}
		}
	}
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{1,14}$`)

// contactFields are the field names of an item in a batch's errors.
var contactFields = map[string][]string{
	"contact_uuid": {validate.RuleRequired},
	"name":         {validate.RuleFormat, validate.RuleLength},
	"phone_number": {validate.RuleFormat},
	"email":        {validate.RuleFormat, validate.RuleLength},
	"timezone":     {validate.RuleFormat},
	"payload":      {validate.RuleFormat, validate.RuleLength},
}

// itemFieldOK is the reference verdict on one field of an item: the rules
// of pool/contact.go and pool/item.go restated.
func itemFieldOK(t *testing.T, n pool.NewItem, field string) bool {
	switch field {
	case "contact_uuid":
		return n.ContactUUID != uuid.Nil
	case "name":
		s := n.Name
		return s == "" || utf8.ValidString(s) && utf8.RuneCountInString(s) <= pool.MaxContactNameLen &&
			strings.TrimSpace(s) == s &&
			!strings.ContainsFunc(s, func(r rune) bool { return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' })
	case "phone_number":
		return n.PhoneNumber == "" || e164.MatchString(n.PhoneNumber)
	case "email":
		s := n.Email
		if s == "" {
			return true
		}
		if len(s) > pool.MaxEmailLen || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return false
		}
		local, domain, ok := strings.Cut(s, "@")
		if !ok || local == "" || len(local) > 64 || strings.Contains(domain, "@") ||
			strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return false
		}
		labels := strings.Split(domain, ".")
		if len(labels) < 2 {
			return false
		}
		for _, l := range labels {
			if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") {
				return false
			}
		}
		return true
	case "timezone":
		if n.TimeZone == "" {
			return true
		}
		loc, err := pool.LoadZone(n.TimeZone)
		if err != nil {
			require.ErrorIs(t, err, pool.ErrUnknownZone)
			return false
		}
		require.NotNil(t, loc)
		return true
	case "payload":
		p := n.Payload
		return len(p) == 0 || len(p) <= pool.MaxPayloadBytes && utf8.Valid(p) && json.Valid(p) && jsonDepthRef(t, p) <= pool.MaxPayloadDepth
	}
	t.Fatalf("unknown field %q", field)
	return false
}

// FuzzNewItemsJSON: a batch of items as JSON, as Engine.Add takes it.
// PrepareItems accepts it exactly when every field of every item meets the
// rules restated in itemFieldOK; a refusal is a validate.Errors naming
// items[i].field for exactly the failing ones; an accepted batch is folded
// by contact (first occurrence kept), and each item's JSON, as the API
// shows it, is an add body that is accepted again and gives the same item.
func FuzzNewItemsJSON(f *testing.F) {
	for _, s := range newItemSeeds {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 3, 8, 7, 30, 0, 0, time.FixedZone("X", 3600))

	f.Fuzz(func(t *testing.T, data []byte) {
		var items []pool.NewItem
		if err := json.Unmarshal(data, &items); err != nil {
			return
		}
		out, err := pool.PrepareItems(items)

		want := map[string]bool{} // the failing fields, by the reference
		if len(items) == 0 {
			want["items"] = true
		}
		for i, n := range items {
			for field := range contactFields {
				if !itemFieldOK(t, n, field) {
					want[fmt.Sprintf("items[%d].%s", i, field)] = true
				}
			}
		}
		if len(want) > 0 {
			require.Error(t, err, "rules broken: %v", want)
			require.ErrorIs(t, err, validate.ErrInvalid)
			require.Nil(t, out)
			var es validate.Errors
			require.ErrorAs(t, err, &es)
			got := map[string]bool{}
			for _, e := range es {
				require.NotEmpty(t, e.Message)
				got[e.Field] = true
				if e.Field == "items" {
					require.Equal(t, validate.RuleRequired, e.Rule)
					continue
				}
				var i int
				var name string
				_, serr := fmt.Sscanf(strings.Replace(e.Field, "].", "] ", 1), "items[%d] %s", &i, &name)
				require.NoError(t, serr, "field %q", e.Field)
				require.Contains(t, contactFields[name], e.Rule, "field %q rule %q", e.Field, e.Rule)
			}
			require.Equal(t, want, got, "the errors name exactly the failing fields")
			return
		}
		require.NoError(t, err)

		// Folded by contact, first occurrence kept, order kept.
		seen := map[uuid.UUID]bool{}
		var folded []pool.NewItem
		for _, n := range items {
			if !seen[n.ContactUUID] {
				seen[n.ContactUUID] = true
				folded = append(folded, n)
			}
		}
		require.Equal(t, folded, out)

		// Accepted items round-trip through the API's item JSON.
		for _, n := range out {
			it := n.Item(poolID, now)
			require.Equal(t, pool.StatusPending, it.Status)
			require.Equal(t, time.UTC, it.AddedAt.Location())
			b, err := json.Marshal(it)
			require.NoError(t, err)
			var again pool.NewItem
			require.NoError(t, json.Unmarshal(b, &again), "%s", b)
			twin, err := pool.PrepareItems([]pool.NewItem{again})
			require.NoError(t, err, "re-adding %s", b)
			require.Len(t, twin, 1)
			require.Equal(t, n.ContactUUID, twin[0].ContactUUID)
			require.Equal(t, n.Contact, twin[0].Contact)
			require.Equal(t, n.Priority, twin[0].Priority)
			if len(n.Payload) == 0 || string(n.Payload) == "null" {
				require.True(t, len(twin[0].Payload) == 0 || string(twin[0].Payload) == "null", "payload %s", twin[0].Payload)
				continue
			}
			// The payload is the same JSON value (json.Marshal compacts
			// a RawMessage and escapes <, > and &).
			requireSameJSON(t, n.Payload, twin[0].Payload)
		}
	})
}

// requireSameJSON checks that a and b are the same JSON value, numbers
// compared as written.
func requireSameJSON(t *testing.T, a, b []byte) {
	t.Helper()
	decode := func(b []byte) any {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		require.NoError(t, dec.Decode(&v), "%s", b)
		return v
	}
	require.Equal(t, decode(a), decode(b), "%s vs %s", a, b)
}

var itemQuerySeeds = []string{
	`{}`, `{"page":1,"per_page":25}`, `{"page":0,"per_page":0}`, `{"page":-1}`, `{"per_page":101}`,
	`{"per_page":100}`, `{"page":2147483647}`, `{"page":2147483648}`, `{"per_page":-5}`,
	`{"status":"Pending"}`, `{"status":"in_call"}`, `{"status":"IN_CALL"}`, `{"status":"Done"}`,
	`{"status":"Skipped "}`, `{"status":""}`, `{"status":"S\u212aipped"}`,
	`{"search":"ada"}`, `{"search":"a\nb"}`, `{"search":"` + strings.Repeat("x", 256) + `"}`,
	"{\"search\":\"\xff\"}", `{"search":"\u0000"}`, `{"page":9223372036854775807,"per_page":-9223372036854775808}`,
}

var poolQuerySeeds = []string{
	`{}`, `{"page":1,"per_page":15}`, `{"type":"fifo"}`, `{"type":"Parallel","is_active":false}`,
	`{"type":"round-robin"}`, `{"is_active":true,"search":"VIP"}`, `{"per_page":0,"page":0}`,
	`{"per_page":1000}`, `{"page":-7}`, `{"search":"\u2029"}`, `{"search":"\t"}`,
}

// pageOK restates the rules of page and per_page (zero: the default).
func pageOK(page, perPage int) (bool, bool) {
	return page >= 0 && page <= pool.MaxPage, perPage >= 0 && perPage <= pool.MaxPerPage
}

// searchOK restates the rule of a search: one line of at most MaxSearchLen
// characters.
func searchOK(s string) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= pool.MaxSearchLen &&
		!strings.ContainsFunc(s, func(r rune) bool { return r == 0 || unicode.IsControl(r) || r == '\u2028' || r == '\u2029' })
}

// requireFieldErrors checks that err is a validate.Errors naming exactly
// the fields of want, each with a rule of rules.
func requireFieldErrors(t *testing.T, err error, want map[string]bool, rules map[string][]string) {
	t.Helper()
	require.ErrorIs(t, err, validate.ErrInvalid)
	var es validate.Errors
	require.ErrorAs(t, err, &es)
	got := map[string]bool{}
	for _, e := range es {
		require.Contains(t, rules[e.Field], e.Rule, "field %q rule %q", e.Field, e.Rule)
		require.NotEmpty(t, e.Message)
		got[e.Field] = true
	}
	require.Equal(t, want, got)
}

var queryRules = map[string][]string{
	"page":     {validate.RuleRange},
	"per_page": {validate.RuleRange},
	"search":   {validate.RuleFormat, validate.RuleLength},
	"status":   {validate.RuleEnum},
	"type":     {validate.RuleEnum},
}

// FuzzItemQueryJSON: an item listing's query as JSON. Normalize fails
// exactly on the fields that break the rules (page 1..MaxPage, per_page
// 1..MaxPerPage, zero meaning the default; a search of one line of at most
// MaxSearchLen characters; a known status in any case); a normalized query
// has its defaults filled in and a canonical status, is a fixed point of
// Normalize, and comes back through its JSON unchanged.
func FuzzItemQueryJSON(f *testing.F) {
	for _, s := range itemQuerySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q pool.ItemQuery
		if err := json.Unmarshal(data, &q); err != nil {
			return
		}
		got, err := q.Normalize()
		want := listingWant(q.Page, q.PerPage, q.Search)
		if _, ok := pool.ParseStatus(string(q.Status)); q.Status != "" && !ok {
			want["status"] = true
		}
		if len(want) > 0 {
			requireFieldErrors(t, err, want, queryRules)
			return
		}
		require.NoError(t, err)
		requireListing(t, q.Page, q.PerPage, q.Search, got.Page, got.PerPage, got.Search, pool.DefaultItemsPerPage)
		require.True(t, got.Status == "" || got.Status.Valid(), "status %q", got.Status)
		require.True(t, strings.EqualFold(string(q.Status), string(got.Status)), "status %q from %q", got.Status, q.Status)
		requireStable(t, got, pool.ItemQuery.Normalize)
	})
}

// FuzzPoolQueryJSON is FuzzItemQueryJSON for a pool listing's query (a
// type, in any case, instead of a status, and an active flag).
func FuzzPoolQueryJSON(f *testing.F) {
	for _, s := range poolQuerySeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var q pool.PoolQuery
		if err := json.Unmarshal(data, &q); err != nil {
			return
		}
		got, err := q.Normalize()
		want := listingWant(q.Page, q.PerPage, q.Search)
		if _, ok := pool.ParseType(string(q.Type)); q.Type != "" && !ok {
			want["type"] = true
		}
		if len(want) > 0 {
			requireFieldErrors(t, err, want, queryRules)
			return
		}
		require.NoError(t, err)
		require.Equal(t, q.IsActive, got.IsActive)
		requireListing(t, q.Page, q.PerPage, q.Search, got.Page, got.PerPage, got.Search, pool.DefaultPoolsPerPage)
		require.True(t, got.Type == "" || got.Type.Valid(), "type %q", got.Type)
		require.True(t, strings.EqualFold(string(q.Type), string(got.Type)), "type %q from %q", got.Type, q.Type)
		requireStable(t, got, pool.PoolQuery.Normalize)
	})
}

// listingWant returns the fields of a listing's query that break the
// rules every listing has: page 1..MaxPage and per_page 1..MaxPerPage
// (zero meaning the default), a search of one line of at most
// MaxSearchLen characters.
func listingWant(page, perPage int, search string) map[string]bool {
	want := map[string]bool{}
	pOK, ppOK := pageOK(page, perPage)
	if !pOK {
		want["page"] = true
	}
	if !ppOK {
		want["per_page"] = true
	}
	if !searchOK(search) {
		want["search"] = true
	}
	return want
}

// requireListing: a normalized listing's page, per_page and search are
// the query's, its defaults filled in (def per page).
func requireListing(t *testing.T, page, perPage int, search string, gotPage, gotPerPage int, gotSearch string, def int) {
	t.Helper()
	require.Equal(t, search, gotSearch)
	require.Equal(t, max(page, 1), gotPage)
	if perPage == 0 {
		require.Equal(t, def, gotPerPage)
	} else {
		require.Equal(t, perPage, gotPerPage)
	}
}

// requireStable: a normalized query is a fixed point of normalize and
// comes back through its JSON unchanged.
func requireStable[Q any](t *testing.T, got Q, normalize func(Q) (Q, error)) {
	t.Helper()
	again, err := normalize(got)
	require.NoError(t, err)
	require.Equal(t, got, again, "Normalize is idempotent")
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var back Q
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, got, back, "round trip of %s", b)
}
