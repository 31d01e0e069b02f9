package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// createRule creates a rule through the API and returns it.
func (b *testBundle) createRule(body map[string]any) campaign.Rule {
	b.t.Helper()
	res := b.do("POST", "/api/v1/rules", body)
	require.Equal(b.t, http.StatusCreated, res.Status, "body: %s", res.Body)
	return data[campaign.Rule](b.t, res)
}

// createCampaign creates a campaign through the API, with the rule when
// it is not nil, attaches pools and returns it.
func (b *testBundle) createCampaign(name string, rule *uuid.UUID, pools ...uuid.UUID) campaign.Campaign {
	b.t.Helper()
	body := map[string]any{"name": name}
	if rule != nil {
		body["rule_uuid"] = rule.String()
	}
	res := b.do("POST", "/api/v1/campaigns", body)
	require.Equal(b.t, http.StatusCreated, res.Status, "body: %s", res.Body)
	c := data[campaign.Campaign](b.t, res)
	if len(pools) > 0 {
		res := b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": pools})
		require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(b.t, len(pools), data[campaign.AttachResult](b.t, res).PoolsAttached)
	}
	return c
}

// act posts a campaign action and returns the response.
func (b *testBundle) act(id uuid.UUID, a campaign.Action) response {
	b.t.Helper()
	return b.do("POST", "/api/v1/campaigns/"+id.String()+"/"+string(a), nil)
}

func TestRules(t *testing.T) {
	t.Parallel()

	t.Run("CRUD", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.do("POST", "/api/v1/rules", map[string]any{"name": "  Business hours ", "max_total_calls": 2, "start_time": "09:00", "end_time": "17:30"})
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		require.Equal(t, "Rule created successfully", res.Env.Message)
		r := data[campaign.Rule](t, res)
		require.Equal(t, "/api/v1/rules/"+r.UUID.String(), res.Header.Get("Location"))
		require.Equal(t, "Business hours", r.Name)
		require.Equal(t, campaign.Call, r.Type)
		require.Equal(t, 2, r.MaxTotalCalls)
		m := dataMap(t, res)
		require.Equal(t, "09:00:00", m["start_time"])
		require.Equal(t, "17:30:00", m["end_time"])

		got := b.do("GET", "/api/v1/rules/"+r.UUID.String(), nil)
		require.Equal(t, http.StatusOK, got.Status, "body: %s", got.Body)
		require.Equal(t, r, data[campaign.Rule](t, got))

		// GET, edit, PUT: the read-only fields are ignored, the rest partial.
		m["max_calls_per_day"] = 2
		up := b.do("PUT", "/api/v1/rules/"+r.UUID.String(), m)
		require.Equal(t, http.StatusOK, up.Status, "body: %s", up.Body)
		require.Equal(t, 2, data[campaign.Rule](t, up).MaxCallsPerDay)
		up = b.do("PUT", "/api/v1/rules/"+r.UUID.String(), map[string]any{"name": "Evenings"})
		require.Equal(t, http.StatusOK, up.Status, "body: %s", up.Body)
		r2 := data[campaign.Rule](t, up)
		require.Equal(t, "Evenings", r2.Name)
		require.Equal(t, 2, r2.MaxCallsPerDay, "a partial update keeps what it does not send")

		b.createRule(map[string]any{"name": "Texts", "type": "text"})
		list := b.do("GET", "/api/v1/rules?type=text", nil)
		require.Equal(t, http.StatusOK, list.Status, "body: %s", list.Body)
		pg := data[campaign.RulePage](t, list)
		require.Equal(t, 1, pg.Total)
		require.Equal(t, "Texts", pg.Data[0].Name)
		require.Equal(t, campaign.Text, pg.Data[0].Type)
		list = b.do("GET", "/api/v1/rules?search=even", nil)
		require.Equal(t, []campaign.Rule{r2}, data[campaign.RulePage](t, list).Data)

		del := b.do("DELETE", "/api/v1/rules/"+r.UUID.String(), nil)
		require.Equal(t, http.StatusOK, del.Status, "body: %s", del.Body)
		require.Equal(t, "null", string(del.Env.Data))
		requireError(t, b.do("GET", "/api/v1/rules/"+r.UUID.String(), nil), http.StatusNotFound, CodeNotFound)
		requireError(t, b.do("DELETE", "/api/v1/rules/"+r.UUID.String(), nil), http.StatusNotFound, CodeNotFound)
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.createRule(map[string]any{"name": "Keep"})
		b.unchanged(func() {
			requireInvalid(t, b.do("POST", "/api/v1/rules", map[string]any{"name": "ab", "start_time": "25:00"}), "name", "start_time")
			requireInvalid(t, b.do("POST", "/api/v1/rules", map[string]any{"name": "Overnight", "start_time": "22:00", "end_time": "06:00"}), "end_time")
			requireInvalid(t, b.do("POST", "/api/v1/rules", map[string]any{"name": "Typo", "max_total_call": 3}), "max_total_call")
			requireInvalid(t, b.do("PUT", "/api/v1/rules/"+r.UUID.String(), map[string]any{"max_total_calls": 0}), "max_total_calls")
			requireInvalid(t, b.do("GET", "/api/v1/rules?type=fax&per_page=101", nil), "per_page", "type")
			requireError(t, b.do("POST", "/api/v1/rules", ""), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("GET", "/api/v1/rules/not-a-uuid", nil), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("PUT", "/api/v1/rules/"+uuid.NewString(), map[string]any{"name": "Other"}), http.StatusNotFound, CodeNotFound)
		})
	})

	t.Run("InUse", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.createRule(map[string]any{"name": "Used"})
		b.createCampaign("Spring", &r.UUID)
		b.unchanged(func() {
			requireError(t, b.do("DELETE", "/api/v1/rules/"+r.UUID.String(), nil), http.StatusConflict, CodeConflict)
		})
	})
}

// TestRules_ListEveryBadParameter: one 422 names every bad parameter, the
// handler's own (page) beside the query's rules (type, search).
func TestRules_ListEveryBadParameter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireInvalid(t, b.do("GET", "/api/v1/rules?page=0&type=fax", nil), "page", "type")
	requireInvalid(t, b.do("GET", "/api/v1/rules?per_page=-1&search=a%0Ab", nil), "per_page", "search")
}

// TestRules_UpdateEveryBadField: one 422 names every bad field of a PUT,
// those decode refuses (a wrong type) beside the rules' failures on the
// rest, as the stored rule's type decides them (a text rule ignores its
// caps), and the update writes nothing.
func TestRules_UpdateEveryBadField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	call := b.createRule(map[string]any{"name": "Rule one"})
	text := b.createRule(map[string]any{"name": "Texts", "type": "text"})
	path := func(r campaign.Rule) string { return "/api/v1/rules/" + r.UUID.String() }
	b.unchanged(func() {
		requireInvalid(t, b.do("PUT", path(call), `{"name": "x", "max_calls_per_day": "3"}`), "max_calls_per_day", "name")
		requireInvalid(t, b.do("PUT", path(call), `{"name": 5, "max_total_calls": 0}`), "name", "max_total_calls")
		requireInvalid(t, b.do("PUT", path(call), `{"name": "x", "max_calls_per_day": 0}`), "name", "max_calls_per_day")
		requireInvalid(t, b.do("PUT", path(text), `{"name": 5, "max_total_calls": 0}`), "name")
		requireInvalid(t, b.do("PUT", path(text), `{"name": "x", "max_total_calls": 0}`), "name")
		// An unknown rule: the fields bad whatever the rule, as the engine.
		unknown := "/api/v1/rules/" + uuid.NewString()
		requireInvalid(t, b.do("PUT", unknown, `{"name": "x", "max_calls_per_day": "3"}`), "max_calls_per_day", "name")
		requireInvalid(t, b.do("PUT", unknown, `{"name": "x", "max_calls_per_day": 0}`), "name")
		requireError(t, b.do("PUT", unknown, `{"max_calls_per_day": 0}`), http.StatusNotFound, CodeNotFound)
	})
}

func TestCampaigns(t *testing.T) {
	t.Parallel()

	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.atNoon() // inside the rule's default window
		p := b.createPool("Renewals", pool.FIFO, 1)
		b.addContacts(p.UUID, 2, 0)
		r := b.createRule(map[string]any{"name": "Business hours"})

		res := b.do("POST", "/api/v1/campaigns", map[string]any{"name": "Spring", "rule_uuid": r.UUID.String(), "timezone": "Europe/Paris"})
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		c := data[campaign.Campaign](t, res)
		require.Equal(t, "/api/v1/campaigns/"+c.UUID.String(), res.Header.Get("Location"))
		require.Equal(t, campaign.Draft, c.Status)
		require.Equal(t, &r.UUID, c.RuleUUID)
		require.Equal(t, []uuid.UUID{}, c.PoolUUIDs)

		missing := uuid.New()
		res = b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": []uuid.UUID{p.UUID, missing}})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, campaign.AttachResult{PoolsAttached: 1, PoolUUIDsNotFound: []uuid.UUID{missing}}, data[campaign.AttachResult](t, res))

		// A Draft holds its pools.
		requireError(t, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil), http.StatusConflict, CodePoolHeld)
		d := data[pool.Detail](t, b.do("GET", "/api/v1/pools/"+p.UUID.String(), nil))
		require.Equal(t, []pool.CampaignRef{{UUID: c.UUID, Name: "Spring", Status: string(campaign.Draft)}}, d.Campaigns)

		res = b.act(c.UUID, campaign.Start)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Campaign is In Process", res.Env.Message)
		require.Equal(t, campaign.InProcess, data[campaign.Campaign](t, res).Status)
		l := b.claim(p.UUID)
		require.Equal(t, http.StatusOK, b.settle(l, "complete", map[string]any{"token": l.Token}).Status)

		require.Equal(t, campaign.Paused, data[campaign.Campaign](t, b.act(c.UUID, campaign.Pause)).Status)
		requireError(t, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil), http.StatusConflict, CodePoolHeld)
		requireError(t, b.do("DELETE", "/api/v1/campaigns/"+c.UUID.String(), nil), http.StatusConflict, CodeConflict)
		require.Equal(t, campaign.InProcess, data[campaign.Campaign](t, b.act(c.UUID, campaign.Resume)).Status)
		require.Equal(t, campaign.Completed, data[campaign.Campaign](t, b.act(c.UUID, campaign.Complete)).Status)
		requireError(t, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil), http.StatusConflict, CodePoolHeld)

		// Detached, the pool dispatches on its own again.
		res = b.do("DELETE", "/api/v1/campaigns/"+c.UUID.String()+"/pools/"+p.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, true, dataMap(t, res)["detached"])
		b.claim(p.UUID)

		require.Equal(t, campaign.Archived, data[campaign.Campaign](t, b.act(c.UUID, campaign.Archive)).Status)
		res = b.do("DELETE", "/api/v1/campaigns/"+c.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		requireError(t, b.do("GET", "/api/v1/campaigns/"+c.UUID.String(), nil), http.StatusNotFound, CodeNotFound)
	})

	t.Run("WrongStatus", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.createCampaign("Spring", nil)
		b.unchanged(func() {
			for _, a := range []campaign.Action{campaign.Pause, campaign.Resume, campaign.Complete, campaign.Archive} {
				requireError(t, b.act(c.UUID, a), http.StatusConflict, CodeWrongStatus)
			}
			requireError(t, b.act(uuid.New(), campaign.Start), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/start", `{"now": true}`), http.StatusUnprocessableEntity, CodeValidation)
		})
	})

	t.Run("OneGoverningCampaign", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		first := b.createCampaign("First", nil, p.UUID)
		second := b.createCampaign("Second", nil, p.UUID)
		require.Equal(t, http.StatusOK, b.act(first.UUID, campaign.Start).Status)
		b.unchanged(func() {
			requireError(t, b.act(second.UUID, campaign.Start), http.StatusConflict, CodeConflict)
		})
	})

	t.Run("RuleCeiling", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.atNoon()                                  // inside the rule's default window
		p := b.createPool("Renewals", pool.FIFO, 1) // max_retries 3: four attempts on its own
		b.addContacts(p.UUID, 1, 0)
		r := b.createRule(map[string]any{"name": "Once", "max_total_calls": 1})
		c := b.createCampaign("Spring", &r.UUID, p.UUID)
		require.Equal(t, http.StatusOK, b.act(c.UUID, campaign.Start).Status)
		l := b.claim(p.UUID)
		res := b.settle(l, "fail", map[string]any{"token": l.Token})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, pool.StatusFailed, data[pool.Item](t, res).Status, "the rule's ceiling, not the pool's")
	})

	// A pool leaves its running campaign only while no contact it shares
	// with the others is in a call: 409 IN_FLIGHT, nothing changed.
	t.Run("DetachMidCall", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.atNoon() // inside the rule's default window
		a, p := b.createPool("Renewals", pool.Parallel, 5), b.createPool("Winback", pool.Parallel, 5)
		shared := b.addContacts(a.UUID, 1, 0)
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts", map[string]any{"contact_uuids": shared})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		r := b.createRule(map[string]any{"name": "Spring rule"})
		c := b.createCampaign("Spring", &r.UUID, a.UUID, p.UUID)
		require.Equal(t, http.StatusOK, b.act(c.UUID, campaign.Start).Status)
		require.Equal(t, shared[0], b.claim(a.UUID).ContactUUID)
		b.unchanged(func() {
			requireError(t, b.do("DELETE", "/api/v1/campaigns/"+c.UUID.String()+"/pools/"+a.UUID.String(), nil),
				http.StatusConflict, CodeInFlight)
		})
	})

	t.Run("AssignRule", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.createRule(map[string]any{"name": "Evenings"})
		c := b.createCampaign("Spring", nil)
		res := b.do("PUT", "/api/v1/campaigns/"+c.UUID.String()+"/rule", map[string]any{"rule_uuid": r.UUID})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		m := dataMap(t, res)
		require.Equal(t, c.UUID.String(), m["campaign_uuid"])
		require.Equal(t, r.UUID.String(), m["uuid"])
		got := data[campaign.Campaign](t, b.do("GET", "/api/v1/campaigns/"+c.UUID.String(), nil))
		require.Equal(t, &r.UUID, got.RuleUUID)

		b.unchanged(func() {
			requireInvalid(t, b.do("PUT", "/api/v1/campaigns/"+c.UUID.String()+"/rule", map[string]any{"rule_uuid": "nope"}), "rule_uuid")
			requireError(t, b.do("PUT", "/api/v1/campaigns/"+c.UUID.String()+"/rule", map[string]any{"rule_uuid": uuid.New()}), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("PUT", "/api/v1/campaigns/"+uuid.NewString()+"/rule", map[string]any{"rule_uuid": r.UUID}), http.StatusNotFound, CodeNotFound)
		})
	})

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		c := b.createCampaign("Spring", nil)
		res := b.do("PUT", "/api/v1/pools/"+p.UUID.String(), map[string]any{"is_active": false})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		b.unchanged(func() {
			requireInvalid(t, b.do("POST", "/api/v1/campaigns", map[string]any{"name": "x", "rule_uuid": "bad", "timezone": "Mars/Base"}), "rule_uuid", "name", "timezone")
			requireInvalid(t, b.do("POST", "/api/v1/campaigns", map[string]any{"name": "Ghost rule", "rule_uuid": uuid.NewString()}), "rule_uuid")
			requireInvalid(t, b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": []string{}}), "pool_uuids")
			requireInvalid(t, b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": []string{"bad"}}), "pool_uuids[0]")
			requireInvalid(t, b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": []uuid.UUID{p.UUID}}), "pool_uuids[0]")
			requireInvalid(t, b.do("PUT", "/api/v1/campaigns/"+c.UUID.String(), map[string]any{"name": ""}), "name")
			requireInvalid(t, b.do("GET", "/api/v1/campaigns?status=Running&rule_uuid=x", nil), "rule_uuid", "status")
			requireError(t, b.do("POST", "/api/v1/campaigns/"+uuid.NewString()+"/pools", map[string]any{"pool_uuids": []uuid.UUID{p.UUID}}), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("DELETE", "/api/v1/campaigns/"+c.UUID.String()+"/pools/bad", nil), http.StatusNotFound, CodeNotFound)
		})
	})

	t.Run("ListAndUpdate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		spring := b.createCampaign("Spring", nil)
		b.createCampaign("Autumn", nil)
		require.Equal(t, http.StatusOK, b.act(spring.UUID, campaign.Start).Status)
		pg := data[campaign.Page](t, b.do("GET", "/api/v1/campaigns?status=active", nil))
		require.Equal(t, 1, pg.Total)
		require.Equal(t, spring.UUID, pg.Data[0].UUID)
		pg = data[campaign.Page](t, b.do("GET", "/api/v1/campaigns?search=autu", nil))
		require.Equal(t, 1, pg.Total)
		require.Equal(t, "Autumn", pg.Data[0].Name)

		// GET, edit, PUT: the read-only fields go back as they were read.
		path := "/api/v1/campaigns/" + spring.UUID.String()
		m := dataMap(t, b.do("GET", path, nil))
		m["name"] = "Spring 2027"
		res := b.do("PUT", path, m)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		got := data[campaign.Campaign](t, res)
		require.Equal(t, "Spring 2027", got.Name)
		require.Equal(t, campaign.InProcess, got.Status)

		// Edited, one is refused: the status has its own endpoints.
		m = dataMap(t, b.do("GET", path, nil))
		m["status"] = "Archived"
		b.unchanged(func() {
			res := b.do("PUT", path, m)
			requireInvalid(t, res, "status")
			require.Contains(t, res.Env.Error.Details, "change the status with POST /api/v1/campaigns/{uuid}/start, /pause, /resume, /complete or /archive")
		})
	})
}

// TestCampaigns_UpdateEveryBadField: one 422 names every bad field of a
// PUT, those decode refuses (a wrong type) beside the rules' failures on
// the rest, and the update writes nothing.
func TestCampaigns_UpdateEveryBadField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.createCampaign("Camp one", nil)
	path := "/api/v1/campaigns/" + c.UUID.String()
	b.unchanged(func() {
		requireInvalid(t, b.do("PUT", path, `{"name": "x", "timezone": 5}`), "timezone", "name")
		requireInvalid(t, b.do("PUT", path, `{"name": 5, "timezone": "Mars/Base"}`), "name", "timezone")
		requireInvalid(t, b.do("PUT", "/api/v1/campaigns/"+uuid.NewString(), `{"name": "x", "timezone": 5}`), "timezone", "name")
	})
}

// TestCampaigns_UpdateReadOnlyFields: PUT /campaigns/{uuid} takes the
// campaign's read-only fields back only with the campaign's own values. A
// "pause" sent this way is a 422 saying which endpoint pauses, not a 200
// while the calls go on; so is any other read-only field changed.
func TestCampaigns_UpdateReadOnlyFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.atNoon() // inside the rule's default window
	p := b.createPool("Renewals", pool.FIFO, 1)
	other := b.createPool("Winbacks", pool.FIFO, 1)
	b.addContacts(p.UUID, 2, 0)
	r := b.createRule(map[string]any{"name": "Business hours"})
	c := b.createCampaign("Spring", &r.UUID, p.UUID, other.UUID)
	require.Equal(t, http.StatusOK, b.act(c.UUID, campaign.Start).Status)
	path := "/api/v1/campaigns/" + c.UUID.String()
	read := dataMap(t, b.do("GET", path, nil))

	t.Run("ErrChanged", func(t *testing.T) {
		for _, tc := range []struct {
			field string
			value any
			how   string
		}{
			{"status", "Paused", "change the status with POST /api/v1/campaigns/{uuid}/start, /pause"},
			{"rule_uuid", uuid.NewString(), "assign a rule with PUT /api/v1/campaigns/{uuid}/rule"},
			{"pool_uuids", []string{p.UUID.String()}, "attach pools with POST /api/v1/campaigns/{uuid}/pools, detach one with DELETE /api/v1/campaigns/{uuid}/pools/{pool}"},
			{"uuid", uuid.NewString(), "a campaign's uuid never changes"},
			{"created_at", "2023-11-07T05:31:56Z", "the server sets it"},
			{"updated_at", 5, "the campaign changed since it was read; read it again"},
		} {
			b.unchanged(func() {
				res := b.do("PUT", path, map[string]any{tc.field: tc.value, "name": "Spring again"})
				requireInvalid(t, res, tc.field)
				require.Contains(t, res.Env.Error.Details, tc.field+": is read-only, and differs from the campaign's")
				require.Contains(t, res.Env.Error.Details, tc.how)
			})
		}
		// Beside the other fields' failures, in one 422.
		b.unchanged(func() {
			requireInvalid(t, b.do("PUT", path, map[string]any{"name": "x", "status": "Paused"}), "name", "status")
		})
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "still running: %s", res.Body)
	})

	t.Run("OKSameValues", func(t *testing.T) {
		// The values read, in other spellings of the same values.
		created := data[campaign.Campaign](t, b.do("GET", path, nil)).CreatedAt
		body := map[string]any{
			"name":       "Spring 2027",
			"uuid":       strings.ToUpper(c.UUID.String()),
			"status":     read["status"],
			"rule_uuid":  read["rule_uuid"],
			"pool_uuids": []uuid.UUID{other.UUID, p.UUID},
			"created_at": created.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano),
			"updated_at": read["updated_at"],
		}
		res := b.do("PUT", path, body)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		got := data[campaign.Campaign](t, res)
		require.Equal(t, "Spring 2027", got.Name)
		require.Equal(t, campaign.InProcess, got.Status)

		// null is absent, as everywhere.
		res = b.do("PUT", path, map[string]any{"rule_uuid": nil, "status": nil})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, &r.UUID, data[campaign.Campaign](t, res).RuleUUID)
	})
}

// TestCampaigns_CreateReadOnlyFields: POST /campaigns makes a Draft
// without pools. A status or pools sent with it is a 422 saying which
// endpoint does it after the create, not a 201 for a campaign the client
// believes runs, or draws from its pools, while nothing is dialled; the
// values of a new Draft (and the server's uuid and times) are accepted.
func TestCampaigns_CreateReadOnlyFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	b.addContacts(p.UUID, 1, 0)

	t.Run("ErrNotADraft", func(t *testing.T) {
		for _, tc := range []struct {
			field string
			value any
			how   string
		}{
			{"status", "In Process", "start it after the create with POST /api/v1/campaigns/{uuid}/start"},
			{"status", "Active", "start it after the create with POST /api/v1/campaigns/{uuid}/start"},
			{"status", "draft", "a campaign is created as a Draft"},
			{"pool_uuids", []uuid.UUID{p.UUID}, "attach them after the create with POST /api/v1/campaigns/{uuid}/pools"},
			{"pool_uuids", "nope", "a campaign is created without pools"},
		} {
			b.unchanged(func() {
				res := b.do("POST", "/api/v1/campaigns", map[string]any{"name": "Spring", tc.field: tc.value})
				requireInvalid(t, res, tc.field)
				require.Contains(t, res.Env.Error.Details, tc.field+": is not set by a create: ")
				require.Contains(t, res.Env.Error.Details, tc.how)
			})
		}
		// Beside the other fields' failures, in one 422.
		b.unchanged(func() {
			requireInvalid(t, b.do("POST", "/api/v1/campaigns", map[string]any{"name": "x", "status": "In Process", "pool_uuids": []uuid.UUID{p.UUID}}),
				"name", "pool_uuids", "status")
		})
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "no campaign holds the pool: %s", res.Body)
	})

	t.Run("OKDraftValues", func(t *testing.T) {
		res := b.do("POST", "/api/v1/campaigns", map[string]any{
			"name": "Autumn", "status": "Draft", "pool_uuids": []string{},
			"uuid": uuid.NewString(), "created_at": "2023-11-07T05:31:56Z", "updated_at": nil,
		})
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		c := data[campaign.Campaign](t, res)
		require.Equal(t, campaign.Draft, c.Status)
		require.Equal(t, []uuid.UUID{}, c.PoolUUIDs)
		require.Equal(t, "/api/v1/campaigns/"+c.UUID.String(), res.Header.Get("Location"))
	})
}

// TestCampaigns_AttachElementOfWrongType: an element of pool_uuids that
// is not a string is named by its index, as a malformed UUID is.
func TestCampaigns_AttachElementOfWrongType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	c := b.createCampaign("Spring", nil)
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", `{"pool_uuids": ["`+p.UUID.String()+`", null, 7]}`)
		requireInvalid(t, res, "pool_uuids[2]", "pool_uuids[1]")
		require.Contains(t, res.Env.Error.Details, "pool_uuids[2]: must be a string, not number")
	})
}
