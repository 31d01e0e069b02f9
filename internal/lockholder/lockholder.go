// Package lockholder is for tests: it holds the write lock of a SQLite file
// the way another process would, on a connection of its own.
package lockholder

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/poolq/poolq/internal/sqlitefile"
	_ "modernc.org/sqlite" // the driver
)

// busyTimeout bounds Hold's wait for a lock held when it is called.
const busyTimeout = 10 * time.Second

// Hold takes the write lock of the SQLite file at path (BEGIN IMMEDIATE on
// a connection of its own) and returns the function that gives it back
// (ROLLBACK). It is given back when the test ends, if not before. A lock
// held by another connection when Hold is called (a store's write under
// way: a Work whose heartbeats write every few milliseconds) is waited
// for, up to busyTimeout, as another process would.
func Hold(tb testing.TB, path string) (release func()) {
	tb.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", sqlitefile.URI(path)+fmt.Sprintf("?_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()))
	if err != nil {
		tb.Fatalf("lockholder: open %s: %v", path, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		tb.Fatalf("lockholder: connect to %s: %v", path, err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		conn.Close()
		db.Close()
		tb.Fatalf("lockholder: lock %s: %v", path, err)
	}
	held := true
	release = func() {
		if !held {
			return
		}
		held = false
		_, err := conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		db.Close()
		if err != nil {
			tb.Errorf("lockholder: unlock %s: %v", path, err)
		}
	}
	tb.Cleanup(release)
	return release
}
