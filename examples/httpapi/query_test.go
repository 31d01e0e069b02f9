package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

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

// TestCounts_AgreeAcrossEndpoints: after each kind of change made over the
// API (add, claim, complete, fail, an expired lease applied, release,
// duplicate), a pool's status_counts add up to its contacts_count, which
// the pool listing shows too, and each count is the total of the contacts
// listed in that status.
func TestCounts_AgreeAcrossEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Counted", pool.Parallel, 10)
	check := func(step string, id uuid.UUID) {
		t.Helper()
		res := b.do("GET", "/api/v1/pools/"+id.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "%s: %s", step, res.Body)
		d := data[pool.Detail](t, res)
		sum := 0
		for st, n := range d.StatusCounts {
			sum += n
			res := b.do("GET", "/api/v1/pools/"+id.String()+"/contacts?per_page=100&status="+string(st), nil)
			require.Equal(t, http.StatusOK, res.Status, "%s: %s", step, res.Body)
			pg := data[pool.Page[pool.Item]](t, res)
			require.Equal(t, n, pg.Total, "%s: status_counts[%s] and the listing's total", step, st)
			require.Len(t, pg.Data, n, "%s: status_counts[%s] and the listing", step, st)
		}
		require.Equal(t, d.ContactsCount, sum, "%s: status_counts add up to contacts_count", step)
		res = b.do("GET", "/api/v1/pools?per_page=100", nil)
		require.Equal(t, http.StatusOK, res.Status, "%s: %s", step, res.Body)
		found := false
		for _, q := range data[pool.Page[pool.Pool]](t, res).Data {
			if q.UUID == id {
				found = true
				require.Equal(t, d.ContactsCount, q.ContactsCount, "%s: the pool listing's contacts_count", step)
			}
		}
		require.True(t, found, "%s: pool not listed", step)
	}
	check("created", p.UUID)
	b.addContacts(p.UUID, 6, 0)
	check("added", p.UUID)
	l1, l2, l3, l4 := b.claim(p.UUID), b.claim(p.UUID), b.claim(p.UUID), b.claim(p.UUID)
	check("claimed", p.UUID)
	require.Equal(t, http.StatusOK, b.settle(l1, "complete", map[string]any{"token": l1.Token}).Status)
	require.Equal(t, http.StatusOK, b.settle(l2, "fail", map[string]any{"token": l2.Token, "note": "busy"}).Status)
	require.Equal(t, http.StatusOK, b.settle(l3, "fail", map[string]any{"token": l3.Token, "final": true}).Status)
	check("settled", p.UUID)
	b.clock.Advance(2 * time.Minute) // l4's lease (1 min) expires; the next claim applies it
	l5 := b.claim(p.UUID)
	require.NotEqual(t, l4.ContactUUID, l5.ContactUUID)
	require.Equal(t, pool.StatusRetrying, b.item(p.UUID, l4.ContactUUID).Status, "the expiry applied")
	check("expired", p.UUID)
	require.Equal(t, http.StatusOK, b.settle(l5, "release", map[string]any{"token": l5.Token}).Status)
	check("released", p.UUID)
	res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/duplicate", map[string]any{})
	require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
	dup := data[pool.Duplicated](t, res)
	require.Equal(t, 6, dup.ContactsCount)
	require.Equal(t, 6, dup.ContactsCopied)
	check("duplicated", dup.UUID)
	check("duplicated, the source", p.UUID)
}
