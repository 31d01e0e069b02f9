package main

import (
	"net/http"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// readOnlyPool are the fields of a pool (and its detail) that a client
// reads but cannot set: a create or update that sends them back (GET, edit,
// PUT) has them ignored.
var readOnlyPool = []string{"uuid", "contacts_count", "created_at", "updated_at", "status_counts", "campaigns"}

// createPool: POST /api/v1/pools, body pool.CreateParams.
func (s *server) createPool(w http.ResponseWriter, r *http.Request) error {
	var in pool.CreateParams
	var v validate.Validator
	if err := decode(w, r, &v, &in, false, readOnlyPool...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if err := v.Err(); err != nil {
		return err
	}
	p, err := s.eng.CreatePool(r.Context(), in)
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
func (s *server) listPools(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
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
func (s *server) getPool(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	d, err := s.eng.Pool(r.Context(), id)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pool retrieved successfully", d)
	return nil
}

// updatePool: PUT /api/v1/pools/{uuid}, body pool.UpdateParams: a partial
// update, only the fields sent change.
func (s *server) updatePool(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	var in pool.UpdateParams
	var v validate.Validator
	if err := decode(w, r, &v, &in, false, readOnlyPool...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if err := v.Err(); err != nil {
		return err
	}
	p, err := s.eng.UpdatePool(r.Context(), id, in)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Pool updated successfully", p)
	return nil
}

// deletePool: DELETE /api/v1/pools/{uuid}. 409 while an item is in flight.
func (s *server) deletePool(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
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
func (s *server) duplicatePool(w http.ResponseWriter, r *http.Request) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	var in pool.DuplicateParams
	var v validate.Validator
	if err := decode(w, r, &v, &in, true); err != nil {
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
