package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const testToken = "test-token-5f1c"

// testBundle is what a test of the handlers needs: the server over a fresh
// in-memory database, its engine (to arrange state and check it directly),
// the engine's clock, and what the server logged.
type testBundle struct {
	t     *testing.T
	eng   *queue.Engine
	srv   *server
	clock *clock
	logs  *logBuffer
}

// setup opens a fresh in-memory database, an engine over it on a clock the
// test moves, and the server with testToken.
func setup(t *testing.T) *testBundle {
	t.Helper()
	return setupOver(t, nil)
}

// setupOver is setup with the engine over wrap(the store), to make the
// store fail as a test needs; nil wrap is the store itself.
func setupOver(t *testing.T, wrap func(store.Store) store.Store) *testBundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	var over store.Store = st
	if wrap != nil {
		over = wrap(st)
	}
	c := &clock{now: time.Now().UTC().Truncate(time.Second)}
	eng, err := queue.New(over, queue.Options{Now: c.Now, LeaseTimeout: time.Minute, RetryDelay: time.Hour})
	require.NoError(t, err)
	t.Cleanup(func() { _ = eng.Close() })
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &testBundle{t: t, eng: eng, srv: newServer(eng, testToken, log), clock: c, logs: logs}
}

// logBuffer keeps what the server logs, for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lockTimeoutStore fails every write while armed as a store does whose
// write waited out its lock timeout (another node's transaction holds the
// pool): store.ErrLockTimeout, nothing written.
type lockTimeoutStore struct {
	store.Store
	armed atomic.Bool
}

func (s *lockTimeoutStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.armed.Load() {
		return fmt.Errorf("lock the pool: %w", store.ErrLockTimeout)
	}
	return s.Store.Write(ctx, fn)
}

// commitUnknownStore commits every write and, while armed, reports its
// outcome as unknown, as store/postgres does when the connection fails
// after COMMIT was sent: store.ErrCommitUnknown, the change written.
type commitUnknownStore struct {
	store.Store
	armed atomic.Bool
}

func (s *commitUnknownStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Write(ctx, fn)
	if err == nil && s.armed.Load() {
		return fmt.Errorf("commit: connection reset by peer: %w", store.ErrCommitUnknown)
	}
	return err
}

// clock is a settable time source for the engine.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// atNoon moves the engine's clock to noon UTC today: inside a rule's
// default calling window (09:00–18:00 in the contact's zone, UTC for a
// contact without one), whatever the hour the tests run at.
func (b *testBundle) atNoon() {
	y, m, d := b.clock.Now().Date()
	b.clock.Set(time.Date(y, m, d, 12, 0, 0, 0, time.UTC))
}

// response is a recorded response with its body decoded as an envelope.
type response struct {
	Status int
	Header http.Header
	Body   []byte
	Env    envelope
}

// envelope is the API's envelope, success or error; Data stays raw so that
// tests can decode it into poolq's own types or into a map.
type envelope struct {
	Success *bool           `json:"success"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
	Error   *struct {
		Code    string `json:"code"`
		Details string `json:"details"`
		Field   string `json:"field"`
	} `json:"error"`
}

// do sends a request with the test token. body is sent as it is when it is a
// string, marshalled otherwise; nil sends no body.
func (b *testBundle) do(method, path string, body any) response {
	b.t.Helper()
	return b.doAuth(method, path, body, "Bearer "+testToken)
}

// doAuth is do with the given Authorization header ("" for none).
func (b *testBundle) doAuth(method, path string, body any, auth string) response {
	b.t.Helper()
	var r io.Reader
	switch body := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(body)
	case []byte:
		r = bytes.NewReader(body)
	default:
		raw, err := json.Marshal(body)
		require.NoError(b.t, err)
		r = bytes.NewReader(raw)
	}
	req := httptest.NewRequest(method, path, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	b.srv.ServeHTTP(rec, req)
	return decodeResponse(b.t, rec.Code, rec.Header(), rec.Body.Bytes())
}

// decodeResponse checks the framing every response shares (a JSON envelope,
// or no body at all for a 204) and decodes it.
func decodeResponse(t *testing.T, status int, h http.Header, body []byte) response {
	t.Helper()
	res := response{Status: status, Header: h, Body: body}
	if status == http.StatusNoContent {
		require.Empty(t, body, "a 204 has no body")
		return res
	}
	require.Equal(t, "application/json; charset=utf-8", h.Get("Content-Type"), "body: %s", body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields() // the envelope holds these keys and no others
	require.NoError(t, dec.Decode(&res.Env), "envelope: %s", body)
	require.NotNil(t, res.Env.Success, "success is always present: %s", body)
	require.NotEmpty(t, res.Env.Message, "message is always present: %s", body)
	if status < 300 {
		require.True(t, *res.Env.Success, "body: %s", body)
		require.Nil(t, res.Env.Error, "body: %s", body)
		require.NotNil(t, res.Env.Data, "data is always present on success (null at least): %s", body)
	} else {
		require.False(t, *res.Env.Success, "body: %s", body)
		require.NotNil(t, res.Env.Error, "body: %s", body)
		require.NotEmpty(t, res.Env.Error.Code, "body: %s", body)
		require.NotEmpty(t, res.Env.Error.Details, "body: %s", body)
		require.Nil(t, res.Env.Data, "no data on an error: %s", body)
		require.Equal(t, status == http.StatusUnprocessableEntity, res.Env.Error.Field != "",
			"field is set on 422 only: %s", body)
	}
	return res
}

// requireError checks that res is an error with status and code.
func requireError(t *testing.T, res response, status int, code string) {
	t.Helper()
	require.Equal(t, status, res.Status, "body: %s", res.Body)
	require.Equal(t, code, res.Env.Error.Code, "body: %s", res.Body)
}

// requireInvalid checks a 422 whose first failing field is field and whose
// details name the fields field and all, and no other.
func requireInvalid(t *testing.T, res response, field string, all ...string) {
	t.Helper()
	requireError(t, res, http.StatusUnprocessableEntity, CodeValidation)
	require.Equal(t, field, res.Env.Error.Field, "body: %s", res.Body)
	require.ElementsMatch(t, slices.Compact(slices.Sorted(slices.Values(append([]string{field}, all...)))),
		failingFields(res.Env.Error.Details), "body: %s", res.Body)
}

// listed returns the element names list[from] … list[to-1], then list
// itself.
func listed(list string, from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("%s[%d]", list, i))
	}
	return append(out, list)
}

// failingFields returns the fields that details, "f1: message; f2:
// message", names, each once. A piece of a message after "; " names no
// field: it has no ": ", or a space before it.
func failingFields(details string) []string {
	var out []string
	for _, piece := range strings.Split(details, "; ") {
		f, _, ok := strings.Cut(piece, ": ")
		if ok && !strings.Contains(f, " ") && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

// data decodes the data of a success response into v.
func data[T any](t *testing.T, res response) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(res.Env.Data, &v), "data: %s", res.Env.Data)
	return v
}

// dataMap decodes the data of a response as a JSON object.
func dataMap(t *testing.T, res response) map[string]any {
	t.Helper()
	return data[map[string]any](t, res)
}

// createPool creates a pool through the API and returns it.
func (b *testBundle) createPool(name string, typ pool.Type, maxParallel int) pool.Pool {
	b.t.Helper()
	res := b.do("POST", "/api/v1/pools", map[string]any{
		"name": name, "description": "for " + name, "type": typ, "max_parallel_items": maxParallel,
	})
	require.Equal(b.t, http.StatusCreated, res.Status, "body: %s", res.Body)
	return data[pool.Pool](b.t, res)
}

// addContacts adds n new contacts to a pool through the API and returns
// them, in order.
func (b *testBundle) addContacts(poolID uuid.UUID, n, priority int) []uuid.UUID {
	b.t.Helper()
	cs := make([]uuid.UUID, n)
	for i := range cs {
		cs[i] = uuid.New()
	}
	res := b.do("POST", "/api/v1/pools/"+poolID.String()+"/contacts", map[string]any{
		"contact_uuids": cs, "priority": priority,
	})
	require.Equal(b.t, http.StatusOK, res.Status, "body: %s", res.Body)
	require.Equal(b.t, pool.AddResult{ContactsAdded: n}, data[pool.AddResult](b.t, res))
	return cs
}

// snapshot is everything the API can show: every pool's detail and every
// item, read through the engine.
type snapshot struct {
	Pools       []pool.Detail
	Items       map[uuid.UUID][]pool.Item
	Rules       []campaign.Rule
	Campaigns   []campaign.Campaign
	DNC         []campaign.DNCEntry
	Escalations []campaign.Escalation
}

// snapshot reads the whole database, to compare before and after a request
// that must write nothing.
func (b *testBundle) snapshot() snapshot {
	b.t.Helper()
	ctx := context.Background()
	s := snapshot{Items: map[uuid.UUID][]pool.Item{}}
	pg, err := b.eng.Pools(ctx, pool.PoolQuery{PerPage: pool.MaxPerPage})
	require.NoError(b.t, err)
	require.Less(b.t, pg.Total, pool.MaxPerPage, "snapshot reads one page")
	for _, p := range pg.Data {
		d, err := b.eng.Pool(ctx, p.UUID)
		require.NoError(b.t, err)
		s.Pools = append(s.Pools, d)
		ip, err := b.eng.Items(ctx, p.UUID, pool.ItemQuery{PerPage: pool.MaxPerPage})
		require.NoError(b.t, err)
		require.Less(b.t, ip.Total, pool.MaxPerPage, "snapshot reads one page")
		s.Items[p.UUID] = ip.Data
	}
	rp, err := b.eng.Rules(ctx, campaign.RuleQuery{PerPage: pool.MaxPerPage})
	require.NoError(b.t, err)
	require.Less(b.t, rp.Total, pool.MaxPerPage, "snapshot reads one page")
	s.Rules = rp.Data
	cp, err := b.eng.Campaigns(ctx, campaign.Query{PerPage: pool.MaxPerPage})
	require.NoError(b.t, err)
	require.Less(b.t, cp.Total, pool.MaxPerPage, "snapshot reads one page")
	s.Campaigns = cp.Data
	dp, err := b.eng.DNC(ctx, campaign.DNCQuery{PerPage: pool.MaxPerPage})
	require.NoError(b.t, err)
	require.Less(b.t, dp.Total, pool.MaxPerPage, "snapshot reads one page")
	s.DNC = dp.Data
	s.Escalations, err = b.eng.Escalations(ctx, campaign.EscalationQuery{})
	require.NoError(b.t, err)
	require.Less(b.t, len(s.Escalations), pool.MaxPerPage, "snapshot reads one page")
	return s
}

// unchanged runs fn and checks that the database is the same after it.
func (b *testBundle) unchanged(fn func()) {
	b.t.Helper()
	before := b.snapshot()
	fn()
	require.Equal(b.t, before, b.snapshot(), "a failed request wrote something")
}
