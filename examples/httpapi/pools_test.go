package main

import (
	"context"
	"fmt"
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

func TestCreatePool(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.do("POST", "/api/v1/pools", `{"name": "VIP customers", "description": "High-value leads, push first",
			"type": "parallel", "max_parallel_items": 20, "max_retries": 0, "is_active": false}`)
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		require.Equal(t, "Pool created successfully", res.Env.Message)
		p := data[pool.Pool](t, res)
		require.Equal(t, "/api/v1/pools/"+p.UUID.String(), res.Header.Get("Location"))
		require.Equal(t, 7, int(p.UUID.Version()), "UUIDv7")
		require.Equal(t, "VIP customers", p.Name)
		require.Equal(t, "High-value leads, push first", p.Description)
		require.Equal(t, pool.Parallel, p.Type, "type is stored canonical")
		require.Equal(t, 20, p.MaxParallelItems)
		require.Equal(t, 0, p.MaxRetries, "a given zero is kept")
		require.False(t, p.IsActive)
		require.Equal(t, 0, p.ContactsCount)
		require.Equal(t, b.clock.Now(), p.CreatedAt)
		require.Equal(t, p.CreatedAt, p.UpdatedAt)

		d, err := b.eng.Pool(context.Background(), p.UUID)
		require.NoError(t, err, "the pool is stored")
		require.Equal(t, p, d.Pool)
	})

	t.Run("OKDefaults", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.do("POST", "/api/v1/pools", `{"name": "Ünïcödé", "description": "d"}`)
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		p := data[pool.Pool](t, res)
		require.Equal(t, pool.FIFO, p.Type)
		require.Equal(t, pool.DefaultMaxParallelItems, p.MaxParallelItems)
		require.Equal(t, pool.DefaultMaxRetries, p.MaxRetries)
		require.True(t, p.IsActive)
	})

	t.Run("OKNullIsAbsent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.do("POST", "/api/v1/pools", `{"name": "abc", "description": "d", "type": null, "max_retries": null}`)
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		p := data[pool.Pool](t, res)
		require.Equal(t, pool.FIFO, p.Type)
		require.Equal(t, pool.DefaultMaxRetries, p.MaxRetries)
	})

	t.Run("ErrValidationListsEveryField", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools", `{"name": "ab", "description": "  ", "type": "Random",
				"max_parallel_items": 101, "max_retries": -1}`)
			requireInvalid(t, res, "name", "description", "type", "max_parallel_items", "max_retries")
			require.Equal(t, "The given data was invalid", res.Env.Message)
		})
	})

	t.Run("ErrValidationOneField", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		tests := map[string]struct {
			body  string
			field string
		}{
			"MissingName":        {`{"description": "d"}`, "name"},
			"NameTooLong":        {`{"name": "` + strings.Repeat("é", 256) + `", "description": "d"}`, "name"},
			"NameNUL":            {`{"name": "ab\u0000cd", "description": "d"}`, "name"},
			"MissingDescription": {`{"name": "abc"}`, "description"},
			"ZeroParallel":       {`{"name": "abc", "description": "d", "max_parallel_items": 0}`, "max_parallel_items"},
			"TypeWithSpace":      {`{"name": "abc", "description": "d", "type": "FIFO "}`, "type"},
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				b.unchanged(func() {
					res := b.do("POST", "/api/v1/pools", tt.body)
					requireInvalid(t, res, tt.field)
				})
			})
		}
	})

	// JSON text is UTF-8: a string holding other bytes is refused, not
	// stored with U+FFFD in their place.
	t.Run("ErrInvalidUTF8", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools", []byte("{\"name\": \"ab\xffc\", \"description\": \"d\xfe\"}"))
			requireInvalid(t, res, "description", "name")
			require.Contains(t, res.Env.Error.Details, "name: must be valid UTF-8")
			require.NotContains(t, res.Env.Error.Details, "is required")
			res = b.do("PUT", "/api/v1/pools/"+p.UUID.String(), []byte("{\"name\": \"Renewals \xc3\"}"))
			requireInvalid(t, res, "name")
			// In a key, or in a read-only field the request would ignore.
			res = b.do("POST", "/api/v1/pools", []byte("{\"name\": \"abc\", \"description\": \"d\", \"\xffx\": 1}"))
			requireInvalid(t, res, "\uFFFDx")
			res = b.do("PUT", "/api/v1/pools/"+p.UUID.String(), []byte("{\"uuid\": \"\xff\"}"))
			requireInvalid(t, res, "uuid")
		})
	})

	t.Run("OKNameOf255Characters", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		res := b.do("POST", "/api/v1/pools", `{"name": "`+strings.Repeat("é", 255)+`", "description": "d"}`)
		require.Equal(t, http.StatusCreated, res.Status, "runes, not bytes: %s", res.Body)
	})

	t.Run("ErrMalformed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for name, body := range map[string]string{
			"Empty":        ``,
			"Syntax":       `{"name": "abc",`,
			"NotAnObject":  `["abc"]`,
			"Null":         `null`,
			"TrailingData": `{"name": "abc", "description": "d"} {}`,
		} {
			t.Run(name, func(t *testing.T) {
				b.unchanged(func() {
					requireError(t, b.do("POST", "/api/v1/pools", body), http.StatusBadRequest, CodeInvalidJSON)
				})
			})
		}
	})

	// A value of the wrong JSON type, or a field the endpoint does not
	// take, is a 422 naming the field, like a rule: a form can show it.
	t.Run("ErrFieldType", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for name, tt := range map[string]struct {
			body, field string
			all         []string
		}{
			"Int":      {`{"name": "abc", "description": "d", "max_retries": "3"}`, "max_retries", nil},
			"Float":    {`{"name": "abc", "description": "d", "max_retries": 2.5}`, "max_retries", nil},
			"Bool":     {`{"name": "abc", "description": "d", "is_active": "yes"}`, "is_active", nil},
			"Enum":     {`{"name": "abc", "description": "d", "type": 1}`, "type", nil},
			"Name":     {`{"name": 123, "description": "d"}`, "name", nil},
			"Overflow": {`{"name": "abc", "description": "d", "max_retries": 99999999999999999999}`, "max_retries", nil},
			"Unknown":  {`{"name": "abc", "description": "d", "colour": "red"}`, "colour", nil},
			"Case":     {`{"Name": "abc", "description": "d"}`, "Name", []string{"name"}}, // and name is missing
		} {
			t.Run(name, func(t *testing.T) {
				b.unchanged(func() { requireInvalid(t, b.do("POST", "/api/v1/pools", tt.body), tt.field, tt.all...) })
			})
		}
		res := b.do("POST", "/api/v1/pools", `{"name": 1, "description": "d", "max_retries": "3", "colour": "red"}`)
		requireInvalid(t, res, "colour", "max_retries", "name")
		res = b.do("POST", "/api/v1/pools", `{"name": 1, "description": "d", "max_retries": "3"}`)
		requireInvalid(t, res, "max_retries", "name")
		require.Contains(t, res.Env.Error.Details, "max_retries: must be an integer, not string")
		require.NotContains(t, res.Env.Error.Details, "is required", "a field of the wrong type is not also missing")
		res = b.do("POST", "/api/v1/pools", `{"name": "abc", "description": "d", "colour": "red"}`)
		require.Contains(t, res.Env.Error.Details, "colour: is not a field of this request")
	})

	// A 422 lists every failing field at once: the rules run on the fields
	// that decoded, beside the fields of the wrong type or unknown.
	t.Run("ErrEveryStageAtOnce", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools", `{"name": "ab", "description": "d", "max_retries": "3"}`)
			requireInvalid(t, res, "max_retries", "name")
			res = b.do("POST", "/api/v1/pools", `{"name": "ab", "description": "", "colour": "red"}`)
			requireInvalid(t, res, "colour", "name", "description")
			res = b.do("POST", "/api/v1/pools", `{"name": "abc", "description": 5, "type": "Random", "max_parallel_items": 0}`)
			requireInvalid(t, res, "description", "type", "max_parallel_items")
			require.Equal(t, 1, strings.Count(res.Env.Error.Details, "description: "), "reported once: %s", res.Body)
			res = b.do("PUT", "/api/v1/pools/"+p.UUID.String(), `{"name": "x", "is_active": "no", "colour": 1}`)
			requireInvalid(t, res, "colour", "is_active", "name")
			res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/duplicate", `{"name": "x", "copy_contacts": "no"}`)
			requireInvalid(t, res, "copy_contacts", "name")
		})
	})

	// A type given as "" is the error on create that it is on update.
	t.Run("ErrTypeEmpty", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.Parallel, 10)
		b.unchanged(func() {
			created := b.do("POST", "/api/v1/pools", `{"name": "abc", "description": "d", "type": ""}`)
			requireInvalid(t, created, "type")
			updated := b.do("PUT", "/api/v1/pools/"+p.UUID.String(), `{"type": ""}`)
			requireInvalid(t, updated, "type")
			require.Equal(t, updated.Env.Error.Details, created.Env.Error.Details)
		})
	})

	t.Run("ErrTooLarge", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.unchanged(func() {
			body := `{"name": "abc", "description": "` + strings.Repeat("x", MaxBodyBytes) + `"}`
			res := b.do("POST", "/api/v1/pools", body)
			requireError(t, res, http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
		})
		// Just under the limit is read, then validated: too long a
		// description for the rule, not too large a body.
		body := `{"name": "abc", "description": "` + strings.Repeat("x", MaxBodyBytes-40) + `"}`
		require.Less(t, len(body), MaxBodyBytes)
		res := b.do("POST", "/api/v1/pools", body)
		requireInvalid(t, res, "description")
	})
}

func TestUpdatePool(t *testing.T) {
	t.Parallel()

	// A client may send back the object it read, edited: the read-only
	// fields (uuid, contacts_count, timestamps, status_counts, campaigns)
	// are ignored, whatever their values.
	t.Run("OKGetEditPut", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		path := "/api/v1/pools/" + p.UUID.String()
		detail := dataMap(t, b.do("GET", path, nil))
		detail["name"] = "Renewals, second wave"
		detail["max_retries"] = 7
		detail["uuid"] = uuid.NewString()
		detail["contacts_count"] = 99
		detail["created_at"] = "1999-01-01T00:00:00Z"
		res := b.do("PUT", path, detail)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		got := data[pool.Pool](t, res)
		require.Equal(t, "Renewals, second wave", got.Name)
		require.Equal(t, 7, got.MaxRetries)
		require.Equal(t, p.UUID, got.UUID)
		require.Equal(t, 0, got.ContactsCount)
		require.True(t, p.CreatedAt.Equal(got.CreatedAt))
	})

	t.Run("OKPartial", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		b.clock.Advance(time.Minute)

		res := b.do("PUT", "/api/v1/pools/"+p.UUID.String(), `{"max_parallel_items": 20, "type": "Parallel"}`)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Pool updated successfully", res.Env.Message)
		got := data[pool.Pool](t, res)
		want := p
		want.MaxParallelItems, want.Type, want.UpdatedAt = 20, pool.Parallel, p.CreatedAt.Add(time.Minute)
		require.Equal(t, want, got, "only the given fields change")

		d, err := b.eng.Pool(context.Background(), p.UUID)
		require.NoError(t, err)
		require.Equal(t, want, d.Pool, "stored")
	})

	t.Run("OKEveryField", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.Parallel, 10)
		res := b.do("PUT", "/api/v1/pools/"+p.UUID.String(), `{"name": "New name", "description": "New d",
			"type": "lifo", "max_parallel_items": 1, "max_retries": 0, "is_active": false}`)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		got := data[pool.Pool](t, res)
		require.Equal(t, "New name", got.Name)
		require.Equal(t, "New d", got.Description)
		require.Equal(t, pool.LIFO, got.Type)
		require.Equal(t, 1, got.MaxParallelItems)
		require.Equal(t, 0, got.MaxRetries)
		require.False(t, got.IsActive)
	})

	t.Run("OKEmptyObjectChangesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		b.clock.Advance(time.Minute)
		b.unchanged(func() {
			res := b.do("PUT", "/api/v1/pools/"+p.UUID.String(), `{}`)
			require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
			require.Equal(t, p, data[pool.Pool](t, res))
		})
	})

	t.Run("ErrValidation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		b.clock.Advance(time.Minute)
		b.unchanged(func() {
			// A valid field beside invalid ones is not applied either.
			res := b.do("PUT", "/api/v1/pools/"+p.UUID.String(),
				`{"is_active": false, "name": "x", "type": "", "max_parallel_items": 0, "description": ""}`)
			requireInvalid(t, res, "name", "description", "type", "max_parallel_items")
		})
	})

	t.Run("ErrMalformed", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 10)
		path := "/api/v1/pools/" + p.UUID.String()
		b.unchanged(func() {
			requireInvalid(t, b.do("PUT", path, `{"is_active": 0}`), "is_active")
			requireInvalid(t, b.do("PUT", path, `{"colour": "red"}`), "colour")
			requireError(t, b.do("PUT", path, `{"name": "abc"`), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("PUT", path, ``), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("PUT", path, `{"name": "`+strings.Repeat("n", MaxBodyBytes)+`"}`),
				http.StatusRequestEntityTooLarge, CodePayloadTooLarge)
		})
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.createPool("Renewals", pool.FIFO, 10)
		b.unchanged(func() {
			res := b.do("PUT", "/api/v1/pools/"+uuid.NewString(), `{"name": "abcd"}`)
			requireError(t, res, http.StatusNotFound, CodeNotFound)
			require.Equal(t, "Pool not found", res.Env.Message)
			requireError(t, b.do("PUT", "/api/v1/pools/not-a-uuid", `{"name": "abcd"}`), http.StatusNotFound, CodeNotFound)
			requireError(t, b.do("PUT", "/api/v1/pools/"+uuid.Nil.String(), `{"name": "abcd"}`), http.StatusNotFound, CodeNotFound)
		})
	})
}

func TestGetPool(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.Parallel, 10)
		b.addContacts(p.UUID, 3, 0)
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)

		res = b.do("GET", "/api/v1/pools/"+p.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		m := dataMap(t, res)
		require.Equal(t, []any{}, m["campaigns"], "campaigns is an empty list, not null")
		require.Equal(t, map[string]any{
			"Pending": 2.0, "Processing": 1.0, "In_Call": 0.0, "Retrying": 0.0,
			"Scheduled": 0.0, "Completed": 0.0, "Failed": 0.0, "Skipped": 0.0,
		}, m["status_counts"], "every status, zeros included")
		require.Equal(t, 3.0, m["contacts_count"])
		d := data[pool.Detail](t, res)
		want := p
		want.ContactsCount = 3
		require.Equal(t, want, d.Pool)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		requireError(t, b.do("GET", "/api/v1/pools/"+uuid.NewString(), nil), http.StatusNotFound, CodeNotFound)
		requireError(t, b.do("GET", "/api/v1/pools/xyz", nil), http.StatusNotFound, CodeNotFound)
	})
}

func TestListPools(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var all []pool.Pool
	for i, spec := range []struct {
		name, desc string
		typ        pool.Type
		active     bool
	}{
		{"VIP customers", "High-value leads", pool.FIFO, true},
		{"Renewals", "Contracts ending this month", pool.LIFO, true},
		{"Cold leads", "bought list, vip maybe", pool.Parallel, false},
		{"Ünïcode Öne", "ÉCOLE", pool.FIFO, false},
	} {
		res := b.do("POST", "/api/v1/pools", map[string]any{
			"name": spec.name, "description": spec.desc, "type": spec.typ, "is_active": spec.active,
		})
		require.Equal(t, http.StatusCreated, res.Status, "pool %d: %s", i, res.Body)
		all = append(all, data[pool.Pool](t, res))
		b.clock.Advance(time.Second) // distinct created_at: a stable order
	}

	list := func(query string) pool.PoolPage {
		t.Helper()
		res := b.do("GET", "/api/v1/pools"+query, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s: %s", query, res.Body)
		require.Equal(t, "Pools retrieved successfully", res.Env.Message)
		return data[pool.PoolPage](t, res)
	}
	names := func(pg pool.PoolPage) []string {
		var out []string
		for _, p := range pg.Data {
			out = append(out, p.Name)
		}
		return out
	}

	t.Run("OKDefaults", func(t *testing.T) {
		pg := list("")
		require.Equal(t, pool.PoolPage{CurrentPage: 1, LastPage: 1, PerPage: 15, Total: 4, Data: all}, pg)
	})
	t.Run("OKPages", func(t *testing.T) {
		require.Equal(t, pool.PoolPage{CurrentPage: 1, LastPage: 2, PerPage: 3, Total: 4, Data: all[:3]}, list("?per_page=3"))
		require.Equal(t, pool.PoolPage{CurrentPage: 2, LastPage: 2, PerPage: 3, Total: 4, Data: all[3:]}, list("?page=2&per_page=3"))
		pg := list("?page=3&per_page=3")
		require.Equal(t, 4, pg.Total)
		require.Empty(t, pg.Data)
	})
	t.Run("OKEmptyPageMarshalsAsList", func(t *testing.T) {
		res := b.do("GET", "/api/v1/pools?search=nothing-matches", nil)
		require.Equal(t, []any{}, dataMap(t, res)["data"])
	})
	t.Run("OKSearch", func(t *testing.T) {
		require.Equal(t, []string{"VIP customers", "Cold leads"}, names(list("?search=VIP")), "name or description, any case")
		require.Equal(t, []string{"Ünïcode Öne"}, names(list("?search=%C3%A9cole")), "Unicode case folding")
	})
	t.Run("OKFilters", func(t *testing.T) {
		require.Equal(t, []string{"VIP customers", "Ünïcode Öne"}, names(list("?type=fifo")))
		require.Equal(t, []string{"Cold leads", "Ünïcode Öne"}, names(list("?is_active=false")))
		require.Equal(t, []string{"VIP customers"}, names(list("?is_active=1&type=FIFO")))
		require.Equal(t, []string{"Cold leads"}, names(list("?is_active=false&type=Parallel&search=LEADS")))
	})
	t.Run("ErrValidation", func(t *testing.T) {
		tests := map[string]struct {
			query string
			field string
		}{
			"PageZero":        {"?page=0", "page"},
			"PageNotInt":      {"?page=two", "page"},
			"PageHuge":        {"?page=4611686018427387904", "page"},
			"PageOverflow":    {"?page=99999999999999999999", "page"},
			"PerPageTooBig":   {"?per_page=101", "per_page"},
			"PerPageNegative": {"?per_page=-1", "per_page"},
			"Type":            {"?type=Random", "type"},
			"IsActive":        {"?is_active=maybe", "is_active"},
			"SearchNotUTF8":   {"?search=%FF", "search"}, // the engine's validate.Errors, a 422
		}
		for name, tt := range tests {
			t.Run(name, func(t *testing.T) {
				requireInvalid(t, b.do("GET", "/api/v1/pools"+tt.query, nil), tt.field)
			})
		}
		requireInvalid(t, b.do("GET", "/api/v1/pools?per_page=500&type=x", nil), "per_page", "type")
	})
}

// TestListPools_EveryBadParameter: one 422 names every bad parameter, the
// handler's own (page, is_active) beside the query's rules (type, search).
func TestListPools_EveryBadParameter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	requireInvalid(t, b.do("GET", "/api/v1/pools?page=0&type=Random", nil), "page", "type")
	requireInvalid(t, b.do("GET", "/api/v1/pools?is_active=maybe&search=a%0Ab", nil), "is_active", "search")
}

func TestDeletePool(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		keep := b.createPool("Keep", pool.FIFO, 1)
		p := b.createPool("Renewals", pool.FIFO, 1)
		b.addContacts(p.UUID, 2, 0)
		res := b.do("DELETE", "/api/v1/pools/"+p.UUID.String(), nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Pool deleted successfully", res.Env.Message)
		require.Equal(t, "null", string(res.Env.Data))

		requireError(t, b.do("GET", "/api/v1/pools/"+p.UUID.String(), nil), http.StatusNotFound, CodeNotFound)
		requireError(t, b.do("DELETE", "/api/v1/pools/"+p.UUID.String(), nil), http.StatusNotFound, CodeNotFound)
		require.Equal(t, []pool.Detail{{Pool: keep, StatusCounts: pool.ZeroCounts(), Campaigns: []pool.CampaignRef{}}}, b.snapshot().Pools)
	})

	t.Run("ErrInFlight", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.createPool("Renewals", pool.FIFO, 1)
		c := b.addContacts(p.UUID, 2, 0)
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		b.unchanged(func() {
			res := b.do("DELETE", "/api/v1/pools/"+p.UUID.String(), nil)
			requireError(t, res, http.StatusConflict, CodeInFlight)
		})
		// Once the item is settled, the pool goes.
		l := data[queue.Lease](t, res)
		res = b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/contacts/"+c[0].String()+"/complete", map[string]any{"token": l.Token, "item_id": l.ItemID})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, http.StatusOK, b.do("DELETE", "/api/v1/pools/"+p.UUID.String(), nil).Status)
	})
}

func TestDuplicatePool(t *testing.T) {
	t.Parallel()

	setupSource := func(t *testing.T) (*testBundle, pool.Pool, []uuid.UUID) {
		b := setup(t)
		p := b.createPool("Renewals", pool.Parallel, 5)
		low := b.addContacts(p.UUID, 2, 1)
		high := b.addContacts(p.UUID, 1, 9)
		// One item of the source is attempted: the copy starts afresh.
		res := b.do("POST", "/api/v1/pools/"+p.UUID.String()+"/dispatch", nil)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		return b, p, append(low, high...)
	}

	t.Run("OKDefaults", func(t *testing.T) {
		t.Parallel()
		b, src, cs := setupSource(t)
		res := b.do("POST", "/api/v1/pools/"+src.UUID.String()+"/duplicate", nil)
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		require.Equal(t, "Pool duplicated successfully", res.Env.Message)
		m := dataMap(t, res)
		require.Equal(t, 3.0, m["contacts_copied"])
		d := data[pool.Duplicated](t, res)
		require.Equal(t, "/api/v1/pools/"+d.UUID.String(), res.Header.Get("Location"))
		require.NotEqual(t, src.UUID, d.UUID)
		require.Equal(t, "Renewals (copy)", d.Name)
		require.Equal(t, src.Description, d.Description)
		require.Equal(t, src.Type, d.Type)
		require.Equal(t, src.MaxParallelItems, d.MaxParallelItems)
		require.Equal(t, 3, d.ContactsCount)

		items := b.snapshot().Items[d.UUID]
		require.Len(t, items, 3)
		for i, it := range items {
			require.Equal(t, cs[i], it.ContactUUID, "insertion order kept")
			require.Equal(t, pool.StatusPending, it.Status, "every copy Pending")
			require.Equal(t, 0, it.Attempts)
		}
		require.Equal(t, 9, items[2].Priority)
	})

	t.Run("OKNameNoContacts", func(t *testing.T) {
		t.Parallel()
		b, src, _ := setupSource(t)
		res := b.do("POST", "/api/v1/pools/"+src.UUID.String()+"/duplicate", `{"name": "Renewals 2", "copy_contacts": false}`)
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		d := data[pool.Duplicated](t, res)
		require.Equal(t, "Renewals 2", d.Name)
		require.Equal(t, 0, d.ContactsCopied)
		require.Equal(t, 0, d.ContactsCount)
	})

	t.Run("OKEmptyObject", func(t *testing.T) {
		t.Parallel()
		b, src, _ := setupSource(t)
		res := b.do("POST", "/api/v1/pools/"+src.UUID.String()+"/duplicate", `{}`)
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
		require.Equal(t, 3, data[pool.Duplicated](t, res).ContactsCopied)
	})

	t.Run("Err", func(t *testing.T) {
		t.Parallel()
		b, src, _ := setupSource(t)
		path := "/api/v1/pools/" + src.UUID.String() + "/duplicate"
		b.unchanged(func() {
			requireInvalid(t, b.do("POST", path, `{"name": "x"}`), "name")
			requireInvalid(t, b.do("POST", path, `{"copy_contacts": "no"}`), "copy_contacts")
			requireInvalid(t, b.do("POST", path, `{"copy": false}`), "copy")
			requireError(t, b.do("POST", path, `[]`), http.StatusBadRequest, CodeInvalidJSON)
			requireError(t, b.do("POST", "/api/v1/pools/"+uuid.NewString()+"/duplicate", nil), http.StatusNotFound, CodeNotFound)
		})
	})
}

// A 422 lists at most maxListedFailures failing fields, then their number:
// a body of a million bytes of unknown fields must not buy a response many
// times its size.
func TestCreatePool_ManyUnknownFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var sb strings.Builder
	sb.WriteString(`{"name": "Renewals", "description": "many fields"`)
	n := 0
	for ; sb.Len() < MaxBodyBytes-64; n++ {
		fmt.Fprintf(&sb, `, "x%06d": 0`, n)
	}
	sb.WriteString("}")
	b.unchanged(func() {
		res := b.do("POST", "/api/v1/pools", sb.String())
		require.Equal(t, http.StatusUnprocessableEntity, res.Status)
		require.Less(t, len(res.Body), 64<<10, "a %d-byte request got a %d-byte 422", sb.Len(), len(res.Body))
		require.Equal(t, "x000000", res.Env.Error.Field)
		require.Contains(t, res.Env.Error.Details, fmt.Sprintf("x%06d: is not a field", maxListedFailures-1))
		require.NotContains(t, res.Env.Error.Details, fmt.Sprintf("x%06d:", maxListedFailures))
		require.Contains(t, res.Env.Error.Details, fmt.Sprintf("; %d more failures not listed", n-maxListedFailures))
	})
}

// TestPools_CampaignsSentBack: a pool's campaigns change only through the
// campaign endpoints. A create or update of a pool that sends campaigns
// other than the pool's own (none, on a create) is a 422 saying which
// endpoints attach and detach, not a 201 or 200 for an attachment, a
// detachment or a campaign's status that did not happen; the pool's own,
// in any order, are accepted with the rest of what was read.
func TestPools_CampaignsSentBack(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.createPool("Renewals", pool.FIFO, 1)
	b.addContacts(p.UUID, 1, 0)
	spring := b.createCampaign("Spring", nil, p.UUID)
	autumn := b.createCampaign("Autumn", nil, p.UUID)
	path := "/api/v1/pools/" + p.UUID.String()
	read := dataMap(t, b.do("GET", path, nil))
	refs := data[pool.Detail](t, b.do("GET", path, nil)).Campaigns
	require.Len(t, refs, 2)
	other := b.createCampaign("Winter", nil)
	otherRef := pool.CampaignRef{UUID: other.UUID, Name: "Winter", Status: string(campaign.Draft)}
	started := refs[0]
	started.Status = string(campaign.InProcess)

	t.Run("ErrCreate", func(t *testing.T) {
		b.unchanged(func() {
			res := b.do("POST", "/api/v1/pools", map[string]any{"name": "Winbacks", "description": "d", "campaigns": []pool.CampaignRef{otherRef}})
			requireInvalid(t, res, "campaigns")
			require.Contains(t, res.Env.Error.Details, "campaigns: is not set by a create: a pool is created attached to no campaign")
			require.Contains(t, res.Env.Error.Details, "attach a pool with POST /api/v1/campaigns/{uuid}/pools")
			// Beside the other fields' failures, in one 422.
			requireInvalid(t, b.do("POST", "/api/v1/pools", map[string]any{"name": "ab", "description": "d", "campaigns": "Spring"}), "name", "campaigns")
		})
	})

	t.Run("ErrUpdateChanged", func(t *testing.T) {
		for _, sent := range [][]pool.CampaignRef{
			{},                           // detach both
			{refs[0]},                    // detach one
			{refs[0], refs[1], otherRef}, // attach another
			{otherRef, refs[1]},          // swap one
		} {
			b.unchanged(func() {
				res := b.do("PUT", path, map[string]any{"name": "Renewals 2", "campaigns": sent})
				requireInvalid(t, res, "campaigns")
				require.Contains(t, res.Env.Error.Details, "campaigns: is read-only, and differs from the campaigns the pool is attached to")
				require.Contains(t, res.Env.Error.Details, "detach it with DELETE /api/v1/campaigns/{uuid}/pools/{pool}")
			})
		}
		b.unchanged(func() {
			requireInvalid(t, b.do("PUT", path, map[string]any{"max_retries": -1, "campaigns": []pool.CampaignRef{}}), "max_retries", "campaigns")
		})
		requireError(t, b.do("POST", path+"/dispatch", nil), http.StatusConflict, CodePoolHeld)
	})

	t.Run("OKSameCampaigns", func(t *testing.T) {
		read["name"] = "Renewals, second wave"
		// In another order, one of them started since the client read
		// it: the attachments are the same.
		read["campaigns"] = []pool.CampaignRef{refs[1], started}
		res := b.do("PUT", path, read)
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		require.Equal(t, "Renewals, second wave", data[pool.Pool](t, res).Name)
		d := data[pool.Detail](t, b.do("GET", path, nil))
		require.ElementsMatch(t, []uuid.UUID{spring.UUID, autumn.UUID}, []uuid.UUID{d.Campaigns[0].UUID, d.Campaigns[1].UUID})

		// null is absent; a create may send an empty list.
		res = b.do("PUT", path, map[string]any{"campaigns": nil})
		require.Equal(t, http.StatusOK, res.Status, "body: %s", res.Body)
		res = b.do("POST", "/api/v1/pools", map[string]any{"name": "Winbacks", "description": "d", "campaigns": []any{}})
		require.Equal(t, http.StatusCreated, res.Status, "body: %s", res.Body)
	})
}
