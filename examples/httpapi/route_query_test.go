package main

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// routeCase is one endpoint of the API, with a request it answers with a
// success once arrange has made the state it needs.
type routeCase struct {
	pattern string // as registered: "POST /api/v1/pools/{uuid}/contacts"
	// arrange makes what the request needs and returns its path and body
	// (nil for none).
	arrange func(b *testBundle) (path string, body any)
}

// everyRoute lists every endpoint of the API, each with a request that
// succeeds.
func everyRoute() []routeCase {
	poolWith := func(b *testBundle, n int) (pool.Pool, []uuid.UUID) {
		p := b.createPool("Routes", pool.Parallel, 10)
		var cs []uuid.UUID
		if n > 0 {
			cs = b.addContacts(p.UUID, n, 0)
		}
		return p, cs
	}
	settle := func(action string, extra map[string]any) func(b *testBundle) (string, any) {
		return func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 1)
			l := b.claim(p.UUID)
			body := map[string]any{"token": l.Token, "item_id": l.ItemID}
			for k, v := range extra {
				body[k] = v
			}
			return settlePath(p.UUID, l.ContactUUID, action), body
		}
	}
	rule := func(b *testBundle) campaign.Rule { return b.createRule(map[string]any{"name": "Business hours"}) }
	// campaignIn makes a campaign over a pool of one contact, moved by
	// actions, and returns it with its pool attached.
	campaignIn := func(b *testBundle, actions ...campaign.Action) campaign.Campaign {
		p, _ := poolWith(b, 1)
		r := rule(b)
		c := b.createCampaign("Spring", &r.UUID, p.UUID)
		for _, a := range actions {
			res := b.act(c.UUID, a)
			require.Equal(b.t, http.StatusOK, res.Status, "%s: %s", a, res.Body)
		}
		c.PoolUUIDs = []uuid.UUID{p.UUID}
		return c
	}
	action := func(a campaign.Action, before ...campaign.Action) func(b *testBundle) (string, any) {
		return func(b *testBundle) (string, any) {
			return "/api/v1/campaigns/" + campaignIn(b, before...).UUID.String() + "/" + string(a), nil
		}
	}
	return []routeCase{
		{"POST /api/v1/pools", func(b *testBundle) (string, any) {
			return "/api/v1/pools", map[string]any{"name": "Renewals", "description": "d"}
		}},
		{"GET /api/v1/pools", func(b *testBundle) (string, any) { return "/api/v1/pools", nil }},
		{"GET /api/v1/pools/{uuid}", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 0)
			return "/api/v1/pools/" + p.UUID.String(), nil
		}},
		{"PUT /api/v1/pools/{uuid}", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 0)
			return "/api/v1/pools/" + p.UUID.String(), map[string]any{"name": "Renamed"}
		}},
		{"DELETE /api/v1/pools/{uuid}", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 1)
			return "/api/v1/pools/" + p.UUID.String(), nil
		}},
		{"POST /api/v1/pools/{uuid}/duplicate", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 1)
			return "/api/v1/pools/" + p.UUID.String() + "/duplicate", map[string]any{}
		}},
		{"POST /api/v1/pools/{uuid}/contacts", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 0)
			return "/api/v1/pools/" + p.UUID.String() + "/contacts", map[string]any{"contact_uuids": []uuid.UUID{uuid.New()}}
		}},
		{"GET /api/v1/pools/{uuid}/contacts", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 1)
			return "/api/v1/pools/" + p.UUID.String() + "/contacts", nil
		}},
		{"POST /api/v1/pools/{uuid}/dispatch", func(b *testBundle) (string, any) {
			p, _ := poolWith(b, 1)
			return "/api/v1/pools/" + p.UUID.String() + "/dispatch", nil
		}},
		{"POST /api/v1/pools/{uuid}/contacts/{contact}/in-call", settle("in-call", nil)},
		{"POST /api/v1/pools/{uuid}/contacts/{contact}/extend", settle("extend", map[string]any{"seconds": 60})},
		{"POST /api/v1/pools/{uuid}/contacts/{contact}/complete", settle("complete", map[string]any{"note": "answered"})},
		{"POST /api/v1/pools/{uuid}/contacts/{contact}/fail", settle("fail", map[string]any{"note": "busy"})},
		{"POST /api/v1/pools/{uuid}/contacts/{contact}/release", settle("release", nil)},

		{"POST /api/v1/rules", func(b *testBundle) (string, any) {
			return "/api/v1/rules", map[string]any{"name": "Business hours"}
		}},
		{"GET /api/v1/rules", func(b *testBundle) (string, any) { return "/api/v1/rules", nil }},
		{"GET /api/v1/rules/{uuid}", func(b *testBundle) (string, any) {
			return "/api/v1/rules/" + rule(b).UUID.String(), nil
		}},
		{"PUT /api/v1/rules/{uuid}", func(b *testBundle) (string, any) {
			return "/api/v1/rules/" + rule(b).UUID.String(), map[string]any{"max_calls_per_day": 2}
		}},
		{"DELETE /api/v1/rules/{uuid}", func(b *testBundle) (string, any) {
			return "/api/v1/rules/" + rule(b).UUID.String(), nil
		}},

		{"POST /api/v1/campaigns", func(b *testBundle) (string, any) {
			return "/api/v1/campaigns", map[string]any{"name": "Spring"}
		}},
		{"GET /api/v1/campaigns", func(b *testBundle) (string, any) { return "/api/v1/campaigns", nil }},
		{"GET /api/v1/campaigns/{uuid}", func(b *testBundle) (string, any) {
			return "/api/v1/campaigns/" + campaignIn(b).UUID.String(), nil
		}},
		{"PUT /api/v1/campaigns/{uuid}", func(b *testBundle) (string, any) {
			return "/api/v1/campaigns/" + campaignIn(b).UUID.String(), map[string]any{"name": "Summer"}
		}},
		{"DELETE /api/v1/campaigns/{uuid}", func(b *testBundle) (string, any) {
			return "/api/v1/campaigns/" + campaignIn(b).UUID.String(), nil
		}},
		{"POST /api/v1/campaigns/{uuid}/start", action(campaign.Start)},
		{"POST /api/v1/campaigns/{uuid}/pause", action(campaign.Pause, campaign.Start)},
		{"POST /api/v1/campaigns/{uuid}/resume", action(campaign.Resume, campaign.Start, campaign.Pause)},
		{"POST /api/v1/campaigns/{uuid}/complete", action(campaign.Complete, campaign.Start)},
		{"POST /api/v1/campaigns/{uuid}/archive", action(campaign.Archive, campaign.Start, campaign.Complete)},
		{"POST /api/v1/campaigns/{uuid}/pools", func(b *testBundle) (string, any) {
			c := campaignIn(b)
			p, _ := poolWith(b, 1)
			return "/api/v1/campaigns/" + c.UUID.String() + "/pools", map[string]any{"pool_uuids": []uuid.UUID{p.UUID}}
		}},
		{"DELETE /api/v1/campaigns/{uuid}/pools/{pool}", func(b *testBundle) (string, any) {
			c := campaignIn(b)
			return "/api/v1/campaigns/" + c.UUID.String() + "/pools/" + c.PoolUUIDs[0].String(), nil
		}},
		{"PUT /api/v1/campaigns/{uuid}/rule", func(b *testBundle) (string, any) {
			c := campaignIn(b)
			return "/api/v1/campaigns/" + c.UUID.String() + "/rule", map[string]any{"rule_uuid": rule(b).UUID}
		}},

		{"POST /api/v1/dnc", func(b *testBundle) (string, any) {
			return "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{uuid.New()}}
		}},
		{"GET /api/v1/dnc", func(b *testBundle) (string, any) { return "/api/v1/dnc", nil }},
		{"GET /api/v1/dnc/{contact}", func(b *testBundle) (string, any) { return "/api/v1/dnc/" + uuid.NewString(), nil }},
		{"DELETE /api/v1/dnc/{contact}", func(b *testBundle) (string, any) {
			c := uuid.New()
			res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{c}})
			require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
			return "/api/v1/dnc/" + c.String(), nil
		}},
		{"POST /api/v1/contacts/{contact}/opt-out", func(b *testBundle) (string, any) {
			_, cs := poolWith(b, 1)
			return "/api/v1/contacts/" + cs[0].String() + "/opt-out", nil
		}},
		{"GET /api/v1/escalations", func(b *testBundle) (string, any) { return "/api/v1/escalations", nil }},
	}
}

// TestQuery_UnknownParameterEveryRoute: every endpoint refuses a query
// parameter it does not take with a 422 naming it (rule "unknown"), before
// it changes anything, as the listings do: a create, an update or a claim
// that ignored ?priority=5 or ?dry_run=1 would do, for real, something
// else than the client asked. The same request without the parameter
// succeeds: the parameter alone is refused.
func TestQuery_UnknownParameterEveryRoute(t *testing.T) {
	t.Parallel()
	var patterns []string
	for _, tc := range everyRoute() {
		patterns = append(patterns, tc.pattern)
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(setup(t).srv.routes)), patterns,
		"the table lists every endpoint the server registers, once")

	// One store per route: each parameter's refusal changes nothing, so
	// the three are made on one arrangement, then the request without
	// them (a store per request was 3× the setups: 19 s of the plain run's
	// test time, 80 s of the race run's).
	for _, tc := range everyRoute() {
		method, _, _ := strings.Cut(tc.pattern, " ")
		t.Run(tc.pattern, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.atNoon() // inside a rule's default window: a claim under a campaign goes through
			path, body := tc.arrange(b)

			// The request reaches the endpoint of the pattern.
			req := httptest.NewRequest(method, path, nil)
			_, pattern := b.srv.mux.Handler(req)
			require.Equal(t, tc.pattern, pattern, "%s %s", method, path)

			for _, param := range []string{"dry_run=1", "priority=5", "Page=2"} {
				field, _, _ := strings.Cut(param, "=")
				b.unchanged(func() {
					res := b.do(method, path+"?"+param, body)
					requireInvalid(t, res, field)
					require.Contains(t, res.Env.Error.Details, field+": is not a parameter of this endpoint", "?%s, body: %s", param, res.Body)
				})
			}
			res := b.do(method, path, body)
			require.Less(t, res.Status, 300, "without the parameters: %s", res.Body)
		})
	}
}

// TestQuery_UnknownParameterBesideTheBody: on an endpoint that takes a
// body, a parameter it does not take is named in the same 422 as the
// body's failures, as a claim's bad ?wait= is.
func TestQuery_UnknownParameterBesideTheBody(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Beside", pool.FIFO, 1)
	b.unchanged(func() {
		requireInvalid(t, b.do("POST", "/api/v1/pools?dry_run=1", `{"name": "ab", "max_retry": 1}`),
			"dry_run", "name", "description", "max_retry")
		requireInvalid(t, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts?priority=5", `{"contact_uuids": ["x"]}`),
			"priority", "contact_uuids[0]")
	})
}
