package main

// Tests written in a mutation review of the server: each pins a behaviour
// no other test pinned, as its comment says.

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestAPI_UUIDOnlyCanonical: a UUID is accepted only in its canonical
// 36-character form (parseUUID), in a body as in a path: the forms
// uuid.Parse also takes (32 hex digits, braces, urn:uuid:) are malformed,
// a 422 naming the element in a body, a 404 in a path.
func TestAPI_UUIDOnlyCanonical(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Canonical", pool.FIFO, 1)
	id := uuid.New()
	for _, s := range []string{
		strings.ReplaceAll(id.String(), "-", ""),
		"{" + id.String() + "}",
		"urn:uuid:" + id.String(),
	} {
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []string{s}})
			requireInvalid(t, res, "contact_uuids[0]")
			require.Contains(t, res.Env.Error.Details, "must be a UUID like", "body: %s", res.Body)
			res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts", map[string]any{"contact_uuids": []string{s}})
			requireInvalid(t, res, "contact_uuids[0]")
		})
	}
	res := b.do("GET", "/api/v1/pools/"+strings.ReplaceAll(p.UUID.String(), "-", ""), nil)
	requireError(t, res, http.StatusNotFound, CodeNotFound)
	require.Equal(t, "Pool not found", res.Env.Message)
	res = b.do("GET", "/api/v1/pools/"+p.UUID.String(), nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
}

// TestAPI_QuerySemicolonInValue: a ";" in a parameter is refused (a 422
// naming it) even when the value with it would pass the parameter's own
// rules, as ?search= takes any text: not read as "ada;x", nor dropped.
func TestAPI_QuerySemicolonInValue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Semicolon", pool.FIFO, 1)
	for _, path := range []string{
		"/api/v1/pools?search=ada;x",
		"/api/v1/pools/" + p.UUID.String() + "/contacts?search=ada;x",
		"/api/v1/rules?search=a;b",
	} {
		res := b.do("GET", path, nil)
		requireInvalid(t, res, "search")
		require.Contains(t, res.Env.Error.Details, `";"`, "%s: %s", path, res.Body)
	}
	// Without it, the same search is answered.
	res := b.do("GET", "/api/v1/pools?search=ada", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
}

// TestAPI_QueryOfExactlyMaxParams: a query of MaxQueryParams
// parameters (the bound, counted as url.ParseQuery counts them) is read;
// only one more is refused.
func TestAPI_QueryOfExactlyMaxParams(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createPool("Bound", pool.FIFO, 1)
	res := b.do("GET", "/api/v1/pools?per_page=1"+strings.Repeat("&", MaxQueryParams-1), nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %.300s", res.Body)
	pg := data[pool.Page[pool.Pool]](t, res)
	require.Equal(t, 1, pg.PerPage)
	require.Equal(t, 1, pg.Total)

	res = b.do("GET", "/api/v1/pools?per_page=1"+strings.Repeat("&", MaxQueryParams), nil)
	requireInvalid(t, res, "query")
}

// TestAPI_WaitInWholeSeconds: ?wait= in whole seconds is bounded as a
// duration is: 30 is the most, 31 a 422 on wait (not taken as 30), and
// nothing is claimed.
func TestAPI_WaitInWholeSeconds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Wait", pool.FIFO, 1)
	cs := b.addContacts(p.UUID, 1, 0) // due: a claim that goes through does not wait
	claim := "/api/v1/pools/" + p.UUID.String() + "/dispatch"
	b.unchanged(func() {
		for _, w := range []string{"31", "31s", "100"} {
			res := b.do("POST", claim+"?wait="+w, nil)
			requireInvalid(t, res, "wait")
			require.Contains(t, res.Env.Error.Details, "between 0s and 30s", "body: %s", res.Body)
		}
	})
	res := b.do("POST", claim+"?wait=30", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Equal(t, cs[0], data[queue.Lease](t, res).ContactUUID)
}

// TestAPI_NoContentNotCached: the 204 of a claim that finds nothing
// due is marked no-store, as every JSON answer is: a cache in front of the
// dialer must not keep "nothing to do".
func TestAPI_NoContentNotCached(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Empty", pool.FIFO, 1)
	res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
	require.Equal(t, http.StatusNoContent, res.Status)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
}

// TestAPI_SettleValidatedBeforeLease: a settlement's body is validated
// before its lease is looked up (bodies are validated before the engine is
// called): a bad token, a retry_at with final, or a retry_at too far ahead
// is a 422 naming the field even when the item_id is stale, never a 409
// LEASE_LOST that would tell the dialer its lease is gone.
func TestAPI_SettleValidatedBeforeLease(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Settle", pool.Parallel, 3)
	b.addContacts(p.UUID, 1, 0)
	l := b.claim(p.UUID)
	stale := l.ItemID + 1000
	soon := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	far := time.Now().Add(MaxRetryAhead + 48*time.Hour).UTC().Format(time.RFC3339)
	tests := []struct {
		name, action string
		body         map[string]any
		field        string
	}{
		{"TokenNegative", "complete", map[string]any{"token": -1, "item_id": stale}, "token"},
		{"TokenNegativeRelease", "release", map[string]any{"token": -7, "item_id": stale}, "token"},
		{"RetryAtWithFinal", "fail", map[string]any{"token": l.Token, "item_id": stale, "final": true, "retry_at": soon}, "retry_at"},
		{"RetryAtTooFar", "fail", map[string]any{"token": l.Token, "item_id": stale, "retry_at": far}, "retry_at"},
	}
	b.unchanged(func() {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				requireInvalid(t, b.settle(l, tt.action, tt.body), tt.field)
			})
		}
	})
	// The lease stands: it settles.
	res := b.settle(l, "complete", map[string]any{"token": l.Token})
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
}

// TestAPI_ListCampaignsByRule: ?rule_uuid= filters the campaigns by
// their rule: a listing is not answered without its filter.
func TestAPI_ListCampaignsByRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	r1 := b.createRule(map[string]any{"name": "Rule one"})
	r2 := b.createRule(map[string]any{"name": "Rule two"})
	c1 := b.createCampaign("With rule one", &r1.UUID)
	b.createCampaign("With rule two", &r2.UUID)
	b.createCampaign("Without a rule", nil)

	res := b.do("GET", "/api/v1/campaigns?rule_uuid="+r1.UUID.String(), nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	pg := data[pool.Page[campaign.Campaign]](t, res)
	require.Equal(t, 1, pg.Total, "body: %s", res.Body)
	require.Len(t, pg.Data, 1)
	require.Equal(t, c1.UUID, pg.Data[0].UUID)

	res = b.do("GET", "/api/v1/campaigns?rule_uuid="+uuid.NewString(), nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Zero(t, data[pool.Page[campaign.Campaign]](t, res).Total)
}

// TestAPI_DetachFromUnknownCampaign: detaching a pool from a campaign
// that does not exist is the campaign's 404, not the pool's: the client
// is told which of the two UUIDs names nothing.
func TestAPI_DetachFromUnknownCampaign(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Detached", pool.FIFO, 1)
	c := b.createCampaign("Known", nil, p.UUID)
	b.unchanged(func() {
		res := b.do("DELETE", "/api/v1/campaigns/"+uuid.NewString()+"/pools/"+p.UUID.String(), nil)
		requireError(t, res, http.StatusNotFound, CodeNotFound)
		require.Equal(t, "Campaign not found", res.Env.Message)
		res = b.do("DELETE", "/api/v1/campaigns/"+c.UUID.String()+"/pools/"+uuid.NewString(), nil)
		requireError(t, res, http.StatusNotFound, CodeNotFound)
		require.Equal(t, "Pool not found", res.Env.Message)
	})
}

// TestAPI_AttachEmptyListBesideQuery: an empty pool_uuids is named in
// the same 422 as the query's failures: one 422 reports every failing
// field at once.
func TestAPI_AttachEmptyListBesideQuery(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.createCampaign("Attach", nil)
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools?dry_run=1", map[string]any{"pool_uuids": []string{}})
		requireInvalid(t, res, "dry_run", "pool_uuids")
		res = b.do("POST", "/api/v1/campaigns/"+c.UUID.String()+"/pools?dry_run=1", `{}`)
		requireInvalid(t, res, "dry_run", "pool_uuids")
	})
}

// TestAPI_AddContactsAtTheBound: an add of exactly
// MaxContactsPerRequest contacts, counting both lists, goes through.
func TestAPI_AddContactsAtTheBound(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Bound", pool.FIFO, 1)
	ids := make([]uuid.UUID, MaxContactsPerRequest-1)
	for i := range ids {
		ids[i] = uuid.New()
	}
	res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts", map[string]any{
		"contact_uuids": ids,
		"contacts":      []map[string]any{{"contact_uuid": uuid.NewString(), "name": "Last one"}},
	})
	require.Equal(t, http.StatusOK, res.Status, "body: %.300s", res.Body)
	require.Equal(t, pool.AddResult{ContactsAdded: MaxContactsPerRequest}, data[pool.AddResult](t, res))
}

// TestAPI_DNCBoundCountsTheListSent: POST /dnc takes at most
// MaxContactsPerCall UUIDs as sent: a list of one more is refused (a 422
// on contact_uuids, nothing listed) even when a repeat would fold it to
// the bound.
func TestAPI_DNCBoundCountsTheListSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ids := make([]uuid.UUID, queue.MaxContactsPerCall+1)
	for i := range ids {
		ids[i] = uuid.New()
	}
	ids[len(ids)-1] = ids[0]
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": ids})
		requireInvalid(t, res, "contact_uuids")
		require.Contains(t, res.Env.Error.Details, "at most 10000", "body: %s", res.Body)
	})
}
