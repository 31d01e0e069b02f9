package pgtest

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres"
)

// Schemas hands the checks of a property test schemas that are already
// migrated, emptied between checks instead of made anew, and the stores
// of the check before, still connected: a check of a state machine opens
// stores many times over (a hundred checks at rapid's default), and the
// server's work for a new store is most of a small check's. Making and
// dropping a schema costs several times what emptying one does, and a
// store's first statements on a new connection about 30 ms of the
// server's CPU (they read the catalog and plan every statement again); a
// hundred checks of three nodes each paid that 600 times over, and the
// property tests on PostgreSQL used about 40 % of CI's test time. Every
// store it opened is closed, and every schema it made dropped, when the
// test that made the Schemas ends.
//
// A store kept for the next check keeps what it learned in the check
// before (its guesses of pools' types and caps, the pools it found held
// past the lock timeout): about pools that are gone, whose ids are never
// given again, as a long-running node's are.
//
// Its methods are safe for concurrent use.
type Schemas struct {
	url    string
	mu     sync.Mutex
	free   []*reused
	made   int                 // schemas made (see take)
	tables map[string][]string // schema → the tables release empties, read once

	adminMu sync.Mutex
	admin   *pgx.Conn // empty's connection, or nil
}

// reused is a schema between checks, and the stores of the check that
// used it last, still open (none after [Schemas.Schema]).
type reused struct {
	schema string
	opts   postgres.Options // the stores' options, as given to Nodes
	stores []*postgres.Store
}

// NewSchemas returns a source of reusable schemas on url for t's checks.
func NewSchemas(t TB, url string) *Schemas {
	t.Helper()
	s := &Schemas{url: url, tables: map[string][]string{}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, r := range s.free {
			r.close()
			Drop(t, url, r.schema)
		}
		s.free = nil
		s.adminMu.Lock()
		defer s.adminMu.Unlock()
		if s.admin != nil {
			_ = s.admin.Close(context.Background())
			s.admin = nil
		}
	})
	return s
}

// Open is Nodes with one store.
func (s *Schemas) Open(ct TB, opts postgres.Options) *postgres.Store {
	ct.Helper()
	return s.Nodes(ct, opts, 1)[0]
}

// Nodes returns n stores on one schema that no other check is using, as n
// nodes would open it (opts.Schema is replaced, and each store gets opts
// as [OpenSchema] does), the schema holding no pool, item, campaign, rule
// or list entry: a new schema the first time, an emptied one after. When
// ct (the check) ends, the schema is emptied, the stores still open, and
// both are kept for the next check: one that asks for as many stores with
// the same options gets these again; one that asks for others gets the
// schema with new stores, these closed. Close none of them: they outlive
// the check.
func (s *Schemas) Nodes(ct TB, opts postgres.Options, n int) []*postgres.Store {
	ct.Helper()
	r := s.take(opts, n)
	ct.Cleanup(func() { s.release(ct, r) })
	if len(r.stores) == n && reflect.DeepEqual(r.opts, opts) {
		return r.stores
	}
	r.close()
	r.opts = opts
	opts.Schema = r.schema
	for range n {
		st, err := openSchema(s.url, opts)
		if err != nil {
			ct.Fatalf("pgtest: open store in schema %s: %v", r.schema, err)
			return nil
		}
		r.stores = append(r.stores, st)
	}
	return r.stores
}

// Schema returns a migrated schema that no other check is using, holding
// no pool, item, campaign, rule or list entry, for a check that opens its
// stores itself; when ct ends, close them before the schema is emptied
// (register their Close with ct after calling Schema).
func (s *Schemas) Schema(ct TB) string {
	ct.Helper()
	r := s.take(postgres.Options{}, 0)
	ct.Cleanup(func() { s.release(ct, r) })
	r.close()
	r.opts = postgres.Options{}
	if s.migrated(r.schema) {
		return r.schema
	}
	st, err := openSchema(s.url, postgres.Options{Schema: r.schema, MaxConns: 1})
	if err != nil {
		ct.Fatalf("pgtest: open store in schema %s: %v", r.schema, err)
		return ""
	}
	_ = st.Close()
	return r.schema
}

// kept is how many schemas a Schemas makes before it gives a check one
// whose stores have other options: a test that draws its stores' options
// from a few (a lease grace of 2 s or 30 s, say) finds stores for each.
const kept = 4

// take returns a free schema: one with n stores of options opts if there
// is one, else a new one (not made yet) while fewer than kept were made,
// else another free one.
func (s *Schemas) take(opts postgres.Options, n int) *reused {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, r := range s.free {
		if len(r.stores) == n && reflect.DeepEqual(r.opts, opts) {
			s.free = append(s.free[:i], s.free[i+1:]...)
			return r
		}
	}
	if s.made < kept {
		s.made++
		return &reused{schema: newSchemaName()}
	}
	if k := len(s.free); k > 0 {
		r := s.free[k-1]
		s.free = s.free[:k-1]
		return r
	}
	return &reused{schema: newSchemaName()}
}

// migrated reports whether schema was emptied before: it exists, migrated.
func (s *Schemas) migrated(schema string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tables[schema] != nil
}

// release empties r's schema and keeps it, with its stores, for the next
// check; or closes them and drops it when it cannot be emptied.
func (s *Schemas) release(t TB, r *reused) {
	s.mu.Lock()
	tables := s.tables[r.schema]
	s.mu.Unlock()
	tables, err := s.empty(r.schema, tables)
	if err != nil || tables == nil {
		r.close()
		Drop(t, s.url, r.schema)
		return
	}
	s.mu.Lock()
	s.tables[r.schema] = tables
	s.free = append(s.free, r)
	s.mu.Unlock()
}

// close closes r's stores.
func (r *reused) close() {
	for _, st := range r.stores {
		_ = st.Close()
	}
	r.stores = nil
}

// empty deletes the rows of every table of schema but the two a store
// needs from its first Open on: schema_version (the migrations applied)
// and settings (what every node must agree on). Campaigns go first, as
// rules may not go while one refers to them; a table that a later
// migration makes refer to another may fail the delete, and the caller
// drops the schema. (DELETE, not TRUNCATE: a check's tables hold a few
// rows, and TRUNCATE makes new files for every table and index.)
//
// tables are the schema's tables when an earlier call returned them (a
// check's schema keeps its tables), or nil: then they are read from the
// catalog, once per schema. Not every time: a test server without
// autovacuum (the project's machines) fills pg_class with the dead rows
// of every schema the tests dropped, and pg_tables, a scan of it, took
// 0.27 s after one CI run; see .ci/run.
//
// It runs on one connection the Schemas keeps, rather than a new one
// each time: a new connection costs the server some milliseconds of CPU
// (see Schemas).
func (s *Schemas) empty(schema string, tables []string) ([]string, error) {
	s.adminMu.Lock()
	defer s.adminMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.admin == nil {
		conn, err := pgx.Connect(ctx, s.url)
		if err != nil {
			return nil, err
		}
		s.admin = conn
	}
	tables, err := emptyOn(ctx, s.admin, schema, tables)
	if err != nil {
		_ = s.admin.Close(ctx)
		s.admin = nil
	}
	return tables, err
}

// emptyOn is empty on conn.
func emptyOn(ctx context.Context, conn *pgx.Conn, schema string, tables []string) ([]string, error) {
	if tables == nil {
		rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables
			WHERE schemaname = $1 AND tablename NOT IN ('schema_version', 'settings')
			ORDER BY tablename <> 'campaigns', tablename`, schema)
		if err != nil {
			return nil, err
		}
		if tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
		if len(tables) == 0 {
			return nil, nil // Open failed before it migrated: nothing to empty, and read again next time
		}
	}
	var sql strings.Builder
	for _, table := range tables {
		sql.WriteString("DELETE FROM " + pgx.Identifier{schema, table}.Sanitize() + ";")
	}
	_, err := conn.Exec(ctx, sql.String(), pgx.QueryExecModeSimpleProtocol)
	return tables, err
}
