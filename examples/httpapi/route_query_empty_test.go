package main

import (
	"net/http"
	"testing"

	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

// TestQuery_EmptyName: a query parameter without a name (?=1, ?=) is
// refused like any other the endpoint does not take, and its 422 keeps the
// envelope's promise: error.field names the first failing field, as it
// does ("query") for a name that does not decode. Each endpoint now reads
// its query, so this is every endpoint's answer.
func TestQuery_EmptyName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Unnamed", pool.FIFO, 1)
	b.addContacts(p.UUID, 1, 0)
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/pools?=1"},
		{"DELETE", "/api/v1/pools/" + p.UUID.String() + "?=1"},
		{"POST", "/api/v1/pools/" + p.UUID.String() + "/dispatch?="},
	} {
		b.unchanged(func() {
			res := b.do(req.method, req.path, nil) // decodeResponse: field is set on a 422
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, "%s %s: %s", req.method, req.path, res.Body)
			require.NotEmpty(t, res.Env.Error.Field, "%s %s: %s", req.method, req.path, res.Body)
		})
	}
}
