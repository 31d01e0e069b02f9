package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestQuery_MalformedPair: a query parameter that does not parse (a bad %
// escape, a ";" separator) is refused with a 422 naming it, as a bad value
// is: not dropped, which would answer another question than the one asked
// (a listing filtered by ?status= answered with every item, a claim asked
// to ?wait= answered at once).
func TestQuery_MalformedPair(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Malformed", pool.FIFO, 1)
	b.addContacts(p.UUID, 3, 0)
	contacts := "/api/v1/pools/" + p.UUID.String() + "/contacts"

	// The well-formed filter finds nothing: no item is Completed.
	res := b.do("GET", contacts+"?status=Completed", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Zero(t, data[pool.Page[pool.Item]](t, res).Total)

	for _, tc := range []struct{ query, field string }{
		{"?status=Completed%zz", "status"},
		{"?status=Completed;", "status"},
		{"?per_page=500%", "per_page"},
		{"?search=ada&status=Completed%", "status"},
		{"?status=Completed&status=Pending", "status"},
		{"?status=Completed&status=Completed", "status"},
	} {
		res := b.do("GET", contacts+tc.query, nil)
		requireInvalid(t, res, tc.field)
	}

	// More parameters than net/url parses (10,000): url.ParseQuery gives
	// none of them, and the filter would be dropped with the rest.
	res = b.do("GET", contacts+"?status=Completed"+strings.Repeat("&x=1", 10_000), nil)
	requireInvalid(t, res, "query")

	res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch?wait=5s%", nil)
	requireInvalid(t, res, "wait")
	require.Equal(t, pool.StatusPending, b.item(p.UUID, b.snapshot().Items[p.UUID][0].ContactUUID).Status, "nothing claimed")
}

// TestQuery_MessagesEchoABoundedValue: a 422 quotes at most 40 runes of a
// parameter's value (validate.Quote), however long the value sent.
func TestQuery_MessagesEchoABoundedValue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Bounded", pool.FIFO, 1)
	long := strings.Repeat("9", 100_000) + "x"
	for _, path := range []string{
		"/api/v1/pools?page=" + long,
		"/api/v1/pools?is_active=" + long,
		"/api/v1/pools/" + p.UUID.String() + "/contacts?page=" + long + "%",
	} {
		res := b.do("GET", path, nil)
		require.Less(t, len(res.Body), 2_000, "%.60s: %.300s", path, res.Body)
		require.Contains(t, string(res.Body), `…`, "%.60s", path)
	}
}

// TestQuery_UnknownParameter: a query parameter the endpoint does not take
// (a typo, a name in the wrong case) is a 422 naming it (rule "unknown"),
// as an unknown field of a body is: dropped, it would answer another
// question than the one asked — a listing filtered by ?stauts=Failed
// answered with every item, which a client that removes what the listing
// shows would remove.
func TestQuery_UnknownParameter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Unknown parameters", pool.FIFO, 1)
	b.addContacts(p.UUID, 3, 0)
	pools := "/api/v1/pools/" + p.UUID.String()

	// Spelled right, the filter finds nothing: no item has failed.
	res := b.do("GET", pools+"/contacts?status=Failed", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Zero(t, data[pool.Page[pool.Item]](t, res).Total)

	for _, tc := range []struct{ method, path, field string }{
		{"GET", pools + "/contacts?stauts=Failed", "stauts"},
		{"GET", pools + "/contacts?Status=Failed", "Status"},
		{"GET", pools + "/contacts?status=Failed&serach=ada", "serach"},
		{"GET", "/api/v1/pools?is_activ=false", "is_activ"},
		{"GET", "/api/v1/pools?perpage=100", "perpage"},
		{"GET", "/api/v1/rules?tpye=text", "tpye"},
		{"GET", "/api/v1/campaigns?rule=" + uuid.NewString(), "rule"},
		{"GET", "/api/v1/dnc?per-page=100", "per-page"},
		{"GET", "/api/v1/escalations?pool=" + p.UUID.String(), "pool"},
		{"POST", pools + "/dispatch?wiat=5s", "wiat"},
	} {
		res := b.do(tc.method, tc.path, nil)
		requireInvalid(t, res, tc.field)
	}
	require.Equal(t, pool.StatusPending, b.item(p.UUID, b.snapshot().Items[p.UUID][0].ContactUUID).Status, "nothing claimed")
}
