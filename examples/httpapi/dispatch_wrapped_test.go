package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestDispatch_BehindWrapperWithoutFlush: a claim served through a
// handler whose ResponseWriter cannot flush (net/http's own
// TimeoutHandler, or any logging or metrics middleware that wraps the
// writer without Unwrap) reaches its client whole, once the handler
// returns. Its lease must stand: the client has it and will settle it. A
// Flush that is not supported says nothing about the client; giving the
// lease back would make the contact due again while the client dials it
// (dispatched twice), and the client's settle a 409 LEASE_LOST.
func TestDispatch_BehindWrapperWithoutFlush(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Wrapped", pool.FIFO, 1)
	c := b.addContacts(p.UUID, 1, 0)[0]

	h := http.TimeoutHandler(b.srv, time.Minute, "timeout")
	req := httptest.NewRequest("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := decodeResponse(t, rec.Code, rec.Header(), rec.Body.Bytes())
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	l := data[queue.Lease](t, res)
	require.Equal(t, c, l.ContactUUID)

	require.Equal(t, pool.StatusProcessing, b.item(p.UUID, c).Status,
		"the client got the lease: the item stays claimed")
	done := b.settle(l, "complete", map[string]any{"token": l.Token, "note": "answered"})
	require.Equal(t, http.StatusOK, done.Status, "the client settles its lease: %s", done.Body)
}
