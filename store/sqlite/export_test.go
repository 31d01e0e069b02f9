package sqlite

import "database/sql"

// Exports for the tests of package sqlite_test.

// LatestVersion is latestVersion.
var LatestVersion = latestVersion

// DBs returns the writer's and the readers' database pools of s (the same
// one for :memory:), for tests that look under the Store.
func DBs(s *Store) (w, r *sql.DB) { return s.w.db, s.r.db }

// Queries of the dispatch path, for EXPLAIN QUERY PLAN tests.
const (
	PromoteSQL     = promoteSQL
	DueFIFOSQL     = dueFIFOSQL
	DueLIFOSQL     = dueLIFOSQL
	DueParallelSQL = dueParallelSQL
	ExpiredSQL     = expiredSQL
	NextWakeSQL    = nextWakeSQL
	InFlightSQL    = inFlightSQL
	ItemsSQL       = itemsSQL
	ItemsStatusSQL = itemsByStatusSQL
	ItemSQL        = itemSQL
)
