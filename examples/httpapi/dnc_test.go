package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// governedPool creates a FIFO pool with n contacts under a running
// campaign whose rule is made of ruleBody, with the clock at noon (inside
// the rule's window unless ruleBody moves it), and returns the pool and its
// contacts.
func (b *testBundle) governedPool(name string, n int, ruleBody map[string]any) (pool.Pool, []uuid.UUID) {
	b.t.Helper()
	b.atNoon()
	p := b.createPool(name, pool.FIFO, 1)
	var cs []uuid.UUID
	if n > 0 {
		cs = b.addContacts(p.UUID, n, 0)
	}
	r := b.createRule(ruleBody)
	c := b.createCampaign(name+" campaign", &r.UUID, p.UUID)
	res := b.act(c.UUID, campaign.Start)
	require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
	return p, cs
}

func TestDNC(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, c, d := uuid.New(), uuid.New(), uuid.New()
		t0 := b.clock.Now()

		res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{a, a}})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Contacts added to the do-not-call list", res.Env.Message)
		require.Equal(t, map[string]any{"contacts_added": 1.0, "contacts_already_listed": 0.0}, dataMap(t, res),
			"duplicates in the list are folded")
		b.clock.Advance(time.Second)
		res = b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []string{strings.ToUpper(a.String()), c.String()}})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, dncAdded{ContactsAdded: 1, ContactsAlreadyListed: 1}, data[dncAdded](t, res))

		// Listed oldest first, in pages.
		res = b.do("GET", "/api/v1/dnc", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Do-not-call list retrieved successfully", res.Env.Message)
		pg := data[campaign.DNCPage](t, res)
		require.Equal(t, 2, pg.Total)
		require.Equal(t, campaign.DefaultDNCPerPage, pg.PerPage)
		require.Equal(t, []uuid.UUID{a, c}, []uuid.UUID{pg.Data[0].ContactUUID, pg.Data[1].ContactUUID})
		m := dataMap(t, res)["data"].([]any)[0].(map[string]any)
		require.Equal(t, t0.Format("2006-01-02T15:04:05Z"), m["added_at"])
		pg = data[campaign.DNCPage](t, b.do("GET", "/api/v1/dnc?page=2&per_page=1", nil))
		require.Equal(t, 2, pg.LastPage)
		require.Len(t, pg.Data, 1)
		require.Equal(t, c, pg.Data[0].ContactUUID)

		res = b.do("GET", "/api/v1/dnc/"+a.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, dncStatus{ContactUUID: a, DoNotCall: true}, data[dncStatus](t, res))
		res = b.do("GET", "/api/v1/dnc/"+d.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "not on the list is an answer, not a 404: %s", res.Body)
		require.Equal(t, dncStatus{ContactUUID: d, DoNotCall: false}, data[dncStatus](t, res))

		res = b.do("DELETE", "/api/v1/dnc/"+a.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Contact removed from the do-not-call list", res.Env.Message)
		require.Equal(t, dncRemoved{ContactUUID: a, Removed: true}, data[dncRemoved](t, res))
		res = b.do("DELETE", "/api/v1/dnc/"+a.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "removing is idempotent: %s", res.Body)
		require.Equal(t, dncRemoved{ContactUUID: a, Removed: false}, data[dncRemoved](t, res))
		require.False(t, data[dncStatus](t, b.do("GET", "/api/v1/dnc/"+a.String(), nil)).DoNotCall)
		require.Equal(t, 1, data[campaign.DNCPage](t, b.do("GET", "/api/v1/dnc", nil)).Total)
	})

	t.Run("OKDispatchSkips", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p, cs := b.governedPool("Renewals", 2, map[string]any{"name": "Checks DNC"})
		res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{cs[0]}})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)

		l := b.claim(p.UUID)
		require.Equal(t, cs[1], l.ContactUUID, "the first contact is on the list")
		it := b.item(p.UUID, cs[0])
		require.Equal(t, pool.StatusSkipped, it.Status)
		require.Equal(t, campaign.NoteDNC, it.Notes)
		require.Zero(t, it.Attempts)

		// Taken off the list, the item stays Skipped.
		require.Equal(t, http.StatusOK, b.do("DELETE", "/api/v1/dnc/"+cs[0].String(), nil).Status)
		require.Equal(t, pool.StatusSkipped, b.item(p.UUID, cs[0]).Status)
	})

	t.Run("ErrValidationNothingWritten", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		listed := uuid.New()
		require.Equal(t, http.StatusOK, b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{listed}}).Status)
		tooMany := make([]uuid.UUID, queue.MaxContactsPerCall+1)
		for i := range tooMany {
			tooMany[i] = uuid.New()
		}
		b.unchanged(func() {
			requireInvalid(t, b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []string{}}), "contact_uuids")
			requireInvalid(t, b.do("POST", "/api/v1/dnc", `{}`), "contact_uuids")
			requireInvalid(t, b.do("POST", "/api/v1/dnc", `{"contact_uuids": null}`), "contact_uuids")
			requireInvalid(t, b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": tooMany}), "contact_uuids")
			// Every bad element is named by its index; the good ones are not
			// added.
			res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []string{
				uuid.NewString(), "nope", uuid.Nil.String(), listed.String(), "",
			}})
			requireInvalid(t, res, "contact_uuids[1]", "contact_uuids[2]", "contact_uuids[4]")
			require.Contains(t, res.Env.Error.Details, "contact_uuids[2]: must not be the nil UUID")
			require.NotContains(t, res.Env.Error.Details, "contact_uuids[0]")
			require.NotContains(t, res.Env.Error.Details, "contact_uuids[3]")

			requireInvalid(t, b.do("POST", "/api/v1/dnc", `{"contact_uuids": "x"}`), "contact_uuids")
			requireInvalid(t, b.do("POST", "/api/v1/dnc", `{"contact_uuids": [1]}`), "contact_uuids[0]")
			requireInvalid(t, b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": []uuid.UUID{uuid.New()}, "note": "x"}), "note")
			requireError(t, b.do("POST", "/api/v1/dnc", ""), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("POST", "/api/v1/dnc", `{"contact_uuids": [`), http.StatusBadRequest, CodeInvalidJSON)

			requireInvalid(t, b.do("GET", "/api/v1/dnc?page=x&per_page=101", nil), "page", "per_page")
			requireInvalid(t, b.do("GET", "/api/v1/dnc?page=0", nil), "page")
			requireError(t, b.do("GET", "/api/v1/dnc/not-a-uuid", nil), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("GET", "/api/v1/dnc/"+uuid.Nil.String(), nil), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("DELETE", "/api/v1/dnc/not-a-uuid", nil), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("PUT", "/api/v1/dnc/"+listed.String(), `{}`), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
		})
	})

	t.Run("ErrManyBadUUIDsListedUpToALimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		bad := make([]string, maxListedErrors+5)
		for i := range bad {
			bad[i] = "bad"
		}
		res := b.do("POST", "/api/v1/dnc", map[string]any{"contact_uuids": bad})
		requireInvalid(t, res, "contact_uuids[0]", listed("contact_uuids", 1, maxListedErrors)...) // contact_uuids: the rest
		require.NotContains(t, res.Env.Error.Details, "contact_uuids[20]")
		require.Contains(t, res.Env.Error.Details, "5 more invalid UUIDs not listed")
	})
}

// TestDNC_ElementOfWrongType: an element of contact_uuids that is not a
// string is named by its index, as a malformed UUID is.
func TestDNC_ElementOfWrongType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/dnc", `{"contact_uuids": ["`+uuid.NewString()+`", 7, "nope"]}`)
		requireInvalid(t, res, "contact_uuids[1]", "contact_uuids[2]")
		require.Contains(t, res.Env.Error.Details, "contact_uuids[1]: must be a string, not number;")
	})
}

func TestOptOut(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		removes, cs := b.governedPool("Removes", 1, map[string]any{"name": "Removes opt-outs"})
		x := cs[0]
		keeps, _ := b.governedPool("Keeps", 0, map[string]any{"name": "Keeps opt-outs", "remove_on_opt_out": false})
		own := b.createPool("On its own", pool.FIFO, 1)
		for _, p := range []uuid.UUID{keeps.UUID, own.UUID} {
			res := b.do("POST", "/api/v1/pools/"+p.String()+"/contacts", map[string]any{"contact_uuids": []uuid.UUID{x}})
			require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		}

		res := b.do("POST", "/api/v1/contacts/"+x.String()+"/opt-out", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Contact opted out", res.Env.Message)
		require.Equal(t, optedOut{ContactUUID: x, ItemsSkipped: 1}, data[optedOut](t, res))
		it := b.item(removes.UUID, x)
		require.Equal(t, pool.StatusSkipped, it.Status)
		require.Equal(t, campaign.NoteOptOut, it.Notes)
		require.Equal(t, pool.StatusPending, b.item(keeps.UUID, x).Status, "its rule keeps opted-out contacts")
		require.Equal(t, pool.StatusPending, b.item(own.UUID, x).Status, "no rule governs it")

		// Again, with an empty object: harmless.
		res = b.do("POST", "/api/v1/contacts/"+x.String()+"/opt-out", `{}`)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, optedOut{ContactUUID: x, ItemsSkipped: 0}, data[optedOut](t, res))

		// A contact poolq has never seen may opt out too.
		res = b.do("POST", "/api/v1/contacts/"+uuid.NewString()+"/opt-out", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Zero(t, data[optedOut](t, res).ItemsSkipped)
	})

	t.Run("OKInFlightSkippedAtItsFailure", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p, cs := b.governedPool("Renewals", 1, map[string]any{"name": "Removes opt-outs"})
		l := b.claim(p.UUID)
		res := b.do("POST", "/api/v1/contacts/"+cs[0].String()+"/opt-out", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Zero(t, data[optedOut](t, res).ItemsSkipped, "the call in progress finishes")
		require.Equal(t, pool.StatusProcessing, b.item(p.UUID, cs[0]).Status)

		res = b.settle(l, "fail", map[string]any{"token": l.Token, "note": "busy"})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		it := data[pool.Item](t, res)
		require.Equal(t, pool.StatusSkipped, it.Status, "skipped instead of retried")
		require.Equal(t, campaign.NoteOptOut, it.Notes)
	})

	t.Run("Err", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, cs := b.governedPool("Renewals", 1, map[string]any{"name": "Removes opt-outs"})
		b.unchanged(func() {
			requireError(t, b.do("POST", "/api/v1/contacts/not-a-uuid/opt-out", nil), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("POST", "/api/v1/contacts/"+uuid.Nil.String()+"/opt-out", nil), http.StatusNotFound, CodeNotFound)
			requireInvalid(t, b.do("POST", "/api/v1/contacts/"+cs[0].String()+"/opt-out", `{"reason": "asked"}`), "reason")
			requireError(t, b.do("POST", "/api/v1/contacts/"+cs[0].String()+"/opt-out", `[]`), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("GET", "/api/v1/contacts/"+cs[0].String()+"/opt-out", nil), http.StatusMethodNotAllowed, CodeMethodNotAllowed)
		})
	})
}
