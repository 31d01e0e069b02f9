// Package opendb opens the store that an example's -db flag names: a
// PostgreSQL URL ("postgres://…" or "postgresql://…") opens
// [postgres.Open] with its defaults, anything else is the path of an
// SQLite file, created if missing ([sqlite.Open]). A URL's "schema"
// parameter, which opendb removes before connecting, names the schema of
// poolq's tables ("postgres://host/db?schema=dialer"; default "poolq").
package opendb

import (
	"context"
	"fmt"
	"net/url"
	"strings"

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
		u, err := url.Parse(db)
		if err != nil {
			return nil, fmt.Errorf("-db: not a PostgreSQL URL: %w", err)
		}
		q := u.Query()
		opts := postgres.Options{Schema: q.Get("schema")}
		q.Del("schema")
		u.RawQuery = q.Encode()
		return postgres.Open(ctx, u.String(), opts)
	}
	return sqlite.Open(ctx, db, sqlite.Options{})
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
