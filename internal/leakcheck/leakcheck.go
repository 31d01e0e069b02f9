// Package leakcheck is for tests: it fails a package's test run that leaves
// a store open, found by the goroutines an open store keeps running.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// storeFrames are the functions of the goroutines an open store keeps
// running, as runtime.Stack prints them: database/sql's connection opener
// (one for each *sql.DB), the SQLite store's checkpointer, the PostgreSQL
// store's clock watch and pgxpool's health check.
var storeFrames = []string{
	"database/sql.(*DB).connectionOpener(",
	"github.com/poolq/poolq/store/sqlite.startCheckpointer.",
	"github.com/poolq/poolq/store/postgres.(*clockWatch).start.",
	"github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck(",
}

// grace is how long the goroutines have to end once the tests have
// passed: a Close may return before the goroutines it stopped are gone
// (database/sql's opener ends after DB.Close returns).
const grace = 2 * time.Second

// Main runs m's tests and exits with their code; if they passed but a
// store's goroutines are still running once grace has passed, it prints
// their stacks and exits with 1: a test did not close a store.
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if left := Wait(grace); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "leakcheck: the tests passed but left %d goroutines of stores running (a store not closed):\n\n%s\n",
				len(left), strings.Join(left, "\n\n"))
			code = 1
		}
	}
	os.Exit(code)
}

// Wait returns the stacks of the stores' goroutines still running, polling
// until there are none or d has passed.
func Wait(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		left := Running()
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Running returns the stacks of the stores' goroutines now running.
func Running() []string {
	var left []string
	for _, g := range Stacks() {
		if runsStore(g) {
			left = append(left, g)
		}
	}
	return left
}

// runsStore reports whether stack g has a frame of storeFrames. A frame's
// function line starts with its name; "created by" lines do not count.
func runsStore(g string) bool {
	for line := range strings.Lines(g) {
		for _, f := range storeFrames {
			if strings.HasPrefix(line, f) {
				return true
			}
		}
	}
	return false
}

// Stacks returns the stack of every goroutine, one a string.
func Stacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Split(string(buf[:n]), "\n\n")
		}
		buf = make([]byte, 2*len(buf))
	}
}
