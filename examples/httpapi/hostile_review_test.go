package main

// Tests written in a hostile-client review of the server: each failed on a
// defect found then (see its comment), or checks a documented limit that
// no other test checks.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
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

// TestHostile_LongListIsRefusedUndecoded: a list of more than
// MaxListElements elements is a 422 on the list alone, and its elements
// are not decoded. Defect found: every element of a list was decoded
// before its length was refused, one by one when of the wrong type, so a
// body of 1 MiB (500,000 numbers in place of contact_uuids) allocated
// 248 MB in 0.5 s, and 349,000 empty objects in contacts 97 MB. Not
// parallel: it counts the bytes the process allocates.
func TestHostile_LongListIsRefusedUndecoded(t *testing.T) {
	b := setup(t)
	p := b.createPool("Hostile", pool.FIFO, 1)
	c := b.createCampaign("Hostile", nil)
	contacts := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	list := func(elem string, n int) string { // n elements, white space between
		return "[" + strings.Repeat(elem+", ", n-1) + elem + "]"
	}
	const big = 250_000 // elements of up to 2 bytes, and ", ": 1 MB
	for _, tc := range []struct {
		name, path, field, body string
		n                       int
	}{
		{"Numbers", contacts, "contact_uuids", `{"contact_uuids": ` + list("1", 340_000) + `}`, 340_000},
		{"EmptyStrings", contacts, "contact_uuids", `{"contact_uuids": ` + list(`""`, big) + `}`, big},
		{"Objects", contacts, "contacts", `{"contacts": ` + list("{}", big) + `}`, big},
		{"NestedLists", contacts, "contact_uuids", `{"contact_uuids": ` + list("[1, [2]]", 100_000) + `}`, 100_000},
		{"DNC", "/api/v1/dnc", "contact_uuids", `{"contact_uuids":` + list("true", 150_000) + `}`, 150_000},
		{"Pools", "/api/v1/campaigns/" + c.UUID.String() + "/pools", "pool_uuids", `{"pool_uuids": ` + list("null", 150_000) + `}`, 150_000},
		{"OneMore", contacts, "contact_uuids", `{"contact_uuids": ` + list(`"`+uuid.NewString()+`"`, MaxListElements+1) + `}`, MaxListElements + 1},
	} {
		require.LessOrEqual(t, len(tc.body), MaxBodyBytes, tc.name)
		b.unchanged(func() {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res := b.do("POST", tc.path, tc.body)
			runtime.ReadMemStats(&after)
			requireInvalid(t, res, tc.field)
			require.Equal(t, fmt.Sprintf("%s: must hold at most %d elements (got %d); send several requests", tc.field, MaxListElements, tc.n),
				res.Env.Error.Details, tc.name)
			// The body is read, split into its members and scanned a few
			// times: a few MB, where decoding the list took 67 to 248 MB.
			require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "%s: bytes allocated", tc.name)
		})
	}

	// At the bound, the list is decoded as before: each element of the
	// wrong type named, the first 20 listed.
	res := b.do("POST", contacts, `{"contact_uuids": `+list("1", MaxListElements)+`}`)
	requireInvalid(t, res, "contact_uuids[0]", listed("contact_uuids", 1, maxListedErrors)...)
	require.Contains(t, res.Env.Error.Details, fmt.Sprintf("contact_uuids: %d more elements of the wrong type not listed", MaxListElements-maxListedErrors))
}

// TestListLen: listLen counts a list's elements by its commas outside
// strings and nested values.
func TestListLen(t *testing.T) {
	list := reflect.TypeOf([]string(nil))
	for _, tc := range []struct {
		val string
		n   int
	}{
		{`[]`, 0},
		{"[ \n\t]", 0},
		{`[1]`, 1},
		{`[ 1 , 2 ]`, 2},
		{`["a,b", "c\",]", "\\", ","]`, 4},
		{`[[1, 2], {"a": [3, 4], "b": "],"}, [[]], {}]`, 4},
		{`[null,true,false,-1.5e3,"x"]`, 5},
		{`"[1,2]"`, 0},
		{`{"a": [1, 2]}`, 0},
		{`7`, 0},
	} {
		require.Equal(t, tc.n, listLen(list, []byte(tc.val)), tc.val)
	}
	// A payload is not a list: its bytes are the client's.
	require.Zero(t, listLen(rawType, []byte(`[1, 2, 3]`)))
	require.Equal(t, 3, listLen(reflect.TypeOf([]json.RawMessage(nil)), []byte(`[{}, {}, {}]`)))
}
