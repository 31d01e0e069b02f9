// Package pgtest opens PostgreSQL stores for tests and benchmarks: each in
// a schema of its own, with a random name, dropped when the test ends, so
// that tests leave the server as they found it.
//
// The server is named by the environment variable POOLQ_TEST_POSTGRES (a
// PostgreSQL URL); without it, [URL] skips the test with a message naming
// the variable.
//
//	func TestX(t *testing.T) {
//		url := pgtest.URL(t) // skips without POOLQ_TEST_POSTGRES
//		st := pgtest.Open(t, url, postgres.Options{})
//		…
//	}
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	neturl "net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store/postgres"
)

// EnvURL is the environment variable holding the test server's URL, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "POOLQ_TEST_POSTGRES"

// TB is what the helpers need of a test: *testing.T, *testing.B and
// *rapid.T all have it.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Skipper is a TB that can skip.
type Skipper interface {
	TB
	Skipf(format string, args ...any)
}

// URL returns the test server's URL, or skips the test when EnvURL is not
// set.
func URL(t Skipper) string {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		t.Skipf("PostgreSQL tests need %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvURL)
	}
	return url
}

// WithParams returns url with params ("k=v&k2=v2") added to its query.
func WithParams(url, params string) string {
	if strings.Contains(url, "?") {
		return url + "&" + params
	}
	return url + "?" + params
}

// Schema returns a new random schema name ("poolq_test_…") and drops the
// schema, if it was created, when the test ends.
func Schema(t TB, url string) string {
	t.Helper()
	schema := newSchemaName()
	t.Cleanup(func() { Drop(t, url, schema) })
	return schema
}

// newSchemaName returns a random schema name: "poolq_test_" and 16 hex
// digits.
func newSchemaName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "poolq_test_" + hex.EncodeToString(b[:])
}

// Drop drops a schema and everything in it.
func Drop(t TB, url, schema string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: drop schema %s: %v", schema, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Fatalf("pgtest: drop schema %s: %v", schema, err)
	}
}

// LoginRole creates a role that may log in, runs grants (each with %s for
// the role's name) as url's user, and returns url with the role as its
// user. The role, whatever it owns and whatever it was granted are dropped
// when the test ends: after the cleanups registered later (the stores
// opened as the role), before those registered earlier (the schema of
// [Schema], which may then be dropped).
func LoginRole(t TB, url, role string, grants ...string) string {
	t.Helper()
	ctx := context.Background()
	u, err := neturl.Parse(url)
	if err != nil {
		t.Fatalf("pgtest: role %s: %v", role, err)
		return ""
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("pgtest: create role %s: %v", role, err)
		return ""
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE ROLE "+role+" LOGIN"); err != nil {
		t.Fatalf("pgtest: create role %s: %v", role, err)
		return ""
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("pgtest: drop role %s: %v", role, err)
			return
		}
		defer c.Close(ctx)
		for _, sql := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Fatalf("pgtest: %s: %v", sql, err)
				return
			}
		}
	})
	for _, g := range grants {
		sql := fmt.Sprintf(g, role)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("pgtest: %s: %v", sql, err)
			return ""
		}
	}
	u.User = neturl.User(role)
	return u.String()
}

// Open opens a store in a new schema (opts.Schema is replaced) with at
// most 4 connections unless opts says otherwise, closed and dropped when
// the test ends.
func Open(t TB, url string, opts postgres.Options) *postgres.Store {
	t.Helper()
	opts.Schema = Schema(t, url)
	return OpenSchema(t, url, opts)
}

// OpenSchema opens a store in opts.Schema (another store on the same
// schema, as another process would), closed when the test ends. Its
// LeaseGrace is none unless opts gives one: the engines of a test judge
// leases at their holders' deadlines, as on SQLite (a test of the grace
// sets one).
func OpenSchema(t TB, url string, opts postgres.Options) *postgres.Store {
	t.Helper()
	st, err := openSchema(url, opts)
	if err != nil {
		t.Fatalf("pgtest: open store in schema %s: %v", opts.Schema, err)
		return nil
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// openSchema opens a store in opts.Schema with OpenSchema's defaults.
func openSchema(url string, opts postgres.Options) (*postgres.Store, error) {
	if opts.MaxConns == 0 {
		opts.MaxConns = 4
	}
	if opts.LeaseGrace == 0 {
		opts.LeaseGrace = -1
	}
	return postgres.Open(context.Background(), url, opts)
}
