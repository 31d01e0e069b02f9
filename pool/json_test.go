package pool_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/pool"
)

// The API's field names, from ../../shared/reference: api-facts.md ("Pools",
// "Pool items", "Duplicate a pool", "Add contacts", "Pages are 1-based") and
// the create page's response.
var (
	apiPoolKeys = sorted("uuid", "name", "description", "type", "max_parallel_items", "max_retries",
		"is_active", "contacts_count", "created_at", "updated_at")
	apiPageKeys      = sorted("current_page", "last_page", "per_page", "total", "data")
	apiAddResultKeys = sorted("contacts_added", "contacts_skipped")
	// apiItemKeys is the API's item listing, the contact's name,
	// phone_number and email included (DESIGN.md "Campaigns and contact
	// rules": items carry their contact's fields as the API shows them).
	apiItemKeys = sorted("contact_uuid", "name", "phone_number", "email", "status", "priority",
		"retry_count", "started_at", "completed_at", "failed_at", "next_retry_at", "notes", "added_at")
	// designItemKeys is DESIGN.md's item: the API's, plus the contact's
	// time zone, attempts and the optional payload.
	designItemKeys = sorted("contact_uuid", "name", "phone_number", "email", "timezone", "payload", "priority",
		"status", "attempts", "retry_count", "started_at", "completed_at", "failed_at", "next_retry_at", "notes", "added_at")
)

// createResponse is the create page's response, verbatim.
const createResponse = `{
  "success": true,
  "message": "Pool created successfully",
  "data": {
    "uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
    "name": "<string>",
    "description": "<string>",
    "type": "FIFO",
    "max_parallel_items": 123,
    "max_retries": 123,
    "is_active": true,
    "contacts_count": 123,
    "created_at": "2023-11-07T05:31:56Z",
    "updated_at": "2023-11-07T05:31:56Z"
  }
}`

// The reference's curl bodies, verbatim.
const (
	createBody = `
{
  "name": "VIP customers",
  "description": "High-value leads, push first",
  "type": "FIFO",
  "max_parallel_items": 10,
  "max_retries": 3,
  "is_active": true
}
`
	updateBody = `
{
  "name": "<string>",
  "description": "<string>",
  "type": "FIFO",
  "max_parallel_items": 20,
  "max_retries": 5,
  "is_active": true
}
`
)

func TestPool_MarshalJSON(t *testing.T) {
	t.Parallel()

	t.Run("OKKeys", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, apiPoolKeys, jsonKeys(t, defaultPool()))
	})

	t.Run("OKSameAsReferenceResponse", func(t *testing.T) {
		t.Parallel()
		var envelope struct {
			Data json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(createResponse), &envelope))
		var p pool.Pool
		require.NoError(t, json.Unmarshal(envelope.Data, &p))
		require.Equal(t, pool.Pool{
			UUID: poolID, Name: "<string>", Description: "<string>", Type: pool.FIFO,
			MaxParallelItems: 123, MaxRetries: 123, IsActive: true, ContactsCount: 123,
			CreatedAt: t0, UpdatedAt: t0,
		}, p)

		b, err := json.Marshal(p)
		require.NoError(t, err)
		require.JSONEq(t, string(envelope.Data), string(b))
	})

	t.Run("OKValues", func(t *testing.T) {
		t.Parallel()
		p := defaultPool()
		p.Type = pool.Parallel
		p.ContactsCount = 7
		b, err := json.Marshal(p)
		require.NoError(t, err)
		require.JSONEq(t, `{
			"uuid": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
			"name": "VIP customers",
			"description": "High-value leads, push first",
			"type": "Parallel",
			"max_parallel_items": 10,
			"max_retries": 3,
			"is_active": true,
			"contacts_count": 7,
			"created_at": "2023-11-07T05:31:56Z",
			"updated_at": "2023-11-07T05:31:56Z"
		}`, string(b))
	})

	t.Run("OKTimesRFC3339UTC", func(t *testing.T) {
		t.Parallel()
		p, err := pool.New(poolID, validCreate(), time.Date(2024, 1, 2, 4, 4, 5, 0, time.FixedZone("X", 3600)))
		require.NoError(t, err)
		var m map[string]any
		b, err := json.Marshal(p)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &m))
		require.Equal(t, "2024-01-02T03:04:05Z", m["created_at"])
		require.Equal(t, "2024-01-02T03:04:05Z", m["updated_at"])
	})
}

// TestTimestamp: every time in JSON has the reference's form, whole seconds
// and Z, fixed width, whatever the nanoseconds and the zone of the value.
func TestTimestamp(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 1, 2, 4, 4, 5, 987654321, time.FixedZone("X", 3600))
	const want = `"2024-01-02T03:04:05Z"`

	p := defaultPool()
	p.CreatedAt, p.UpdatedAt = at, at
	it := pool.Item{ContactUUID: poolID, Status: pool.StatusFailed, AddedAt: at, StartedAt: &at, FailedAt: &at, NextRetryAt: &at, CompletedAt: &at}
	for name, v := range map[string]any{
		"Pool":       p,
		"Detail":     pool.Detail{Pool: p, StatusCounts: pool.ZeroCounts()},
		"Duplicated": pool.Duplicated{Pool: p, ContactsCopied: 3},
		"Item":       it,
		"Page":       pool.NewPage(1, 15, 1, []pool.Pool{p}),
	} {
		b, err := json.Marshal(v)
		require.NoError(t, err, name)
		require.NotContains(t, string(b), "987", "%s: no fraction of a second: %s", name, b)
		require.Contains(t, string(b), want, name)
	}
	b, err := json.Marshal(pool.Timestamp(at))
	require.NoError(t, err)
	require.Equal(t, want, string(b))
	var back pool.Timestamp
	require.NoError(t, json.Unmarshal(b, &back))
	require.True(t, at.Truncate(time.Second).Equal(time.Time(back)))
	var item pool.Item
	b, err = json.Marshal(it)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &item), "an item's JSON reads back")
	require.True(t, item.AddedAt.Equal(at.Truncate(time.Second)))
}

func TestDetail_MarshalJSON(t *testing.T) {
	t.Parallel()

	counts := pool.ZeroCounts()
	counts[pool.StatusPending] = 2
	counts[pool.StatusInCall] = 1
	d := pool.Detail{Pool: defaultPool(), StatusCounts: counts}
	d.ContactsCount = 3

	// status_counts and campaigns sit next to the pool's fields, not under
	// a "pool" key (the API's detail: "adds status_counts and campaigns").
	require.Equal(t, sorted(slices.Concat(apiPoolKeys, []string{"status_counts", "campaigns"})...), jsonKeys(t, d))
	b, err := json.Marshal(d)
	require.NoError(t, err)
	require.Contains(t, string(b), `"campaigns":[]`, "never null")
	d.Campaigns = []pool.CampaignRef{{UUID: poolID, Name: "Spring", Status: "In Process"}}
	b, err = json.Marshal(d)
	require.NoError(t, err)
	require.Contains(t, string(b), `"campaigns":[{"uuid":"3c90c3cc-0d44-4b50-8888-8dd25736052a","name":"Spring","status":"In Process"}]`)
	d.Campaigns = nil

	b, err = json.Marshal(d)
	require.NoError(t, err)
	var m struct {
		ContactsCount int            `json:"contacts_count"`
		StatusCounts  map[string]int `json:"status_counts"`
	}
	require.NoError(t, json.Unmarshal(b, &m))
	require.Equal(t, map[string]int{
		"Pending": 2, "Processing": 0, "In_Call": 1, "Retrying": 0,
		"Scheduled": 0, "Completed": 0, "Failed": 0, "Skipped": 0,
	}, m.StatusCounts, "every status, zeros included, with the API's spellings")
	sum := 0
	for _, n := range m.StatusCounts {
		sum += n
	}
	require.Equal(t, m.ContactsCount, sum)
}

func TestItem_MarshalJSON(t *testing.T) {
	t.Parallel()

	item := func() pool.Item {
		return pool.Item{
			ID:             99,
			PoolUUID:       poolID,
			ContactUUID:    uuid.MustParse("0b8f5a3e-3f6e-4c1b-9a7d-2a1b3c4d5e6f"),
			Status:         pool.StatusPending,
			Priority:       5,
			AddedAt:        t0,
			Token:          7,
			LeaseExpiresAt: t0.Add(time.Minute),
		}
	}

	t.Run("OKKeysWithoutPayload", func(t *testing.T) {
		t.Parallel()
		keys := jsonKeys(t, item())
		require.Equal(t, remove(designItemKeys, "payload"), keys)
		for _, k := range keys {
			require.True(t, slices.Contains(apiItemKeys, k) || k == "attempts" || k == "timezone",
				"%q is neither an API item field nor DESIGN.md's attempts or timezone", k)
		}
	})

	t.Run("OKKeysWithPayload", func(t *testing.T) {
		t.Parallel()
		it := item()
		it.Payload = json.RawMessage(`{"phone":"+15551234567"}`)
		require.Equal(t, designItemKeys, jsonKeys(t, it))
	})

	t.Run("OKNullTimes", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(item())
		require.NoError(t, err)
		require.JSONEq(t, `{
			"contact_uuid": "0b8f5a3e-3f6e-4c1b-9a7d-2a1b3c4d5e6f",
			"name": null,
			"phone_number": null,
			"email": null,
			"timezone": null,
			"status": "Pending",
			"priority": 5,
			"attempts": 0,
			"retry_count": 0,
			"started_at": null,
			"completed_at": null,
			"failed_at": null,
			"next_retry_at": null,
			"notes": "",
			"added_at": "2023-11-07T05:31:56Z"
		}`, string(b))
	})

	t.Run("OKSetTimesAndRawPayload", func(t *testing.T) {
		t.Parallel()
		it := item()
		started, failed := t0.Add(time.Minute), t0.Add(2*time.Minute)
		it.Status = pool.StatusFailed
		it.Attempts, it.RetryCount = 2, 2
		it.StartedAt, it.FailedAt = &started, &failed
		it.Notes = "busy"
		it.Payload = json.RawMessage(`{"phone":"+15551234567"}`)
		it.Contact = pool.Contact{Name: "Ada Lovelace", PhoneNumber: "+15551234567", Email: "ada@example.com", TimeZone: "Europe/London"}
		b, err := json.Marshal(it)
		require.NoError(t, err)
		require.JSONEq(t, `{
			"contact_uuid": "0b8f5a3e-3f6e-4c1b-9a7d-2a1b3c4d5e6f",
			"name": "Ada Lovelace",
			"phone_number": "+15551234567",
			"email": "ada@example.com",
			"timezone": "Europe/London",
			"status": "Failed",
			"priority": 5,
			"attempts": 2,
			"retry_count": 2,
			"started_at": "2023-11-07T05:32:56Z",
			"completed_at": null,
			"failed_at": "2023-11-07T05:33:56Z",
			"next_retry_at": null,
			"notes": "busy",
			"added_at": "2023-11-07T05:31:56Z",
			"payload": {"phone": "+15551234567"}
		}`, string(b))
	})

	t.Run("OKBookkeepingNotMarshalled", func(t *testing.T) {
		t.Parallel()
		b, err := json.Marshal(item())
		require.NoError(t, err)
		s := strings.ToLower(string(b))
		for _, k := range []string{`"id"`, `"pooluuid"`, `"pool_uuid"`, `"token"`, `"leaseexpiresat"`, `"lease_expires_at"`} {
			require.NotContains(t, s, k)
		}
		require.NotContains(t, s, "99", "the ID must not leak")
		require.NotContains(t, s, "05:32:56", "the lease expiry must not leak")
	})
}

func remove(s []string, v string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func TestAddResult_MarshalJSON(t *testing.T) {
	t.Parallel()

	require.Equal(t, apiAddResultKeys, jsonKeys(t, pool.AddResult{}))
	b, err := json.Marshal(pool.AddResult{ContactsAdded: 3, ContactsSkipped: 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"contacts_added":3,"contacts_skipped":1}`, string(b))
}

func TestDuplicated_MarshalJSON(t *testing.T) {
	t.Parallel()

	d := pool.Duplicated{Pool: defaultPool(), ContactsCopied: 12}
	require.Equal(t, sorted(slices.Concat(apiPoolKeys, []string{"contacts_copied"})...), jsonKeys(t, d))
	b, err := json.Marshal(d)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	require.EqualValues(t, 12, m["contacts_copied"])
	require.Equal(t, "VIP customers", m["name"])
}

func TestPage_MarshalJSON(t *testing.T) {
	t.Parallel()

	t.Run("OKPoolPage", func(t *testing.T) {
		t.Parallel()
		pg := pool.NewPage(2, 15, 16, []pool.Pool{defaultPool()})
		require.Equal(t, apiPageKeys, jsonKeys(t, pg))
		b, err := json.Marshal(pg)
		require.NoError(t, err)
		var m struct {
			CurrentPage int                          `json:"current_page"`
			LastPage    int                          `json:"last_page"`
			PerPage     int                          `json:"per_page"`
			Total       int                          `json:"total"`
			Data        []map[string]json.RawMessage `json:"data"`
		}
		require.NoError(t, json.Unmarshal(b, &m))
		require.Equal(t, 2, m.CurrentPage)
		require.Equal(t, 2, m.LastPage)
		require.Equal(t, 15, m.PerPage)
		require.Equal(t, 16, m.Total)
		require.Len(t, m.Data, 1)
		require.Equal(t, apiPoolKeys, sortedKeys(m.Data[0]))
	})

	t.Run("OKEmptyItemPage", func(t *testing.T) {
		t.Parallel()
		var pg pool.ItemPage = pool.NewPage[pool.Item](1, 25, 0, nil)
		b, err := json.Marshal(pg)
		require.NoError(t, err)
		require.Contains(t, string(b), `"data":[]`)
	})
}

func TestCreateParams_UnmarshalJSON(t *testing.T) {
	t.Parallel()

	t.Run("OKReferenceBody", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(createBody), &p))
		require.Equal(t, pool.CreateParams{
			Name: "VIP customers", Description: "High-value leads, push first", Type: pool.FIFO,
			MaxParallelItems: ptr(10), MaxRetries: ptr(3), IsActive: ptr(true),
		}, p)
		got, err := pool.New(poolID, p, t0)
		require.NoError(t, err)
		require.Equal(t, defaultPool(), got)
	})

	t.Run("OKRequiredOnly", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(`{"name":"VIP customers","description":"High-value leads, push first"}`), &p))
		require.Equal(t, validCreate(), p)
	})

	t.Run("OKNullsMeanDefaults", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(`{"name":"VIP customers","description":"High-value leads, push first",`+
			`"type":null,"max_parallel_items":null,"max_retries":null,"is_active":null}`), &p))
		got, err := pool.New(poolID, p, t0)
		require.NoError(t, err)
		require.Equal(t, defaultPool(), got)
	})

	t.Run("OKZeroesAreGiven", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(`{"max_retries":0,"max_parallel_items":0,"is_active":false}`), &p))
		require.Equal(t, ptr(0), p.MaxRetries)
		require.Equal(t, ptr(0), p.MaxParallelItems)
		require.Equal(t, ptr(false), p.IsActive)
	})

	t.Run("OKTypeCanonicalized", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(`{"type":"pArAlLeL"}`), &p))
		require.Equal(t, pool.Parallel, p.Type)
	})

	// An absent (or null) type is the default; a type given as "" is the
	// error it is in an update.
	t.Run("ErrTypeGivenEmpty", func(t *testing.T) {
		t.Parallel()
		var p pool.CreateParams
		require.NoError(t, json.Unmarshal([]byte(`{"name":"VIP customers","description":"leads","type":""}`), &p))
		require.Equal(t, []string{"type"}, fieldSet(t, p.Validate()))
		var u pool.UpdateParams
		require.NoError(t, json.Unmarshal([]byte(`{"type":""}`), &u))
		require.Equal(t, fieldSet(t, u.Validate()), fieldSet(t, p.Validate()), "the same error as an update's")
		_, err := pool.New(poolID, p, t0)
		require.Equal(t, []string{"type"}, fieldSet(t, err))
	})

	t.Run("ErrWrongTypes", func(t *testing.T) {
		t.Parallel()
		for _, body := range []string{
			`{"name":3}`, `{"max_parallel_items":"10"}`, `{"max_parallel_items":1.5}`,
			`{"max_retries":true}`, `{"is_active":"yes"}`, `{"type":1}`, `[]`,
		} {
			var p pool.CreateParams
			require.Error(t, json.Unmarshal([]byte(body), &p), body)
		}
	})
}

func TestUpdateParams_UnmarshalJSON(t *testing.T) {
	t.Parallel()

	t.Run("OKReferenceBody", func(t *testing.T) {
		t.Parallel()
		var u pool.UpdateParams
		require.NoError(t, json.Unmarshal([]byte(updateBody), &u))
		require.Equal(t, pool.UpdateParams{
			Name: ptr("<string>"), Description: ptr("<string>"), Type: ptr(pool.FIFO),
			MaxParallelItems: ptr(20), MaxRetries: ptr(5), IsActive: ptr(true),
		}, u)
		got, changed, err := u.Apply(defaultPool())
		require.NoError(t, err)
		require.True(t, changed)
		want := defaultPool()
		want.Name, want.Description, want.MaxParallelItems, want.MaxRetries = "<string>", "<string>", 20, 5
		require.Equal(t, want, got)
	})

	t.Run("OKPartial", func(t *testing.T) {
		t.Parallel()
		var u pool.UpdateParams
		require.NoError(t, json.Unmarshal([]byte(`{"max_retries":0}`), &u))
		require.Equal(t, pool.UpdateParams{MaxRetries: ptr(0)}, u)
	})

	t.Run("OKNullMeansNotGiven", func(t *testing.T) {
		t.Parallel()
		var u pool.UpdateParams
		require.NoError(t, json.Unmarshal([]byte(`{"name":null,"type":null,"is_active":null}`), &u))
		require.Equal(t, pool.UpdateParams{}, u)
	})

	t.Run("OKTypeCanonicalized", func(t *testing.T) {
		t.Parallel()
		var u pool.UpdateParams
		require.NoError(t, json.Unmarshal([]byte(`{"type":"lifo"}`), &u))
		require.Equal(t, ptr(pool.LIFO), u.Type)
	})

	t.Run("ErrEmptyTypeGiven", func(t *testing.T) {
		t.Parallel()
		var u pool.UpdateParams
		require.NoError(t, json.Unmarshal([]byte(`{"type":""}`), &u))
		require.Error(t, u.Validate())
	})
}

// TestDetail_MarshalJSONEveryStatus: status_counts holds every status,
// zeros included, whatever the Detail's map holds: it was null for a nil
// map and partial for a partial one (the engine's Details are full, a
// Detail built by a host or another store need not be).
func TestDetail_MarshalJSONEveryStatus(t *testing.T) {
	p, err := pool.New(poolID, pool.CreateParams{Name: "VIP", Description: "d"}, t0)
	require.NoError(t, err)
	p.ContactsCount = 2
	for name, counts := range map[string]map[pool.Status]int{
		"nil":     nil,
		"partial": {pool.StatusPending: 2},
	} {
		b, err := json.Marshal(pool.Detail{Pool: p, StatusCounts: counts})
		require.NoError(t, err)
		var m struct {
			StatusCounts map[string]int `json:"status_counts"`
		}
		require.NoError(t, json.Unmarshal(b, &m))
		require.Len(t, m.StatusCounts, len(pool.Statuses()), "%s: %s", name, b)
		require.Equal(t, counts[pool.StatusPending], m.StatusCounts["Pending"], name)
	}
}

// TestCreateParams_UnmarshalJSONIntoValue: decoding into CreateParams
// keeps the fields the JSON does not name, and null changes nothing, as
// encoding/json decodes any struct (and UpdateParams): it replaced the
// whole value, losing a host's own defaults set before decoding.
func TestCreateParams_UnmarshalJSONIntoValue(t *testing.T) {
	p := pool.CreateParams{Type: pool.Parallel, MaxRetries: ptr(7)}
	require.NoError(t, json.Unmarshal([]byte(`{"name":"VIP customers","description":"d"}`), &p))
	require.Equal(t, pool.CreateParams{Name: "VIP customers", Description: "d", Type: pool.Parallel, MaxRetries: ptr(7)}, p)

	q := pool.CreateParams{Name: "VIP customers", Description: "d"}
	require.NoError(t, json.Unmarshal([]byte(`null`), &q))
	require.Equal(t, pool.CreateParams{Name: "VIP customers", Description: "d"}, q)

	require.NoError(t, json.Unmarshal([]byte(`{"type":""}`), &p))
	require.Error(t, p.Validate(), "an empty type given is refused, not the default")
	require.NoError(t, json.Unmarshal([]byte(`{"type":"lifo"}`), &p))
	require.Equal(t, pool.LIFO, p.Type, "parsed as the type's own decoding does")
	require.NoError(t, p.Validate(), "a type given again is no longer the empty one")
}

// TestMarshalJSON_CallerDecidesHTMLEscaping: the types' JSON forms leave
// <, > and & to the caller's encoder. json.Marshal escapes them as it
// escapes its own strings; an Encoder with SetEscapeHTML(false) (a JSON
// API) writes them as they are, so a payload of '<' is not six times its
// size on the wire.
func TestMarshalJSON_CallerDecidesHTMLEscaping(t *testing.T) {
	t.Parallel()
	const markup = "<b>Tom & Jerry</b>"
	p := pool.Pool{UUID: poolID, Name: markup, Description: markup, Type: pool.FIFO, MaxParallelItems: 1, CreatedAt: t0, UpdatedAt: t0}
	it := pool.Item{ID: 1, PoolUUID: poolID, ContactUUID: uuid.New(), Status: pool.StatusFailed, AddedAt: t0,
		Contact: pool.Contact{Name: markup}, Notes: markup, Payload: json.RawMessage(`{"script": "` + markup + `"}`)}
	for name, v := range map[string]any{
		"Pool":       p,
		"Detail":     pool.Detail{Pool: p},
		"Duplicated": pool.Duplicated{Pool: p},
		"Item":       it,
		"ItemPage":   pool.ItemPage{Data: []pool.Item{it}},
	} {
		raw, err := jsonenc.Marshal(v)
		require.NoError(t, err, name)
		require.Contains(t, string(raw), markup, name)
		require.NotContains(t, string(raw), `\u003c`, name)
		escaped, err := json.Marshal(v)
		require.NoError(t, err, name)
		require.NotContains(t, string(escaped), "<", name)
		require.Contains(t, string(escaped), `\u003cb\u003eTom \u0026 Jerry\u003c/b\u003e`, name)
		require.JSONEq(t, string(raw), string(escaped), name)
	}
}
