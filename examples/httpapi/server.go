package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
)

// server is the contact-pool REST API over a queue.Engine. It is an
// http.Handler, safe for concurrent use.
type server struct {
	eng   *queue.Engine
	token [sha256.Size]byte // SHA-256 of the accepted bearer token
	open  bool              // false when no token was given: every request gets 401
	mux   *http.ServeMux
	log   *slog.Logger
	// routes maps the pattern of each endpoint to the query parameters
	// it takes.
	routes map[string][]string

	// stopping is done once stopWaiting is called: waiting claims return.
	stopping context.Context
	stop     context.CancelFunc
}

// newServer returns the API over eng, accepting the bearer token. An empty
// token refuses every request with 401 (the server fails closed). The caller
// keeps ownership of eng. Errors it does not show a client (500s) go to
// log, or nowhere when log is nil.
func newServer(eng *queue.Engine, token string, log *slog.Logger) *server {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &server{
		eng:    eng,
		token:  sha256.Sum256([]byte(token)),
		open:   token != "",
		mux:    http.NewServeMux(),
		log:    log,
		routes: map[string][]string{},
	}
	s.stopping, s.stop = context.WithCancel(context.Background())

	// Every endpoint, with the query parameters it takes: this list alone
	// says which, and handle refuses any other (see newQuery).
	s.handle("POST /api/v1/pools", s.createPool)
	s.handle("GET /api/v1/pools", s.listPools, "page", "per_page", "type", "is_active", "search")
	s.handle("GET /api/v1/pools/{uuid}", s.getPool)
	s.handle("PUT /api/v1/pools/{uuid}", s.updatePool)
	s.handle("DELETE /api/v1/pools/{uuid}", s.deletePool)
	s.handle("POST /api/v1/pools/{uuid}/duplicate", s.duplicatePool)
	s.handle("POST /api/v1/pools/{uuid}/contacts", s.addContacts)
	s.handle("GET /api/v1/pools/{uuid}/contacts", s.listContacts, "page", "per_page", "status", "search")

	s.handle("POST /api/v1/pools/{uuid}/dispatch", s.dispatch, "wait")
	s.handle("POST /api/v1/pools/{uuid}/contacts/{contact}/in-call", s.inCall)
	s.handle("POST /api/v1/pools/{uuid}/contacts/{contact}/extend", s.extend)
	s.handle("POST /api/v1/pools/{uuid}/contacts/{contact}/complete", s.complete)
	s.handle("POST /api/v1/pools/{uuid}/contacts/{contact}/fail", s.fail)
	s.handle("POST /api/v1/pools/{uuid}/contacts/{contact}/release", s.release)

	s.handle("POST /api/v1/rules", s.createRule)
	s.handle("GET /api/v1/rules", s.listRules, "page", "per_page", "type", "search")
	s.handle("GET /api/v1/rules/{uuid}", s.getRule)
	s.handle("PUT /api/v1/rules/{uuid}", s.updateRule)
	s.handle("DELETE /api/v1/rules/{uuid}", s.deleteRule)

	s.handle("POST /api/v1/campaigns", s.createCampaign)
	s.handle("GET /api/v1/campaigns", s.listCampaigns, "page", "per_page", "status", "search", "rule_uuid")
	s.handle("GET /api/v1/campaigns/{uuid}", s.getCampaign)
	s.handle("PUT /api/v1/campaigns/{uuid}", s.updateCampaign)
	s.handle("DELETE /api/v1/campaigns/{uuid}", s.deleteCampaign)
	for _, a := range []campaign.Action{campaign.Start, campaign.Pause, campaign.Resume, campaign.Complete, campaign.Archive} {
		s.handle("POST /api/v1/campaigns/{uuid}/"+string(a), s.campaignAction(a))
	}
	s.handle("POST /api/v1/campaigns/{uuid}/pools", s.attachPools)
	s.handle("DELETE /api/v1/campaigns/{uuid}/pools/{pool}", s.detachPool)
	s.handle("PUT /api/v1/campaigns/{uuid}/rule", s.assignRule)

	s.handle("POST /api/v1/dnc", s.addDNC)
	s.handle("GET /api/v1/dnc", s.listDNC, "page", "per_page")
	s.handle("GET /api/v1/dnc/{contact}", s.getDNC)
	s.handle("DELETE /api/v1/dnc/{contact}", s.removeDNC)
	s.handle("POST /api/v1/contacts/{contact}/opt-out", s.optOut)
	s.handle("GET /api/v1/escalations", s.listEscalations, "after", "limit", "pool_uuid")
	return s
}

// handler is an endpoint. q is the request's query, read for the
// parameters the endpoint takes (newQuery): its failures (a parameter the
// endpoint does not take, one given twice or not URL-encoded) are already
// in q.v. A handler adds its own failures to q.v (the query's values, the
// body's fields: one 422 names them all), or returns q.err() first, and
// never changes anything while q.v has failed.
type handler func(w http.ResponseWriter, r *http.Request, q *queryParams) error

// handle registers h for pattern, taking the query parameters named in
// query and no other. h's returned error becomes the error envelope. A
// panic in h is a 500 in the envelope too, logged with its stack (h
// writes its response only once it has it whole, so nothing was written
// yet); http.ErrAbortHandler goes on to net/http, which aborts the
// response.
func (s *server) handle(pattern string, h handler, query ...string) {
	s.routes[pattern] = query
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
		}()
		if err := h(w, r, newQuery(r, query...)); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// stopWaiting makes the claims waiting for an item (?wait=) give up at once,
// as if their wait had run out, and every later claim not wait. Register it
// with http.Server.RegisterOnShutdown, so that a shutdown does not wait for
// them.
func (s *server) stopWaiting() { s.stop() }

// ServeHTTP authenticates the request, then routes it. Unknown paths and
// methods get the error envelope too (404; 405 with Allow).
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.authenticate(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if p := r.URL.Path; p != cleanPath(p) {
		// The mux would redirect to the clean path, in HTML: an API
		// client gets its 404 in the envelope instead.
		s.writeError(w, r, &apiError{Status: http.StatusNotFound, Code: CodeRouteNotFound,
			Message: "Route not found", Details: "no endpoint " + clip(r.Method) + " " + clip(p)})
		return
	}
	if h, pattern := s.mux.Handler(r); pattern == "" {
		// Let the mux decide between 404 and 405 (and compute Allow), then
		// answer in the envelope instead of its plain text.
		rec := &headerRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			s.writeError(w, r, &apiError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
				Message: "Method not allowed", Details: clip(r.Method) + " is not allowed here; allowed: " + allow})
			return
		}
		s.writeError(w, r, &apiError{Status: http.StatusNotFound, Code: CodeRouteNotFound,
			Message: "Route not found", Details: "no endpoint " + clip(r.Method) + " " + clip(r.URL.Path)})
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authenticate checks the bearer token in constant time: the SHA-256 of the
// presented token is compared with the accepted one's, so neither its
// contents nor its length leak through timing.
func (s *server) authenticate(r *http.Request) error {
	h := strings.TrimSpace(r.Header.Get("Authorization"))
	if len(r.Header.Values("Authorization")) > 1 {
		// Which one counts is a guess (this server would read the first,
		// a proxy in front of it may have checked another): refused, as a
		// query parameter or a body field given twice is.
		return unauthorized(CodeInvalidAuthToken, "more than one Authorization header; send one")
	}
	scheme, token, _ := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if h == "" || (strings.EqualFold(scheme, "Bearer") && token == "") {
		return unauthorized(CodeMissingAuthToken, "missing Authorization: Bearer <token> header")
	}
	got := sha256.Sum256([]byte(token))
	match := subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
	if !strings.EqualFold(scheme, "Bearer") || !s.open || !match {
		return unauthorized(CodeInvalidAuthToken, "invalid bearer token")
	}
	return nil
}

// headerRecorder captures the status and headers of the mux's own 404 and
// 405 handlers, dropping their plain-text bodies.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// cleanPath is p with "//", "/./" and "/../" resolved, as ServeMux cleans
// it (a trailing slash kept).
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
