package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// Limits of the dispatch endpoints.
const (
	MaxWait        = 30 * time.Second    // longest ?wait= of a claim
	MaxExtend      = 24 * time.Hour      // longest extension of a lease ("seconds" ≤ 86400)
	MaxNoteLen     = pool.MaxNoteLen     // longest note, in characters
	MaxRetryAhead  = queue.MaxRetryDelay // latest retry_at, from now
	releaseTimeout = 5 * time.Second     // to give back the lease of a client that left
)

// dispatch: POST /api/v1/pools/{uuid}/dispatch?wait=. 200 with a
// queue.Lease; 204 when nothing is due; 409 AT_CAPACITY when items are due
// but the pool's in-flight cap is reached. The body may only be empty or {}:
// its failures join the query's, so that one 422 names them all.
func (s *server) dispatch(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	id, err := pathPool(r)
	if err != nil {
		return err
	}
	wait := q.duration("wait", MaxWait)
	if err := noBody(w, r, &q.v); err != nil {
		return err
	}
	if err := q.err(); err != nil {
		return err
	}

	ctx := r.Context()
	var l *queue.Lease
	if wait > 0 && s.stopping.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, wait)
		stopWatching := context.AfterFunc(s.stopping, cancel)
		l, err = s.eng.Dequeue(wctx, id)
		stopWatching()
		cancel()
		if err != nil && wctx.Err() != nil && ctx.Err() == nil {
			l, err = nil, nil // the wait ran out (or the server is stopping): one last try says why
		}
	}
	if l == nil && err == nil {
		l, err = s.eng.TryDequeue(ctx, id)
	}
	if errors.Is(err, queue.ErrEmpty) {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	if errors.Is(err, store.ErrCommitUnknown) {
		return outcomeUnknown(err, "the claim may have stood; if it did, the server gives it back, unattempted, "+
			"as soon as the database answers (else it expires as a failed attempt); claim again")
	}
	if err != nil {
		return err // ErrAtCapacity is a 409
	}
	if ctx.Err() != nil {
		// The client left: nobody will settle this lease.
		s.giveBack(ctx, l)
		return ctx.Err()
	}
	s.ok(w, http.StatusOK, "Item dispatched", l)
	// Sent now rather than once the handler returns, to learn whether it
	// could be: a write that fails leaves part of the answer unsent (its
	// Content-Length tells the client it is cut short), so the client
	// does not have the lease. One that succeeds only says the operating
	// system took the bytes: see "A claim whose client is gone" in the
	// package doc.
	// A writer that cannot flush (behind http.TimeoutHandler, or a
	// middleware's wrapper without Unwrap) says nothing of the client: the
	// answer goes when the handler returns, and the lease stands.
	if err := http.NewResponseController(w).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.giveBack(ctx, l)
	}
	return nil
}

// giveBack releases l, the lease of a claim whose client cannot have it
// (it left, or the answer could not be written), rather than let it expire
// as a failed attempt of a contact nobody called. A failure is logged: the
// lease then expires.
func (s *server) giveBack(ctx context.Context, l *queue.Lease) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := s.eng.Release(rctx, l); err != nil {
		s.log.Warn("httpapi: release the lease of a departed client",
			"pool", l.PoolUUID, "contact", l.ContactUUID, "token", l.Token, "err", err)
	}
}

// duration reads a duration parameter, a Go duration ("1.5s", "500ms") or
// whole seconds ("5"), in [0, hi].
func (p *queryParams) duration(name string, hi time.Duration) time.Duration {
	s := p.q.Get(name)
	if s == "" {
		return 0
	}
	d, err := time.ParseDuration(s)
	if n, nerr := strconv.ParseInt(s, 10, 64); nerr == nil {
		d, err = time.Duration(min(max(n, -1), int64(hi/time.Second)+1))*time.Second, nil // clamped: no overflow
	}
	if err != nil {
		p.v.Add(name, validate.RuleFormat, fmt.Sprintf(`must be a duration like "5s" or a number of seconds (got %s)`, validate.Quote(s)))
		return 0
	}
	if d < 0 || d > hi {
		p.v.Add(name, validate.RuleRange, fmt.Sprintf("must be between 0s and %v (got %s)", hi, validate.Quote(s)))
		return 0
	}
	return d
}

// leaseRef is what every settle request body takes back from the claim: the
// token and the item_id (a pointer, to tell a missing one from 0). The pool
// and the contact are in the path.
type leaseRef struct {
	Token  int64  `json:"token"`
	ItemID *int64 `json:"item_id"`
}

// The bodies of the settle endpoints.
type (
	completeRequest struct {
		leaseRef
		Note string `json:"note"`
	}
	failRequest struct {
		leaseRef
		Note    string `json:"note"`
		RetryAt string `json:"retry_at"` // RFC 3339; a string so that a bad one is a 422 on retry_at
		Final   bool   `json:"final"`
	}
	extendRequest struct {
		leaseRef
		Seconds int `json:"seconds"`
	}
)

// settleBody is the body of a settle endpoint.
type settleBody interface {
	ref() *leaseRef
	check(v *validate.Validator)
}

// inCall: POST /api/v1/pools/{uuid}/contacts/{contact}/in-call. 200 with
// the lease, its item In_Call.
func (s *server) inCall(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in leaseRef
	l, err := s.settleRequest(w, r, q, &in)
	if err != nil {
		return err
	}
	if err := s.eng.MarkInCall(r.Context(), l); err != nil {
		return settleFailed(err)
	}
	s.ok(w, http.StatusOK, "Item marked in call successfully", l)
	return nil
}

// extend: POST /api/v1/pools/{uuid}/contacts/{contact}/extend. 200 with the
// lease, ending "seconds" from now.
func (s *server) extend(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in extendRequest
	l, err := s.settleRequest(w, r, q, &in)
	if err != nil {
		return err
	}
	if err := s.eng.Extend(r.Context(), l, time.Duration(in.Seconds)*time.Second); err != nil {
		return settleFailed(err)
	}
	s.ok(w, http.StatusOK, "Lease extended successfully", l)
	return nil
}

// complete: POST /api/v1/pools/{uuid}/contacts/{contact}/complete. 200 with
// the item, Completed.
func (s *server) complete(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in completeRequest
	l, err := s.settleRequest(w, r, q, &in)
	if err != nil {
		return err
	}
	if err := s.eng.Complete(r.Context(), l, in.Note); err != nil {
		return settleFailed(err)
	}
	s.ok(w, http.StatusOK, "Item completed successfully", l.Item)
	return nil
}

// fail: POST /api/v1/pools/{uuid}/contacts/{contact}/fail. 200 with the
// item: Retrying, Scheduled (retry_at) or Failed (final, or no attempts
// left).
func (s *server) fail(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in failRequest
	l, err := s.settleRequest(w, r, q, &in)
	if err != nil {
		return err
	}
	f := queue.Failure{Final: in.Final, Note: in.Note}
	if in.RetryAt != "" {
		f.RetryAt, _ = time.Parse(time.RFC3339, in.RetryAt) // checked
		f.RetryAt = f.RetryAt.UTC()
	}
	if err := s.eng.Fail(r.Context(), l, f); err != nil {
		return settleFailed(err)
	}
	s.ok(w, http.StatusOK, "Failure recorded successfully", l.Item)
	return nil
}

// release: POST /api/v1/pools/{uuid}/contacts/{contact}/release. 200 with
// the item, due again at once, the attempt not counted; 409 WRONG_STATUS
// once its call connected (queue.Engine.Release refuses no other status).
func (s *server) release(w http.ResponseWriter, r *http.Request, q *queryParams) error {
	var in leaseRef
	l, err := s.settleRequest(w, r, q, &in)
	if err != nil {
		return err
	}
	err = s.eng.Release(r.Context(), l)
	if errors.Is(err, queue.ErrWrongStatus) {
		// The engine's message names its operation at each layer
		// ("release: release: …"); the client gets it said once.
		return &apiError{Status: http.StatusConflict, Code: CodeWrongStatus, Message: "Not allowed in the item's status",
			Details: "the call connected (In_Call): the attempt counts, so the item is not given back; complete or fail it"}
	}
	if err != nil {
		return settleFailed(err)
	}
	s.ok(w, http.StatusOK, "Item released successfully", l.Item)
	return nil
}

// settleFailed is the error of a settlement that failed: err itself, but
// for a commit whose outcome is unknown, which says what to do about a
// settlement that may have been written.
func settleFailed(err error) error {
	if errors.Is(err, store.ErrCommitUnknown) {
		return outcomeUnknown(err, "the settlement may have been written; read the item "+
			"(GET /api/v1/pools/{uuid}/contacts) before trying again: a complete, fail or release "+
			"that was written answers 409 LEASE_LOST when tried again")
	}
	return err
}

// settleRequest reads the path and the body of a settle endpoint into in,
// validates it beside q, the query, and rebuilds the lease it names: 404
// for an unknown pool or a contact not in it, 400 for a malformed body,
// 422 for bad fields (or query parameters), 409 LEASE_LOST for an item_id
// that is not the contact's current item.
func (s *server) settleRequest(w http.ResponseWriter, r *http.Request, q *queryParams, in settleBody) (*queue.Lease, error) {
	poolID, contact, err := pathContact(r)
	if err != nil {
		return nil, err
	}
	v := &q.v
	if err := decode(w, r, v, in, false); err != nil {
		return nil, err
	}
	in.check(v)
	if err := v.Err(); err != nil {
		return nil, err
	}
	ref := in.ref()
	return s.lease(r.Context(), poolID, contact, ref.Token, ref.ItemID)
}

// lease rebuilds the queue.Lease of a claim from what the client sends back:
// pool and contact (path), token and item_id (body). The item_id must be
// the contact's current item, or the lease was of an item since removed
// (and the contact added again, a new item whose tokens start over): 409.
// The engine then checks item and token, authoritatively, in the settling
// transaction.
func (s *server) lease(ctx context.Context, poolID, contact uuid.UUID, token int64, itemID *int64) (*queue.Lease, error) {
	it, err := s.eng.Item(ctx, poolID, contact)
	if errors.Is(err, store.ErrNotFound) {
		if _, perr := s.eng.Pool(ctx, poolID); perr != nil {
			return nil, perr // store.ErrNotFound is the pool's 404
		}
		return nil, contactNotFound()
	}
	if err != nil {
		return nil, err
	}
	if itemID != nil && *itemID != it.ID {
		return nil, fmt.Errorf("item %d is not the contact's current item: %w", *itemID, queue.ErrLeaseLost)
	}
	return &queue.Lease{
		PoolUUID:    poolID,
		ContactUUID: contact,
		ItemID:      it.ID,
		Token:       token,
		Attempt:     it.Attempts,
		ExpiresAt:   it.LeaseExpiresAt, // when it is taken back; MarkInCall and Extend set the holder's deadline
		Item:        it,
	}, nil
}

func (in *leaseRef) ref() *leaseRef { return in }

// check checks the token and item_id.
func (in *leaseRef) check(v *validate.Validator) {
	switch {
	case in.Token == 0:
		v.Add("token", validate.RuleRequired, "is required: the token of the claim")
	case in.Token < 0:
		v.Add("token", validate.RuleRange, "must be positive")
	}
	switch {
	case in.ItemID == nil:
		v.Add("item_id", validate.RuleRequired, "is required: the item_id of the claim")
	case *in.ItemID <= 0:
		v.Add("item_id", validate.RuleRange, "must be positive")
	}
}

func (in *completeRequest) check(v *validate.Validator) {
	in.leaseRef.check(v)
	v.Text("note", in.Note, MaxNoteLen)
}

func (in *extendRequest) check(v *validate.Validator) {
	in.leaseRef.check(v)
	v.IntRange("seconds", in.Seconds, 1, int(MaxExtend/time.Second))
}

func (in *failRequest) check(v *validate.Validator) {
	in.leaseRef.check(v)
	v.Text("note", in.Note, MaxNoteLen)
	if in.RetryAt == "" {
		return
	}
	t, err := time.Parse(time.RFC3339, in.RetryAt)
	switch {
	case err != nil:
		v.Add("retry_at", validate.RuleFormat,
			fmt.Sprintf("must be an RFC 3339 time like 2023-11-07T05:31:56Z (got %s)", validate.Quote(in.RetryAt)))
	case in.Final:
		v.Add("retry_at", validate.RuleExclusive, "must not be given with final: a final failure is never retried")
	case t.Unix() <= 0 || t.After(time.Now().Add(MaxRetryAhead)):
		v.Add("retry_at", validate.RuleRange, "must be after 1970 and at most 366 days from now")
	}
}
