package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// MaxContactsPerRequest is the most contact UUIDs one add request may carry.
// At 39 bytes a UUID in JSON, 10,000 of them fit well within MaxBodyBytes.
const MaxContactsPerRequest = 10_000

// addContactsRequest is the body of POST /api/v1/pools/{uuid}/contacts:
// the API's contact_uuids (with one priority for all), and poolq's contacts,
// each with the contact's fields the item keeps (see contactRequest). The
// UUIDs are strings, not uuid.UUID, so that a malformed one is a 422 naming
// its index rather than a 400 for the whole body.
type addContactsRequest struct {
	ContactUUIDs []string          `json:"contact_uuids"`
	Priority     int               `json:"priority"`
	Contacts     []json.RawMessage `json:"contacts"`

	refused map[int]bool // indexes of contact_uuids that decode refused
}

func (r *addContactsRequest) keepRefused(field string, idx []int) {
	if field == "contact_uuids" {
		r.refused = indexSet(idx)
	}
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
func (s *server) addContacts(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	var in addContactsRequest
	v := &q.v
	if err := decode(w, r, v, &in, false); err != nil {
		return err
	}
	nu, nc := len(in.ContactUUIDs), len(in.Contacts)
	switch n := nu + nc; {
	case n == 0:
		if !v.Errors().Has("contacts") && !v.Errors().Has("contact_uuids") { // else decode said what is wrong with them
			v.Add("contact_uuids", validate.RuleRequired, "must hold at least one contact UUID (or give contacts)")
		}
		return v.Err()
	case n > MaxContactsPerRequest:
		v.Add("contact_uuids", validate.RuleLength,
			fmt.Sprintf("must hold at most %d contacts with contacts (got %d); send several requests", MaxContactsPerRequest, n))
		return v.Err()
	}
	items := make([]pool.NewItem, 0, nu+nc)
	bad := min(len(in.refused), maxListedErrors) // listed by decode
	badUUID := func(field, raw string) {
		if bad++; bad <= maxListedErrors {
			v.Add(field, validate.RuleFormat, uuidProblem(raw))
		}
	}
	for i, raw := range in.ContactUUIDs {
		c, ok := parseUUID(raw)
		if !ok && !in.refused[i] {
			badUUID(fmt.Sprintf("contact_uuids[%d]", i), raw)
		}
		items = append(items, pool.NewItem{ContactUUID: c, Priority: in.Priority})
	}
	for i, raw := range in.Contacts {
		prefix := fmt.Sprintf("contacts[%d].", i)
		var c contactRequest
		if !decodeObject(v, prefix, raw, &c) {
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
		checkItem(v, prefix, n)
		items = append(items, n)
	}
	if bad > maxListedErrors {
		v.Add("contact_uuids", validate.RuleFormat, fmt.Sprintf("%d more invalid UUIDs not listed", bad-maxListedErrors))
	}
	if err := v.Err(); err != nil {
		return err
	}
	res, err := s.eng.Add(r.Context(), id, items...)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Contacts added successfully", res)
	return nil
}

// checkItem adds to v the failures of the engine's rules on n's contact
// fields and payload (pool.PrepareItems), named prefix + the field. The
// contact UUID is not checked again: parseUUID has refused a bad one.
func checkItem(v *validate.Validator, prefix string, n pool.NewItem) {
	_, err := pool.PrepareItems([]pool.NewItem{n})
	var fe validate.Errors
	errors.As(err, &fe)
	for _, f := range fe {
		if field := strings.TrimPrefix(f.Field, "items[0]."); field != "contact_uuid" {
			v.Add(prefix+field, f.Rule, f.Message)
		}
	}
}

// decodeObject decodes the JSON object raw, an element of a request's
// list, into dst as decode does a whole body: each unknown field, each
// value of the wrong type and each value that is not UTF-8 is a failure of
// v named prefix + the field, and the other fields are decoded. It reports
// whether raw was an object.
func decodeObject(v *validate.Validator, prefix string, raw json.RawMessage, dst any) bool {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		v.Add(strings.TrimSuffix(prefix, "."), RuleType, "must be an object")
		return false
	}
	if err := decodeFields(v, prefix, fields, repeatedKeys(raw), dst, "a contact", nil); err != nil {
		v.Add(strings.TrimSuffix(prefix, "."), RuleType, "must be an object of a contact's fields")
		return false
	}
	return true
}

// listContacts: GET /api/v1/pools/{uuid}/contacts?page=&per_page=&status=&search=.
// The query's own rules (per_page's upper bound, status, search) join the
// handler's checks, so that one 422 names every bad parameter.
func (s *server) listContacts(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	page, perPage := q.page()
	in := pool.ItemQuery{Page: page, PerPage: perPage, Status: pool.Status(q.q.Get("status")), Search: q.q.Get("search")}
	if _, err := in.Normalize(); err != nil {
		q.v.Merge("", err) // every failing parameter in one answer
	}
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
