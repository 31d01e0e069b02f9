package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// Machine codes of the error envelope (error.code). They are stable: a client
// may switch on them.
const (
	CodeMissingAuthToken = "MISSING_AUTH_TOKEN"  // 401: no bearer token
	CodeInvalidAuthToken = "INVALID_AUTH_TOKEN"  // 401: a token that is not the accepted one
	CodeInvalidJSON      = "INVALID_JSON"        // 400: empty body, malformed JSON, not an object, trailing data
	CodeNotFound         = "NOT_FOUND"           // 404: no such pool, or contact in the pool (or a malformed UUID in the path)
	CodeRouteNotFound    = "ROUTE_NOT_FOUND"     // 404: no such endpoint
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"  // 405: the path exists, the method does not
	CodeInFlight         = "IN_FLIGHT"           // 409: an item of the pool is in flight
	CodeLeaseLost        = "LEASE_LOST"          // 409: the lease was settled, expired or superseded
	CodeAtCapacity       = "AT_CAPACITY"         // 409: items are due but the pool's in-flight cap is reached
	CodePoolHeld         = "POOL_HELD"           // 409: the pool's campaign does not dispatch now (Draft, Paused, Completed, Archived)
	CodeWrongStatus      = "WRONG_STATUS"        // 409: an action the campaign's (or the item's) status does not allow
	CodeConflict         = "CONFLICT"            // 409: another campaign governs the pool, or a campaign uses the rule
	CodePayloadTooLarge  = "PAYLOAD_TOO_LARGE"   // 413: the body exceeds MaxBodyBytes
	CodeValidation       = "VALIDATION_ERROR"    // 422: fields fail their rules, hold the wrong JSON type, or are unknown
	CodeInternal         = "INTERNAL_ERROR"      // 500: anything else (logged, not shown)
	CodeOutcomeUnknown   = "OUTCOME_UNKNOWN"     // 500: the database connection failed after the commit was sent; the change may have been written
	CodeUnavailable      = "SERVICE_UNAVAILABLE" // 503: the engine is closed or the request was cancelled
	CodeLockTimeout      = "LOCK_TIMEOUT"        // 503: another session held a lock the write needed too long; nothing written, try again
)

// successEnvelope is the body of every 2xx response.
type successEnvelope struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Data    any    `json:"data"`
}

// errorEnvelope is the body of every error response.
type errorEnvelope struct {
	Success bool      `json:"success"`
	Message string    `json:"message"`
	Error   errorBody `json:"error"`
}

type errorBody struct {
	Code    string `json:"code"`
	Details string `json:"details"`
	// Field is the first failing field, on 422 only (details lists them
	// all).
	Field string `json:"field,omitempty"`
}

// apiError is an error that knows its HTTP response. Handlers return it for
// request problems they find themselves; errors of the engine are mapped by
// errorFor.
type apiError struct {
	Status  int
	Code    string
	Message string
	Details string
	Fields  validate.Errors // 422 only
	// RetryAfter, when positive, is sent as the Retry-After header, in
	// whole seconds: when a retry may go through.
	RetryAfter time.Duration
	// Err is the engine's error the response stands for, if any: the
	// log line names it.
	Err error
}

func (e *apiError) Error() string { return e.Code + ": " + e.Details }

func (e *apiError) Unwrap() error { return e.Err }

// outcomeUnknown is the 500 OUTCOME_UNKNOWN of err, a write whose commit
// was sent but whose outcome the store could not learn
// (store.ErrCommitUnknown): unlike every other failure, it may have
// written. details say what may stand and what the client should do; the
// handlers that know the write say it their way (a claim, a settlement).
func outcomeUnknown(err error, details string) *apiError {
	return &apiError{Status: http.StatusInternalServerError, Code: CodeOutcomeUnknown, Message: "Outcome unknown",
		Details: "the connection to the database failed after the commit was sent: " + details, Err: err}
}

// badRequest is a 400 with code and details.
func badRequest(code, details string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: code, Message: "Malformed request", Details: details}
}

// poolNotFound is the 404 of an unknown pool.
func poolNotFound() *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Pool not found",
		Details: "no pool has this UUID"}
}

// contactNotFound is the 404 of a contact that is not in the pool.
func contactNotFound() *apiError {
	return &apiError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "Contact not found in pool",
		Details: "the pool has no item for this contact UUID"}
}

// unauthorized is the 401 of a missing (CodeMissingAuthToken) or wrong
// (CodeInvalidAuthToken) bearer token.
func unauthorized(code, details string) *apiError {
	return &apiError{Status: http.StatusUnauthorized, Code: code, Message: "Unauthenticated", Details: details}
}

// invalid is the 422 of fe: field names the first failure, details lists
// them all. A field that decode refused (rule unknown, type or utf8) keeps
// that failure alone: it was left out of the request, so the rules that ran
// on the rest may report it again as missing.
func invalid(fe validate.Errors) *apiError {
	refused := map[string]bool{}
	for _, f := range fe {
		if refusal(f.Rule) {
			refused[f.Field] = true
		}
	}
	fe = slices.DeleteFunc(slices.Clone(fe), func(f validate.FieldError) bool {
		return refused[f.Field] && !refusal(f.Rule)
	})
	// A field's name may be the client's (an unknown key or parameter):
	// bounded as a value is (validate.Quote), so that a long name is not
	// sent back twice (in details and in field).
	for i := range fe {
		fe[i].Field = clip(fe[i].Field)
	}
	// Bounded: a body of many bad fields must not buy a response many
	// times its size.
	more := max(len(fe)-maxListedFailures, 0)
	fe = fe[:len(fe)-more]
	msgs := make([]string, len(fe), len(fe)+1)
	for i, f := range fe {
		msgs[i] = f.Error()
	}
	if more > 0 {
		msgs = append(msgs, fmt.Sprintf("%d more failures not listed", more))
	}
	return &apiError{Status: http.StatusUnprocessableEntity, Code: CodeValidation,
		Message: "The given data was invalid", Details: strings.Join(msgs, "; "), Fields: fe}
}

// lockRetryAfter is the Retry-After of a 503 LOCK_TIMEOUT: a lock held
// past the store's lock timeout is a stalled session, which the database
// ends (or a node that died, whose locks go with its connection); a second
// is a fair first wait.
const lockRetryAfter = time.Second

// maxListedFailures bounds the failing fields a 422 lists; the details
// then give the number of the others.
const maxListedFailures = 100

// errorFor maps an error to its response. Unexpected errors become a 500
// whose details say nothing; the second result reports whether the error
// deserves a log line.
func errorFor(err error) (*apiError, bool) {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae, false
	}
	var fe validate.Errors
	if errors.As(err, &fe) && len(fe) > 0 {
		return invalid(fe), false
	}
	var one validate.FieldError
	if errors.As(err, &one) {
		return invalid(validate.Errors{one}), false
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return poolNotFound(), false
	case errors.Is(err, queue.ErrLeaseLost):
		return &apiError{Status: http.StatusConflict, Code: CodeLeaseLost, Message: "Lease lost",
			Details: "the lease was settled, expired, or the item was dispatched again"}, false
	case errors.Is(err, queue.ErrAtCapacity):
		return &apiError{Status: http.StatusConflict, Code: CodeAtCapacity, Message: "Pool is at capacity",
			Details: "items are due but the pool has as many in flight as its cap allows; settle a lease, or claim with ?wait="}, false
	case errors.Is(err, queue.ErrInFlight):
		return &apiError{Status: http.StatusConflict, Code: CodeInFlight, Message: "Items are in flight",
			Details: "an item of the pool is being attempted (Processing or In_Call); settle or release it first"}, false
	case errors.Is(err, queue.ErrHeld):
		return &apiError{Status: http.StatusConflict, Code: CodePoolHeld, Message: "Pool is held by its campaign",
			Details: "the pool is attached to a campaign that is not In Process; start or resume the campaign, or detach the pool"}, false
	case errors.Is(err, queue.ErrWrongStatus):
		return &apiError{Status: http.StatusConflict, Code: CodeWrongStatus, Message: "Not allowed in the item's status",
			Details: err.Error()}, false
	case errors.Is(err, campaign.ErrWrongStatus):
		return &apiError{Status: http.StatusConflict, Code: CodeWrongStatus, Message: "Not allowed in the campaign's status",
			Details: err.Error()}, false
	case errors.Is(err, campaign.ErrConflict):
		return &apiError{Status: http.StatusConflict, Code: CodeConflict, Message: "Conflict",
			Details: err.Error()}, false
	case errors.Is(err, store.ErrCommitUnknown):
		return outcomeUnknown(err, "the change may have been written; read it back before trying again"), false
	case errors.Is(err, store.ErrLockTimeout):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeLockTimeout, Message: "Database busy",
			Details:    "another session (another server, or a process on the same database) held a lock this write needed for longer than the lock timeout; nothing was written: try again",
			RetryAfter: lockRetryAfter}, false
	case errors.Is(err, queue.ErrClosed):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "Service unavailable",
			Details: "the server is shutting down"}, false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "Service unavailable",
			Details: "the request was cancelled"}, false
	}
	return &apiError{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "Internal server error",
		Details: "the error was logged"}, true
}

// writeJSON writes v as the response body with status. HTML characters are
// not escaped: the body is JSON for API clients, not markup. poolq's types
// (pools, items and their payloads, leases, rules, campaigns) leave that
// choice to this encoder, so a payload comes back at the size it was sent.
func (s *server) writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		s.log.Error("httpapi: encode response", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"success":false,"message":"Internal server error","error":{"code":"INTERNAL_ERROR","details":"the error was logged"}}` + "\n")
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	// Always, even for a body larger than net/http buffers: a client can
	// tell an answer cut short (see dispatch).
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// ok writes a success envelope.
func (s *server) ok(w http.ResponseWriter, status int, message string, data any) {
	s.writeJSON(w, status, successEnvelope{Success: true, Message: message, Data: data})
}

// writeError writes the error envelope of err.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae, log := errorFor(err)
	switch {
	case log:
		s.log.Error("httpapi: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	case errors.Is(err, store.ErrLockTimeout), errors.Is(err, store.ErrCommitUnknown):
		// Failures of the database's moment (a stalled session, a lost
		// connection), not of this server: worth an operator's eye when
		// they last, not internal errors.
		s.log.Warn("httpapi: request failed", "method", r.Method, "path", r.URL.Path, "code", ae.Code, "err", err)
	}
	body := errorBody{Code: ae.Code, Details: ae.Details}
	if len(ae.Fields) > 0 {
		body.Field = ae.Fields[0].Field
	}
	if ae.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="poolq"`)
	}
	if ae.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ae.RetryAfter+time.Second-1)/time.Second)))
	}
	s.writeJSON(w, ae.Status, errorEnvelope{Success: false, Message: ae.Message, Error: body})
}

// maxEchoed is the most bytes of a name the client chose (a field, a
// query parameter, a path, a method) that an error response shows.
const maxEchoed = 200

// clip is s, cut to at most maxEchoed bytes at a rune boundary and marked
// with its length when it is longer.
func clip(s string) string {
	if len(s) <= maxEchoed {
		return s
	}
	i := maxEchoed
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return fmt.Sprintf("%s… (%d bytes)", s[:i], len(s))
}
