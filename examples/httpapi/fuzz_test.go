package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
)

// Run it alone:
//
//	go test -run='^$' -fuzz='^FuzzRequest$' -fuzztime=30s ./examples/httpapi
//
// Without -fuzz, the seeds run as ordinary tests.

// fuzzRoutes are the endpoints FuzzRequest sends its bodies and queries
// to: every one that decodes a body or takes a query, but for dispatch
// (whose ?wait= blocks) and deletions (which would leave the others only
// 404s). {pool}, {rule}, {campaign} and {contact} are replaced with the
// fixture's.
var fuzzRoutes = []string{
	"POST /api/v1/pools",
	"GET /api/v1/pools",
	"PUT /api/v1/pools/{pool}",
	"POST /api/v1/pools/{pool}/contacts",
	"GET /api/v1/pools/{pool}/contacts",
	"POST /api/v1/pools/{pool}/duplicate",
	"POST /api/v1/pools/{pool}/contacts/{contact}/fail",
	"POST /api/v1/pools/{pool}/contacts/{contact}/complete",
	"POST /api/v1/rules",
	"GET /api/v1/rules",
	"PUT /api/v1/rules/{rule}",
	"POST /api/v1/campaigns",
	"GET /api/v1/campaigns",
	"PUT /api/v1/campaigns/{campaign}",
	"POST /api/v1/campaigns/{campaign}/pools",
	"PUT /api/v1/campaigns/{campaign}/rule",
	"POST /api/v1/dnc",
	"GET /api/v1/dnc",
	"GET /api/v1/escalations",
}

// FuzzRequest sends any body and any query string to the endpoints of
// fuzzRoutes, on one server whose state the requests build up. Client input
// never gets a 5xx (a panic is one) and always the envelope; a pool, a rule
// or a campaign the server answers with is one its own rules accept again
// (its JSON is a create body that package pool or campaign validates).
func FuzzRequest(f *testing.F) {
	const contact = "0190b7a4-8c1e-7000-8000-00000000c0de"
	seeds := []struct {
		route       int
		query, body string
	}{
		{0, "", `{"name":"VIP customers","description":"High-value leads","type":"parallel","max_parallel_items":5}`},
		{0, "", `{"name":"ab","description":" ","type":"x","max_parallel_items":"3","uuid":"x"}`},
		{0, "", `{"name":"VIP","name":"VIP2","description":"d"}`},
		{0, "", `{"name":"\ud800 bad","description":"d"}`},
		{0, "", `{"name":"VIP","description":"d"} {}`},
		{0, "", `[]`},
		{1, "page=2&per_page=100&type=fifo&is_active=true&search=VIP", ``},
		{1, "page=0&per_page=101&type=x&is_active=maybe&search=%ZZ", ``},
		{1, "page=1&page=2;x=1", ``},
		{2, "", `{"max_parallel_items":0,"is_active":null}`},
		{2, "", `{"name":"Renamed","type":"LIFO"}`},
		{3, "", `{"contacts":[{"contact_uuid":"` + contact + `","name":"Ada","phone_number":"+15551234567","timezone":"Europe/London","payload":{"a":1}}]}`},
		{3, "", `{"contact_uuids":["` + contact + `", 7, null, "x"]}`},
		{3, "", `{"contacts":[{"contact_uuid":"` + contact + `","payload":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}]}`},
		{4, "status=pending&search=Ada&per_page=1", ``},
		{4, "status=nope&page=-1", ``},
		{5, "", `{"name":"Copy"}`},
		{6, "", `{"notes":"no answer","final":true}`},
		{7, "", `{}`},
		{8, "", `{"name":"Standard","start_time":"08:00","end_time":"20:00","max_calls_per_day":2,"escalation_type":"email"}`},
		{8, "", `{"name":"SMS","type":"text","max_calls_per_day":0}`},
		{8, "", `{"name":"Bad","start_time":"19:00"}`},
		{9, "type=call&search=x", ``},
		{10, "", `{"type":"text"}`},
		{10, "", `{"end_time":"08:00"}`},
		{11, "", `{"name":"Spring","timezone":"Europe/Paris"}`},
		{11, "", `{"name":"Spring","timezone":"Mars/Base","rule_uuid":"00000000-0000-0000-0000-000000000000"}`},
		{12, "status=active&rule_uuid=" + contact, ``},
		{13, "", `{"name":"Autumn","timezone":""}`},
		{14, "", `{"pool_uuids":["` + contact + `"]}`},
		{15, "", `{"rule_uuid":null}`},
		{16, "", `{"contact_uuid":"` + contact + `","reason":"asked"}`},
		{17, "per_page=5", ``},
		{18, "after=0&limit=10&pool_uuid=" + contact, ``},
		{18, "limit=-1&after=x", ``},
	}
	for _, s := range seeds {
		f.Add(uint8(s.route), s.query, []byte(s.body))
	}

	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
	require.NoError(f, err)
	f.Cleanup(func() { _ = st.Close() })
	c := &clock{now: time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)}
	eng, err := queue.New(st, queue.Options{Now: c.Now, LeaseTimeout: time.Minute, RetryDelay: time.Hour})
	require.NoError(f, err)
	f.Cleanup(func() { _ = eng.Close() })
	srv := newServer(eng, testToken, slog.New(slog.NewTextHandler(io.Discard, nil)))

	send := func(method, path, query string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "/", bytes.NewReader(body))
		req.URL.Path, req.URL.RawQuery, req.RequestURI = path, query, ""
		req.Header.Set("Authorization", "Bearer "+testToken)
		if len(body) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		return rec
	}
	create := func(path, body string) string {
		rec := send(http.MethodPost, path, "", []byte(body))
		require.Equal(f, http.StatusCreated, rec.Code, rec.Body.String())
		var env struct {
			Data struct {
				UUID string `json:"uuid"`
			} `json:"data"`
		}
		require.NoError(f, json.Unmarshal(rec.Body.Bytes(), &env))
		return env.Data.UUID
	}
	fixture := strings.NewReplacer(
		"{pool}", create("/api/v1/pools", `{"name":"Fixture","description":"the fuzzer's pool","type":"Parallel"}`),
		"{rule}", create("/api/v1/rules", `{"name":"Fixture rule"}`),
		"{campaign}", create("/api/v1/campaigns", `{"name":"Fixture campaign"}`),
		"{contact}", contact,
	)

	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		method, path, _ := strings.Cut(fuzzRoutes[int(route)%len(fuzzRoutes)], " ")
		path = fixture.Replace(path)
		rec := send(method, path, query, body)
		res := decodeResponse(t, rec.Code, rec.Header(), rec.Body.Bytes())
		require.Less(t, res.Status, 500, "%s %s?%s %q: %s", method, path, query, body, rec.Body.Bytes())
		if res.Status >= 300 {
			require.GreaterOrEqual(t, res.Status, 400, "%s", rec.Body.Bytes())
			return
		}
		// What the server answers with re-validates.
		switch {
		case method == http.MethodPost && path == "/api/v1/pools" || method == http.MethodPut && strings.HasPrefix(path, "/api/v1/pools/") ||
			strings.HasSuffix(path, "/duplicate"):
			var p pool.CreateParams
			require.NoError(t, json.Unmarshal(res.Env.Data, &p))
			require.NoError(t, p.Validate(), "pool %s", res.Env.Data)
		case method != http.MethodGet && strings.HasPrefix(path, "/api/v1/rules"):
			var p campaign.CreateRuleParams
			require.NoError(t, json.Unmarshal(res.Env.Data, &p))
			require.NoError(t, p.Validate(), "rule %s", res.Env.Data)
		case method != http.MethodGet && (path == "/api/v1/campaigns" || strings.Count(path, "/") == 4 && strings.HasPrefix(path, "/api/v1/campaigns/")):
			var p campaign.CreateParams
			require.NoError(t, json.Unmarshal(res.Env.Data, &p))
			_, err := campaign.New(uuid.Nil, p, time.Time{})
			require.NoError(t, err, "campaign %s", res.Env.Data)
		}
	})
}
