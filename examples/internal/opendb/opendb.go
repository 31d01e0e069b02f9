// Package opendb opens the store that an example's -db flag names: a
// PostgreSQL URL ("postgres://…" or "postgresql://…") opens
// [postgres.Open] with its defaults, anything else is the path of an
// SQLite file, created if missing ([sqlite.Open]). A URL's "schema"
// parameter, which opendb removes before connecting, names the schema of
// poolq's tables ("postgres://host/db?schema=dialer"; default "poolq").
package opendb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/poolq/poolq/internal/sqlitefile"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/sqlite"
)

// IsPostgres reports whether db is a PostgreSQL URL.
func IsPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// Open opens the store db names. The caller closes it.
func Open(ctx context.Context, db string) (store.Store, error) {
	if IsPostgres(db) {
		dsn, schema, err := splitSchema(db)
		if err != nil {
			return nil, err
		}
		return postgres.Open(ctx, dsn, postgres.Options{Schema: schema})
	}
	return sqlite.Open(ctx, db, sqlite.Options{})
}

// splitSchema returns a PostgreSQL URL without its schema parameter, and
// the schema ("" for the default).
func splitSchema(db string) (dsn, schema string, err error) {
	u, err := url.Parse(db)
	if err != nil {
		return "", "", fmt.Errorf("-db: not a PostgreSQL URL: %w", parseErr(db, err))
	}
	q := u.Query()
	schema = q.Get("schema")
	q.Del("schema")
	u.RawQuery = q.Encode()
	return u.String(), schema, nil
}

// parseErr is url.Parse's error err for db, without db's password:
// url.Parse's error quotes the URL, and the reason it gives may quote part
// of it ("invalid port \":s3cret\" after host" for a password with a #),
// when an unescaped %, # or / in the password (a common slip) is what it
// failed on. So a URL with a password gets a reason that quotes nothing.
func parseErr(db string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // without the URL
	}
	_, rest, _ := strings.Cut(db, "://")
	if at := strings.LastIndex(rest, "@"); at >= 0 && strings.Contains(rest[:at], ":") {
		return errors.New("it does not parse (a %, # or / in the user name or password must be escaped: %25, %23, %2F)")
	}
	return err
}

// Lock takes the lock named name across every process using db, waiting
// for it until ctx ends, and returns the function that gives it back. An
// example holds it while it finds or creates what it works on by name
// (pools, a campaign): a look-up and a create are two transactions, so two
// processes starting at once would each create their own.
//
// On PostgreSQL it is a session advisory lock on a connection of its own,
// keyed by the schema and name; on SQLite, the write lock of a file beside
// the database (db + ".lock-" + name), which SQLite takes across
// processes on every platform. A ":memory:" database is one process's:
// nothing to lock.
func Lock(ctx context.Context, db, name string) (unlock func(), err error) {
	if IsPostgres(db) {
		return lockPostgres(ctx, db, name)
	}
	if db == ":memory:" || db == "" {
		return func() {}, nil
	}
	return lockSQLite(ctx, db+".lock-"+name)
}

func lockPostgres(ctx context.Context, db, name string) (func(), error) {
	dsn, schema, err := splitSchema(db)
	if err != nil {
		return nil, err
	}
	if schema == "" {
		schema = postgres.DefaultSchema
	}
	// The URL's pool_* parameters are the store's (pgxpool's): parsed as a
	// pool's, so that a plain connection does not send them to the server.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	key := "poolq examples: " + schema + ": " + name
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(hashtextextended($1, 0))", key); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() { _ = conn.Close(context.WithoutCancel(ctx)) }, nil // a session's locks end with it
}

func lockSQLite(ctx context.Context, path string) (func(), error) {
	// The store's own URI of a path: the lock file is the one the path
	// names, as the database is (a path that begins with "//" is not a
	// host, "?" and "#" are part of the name).
	db, err := sql.Open("sqlite", sqlitefile.URI(path)+"?_pragma=busy_timeout(600000)")
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	conn, err := db.Conn(ctx)
	if err == nil {
		_, err = conn.ExecContext(ctx, "BEGIN IMMEDIATE")
		if err != nil {
			conn.Close()
		}
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		conn.Close()
		db.Close()
	}, nil
}

// Describe returns db as it may be printed: a URL without its password.
func Describe(db string) string {
	if !IsPostgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "a PostgreSQL URL"
	}
	return u.Redacted()
}
