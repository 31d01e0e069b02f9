package pgtest

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres"
)

// Schemas hands the checks of a property test schemas that are already
// migrated, emptied between checks instead of made anew: a check of a
// state machine opens a store many times over (a hundred checks at
// rapid's default), and making and dropping a schema costs several times
// what emptying one does. Every schema it made is dropped when the test
// that made the Schemas ends.
//
// Its methods are safe for concurrent use.
type Schemas struct {
	url    string
	mu     sync.Mutex
	free   []string
	tables map[string][]string // schema → the tables release empties, read once
}

// NewSchemas returns a source of reusable schemas on url for t's checks.
func NewSchemas(t TB, url string) *Schemas {
	t.Helper()
	s := &Schemas{url: url, tables: map[string][]string{}}
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, schema := range s.free {
			Drop(t, url, schema)
		}
		s.free = nil
	})
	return s
}

// Open opens a store in a schema that no other check is using (opts.Schema
// is replaced), holding no pool, item, campaign, rule or list entry: a new
// schema the first time, an emptied one after. When ct (the check) ends,
// the store is closed and the schema emptied and kept for the next check.
// Open more stores on the same schema with [OpenSchema] and ct, as another
// node would: they close before the schema is emptied.
func (s *Schemas) Open(ct TB, opts postgres.Options) *postgres.Store {
	ct.Helper()
	s.mu.Lock()
	var schema string
	if n := len(s.free); n > 0 {
		schema, s.free = s.free[n-1], s.free[:n-1]
	}
	s.mu.Unlock()
	if schema == "" {
		schema = newSchemaName()
	}
	ct.Cleanup(func() { s.release(ct, schema) })
	opts.Schema = schema
	return OpenSchema(ct, s.url, opts)
}

// release empties schema and keeps it for the next check, or drops it
// when it cannot be emptied.
func (s *Schemas) release(t TB, schema string) {
	s.mu.Lock()
	tables := s.tables[schema]
	s.mu.Unlock()
	tables, err := empty(s.url, schema, tables)
	if err != nil {
		Drop(t, s.url, schema)
		return
	}
	s.mu.Lock()
	s.tables[schema] = tables
	s.free = append(s.free, schema)
	s.mu.Unlock()
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
func empty(url, schema string, tables []string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
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
	_, err = conn.Exec(ctx, sql.String(), pgx.QueryExecModeSimpleProtocol)
	return tables, err
}
