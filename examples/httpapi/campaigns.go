package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// notFound is the 404 of an unknown resource of kind ("Rule", "Campaign").
func notFound(kind string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: kind + " not found",
		Details: "no " + kind + " has this UUID"}
}

// orNotFound turns store.ErrNotFound into the 404 of kind.
func orNotFound(err error, kind string) error {
	if errors.Is(err, store.ErrNotFound) {
		return notFound(kind)
	}
	return err
}

// pathID returns the {uuid} of the path, the 404 of kind for a malformed
// one.
func pathID(r *http.Request, kind string) (uuid.UUID, error) {
	id, ok := parseUUID(r.PathValue("uuid"))
	if !ok {
		return uuid.Nil, notFound(kind)
	}
	return id, nil
}

// readOnlyRule and readOnlyCampaign are the fields a client reads but
// cannot set. Sent back (GET, edit, PUT), a rule's are ignored; a
// campaign's must hold the campaign's own values (see
// updateCampaignRequest).
var (
	readOnlyRule     = []string{"uuid", "created_at", "updated_at"}
	readOnlyCampaign = []string{"uuid", "status", "rule_uuid", "pool_uuids", "created_at", "updated_at"}
)

// howToChange says, for each read-only field of a campaign, how it
// changes: the answer to a PUT that tried to change it.
var howToChange = map[string]string{
	"uuid":       "a campaign's uuid never changes; PUT /api/v1/campaigns/{uuid} updates the campaign of the path",
	"status":     "change the status with POST /api/v1/campaigns/{uuid}/start, /pause, /resume, /complete or /archive",
	"rule_uuid":  "assign a rule with PUT /api/v1/campaigns/{uuid}/rule",
	"pool_uuids": "attach pools with POST /api/v1/campaigns/{uuid}/pools, detach one with DELETE /api/v1/campaigns/{uuid}/pools/{pool}",
	"created_at": "the server sets it",
	"updated_at": "the server sets it at every change: the campaign changed since it was read; read it again",
}

// createRule: POST /api/v1/rules, body campaign.CreateRuleParams.
func (s *server) createRule(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in campaign.CreateRuleParams
	v := &q.v
	if err := decode(w, r, v, &in, false, readOnlyRule...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if err := v.Err(); err != nil {
		return err
	}
	rule, err := s.eng.CreateRule(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/rules/"+rule.UUID.String())
	s.ok(w, http.StatusCreated, "Rule created successfully", rule)
	return nil
}

// listRules: GET /api/v1/rules?page=&per_page=&search=&type=.
func (s *server) listRules(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	page, perPage := q.page()
	in := campaign.RuleQuery{Page: page, PerPage: perPage, Type: campaign.RuleType(q.q.Get("type")), Search: q.q.Get("search")}
	if _, err := in.Normalize(); err != nil {
		q.v.Merge("", err) // every failing parameter in one answer
	}
	if err := q.err(); err != nil {
		return err
	}
	pg, err := s.eng.Rules(r.Context(), in)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Rules retrieved successfully", pg)
	return nil
}

// getRule: GET /api/v1/rules/{uuid}.
func (s *server) getRule(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Rule")
	if err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	rule, err := s.eng.Rule(r.Context(), id)
	if err != nil {
		return orNotFound(err, "Rule")
	}
	s.ok(w, http.StatusOK, "Rule retrieved successfully", rule)
	return nil
}

// updateRule: PUT /api/v1/rules/{uuid}, body campaign.UpdateRuleParams:
// partial, not retroactive. The engine checks every field against the
// stored rule, whose type decides which of them count.
func (s *server) updateRule(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Rule")
	if err != nil {
		return err
	}
	var in campaign.UpdateRuleParams
	v := &q.v
	if err := decode(w, r, v, &in, false, readOnlyRule...); err != nil {
		return err
	}
	if v.Err() != nil {
		// decode refused fields: the engine, which would write the others,
		// is not called, but its checks run here against the stored rule,
		// so that one 422 names every failing field.
		cur, err := s.eng.Rule(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound):
			v.Merge("", in.ValidateWithoutRule()) // a field error all the same, as the engine's
		case err != nil:
			return err
		default:
			_, _, err := in.Apply(cur)
			v.Merge("", err)
		}
		return v.Err()
	}
	rule, err := s.eng.UpdateRule(r.Context(), id, in)
	if err != nil {
		return orNotFound(err, "Rule")
	}
	s.ok(w, http.StatusOK, "Rule updated successfully", rule)
	return nil
}

// deleteRule: DELETE /api/v1/rules/{uuid}. 409 while a campaign uses it.
func (s *server) deleteRule(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Rule")
	if err != nil {
		return err
	}
	if err := noBody(w, r, &q.v); err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	if err := s.eng.DeleteRule(r.Context(), id); err != nil {
		if errors.Is(err, campaign.ErrConflict) {
			// Said here, not with the error's text: a store may find the
			// conflict itself (store/postgres: a campaign given the rule by
			// another server meanwhile, a foreign key), and its text names
			// the database's tables and constraints.
			return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: "Conflict",
				Details: "a campaign has this rule: assign its campaigns another rule (PUT /api/v1/campaigns/{uuid}/rule) or delete them first", Err: err}
		}
		return orNotFound(err, "Rule")
	}
	s.ok(w, http.StatusOK, "Rule deleted successfully", nil)
	return nil
}

// createCampaignRequest is the body of POST /api/v1/campaigns; rule_uuid
// is a string, so that a malformed one is a 422 naming it. A create makes
// a Draft without pools: a status or pool_uuids sent (the campaign's
// read-only fields the create would not apply) must be those of such a
// Draft, else a 201 would tell a client that "started" the campaign, or
// attached pools, that it did, while nothing is dialled. The engine has
// no create with pools in one transaction, and a create followed by an
// attach that fails (an inactive pool) would leave a campaign the client
// was told was not made: the client attaches them after the create.
type createCampaignRequest struct {
	Name     string  `json:"name"`
	RuleUUID *string `json:"rule_uuid"`
	TimeZone string  `json:"timezone"`
	readOnly map[string]json.RawMessage
}

func (in *createCampaignRequest) keepReadOnly(field string, val json.RawMessage) {
	if in.readOnly == nil {
		in.readOnly = map[string]json.RawMessage{}
	}
	in.readOnly[field] = val
}

// notOnCreate says, for each read-only field of a campaign a create
// checks, what the create makes and how the field changes after it.
var notOnCreate = map[string]string{
	"status":     `a campaign is created as a Draft ("status": "Draft", or leave it out); start it after the create with POST /api/v1/campaigns/{uuid}/start`,
	"pool_uuids": "a campaign is created without pools ([] or leave it out); attach them after the create with POST /api/v1/campaigns/{uuid}/pools",
}

// checkReadOnly adds to v a failure for each status or pool_uuids of in
// that is not a new Draft's. The other read-only fields (uuid, created_at,
// updated_at) are the server's to set, and ignored: the 201 and its
// Location give the campaign's own.
func (in *createCampaignRequest) checkReadOnly(v *validate.Validator) {
	draft := campaign.Campaign{Status: campaign.Draft}
	for _, f := range slices.Sorted(maps.Keys(in.readOnly)) {
		if how, ok := notOnCreate[f]; ok && !sameAsStored(draft, f, in.readOnly[f]) {
			v.Add(f, RuleReadOnly, "is not set by a create: "+how)
		}
	}
}

// createCampaign: POST /api/v1/campaigns, a Draft without pools (see
// createCampaignRequest).
func (s *server) createCampaign(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in createCampaignRequest
	v := &q.v
	if err := decode(w, r, v, &in, false, readOnlyCampaign...); err != nil {
		return err
	}
	params := campaign.CreateParams{Name: in.Name, TimeZone: in.TimeZone}
	if in.RuleUUID != nil {
		id, ok := parseUUID(*in.RuleUUID)
		if v.Check(ok, "rule_uuid", validate.RuleFormat, uuidProblem(*in.RuleUUID)) {
			params.RuleUUID = &id
		}
	}
	if _, err := campaign.New(uuid.Nil, params, time.Now()); err != nil {
		v.Merge("", err)
	}
	in.checkReadOnly(v)
	if err := v.Err(); err != nil {
		return err
	}
	c, err := s.eng.CreateCampaign(r.Context(), params)
	if errors.Is(err, store.ErrNotFound) {
		v.Add("rule_uuid", validate.RuleFormat, "no rule has this UUID")
		return v.Err()
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/campaigns/"+c.UUID.String())
	s.ok(w, http.StatusCreated, "Campaign created successfully", c)
	return nil
}

// listCampaigns: GET /api/v1/campaigns?page=&per_page=&search=&status=&rule_uuid=.
func (s *server) listCampaigns(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	page, perPage := q.page()
	in := campaign.Query{Page: page, PerPage: perPage, Status: campaign.Status(q.q.Get("status")), Search: q.q.Get("search")}
	if raw := q.q.Get("rule_uuid"); raw != "" {
		id, ok := parseUUID(raw)
		if q.v.Check(ok, "rule_uuid", validate.RuleFormat, uuidProblem(raw)) {
			in.RuleUUID = &id
		}
	}
	if _, err := in.Normalize(); err != nil {
		q.v.Merge("", err) // every failing parameter in one answer
	}
	if err := q.err(); err != nil {
		return err
	}
	pg, err := s.eng.Campaigns(r.Context(), in)
	if err != nil {
		return err
	}
	s.ok(w, http.StatusOK, "Campaigns retrieved successfully", pg)
	return nil
}

// getCampaign: GET /api/v1/campaigns/{uuid}.
func (s *server) getCampaign(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	c, err := s.eng.Campaign(r.Context(), id)
	if err != nil {
		return orNotFound(err, "Campaign")
	}
	s.ok(w, http.StatusOK, "Campaign retrieved successfully", c)
	return nil
}

// updateCampaignRequest is the body of PUT /api/v1/campaigns/{uuid}: the
// fields that change (name, timezone), and the read-only ones a client
// sent back, which must hold the campaign's own values. Ignoring another
// value would answer 200 to a client that "paused" a running campaign
// this way, while its calls go on.
type updateCampaignRequest struct {
	campaign.UpdateParams
	readOnly map[string]json.RawMessage
}

func (in *updateCampaignRequest) keepReadOnly(field string, val json.RawMessage) {
	if in.readOnly == nil {
		in.readOnly = map[string]json.RawMessage{}
	}
	in.readOnly[field] = val
}

// checkReadOnly adds to v a failure for each read-only field of in whose
// value is not c's own.
func (in *updateCampaignRequest) checkReadOnly(v *validate.Validator, c campaign.Campaign) {
	for _, f := range slices.Sorted(maps.Keys(in.readOnly)) {
		if !sameAsStored(c, f, in.readOnly[f]) {
			v.Add(f, RuleReadOnly, "is read-only, and differs from the campaign's (send back the value read, or leave it out): "+howToChange[f])
		}
	}
}

// sameAsStored reports whether val, sent for the read-only field of c,
// holds c's own value: the same JSON once decoded into the field's type
// and marshalled as the campaign is, so that a UUID in capitals or a time
// of the same second in another RFC 3339 form count as the same;
// pool_uuids in any order. A value that does not decode is not the same.
func sameAsStored(c campaign.Campaign, field string, val json.RawMessage) bool {
	sent := c
	var err error
	switch field {
	case "uuid":
		err = json.Unmarshal(val, &sent.UUID)
	case "status":
		err = json.Unmarshal(val, &sent.Status)
	case "rule_uuid":
		sent.RuleUUID = nil
		err = json.Unmarshal(val, &sent.RuleUUID)
	case "pool_uuids":
		sent.PoolUUIDs = nil
		err = json.Unmarshal(val, &sent.PoolUUIDs)
		c.PoolUUIDs = slices.Clone(c.PoolUUIDs)
		for _, ids := range [][]uuid.UUID{c.PoolUUIDs, sent.PoolUUIDs} {
			slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		}
	case "created_at":
		err = json.Unmarshal(val, (*pool.Timestamp)(&sent.CreatedAt))
	case "updated_at":
		err = json.Unmarshal(val, (*pool.Timestamp)(&sent.UpdatedAt))
	default:
		return false
	}
	if err != nil {
		return false
	}
	stored, err1 := json.Marshal(c)
	got, err2 := json.Marshal(sent)
	return err1 == nil && err2 == nil && bytes.Equal(stored, got)
}

// updateCampaign: PUT /api/v1/campaigns/{uuid}, body updateCampaignRequest
// (name, timezone); the status moves through the action endpoints, the
// rule through PUT …/rule, the pools through …/pools. A read-only field
// is accepted only with the campaign's own value (a 422 otherwise); it is
// checked against the campaign as read before the update, in a
// transaction of its own.
func (s *server) updateCampaign(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	var in updateCampaignRequest
	v := &q.v
	if err := decode(w, r, v, &in, false, readOnlyCampaign...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if len(in.readOnly) > 0 {
		cur, err := s.eng.Campaign(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound): // the update's 404, or the 422 of the other fields
		case err != nil:
			return err
		default:
			in.checkReadOnly(v, cur)
		}
	}
	if err := v.Err(); err != nil {
		return err
	}
	c, err := s.eng.UpdateCampaign(r.Context(), id, in.UpdateParams)
	if err != nil {
		return orNotFound(err, "Campaign")
	}
	s.ok(w, http.StatusOK, "Campaign updated successfully", c)
	return nil
}

// deleteCampaign: DELETE /api/v1/campaigns/{uuid}. 409 while In Process or
// Paused.
func (s *server) deleteCampaign(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	if err := noBody(w, r, &q.v); err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	if err := s.eng.DeleteCampaign(r.Context(), id); err != nil {
		return orNotFound(err, "Campaign")
	}
	s.ok(w, http.StatusOK, "Campaign deleted successfully", nil)
	return nil
}

// campaignAction: POST /api/v1/campaigns/{uuid}/{action}: start, pause,
// resume, complete, archive. 409 WRONG_STATUS from a status the action
// does not apply to; 409 CONFLICT when another campaign governs a pool.
// The body may only be empty or {}.
func (s *server) campaignAction(a campaign.Action) handler {
	return func(w http.ResponseWriter, r *http.Request, q *queryParams) error {
		id, err := pathID(r, "Campaign")
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
		var c campaign.Campaign
		switch ctx := r.Context(); a {
		case campaign.Start:
			c, err = s.eng.StartCampaign(ctx, id)
		case campaign.Pause:
			c, err = s.eng.PauseCampaign(ctx, id)
		case campaign.Resume:
			c, err = s.eng.ResumeCampaign(ctx, id)
		case campaign.Complete:
			c, err = s.eng.CompleteCampaign(ctx, id)
		case campaign.Archive:
			c, err = s.eng.ArchiveCampaign(ctx, id)
		default:
			return fmt.Errorf("httpapi: no campaign action %q", a)
		}
		if err != nil {
			return orNotFound(err, "Campaign")
		}
		s.ok(w, http.StatusOK, "Campaign is "+string(c.Status), c)
		return nil
	}
}

// attachPoolsRequest is the body of POST /api/v1/campaigns/{uuid}/pools.
type attachPoolsRequest struct {
	PoolUUIDs []string `json:"pool_uuids"`

	refused map[int]bool // indexes of pool_uuids that decode refused
}

func (r *attachPoolsRequest) keepRefused(field string, idx []int) {
	if field == "pool_uuids" {
		r.refused = indexSet(idx)
	}
}

// attachPools: POST /api/v1/campaigns/{uuid}/pools: additive and
// idempotent; unknown pools are reported in pool_uuids_not_found, inactive
// ones are a 422 naming them.
func (s *server) attachPools(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	var in attachPoolsRequest
	v := &q.v
	if err := decode(w, r, v, &in, false); err != nil {
		return err
	}
	if len(in.PoolUUIDs) == 0 && !v.Errors().Has("pool_uuids") {
		v.Add("pool_uuids", validate.RuleRequired, "must hold at least one pool UUID")
	}
	// Repeats folded: the engine's bound (queue.MaxPoolsPerCall) is then on
	// the distinct pools named, as the campaign's is.
	ids := uuidList(v, "pool_uuids", in.PoolUUIDs, in.refused)
	if err := v.Err(); err != nil {
		return err
	}
	res, err := s.eng.AttachPools(r.Context(), id, ids...)
	if err != nil {
		return orNotFound(err, "Campaign")
	}
	s.ok(w, http.StatusOK, "Pools attached to campaign", res)
	return nil
}

// detachPool: DELETE /api/v1/campaigns/{uuid}/pools/{pool}.
func (s *server) detachPool(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	p, ok := parseUUID(r.PathValue("pool"))
	if !ok {
		return poolNotFound()
	}
	if err := noBody(w, r, &q.v); err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}
	if _, err := s.eng.Campaign(r.Context(), id); err != nil {
		return orNotFound(err, "Campaign")
	}
	detached, err := s.eng.DetachPool(r.Context(), id, p)
	if err != nil {
		return err // the pool's 404, or 409 IN_FLIGHT (a shared contact in a call)
	}
	s.ok(w, http.StatusOK, "Pool detached from campaign", map[string]any{"campaign_uuid": id, "pool_uuid": p, "detached": detached})
	return nil
}

// assignRuleRequest is the body of PUT /api/v1/campaigns/{uuid}/rule.
type assignRuleRequest struct {
	RuleUUID string `json:"rule_uuid"`
}

// assignRule: PUT /api/v1/campaigns/{uuid}/rule: assigns or replaces the
// campaign's rule. The data is the campaign's UUID and the rule.
func (s *server) assignRule(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	var in assignRuleRequest
	v := &q.v
	if err := decode(w, r, v, &in, false); err != nil {
		return err
	}
	ruleID, ok := parseUUID(in.RuleUUID)
	v.Check(ok, "rule_uuid", validate.RuleFormat, uuidProblem(in.RuleUUID))
	if err := v.Err(); err != nil {
		return err
	}
	if _, err := s.eng.Campaign(r.Context(), id); err != nil {
		return orNotFound(err, "Campaign")
	}
	if _, err := s.eng.AssignRule(r.Context(), id, ruleID); err != nil {
		return orNotFound(err, "Rule")
	}
	rule, err := s.eng.Rule(r.Context(), ruleID)
	if err != nil {
		return orNotFound(err, "Rule")
	}
	// The rule's fields beside campaign_uuid (embedding the Rule would
	// promote its MarshalJSON and drop campaign_uuid).
	raw, err := json.Marshal(rule)
	if err != nil {
		return err
	}
	out := map[string]json.RawMessage{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return err
	}
	out["campaign_uuid"], _ = json.Marshal(id) // a UUID always marshals
	s.ok(w, http.StatusOK, "Rule assigned to campaign", out)
	return nil
}
