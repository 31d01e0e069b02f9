package pool

import (
	"time"

	"github.com/poolq/poolq/internal/jsonenc"
)

// Timestamp is a time as the API writes it in JSON: UTC, whole seconds,
// fixed width, "2023-11-07T05:31:56Z". The types of this package keep
// their times as time.Time, to the nanosecond; only their JSON form is cut
// to the second (rounded down: an expiry written this way is never later
// than the real one). Timestamp decodes any RFC 3339 time.
type Timestamp time.Time

// MarshalJSON writes t as "2006-01-02T15:04:05Z".
func (t Timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Truncate(time.Second).Format(time.RFC3339) + `"`), nil
}

// UnmarshalJSON reads an RFC 3339 time.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	return (*time.Time)(t).UnmarshalJSON(b)
}

// timestamp returns *t as a *Timestamp, nil for nil.
func timestamp(t *time.Time) *Timestamp {
	if t == nil {
		return nil
	}
	ts := Timestamp(*t)
	return &ts
}

// nullable returns &s, or nil (JSON null) for "".
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// The JSON forms. Each embeds its type without methods (so that its other
// fields keep their tags) and shadows the time fields with Timestamps:
// encoding/json takes the shallower of two fields with one name.
type (
	plainPool Pool
	poolJSON  struct {
		plainPool
		CreatedAt Timestamp `json:"created_at"`
		UpdatedAt Timestamp `json:"updated_at"`
	}
	plainItem Item
	itemJSON  struct {
		plainItem
		// The contact's fields are always there, null when unknown.
		Name        *string    `json:"name"`
		PhoneNumber *string    `json:"phone_number"`
		Email       *string    `json:"email"`
		TimeZone    *string    `json:"timezone"`
		StartedAt   *Timestamp `json:"started_at"`
		CompletedAt *Timestamp `json:"completed_at"`
		FailedAt    *Timestamp `json:"failed_at"`
		NextRetryAt *Timestamp `json:"next_retry_at"`
		AddedAt     Timestamp  `json:"added_at"`
	}
)

func (p Pool) json() poolJSON {
	return poolJSON{plainPool: plainPool(p), CreatedAt: Timestamp(p.CreatedAt), UpdatedAt: Timestamp(p.UpdatedAt)}
}

// MarshalJSON writes the API's pool object, times as [Timestamp]s.
func (p Pool) MarshalJSON() ([]byte, error) { return jsonenc.Marshal(p.json()) }

// MarshalJSON writes the pool object with status_counts (every status,
// zeros included, whatever d.StatusCounts holds) and campaigns (never
// null).
func (d Detail) MarshalJSON() ([]byte, error) {
	if d.Campaigns == nil {
		d.Campaigns = []CampaignRef{}
	}
	counts := ZeroCounts()
	for s, n := range d.StatusCounts {
		counts[s] = n
	}
	return jsonenc.Marshal(struct {
		poolJSON
		StatusCounts map[Status]int `json:"status_counts"`
		Campaigns    []CampaignRef  `json:"campaigns"`
	}{d.Pool.json(), counts, d.Campaigns})
}

// MarshalJSON writes the pool object with contacts_copied.
func (d Duplicated) MarshalJSON() ([]byte, error) {
	return jsonenc.Marshal(struct {
		poolJSON
		ContactsCopied int `json:"contacts_copied"`
	}{d.Pool.json(), d.ContactsCopied})
}

// MarshalJSON writes the API's item object, times as [Timestamp]s.
func (it Item) MarshalJSON() ([]byte, error) {
	return jsonenc.Marshal(itemJSON{
		plainItem:   plainItem(it),
		Name:        nullable(it.Name),
		PhoneNumber: nullable(it.PhoneNumber),
		Email:       nullable(it.Email),
		TimeZone:    nullable(it.TimeZone),
		StartedAt:   timestamp(it.StartedAt),
		CompletedAt: timestamp(it.CompletedAt),
		FailedAt:    timestamp(it.FailedAt),
		NextRetryAt: timestamp(it.NextRetryAt),
		AddedAt:     Timestamp(it.AddedAt),
	})
}
