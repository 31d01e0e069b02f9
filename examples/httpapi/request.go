package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// MaxBodyBytes is the largest request body accepted; a larger one gets 413.
const MaxBodyBytes = 1 << 20

// MaxListElements bounds every list of a request body (contact_uuids,
// contacts, pool_uuids), repeats counted: a longer list is a 422 naming it
// (rule "length"), and none of its elements is decoded. No endpoint takes
// more (an add takes at most MaxContactsPerRequest contacts, a campaign
// far fewer pools); counted before decoding, a 1 MiB list of 500,000
// numbers costs a scan of its bytes, where decoding it cost 0.5 s and
// 250 MB of allocations to refuse it anyway.
const MaxListElements = 10_000

// decode reads a JSON object from the body of r into dst, a pointer to a
// struct whose json tags name every accepted field. It reads at most
// MaxBodyBytes (413 beyond) and rejects with 400 what is not one JSON
// object: an empty body (unless allowEmpty, which leaves dst as it is),
// malformed JSON, anything but an object, data after the object. A JSON
// null counts as an absent field.
//
// Field problems are failures of v, named by the field, so that the caller
// adds the failures of its own rules and one 422 lists them all: a field
// dst does not have (matched exactly, not case-insensitively as
// encoding/json would), a value of the wrong JSON type ("max_retries":
// "3"), a value that is not UTF-8 (JSON text is UTF-8; encoding/json would
// store U+FFFD in place of the bad bytes). Such a field is left out of dst
// and every other field is decoded, so the caller's rules run on what
// decoded cleanly; a rule that then finds the field missing is not
// reported (see invalid). The fields named in readOnly are the resource's
// own read-only fields (uuid, created_at…): accepted and ignored, so that a
// client may send back what it read.
func decode(w http.ResponseWriter, r *http.Request, v *validate.Validator, dst any, allowEmpty bool, readOnly ...string) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Code: CodePayloadTooLarge,
				Message: "Request body too large", Details: fmt.Sprintf("the body must not exceed %d bytes", MaxBodyBytes)}
		}
		return badRequest(CodeInvalidJSON, "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if allowEmpty {
			return nil
		}
		return badRequest(CodeInvalidJSON, "the request body is empty; send a JSON object")
	}

	// One JSON object and nothing after it.
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return badRequest(CodeInvalidJSON, fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, syn))
		case errors.As(err, &typ):
			return badRequest(CodeInvalidJSON, "the body must be a JSON object, not "+typ.Value)
		default:
			return badRequest(CodeInvalidJSON, "malformed JSON: "+err.Error())
		}
	}
	if raw == nil {
		return badRequest(CodeInvalidJSON, "the body must be a JSON object, not null")
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest(CodeInvalidJSON, fmt.Sprintf("unexpected data after the JSON object at byte %d", dec.InputOffset()))
	}
	return decodeFields(v, "", raw, repeatedKeys(body), dst, "this request", readOnly)
}

// noBody reads the body of a request to an endpoint that takes none (a
// DELETE, a campaign's action, an opt-out, a claim): empty or {} passes; a
// field is a failure of v naming it, malformed JSON a 400, as in a body
// that has fields. Ignored, {"dry_run": true} would do for real what the
// client may have asked otherwise, as ?dry_run=1 would (see newQuery).
func noBody(w http.ResponseWriter, r *http.Request, v *validate.Validator) error {
	return decode(w, r, v, &struct{}{}, true)
}

// uuidList parses list, the elements of the request's field named field,
// of which decode refused those at refused (see refusedKeeper): each other
// element that is not a UUID is a failure of v named by its index, within
// maxListedErrors with decode's, the rest counted against the list. It
// returns the UUIDs, in order, each once.
func uuidList(v *validate.Validator, field string, list []string, refused map[int]bool) []uuid.UUID {
	ids := make([]uuid.UUID, 0, len(list))
	seen := make(map[uuid.UUID]bool, len(list))
	bad := min(len(refused), maxListedErrors) // listed by decode
	for i, raw := range list {
		id, ok := parseUUID(raw)
		switch {
		case !ok && refused[i]:
		case !ok:
			if bad++; bad <= maxListedErrors {
				v.Add(fmt.Sprintf("%s[%d]", field, i), validate.RuleFormat, uuidProblem(raw))
			}
		case !seen[id]:
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if bad > maxListedErrors {
		v.Add(field, validate.RuleFormat, fmt.Sprintf("%d more invalid UUIDs not listed", bad-maxListedErrors))
	}
	return ids
}

// repeatedKeys returns the keys that the JSON object b, valid JSON, gives
// more than once (compared once unescaped, as encoding/json does). A map
// of members keeps the last value of such a key, where a proxy or a log in
// front of this server may have read the first: so decodeFields refuses
// it rather than choose.
func repeatedKeys(b []byte) map[string]bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	var repeated map[string]bool
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return repeated
		}
		k, _ := t.(string)
		if seen[k] {
			if repeated == nil {
				repeated = map[string]bool{}
			}
			repeated[k] = true
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return repeated
		}
	}
	return repeated
}

// loneSurrogate reports whether the JSON value b holds a \u escape of
// half a surrogate pair (U+D800–U+DFFF) without its other half, which
// encoding/json decodes as U+FFFD: text the client never sent.
func loneSurrogate(b []byte) bool {
	half := func(i int) (rune, bool) { // the \uXXXX escape at b[i:], if any
		if i+6 > len(b) || b[i] != '\\' || b[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(b[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		r, ok := half(i)
		if !ok {
			i++ // an escaped character: \\, \", \n…
			continue
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low half first
		case r >= 0xD800 && r <= 0xDBFF:
			if lo, ok := half(i + 6); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
		i += 5
	}
	return false
}

// listLen is the number of elements of val, valid JSON, when it is an
// array and typ a list (a slice, not a payload's bytes), counted without
// decoding them; 0 otherwise.
func listLen(typ reflect.Type, val []byte) int {
	if typ.Kind() != reflect.Slice || typ == rawType || len(val) == 0 || val[0] != '[' {
		return 0
	}
	if len(bytes.TrimSpace(val[1:len(val)-1])) == 0 {
		return 0 // []
	}
	n, depth, inString := 1, 0, false
	for i := 0; i < len(val); i++ {
		c := val[i]
		switch {
		case inString && c == '\\':
			i++ // the escaped character
		case inString:
			inString = c != '"'
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
		case c == ']' || c == '}':
			depth--
		case c == ',' && depth == 1:
			n++
		}
	}
	return n
}

// rawType is the type of an opaque member (a payload), kept as the client
// sent it; a list of them is decoded member by member (decodeObject).
var rawType = reflect.TypeOf(json.RawMessage(nil))

// opaque reports whether a member of type typ is kept or decoded later as
// raw JSON, whose text decodeFields does not judge.
func opaque(typ reflect.Type) bool {
	return typ == rawType || typ.Kind() == reflect.Slice && typ.Elem() == rawType
}

// decodeFields decodes the members of a JSON object into dst as decode
// says: each member dst does not have, each value of the wrong JSON type,
// each value that is not UTF-8 or holds half a surrogate pair (outside
// opaque payloads), and each key in repeated (given twice) is a failure of
// v named prefix + its key, and is left out; so are nulls (absent) and the members named in
// readOnly (whose value must be UTF-8 all the same). The rest is decoded
// into dst. what names the object in messages ("this request", "a
// contact"). Bytes that are not UTF-8 can only sit in a string of valid
// JSON, so such a body always fails: in a key, as a field dst does not
// have; in a value, as that member. In an array of strings or numbers, an
// element of the wrong type is named by its index (see decodeElements). A
// list longer than MaxListElements is a failure of v, its elements not
// decoded.
func decodeFields(v *validate.Validator, prefix string, fields map[string]json.RawMessage, repeated map[string]bool, dst any, what string, readOnly []string) error {
	var known []string
	types := map[string]reflect.Type{}
	for _, f := range jsonFields(dst) {
		known = append(known, f.name)
		types[f.name] = f.typ
	}
	unknown := "is not a field of " + what + " (it takes no fields)"
	if len(known) > 0 {
		unknown = "is not a field of " + what + " (accepted: " + strings.Join(known, ", ") + ")"
	}
	clean := make(map[string]json.RawMessage, len(fields))
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		val, typ := fields[k], types[k]
		switch {
		case k == "":
			// No field to name: the object that holds it is named, the
			// body at the top ("query" names a query's nameless one).
			owner := strings.TrimSuffix(prefix, ".")
			if owner == "" {
				owner = "body"
			}
			v.Add(owner, RuleUnknown, `holds a member without a name (""): `+unknown[len("is "):])
		case typ == nil && !slices.Contains(readOnly, k):
			v.Add(prefix+k, RuleUnknown, unknown)
		case repeated[k]:
			v.Add(prefix+k, RuleRepeated, "is given more than once; give it once")
		case !utf8.Valid(val):
			v.Add(prefix+k, RuleUTF8, "must be valid UTF-8 text (JSON is UTF-8)")
		case typ != nil && !opaque(typ) && loneSurrogate(val):
			v.Add(prefix+k, RuleUTF8, `must be valid Unicode text: a \u escape names half of a surrogate pair`)
		case typ != nil && listLen(typ, val) > MaxListElements:
			v.Add(prefix+k, validate.RuleLength, fmt.Sprintf("must hold at most %d elements (got %d); send several requests",
				MaxListElements, listLen(typ, val)))
		case typ == nil: // read-only
			if keep, ok := dst.(readOnlyKeeper); ok && string(val) != "null" {
				keep.keepReadOnly(k, val)
			}
		case string(val) == "null": // absent
		default:
			if err := json.Unmarshal(val, reflect.New(typ).Interface()); err != nil {
				var te *json.UnmarshalTypeError
				if !errors.As(err, &te) {
					return badRequest(CodeInvalidJSON, "malformed JSON: "+err.Error())
				}
				if elems, refused, ok := decodeElements(v, prefix+k, val, typ); ok {
					if keep, ok := dst.(refusedKeeper); ok {
						keep.keepRefused(k, refused)
					}
					clean[k] = elems
					continue
				}
				v.Add(prefix+k, RuleType, fmt.Sprintf("must be %s, not %s", jsonKind(typ), te.Value))
				continue
			}
			clean[k] = val
		}
	}
	// Through dst's own UnmarshalJSON, if it has one.
	if err := json.Unmarshal(object(clean), dst); err != nil {
		return badRequest(CodeInvalidJSON, "malformed JSON: "+err.Error())
	}
	return nil
}

// readOnlyKeeper is a request that checks the read-only fields a client
// sends back (decodeFields ignores them otherwise): it is given each one
// that is not null, its value valid UTF-8.
type readOnlyKeeper interface {
	keepReadOnly(field string, val json.RawMessage)
}

// object is the JSON object of fields, each value written as it came: a
// payload is opaque, and reaches the engine with the client's bytes (not
// compacted, nor HTML-escaped as json.Marshal would), its size theirs.
func object(fields map[string]json.RawMessage) []byte {
	b := []byte{'{'}
	for i, k := range slices.Sorted(maps.Keys(fields)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, k) // a field name of dst: ASCII
		b = append(b, ':')
		b = append(b, fields[k]...)
	}
	return append(b, '}')
}

// decodeElements handles a JSON array val that does not decode into typ, a
// slice of strings, numbers or booleans, because of some of its elements:
// each such element is a failure of v named field[i] ("contact_uuids[1]:
// must be a string, not number"; the first maxListedErrors, then their
// number, against field), and is replaced by the zero value of its type, so
// that the others keep their indexes and the caller's rules name them
// rightly. It returns the array so mended with the indexes of the elements
// it replaced, and false when val is not an array or typ not such a slice
// (the whole field is then of the wrong type). A zero value never reaches
// the engine: v has failed. The count of the unlisted ones is not a refusal
// of the list (ruleNotListed): the list was mended, and the failures of its
// other elements must still be reported.
func decodeElements(v *validate.Validator, field string, val json.RawMessage, typ reflect.Type) (json.RawMessage, []int, bool) {
	if typ.Kind() != reflect.Slice {
		return nil, nil, false
	}
	switch elem := typ.Elem(); elem.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map, reflect.Struct, reflect.Interface, reflect.Pointer, reflect.Uint8:
		return nil, nil, false // a []byte is base64; the others' elements would need their own paths
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(val, &elems); err != nil {
		return nil, nil, false
	}
	zero, err := json.Marshal(reflect.Zero(typ.Elem()).Interface())
	if err != nil {
		return nil, nil, false
	}
	// Only a JSON string or null decodes into a string: for a list of
	// strings (contact_uuids), the first byte tells, and an element is
	// decoded only for the message of one listed. A body of 500,000
	// numbers in place of UUIDs took 0.7 s decoded one by one.
	str := typ.Elem().Kind() == reflect.String
	var refused []int
	for i, el := range elems {
		if str && (el[0] == '"' || string(el) == "null") {
			continue
		}
		listed := len(refused) < maxListedErrors
		if !str || listed {
			err := json.Unmarshal(el, reflect.New(typ.Elem()).Interface())
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) {
				continue
			}
			if listed {
				v.Add(fmt.Sprintf("%s[%d]", field, i), RuleType, fmt.Sprintf("must be %s, not %s", jsonKind(typ.Elem()), te.Value))
			}
		}
		refused = append(refused, i)
		elems[i] = zero
	}
	if len(refused) == 0 {
		return nil, nil, false
	}
	if len(refused) > maxListedErrors {
		v.Add(field, ruleNotListed, fmt.Sprintf("%d more elements of the wrong type not listed", len(refused)-maxListedErrors))
	}
	out, err := json.Marshal(elems)
	return out, refused, err == nil
}

// maxListedErrors bounds the bad elements of a list (contact_uuids…) that a
// 422 lists one by one: those of the wrong type and the malformed ones
// together, the rest counted against the list.
const maxListedErrors = 20

// ruleNotListed is the rule of the count of a list's bad elements past
// maxListedErrors, named by the list: not a refusal, since the list was
// decoded (mended) and its other failures stand.
const ruleNotListed = "not_listed"

// refusedKeeper is a request that wants the indexes of the elements of one
// of its lists that decode refused (of the wrong JSON type: failures of v
// already, the first maxListedErrors listed), so that it judges only the
// others and lists them within what is left of that bound.
type refusedKeeper interface {
	keepRefused(field string, idx []int)
}

// Rules of the request's fields, beside those of package validate. A field
// that fails one of them is left out of the decoded request.
const (
	RuleUnknown  = "unknown"   // the request does not take this field
	RuleType     = "type"      // the value has the wrong JSON type
	RuleUTF8     = "utf8"      // the value holds bytes that are not UTF-8, or half a surrogate pair
	RuleRepeated = "repeated"  // the object gives the field more than once
	RuleReadOnly = "read_only" // a read-only field holds another value than the resource's (on a create, the new one's)
)

// refusal reports whether rule is one of decode's, which leave the field out.
func refusal(rule string) bool {
	return rule == RuleUnknown || rule == RuleType || rule == RuleUTF8 || rule == RuleRepeated
}

// jsonField is a field of a request struct: its JSON name and Go type.
type jsonField struct {
	name string
	typ  reflect.Type
}

// jsonFields returns the fields of the struct dst points to, in
// declaration order, with the fields of untagged embedded structs promoted
// as encoding/json does.
func jsonFields(dst any) []jsonField {
	return structFields(reflect.TypeOf(dst).Elem())
}

func structFields(t reflect.Type) []jsonField {
	out := make([]jsonField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			out = append(out, structFields(f.Type)...)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, jsonField{name, f.Type})
	}
	return out
}

// jsonKind names the JSON type that decodes into t, for error messages.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// pathPool returns the pool UUID of the path. A malformed UUID names no pool:
// 404, like an unknown one.
func pathPool(r *http.Request) (uuid.UUID, error) {
	id, ok := parseUUID(r.PathValue("uuid"))
	if !ok {
		return uuid.Nil, poolNotFound()
	}
	return id, nil
}

// pathContact returns the pool and contact UUIDs of the path, 404 for a
// malformed one.
func pathContact(r *http.Request) (poolID, contact uuid.UUID, err error) {
	if poolID, err = pathPool(r); err != nil {
		return uuid.Nil, uuid.Nil, err
	}
	contact, ok := parseUUID(r.PathValue("contact"))
	if !ok {
		return uuid.Nil, uuid.Nil, contactNotFound()
	}
	return poolID, contact, nil
}

// uuidProblem says what is wrong with s, which parseUUID refused.
func uuidProblem(s string) string {
	if id, err := uuid.Parse(s); err == nil && len(s) == 36 && id == uuid.Nil {
		return "must not be the nil UUID"
	}
	return fmt.Sprintf("must be a UUID like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (got %s)", validate.Quote(s))
}

// parseUUID accepts only the canonical 36-character form (any case) and not
// the nil UUID.
func parseUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, false
	}
	return id, true
}

// queryParams reads query parameters, collecting every failure in v.
// An absent or empty parameter is "not given".
type queryParams struct {
	q url.Values
	v validate.Validator
}

// MaxQueryParams is the most parameters a query may hold, net/url's bound.
const MaxQueryParams = 10_000

// newQuery reads the query of r as url.ParseQuery does, but refuses what
// it would drop silently: a parameter with a bad %-escape or a ";" (no
// longer a separator) is a failure of v named by the parameter ("query"
// when its name itself does not decode), not a parameter left out, which
// would answer another request than the one sent (a listing without its
// ?status= filter, a claim without its ?wait=). So is a query of more than
// MaxQueryParams parameters, of which url.ParseQuery gives none, and a
// parameter given twice (rule "repeated"), of which it would keep one,
// and a parameter that is not one of accepted, the endpoint's (rule
// "unknown", names matching exactly, as a body's fields do): a misspelled
// or miscased filter (?stauts=, ?Status=) would be dropped too, and so
// would a parameter sent to an endpoint that takes none, which would then
// do for real what the client may have asked otherwise (?priority=5 on an
// add, ?dry_run=1 on a delete). The server reads the query of every
// request so, with the parameters its route takes (see server.handle).
func newQuery(r *http.Request, accepted ...string) *queryParams {
	p := &queryParams{q: url.Values{}}
	unknown := "is not a parameter of this endpoint (it takes none)"
	if len(accepted) > 0 {
		unknown = "is not a parameter of this endpoint (accepted: " + strings.Join(accepted, ", ") + ")"
	}
	refused := map[string]bool{} // the unknown ones, named once
	if n := strings.Count(r.URL.RawQuery, "&") + 1; n > MaxQueryParams {
		// Bounded as url.ParseQuery bounds it (it then gives none).
		p.v.Add("query", validate.RuleLength, fmt.Sprintf("must hold at most %d parameters (got %d)", MaxQueryParams, n))
		return p
	}
	for pair := range strings.SplitSeq(r.URL.RawQuery, "&") {
		if pair == "" {
			continue
		}
		rawKey, rawVal, _ := strings.Cut(pair, "=")
		key, kerr := url.QueryUnescape(rawKey)
		val, verr := url.QueryUnescape(rawVal)
		switch {
		case kerr != nil:
			p.v.Add("query", validate.RuleFormat, fmt.Sprintf("holds a parameter whose name is not URL-encoded (got %s)", validate.Quote(pair)))
		case key == "":
			// Named by the query, as every 422 names a field.
			p.v.Add("query", RuleUnknown, fmt.Sprintf("holds a parameter without a name (got %s)", validate.Quote(pair)))
		case verr != nil || strings.Contains(pair, ";"):
			p.v.Add(key, validate.RuleFormat, fmt.Sprintf(`must be URL-encoded, with no bad %%-escape or ";" (got %s)`, validate.Quote(pair)))
		case !slices.Contains(accepted, key):
			if !refused[key] {
				refused[key] = true
				p.v.Add(key, RuleUnknown, unknown)
			}
		case p.q.Has(key):
			// As a field given twice in a body: a proxy or a log in front
			// of the server may have read the other value.
			p.v.Add(key, RuleRepeated, "is given more than once")
		default:
			p.q.Add(key, val)
		}
	}
	return p
}

// MaxPage is the largest page number accepted: the engine's own bound
// ([pool.MaxPage], which keeps a page's offset (page-1)*per_page from
// overflowing), checked here too so that a page too large is named in the
// same 422 as the query's other bad parameters.
const MaxPage = pool.MaxPage

// page reads the page and per_page parameters. Zero means not given: the
// engine applies its defaults, and checks the upper bound of per_page
// itself (a validate.Errors, so a 422 like this one's).
func (p *queryParams) page() (page, perPage int) {
	return p.int("page", MaxPage), p.int("per_page", 0)
}

// int reads an integer parameter that must be at least 1 when given, and at
// most hi unless hi is 0.
func (p *queryParams) int(name string, hi int) int {
	s := p.q.Get(name)
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		p.v.Add(name, validate.RuleFormat, fmt.Sprintf("must be an integer (got %s)", validate.Quote(s)))
		return 0
	}
	ok := p.v.IntMin(name, n, 1)
	if ok && hi > 0 {
		ok = p.v.IntRange(name, n, 1, hi)
	}
	if !ok {
		return 0
	}
	return n
}

// bool reads a boolean parameter (true/false, 1/0); nil when not given.
func (p *queryParams) bool(name string) *bool {
	s := p.q.Get(name)
	if s == "" {
		return nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.v.Add(name, validate.RuleFormat, fmt.Sprintf("must be true or false (got %s)", validate.Quote(s)))
		return nil
	}
	return &b
}

func (p *queryParams) err() error {
	if fe := p.v.Errors(); len(fe) > 0 {
		return invalid(fe)
	}
	return nil
}

// indexSet returns idx as a set.
func indexSet(idx []int) map[int]bool {
	m := make(map[int]bool, len(idx))
	for _, i := range idx {
		m[i] = true
	}
	return m
}
