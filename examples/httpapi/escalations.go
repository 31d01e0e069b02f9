package main

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/validate"
)

// escalationList is the data of GET /api/v1/escalations: a slice of the
// escalations in ID order and the cursor that continues it. NextAfter is
// the ID of the last escalation in Data, or the request's after when Data
// is empty, so that a consumer always passes it back as ?after=. Fewer
// than Limit escalations means the consumer has caught up (for now).
type escalationList struct {
	Data      []campaign.Escalation `json:"data"`
	After     int64                 `json:"after"`
	Limit     int                   `json:"limit"`
	NextAfter int64                 `json:"next_after"`
}

// listEscalations: GET /api/v1/escalations?after=&limit=&pool_uuid=.
// pool_uuid is a filter, not a lookup: escalations outlive their pools, so
// a pool that no longer exists is not a 404 (its escalations are listed).
func (s *server) listEscalations(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in campaign.EscalationQuery
	if raw := q.q.Get("after"); raw != "" {
		n, err := strconv.ParseInt(raw, 10, 64)
		if q.v.Check(err == nil, "after", validate.RuleFormat, fmt.Sprintf("must be an integer (got %s)", validate.Quote(raw))) {
			in.After = n
		}
	}
	in.Limit = q.int("limit", 0)
	if raw := q.q.Get("pool_uuid"); raw != "" {
		id, ok := parseUUID(raw)
		if q.v.Check(ok, "pool_uuid", validate.RuleFormat, uuidProblem(raw)) {
			in.PoolUUID = &id
		}
	}
	norm, err := in.Normalize()
	if err != nil {
		q.v.Merge("", err) // every failing parameter in one answer
	}
	if err := q.err(); err != nil {
		return err
	}
	list, err := s.eng.Escalations(r.Context(), norm)
	if err != nil {
		return err
	}
	out := escalationList{Data: list, After: norm.After, Limit: norm.Limit, NextAfter: norm.After}
	if out.Data == nil {
		out.Data = []campaign.Escalation{}
	}
	if n := len(list); n > 0 {
		out.NextAfter = list[n-1].ID
	}
	s.ok(w, http.StatusOK, "Escalations retrieved successfully", out)
	return nil
}
