package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/stretchr/testify/require"
)

func TestAddContacts(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.Parallel, 10)
		path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
		c1, c2, c3 := uuid.New(), uuid.New(), uuid.New()

		res := b.do("POST", path, map[string]any{"contact_uuids": []uuid.UUID{c1, c2, c1}, "priority": 7})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Contacts added successfully", res.Env.Message)
		require.Equal(t, map[string]any{"contacts_added": 2.0, "contacts_skipped": 0.0}, dataMap(t, res),
			"duplicates inside the batch are folded")

		// Upper case UUIDs are the same contacts: skipped.
		res = b.do("POST", path, `{"contact_uuids": ["`+strings.ToUpper(c2.String())+`", "`+c3.String()+`"]}`)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, pool.AddResult{ContactsAdded: 1, ContactsSkipped: 1}, data[pool.AddResult](t, res))

		items := b.snapshot().Items[p.UUID]
		require.Len(t, items, 3)
		for i, want := range []struct {
			c        uuid.UUID
			priority int
		}{{c1, 7}, {c2, 7}, {c3, 0}} {
			require.Equal(t, want.c, items[i].ContactUUID)
			require.Equal(t, want.priority, items[i].Priority, "priority defaults to 0")
			require.Equal(t, pool.StatusPending, items[i].Status)
		}
	})

	t.Run("ErrValidationNothingWritten", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		b.addContacts(p.UUID, 1, 0)
		path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
		good := uuid.NewString()
		b.unchanged(func() {
			requireInvalid(t, b.do("POST", path, `{"contact_uuids": []}`), "contact_uuids")
			requireInvalid(t, b.do("POST", path, `{"priority": 3}`), "contact_uuids")
			// One bad UUID fails the batch: the good one before it is not added.
			res := b.do("POST", path, `{"contact_uuids": ["`+good+`", "nope", "`+uuid.Nil.String()+`"]}`)
			requireInvalid(t, res, "contact_uuids[1]", "contact_uuids[2]")
			// Each message says what is wrong with that value.
			require.Contains(t, res.Env.Error.Details, `contact_uuids[1]: must be a UUID like xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (got "nope");`)
			require.Contains(t, res.Env.Error.Details, "contact_uuids[2]: must not be the nil UUID")
			require.NotContains(t, res.Env.Error.Details, `nil UUID (got "nope")`)
			many := make([]string, MaxContactsPerRequest+1)
			for i := range many {
				many[i] = uuid.NewString()
			}
			requireInvalid(t, b.do("POST", path, map[string]any{"contact_uuids": many}), "contact_uuids")
		})
	})

	t.Run("ErrManyBadUUIDsListedUpToALimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		bad := make([]string, 30)
		for i := range bad {
			bad[i] = fmt.Sprint(i)
		}
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts", map[string]any{"contact_uuids": bad})
		requireInvalid(t, res, "contact_uuids[0]", listed("contact_uuids", 1, maxListedErrors)...) // contact_uuids: the rest
		require.NotContains(t, res.Env.Error.Details, "contact_uuids[20]")
		require.Contains(t, res.Env.Error.Details, "10 more invalid UUIDs not listed")
	})

	t.Run("ErrMalformed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
		c := uuid.NewString()
		b.unchanged(func() {
			// A wrong JSON type or an unknown field is a 422 naming it, like
			// any rule, so that a form can show it.
			requireInvalid(t, b.do("POST", path, `{"contact_uuids": "`+c+`"}`), "contact_uuids")
			requireInvalid(t, b.do("POST", path, `{"contact_uuids": [1]}`), "contact_uuids[0]")
			requireInvalid(t, b.do("POST", path, `{"contact_uuids": ["`+c+`"], "priority": "high"}`), "priority")
			requireInvalid(t, b.do("POST", path, `{"contact_uuids": ["`+c+`"], "payload": {}}`), "payload")
			requireInvalid(t, b.do("POST", path, `{"contact_uuids": 1, "priority": "high", "colour": 2}`), "colour", "contact_uuids", "priority")
			requireError(t, b.do("POST", path, `{"contact_uuids": ["`+c+`"]`), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("POST", path, `{"contact_uuids": ["`+strings.Repeat("a", MaxBodyBytes)+`"]}`),
				http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
		})
	})

	// A 422 lists every failing field: the request's own (a malformed
	// UUID, a wrong type) beside the engine's rules on the rest.
	t.Run("ErrEveryFieldAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
		b.unchanged(func() {
			res := b.do("POST", path, `{"contact_uuids": ["nope"], "contacts": [{"contact_uuid": "`+uuid.NewString()+`", "phone_number": "12"}]}`)
			requireInvalid(t, res, "contact_uuids[0]", "contacts[0].phone_number")
			res = b.do("POST", path, `{"priority": "high", "contacts": [{"contact_uuid": 5, "email": "nope"},
				{"contact_uuid": "nope", "phone_number": "12"}, 7]}`)
			requireInvalid(t, res, "priority", "contacts[0].contact_uuid", "contacts[0].email",
				"contacts[1].contact_uuid", "contacts[1].phone_number", "contacts[2]")
			require.Contains(t, res.Env.Error.Details, "contacts[0].contact_uuid: must be a string, not number")
			require.Equal(t, 1, strings.Count(res.Env.Error.Details, "contacts[0].contact_uuid: "), "reported once: %s", res.Body)
			res = b.do("POST", path, `{"contact_uuids": "x"}`)
			requireInvalid(t, res, "contact_uuids")
			require.NotContains(t, res.Env.Error.Details, "at least one", "a list of the wrong type is not also empty")
		})
	})

	t.Run("ErrInvalidUTF8", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
		b.unchanged(func() {
			res := b.do("POST", path, []byte(`{"contacts": [{"contact_uuid": "`+uuid.NewString()+"\", \"name\": \"Ad\xe9le\"}]}"))
			requireInvalid(t, res, "contacts")
			require.Contains(t, res.Env.Error.Details, "contacts: must be valid UTF-8")
		})
	})

	// A null payload is no payload, as a null field is an absent one: the
	// item shows none, not "payload": null.
	t.Run("OKPayloadNull", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
		c := uuid.NewString()
		res := b.do("POST", path, `{"contacts": [{"contact_uuid": "`+c+`", "payload": null}]}`)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		items := b.snapshot().Items[p.UUID]
		require.Len(t, items, 1)
		require.Nil(t, items[0].Payload)
		res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.NotContains(t, string(res.Body), `"payload"`)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools/"+uuid.NewString()+"/contacts", map[string]any{"contact_uuids": []uuid.UUID{uuid.New()}})
			requireError(t, res, http.StatusNotFound, CodeNotFound)
		})
	})
}

// TestAddContacts_ElementOfWrongType: an element of contact_uuids that is
// not a string is named by its index and said to be of the wrong type, as
// a malformed UUID is; the list itself is an array, and is not blamed.
func TestAddContacts_ElementOfWrongType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	good := uuid.NewString()
	b.unchanged(func() {
		for body, value := range map[string]string{
			`{"contact_uuids": ["` + good + `", 7]}`:                            "number",
			`{"contact_uuids": ["` + good + `", ["` + uuid.NewString() + `"]]}`: "array",
			`{"contact_uuids": ["` + good + `", {}, true, "nope"]}`:             "object",
		} {
			res := b.do("POST", path, body)
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, "body: %s", res.Body)
			require.NotContains(t, res.Env.Error.Details, "must be an array", "it is an array: %s", res.Body)
			require.Equal(t, "contact_uuids[1]", res.Env.Error.Field, "body: %s", res.Body)
			require.Contains(t, res.Env.Error.Details, "contact_uuids[1]: must be a string, not "+value, "body: %s", res.Body)
			require.NotContains(t, res.Env.Error.Details, `(got "")`, "a refused element is not also a bad UUID: %s", res.Body)
		}
		res := b.do("POST", path, `{"contact_uuids": ["`+good+`", {}, true, "nope"]}`)
		requireInvalid(t, res, "contact_uuids[1]", "contact_uuids[2]", "contact_uuids[3]")
		require.Contains(t, res.Env.Error.Details, "contact_uuids[2]: must be a string, not bool;")
		require.Contains(t, res.Env.Error.Details, `contact_uuids[3]: must be a UUID like`)
	})

	t.Run("ListedUpToALimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		bad := make([]int, maxListedErrors+7)
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts", map[string]any{"contact_uuids": bad})
		requireInvalid(t, res, "contact_uuids[0]", listed("contact_uuids", 1, maxListedErrors)...) // contact_uuids: the rest
		require.NotContains(t, res.Env.Error.Details, "contact_uuids[20]")
		require.Contains(t, res.Env.Error.Details, "contact_uuids: 7 more elements of the wrong type not listed")
		require.NotContains(t, res.Env.Error.Details, "invalid UUIDs", "the refused elements are not counted twice")
	})

	t.Run("EveryKindPastTheListedOnes", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		// 20 numbers listed, then strings, nulls and each other kind of
		// value, with white space around them: 5 more of the wrong type,
		// counted, and 3 that are not UUIDs ("x", and the nulls: "").
		elems := slices.Repeat([]string{" 1 "}, maxListedErrors)
		elems = append(elems, "\n\""+uuid.NewString()+"\" ", " null", "true", "false ", " []", "{} ", `"x"`, " -2.5e3", " null ")
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts", `{"contact_uuids": [`+strings.Join(elems, ",")+`]}`)
		requireInvalid(t, res, "contact_uuids[0]", listed("contact_uuids", 1, maxListedErrors)...)
		require.Contains(t, res.Env.Error.Details, "contact_uuids: 5 more elements of the wrong type not listed")
		require.Contains(t, res.Env.Error.Details, "contact_uuids: 3 more invalid UUIDs not listed", `"x" and the nulls`)
	})
}

func TestListContacts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.Parallel, 10)
	cs := b.addContacts(p.UUID, 5, 0)
	path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	// Two items go in flight: contacts 0 and 1.
	for range 2 {
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	}

	list := func(query string) pool.ItemPage {
		t.Helper()
		res := b.do("GET", path+query, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s: %s", query, res.Body)
		require.Equal(t, "Pool contacts retrieved successfully", res.Env.Message)
		return data[pool.ItemPage](t, res)
	}
	contacts := func(pg pool.ItemPage) []uuid.UUID {
		var out []uuid.UUID
		for _, it := range pg.Data {
			out = append(out, it.ContactUUID)
		}
		return out
	}

	t.Run("OK", func(t *testing.T) {
		pg := list("")
		require.Equal(t, 1, pg.CurrentPage)
		require.Equal(t, 1, pg.LastPage)
		require.Equal(t, pool.DefaultItemsPerPage, pg.PerPage)
		require.Equal(t, 5, pg.Total)
		require.Equal(t, cs, contacts(pg), "insertion order")

		res := b.do("GET", path, nil)
		item := dataMap(t, res)["data"].([]any)[0].(map[string]any)
		keys := make([]string, 0, len(item))
		for k := range item {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"contact_uuid", "name", "phone_number", "email", "timezone", "status", "priority",
			"attempts", "retry_count", "started_at", "completed_at", "failed_at", "next_retry_at", "notes", "added_at"}, keys)
		require.Nil(t, item["name"], "a contact added by UUID alone has no name")
		require.Equal(t, "Processing", item["status"])
	})
	t.Run("OKPages", func(t *testing.T) {
		pg := list("?page=2&per_page=2")
		require.Equal(t, pool.ItemPage{CurrentPage: 2, LastPage: 3, PerPage: 2, Total: 5, Data: pg.Data}, pg)
		require.Equal(t, cs[2:4], contacts(pg))
	})
	t.Run("OKStatus", func(t *testing.T) {
		require.Equal(t, cs[:2], contacts(list("?status=processing")), "any case")
		require.Equal(t, cs[2:], contacts(list("?status=Pending")))
		pg := list("?status=In_Call")
		require.Equal(t, 0, pg.Total)
		require.Empty(t, pg.Data)
	})
	t.Run("ErrValidation", func(t *testing.T) {
		requireInvalid(t, b.do("GET", path+"?status=Done", nil), "status")
		requireInvalid(t, b.do("GET", path+"?per_page=1000", nil), "per_page")
		requireInvalid(t, b.do("GET", path+"?page=-2", nil), "page")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		requireError(t, b.do("GET", "/api/v1/pools/"+uuid.NewString()+"/contacts", nil), http.StatusNotFound, CodeNotFound)
	})
}

// TestListContacts_EveryBadParameter: one 422 names every bad parameter,
// the handler's own (page) beside the query's rules (status, search).
func TestListContacts_EveryBadParameter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	requireInvalid(t, b.do("GET", path+"?page=0&status=Done", nil), "page", "status")
	requireInvalid(t, b.do("GET", path+"?per_page=x&search=a%09b", nil), "per_page", "search")
}

// TestContacts_Fields: contacts added with their fields (poolq's
// "contacts" body) are listed with name, phone_number, email and timezone,
// searchable with ?search= over name, email and phone, and validated field
// by field.
func TestContacts_Fields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.Parallel, 10)
	path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	ada, grace, plain := uuid.NewString(), uuid.NewString(), uuid.NewString()
	res := b.do("POST", path, `{"contact_uuids": ["`+plain+`"], "priority": 1, "contacts": [
		{"contact_uuid": "`+ada+`", "name": "Ada Lovelace", "phone_number": "+15551234567",
		 "email": "ada@example.com", "timezone": "Europe/London", "priority": 5, "payload": {"crm": 42}},
		{"contact_uuid": "`+grace+`", "name": "Grace Hopper", "email": "grace@navy.mil"}]}`)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Equal(t, pool.AddResult{ContactsAdded: 3}, data[pool.AddResult](t, res))

	list := func(query string) []map[string]any {
		res := b.do("GET", path+query, nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Pool contacts retrieved successfully", res.Env.Message)
		var out []map[string]any
		for _, it := range dataMap(t, res)["data"].([]any) {
			out = append(out, it.(map[string]any))
		}
		return out
	}
	all := list("")
	require.Len(t, all, 3)
	require.Equal(t, plain, all[0]["contact_uuid"])
	require.Equal(t, float64(1), all[0]["priority"])
	require.Equal(t, map[string]any{"name": "Ada Lovelace", "phone_number": "+15551234567", "email": "ada@example.com",
		"timezone": "Europe/London", "priority": float64(5)},
		map[string]any{"name": all[1]["name"], "phone_number": all[1]["phone_number"], "email": all[1]["email"],
			"timezone": all[1]["timezone"], "priority": all[1]["priority"]})
	require.Equal(t, float64(1), all[2]["priority"], "the request's priority by default")
	require.Nil(t, all[2]["phone_number"])

	for query, want := range map[string][]string{
		"?search=lovelace":      {ada},
		"?search=NAVY":          {grace},
		"?search=%2B1555":       {ada},
		"?search=e":             {ada}, // words beginning so: example
		"?search=grace%20hop":   {grace},
		"?search=nobody":        nil,
		"?search=e&status=Done": nil, // a 422, below
	} {
		if query == "?search=e&status=Done" {
			continue
		}
		var got []string
		for _, it := range list(query) {
			got = append(got, it["contact_uuid"].(string))
		}
		require.Equal(t, want, got, query)
	}
	requireInvalid(t, b.do("GET", path+"?search=a%0Ab", nil), "search")
	requireInvalid(t, b.do("GET", path+"?search="+strings.Repeat("x", pool.MaxSearchLen+1), nil), "search")

	b.unchanged(func() {
		res := b.do("POST", path, `{"contacts": [
			{"contact_uuid": "`+uuid.NewString()+`", "phone_number": "555-1234", "email": "nope", "timezone": "Mars/Base"},
			{"contact_uuid": "nope", "name": "`+strings.Repeat("n", pool.MaxContactNameLen+1)+`"},
			{"contact_uuid": "`+uuid.NewString()+`", "colour": "red"}]}`)
		requireInvalid(t, res, "contacts[0].phone_number", "contacts[0].email", "contacts[0].timezone",
			"contacts[1].contact_uuid", "contacts[1].name", "contacts[2].colour")
		res = b.do("POST", path, `{"contacts": [
			{"contact_uuid": "`+uuid.NewString()+`", "phone_number": "555-1234", "email": "nope", "timezone": "Mars/Base"},
			{"contact_uuid": "`+uuid.NewString()+`", "name": "`+strings.Repeat("n", pool.MaxContactNameLen+1)+`"}]}`)
		requireInvalid(t, res, "contacts[0].phone_number", "contacts[0].email", "contacts[0].timezone", "contacts[1].name")
	})
}

// A payload is opaque: it reaches the engine with the bytes the client
// sent (not compacted, not HTML-escaped), and its size limit counts those
// bytes. It comes back at dispatch as the same JSON value, compacted, its
// characters as sent.
func TestAddContacts_PayloadAsSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Payloads", pool.Parallel, 5)
	path := "/api/v1/pools/" + p.UUID.String() + "/contacts"
	c := uuid.New()
	payload := `{ "script": "<b>Tom & Jerry</b>",  "n": 1.50 }`
	res := b.do("POST", path, `{"contacts": [{"contact_uuid": "`+c.String()+`", "payload": `+payload+`}]}`)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	it, err := b.eng.Item(context.Background(), p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, payload, string(it.Payload))

	res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	var lease struct {
		Item struct {
			Payload json.RawMessage `json:"payload"`
		} `json:"item"`
	}
	require.NoError(t, json.Unmarshal(res.Env.Data, &lease))
	require.JSONEq(t, payload, string(lease.Item.Payload), "the same value")
	require.Equal(t, `{"script":"<b>Tom & Jerry</b>","n":1.50}`, string(lease.Item.Payload),
		"compacted, characters as sent (doc.go says so)")

	// A payload of 60,000 '<' is under the 64 KiB limit, and comes back
	// at its size: not escaped to \u003c, six times as large.
	big := `{"html":"` + strings.Repeat("<", 60_000) + `"}`
	res = b.do("POST", path, `{"contacts": [{"contact_uuid": "`+uuid.NewString()+`", "payload": `+big+`}]}`)
	require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
	res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
	require.Equal(t, http.StatusOK, res.Status, "body: %.300s", res.Body)
	require.NoError(t, json.Unmarshal(res.Env.Data, &lease))
	require.Equal(t, big, string(lease.Item.Payload))
	require.Less(t, len(res.Body), len(big)+2_000)
}
