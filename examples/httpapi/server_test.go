package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// routes lists one request per endpoint, with a body the endpoint accepts.
func routes(poolID, contact uuid.UUID) []struct{ method, path, body string } {
	p := "/api/v1/pools/" + poolID.String()
	c := p + "/contacts/" + contact.String()
	return []struct{ method, path, body string }{
		{"POST", "/api/v1/pools", `{"name": "abc", "description": "d"}`},
		{"GET", "/api/v1/pools", ``},
		{"GET", p, ``},
		{"PUT", p, `{"name": "abcd"}`},
		{"DELETE", p, ``},
		{"POST", p + "/duplicate", `{}`},
		{"POST", p + "/contacts", `{"contact_uuids": ["` + uuid.NewString() + `"]}`},
		{"GET", p + "/contacts", ``},
		{"POST", p + "/dispatch", ``},
		{"POST", c + "/in-call", `{"token": 1, "item_id": 1}`},
		{"POST", c + "/extend", `{"token": 1, "item_id": 1, "seconds": 60}`},
		{"POST", c + "/complete", `{"token": 1, "item_id": 1}`},
		{"POST", c + "/fail", `{"token": 1, "item_id": 1}`},
		{"POST", c + "/release", `{"token": 1, "item_id": 1}`},
		{"POST", "/api/v1/dnc", `{"contact_uuids": ["` + contact.String() + `"]}`},
		{"GET", "/api/v1/dnc", ``},
		{"GET", "/api/v1/dnc/" + contact.String(), ``},
		{"DELETE", "/api/v1/dnc/" + contact.String(), ``},
		{"POST", "/api/v1/contacts/" + contact.String() + "/opt-out", `{}`},
		{"GET", "/api/v1/escalations", ``},
	}
}

func TestServer_Auth(t *testing.T) {
	t.Parallel()

	t.Run("ErrUnauthorizedEveryEndpoint", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		c := b.addContacts(p.UUID, 1, 0)
		b.claim(p.UUID)
		// The API's error codes: MISSING_AUTH_TOKEN when no token is sent,
		// INVALID_AUTH_TOKEN when one is, but not the accepted one.
		for auth, code := range map[string]string{
			"":                               CodeMissingAuthToken, // no header
			"Bearer":                         CodeMissingAuthToken, // no token
			"Bearer ":                        CodeMissingAuthToken, // empty token
			"Bearer wrong":                   CodeInvalidAuthToken, // wrong token
			"Bearer " + testToken + "x":      CodeInvalidAuthToken, // a longer one
			"Bearer " + testToken[:5]:        CodeInvalidAuthToken, // a prefix
			"Basic " + testToken:             CodeInvalidAuthToken, // wrong scheme
			testToken:                        CodeInvalidAuthToken, // no scheme
			"Token " + testToken:             CodeInvalidAuthToken, // another scheme
			"Bearer " + testToken + " extra": CodeInvalidAuthToken, // two words
		} {
			b.unchanged(func() {
				for _, r := range append(routes(p.UUID, c[0]), struct{ method, path, body string }{"GET", "/nowhere", ""}) {
					var body any
					if r.body != "" {
						body = r.body
					}
					res := b.doAuth(r.method, r.path, body, auth)
					requireError(t, res, http.StatusUnauthorized, code)
					require.Equal(t, "Unauthenticated", res.Env.Message)
					require.Equal(t, `Bearer realm="poolq"`, res.Header.Get("WWW-Authenticate"))
				}
			})
		}
	})

	t.Run("OKEveryEndpoint", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		c := b.addContacts(p.UUID, 1, 0)
		for _, r := range routes(p.UUID, c[0]) {
			if r.method == "DELETE" {
				continue // below, last
			}
			var body any
			if r.body != "" {
				body = r.body
			}
			// The scheme is case-insensitive (RFC 9110). The settle endpoints
			// answer 409 (token 1 is not the claim's): what matters is that
			// the request got through to its handler.
			res := b.doAuth(r.method, r.path, body, "bearer "+testToken)
			require.NotEqual(t, http.StatusUnauthorized, res.Status, "%s %s: %s", r.method, r.path, res.Body)
			if res.Status >= 300 {
				require.Equal(t, CodeLeaseLost, res.Env.Error.Code, "%s %s: %s", r.method, r.path, res.Body)
			}
		}
		// The dispatch above claimed c[0]: settle it, or the pool cannot go.
		it := b.item(p.UUID, c[0])
		l := queue.Lease{PoolUUID: p.UUID, ContactUUID: c[0], ItemID: it.ID}
		require.Equal(t, http.StatusOK, b.settle(l, "complete", map[string]any{"token": it.Token}).Status)
		res := b.do("DELETE", "/api/v1/pools/"+p.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	})

	t.Run("ErrNoTokenFailsClosed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.srv = newServer(b.eng, "", nil)
		b.unchanged(func() {
			for auth, code := range map[string]string{
				"": CodeMissingAuthToken, "Bearer": CodeMissingAuthToken, "Bearer ": CodeMissingAuthToken,
				"Bearer x": CodeInvalidAuthToken,
			} {
				res := b.doAuth("POST", "/api/v1/pools", `{"name": "abc", "description": "d"}`, auth)
				requireError(t, res, http.StatusUnauthorized, code)
			}
		})
	})
}

func TestServer_Routing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)

	t.Run("ErrRouteNotFound", func(t *testing.T) {
		for _, path := range []string{"/", "/api/v1", "/api/v2/pools", "/api/v1/pools/" + p.UUID.String() + "/nothing",
			// Paths the mux would redirect, in HTML, to their clean form.
			"//api/v1/pools", "/api//v1/pools", "/api/v1/./pools", "/api/v1/x/../pools",
		} {
			res := b.do("GET", path, nil)
			requireError(t, res, http.StatusNotFound, CodeRouteNotFound)
			require.Equal(t, "Route not found", res.Env.Message)
			require.Empty(t, res.Header.Get("Location"), path)
		}
	})

	t.Run("ErrMethodNotAllowed", func(t *testing.T) {
		b.unchanged(func() {
			res := b.do("PATCH", "/api/v1/pools/"+p.UUID.String(), `{"name": "abcd"}`)
			requireError(t, res, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
			require.Equal(t, "DELETE, GET, HEAD, PUT", res.Header.Get("Allow"))
			res = b.do("DELETE", "/api/v1/pools", nil)
			requireError(t, res, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
			res = b.do("GET", "/api/v1/pools/"+p.UUID.String()+"/contacts/"+uuid.NewString()+"/complete", nil)
			requireError(t, res, http.StatusMethodNotAllowed, CodeMethodNotAllowed)
			require.Equal(t, "POST", res.Header.Get("Allow"))
		})
	})

	t.Run("OKHeaders", func(t *testing.T) {
		res := b.do("GET", "/api/v1/pools", nil)
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
		require.Equal(t, "no-store", res.Header.Get("Cache-Control"))
		require.Contains(t, string(res.Body), `"success":true`)
	})
}

func TestErrorFor(t *testing.T) {
	t.Parallel()
	// An error nobody mapped is a 500 that shows nothing of it.
	ae, log := errorFor(errTest("secret internals"))
	require.True(t, log)
	require.Equal(t, http.StatusInternalServerError, ae.Status)
	require.Equal(t, CodeInternal, ae.Code)
	require.NotContains(t, ae.Details, "secret")
}

// TestServer_LockTimeout: a write that waited out the store's lock timeout
// wrote nothing and may be tried again: a 503 LOCK_TIMEOUT with
// Retry-After, logged as a warning, not as an internal error; the retry
// goes through once the lock is free.
func TestServer_LockTimeout(t *testing.T) {
	t.Parallel()
	var lt *lockTimeoutStore
	b := setupOver(t, func(s store.Store) store.Store { lt = &lockTimeoutStore{Store: s}; return lt })
	p := b.createPool("Frozen", pool.FIFO, 1)
	b.addContacts(p.UUID, 1, 0)
	claim := "/api/v1/pools/" + p.UUID.String() + "/dispatch"

	lt.armed.Store(true)
	b.unchanged(func() {
		for _, req := range []struct{ method, path, body string }{
			{"POST", claim, ``},
			{"POST", "/api/v1/pools/" + p.UUID.String() + "/contacts", `{"contact_uuids": ["` + uuid.NewString() + `"]}`},
			{"PUT", "/api/v1/pools/" + p.UUID.String(), `{"name": "Thawed"}`},
		} {
			res := b.do(req.method, req.path, req.body)
			requireError(t, res, http.StatusServiceUnavailable, CodeLockTimeout)
			require.Equal(t, "1", res.Header.Get("Retry-After"), "%s %s", req.method, req.path)
			require.Contains(t, res.Env.Error.Details, "nothing was written: try again")
		}
	})
	logs := b.logs.String()
	require.Equal(t, 3, strings.Count(logs, "level=WARN"), "logs: %s", logs)
	require.Contains(t, logs, "code=LOCK_TIMEOUT")
	require.NotContains(t, logs, "level=ERROR")

	lt.armed.Store(false)
	res := b.do("POST", claim, nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
}

// TestServer_OutcomeUnknown: any write whose commit's outcome is unknown
// is a 500 OUTCOME_UNKNOWN that says the change may have been written, not
// an INTERNAL_ERROR (a failed request writes nothing); logged as a warning.
func TestServer_OutcomeUnknown(t *testing.T) {
	t.Parallel()
	var cu *commitUnknownStore
	b := setupOver(t, func(s store.Store) store.Store { cu = &commitUnknownStore{Store: s}; return cu })
	cu.armed.Store(true)
	res := b.do("POST", "/api/v1/pools", `{"name": "Maybe", "description": "d"}`)
	cu.armed.Store(false)
	requireError(t, res, http.StatusInternalServerError, CodeOutcomeUnknown)
	require.Contains(t, res.Env.Error.Details, "the change may have been written; read it back before trying again")
	require.Empty(t, res.Header.Get("Retry-After"))
	logs := b.logs.String()
	require.Contains(t, logs, "level=WARN", "logs: %s", logs)
	require.NotContains(t, logs, "level=ERROR")
	pg := data[pool.PoolPage](t, b.do("GET", "/api/v1/pools", nil))
	require.Equal(t, 1, pg.Total, "written here")
}

type errTest string

func (e errTest) Error() string { return string(e) }

// TestServer_PanicIsA500: a panic in an endpoint is a 500 in the envelope,
// logged with its stack, and the server goes on serving; the panic
// http.ErrAbortHandler is left to net/http, which aborts the response.
func TestServer_PanicIsA500(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.srv.handle("GET /api/v1/panic", func(http.ResponseWriter, *http.Request, *queryParams) error { panic("the handler's bug") })
	b.srv.handle("GET /api/v1/abort", func(http.ResponseWriter, *http.Request, *queryParams) error { panic(http.ErrAbortHandler) })

	res := b.do("GET", "/api/v1/panic", nil)
	require.Equal(t, http.StatusInternalServerError, res.Status, "body: %s", res.Body)
	require.Equal(t, CodeInternal, res.Env.Error.Code)
	require.NotContains(t, string(res.Body), "the handler's bug", "a panic's value is logged, not shown")
	require.Contains(t, b.logs.String(), "the handler's bug")
	require.Contains(t, b.logs.String(), "server_test.go", "the log holds the panic's stack")
	require.Equal(t, http.StatusOK, b.do("GET", "/api/v1/pools", nil).Status, "the server goes on serving")

	require.PanicsWithValue(t, http.ErrAbortHandler, func() { b.do("GET", "/api/v1/abort", nil) })
}
