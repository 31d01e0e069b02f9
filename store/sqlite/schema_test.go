package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// pragmas reads the settings of one connection.
func pragmas(t *testing.T, conn *sql.Conn) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"journal_mode", "foreign_keys", "synchronous", "fullfsync", "checkpoint_fullfsync", "busy_timeout", "query_only", "temp_store"} {
		var v string
		require.NoError(t, conn.QueryRowContext(context.Background(), "PRAGMA "+name).Scan(&v), name)
		out[name] = v
	}
	return out
}

// allConns returns n connections of db held at once, so that each is a
// different one, released when t ends.
func allConns(t *testing.T, db *sql.DB, n int) []*sql.Conn {
	t.Helper()
	out := make([]*sql.Conn, n)
	for i := range out {
		c, err := db.Conn(context.Background())
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		out[i] = c
	}
	return out
}

func TestOpen_Pragmas(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	for _, tc := range []struct {
		opts        sqlite.Options
		synchronous string
		fullfsync   string // macOS's F_FULLFSYNC for Full; other systems ignore it
		busy        string
	}{
		{sqlite.Options{}, "1", "0", "5000"},
		{sqlite.Options{Durability: sqlite.Normal, BusyTimeout: 1500 * time.Millisecond}, "1", "0", "1500"},
		{sqlite.Options{Durability: sqlite.Full}, "2", "1", "5000"},
		{sqlite.Options{BusyTimeout: sqlite.MinBusyTimeout}, "1", "0", "1"},
	} {
		st, _ := MustOpenFile(t, tc.opts)
		w, r := sqlite.DBs(st)
		require.NotSame(t, w, r)
		want := map[string]string{
			"journal_mode":         "wal",
			"foreign_keys":         "1",
			"synchronous":          tc.synchronous,
			"fullfsync":            tc.fullfsync,
			"checkpoint_fullfsync": tc.fullfsync,
			"busy_timeout":         tc.busy,
			"query_only":           "0",
			"temp_store":           "2",
		}
		require.Equal(t, 1, w.Stats().MaxOpenConnections, "one writer")
		want["busy_timeout"] = "0" // Write waits for the file's lock itself (beginImmediate)
		require.Equal(t, want, pragmas(t, sqlite.WriterConn(st)), "writer, %v", tc.opts.Durability)
		want["query_only"], want["busy_timeout"] = "1", tc.busy
		readers := r.Stats().MaxOpenConnections
		require.Greater(t, readers, 1, "a pool of readers")
		for i, c := range allConns(t, r, readers) {
			require.Equal(t, want, pragmas(t, c), "reader %d, %v", i, tc.opts.Durability)
		}
	}

	st := MustOpen(t)
	w, r := sqlite.DBs(st)
	require.Nil(t, r, ":memory: has one connection for all")
	require.Equal(t, 1, w.Stats().MaxOpenConnections)
	require.Equal(t, 1, w.Stats().InUse, "held by the Store")
	got := pragmas(t, sqlite.WriterConn(st))
	require.Equal(t, "memory", got["journal_mode"])
	require.Equal(t, "1", got["foreign_keys"])
	require.Equal(t, "0", got["query_only"])
}

// rawRow is the columns of a row inserted with raw SQL.
type rawRow map[string]any

func (r rawRow) with(col string, v any) rawRow {
	out := rawRow{}
	for k, x := range r {
		out[k] = x
	}
	out[col] = v
	return out
}

// execer is a *sql.DB or a *sql.Conn.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func rawInsert(db execer, table string, row rawRow) error {
	cols := make([]string, 0, len(row))
	marks := make([]string, 0, len(row))
	args := make([]any, 0, len(row))
	for c, v := range row {
		cols = append(cols, c)
		marks = append(marks, "?")
		args = append(args, v)
	}
	_, err := db.ExecContext(context.Background(), `INSERT INTO `+table+` (`+strings.Join(cols, ", ")+`) VALUES (`+strings.Join(marks, ", ")+`)`, args...)
	return err
}

// requireCode requires err to be an SQLite error with result code code.
func requireCode(t *testing.T, code int, err error, msg string) {
	t.Helper()
	var se *msqlite.Error
	require.True(t, errors.As(err, &se), "%s: %v is not a driver error", msg, err)
	require.Equal(t, code, se.Code(), "%s: %v", msg, err)
}

func TestSchema_Checks(t *testing.T) {
	t.Parallel()
	st := MustOpen(t)
	db := sqlite.WriterConn(st) // the database's only connection

	id := uuid.New()
	goodPool := rawRow{
		"uuid": id[:], "name": "abc", "description": "d", "type": "FIFO", "max_parallel_items": 1,
		"max_retries": 0, "is_active": 1, "created_at": 0, "updated_at": 0, "search": "",
	}
	newUUID := func() []byte { u := uuid.New(); return u[:] }
	require.NoError(t, rawInsert(db, "pools", goodPool))
	for name, row := range map[string]rawRow{
		"Name3Runes":          goodPool.with("name", "日本語"),
		"Name255Runes":        goodPool.with("name", strings.Repeat("é", 255)),
		"MaxParallelItems100": goodPool.with("max_parallel_items", 100),
		"Type LIFO":           goodPool.with("type", "LIFO"),
		"TypeParallel":        goodPool.with("type", "Parallel"),
		"MaxRetriesLarge":     goodPool.with("max_retries", int64(1<<40)),
	} {
		require.NoError(t, rawInsert(db, "pools", row.with("uuid", newUUID())), name)
	}
	for name, row := range map[string]rawRow{
		"Name2Chars":          goodPool.with("name", "ab"),
		"Name2Runes6Bytes":    goodPool.with("name", "日本"),
		"Name256Runes":        goodPool.with("name", strings.Repeat("é", 256)),
		"BlankDescription":    goodPool.with("description", " \t\n"),
		"TypeLowercase":       goodPool.with("type", "fifo"),
		"TypeUnknown":         goodPool.with("type", "Random"),
		"MaxParallelItems0":   goodPool.with("max_parallel_items", 0),
		"MaxParallelItems101": goodPool.with("max_parallel_items", 101),
		"MaxRetriesNegative":  goodPool.with("max_retries", -1),
		"IsActive2":           goodPool.with("is_active", 2),
		"UUID15Bytes":         goodPool.with("uuid", make([]byte, 15)),
	} {
		requireCode(t, sqlite3.SQLITE_CONSTRAINT_CHECK, rawInsert(db, "pools", row.with("uuid", pick(row, newUUID()))), name)
	}
	requireCode(t, sqlite3.SQLITE_CONSTRAINT_DATATYPE,
		rawInsert(db, "pools", goodPool.with("uuid", newUUID()).with("max_retries", "three")), "StrictInteger")
	requireCode(t, sqlite3.SQLITE_CONSTRAINT_DATATYPE,
		rawInsert(db, "pools", goodPool.with("uuid", uuid.NewString())), "StrictBlob")

	var poolKey int64
	require.NoError(t, db.QueryRowContext(context.Background(), `SELECT id FROM pools WHERE uuid = ?`, id[:]).Scan(&poolKey))
	goodItem := rawRow{
		"pool_id": poolKey, "contact_uuid": newUUID(), "status": "Pending", "priority": 0, "attempts": 0,
		"retry_count": 0, "notes": "", "added_at": 0, "token": 0, "ready": 1,
	}
	for name, row := range map[string]rawRow{
		"Baseline":         goodItem,
		"RetryingNotReady": goodItem.with("status", "Retrying").with("ready", 0),
		"RetryingReady":    goodItem.with("status", "Scheduled").with("ready", 1),
		"InCall":           goodItem.with("status", "In_Call").with("ready", 0),
		"Payload":          goodItem.with("payload", `{"a": [1, null]}`),
		"PayloadNull":      goodItem.with("payload", nil),
	} {
		require.NoError(t, rawInsert(db, "items", row.with("contact_uuid", newUUID())), name)
	}
	for name, row := range map[string]rawRow{
		"StatusWithSpace":    goodItem.with("status", "In Call").with("ready", 0),
		"StatusLowercase":    goodItem.with("status", "pending"),
		"AttemptsNegative":   goodItem.with("attempts", -1),
		"RetryCountNegative": goodItem.with("retry_count", -1),
		"PendingNotReady":    goodItem.with("ready", 0),
		"CompletedReady":     goodItem.with("status", "Completed"),
		"ProcessingReady":    goodItem.with("status", "Processing"),
		"Ready2":             goodItem.with("status", "Retrying").with("ready", 2),
		"TokenNegative":      goodItem.with("token", -1),
	} {
		requireCode(t, sqlite3.SQLITE_CONSTRAINT_CHECK, rawInsert(db, "items", row.with("contact_uuid", pick(row, newUUID()))), name)
	}
	// Not checked by the schema since migration 0003, which says why: a
	// payload that is not JSON (the store checks it in Go, see
	// TestInsertItems_PayloadNotJSON) and a contact that is not 16 bytes
	// (a uuid.UUID always is).
	for name, row := range map[string]rawRow{
		"PayloadNotJSON": goodItem.with("payload", `{"a":`),
		"Contact17Bytes": goodItem.with("contact_uuid", make([]byte, 17)),
	} {
		require.NoError(t, rawInsert(db, "items", row.with("contact_uuid", pick(row, newUUID()))), name)
	}
	// The foreign key is deferred to COMMIT: a statement outside a
	// transaction commits at its end, and fails there.
	requireCode(t, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY,
		rawInsert(db, "items", goodItem.with("contact_uuid", newUUID()).with("pool_id", poolKey+1000)), "UnknownPool")
	dup := newUUID()
	require.NoError(t, rawInsert(db, "items", goodItem.with("contact_uuid", dup)))
	requireCode(t, sqlite3.SQLITE_CONSTRAINT_UNIQUE, rawInsert(db, "items", goodItem.with("contact_uuid", dup)), "SameContact")
}

// pick keeps a deliberately bad uuid column of row, else returns fresh.
func pick(row rawRow, fresh []byte) any {
	for _, col := range []string{"uuid", "contact_uuid"} {
		if b, ok := row[col].([]byte); ok && len(b) != 16 {
			return b
		}
	}
	return fresh
}

// TestSchema_QueryPlans checks that the dispatch queries, and Remove's, are
// index seeks: no scan of items, no sort.
func TestSchema_QueryPlans(t *testing.T) {
	t.Parallel()
	st, _ := MustOpenFile(t, sqlite.Options{})
	insertPool(t, st, 100)
	checkPlans(t, sqlite.WriterConn(st), planCases, false)
}

// planCase is a statement of TestSchema_QueryPlans, its arguments (pool 1
// is the first pool stored) and the indexes its plan searches, in order.
type planCase struct {
	name    string
	query   string
	args    []any
	indexes []string
}

// planCases are the statements of dispatch and settlement, and Remove's.
var planCases = []planCase{
	{"Promote", sqlite.PromoteSQL, []any{1, 2}, []string{"items_retry"}},
	{"Demote", sqlite.DemoteSQL, []any{1, 2}, []string{"INTEGER PRIMARY KEY", "items_ready"}},
	{"DueFIFO", sqlite.DueFIFOSQL, []any{1, 2, 3}, []string{"items_ready"}},
	{"DueLIFO", sqlite.DueLIFOSQL, []any{1, 2, 3}, []string{"items_ready"}},
	{"DueParallel", sqlite.DueParallelSQL, []any{1, 2, 3}, []string{"items_ready_priority"}},
	{"Expired", sqlite.ExpiredSQL, []any{1, 2, 3}, []string{"items_lease"}},
	{"NextWake", sqlite.NextWakeSQL, []any{1}, []string{"items_retry", "items_lease"}},
	{"PoolWakes", sqlite.PoolWakesSQL, []any{`["30313233343536373839616263646566"]`},
		[]string{"sqlite_autoindex_pools_1", "items_ready", "items_retry", "items_lease", "PRIMARY KEY"}},
	{"InFlight", sqlite.InFlightSQL, []any{1}, []string{"PRIMARY KEY"}},
	// Every claim's, failure's and expiry's: what governs the pool,
	// not every campaign it was ever attached to.
	{"PoolGovernors", sqlite.PoolGovernorsSQL, []any{1}, []string{"campaign_pools_governs", "INTEGER PRIMARY KEY", "INTEGER PRIMARY KEY"}},
	{"PoolAttached", sqlite.PoolAttachedSQL, []any{1}, []string{"campaign_pools_pool"}},
	{"Items", sqlite.ItemsSQL, []any{1, 0, 2, 3}, []string{"items_pool"}},
	{"ItemsByStatus", sqlite.ItemsStatusSQL, []any{1, "Pending", 0, 2, 3}, []string{"items_pool_status"}},
	{"Item", sqlite.ItemSQL, []any{1, []byte("0123456789abcdef")}, []string{"sqlite_autoindex_items_1"}},
	{"PoolState", sqlite.PoolStateSQL, []any{[]byte("0123456789abcdef")},
		[]string{"sqlite_autoindex_pools_1", "PRIMARY KEY", "PRIMARY KEY", "items_lease", "items_retry"}},
	{"UpdateItem", sqlite.UpdateItemSQL, make([]any, 22), []string{"INTEGER PRIMARY KEY"}},
	{"UpdateItems", sqlite.UpdateItemsSQL, make([]any, 44), []string{"INTEGER PRIMARY KEY"}},
	{"OnDNC", sqlite.OnDNCSQL, []any{`["30313233343536373839616263646566"]`}, []string{"PRIMARY KEY"}},
	{"EscalationsOfPool", sqlite.EscalationsOfPoolSQL, []any{[]byte("0123456789abcdef"), 0, 10}, []string{"escalations_pool"}},
	// Remove's, under the write lock for up to 10,000 contacts: a
	// seek per contact or item.
	{"ItemsOfContacts", sqlite.ItemsOfContactsSQL, []any{1, `["30313233343536373839616263646566"]`},
		[]string{"sqlite_autoindex_items_1"}},
	{"KeepCalls", sqlite.KeepCallsSQL, []any{[]byte("0123456789abcdef"), `["30313233343536373839616263646566"]`, "Completed", "Archived"},
		[]string{"sqlite_autoindex_pools_1", "campaign_pools_pool", "INTEGER PRIMARY KEY", "sqlite_autoindex_items_1"}},
	{"DeleteItems", sqlite.DeleteItemsSQL, []any{`[1, 2]`, 1}, []string{"INTEGER PRIMARY KEY"}},
	// A campaign's completion's: its own kept calls, not all of them.
	{"DropFinishedKeptCalls", sqlite.DropFinishedKeptSQL, []any{[]byte("0123456789abcdef")},
		[]string{"kept_calls_contact", "sqlite_autoindex_campaigns_1"}},
	// A governed claim's: a seek per contact in each other pool, and
	// per kept call, a seek of its item by primary key.
	{"CampaignItems", sqlite.CampaignItemsSQL, []any{[]byte("0123456789abcdef"), []byte("0123456789abcdef"), `["30313233343536373839616263646566"]`},
		[]string{"sqlite_autoindex_campaigns_1", "campaign_pools_seq", "INTEGER PRIMARY KEY", "sqlite_autoindex_items_1",
			"sqlite_autoindex_campaigns_1", "kept_calls_contact", "INTEGER PRIMARY KEY"}},
}

// analyzedPlans are the indexes of the planCases whose join order differs
// once the file has statistics: the same seeks.
var analyzedPlans = map[string][]string{
	// The item of each contact first, then the pool's campaigns.
	"KeepCalls": {"sqlite_autoindex_pools_1", "sqlite_autoindex_items_1", "campaign_pools_pool", "INTEGER PRIMARY KEY"},
}

// checkPlans checks the plan of each of cases on conn: index seeks on
// the indexes named (analyzed: the file has statistics), no scan of
// items, pools, campaigns, their attachments or kept calls, no sort.
func checkPlans(t *testing.T, conn *sql.Conn, cases []planCase, analyzed bool) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			plan := queryPlan(t, conn, tc.query, tc.args...)

			var used []string
			for _, line := range plan {
				require.NotRegexp(t, `^SCAN (items|i|pools|p|campaigns|c|k|campaign_pools|cp|kept_calls)\b`, line, "%s: %q", tc.name, plan)
				require.NotContains(t, line, "TEMP B-TREE", "%s: %q", tc.name, plan)
				for _, marker := range []string{"USING INDEX ", "USING COVERING INDEX ", "USING "} {
					if _, rest, ok := strings.Cut(line, marker); ok && strings.HasPrefix(line, "SEARCH") {
						name, _, _ := strings.Cut(rest, " (")
						used = append(used, name)
						break
					}
				}
			}
			want := tc.indexes
			if a, ok := analyzedPlans[tc.name]; ok && analyzed {
				want = a
			}
			require.Equal(t, want, used, "%s: %q", tc.name, plan)
		})
	}
}

// queryPlan returns the details of the plan of query on conn.
func queryPlan(t *testing.T, conn *sql.Conn, query string, args ...any) []string {
	t.Helper()
	rows, err := conn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+query, args...)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	return plan
}

// TestSchema_ContactItemsPlan: a contact's items are one seek per pool in
// UNIQUE (pool_id, contact_uuid), pools walked in key order (no sort, no
// scan of items): there is no index on contacts alone (see 0006).
func TestSchema_ContactItemsPlan(t *testing.T) {
	t.Parallel()
	st, _ := MustOpenFile(t, sqlite.Options{})
	plan := queryPlan(t, sqlite.WriterConn(st), sqlite.ContactItemsSQL, []byte("0123456789abcdef"))
	require.Equal(t, []string{
		"SCAN p",
		"SEARCH i USING INDEX sqlite_autoindex_items_1 (pool_id=? AND contact_uuid=?)",
	}, plan)
}

// TestSchema_ReadyFlag follows the internal due set: ready is 1 for a
// Pending item, 0 for a Retrying or Scheduled one until Due promotes it at
// its time, 0 for any other status.
func TestSchema_ReadyFlag(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := MustOpen(t)
	p := insertPool(t, st, 1)
	db := sqlite.WriterConn(st) // the database's only connection, used between Writes
	var it pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		items, _, err := tx.Items(ctx, p.UUID, pool.ItemQuery{Page: 1, PerPage: 1})
		it = items[0]
		return err
	}))
	ready := func() int {
		var r int
		require.NoError(t, db.QueryRowContext(ctx, `SELECT ready FROM items WHERE id = ?`, it.ID).Scan(&r))
		return r
	}
	update := func(mod func(*pool.Item)) {
		from := it.Status
		mod(&it)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.UpdateItem(ctx, from, it) }))
	}
	due := func(now time.Time) {
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.Due(ctx, p.UUID, pool.FIFO, now, 10)
			return err
		}))
	}
	retryAt := testT0.Add(time.Hour)

	require.Equal(t, 1, ready(), "Pending")
	for _, s := range []pool.Status{pool.StatusRetrying, pool.StatusScheduled} {
		update(func(it *pool.Item) { it.Status = s; it.NextRetryAt = &retryAt })
		require.Equal(t, 0, ready(), "%s", s)
		due(retryAt.Add(-1))
		require.Equal(t, 0, ready(), "%s before its time", s)
		due(retryAt)
		require.Equal(t, 1, ready(), "%s promoted", s)
		update(func(it *pool.Item) { it.Priority++ })
		require.Equal(t, 0, ready(), "%s updated: promoted again by the next Due", s)
	}
	for _, s := range []pool.Status{pool.StatusProcessing, pool.StatusInCall, pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped} {
		update(func(it *pool.Item) { it.Status = s; it.NextRetryAt = &retryAt })
		due(retryAt.Add(time.Hour))
		require.Equal(t, 0, ready(), "%s", s)
	}
	update(func(it *pool.Item) { it.Status = pool.StatusPending; it.NextRetryAt = nil })
	require.Equal(t, 1, ready(), "Pending again")
}

// TestSchema_CheapConstraints guards migration 0003. It compiles every
// statement that writes items, pools or counts, on the writer's own
// connection (the one that migrated the file) and on a fresh one, and fails
// if a constraint it checks is an IN list of three or more values: SQLite
// evaluates one by building a temporary B-tree of the list, once for every
// row written (the check on items.status was a sixth of the cost of a
// dispatch). It also fails if the items table gets back a CHECK calling a
// function or an immediate foreign key, either of which makes SQLite keep a
// statement journal for every batched INSERT (a seventh of a bulk add).
func TestSchema_CheapConstraints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, sqlite.Options{})
	fresh, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	defer fresh.Close()
	writes := map[string]string{
		"InsertItems":    sqlite.InsertItemsSQL,
		"InsertNewItems": sqlite.InsertNewItemsSQL,
		"UpdateItem":     sqlite.UpdateItemSQL,
		"UpdateItems":    sqlite.UpdateItemsSQL,
		"InsertPool":     sqlite.InsertPoolSQL,
		"UpdatePool":     sqlite.UpdatePoolSQL,
		"InsertCounts":   `INSERT INTO pool_counts (pool_id, status, n) VALUES (1, 'Failed', 0)`,
	}
	inList := regexp.MustCompile(`IN \('[^']*', '[^']*', '`)
	conns := map[string]interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	}{"writer": sqlite.WriterConn(st), "fresh": fresh}
	for cname, conn := range conns {
		for name, query := range writes {
			rows, err := conn.QueryContext(ctx, "EXPLAIN "+query, make([]any, strings.Count(query, "?"))...)
			require.NoError(t, err, "%s on %s", name, cname)
			var checks []string
			for rows.Next() {
				var addr, p1, p2, p3, p5 int64
				var opcode, p4, comment sql.NullString
				require.NoError(t, rows.Scan(&addr, &opcode, &p1, &p2, &p3, &p4, &p5, &comment))
				if opcode.String == "Halt" && p1 != 0 { // an error code: a constraint
					checks = append(checks, p4.String)
				}
			}
			require.NoError(t, rows.Err())
			require.NotEmpty(t, checks, "%s on %s: no constraint found, the test reads EXPLAIN wrong", name, cname)
			for _, c := range checks {
				assert.NotRegexp(t, inList, c, "%s on %s", name, cname)
			}
		}
	}
	var items string
	require.NoError(t, fresh.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = 'items'`).Scan(&items))
	require.Contains(t, items, "REFERENCES pools (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED")
	require.NotRegexp(t, `CHECK \([^)]*\w\(`, items, "a CHECK calling a function")
}
