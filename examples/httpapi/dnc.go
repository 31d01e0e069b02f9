package main

import (
	"fmt"
	"net/http"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/validate"
)

// dncRequest is the body of POST /api/v1/dnc. The UUIDs are strings, so
// that a malformed one is a 422 naming its index.
type dncRequest struct {
	ContactUUIDs []string `json:"contact_uuids"`

	refused map[int]bool // indexes of contact_uuids that decode refused
}

func (r *dncRequest) keepRefused(field string, idx []int) {
	if field == "contact_uuids" {
		r.refused = indexSet(idx)
	}
}

// dncAdded is the data of POST /api/v1/dnc: how many of the request's
// distinct contacts were put on the list, and how many were on it already.
type dncAdded struct {
	ContactsAdded         int `json:"contacts_added"`
	ContactsAlreadyListed int `json:"contacts_already_listed"`
}

// dncStatus is the data of GET /api/v1/dnc/{contact}.
type dncStatus struct {
	ContactUUID uuid.UUID `json:"contact_uuid"`
	DoNotCall   bool      `json:"do_not_call"`
}

// dncRemoved is the data of DELETE /api/v1/dnc/{contact}.
type dncRemoved struct {
	ContactUUID uuid.UUID `json:"contact_uuid"`
	Removed     bool      `json:"removed"`
}

// optedOut is the data of POST /api/v1/contacts/{uuid}/opt-out.
type optedOut struct {
	ContactUUID  uuid.UUID `json:"contact_uuid"`
	ItemsSkipped int       `json:"items_skipped"`
}

// contactPathNotFound is the 404 of a malformed contact UUID in the path:
// poolq keeps no contacts of its own, so only a malformed UUID names none.
func contactPathNotFound() *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Contact not found",
		Details: "a malformed contact UUID names no contact"}
}

// pathContactUUID returns the {contact} of the path, 404 for a malformed
// one.
func pathContactUUID(r *http.Request) (uuid.UUID, error) {
	c, ok := parseUUID(r.PathValue("contact"))
	if !ok {
		return uuid.Nil, contactPathNotFound()
	}
	return c, nil
}

// addDNC: POST /api/v1/dnc, body {"contact_uuids": [...]}: one
// transaction. Duplicates in the list are folded; contacts on the list
// already are counted, not an error.
func (s *server) addDNC(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in dncRequest
	v := &q.v
	if err := decode(w, r, v, &in, false); err != nil {
		return err
	}
	switch n := len(in.ContactUUIDs); {
	case n == 0:
		if !v.Errors().Has("contact_uuids") { // else decode said what is wrong with it
			v.Add("contact_uuids", validate.RuleRequired, "must hold at least one contact UUID")
		}
		return v.Err()
	case n > queue.MaxContactsPerCall:
		v.Add("contact_uuids", validate.RuleLength,
			fmt.Sprintf("must hold at most %d contact UUIDs (got %d); send several requests", queue.MaxContactsPerCall, n))
		return v.Err()
	}
	contacts := uuidList(v, "contact_uuids", in.ContactUUIDs, in.refused)
	if err := v.Err(); err != nil {
		return err
	}
	added, err := s.eng.AddDNC(r.Context(), contacts...)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Contacts added to the do-not-call list",
		dncAdded{ContactsAdded: added, ContactsAlreadyListed: len(contacts) - added})
	return nil
}

// listDNC: GET /api/v1/dnc?page=&per_page=, oldest entry first. The
// engine checks per_page's upper bound.
func (s *server) listDNC(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	page, perPage := q.page()
	in := campaign.DNCQuery{Page: page, PerPage: perPage}
	if _, err := in.Normalize(); err != nil {
		q.v.Merge("", err) // every failing parameter in one answer
	}
	if err := q.err(); err != nil {
		return err
	}
	pg, err := s.eng.DNC(r.Context(), in)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Do-not-call list retrieved successfully", pg)
	return nil
}

// getDNC: GET /api/v1/dnc/{contact}: whether the contact is on the list
// (200 either way: a dialer asks before it calls, and "no" is an answer,
// not an error).
func (s *server) getDNC(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	c, err := pathContactUUID(r)
	if err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	on, err := s.eng.IsDNC(r.Context(), c)
	if err != nil {
		return err
	}
	msg := "Contact is not on the do-not-call list"
	if on {
		msg = "Contact is on the do-not-call list"
	}
	s.ok(w, http.StatusOK, msg, dncStatus{ContactUUID: c, DoNotCall: on})
	return nil
}

// removeDNC: DELETE /api/v1/dnc/{contact}: idempotent, removed says
// whether the contact was on the list. The items the list skipped stay
// Skipped.
func (s *server) removeDNC(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	c, err := pathContactUUID(r)
	if err != nil {
		return err
	}
	if err := noBody(w, r, &q.v); err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	n, err := s.eng.RemoveDNC(r.Context(), c)
	if err != nil {
		return err
	}
	msg := "Contact was not on the do-not-call list"
	if n > 0 {
		msg = "Contact removed from the do-not-call list"
	}
	s.ok(w, http.StatusOK, msg, dncRemoved{ContactUUID: c, Removed: n > 0})
	return nil
}

// optOut: POST /api/v1/contacts/{contact}/opt-out: records the opt-out and
// skips the contact's waiting items in the pools whose rule has
// remove_on_opt_out, in one transaction. The body may only be empty or
// {}. Opting out again is harmless.
func (s *server) optOut(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	c, err := pathContactUUID(r)
	if err != nil {
		return err
	}
	v := &q.v
	if err := noBody(w, r, v); err != nil {
		return err
	}
	if err := v.Err(); err != nil {
		return err
	}
	n, err := s.eng.OptOut(r.Context(), c)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Contact opted out", optedOut{ContactUUID: c, ItemsSkipped: n})
	return nil
}
