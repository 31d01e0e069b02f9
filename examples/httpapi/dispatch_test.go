package main

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// claim claims the next item of a pool through the API.
func (b *testBundle) claim(poolID uuid.UUID) queue.Lease {
	b.t.Helper()
	res := b.do("POST", "/api/v1/pools/"+poolID.String()+"/dispatch", nil)
	require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
	return data[queue.Lease](b.t, res)
}

// settle posts body to a settle endpoint (complete, fail, …) of the lease's
// contact.
// settle posts body to a settle endpoint of l. A map body gets l's item_id,
// as a client sends it back, unless it has an "item_id" key already (a nil
// value removes the key: a body without item_id).
func (b *testBundle) settle(l queue.Lease, action string, body any) response {
	b.t.Helper()
	if m, ok := body.(map[string]any); ok {
		m = maps.Clone(m)
		if v, set := m["item_id"]; !set {
			m["item_id"] = l.ItemID
		} else if v == nil {
			delete(m, "item_id")
		}
		body = m
	}
	return b.do("POST", settlePath(l.PoolUUID, l.ContactUUID, action), body)
}

func settlePath(poolID, contact uuid.UUID, action string) string {
	return "/api/v1/pools/" + poolID.String() + "/contacts/" + contact.String() + "/" + action
}

// item reads an item through the engine.
func (b *testBundle) item(poolID, contact uuid.UUID) pool.Item {
	b.t.Helper()
	it, err := b.eng.Item(context.Background(), poolID, contact)
	require.NoError(b.t, err)
	return it
}

func TestDispatch(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		cs := b.addContacts(p.UUID, 2, 0)

		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Item dispatched", res.Env.Message)
		m := dataMap(t, res)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"pool_uuid", "contact_uuid", "item_id", "token", "attempt", "expires_at", "item"}, keys)

		l := data[queue.Lease](t, res)
		require.Equal(t, p.UUID, l.PoolUUID)
		require.Equal(t, cs[0], l.ContactUUID, "FIFO: oldest first")
		require.Positive(t, l.Token)
		require.Equal(t, 1, l.Attempt)
		require.Equal(t, b.clock.Now().Add(time.Minute), l.ExpiresAt, "the engine's LeaseTimeout")
		require.Equal(t, pool.StatusProcessing, l.Item.Status)
		require.Equal(t, cs[0], l.Item.ContactUUID)

		it := b.item(p.UUID, cs[0])
		require.Equal(t, it.ID, l.ItemID)
		require.Equal(t, it.Token, l.Token)
		require.Equal(t, pool.StatusProcessing, it.Status)
	})

	t.Run("OKOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		lifo := b.createPool("Hot", pool.LIFO, 1)
		cs := b.addContacts(lifo.UUID, 3, 0)
		require.Equal(t, cs[2], b.claim(lifo.UUID).ContactUUID, "LIFO: newest first")

		par := b.createPool("Parallel", pool.Parallel, 3)
		low := b.addContacts(par.UUID, 2, 1)
		high := b.addContacts(par.UUID, 1, 5)
		require.Equal(t, high[0], b.claim(par.UUID).ContactUUID, "Parallel: highest priority first")
		require.Equal(t, low[0], b.claim(par.UUID).ContactUUID, "then oldest")
		require.Equal(t, low[1], b.claim(par.UUID).ContactUUID)
	})

	t.Run("OKEmptyIs204", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
			require.Equal(t, http.StatusNoContent, res.Status)
			res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", `{}`)
			require.Equal(t, http.StatusNoContent, res.Status, "an empty object is an empty body")
		})
		// Everything completed: nothing due either.
		b.addContacts(p.UUID, 1, 0)
		l := b.claim(p.UUID)
		require.Equal(t, http.StatusOK, b.settle(l, "complete", map[string]any{"token": l.Token}).Status)
		require.Equal(t, http.StatusNoContent, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil).Status)
	})

	t.Run("ErrAtCapacityIs409", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		serial := b.createPool("Serial", pool.FIFO, 10)
		b.addContacts(serial.UUID, 2, 0)
		b.claim(serial.UUID)
		par := b.createPool("Parallel", pool.Parallel, 2)
		b.addContacts(par.UUID, 3, 0)
		b.claim(par.UUID)
		b.claim(par.UUID)
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools/"+serial.UUID.String()+"/dispatch", nil)
			requireError(t, res, http.StatusConflict, CodeAtCapacity)
			require.Equal(t, "Pool is at capacity", res.Env.Message)
			res = b.do("POST", "/api/v1/pools/"+par.UUID.String()+"/dispatch", nil)
			requireError(t, res, http.StatusConflict, CodeAtCapacity)
		})
	})

	t.Run("Err", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		b.addContacts(p.UUID, 1, 0)
		path := "/api/v1/pools/" + p.UUID.String() + "/dispatch"
		b.unchanged(func() {
			requireError(t, b.do("POST", "/api/v1/pools/"+uuid.NewString()+"/dispatch", nil), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("POST", "/api/v1/pools/nope/dispatch", nil), http.StatusNotFound, CodeNotFound)
			requireInvalid(t, b.do("POST", path+"?wait=31s", nil), "wait")
			requireInvalid(t, b.do("POST", path+"?wait=-1", nil), "wait")
			requireInvalid(t, b.do("POST", path+"?wait=soon", nil), "wait")
			requireInvalid(t, b.do("POST", path, `{"n": 2}`), "n")
			requireError(t, b.do("POST", path, `{`), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("GET", path, nil), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
		})
	})

	t.Run("ErrClientGoneClaimsNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		b.addContacts(p.UUID, 1, 0)
		for _, query := range []string{"", "?wait=5s"} {
			b.unchanged(func() {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				req := httptest.NewRequestWithContext(ctx, "POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch"+query, nil)
				req.Header.Set("Authorization", "Bearer "+testToken)
				rec := httptest.NewRecorder()
				b.srv.ServeHTTP(rec, req)
				require.Equal(t, http.StatusServiceUnavailable, rec.Code, "query %q: %s", query, rec.Body)
			})
		}
	})
}

// TestDispatch_EveryBadQueryAndBodyField: one 422 names a bad ?wait= and a
// field the body may not have, and claims nothing.
func TestDispatch_EveryBadQueryAndBodyField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	b.addContacts(p.UUID, 1, 0)
	b.unchanged(func() {
		requireInvalid(t, b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch?wait=abc", `{"x": 1}`), "wait", "x")
	})
}

func TestDispatch_Wait(t *testing.T) {
	t.Parallel()

	// claimAsync claims with a query in the background; the response comes on
	// the channel, with how long it took.
	claimAsync := func(b *testBundle, poolID uuid.UUID, query string) <-chan response {
		ch := make(chan response, 1)
		go func() {
			req := httptest.NewRequest("POST", "/api/v1/pools/"+poolID.String()+"/dispatch"+query, nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			rec := httptest.NewRecorder()
			b.srv.ServeHTTP(rec, req)
			ch <- response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
		}()
		return ch
	}
	// claimBlocked is claimAsync that returns once the claim is blocked in
	// the engine: its first look at the pool (one write operation) is done,
	// and it waits for a wake-up.
	claimBlocked := func(b *testBundle, poolID uuid.UUID, query string) <-chan response {
		before := b.eng.Stats().Operations
		ch := claimAsync(b, poolID, query)
		require.Eventually(b.t, func() bool { return b.eng.Stats().Operations > before }, 5*time.Second, time.Millisecond,
			"the claim never looked at the pool")
		return ch
	}
	within := func(t *testing.T, ch <-chan response, d time.Duration) response {
		t.Helper()
		select {
		case res := <-ch:
			return decodeResponse(t, res.Status, res.Header, res.Body)
		case <-time.After(d):
			t.Fatalf("no response within %v", d)
			return response{}
		}
	}

	t.Run("OKWokenByAdd", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		ch := claimBlocked(b, p.UUID, "?wait=20s")
		cs := b.addContacts(p.UUID, 1, 0)
		res := within(t, ch, 5*time.Second)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, cs[0], data[queue.Lease](t, res).ContactUUID)
	})

	t.Run("OKWokenBySettle", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		cs := b.addContacts(p.UUID, 2, 0)
		l := b.claim(p.UUID)
		ch := claimBlocked(b, p.UUID, "?wait=20")
		require.Equal(t, http.StatusOK, b.settle(l, "complete", map[string]any{"token": l.Token}).Status)
		res := within(t, ch, 5*time.Second)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, cs[1], data[queue.Lease](t, res).ContactUUID)
	})

	t.Run("OKRunsOut", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		empty := b.createPool("Empty", pool.FIFO, 1)
		full := b.createPool("Full", pool.FIFO, 1)
		b.addContacts(full.UUID, 2, 0)
		b.claim(full.UUID)

		start := time.Now()
		res := within(t, claimAsync(b, empty.UUID, "?wait=200ms"), 5*time.Second)
		require.Equal(t, http.StatusNoContent, res.Status)
		require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond, "it waited")

		res = within(t, claimAsync(b, full.UUID, "?wait=200ms"), 5*time.Second)
		requireError(t, res, http.StatusConflict, CodeAtCapacity)
	})

	t.Run("OKStopWaiting", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		full := b.createPool("Upsell", pool.FIFO, 1)
		b.addContacts(full.UUID, 2, 0)
		b.claim(full.UUID)
		ch := claimBlocked(b, p.UUID, "?wait=30s")
		chFull := claimBlocked(b, full.UUID, "?wait=30s")
		b.srv.stopWaiting()
		res := within(t, ch, 5*time.Second)
		require.Equal(t, http.StatusNoContent, res.Status, "a shutdown ends the wait")
		requireError(t, within(t, chFull, 5*time.Second), http.StatusConflict, CodeAtCapacity) // as doc.go says

		start := time.Now()
		res = within(t, claimAsync(b, p.UUID, "?wait=30s"), 5*time.Second)
		require.Equal(t, http.StatusNoContent, res.Status)
		require.Less(t, time.Since(start), 5*time.Second, "no waiting once stopping")
	})
}

func TestSettle(t *testing.T) {
	t.Parallel()

	// setupClaimed returns a bundle with a Parallel pool of three contacts,
	// the first one claimed.
	setupClaimed := func(t *testing.T, maxRetries int) (*testBundle, queue.Lease) {
		b := setup(t)
		res := b.do("POST", "/api/v1/pools", map[string]any{
			"name": "Renewals", "description": "d", "type": "Parallel", "max_retries": maxRetries,
		})
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		p := data[pool.Pool](t, res)
		b.addContacts(p.UUID, 3, 0)
		return b, b.claim(p.UUID)
	}

	t.Run("OKComplete", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		b.clock.Advance(10 * time.Second)
		res := b.settle(l, "complete", map[string]any{"token": l.Token, "item_id": l.ItemID, "note": "answered"})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Item completed successfully", res.Env.Message)
		it := data[pool.Item](t, res)
		require.Equal(t, pool.StatusCompleted, it.Status)
		require.Equal(t, "answered", it.Notes)
		require.Equal(t, b.clock.Now(), *it.CompletedAt)
		require.Equal(t, b.item(l.PoolUUID, l.ContactUUID).Status, pool.StatusCompleted, "stored")

		// Settled once: the same lease again is lost, and writes nothing.
		b.unchanged(func() {
			requireError(t, b.settle(l, "complete", map[string]any{"token": l.Token}), http.StatusConflict, CodeLeaseLost)
			requireError(t, b.settle(l, "fail", map[string]any{"token": l.Token}), http.StatusConflict, CodeLeaseLost)
			requireError(t, b.settle(l, "release", map[string]any{"token": l.Token}), http.StatusConflict, CodeLeaseLost)
			requireError(t, b.settle(l, "in-call", map[string]any{"token": l.Token}), http.StatusConflict, CodeLeaseLost)
			requireError(t, b.settle(l, "extend", map[string]any{"token": l.Token, "seconds": 60}), http.StatusConflict, CodeLeaseLost)
		})
	})

	t.Run("OKInCallThenComplete", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		res := b.settle(l, "in-call", map[string]any{"token": l.Token})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Item marked in call successfully", res.Env.Message)
		got := data[queue.Lease](t, res)
		want := l
		want.Item.Status = pool.StatusInCall
		require.Equal(t, want, got, "the same lease, its item In_Call")
		require.Equal(t, pool.StatusInCall, b.item(l.PoolUUID, l.ContactUUID).Status)

		// A connected call is an attempt made: not given back.
		b.unchanged(func() {
			res := b.settle(l, "release", map[string]any{"token": l.Token})
			requireError(t, res, http.StatusConflict, CodeWrongStatus)
			require.Equal(t, "the call connected (In_Call): the attempt counts, so the item is not given back; complete or fail it",
				res.Env.Error.Details, "said once, without the engine's layers of prefixes")
		})

		res = b.settle(l, "complete", map[string]any{"token": l.Token})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, pool.StatusCompleted, data[pool.Item](t, res).Status)
	})

	t.Run("OKExtend", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		res := b.settle(l, "extend", map[string]any{"token": l.Token, "seconds": 600})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Lease extended successfully", res.Env.Message)
		got := data[queue.Lease](t, res)
		require.Equal(t, b.clock.Now().Add(10*time.Minute), got.ExpiresAt)
		require.Equal(t, l.Token, got.Token)

		b.clock.Advance(5 * time.Minute) // past the first deadline, within the new one
		res = b.settle(l, "complete", map[string]any{"token": l.Token})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	})

	t.Run("OKFailRetrying", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		res := b.settle(l, "fail", map[string]any{"token": l.Token, "note": "busy"})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Failure recorded successfully", res.Env.Message)
		it := data[pool.Item](t, res)
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, 1, it.RetryCount)
		require.Equal(t, "busy", it.Notes)
		require.Equal(t, b.clock.Now().Add(time.Hour), *it.NextRetryAt, "the engine's RetryDelay")
	})

	t.Run("OKFailScheduled", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		res := b.settle(l, "fail", map[string]any{"token": l.Token, "retry_at": at.In(time.FixedZone("X", 3600)).Format(time.RFC3339)})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		it := data[pool.Item](t, res)
		require.Equal(t, pool.StatusScheduled, it.Status)
		require.Equal(t, at, *it.NextRetryAt, "any offset, stored in UTC")
	})

	t.Run("OKFailFinal", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		res := b.settle(l, "fail", map[string]any{"token": l.Token, "final": true, "note": "wrong number"})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		it := data[pool.Item](t, res)
		require.Equal(t, pool.StatusFailed, it.Status)
		require.Equal(t, b.clock.Now(), *it.FailedAt)
	})

	t.Run("OKFailNoRetriesLeft", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 0)
		res := b.settle(l, "fail", map[string]any{"token": l.Token})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, pool.StatusFailed, data[pool.Item](t, res).Status, "max_retries 0: one attempt only")
	})

	t.Run("OKRelease", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		res := b.settle(l, "release", map[string]any{"token": l.Token})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Item released successfully", res.Env.Message)
		it := data[pool.Item](t, res)
		require.Equal(t, pool.StatusPending, it.Status)
		require.Equal(t, 0, it.Attempts, "the attempt is not counted")

		// Due again at once, in its place; the old token is fenced off.
		again := b.claim(l.PoolUUID)
		require.Equal(t, l.ContactUUID, again.ContactUUID)
		require.Greater(t, again.Token, l.Token)
		require.Equal(t, 1, again.Attempt)
		b.unchanged(func() {
			requireError(t, b.settle(l, "complete", map[string]any{"token": l.Token}), http.StatusConflict, CodeLeaseLost)
		})
		require.Equal(t, http.StatusOK, b.settle(again, "complete", map[string]any{"token": again.Token}).Status)
	})

	t.Run("ErrLeaseLostWrongToken", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		b.unchanged(func() {
			for _, action := range []string{"complete", "fail", "release", "in-call"} {
				res := b.settle(l, action, map[string]any{"token": l.Token + 1})
				requireError(t, res, http.StatusConflict, CodeLeaseLost)
				require.Equal(t, "Lease lost", res.Env.Message)
			}
			// A contact of the pool that is not in flight has no lease.
			other := data[pool.ItemPage](t, b.do("GET", "/api/v1/pools/"+l.PoolUUID.String()+"/contacts?status=Pending", nil)).Data[0]
			requireError(t, b.do("POST", settlePath(l.PoolUUID, other.ContactUUID, "complete"), map[string]any{"token": 1, "item_id": l.ItemID}),
				http.StatusConflict, CodeLeaseLost)
		})
	})

	t.Run("ErrLeaseLostExpired", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		b.clock.Advance(time.Minute) // the lease ends (LeaseTimeout 1 minute)
		res := b.settle(l, "complete", map[string]any{"token": l.Token})
		requireError(t, res, http.StatusConflict, CodeLeaseLost)
		// The expiry itself is the engine's doing: a failed attempt.
		it := b.item(l.PoolUUID, l.ContactUUID)
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, pool.NoteExpired, it.Notes)
	})

	t.Run("ErrLeaseLostItemReplaced", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		require.Equal(t, http.StatusOK, b.settle(l, "complete", map[string]any{"token": l.Token}).Status)
		// The contact leaves the pool and comes back: a new item. Tokens
		// are per item: the new item's could be the old one's (by chance),
		// and the item_id tells the two apart.
		n, err := b.eng.Remove(context.Background(), l.PoolUUID, l.ContactUUID)
		require.NoError(t, err)
		require.Equal(t, 1, n)
		res := b.do("POST", "/api/v1/pools/"+l.PoolUUID.String()+"/contacts", map[string]any{
			"contact_uuids": []uuid.UUID{l.ContactUUID}, "priority": 100,
		})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		now := b.claim(l.PoolUUID)
		require.Equal(t, l.ContactUUID, now.ContactUUID)
		require.NotEqual(t, l.ItemID, now.ItemID)

		b.unchanged(func() {
			res := b.settle(l, "fail", map[string]any{"token": l.Token, "item_id": l.ItemID})
			requireError(t, res, http.StatusConflict, CodeLeaseLost)
			// The current token with the old item's id: the same contact
			// and token, as after a collision, but not the same item.
			res = b.settle(l, "fail", map[string]any{"token": now.Token, "item_id": l.ItemID})
			requireError(t, res, http.StatusConflict, CodeLeaseLost)
		})
		res = b.settle(now, "complete", map[string]any{"token": now.Token, "item_id": now.ItemID})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		b.unchanged(func() {
			for _, action := range []string{"complete", "fail", "release", "in-call", "extend"} {
				body := map[string]any{"token": l.Token, "item_id": l.ItemID}
				if action == "extend" {
					body["seconds"] = 5
				}
				res := b.do("POST", settlePath(uuid.New(), l.ContactUUID, action), body)
				requireError(t, res, http.StatusNotFound, CodeNotFound)
				require.Equal(t, "Pool not found", res.Env.Message)
				res = b.do("POST", settlePath(l.PoolUUID, uuid.New(), action), body)
				requireError(t, res, http.StatusNotFound, CodeNotFound)
				require.Equal(t, "Contact not found in pool", res.Env.Message)
				res = b.do("POST", "/api/v1/pools/"+l.PoolUUID.String()+"/contacts/123/"+action, body)
				requireError(t, res, http.StatusNotFound, CodeNotFound)
			}
		})
	})

	t.Run("ErrValidation", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		long := strings.Repeat("é", MaxNoteLen+1)
		future := time.Now().Add(MaxRetryAhead + time.Hour).UTC().Format(time.RFC3339)
		tests := []struct {
			name, action string
			body         map[string]any
			field        string
			all          []string
		}{
			{"TokenMissing", "complete", map[string]any{"note": "x"}, "token", nil},
			{"TokenNegative", "release", map[string]any{"token": -1}, "token", nil},
			{"ItemIDZero", "in-call", map[string]any{"token": l.Token, "item_id": 0}, "item_id", nil},
			{"ItemIDMissing", "complete", map[string]any{"token": l.Token, "item_id": nil}, "item_id", nil},
			{"NoteTooLong", "complete", map[string]any{"token": l.Token, "note": long}, "note", nil},
			{"FailNoteTooLong", "fail", map[string]any{"token": l.Token, "note": long}, "note", nil},
			{"RetryAtFormat", "fail", map[string]any{"token": l.Token, "retry_at": "tomorrow"}, "retry_at", nil},
			{"RetryAtTooFar", "fail", map[string]any{"token": l.Token, "retry_at": future}, "retry_at", nil},
			{"RetryAtBefore1970", "fail", map[string]any{"token": l.Token, "retry_at": "1960-01-01T00:00:00Z"}, "retry_at", nil},
			{"RetryAtAndFinal", "fail", map[string]any{"token": l.Token, "final": true, "retry_at": "2030-01-01T00:00:00Z"}, "retry_at", nil},
			{"SecondsMissing", "extend", map[string]any{"token": l.Token}, "seconds", nil},
			{"SecondsTooMany", "extend", map[string]any{"token": l.Token, "seconds": 86401}, "seconds", nil},
			{"Every", "fail", map[string]any{"item_id": -5, "note": long, "retry_at": "x"}, "token", []string{"item_id", "note", "retry_at"}},
		}
		b.unchanged(func() {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					requireInvalid(t, b.settle(l, tt.action, tt.body), tt.field, tt.all...)
				})
			}
		})
	})

	t.Run("ErrMalformed", func(t *testing.T) {
		t.Parallel()
		b, l := setupClaimed(t, 3)
		tests := []struct {
			name, action, body, code string
			status                   int
		}{
			{"TokenString", "complete", `{"token": "1"}`, CodeValidation, http.StatusUnprocessableEntity},
			{"ItemIDString", "complete", `{"token": 1, "item_id": "1"}`, CodeValidation, http.StatusUnprocessableEntity},
			{"FinalString", "fail", `{"token": 1, "final": "yes"}`, CodeValidation, http.StatusUnprocessableEntity},
			{"SecondsFloat", "extend", `{"token": 1, "seconds": 1.5}`, CodeValidation, http.StatusUnprocessableEntity},
			{"NoteOnRelease", "release", `{"token": 1, "note": "x"}`, CodeValidation, http.StatusUnprocessableEntity},
			{"WholeLease", "complete", `{"token": 1, "attempt": 1}`, CodeValidation, http.StatusUnprocessableEntity},
			{"Empty", "in-call", ``, CodeInvalidJSON, http.StatusBadRequest},
			{"Syntax", "fail", `{"token": 1,}`, CodeInvalidJSON, http.StatusBadRequest},
			{"TooLarge", "complete", `{"token": 1, "note": "` + strings.Repeat("n", MaxBodyBytes) + `"}`, CodePayloadTooLarge, http.StatusRequestEntityTooLarge},
		}
		b.unchanged(func() {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					requireError(t, b.settle(l, tt.action, tt.body), tt.status, tt.code)
				})
			}
		})
	})
}

// leavingCtx is a request's context whose client leaves once left is set:
// Err reports it, Done never closes (the claim itself is not cut short).
type leavingCtx struct {
	context.Context
	left *atomic.Bool
}

func (c leavingCtx) Err() error {
	if c.left.Load() {
		return context.Canceled
	}
	return nil
}

// TestDispatch_ClientLeft: a client that leaves while its claim commits
// never sees the lease; the server gives it back unattempted rather than
// let it expire as a failed attempt.
func TestDispatch_ClientLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	var armed, left atomic.Bool
	now := func() time.Time {
		if armed.Load() {
			left.Store(true) // read by the claim's transaction: the client leaves during it
		}
		return time.Now()
	}
	eng, err := queue.New(st, queue.Options{Now: now, LeaseTimeout: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	srv := newServer(eng, testToken, nil)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "Renewals", Description: "d"})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	req := httptest.NewRequest("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
	req = req.WithContext(leavingCtx{Context: ctx, left: &left})
	req.Header.Set("Authorization", "Bearer "+testToken)
	armed.Store(true)
	srv.ServeHTTP(httptest.NewRecorder(), req)
	armed.Store(false)
	require.True(t, left.Load(), "the claim ran")

	it, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, pool.StatusPending, it.Status, "the lease nobody will settle is given back")
	require.Zero(t, it.Attempts)
}

// TestDispatch_OutcomeUnknown: a claim whose commit's outcome is unknown
// may stand; the dialer is told so (500 OUTCOME_UNKNOWN, not an internal
// error), and what follows: the item waits, Processing, for its lease to
// expire, and fills the pool's cap until then.
func TestDispatch_OutcomeUnknown(t *testing.T) {
	t.Parallel()
	var cu *commitUnknownStore
	b := setupOver(t, func(s store.Store) store.Store { cu = &commitUnknownStore{Store: s}; return cu })
	p := b.createPool("Unknown", pool.FIFO, 1)
	c := b.addContacts(p.UUID, 2, 0)[0]
	claim := "/api/v1/pools/" + p.UUID.String() + "/dispatch"

	cu.armed.Store(true)
	res := b.do("POST", claim, nil)
	cu.armed.Store(false)
	requireError(t, res, http.StatusInternalServerError, CodeOutcomeUnknown)
	require.Contains(t, res.Env.Error.Details, "the claim may have stood")
	require.Contains(t, res.Env.Error.Details, "gives it back")
	logs := b.logs.String()
	require.Contains(t, logs, "level=WARN", "logs: %s", logs)
	require.Contains(t, logs, "code=OUTCOME_UNKNOWN")
	require.NotContains(t, logs, "level=ERROR")

	// It stood here, as the answer warned it might, and the engine gives
	// it back, unattempted: the next claim hands out the same contact.
	require.Eventually(t, func() bool { return b.item(p.UUID, c).Status == pool.StatusPending },
		10*time.Second, 10*time.Millisecond, "the claim given back")
	require.Equal(t, 0, b.item(p.UUID, c).Attempts)
	require.Equal(t, c, b.claim(p.UUID).ContactUUID, "the same contact, never called")
}

// TestSettle_OutcomeUnknown: a settlement whose commit's outcome is
// unknown may have gone through; the answer says so and to read the item
// before trying again, which here would be a 409 LEASE_LOST.
func TestSettle_OutcomeUnknown(t *testing.T) {
	t.Parallel()
	for _, action := range []string{"complete", "fail", "release"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			var cu *commitUnknownStore
			b := setupOver(t, func(s store.Store) store.Store { cu = &commitUnknownStore{Store: s}; return cu })
			p := b.createPool("Unknown", pool.FIFO, 1)
			b.addContacts(p.UUID, 1, 0)
			l := b.claim(p.UUID)

			cu.armed.Store(true)
			res := b.settle(l, action, map[string]any{"token": l.Token})
			cu.armed.Store(false)
			requireError(t, res, http.StatusInternalServerError, CodeOutcomeUnknown)
			require.Contains(t, res.Env.Error.Details, "the settlement may have been written; read the item")
			logs := b.logs.String()
			require.Contains(t, logs, "level=WARN", "logs: %s", logs)
			require.NotContains(t, logs, "level=ERROR")

			require.NotEqual(t, pool.StatusProcessing, b.item(p.UUID, l.ContactUUID).Status, "it went through")
			requireError(t, b.settle(l, action, map[string]any{"token": l.Token}), http.StatusConflict, CodeLeaseLost)
		})
	}
}
