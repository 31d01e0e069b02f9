package main

import (
	"fmt"
	"net/http"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// MaxContactsPerRequest is the most contact UUIDs one add request may carry.
// At 39 bytes a UUID in JSON, 10,000 of them fit well within MaxBodyBytes.
const MaxContactsPerRequest = 10_000

// maxListedErrors bounds the bad UUIDs a 422 lists one by one.
const maxListedErrors = 20

// addContactsRequest is the body of POST /api/v1/pools/{uuid}/contacts. The
// UUIDs are strings, not uuid.UUID, so that a malformed one is a 422 naming
// its index rather than a 400 for the whole body.
type addContactsRequest struct {
	ContactUUIDs []string `json:"contact_uuids"`
	Priority     int      `json:"priority"`
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
	var items []pool.NewItem
	switch n := len(in.ContactUUIDs); {
	case n == 0:
		v.Add("contact_uuids", validate.RuleRequired, "must hold at least one contact UUID")
	case n > MaxContactsPerRequest:
		v.Add("contact_uuids", validate.RuleLength,
			fmt.Sprintf("must hold at most %d contact UUIDs (got %d); send several requests", MaxContactsPerRequest, n))
	default:
		items = make([]pool.NewItem, n)
		bad := 0
		for i, raw := range in.ContactUUIDs {
			c, ok := parseUUID(raw)
			if !ok {
				if bad++; bad <= maxListedErrors {
					v.Add(fmt.Sprintf("contact_uuids[%d]", i), validate.RuleFormat, uuidProblem(raw))
				}
				continue
			}
			items[i] = pool.NewItem{ContactUUID: c, Priority: in.Priority}
		}
		if bad > maxListedErrors {
			v.Add("contact_uuids", validate.RuleFormat, fmt.Sprintf("%d more invalid UUIDs not listed", bad-maxListedErrors))
		}
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

// listContacts: GET /api/v1/pools/{uuid}/contacts?page=&per_page=&status=.
// The engine validates per_page's upper bound and the status.
func (s *server) listContacts(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	q := newQuery(r)
	page, perPage := q.page()
	in := pool.ItemQuery{Page: page, PerPage: perPage, Status: pool.Status(q.q.Get("status"))}
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
