package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// MaxContactsPerRequest is the most contact UUIDs one add request may carry.
// At 39 bytes a UUID in JSON, 10,000 of them fit well within MaxBodyBytes.
const MaxContactsPerRequest = 10_000

// maxListedErrors bounds the bad UUIDs a 422 lists one by one.
const maxListedErrors = 20

// addContactsRequest is the body of POST /api/v1/pools/{uuid}/contacts:
// the API's contact_uuids (with one priority for all), and poolq's contacts,
// each with the contact's fields the item keeps (see contactRequest). The
// UUIDs are strings, not uuid.UUID, so that a malformed one is a 422 naming
// its index rather than a 400 for the whole body.
type addContactsRequest struct {
	ContactUUIDs []string          `json:"contact_uuids"`
	Priority     int               `json:"priority"`
	Contacts     []json.RawMessage `json:"contacts"`
}

// contactRequest is one element of "contacts": a contact UUID, the
// contact's fields (name, phone_number, email, timezone, all optional), its
// own priority (else the request's) and payload.
type contactRequest struct {
	ContactUUID string `json:"contact_uuid"`
	pool.Contact
	Priority *int            `json:"priority"`
	Payload  json.RawMessage `json:"payload"`
}

// addContacts: POST /api/v1/pools/{uuid}/contacts. One transaction: all the
// contacts are added (or counted as skipped) or none.
func (s *server) addContacts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	var in addContactsRequest
	if err := decode(w, r, &in, false); err != nil {
		return err
	}
	var v validate.Validator
	nu, nc := len(in.ContactUUIDs), len(in.Contacts)
	switch n := nu + nc; {
	case n == 0:
		v.Add("contact_uuids", validate.RuleRequired, "must hold at least one contact UUID (or give contacts)")
		return v.Err()
	case n > MaxContactsPerRequest:
		v.Add("contact_uuids", validate.RuleLength,
			fmt.Sprintf("must hold at most %d contacts with contacts (got %d); send several requests", MaxContactsPerRequest, n))
		return v.Err()
	}
	items := make([]pool.NewItem, 0, nu+nc)
	bad := 0
	badUUID := func(field, raw string) {
		if bad++; bad <= maxListedErrors {
			v.Add(field, validate.RuleFormat, uuidProblem(raw))
		}
	}
	for i, raw := range in.ContactUUIDs {
		c, ok := parseUUID(raw)
		if !ok {
			badUUID(fmt.Sprintf("contact_uuids[%d]", i), raw)
		}
		items = append(items, pool.NewItem{ContactUUID: c, Priority: in.Priority})
	}
	for i, raw := range in.Contacts {
		prefix := fmt.Sprintf("contacts[%d].", i)
		var c contactRequest
		if !decodeObject(&v, prefix, raw, &c) {
			continue
		}
		n := pool.NewItem{Contact: c.Contact, Priority: in.Priority, Payload: c.Payload}
		if c.Priority != nil {
			n.Priority = *c.Priority
		}
		var ok bool
		if n.ContactUUID, ok = parseUUID(c.ContactUUID); !ok {
			badUUID(prefix+"contact_uuid", c.ContactUUID)
		}
		items = append(items, n)
	}
	if bad > maxListedErrors {
		v.Add("contact_uuids", validate.RuleFormat, fmt.Sprintf("%d more invalid UUIDs not listed", bad-maxListedErrors))
	}
	if err := v.Err(); err != nil {
		return err
	}
	// The engine's field names (items[k].phone_number) are the request's.
	if _, err := pool.PrepareItems(items); err != nil {
		var fe validate.Errors
		if errors.As(err, &fe) {
			for _, f := range fe {
				v.Add(requestField(f.Field, nu), f.Rule, f.Message)
			}
			return v.Err()
		}
		return err
	}
	res, err := s.eng.Add(r.Context(), id, items...)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Contacts added successfully", res)
	return nil
}

// requestField names the field of the request behind a field of the
// engine's batch, "items[k].x": the k-th element of contact_uuids, then of
// contacts (nu contact_uuids come first).
func requestField(field string, nu int) string {
	var k int
	var rest string
	if n, err := fmt.Sscanf(field, "items[%d]", &k); n != 1 || err != nil {
		return field
	}
	_, rest, _ = strings.Cut(field, "]")
	if k < nu {
		return fmt.Sprintf("contact_uuids[%d]", k)
	}
	return fmt.Sprintf("contacts[%d]%s", k-nu, rest)
}

// decodeObject decodes the JSON object raw, an element of a request's
// list, into dst as decode does a whole body: each unknown field and each
// value of the wrong type is a failure of v named prefix + the field. It
// reports whether raw was decoded.
func decodeObject(v *validate.Validator, prefix string, raw json.RawMessage, dst any) bool {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		v.Add(strings.TrimSuffix(prefix, "."), RuleType, "must be an object")
		return false
	}
	types := map[string]reflect.Type{}
	for _, f := range jsonFields(dst) {
		types[f.name] = f.typ
	}
	ok := true
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		typ, known := types[k]
		if !known {
			v.Add(prefix+k, RuleUnknown, "is not a field of a contact")
			ok = false
			continue
		}
		if err := json.Unmarshal(fields[k], reflect.New(typ).Interface()); err != nil {
			v.Add(prefix+k, RuleType, "must be "+jsonKind(typ))
			ok = false
		}
	}
	return ok && json.Unmarshal(raw, dst) == nil
}

// listContacts: GET /api/v1/pools/{uuid}/contacts?page=&per_page=&status=&search=.
// The engine validates per_page's upper bound, the status and the search.
func (s *server) listContacts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	q := newQuery(r)
	page, perPage := q.page()
	in := pool.ItemQuery{Page: page, PerPage: perPage, Status: pool.Status(q.q.Get("status")), Search: q.q.Get("search")}
	if err := q.err(); err != nil {
		return err
	}
	pg, err := s.eng.Items(r.Context(), id, in)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pool contacts retrieved successfully", pg)
	return nil
}
