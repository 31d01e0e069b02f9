package sqlite

import (
	"context"
	"database/sql"

	"github.com/google/uuid"
)

// Exports for the tests of package sqlite_test.

// LatestVersion is latestVersion.
var LatestVersion = latestVersion

// DBs returns the writer's and the readers' database pools of s (r is nil
// for :memory:), for tests that look under the Store. The writer's pool has
// no connection to give: its only one is held by the Store (WriterConn).
func DBs(s *Store) (w, r *sql.DB) {
	if s.r == nil {
		return s.w.db, nil
	}
	return s.w.db, s.r.db
}

// WriterConn returns the writer's held connection: the writer pool's only
// connection, which it never gives back, and the only connection of an
// in-memory database. Use it only between Reads and Writes.
func WriterConn(s *Store) *sql.Conn { return s.wc }

// FullCheckpoints returns the number of rounds of the checkpointer of s
// (a file store's, with CheckpointInterval > 0) that left the whole log
// copied into the database.
func FullCheckpoints(s *Store) int64 { return s.cp.full.Load() }

// CheckpointRounds returns the number of ticks the checkpointer of s has
// looked at the log.
func CheckpointRounds(s *Store) int64 { return s.cp.rounds.Load() }

// LogPages returns the pages the checkpointer of s counts as written since
// its last full round.
func LogPages(s *Store) int64 { return s.cp.pages.Load() }

// SetCheckpointPages sets the checkpointer's threshold of s (CheckpointPages).
func SetCheckpointPages(s *Store, n int64) { s.cp.threshold.Store(n) }

// CachedPools returns the number of pools in the cache of s. Use it only
// between Writes.
func CachedPools(s *Store) int { return len(s.cache.states) }

// MaxCachedPools is maxCachedPools, the bound of the cache.
const MaxCachedPools = maxCachedPools

// CacheKeys returns the cache's index of s, each cached pool's internal id
// by its UUID: the map itself, which a test of check mode corrupts. Use it
// only between Writes.
func CacheKeys(s *Store) map[uuid.UUID]int64 { return s.cache.keys }

// UpdateItemsSQL is the statement of UpdateItems for two items.
var UpdateItemsSQL = updateItemsSQL[2]

// Queries of the dispatch path, for EXPLAIN QUERY PLAN tests.
const (
	PromoteSQL           = promoteSQL
	DemoteSQL            = demoteSQL
	DueFIFOSQL           = dueFIFOSQL
	DueLIFOSQL           = dueLIFOSQL
	DueParallelSQL       = dueParallelSQL
	ExpiredSQL           = expiredSQL
	NextWakeSQL          = nextWakeSQL
	PoolGovernorsSQL     = poolGovernorsSQL
	PoolAttachedSQL      = poolAttachedSQL
	PoolWakesSQL         = poolWakesSQL
	InFlightSQL          = inFlightSQL
	ItemsSQL             = itemsSQL
	ItemsStatusSQL       = itemsByStatusSQL
	ItemSQL              = itemSQL
	PoolStateSQL         = poolStateSQL
	UpdateItemSQL        = updateItemSQL
	ContactItemsSQL      = contactItemsSQL
	OnDNCSQL             = onDNCSQL
	EscalationsOfPoolSQL = escalationsOfPoolSQL
	ItemsOfContactsSQL   = itemsOfContactsSQL
	CampaignItemsSQL     = campaignItemsSQL
	DeleteItemsSQL       = deleteItemsSQL
	KeepCallsSQL         = keepCallsSQL
	DropFinishedKeptSQL  = dropFinishedKeptCallsSQL
)

// Statements of the write path, for EXPLAIN tests.
var (
	InsertItemsSQL    = insertItemsSQL[2]
	InsertNewItemsSQL = insertNewItemsSQL[2]
	InsertPoolSQL     = insertPoolSQL
	UpdatePoolSQL     = updatePoolSQL
)

// HeldCheckpointPages returns the most pages written since the unheld pass
// that any round of the checkpointer of s left to its held pass.
func HeldCheckpointPages(s *Store) int64 { return s.cp.held.Load() }

// CheckpointRestarts returns the number of held passes of the checkpointer
// of s that ran as restarts (the log had outgrown restartFrames).
func CheckpointRestarts(s *Store) int64 { return s.cp.restarts.Load() }

// RestartHeldFrames returns the most frames a restart of the checkpointer
// of s copied with the writers held.
func RestartHeldFrames(s *Store) int64 { return s.cp.restartHeld.Load() }

// RestartFrames is restartFrames.
const RestartFrames = restartFrames

// ObserveUnprepared makes every later transaction on the writer's held
// connection of s (every Write; on an in-memory store every Read too) call
// fn with each SQL text it runs that is not one of the statements prepared
// at Open: one it prepares for the transaction, or runs as it is. The
// prepared ones run as *sql.Stmt, past the connection, and are not seen.
// Call it between Writes; fn runs with the writer's turn held.
func ObserveUnprepared(s *Store, fn func(query string)) {
	s.w.observe = func(q querier) querier { return observed{q, fn} }
}

// observed is a querier that tells fn each SQL text before running it.
type observed struct {
	querier
	fn func(string)
}

func (o observed) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	o.fn(query)
	return o.querier.ExecContext(ctx, query, args...)
}

func (o observed) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	o.fn(query)
	return o.querier.QueryContext(ctx, query, args...)
}

func (o observed) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	o.fn(query)
	return o.querier.QueryRowContext(ctx, query, args...)
}

func (o observed) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	o.fn(query)
	return o.querier.PrepareContext(ctx, query)
}

// Statements of Add, the contact lists, kept calls and the listings, for
// TestSchema_WritePlansAnalyzed.
var (
	InsertNewContactItemsSQL = insertNewContactItemsSQL[2]
	UpdateCountsSQL          = updateCountsSQL[2]
)

const (
	LastItemIDSQL        = lastItemIDSQL
	IndexContactsSQL     = indexContactsSQL
	AddDNCSQL            = addDNCSQL
	RemoveDNCSQL         = removeDNCSQL
	OptOutSQL            = optOutSQL
	OptedOutSQL          = optedOutSQL
	ListedSQL            = listedSQL
	ListedOneSQL         = listedOneSQL
	CampaignPoolsSQL     = campaignPoolsSQL
	RulePoolsSQL         = rulePoolsSQL
	PoolCampaignsSQL     = poolCampaignsSQL
	AttachPoolSQL        = attachPoolSQL
	GovernsSQL           = governsSQL
	ReleaseKeptCallSQL   = releaseKeptCallSQL
	DropKeptCallsSQL     = dropKeptCallsSQL
	KeepDetachedCallsSQL = keepDetachedCallsSQL
	KeepPoolCallsSQL     = keepPoolCallsSQL
	CampaignCallsSQL     = campaignCallsSQL
	KeepingCampaignsSQL  = keepingCampaignsSQL
	CampaignItemsOneSQL  = campaignItemsOneSQL
	InsertEscalationSQL  = insertEscalationSQL
)

// CampaignsSQL is campaignsSQL: Campaigns' count and page for q, and
// their arguments.
var CampaignsSQL = campaignsSQL

// RulesSQL is rulesSQL: Rules' count and page for q, and their arguments.
var RulesSQL = rulesSQL
