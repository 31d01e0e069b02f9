package pool_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/validate"
)

// Run one fuzzer at a time, e.g.:
//
//	go test -run='^$' -fuzz=FuzzCreateParamsJSON -fuzztime=30s ./pool
//	go test -run='^$' -fuzz=FuzzUpdateParamsJSON -fuzztime=30s ./pool
//
// Without -fuzz, the seeds below run as ordinary tests.

var createSeeds = []string{
	createBody,
	`{"name":"VIP customers","description":"High-value leads"}`,
	`{"name":"日本語","description":"説明","type":"pArAlLeL","max_parallel_items":100,"max_retries":0,"is_active":false}`,
	`{"name":"🔥🚀⭐","description":"emoji","type":"lifo","max_parallel_items":1}`,
	`{"name":"` + strings.Repeat("語", 255) + `","description":"x"}`,
	`{"name":"` + strings.Repeat("語", 256) + `","description":"x"}`,
	`{"name":"` + strings.Repeat("a", 256) + `","description":"x"}`,
	`{"name":"ab","description":" ","type":"Random","max_parallel_items":0,"max_retries":-1}`,
	`{"name":"  VIP ","description":"\t padded \n"}`,
	`{"name":" ab ","description":"x"}`,
	`{"name":"日本","description":"\t"}`,
	`{"name":"\u00a0\u00a0\u00a0","description":"x"}`,
	"{\"name\":\"abc\xff\xfe\",\"description\":\"x\"}",
	`{"name":"abc","description":"x","type":null,"max_parallel_items":null,"max_retries":null,"is_active":null}`,
	`{"name":"abc","description":"x","type":""}`,
	`{"name":"abc","description":"x","type":"FIFO "}`,
	`{"name":"abc","description":"x","type":"\u0046IFO"}`,
	`{"name":"abc","description":"x","max_parallel_items":101}`,
	`{"name":"abc","description":"x","max_parallel_items":-1}`,
	`{"name":"abc","description":"x","max_parallel_items":1e2}`,
	`{"name":"abc","description":"x","max_retries":9223372036854775807}`,
	`{"name":"abc","description":"x","max_retries":-9223372036854775808}`,
	`{"name":"abc","description":"x","max_retries":99999999999999999999}`,
	`{"name":"abc","description":"x","is_active":"true"}`,
	`{"name":"abc","name":"ab","description":"x"}`,
	`{"NAME":"abc","Description":"x","TYPE":"parallel"}`,
	`{"name":3,"description":"x"}`,
	`{"name":"abc","description":"x","type":7}`,
	`{}`, `null`, `[]`, `""`, `0`, `{`, ``,
}

var updateSeeds = []string{
	updateBody,
	`{}`,
	`{"name":"Cold leads"}`,
	`{"name":"VIP customers"}`,
	`{"name":"ab"}`,
	`{"name":"  VIP ","description":" padded\t"}`,
	`{"name":" ab "}`,
	`{"name":""}`,
	`{"name":null,"description":null,"type":null,"max_parallel_items":null,"max_retries":null,"is_active":null}`,
	`{"description":""}`,
	`{"description":"  "}`,
	`{"type":""}`,
	`{"type":"lifo"}`,
	`{"type":"PARALLEL"}`,
	`{"type":"Random"}`,
	`{"max_parallel_items":0}`,
	`{"max_parallel_items":100}`,
	`{"max_parallel_items":101}`,
	`{"max_retries":0}`,
	`{"max_retries":-1}`,
	`{"is_active":false}`,
	`{"name":"` + strings.Repeat("Ж", 255) + `","type":"fifo","max_retries":5}`,
	`{"name":"ab","description":"","type":"x","max_parallel_items":0,"max_retries":-1}`,
	"{\"name\":\"\xff\xff\xff\"}",
	`{"type":1}`, `null`, `[]`, `{`,
}

// requirePoolRules checks every rule a stored pool must satisfy.
func requirePoolRules(t *testing.T, p pool.Pool) {
	t.Helper()
	require.True(t, utf8.ValidString(p.Name), "name is valid UTF-8: %q", p.Name)
	n := utf8.RuneCountInString(p.Name)
	require.GreaterOrEqual(t, n, pool.MinNameLen, "name %q", p.Name)
	require.LessOrEqual(t, n, pool.MaxNameLen, "name %q", p.Name)
	require.NotEmpty(t, strings.TrimSpace(p.Name), "name is not blank")
	require.NotEmpty(t, strings.TrimSpace(p.Description), "description is not blank")
	require.True(t, p.Type.Valid(), "type %q is canonical", p.Type)
	require.GreaterOrEqual(t, p.MaxParallelItems, pool.MinParallelItems)
	require.LessOrEqual(t, p.MaxParallelItems, pool.MaxParallelItems)
	require.GreaterOrEqual(t, p.MaxRetries, 0)
	require.GreaterOrEqual(t, p.Ceiling(), 1, "the ceiling never wraps")
	require.True(t, utf8.ValidString(p.Description), "description is valid UTF-8")
	require.Equal(t, time.UTC, p.CreatedAt.Location())
	require.Equal(t, time.UTC, p.UpdatedAt.Location())
}

// requireValidationError checks that err is a well-formed validation
// failure of the pool's fields.
func requireValidationError(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, validate.ErrInvalid)
	var es validate.Errors
	require.ErrorAs(t, err, &es)
	require.NotEmpty(t, es)
	for _, e := range es {
		require.Contains(t, rulesOf[e.Field], e.Rule, "field %q rule %q", e.Field, e.Rule)
		require.NotEmpty(t, e.Message)
	}
}

func FuzzCreateParamsJSON(f *testing.F) {
	for _, s := range createSeeds {
		f.Add([]byte(s))
	}
	fuzzNow := time.Date(2024, 2, 29, 23, 59, 59, 999, time.FixedZone("X", -7*3600))

	f.Fuzz(func(t *testing.T, data []byte) {
		var p pool.CreateParams
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		verr := p.Validate()
		got, err := pool.New(poolID, p, fuzzNow)
		if verr != nil {
			require.Equal(t, verr, err, "New reports what Validate reports")
			requireValidationError(t, err)
			require.Equal(t, pool.Pool{}, got)
			return
		}
		require.NoError(t, err)
		requirePoolRules(t, got)

		// Exactly the given values (name and description trimmed of
		// surrounding white space), or the defaults.
		require.Equal(t, poolID, got.UUID)
		require.Equal(t, strings.TrimSpace(p.Name), got.Name)
		require.Equal(t, strings.TrimSpace(p.Description), got.Description)
		if p.Type == "" {
			require.Equal(t, pool.FIFO, got.Type)
		} else {
			require.True(t, strings.EqualFold(string(p.Type), string(got.Type)))
		}
		if p.MaxParallelItems == nil {
			require.Equal(t, pool.DefaultMaxParallelItems, got.MaxParallelItems)
		} else {
			require.Equal(t, *p.MaxParallelItems, got.MaxParallelItems)
		}
		if p.MaxRetries == nil {
			require.Equal(t, pool.DefaultMaxRetries, got.MaxRetries)
		} else {
			require.Equal(t, *p.MaxRetries, got.MaxRetries)
		}
		require.Equal(t, p.IsActive == nil || *p.IsActive, got.IsActive)
		require.True(t, got.CreatedAt.Equal(fuzzNow))

		// A pool's JSON is a create body that makes the same pool again.
		b, err := json.Marshal(got)
		require.NoError(t, err)
		var again pool.CreateParams
		require.NoError(t, json.Unmarshal(b, &again))
		twin, err := pool.New(poolID, again, fuzzNow)
		require.NoError(t, err, "re-creating from %s", b)
		require.Equal(t, got, twin)
	})
}

func FuzzUpdateParamsJSON(f *testing.F) {
	for _, s := range updateSeeds {
		f.Add([]byte(s))
	}
	base := defaultPool()
	base.Type, base.MaxParallelItems, base.MaxRetries, base.IsActive, base.ContactsCount = pool.Parallel, 42, 7, false, 5

	f.Fuzz(func(t *testing.T, data []byte) {
		var u pool.UpdateParams
		if err := json.Unmarshal(data, &u); err != nil {
			return
		}
		verr := u.Validate()
		got, changed, err := u.Apply(base)
		if verr != nil {
			require.Equal(t, verr, err, "Apply reports what Validate reports")
			requireValidationError(t, err)
			require.False(t, changed)
			require.Equal(t, base, got, "a rejected update returns the pool unchanged")
			return
		}
		require.NoError(t, err)
		requirePoolRules(t, got)
		require.Equal(t, !reflect.DeepEqual(base, got), changed)

		// Only the given fields change; a given name and description are
		// trimmed of surrounding white space.
		want := base
		if u.Name != nil {
			want.Name = strings.TrimSpace(*u.Name)
		}
		if u.Description != nil {
			want.Description = strings.TrimSpace(*u.Description)
		}
		if u.Type != nil {
			require.True(t, strings.EqualFold(string(*u.Type), string(got.Type)))
			want.Type = got.Type
		}
		if u.MaxParallelItems != nil {
			want.MaxParallelItems = *u.MaxParallelItems
		}
		if u.MaxRetries != nil {
			want.MaxRetries = *u.MaxRetries
		}
		if u.IsActive != nil {
			want.IsActive = *u.IsActive
		}
		require.Equal(t, want, got)

		// Applying the same update again changes nothing.
		again, changed, err := u.Apply(got)
		require.NoError(t, err)
		require.False(t, changed)
		require.Equal(t, got, again)
	})
}
