package sqlite

import "database/sql"

// Exports for the tests of package sqlite_test.

// LatestVersion is latestVersion.
var LatestVersion = latestVersion

// DBs returns the writer's and the readers' database pools of s (the same
// one for :memory:), for tests that look under the Store.
func DBs(s *Store) (w, r *sql.DB) { return s.w.db, s.r.db }

// WriterConn returns the writer's held connection of a file store (nil for
// :memory:): the writer pool's only connection, which it never gives back.
// Use it only between Writes.
func WriterConn(s *Store) *sql.Conn { return s.wc }

// UpdateItemsSQL is the statement of UpdateItems for two items.
var UpdateItemsSQL = updateItemsSQL[2]

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
	PoolStateSQL   = poolStateSQL
	UpdateItemSQL  = updateItemSQL
)

// Statements of the write path, for EXPLAIN tests.
var (
	InsertItemsSQL    = insertItemsSQL[2]
	InsertNewItemsSQL = insertNewItemsSQL[2]
	InsertPoolSQL     = insertPoolSQL
	UpdatePoolSQL     = updatePoolSQL
)
