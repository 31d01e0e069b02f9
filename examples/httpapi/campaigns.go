package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
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
// cannot set: sent back (GET, edit, PUT), they are ignored.
var (
	readOnlyRule     = []string{"uuid", "created_at", "updated_at"}
	readOnlyCampaign = []string{"uuid", "status", "rule_uuid", "pool_uuids", "created_at", "updated_at"}
)

// createRule: POST /api/v1/rules, body campaign.CreateRuleParams.
func (s *server) createRule(w http.ResponseWriter, r *http.Request) error {
	var in campaign.CreateRuleParams
	var v validate.Validator
	if err := decode(w, r, &v, &in, false, readOnlyRule...); err != nil {
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
func (s *server) listRules(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
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
func (s *server) getRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Rule")
	if err != nil {
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
func (s *server) updateRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Rule")
	if err != nil {
		return err
	}
	var in campaign.UpdateRuleParams
	var v validate.Validator
	if err := decode(w, r, &v, &in, false, readOnlyRule...); err != nil {
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
func (s *server) deleteRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Rule")
	if err != nil {
		return err
	}
	if err := s.eng.DeleteRule(r.Context(), id); err != nil {
		return orNotFound(err, "Rule")
	}
	s.ok(w, http.StatusOK, "Rule deleted successfully", nil)
	return nil
}

// createCampaignRequest is the body of POST /api/v1/campaigns; rule_uuid
// is a string, so that a malformed one is a 422 naming it.
type createCampaignRequest struct {
	Name     string  `json:"name"`
	RuleUUID *string `json:"rule_uuid"`
	TimeZone string  `json:"timezone"`
}

// createCampaign: POST /api/v1/campaigns, a Draft.
func (s *server) createCampaign(w http.ResponseWriter, r *http.Request) error {
	var in createCampaignRequest
	var v validate.Validator
	if err := decode(w, r, &v, &in, false, "uuid", "status", "pool_uuids", "created_at", "updated_at"); err != nil {
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
func (s *server) listCampaigns(w http.ResponseWriter, r *http.Request) error {
	q := newQuery(r)
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
func (s *server) getCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	c, err := s.eng.Campaign(r.Context(), id)
	if err != nil {
		return orNotFound(err, "Campaign")
	}
	s.ok(w, http.StatusOK, "Campaign retrieved successfully", c)
	return nil
}

// updateCampaign: PUT /api/v1/campaigns/{uuid}, body campaign.UpdateParams
// (name, timezone); the status moves through the action endpoints, the
// rule through PUT …/rule.
func (s *server) updateCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	var in campaign.UpdateParams
	var v validate.Validator
	if err := decode(w, r, &v, &in, false, readOnlyCampaign...); err != nil {
		return err
	}
	v.Merge("", in.Validate())
	if err := v.Err(); err != nil {
		return err
	}
	c, err := s.eng.UpdateCampaign(r.Context(), id, in)
	if err != nil {
		return orNotFound(err, "Campaign")
	}
	s.ok(w, http.StatusOK, "Campaign updated successfully", c)
	return nil
}

// deleteCampaign: DELETE /api/v1/campaigns/{uuid}. 409 while In Process or
// Paused.
func (s *server) deleteCampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
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
func (s *server) campaignAction(a campaign.Action) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := pathID(r, "Campaign")
		if err != nil {
			return err
		}
		var v validate.Validator
		if err := decode(w, r, &v, &struct{}{}, true); err != nil {
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
}

// attachPools: POST /api/v1/campaigns/{uuid}/pools: additive and
// idempotent; unknown pools are reported in pool_uuids_not_found, inactive
// ones are a 422 naming them.
func (s *server) attachPools(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	var in attachPoolsRequest
	var v validate.Validator
	if err := decode(w, r, &v, &in, false); err != nil {
		return err
	}
	if len(in.PoolUUIDs) == 0 {
		v.Add("pool_uuids", validate.RuleRequired, "must hold at least one pool UUID")
	}
	if len(in.PoolUUIDs) > pool.MaxPerPage {
		v.Add("pool_uuids", validate.RuleLength, fmt.Sprintf("must hold at most %d pool UUIDs", pool.MaxPerPage))
	}
	ids := make([]uuid.UUID, 0, len(in.PoolUUIDs))
	for i, raw := range in.PoolUUIDs {
		p, ok := parseUUID(raw)
		v.Check(ok, fmt.Sprintf("pool_uuids[%d]", i), validate.RuleFormat, uuidProblem(raw))
		ids = append(ids, p)
	}
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
func (s *server) detachPool(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	p, ok := parseUUID(r.PathValue("pool"))
	if !ok {
		return poolNotFound()
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
func (s *server) assignRule(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "Campaign")
	if err != nil {
		return err
	}
	var in assignRuleRequest
	var v validate.Validator
	if err := decode(w, r, &v, &in, false); err != nil {
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
