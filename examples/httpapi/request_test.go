package main

import (
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestDecode_RepeatedKey: a member given twice in a body, or in an element
// of a list, is a 422 naming it and writes nothing: a proxy or a log in
// front of the server may have read the first value, where encoding/json
// keeps the last. A payload is opaque: its own repeated keys are kept.
func TestDecode_RepeatedKey(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.Parallel, 10)
	path := "/api/v1/pools/" + p.UUID.String()
	c := uuid.NewString()
	b.unchanged(func() {
		requireInvalid(t, b.do("POST", "/api/v1/pools",
			`{"name": "VIP customers", "description": "d", "max_parallel_items": 500, "max_parallel_items": 5}`), "max_parallel_items")
		requireInvalid(t, b.do("PUT", path, `{"max_retries": -1, "\u006dax_retries": 0}`), "max_retries")
		requireInvalid(t, b.do("POST", path+"/contacts",
			`{"contacts": [{"contact_uuid": "`+c+`", "priority": 1, "priority": 9}]}`), "contacts[0].priority")
	})
	res := b.do("POST", path+"/contacts", `{"contacts": [{"contact_uuid": "`+c+`", "payload": {"a": 1, "a": 2}}]}`)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.JSONEq(t, `{"a": 1, "a": 2}`, string(b.snapshot().Items[p.UUID][0].Payload))
}

// TestDecode_NamelessMember: a member whose name is "" is a 422 that names
// the object holding it, "body" at the top (as "query" names a query's
// nameless parameter), and writes nothing: its field was named "", which
// the envelope drops (FuzzRequest's 7a1105d0eb02c314).
func TestDecode_NamelessMember(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.Parallel, 10)
	path := "/api/v1/pools/" + p.UUID.String()
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/pools", `{"": 1, "name": "VIP customers", "description": "d"}`)
		requireInvalid(t, res, "body")
		require.Contains(t, res.Env.Error.Details, `without a name ("")`)
		requireInvalid(t, b.do("POST", path+"/duplicate", `{"": ""}`), "body")
		requireInvalid(t, b.do("POST", path+"/contacts",
			`{"contacts": [{"contact_uuid": "`+uuid.NewString()+`", "": 9}]}`), "contacts[0]")
	})
}

// TestDecode_LoneSurrogate: a \u escape of half a surrogate pair is
// refused, as bytes that are not UTF-8 are: encoding/json would store
// U+FFFD, text the client never sent. A whole pair, or an escaped
// backslash before a "u", is text; a payload is kept as sent.
func TestDecode_LoneSurrogate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.unchanged(func() {
		for _, name := range []string{`VIP \ud800 customers`, `VIP \uDC00 customers`, `VIP \ud83d\u0041 customers`, `VIP \ud83d`} {
			res := b.do("POST", "/api/v1/pools", `{"name": "`+name+`", "description": "d"}`)
			requireInvalid(t, res, "name")
			require.Contains(t, res.Env.Error.Details, "surrogate")
		}
	})
	res := b.do("POST", "/api/v1/pools", `{"name": "VIP \ud83d\ude00 \\ud800", "description": "d"}`)
	require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
	p := data[pool.Pool](t, res)
	require.Equal(t, `VIP 😀 \ud800`, p.Name)

	res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts",
		`{"contacts": [{"contact_uuid": "`+uuid.NewString()+`", "payload": {"note": "\ud800"}}]}`)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Equal(t, `{"note": "\ud800"}`, string(b.snapshot().Items[p.UUID][0].Payload))
	b.unchanged(func() {
		requireInvalid(t, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts",
			`{"contacts": [{"contact_uuid": "`+uuid.NewString()+`", "name": "Ad\udfffle"}]}`), "contacts[0].name")
	})
}

// TestCreateRule_EmptyType: only an absent type is the default, in a rule's
// create as in its update.
func TestCreateRule_EmptyType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.unchanged(func() {
		requireInvalid(t, b.do("POST", "/api/v1/rules", `{"name": "Evenings", "type": ""}`), "type")
	})
	res := b.do("POST", "/api/v1/rules", `{"name": "Evenings"}`)
	require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
	require.Equal(t, "call", dataMap(t, res)["type"])
}

// TestDelete_RefusesABody: a DELETE takes no body: one with a field is a
// 422 naming it, one that is not JSON a 400, and nothing is deleted. The
// DELETEs did not read their body: {"dry_run": true} deleted for real,
// where ?dry_run=1 is refused.
func TestDelete_RefusesABody(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"UnknownField", `{"dry_run": true}`, http.StatusUnprocessableEntity, CodeValidation},
		{"MalformedJSON", `{not json`, http.StatusBadRequest, CodeInvalidJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			p := b.createPool("Renewals", pool.FIFO, 1)
			rule := b.createRule(map[string]any{"name": "Gentle"})
			c := b.createCampaign("Spring", nil)
			res := b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools", map[string]any{"pool_uuids": []uuid.UUID{p.UUID}})
			require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
			contact := uuid.New()
			require.Equal(t, http.StatusOK, b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{contact}}).Status)
			for _, path := range []string{
				"/api/v1/pools/" + p.UUID.String(),
				"/api/v1/rules/" + rule.UUID.String(),
				"/api/v1/campaigns/" + c.UUID.String() + "/pools/" + p.UUID.String(),
				"/api/v1/campaigns/" + c.UUID.String(),
				"/api/v1/dnc/" + contact.String(),
			} {
				b.unchanged(func() {
					res := b.do("DELETE", path, tc.body)
					require.Equal(t, tc.status, res.Status, "DELETE %s %s: %s", path, tc.body, res.Body)
					require.Equal(t, tc.code, res.Env.Error.Code, "DELETE %s: %s", path, res.Body)
				})
			}
			// Without the body, each goes through.
			for _, path := range []string{
				"/api/v1/campaigns/" + c.UUID.String() + "/pools/" + p.UUID.String(),
				"/api/v1/pools/" + p.UUID.String(),
				"/api/v1/campaigns/" + c.UUID.String(),
				"/api/v1/rules/" + rule.UUID.String(),
				"/api/v1/dnc/" + contact.String(),
			} {
				res := b.do("DELETE", path, nil)
				require.Equal(t, http.StatusOK, res.Status, "DELETE %s: %s", path, res.Body)
			}
		})
	}
}
