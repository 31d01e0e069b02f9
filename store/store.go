package store

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
)

var (
	// ErrNotFound is returned when a pool, item, rule or campaign does not
	// exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a write would break a uniqueness rule
	// (a pool, rule or campaign UUID that already exists).
	ErrConflict = errors.New("conflict")
	// ErrSchemaTooNew is returned by Open when the database was written by a
	// newer poolq whose schema this code does not know, and by Write when a
	// newer poolq migrated it since Open (another process or node, in a
	// rolling upgrade; see each store for which writes check): nothing is
	// written.
	ErrSchemaTooNew = errors.New("database schema is newer than this poolq")
	// ErrLockTimeout is wrapped by the error of a write that waited for a
	// lock held by another session (another node's transaction, another
	// process's on the same file) longer than the store's lock timeout;
	// nothing of the write was committed, and it may be tried again.
	ErrLockTimeout = errors.New("a lock held by another session for longer than the lock timeout")
	// ErrReadOnly is returned when a write is attempted in a [Store.Read]
	// transaction.
	ErrReadOnly = errors.New("write in a read-only transaction")
	// ErrClosed is returned by [Store.Read] and [Store.Write] after
	// [Store.Close].
	ErrClosed = errors.New("store closed")
	// ErrCommitUnknown is wrapped by the error of a write whose commit was
	// sent but whose outcome the store could not learn: the connection to
	// the database failed before its answer came, and the store could not
	// ask again (the database unreachable), or the answer it got may be
	// another write's (the database restarted since). The write may have committed
	// or not. Its caller must not assume that nothing happened: a claim
	// may stand dispatched under a lease nobody holds (the queue gives
	// its leases back once the database answers, or they expire: see
	// queue.Engine.TryDequeue), a settlement may have gone through (trying
	// it again gets queue.ErrLeaseLost if it did). Only a store over a
	// network returns it (see store/postgres).
	ErrCommitUnknown = errors.New("the outcome of the commit is unknown")
	// ErrTxEnded is wrapped by the error of a [Tx.Savepoint] whose
	// function's failure ended the whole transaction rather than only the
	// savepoint's writes (SQLite does so after some errors: a full disk,
	// an I/O error, no memory), by the errors of the calls of the
	// transaction that follow it, and by the error of the [Store.Write]:
	// nothing of the transaction was written, and the Write may be run
	// again (without that function, which would fail the same way). A
	// Write whose COMMIT failed with nothing written wraps it too (SQLite
	// whose log could not grow): no one function is known to have caused
	// it, and each may be run again in a Write of its own.
	ErrTxEnded = errors.New("the transaction was ended by a failed statement")
)

// Store runs transactions. Implementations are safe for concurrent use.
type Store interface {
	// Read runs fn in a read-only transaction that sees one consistent
	// snapshot. Writes inside it fail with [ErrReadOnly].
	Read(ctx context.Context, fn func(Tx) error) error
	// Write runs fn in a write transaction, exclusive among writers, and
	// commits it when fn returns nil; any error rolls it back, leaving the
	// database as it was, but one wrapping [ErrCommitUnknown]. The change is durable (to the store's durability
	// setting) when Write returns nil. When a Tx method fails, fn must
	// return (an error) rather than go on: some databases abort the whole
	// transaction on a failed statement. A Write waiting to begin (for its
	// turn, a connection, or a lock it takes before calling fn) returns
	// ctx's error when ctx ends, without calling fn; one whose ctx ends
	// after that rolls back, and fails with an error wrapping ctx's (but
	// one wrapping [ErrCommitUnknown], whose COMMIT was sent). ctx may carry a wait bound ([WithWaitBound]):
	// a store may end there, rather than at its own lock timeout, fn's
	// waits for a lock that another session holds (another node's
	// transaction), and the Write then fails with an error wrapping
	// both [ErrLockTimeout] and context.DeadlineExceeded, nothing of it
	// written.
	Write(ctx context.Context, fn func(Tx) error) error
	// Close releases the store's resources. Read and Write return an error
	// wrapping [ErrClosed] once it has been called. Close may be called
	// again: the second and later calls do nothing and return nil. A
	// store must outlive the engines over it (queue.Engine.Close first):
	// an engine whose store closed first cannot write the results of the
	// calls under way, whose items stay in flight until their leases
	// expire.
	Close() error
}

// Signaler may be implemented by the [Tx] of a store that several
// processes share, to wake the dequeues blocked in the others. The engine
// calls Signal inside a write transaction that may let a blocked dequeue of
// the pool through: an item became due, a slot was freed, the cap was
// raised, the pool was deleted; and with uuid.Max, no pool's ID, when it
// recorded an escalation (for the engines' WatchEscalations). The signal
// is delivered to the [Watcher]s of every process sharing the store (this
// one included) once the transaction commits, and never if it rolls back.
type Signaler interface {
	Signal(poolID uuid.UUID)
}

// Watcher may be implemented by a [Store] that several processes share:
// Watch calls fn with the pool of every committed [Signaler] signal, from
// any process, until stop is called. fn must be quick and safe for
// concurrent use. Signals may be lost (a dropped connection, say): blocked
// dequeues also poll; and fn is called with uuid.Nil each time the store
// begins to receive signals (again), when those sent before may have been
// lost: every waiter should look again then.
type Watcher interface {
	Watch(fn func(poolID uuid.UUID)) (stop func())
}

// LeaseGracer may be implemented by a [Store] that nodes with clocks of
// their own share. LeaseGrace is how long after its holder's deadline a
// lease may still be live by another node's clock: the engine stores a
// lease's end (pool.Item.LeaseExpiresAt) that long after the deadline it
// gives the holder (queue.Lease.ExpiresAt), and every judgment of other
// callers (a lease taken back as expired, a slot or a contact still in a
// call) reads the stored end, so that a node whose clock is ahead of the
// holder's by less than the grace never takes a live call for ended. It
// must be between zero and a week. A store wrapping one that implements
// it must implement it too, or its engines judge by their clocks alone.
type LeaseGracer interface {
	LeaseGrace() time.Duration
}

// ClockChecker may be implemented by a [Store] that nodes with clocks of
// their own share, and that compares this process's clock with theirs
// (PostgreSQL's, with the server's). ClockBehind returns an error while
// this clock is too far behind for a lease's end set by it to hold: the
// other nodes, judging that end by their clocks, would take the lease for
// ended while its holder, judging by this one, is still on the call. The
// engine's Extend fails with it, and the lease keeps the end it had. A
// store wrapping one that implements it must implement it too.
type ClockChecker interface {
	ClockBehind() error
}

// Change is one write of an item for [Tx.UpdateItems]: Item as it is to
// be stored, and From, the status the caller read it in.
type Change struct {
	From pool.Status
	Item pool.Item
}

// Tx is the set of operations of one transaction. A Tx is valid only inside
// the function it was passed to, and is not safe for concurrent use.
//
// Times are stored with nanosecond precision and returned in UTC; a store
// may refuse times outside the years 1678–2261. Every method that takes a
// pool id returns [ErrNotFound] for an unknown pool, but three: [Tx.KeepCalls]
// records nothing for it (no error), as for a pool attached to no campaign,
// [Tx.CampaignItems] leaves nothing out for an unknown except pool, and
// [Tx.PoolWakes] leaves an unknown pool out of its answer.
//
// In a write transaction, the first method that names a pool serializes
// the transaction with every other write transaction that names it: what
// the transaction reads of the pool afterwards (its items, its campaigns)
// is what the last of those committed, and none of them commits until
// this one ends. A store whose writes are all serial (SQLite) has this for
// free; a store shared by several nodes locks the pool.
type Tx interface {
	// InsertPool stores a new pool (ContactsCount is ignored). A pool with the
	// same UUID gets [ErrConflict].
	InsertPool(ctx context.Context, p pool.Pool) error
	// Pool returns one pool with its ContactsCount, or [ErrNotFound].
	Pool(ctx context.Context, id uuid.UUID) (pool.Pool, error)
	// UpdatePool stores every setting of p (name, description, type, caps,
	// is_active, updated_at; never created_at), or returns [ErrNotFound].
	UpdatePool(ctx context.Context, p pool.Pool) error
	// DeletePool removes a pool and all its items, or returns [ErrNotFound].
	DeletePool(ctx context.Context, id uuid.UUID) error
	// Pools returns one page of pools matching q, ordered by CreatedAt then
	// UUID, and the number of pools matching q on all pages. q must be
	// normalized ([pool.PoolQuery.Normalize]).
	Pools(ctx context.Context, q pool.PoolQuery) ([]pool.Pool, int, error)
	// StatusCounts returns the number of items of a pool in each status,
	// every status present, or [ErrNotFound]. O(1) in the number of items.
	StatusCounts(ctx context.Context, id uuid.UUID) (map[pool.Status]int, error)

	// InsertItems adds items to a pool in the order given, assigning each
	// new one an ID larger than any before. An item whose contact is already
	// in the pool, or earlier in items, is left out (the first wins). It
	// returns the number added.
	InsertItems(ctx context.Context, poolID uuid.UUID, items []pool.Item) (added int, err error)
	// CopyItems copies every item of pool src into pool dst, in insertion
	// order, as Pending items with their contact, priority and payload, added
	// at now; attempts and history are not copied. Contacts already in dst
	// are skipped. It returns the number copied.
	CopyItems(ctx context.Context, src, dst uuid.UUID, now time.Time) (int, error)
	// Item returns the item of a contact in a pool, or [ErrNotFound].
	Item(ctx context.Context, poolID, contact uuid.UUID) (pool.Item, error)
	// ItemsOfContacts returns the items of contacts in pool poolID, those
	// that are in it, in no particular order (a contact named twice is
	// found once), or [ErrNotFound] for an unknown pool. One statement
	// whatever the number of contacts: one index seek each.
	ItemsOfContacts(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) ([]pool.Item, error)
	// ItemByID returns an item by its ID, or [ErrNotFound].
	ItemByID(ctx context.Context, id int64) (pool.Item, error)
	// UpdateItem stores every mutable field of it (status, priority,
	// attempts, retry count, timestamps, notes, token, lease expiry, call
	// day and calls today), found
	// by it.ID in pool it.PoolUUID, if its status is still from (the status
	// the caller read it in); else it returns [ErrNotFound] and writes
	// nothing. The per-status counts follow the change from from to
	// it.Status.
	UpdateItem(ctx context.Context, from pool.Status, it pool.Item) error
	// UpdateItems is UpdateItem for many items, with fewer statements: the
	// batch path of dispatch and settlement. If an item is not found in
	// its From status the write fails with [ErrNotFound] and the
	// transaction does not commit. A store may send the write with the
	// transaction's next statement (PostgreSQL does, to save a round
	// trip): the error is then returned by that later call of the
	// transaction, by the Savepoint around UpdateItems when it ends, or by
	// the commit, and never later than that.
	UpdateItems(ctx context.Context, changes ...Change) error
	// ItemsByID returns the items with the given IDs, those that exist, in
	// no particular order.
	ItemsByID(ctx context.Context, ids []int64) ([]pool.Item, error)
	// PoolItems returns pool id as Pool does (or [ErrNotFound]) and those
	// of the items with the given IDs that are in it, as ItemsByID would,
	// in no particular order: Pool then ItemsByID in one call, so that a
	// store can read both at once. PostgreSQL does, in a write transaction
	// that does not hold the pool's lock yet: the items are read in the
	// round trip that takes it.
	PoolItems(ctx context.Context, id uuid.UUID, ids []int64) (pool.Pool, []pool.Item, error)
	// DeleteItems removes those of the items with the given IDs that are
	// in pool poolID, whatever their status (the caller checks that none
	// is in flight), with their search words, and returns how many it
	// removed; an ID not in the pool is left alone. An unknown pool is
	// [ErrNotFound]. The per-status counts follow. One statement whatever
	// the number of IDs: O(m log n) for m items.
	DeleteItems(ctx context.Context, poolID uuid.UUID, ids []int64) (int, error)
	// Items returns one page of a pool's items matching q in insertion
	// order, and the number matching on all pages. q must be normalized.
	// q.After keeps only items with a larger ID, as a seek (the page's
	// offset counts from there); the number matching still counts them all.
	// q.Search keeps the items where every word of it but the last is a
	// word of the contact's name, email or phone number and the last
	// begins one, with words as [SearchWords] cuts and folds them (case
	// and diacritics aside), at a cost that grows with the matches rather
	// than the pool.
	Items(ctx context.Context, poolID uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error)

	// InFlight returns the number of a pool's items in flight (Processing or
	// In_Call). O(1) in the number of items.
	InFlight(ctx context.Context, poolID uuid.UUID) (int, error)
	// Due returns up to limit items of a pool that are due at now (see
	// [pool.Item.Due]) in the order of typ: FIFO by ID ascending, LIFO by ID
	// descending, Parallel by priority descending then ID ascending. The
	// cost is an index seek plus the rows returned, whatever the number of
	// items, including items waiting for a future retry time. Only in a
	// write transaction (it may reorganize the due set). A Due that reads
	// the whole due set (returns fewer than limit items) has NextWake
	// count again the retries an earlier Due found due
	// at a later now (another node's clock ahead of this one's, or this
	// clock stepped back), so that a caller about to wait learns their
	// times.
	Due(ctx context.Context, poolID uuid.UUID, typ pool.Type, now time.Time, limit int) ([]pool.Item, error)
	// PoolDue returns pool id as Pool does (or [ErrNotFound]) and the
	// items Due would return at now in the order of its own type, up to
	// limit and to the room the pool's cap leaves (Pool.Cap() less the
	// items in flight): Pool, InFlight and Due in one call, so that a
	// store can read them at once. PostgreSQL does, in a write transaction
	// that does not hold the pool's lock yet: the due items are read in
	// the round trip that takes it. Only in a write transaction.
	PoolDue(ctx context.Context, id uuid.UUID, now time.Time, limit int) (pool.Pool, []pool.Item, error)
	// Expired returns up to limit in-flight items of a pool whose lease ended
	// at or before now, earliest first. A store shared by nodes may return
	// none while it knows this process's clock to be wrong (PostgreSQL's,
	// see postgres.ErrClockSkew): those leases are left for the nodes whose
	// clocks are right to take for ended.
	Expired(ctx context.Context, poolID uuid.UUID, now time.Time, limit int) ([]pool.Item, error)
	// Savepoint runs fn inside a nested transaction: when fn returns an
	// error, what fn wrote is undone, the rest of the transaction stays, and
	// the error is returned; unless fn's failure ended the whole
	// transaction, which a store may not be able to prevent (its error
	// then wraps [ErrTxEnded]). Group commit runs each caller's operation in
	// one, so that one caller's failure does not undo the others'. Only in
	// a write transaction; savepoints do not nest.
	Savepoint(ctx context.Context, fn func(Tx) error) error

	// Rules (package campaign). Every method that takes a rule id returns
	// [ErrNotFound] for an unknown rule.

	// InsertRule stores a new rule; a rule with the same UUID gets
	// [ErrConflict].
	InsertRule(ctx context.Context, r campaign.Rule) error
	// Rule returns one rule. In a write transaction it takes the rule's
	// lock, shared (see LockRule), before it reads the rule, and holds it
	// until the transaction ends.
	Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error)
	// LockRule takes, in a write transaction, rule id's lock, exclusive,
	// held until the transaction ends, or returns [ErrNotFound]. Every
	// other write transaction that reads the rule holds its lock shared
	// (Rule): a transaction that changes the rule (UpdateRule, which takes
	// this lock before it reads the rule) and the transactions that decide
	// under it (a claim, a settlement, a lease's expiry, a campaign's start
	// or assignment) run one after the other, and what the later ones read
	// of the rule is what the earlier committed. A store whose writes are
	// all serial (SQLite) has this for free. The engine takes it after the
	// campaign's lock, before the pools'.
	LockRule(ctx context.Context, id uuid.UUID) error
	// UpdateRule stores every setting of r (not CreatedAt).
	UpdateRule(ctx context.Context, r campaign.Rule) error
	// DeleteRule removes a rule. The caller makes sure no campaign uses it.
	DeleteRule(ctx context.Context, id uuid.UUID) error
	// Rules returns one page of rules matching q (normalized), ordered by
	// CreatedAt then UUID, and the number matching on all pages. Search
	// finds a case-insensitive substring of the name, escalation type or
	// escalation target.
	Rules(ctx context.Context, q campaign.RuleQuery) ([]campaign.Rule, int, error)

	// Campaigns. Every method that takes a campaign id returns
	// [ErrNotFound] for an unknown campaign, but CampaignItems and
	// CampaignCalls, for which an unknown campaign has none (no error).

	// InsertCampaign stores a new campaign (PoolUUIDs is ignored: see
	// AttachPool); a campaign with the same UUID gets [ErrConflict], an
	// unknown rule [ErrNotFound].
	InsertCampaign(ctx context.Context, c campaign.Campaign) error
	// Campaign returns one campaign, with PoolUUIDs in attachment order.
	Campaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error)
	// UpdateCampaign stores c's name, status, rule, time zone and
	// UpdatedAt; an unknown rule is [ErrNotFound]. Written Completed or
	// Archived, c never dispatches again: the calls kept for it (KeepCalls,
	// DetachPool) are deleted, as nothing reads them any more (a seek and
	// a range of its own rows). So that a KeepCalls on one of its pools
	// under way meanwhile keeps none for it afterwards, the caller names
	// the campaign's pools first in the transaction (see Tx above), as
	// queue's status changes do.
	UpdateCampaign(ctx context.Context, c campaign.Campaign) error
	// DeleteCampaign removes a campaign and detaches its pools.
	DeleteCampaign(ctx context.Context, id uuid.UUID) error
	// Campaigns returns one page of campaigns matching q (normalized),
	// ordered by CreatedAt then UUID, with their PoolUUIDs, and the number
	// matching on all pages. Search finds a case-insensitive substring of
	// the name.
	Campaigns(ctx context.Context, q campaign.Query) ([]campaign.Campaign, int, error)
	// AttachPool attaches pool poolID to campaign id, after the pools
	// attached before. attached is false when it was attached already.
	// An unknown pool is [ErrNotFound]. Attached, the pool's items count in
	// the campaign again: the calls kept of them when it was detached
	// (DetachPool) are dropped.
	AttachPool(ctx context.Context, id, poolID uuid.UUID) (attached bool, err error)
	// DetachPool detaches pool poolID from campaign id. detached is false
	// when it was not attached. An unknown pool is [ErrNotFound]. The calls
	// of the pool's items (those with attempts or a day's count above
	// zero) still count in the campaign: they are kept for it, as
	// KeepCalls keeps those of removed items, until the pool is attached
	// to it again; not for a Completed or Archived campaign, which never
	// dispatches again (detaching a pool of many called items from it
	// writes nothing for them).
	DetachPool(ctx context.Context, id, poolID uuid.UUID) (detached bool, err error)
	// RulePools returns the pools of the campaigns rule governs (In
	// Process or Paused) that hold a lease ended at endedBy (an item in
	// flight whose LeaseExpiresAt is not after it, as Expired), each once,
	// in no given order; none for an unknown rule. One statement: on a
	// store whose write transactions see a new snapshot at each statement
	// (PostgreSQL), a listing in pages or per status could miss a campaign
	// that stays governing while another leaves the listing between two
	// statements (UpdateRule applies these pools' ended leases under the
	// rule's old values). Its cost grows with the pools of the rule's
	// campaigns (a seek of each one's leases), not the store's.
	RulePools(ctx context.Context, rule uuid.UUID, endedBy time.Time) ([]uuid.UUID, error)
	// PoolCampaigns returns the campaigns pool poolID is attached to,
	// ordered by CreatedAt then UUID, without their PoolUUIDs: what a
	// pool's detail lists. A seek on the pool's attachments, each
	// campaign read (dispatch asks PoolGovernors instead).
	PoolCampaigns(ctx context.Context, poolID uuid.UUID) ([]campaign.Campaign, error)
	// PoolGovernors returns the campaigns that govern pool poolID (those
	// In Process or Paused: one at most, the engine sees to it), ordered
	// by CreatedAt then UUID, without their PoolUUIDs, and whether the
	// pool is attached to any campaign at all. What every claim, failure
	// and expiry asks: its cost does not grow with the pool's other
	// campaigns (a finished campaign stays attached), each store keeping
	// an index of governing attachments, written with a campaign's status
	// (UpdateCampaign) and its pools (AttachPool). In a write transaction
	// it takes the pool's lock first, as PoolCampaigns does.
	PoolGovernors(ctx context.Context, poolID uuid.UUID) (governing []campaign.Campaign, attached bool, err error)

	// ContactItems returns the items of contact in every pool, ordered by
	// pool (its internal order) then ID. One index seek per pool (there
	// is one item of a contact per pool at most): O(P log n) for P pools,
	// a cost paid at an opt-out, so that Add pays for no index on contacts.
	ContactItems(ctx context.Context, contact uuid.UUID) ([]pool.Item, error)
	// CampaignItems returns the items of contacts in the pools attached to
	// campaign id, pool except left out, in no particular order: what a
	// claim under the campaign's rule counts against each contact besides
	// the item it looks at. One index seek per (pool, contact) pair in
	// UNIQUE (pool_id, contact_uuid), no index on contacts. An unknown
	// campaign has none. PostgreSQL, in a write transaction, takes the
	// campaign's lock first and holds it to the end, for no contacts too:
	// the claims of a campaign's pools, which all read this, run one after
	// the other across nodes, so that each reads what the one before it
	// dispatched (the engine's extensions of leases in those pools read it
	// too, for the lease's contact: they take their turn with the claims,
	// and learn whether one called the contact after the lease's end).
	//
	// The calls kept of items that left the campaign's pools (KeepCalls,
	// DetachPool) come with them, whatever pool they were in (except too),
	// each as an item of no pool
	// (PoolUUID uuid.Nil, ID 0, Status Completed) that holds only the
	// contact, the attempts and the counts of its calling days (CallAt
	// to OlderCallsToday): one more index seek per contact. A call kept of an item in flight when
	// its pool left (DetachPool) has, while that item is still in flight
	// under the same token, the item's Status and LeaseExpiresAt instead:
	// the call goes on (one more seek, of the item by its ID).
	CampaignItems(ctx context.Context, id, except uuid.UUID, contacts ...uuid.UUID) ([]pool.Item, error)
	// KeepCalls records, before they are deleted, the calls of the items of
	// contacts in pool poolID (every item of the pool when contacts is
	// empty) for each campaign the pool is attached to that may dispatch
	// again (not Completed or Archived: a finished campaign's calls are
	// never read, and a pool reused by a campaign a day would write one
	// record per item and finished campaign): for each such item
	// with a counted call (attempts, or a count of its calling days, above
	// zero), one record of its attempts and its calling days' counts per
	// campaign, which
	// CampaignItems returns from then on, until the campaign is deleted or
	// written Completed or Archived (UpdateCampaign). A
	// pool attached to no such campaign records nothing. One statement.
	KeepCalls(ctx context.Context, poolID uuid.UUID, contacts ...uuid.UUID) error
	// ReleaseKeptCall gives back, in the calls kept of item itemID while
	// its lease token was in flight (a detach, see DetachPool), that
	// lease's attempt, and its day's call when day: the attempt was given
	// back (Release), and counts no more. A seek in an index of such rows
	// only; none is nothing to do.
	ReleaseKeptCall(ctx context.Context, itemID, token int64, day bool) error
	// KeepingCampaigns returns the campaigns that keep the call of item
	// itemID under lease token, made while its pool was attached to them
	// and detached mid-call (DetachPool), in no particular order; none for
	// another token or an item none keeps. What a campaign kept it counts
	// in CampaignItems: the engine's extension of the lease reads those
	// too. A seek in an index of such rows only.
	KeepingCampaigns(ctx context.Context, itemID, token int64) ([]uuid.UUID, error)
	// CampaignCalls returns the items in flight (Processing or In_Call) in
	// the pools attached to campaign id whose lease ends after after, in no
	// particular order: the calls under way. A walk of each pool's lease
	// index, without the pools' locks: PostgreSQL, in a write transaction,
	// takes the campaign's lock, as CampaignItems does, and no claim under
	// the campaign's rule starts a call while it is held. An unknown
	// campaign has none.
	CampaignCalls(ctx context.Context, id uuid.UUID, after time.Time) ([]pool.Item, error)

	// AddDNC puts contacts on the do-not-call list, added at at; those on
	// it already keep their entry. It returns how many it added.
	AddDNC(ctx context.Context, at time.Time, contacts ...uuid.UUID) (added int, err error)
	// RemoveDNC takes contacts off the do-not-call list and returns how
	// many were on it.
	RemoveDNC(ctx context.Context, contacts ...uuid.UUID) (removed int, err error)
	// OnDNC returns which of contacts are on the do-not-call list (a set;
	// those not on it are absent). One statement for all: dispatch asks it
	// of every batch it claims under a rule with dnc_check.
	OnDNC(ctx context.Context, contacts ...uuid.UUID) (map[uuid.UUID]bool, error)
	// DNC returns a page of the do-not-call list, oldest entry first (ties
	// by contact UUID), and its length. q must be normalized.
	DNC(ctx context.Context, q campaign.DNCQuery) ([]campaign.DNCEntry, int, error)

	// OptOut records that contact opted out at at, and reports whether it
	// had not before (an opt-out is kept; there is no opting back in here).
	OptOut(ctx context.Context, contact uuid.UUID, at time.Time) (added bool, err error)
	// OptedOut returns which of contacts have opted out (a set, as OnDNC).
	OptedOut(ctx context.Context, contacts ...uuid.UUID) (map[uuid.UUID]bool, error)
	// Listed returns what OnDNC and OptedOut return for contacts, in one
	// statement: dispatch asks it of the items it claims under a rule
	// that checks both lists.
	Listed(ctx context.Context, contacts ...uuid.UUID) (dnc, optedOut map[uuid.UUID]bool, err error)

	// InsertEscalation records e (its ID is assigned: larger than any
	// before, never reused) unless an escalation of item e.ItemID exists
	// already; it reports whether it recorded one, and returns e with its
	// ID. Escalations outlive their items.
	InsertEscalation(ctx context.Context, e campaign.Escalation) (campaign.Escalation, bool, error)
	// Escalations returns escalations in ID order, those with an ID above
	// q.After, at most q.Limit, of pool q.PoolUUID when it is set. q must
	// be normalized.
	Escalations(ctx context.Context, q campaign.EscalationQuery) ([]campaign.Escalation, error)

	// NextWake returns the earliest time at which something in the pool may
	// change by itself: the earliest NextRetryAt of a Retrying or Scheduled
	// item that no Due call has found due yet, or the earliest lease expiry
	// of an in-flight one. ok is false when there is none. Items that Due
	// already found due are left out, so that a waiter blocked on a full pool
	// sleeps until a lease ends rather than waking at once (unless a later
	// Due that read the whole due set gave them back, see Due).
	NextWake(ctx context.Context, poolID uuid.UUID) (t time.Time, ok bool, err error)
	// PoolWakes reads, for each of pools, whether a claim could find
	// something to do in it, without the write transaction of a claim: a
	// caller that serves many pools (queue.Engine.DequeueCampaign) writes
	// only to those that may give. A claim at now finds something to do
	// in a pool only if its PoolWake has Due and not Full, or HasNext with
	// Next at or before now (a retry come due, or a lease to end, which
	// frees a slot in a full pool). An unknown pool is left out of the
	// answer (no error).
	// Only in a read transaction: it takes no pool's lock, and what it
	// reads may change as soon as it returns (a caller about to wait
	// learns of that as it learns of any change: see Signaler). Cost: six
	// index seeks a pool on SQLite (its row, the first entry of three
	// indexes, its two counts in flight), five on PostgreSQL, whatever the
	// number of its items; one statement for all of them.
	PoolWakes(ctx context.Context, pools ...uuid.UUID) (map[uuid.UUID]PoolWake, error)
}

// PoolWake is what [Tx.PoolWakes] reads of one pool.
type PoolWake struct {
	// Due reports whether the pool's due set holds an item: a Pending one,
	// or a Retrying or Scheduled one that a Due has found due, which
	// NextWake leaves out. It may be true of retries found due by a Due at
	// a later now than the caller's (another node's clock ahead, or this
	// clock stepped back): a Due at the caller's now does not return them,
	// and gives them back to the waiting set (see Due).
	Due bool
	// Full reports whether the pool's items in flight (Processing and
	// In_Call) are at or above its cap ([pool.Pool.Cap]: 1 for FIFO and
	// LIFO, MaxParallelItems for Parallel), counted as a claim counts them
	// (Tx.InFlight): a claim then takes nothing, whatever is due, unless a
	// lease has ended, which it ends, freeing a slot. A cap lowered below
	// the items in flight leaves the pool Full until enough of them end.
	Full bool
	// Next and HasNext are NextWake's answer: the earliest retry time of a
	// Retrying or Scheduled item that no Due has found due, or lease end
	// of an in-flight item; HasNext is false when there is none. When Full,
	// Next is the earliest lease end alone: a retry time that comes gives
	// a claim nothing while the pool is full, so a caller waiting on it
	// would wake for nothing, and, no claim finding it due, again and
	// again. A slot freed otherwise (a settlement, a cap raised) wakes the
	// engine's waiters itself, and those of other nodes through the
	// Signaler (PostgreSQL); other processes sharing a SQLite file learn
	// of it at their next poll.
	Next    time.Time
	HasNext bool
}

// NewPoolWake is the PoolWake of a pool of type typ and max_parallel_items
// limit with inFlight items in flight: due tells whether its due set holds
// an item, retry is the first retry time that no Due found due, lease the
// first lease end (nil: none). A full pool's Next is its first lease end
// alone (see PoolWake.Next). The stores read the facts; this is the rule
// they share.
func NewPoolWake(due bool, typ pool.Type, limit, inFlight int, retry, lease *time.Time) PoolWake {
	w := PoolWake{Due: due, Full: inFlight >= pool.Pool{Type: typ, MaxParallelItems: limit}.Cap()}
	if w.Full {
		retry = nil // a retry time that comes gives a full pool's claim nothing
	}
	for _, at := range []*time.Time{retry, lease} {
		if at != nil && (!w.HasNext || at.Before(w.Next)) {
			w.Next, w.HasNext = *at, true
		}
	}
	return w
}

// waitBoundKey is the context key of [WithWaitBound].
type waitBoundKey struct{}

// WithWaitBound returns ctx carrying the instant by which the one caller a
// [Store.Write] runs for stops waiting for its result (its context's
// deadline): a store whose transaction waits for another session's lock
// inside fn may end that wait there (see [Store.Write]). Group commit gives
// it to the Write of an operation that runs alone, whose caller's context
// has a deadline; a Write shared by several callers has none, since one
// caller's deadline must not fail the others.
func WithWaitBound(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, waitBoundKey{}, t)
}

// WaitBound returns the instant ctx carries from [WithWaitBound], if any.
func WaitBound(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(waitBoundKey{}).(time.Time)
	return t, ok
}
