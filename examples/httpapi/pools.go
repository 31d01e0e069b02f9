package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// readOnlyPool are the fields of a pool (and its detail) that a client
// reads but cannot set: a create or update that sends them back (GET, edit,
// PUT) has them ignored, but for campaigns (see poolCampaigns).
var readOnlyPool = []string{"uuid", "contacts_count", "created_at", "updated_at", "status_counts", "campaigns"}

// poolCampaigns keeps the campaigns a create or update of a pool sends
// back: the campaigns the pool is attached to, which only the campaign
// endpoints change. They must be the pool's own (none, on a create), else
// a 200 or 201 would tell a client that attached the pool to a campaign
// this way (or detached it, or "paused" the campaign) that it did, while
// the pool is dialled, or held, as before. The other read-only fields are
// counts and times the server keeps, which change under a client that
// read them: ignored.
type poolCampaigns struct {
	campaigns json.RawMessage // nil when not sent, or null
}

func (c *poolCampaigns) keepReadOnly(field string, val json.RawMessage) {
	if field == "campaigns" {
		c.campaigns = val
	}
}

// howToAttach says how a pool's campaigns change.
const howToAttach = "attach a pool with POST /api/v1/campaigns/{uuid}/pools, detach it with DELETE /api/v1/campaigns/{uuid}/pools/{pool}; " +
	"a campaign's status changes with POST /api/v1/campaigns/{uuid}/start, /pause, /resume, /complete or /archive"

// check adds to v a failure when the campaigns sent are not want: other
// campaigns, in any order (a value that does not decode is not want). Only
// the attachments are compared: a campaign's name and status are the
// campaign's, and change under a client that read the pool (a campaign
// completes between its GET and its PUT); an unrelated edit sent back with
// them is not refused for that.
func (c poolCampaigns) check(v *validate.Validator, want []pool.CampaignRef, create bool) {
	if c.campaigns == nil {
		return
	}
	var sent []pool.CampaignRef
	if err := json.Unmarshal(c.campaigns, &sent); err == nil && sameCampaigns(sent, want) {
		return
	}
	if create {
		v.Add("campaigns", RuleReadOnly, "is not set by a create: a pool is created attached to no campaign ([] or leave it out); "+howToAttach)
		return
	}
	v.Add("campaigns", RuleReadOnly, "is read-only, and differs from the campaigns the pool is attached to (send back the value read, or leave it out; read it again if the pool was attached or detached since): "+howToAttach)
}

// sameCampaigns reports whether a and b name the same campaigns, in any
// order.
func sameCampaigns(a, b []pool.CampaignRef) bool {
	ids := func(refs []pool.CampaignRef) []string {
		out := make([]string, 0, len(refs))
		for _, r := range refs {
			out = append(out, r.UUID.String())
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(ids(a), ids(b))
}

// createPoolRequest is the body of POST /api/v1/pools: pool.CreateParams,
// and the campaigns of a pool sent back, which must be none.
type createPoolRequest struct {
	pool.CreateParams
	poolCampaigns
}

// createPool: POST /api/v1/pools, body createPoolRequest.
func (s *server) createPool(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in createPoolRequest
	v := &q.v
	if err := decode(w, r, v, &in, false, readOnlyPool...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	in.check(v, nil, true)
	if err := v.Err(); err != nil {
		return err
	}
	p, err := s.eng.CreatePool(r.Context(), in.CreateParams)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/pools/"+p.UUID.String())
	s.ok(w, http.StatusCreated, "Pool created successfully", p)
	return nil
}

// listPools: GET /api/v1/pools?page=&per_page=&search=&type=&is_active=.
// The query's own rules (per_page's upper bound, type, search) join the
// handler's checks, so that one 422 names every bad parameter.
func (s *server) listPools(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	page, perPage := q.page()
	in := pool.PoolQuery{
		Page:     page,
		PerPage:  perPage,
		Type:     pool.Type(q.q.Get("type")),
		IsActive: q.bool("is_active"),
		Search:   q.q.Get("search"),
	}
	if _, err := in.Normalize(); err != nil {
		q.v.Merge("", err) // every failing parameter in one answer
	}
	if err := q.err(); err != nil {
		return err
	}
	pg, err := s.eng.Pools(r.Context(), in)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pools retrieved successfully", pg)
	return nil
}

// getPool: GET /api/v1/pools/{uuid}.
func (s *server) getPool(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	d, err := s.eng.Pool(r.Context(), id)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pool retrieved successfully", d)
	return nil
}

// updatePoolRequest is the body of PUT /api/v1/pools/{uuid}:
// pool.UpdateParams, and the campaigns of the pool sent back, which must
// be the pool's own.
type updatePoolRequest struct {
	pool.UpdateParams
	poolCampaigns
}

// updatePool: PUT /api/v1/pools/{uuid}, body updatePoolRequest: a partial
// update, only the fields sent change. Campaigns sent back are checked
// against the pool as read before the update, in a transaction of its
// own.
func (s *server) updatePool(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	var in updatePoolRequest
	v := &q.v
	if err := decode(w, r, v, &in, false, readOnlyPool...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if in.campaigns != nil {
		d, err := s.eng.Pool(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound): // the update's 404, or the 422 of the other fields
		case err != nil:
			return err
		default:
			in.check(v, d.Campaigns, false)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	p, err := s.eng.UpdatePool(r.Context(), id, in.UpdateParams)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pool updated successfully", p)
	return nil
}

// deletePool: DELETE /api/v1/pools/{uuid}. 409 while an item is in flight.
func (s *server) deletePool(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	if err := noBody(w, r, &q.v); err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	if err := s.eng.DeletePool(r.Context(), id); err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pool deleted successfully", nil)
	return nil
}

// duplicatePool: POST /api/v1/pools/{uuid}/duplicate, body
// pool.DuplicateParams, which may be empty.
func (s *server) duplicatePool(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	var in pool.DuplicateParams
	v := &q.v
	if err := decode(w, r, v, &in, true); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if err := v.Err(); err != nil {
		return err
	}
	d, err := s.eng.DuplicatePool(r.Context(), id, in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/pools/"+d.UUID.String())
	s.ok(w, http.StatusCreated, "Pool duplicated successfully", d)
	return nil
}
