package main

// Tests written in a hostile-client review of the server: each failed on a
// defect found then (see its comment), or checks a documented limit that
// no other test checks.

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestHostile_ErrorsEchoABoundedName: a name the client chose, an unknown
// body field or query parameter, a path or a method, is shown bounded in
// an error, as a bad value is (validate.Quote). Defect found: a 422 sent
// an unknown key back whole twice (in details and in field), and a 404 or
// 405 the whole path or method, so a request of 1 MiB bought a response
// of 2 MiB.
func TestHostile_ErrorsEchoABoundedName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Hostile", pool.FIFO, 1)
	pp := "/api/v1/pools/" + p.UUID.String()
	long := strings.Repeat("k", 200_000)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/api/v1/pools?" + long + "=1", "", http.StatusUnprocessableEntity},
		{"GET", "/api/v1/pools?" + long + "=%zz", "", http.StatusUnprocessableEntity},
		{"POST", "/api/v1/pools", `{"` + long + `":1}`, http.StatusUnprocessableEntity},
		{"POST", pp + "/contacts", `{"contacts":[{"` + long + `":1}]}`, http.StatusUnprocessableEntity},
		{"GET", "/" + long, "", http.StatusNotFound},
		{"GET", "/api/v1//" + long, "", http.StatusNotFound},
		{"M" + strings.ToUpper(long), "/api/v1/pools", "", http.StatusMethodNotAllowed},
		{"M" + strings.ToUpper(long), "/nope", "", http.StatusNotFound},
	} {
		var body any
		if tc.body != "" {
			body = tc.body
		}
		res := b.do(tc.method, tc.path, body)
		require.Equal(t, tc.status, res.Status, "%.40s %.60s: %.300s", tc.method, tc.path, res.Body)
		require.Less(t, len(res.Body), 2_000, "%.40s %.60s: %.300s", tc.method, tc.path, res.Body)
		require.Contains(t, string(res.Body), "… (", "%.40s %.60s", tc.method, tc.path)
	}
	// A short name is still named exactly.
	res := b.do("GET", "/api/v1/pools?stauts=1", nil)
	requireInvalid(t, res, "stauts")
}

// TestHostile_TwoAuthorizationHeaders: a request with two Authorization
// headers is refused (401), whichever holds the token. Defect found: the
// first one counted, so "Authorization: Bearer <token>" followed by
// "Authorization: Bearer other" was served, while a proxy or gateway in
// front of the server that reads the last one (or logs it) saw another
// credential than the one the server accepted; the server refuses a query
// parameter or a body field given twice for the same reason.
func TestHostile_TwoAuthorizationHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, pair := range [][2]string{
		{"Bearer " + testToken, "Bearer other"},
		{"Bearer other", "Bearer " + testToken},
		{"Bearer " + testToken, "Bearer " + testToken},
	} {
		req := httptest.NewRequest("GET", "/api/v1/pools", nil)
		req.Header.Add("Authorization", pair[0])
		req.Header.Add("Authorization", pair[1])
		rec := httptest.NewRecorder()
		b.srv.ServeHTTP(rec, req)
		res := decodeResponse(t, rec.Code, rec.Header(), rec.Body.Bytes())
		requireError(t, res, http.StatusUnauthorized, CodeInvalidAuthToken)
		require.NotEmpty(t, rec.Header().Get("WWW-Authenticate"))
	}
	// One header still passes.
	require.Equal(t, http.StatusOK, b.do("GET", "/api/v1/pools", nil).Status)
}

// TestHostile_ListingIsNotManyTimesThePayloads: a page of items is about
// the size of their payloads. Defect found: poolq's MarshalJSON methods
// escaped <, > and & themselves (json.Marshal), so the server's encoder,
// which does not escape them, wrote a payload of 64 KiB of '<' as 384 KiB,
// and a page of 100 such items was about 39 MB, built in memory.
func TestHostile_ListingIsNotManyTimesThePayloads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Markup", pool.Parallel, 5)
	contacts := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	payload := `{"html":"` + strings.Repeat("<", 60_000) + `"}`
	const n = 10
	for range n {
		res := b.do("POST", contacts, `{"contacts": [{"contact_uuid": "`+uuid.NewString()+`", "payload": `+payload+`}]}`)
		require.Equal(t, http.StatusOK, res.Status, "body: %.300s", res.Body)
	}
	res := b.do("GET", contacts+"?per_page=100", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %.300s", res.Body)
	require.Less(t, len(res.Body), n*(len(payload)+1_000), "a page of %d payloads of %d bytes", n, len(payload))
	page := data[pool.ItemPage](t, res).Data
	require.Len(t, page, n)
	for _, it := range page {
		require.True(t, payload == string(it.Payload), "the payload as sent")
	}
}
