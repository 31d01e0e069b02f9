package postgres

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// Campaigns and the pools they govern, across nodes.
//
// A pool has at most one governing campaign (In Process or Paused). The
// engine checks it inside the write transaction that would break it:
// starting or resuming a campaign reads, for each of its pools, the
// pool's governing campaigns (PoolGovernors); attaching a pool to a governing
// campaign does the same for that pool. On one node SQLite runs writes one
// at a time; here two nodes may run them at once, and two locks make the
// checks hold:
//
//   - Every method that names a pool in a write transaction takes the
//     pool's lock first (see txn.pool), PoolGovernors and AttachPool
//     included, and the lock is held until the transaction ends. Two
//     transactions that check or attach the same pool run one after the
//     other, and the second's PoolGovernors, statements of their own after
//     the lock (READ COMMITTED), sees what the first committed: a
//     campaign it started, a pool it attached.
//   - Every method that names a campaign in a write transaction (Campaign,
//     UpdateCampaign, DeleteCampaign, AttachPool, DetachPool) takes the
//     campaign's lock first, held until the transaction ends, so the pools
//     a transaction read of a campaign stay its pools until it commits.
//     Without it, one node could start a campaign whose pools it read
//     while another attached a pool to it (unchecked, the campaign being a
//     Draft then): the new pool would escape the start's check.
//
// A campaign's lock is a transaction-level advisory lock with two keys, the
// schema's hash and the campaign's id (a key space apart from the pools'),
// whatever Options.Locking says. Campaign locks come before every pool lock
// in the order locks are taken (campaignOrderKey): a transaction that holds
// a pool's lock only tries a campaign's, and runs again, taking its locks
// in order, if another transaction holds it (see txn.pool).
//
// Dispatch reads a pool's campaigns under the pool's lock, without a
// campaign's, and their rule with the rule's lock, shared (see LockRule):
// a campaign paused, completed or given another rule by a transaction that
// does not lock the pool applies from the next claim that starts after it
// commits. A claim under a rule then takes the
// campaign's lock too, in CampaignItems, before it reads the contacts'
// items in the campaign's other pools: the rule's caps are the contact's
// across those pools, so their claims run one at a time.

// campaignOrderKey returns the order key of the lock of campaign k: below
// every pool's (pool keys are not negative) and above noLock.
func campaignOrderKey(k int64) int64 { return math.MinInt64 + k }

// campaignLockID returns the second key of the advisory lock of campaign
// k: its id folded into 1 … 2³¹-1 (0 is the schema's migration lock). Two
// campaigns 2³¹-1 ids apart share a lock: they wait for each other,
// nothing worse.
func campaignLockID(k int64) int32 { return int32(k%math.MaxInt32 + 1) }

// ruleCols are the columns scanned by scanRule.
const ruleCols = `r.uuid, r.name, r.type, r.max_calls_per_day, r.max_total_calls, r.retry_interval_minutes,
    r.start_time, r.end_time, r.dnc_check, r.remove_on_opt_out, r.escalation_after, r.escalation_type,
    r.escalation_target, r.created_at, r.updated_at`

// campaignCols are the columns scanned by scanCampaign; the pools are left
// to campaignPoolsCol.
const campaignCols = `c.id, c.uuid, c.name, c.status, (SELECT r.uuid FROM rules r WHERE r.id = c.rule_id),
    c.timezone, c.created_at, c.updated_at`

// campaignPoolsCol is the UUIDs of campaign c's pools in attachment order:
// a walk of campaign_pools_seq.
const campaignPoolsCol = `ARRAY(SELECT p.uuid FROM campaign_pools cp JOIN pools p ON p.id = cp.pool_id
    WHERE cp.campaign_id = c.id ORDER BY cp.seq)`

const (
	insertRuleSQL = `INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls,
    retry_interval_minutes, start_time, end_time, dnc_check, remove_on_opt_out, escalation_after,
    escalation_type, escalation_target, created_at, updated_at, search)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`

	updateRuleSQL = `UPDATE rules SET name = $2, type = $3, max_calls_per_day = $4, max_total_calls = $5,
    retry_interval_minutes = $6, start_time = $7, end_time = $8, dnc_check = $9, remove_on_opt_out = $10,
    escalation_after = $11, escalation_type = $12, escalation_target = $13, updated_at = $14, search = $15
WHERE uuid = $1`

	ruleSQL       = `SELECT ` + ruleCols + ` FROM rules r WHERE r.uuid = $1`
	deleteRuleSQL = `DELETE FROM rules WHERE uuid = $1`
	ruleKeySQL    = `SELECT id FROM rules WHERE uuid = $1`

	insertCampaignSQL = `INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

	updateCampaignSQL = `UPDATE campaigns SET name = $2, status = $3, rule_id = $4, timezone = $5,
    updated_at = $6, search = $7
WHERE id = $1`

	campaignByUUIDSQL = `SELECT ` + campaignCols + `, ` + campaignPoolsCol + ` FROM campaigns c WHERE c.uuid = $1`
	campaignByIDSQL   = `SELECT ` + campaignCols + `, ` + campaignPoolsCol + ` FROM campaigns c WHERE c.id = $1`
	deleteCampaignSQL = `DELETE FROM campaigns WHERE id = $1`
	// poolsOfCampaignSQL finds the pools attached to campaign $1, to lock
	// them: campaign_pools' key.
	poolsOfCampaignSQL = `SELECT p.id, p.uuid FROM campaign_pools cp JOIN pools p ON p.id = cp.pool_id WHERE cp.campaign_id = $1`

	// attachPoolSQL appends a pool to a campaign's: seq after the last,
	// which no other transaction changes meanwhile (the campaign's lock).
	// It governs (see 0012) when the campaign's status is $3 or $4 (In
	// Process, Paused).
	attachPoolSQL = `INSERT INTO campaign_pools (campaign_id, pool_id, seq, governs)
VALUES ($1, $2, (SELECT coalesce(max(seq), 0) + 1 FROM campaign_pools WHERE campaign_id = $1),
    (SELECT status IN ($3, $4) FROM campaigns WHERE id = $1))
ON CONFLICT DO NOTHING`

	// governsSQL marks the attachments of campaign $1 governing or not
	// ($2), as its status is: a seek on campaign_pools' key.
	governsSQL = `UPDATE campaign_pools SET governs = $2 WHERE campaign_id = $1 AND governs <> $2`

	// dropFinishedKeptCallsSQL deletes the calls kept for campaign $1, which
	// is now Completed or Archived: it never dispatches again, so nothing
	// reads them (see store.Tx.UpdateCampaign). A range of
	// kept_calls_contact, the campaign's rows only.
	dropFinishedKeptCallsSQL = `DELETE FROM kept_calls WHERE campaign_id = $1`

	detachPoolSQL = `DELETE FROM campaign_pools WHERE campaign_id = $1 AND pool_id = $2`

	// keepDetachedCallsSQL keeps the calls of pool $2's items for campaign
	// $1, which it leaves (see store.Tx.DetachPool), unless the campaign
	// is $3 or $4 (Completed, Archived: it never reads them); dropKeptCallsSQL
	// drops those of its items when it is attached to the campaign again.
	keepDetachedCallsSQL = `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today, lease_token,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today)
SELECT $1, i.id, i.contact_uuid, i.attempts, i.call_at, i.calls_today,
    CASE WHEN i.status IN ('Processing', 'In_Call') THEN i.token ELSE 0 END, i.prev_call_at, i.prev_calls_today,
    i.older_call_at, i.older_calls_today
FROM campaigns k JOIN items i ON i.pool_id = $2
WHERE k.id = $1 AND k.status NOT IN ($3, $4)
    AND (i.attempts > 0 OR i.calls_today > 0 OR i.prev_calls_today > 0 OR i.older_calls_today > 0)`
	dropKeptCallsSQL = `DELETE FROM kept_calls k USING items i WHERE k.campaign_id = $1 AND i.id = k.item_id AND i.pool_id = $2`

	// rulePoolsSQL is a seek on rules' uuid and campaigns_rule, then on
	// campaign_pools_seq for each governing campaign: no ORDER BY, whose
	// index the planner would walk across every campaign. The rule's
	// campaigns are a lateral subquery of the rule's row that OFFSET 0
	// keeps apart: joined, with the statistics of a few campaigns most of
	// them under one rule, the plan walked every campaign and looked up
	// its rule.
	// Of each pool, the first entry of items_lease says whether it holds
	// a lease ended at $4.
	rulePoolsSQL = `SELECT p.uuid FROM rules r
    CROSS JOIN LATERAL (SELECT c.id FROM campaigns c WHERE c.rule_id = r.id AND c.status IN ($2, $3) OFFSET 0) c
    JOIN campaign_pools cp ON cp.campaign_id = c.id JOIN pools p ON p.id = cp.pool_id
WHERE r.uuid = $1 AND EXISTS (SELECT 1 FROM items i
    WHERE i.pool_id = cp.pool_id AND i.status IN ('Processing', 'In_Call') AND i.lease_expires_at <= $4)`

	// poolCampaignsSQL is a seek on campaign_pools_pool: nothing to read
	// for a pool attached to no campaign. No ORDER BY: with one, the
	// planner walked campaigns_created (the order's index) across every
	// campaign of the store and kept the pool's; scanPoolCampaigns sorts
	// the few rows instead.
	poolCampaignsSQL = `SELECT ` + campaignCols + ` FROM campaign_pools cp JOIN campaigns c ON c.id = cp.campaign_id
WHERE cp.pool_id = $1`

	// governorsOfPoolSQL reads the governing attachments of a pool by its
	// UUID, a seek on campaign_pools_governs (0012), and attachedSQL
	// whether it has any, the first entry of campaign_pools_pool: neither
	// grows with the campaigns that are done with the pool. A write
	// transaction reads them with the pool's lock, in the same round trip.
	// The pool's id is found first (an InitPlan): joined to pools, with
	// the statistics of a few governing attachments the plan walked them
	// all and filtered their pools by UUID.
	governorsOfPoolSQL = `SELECT ` + campaignCols + ` FROM campaign_pools cp JOIN campaigns c ON c.id = cp.campaign_id
WHERE cp.pool_id = (SELECT id FROM pools WHERE uuid = $1) AND cp.governs`
	attachedSQL = `SELECT EXISTS (SELECT 1 FROM campaign_pools cp WHERE cp.pool_id = (SELECT id FROM pools WHERE uuid = $1))`
)

// InsertRule stores a new rule. O(log n).
func (t *txn) InsertRule(ctx context.Context, r campaign.Rule) error {
	const op = "insert rule"
	if err := t.writable(op); err != nil {
		return err
	}
	created, err := nanos(r.CreatedAt)
	if err != nil {
		return wrap(op, err)
	}
	updated, err := nanos(r.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	args := append([]any{r.UUID}, ruleSettings(r)...)
	_, err = t.exec(ctx, insertRuleSQL, append(args, created, updated, ruleSearchText(r))...)
	return wrap(op, err)
}

// ruleSettings returns the settings of r, name to escalation_target, in
// the order of the columns of insertRuleSQL and updateRuleSQL.
func ruleSettings(r campaign.Rule) []any {
	var end *int32
	if r.EndTime != nil {
		e := int32(*r.EndTime)
		end = &e
	}
	return []any{r.Name, string(r.Type), int64(r.MaxCallsPerDay), int64(r.MaxTotalCalls), r.RetryIntervalMinutes,
		int32(r.StartTime), end, r.DNCCheck, r.RemoveOnOptOut, r.EscalationAfterFailedAttempts,
		r.EscalationType, r.EscalationTarget}
}

// ruleSearchText is what a rule search looks in: name, escalation type and
// target, case-folded.
func ruleSearchText(r campaign.Rule) string {
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	return foldCase(r.Name + "\n" + deref(r.EscalationType) + "\n" + deref(r.EscalationTarget))
}

// Rule returns one rule. O(log n). In a write transaction it holds the
// rule's lock, shared (see LockRule), from before it reads the rule, in
// the same round trip.
func (t *txn) Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error) {
	const op = "rule"
	if !t.readOnly {
		var r campaign.Rule
		done, err := t.lockRule(ctx, id, true, &behind{sql: ruleSQL, args: []any{id}, read: func(br pgx.BatchResults) error {
			var err error
			r, err = scanRule(br.QueryRow())
			return err
		}}, op)
		if err != nil {
			return campaign.Rule{}, err
		}
		if done {
			return r, nil
		}
	}
	r, err := scanRule(t.tx.QueryRow(ctx, ruleSQL, id))
	t.noteErr(err)
	if err != nil {
		return campaign.Rule{}, wrap(fmt.Sprintf("%s %s", op, id), err)
	}
	return r, nil
}

// UpdateRule stores the settings of r. O(log n).
func (t *txn) UpdateRule(ctx context.Context, r campaign.Rule) error {
	const op = "update rule"
	if err := t.writable(op); err != nil {
		return err
	}
	updated, err := nanos(r.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	args := append([]any{r.UUID}, ruleSettings(r)...)
	tag, err := t.exec(ctx, updateRuleSQL, append(args, updated, ruleSearchText(r))...)
	return wrap(fmt.Sprintf("%s %s", op, r.UUID), affected(tag.RowsAffected(), err))
}

// DeleteRule removes a rule. O(log n). A campaign that another transaction
// gave the rule meanwhile makes it fail with an error wrapping
// [campaign.ErrConflict] (the foreign key of campaigns.rule_id).
func (t *txn) DeleteRule(ctx context.Context, id uuid.UUID) error {
	op := fmt.Sprintf("delete rule %s", id)
	if err := t.writable(op); err != nil {
		return err
	}
	tag, err := t.exec(ctx, deleteRuleSQL, id)
	if foreignKeyViolation(err) {
		return fmt.Errorf("postgres: %s: a campaign uses it: %w (%w)", op, campaign.ErrConflict, err)
	}
	return wrap(op, affected(tag.RowsAffected(), err))
}

// affected turns a statement that touched no row into [store.ErrNotFound].
func affected(n int64, err error) error {
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// rulesSQL returns the statements of Rules for q and their arguments: the
// number of matches, and a page of them (two more arguments: LIMIT and
// OFFSET), a walk of rules_created.
func rulesSQL(q campaign.RuleQuery) (count, page string, args []any) {
	var where []string
	if q.Type != "" {
		args = append(args, string(q.Type))
		where = append(where, fmt.Sprintf("r.type = $%d", len(args)))
	}
	if q.Search != "" {
		args = append(args, foldCase(q.Search))
		where = append(where, fmt.Sprintf("strpos(r.search, $%d) > 0", len(args)))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	n := len(args)
	return `SELECT count(*) FROM rules r` + cond,
		`SELECT ` + ruleCols + ` FROM rules r` + cond +
			fmt.Sprintf(` ORDER BY r.created_at, r.uuid LIMIT $%d OFFSET $%d`, n+1, n+2), args
}

// Rules returns one page of rules and their number. The page costs
// O(log n + offset + per_page) without a filter; a filter or search reads
// every rule.
func (t *txn) Rules(ctx context.Context, q campaign.RuleQuery) ([]campaign.Rule, int, error) {
	const op = "rules"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("postgres: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	count, page, args := rulesSQL(q)
	var total int
	if err := t.queryRow(ctx, []any{&total}, count, args...); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.query(ctx, page, append(args, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	defer rows.Close()
	out := make([]campaign.Rule, 0, q.PerPage)
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, 0, wrap(op, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.noteErr(err)
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}

func scanRule(s pgx.Row) (campaign.Rule, error) {
	var (
		r                   campaign.Rule
		typ                 string
		start               int32
		end                 *int32
		created, updated    int64
		retry, escalation   *int
		escType, escTarget  *string
		dnc, removeOnOptOut bool
	)
	// The ints are scanned into the Rule's own: pgx refuses a value that
	// an int cannot hold (beyond 2^31 on 32-bit systems), where a
	// conversion from an int64 would wrap it round.
	err := s.Scan(&r.UUID, &r.Name, &typ, &r.MaxCallsPerDay, &r.MaxTotalCalls, &retry, &start, &end,
		&dnc, &removeOnOptOut, &escalation, &escType, &escTarget, &created, &updated)
	if err != nil {
		return campaign.Rule{}, err
	}
	r.Type = campaign.RuleType(typ)
	r.RetryIntervalMinutes = retry
	r.StartTime = campaign.Clock(start)
	if end != nil {
		c := campaign.Clock(*end)
		r.EndTime = &c
	}
	r.DNCCheck, r.RemoveOnOptOut = dnc, removeOnOptOut
	r.EscalationAfterFailedAttempts = escalation
	r.EscalationType, r.EscalationTarget = escType, escTarget
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	return r, nil
}

// ruleOrderBase places the rules' locks in the order locks are taken:
// above every campaign's (campaignOrderKey, ids below 2^62) and below
// every pool's (not negative).
const ruleOrderBase = math.MinInt64 / 2

// ruleOrderKey returns the order key of the lock of rule k.
func ruleOrderKey(k int64) int64 { return ruleOrderBase + k }

// ruleLockID returns the second key of the advisory lock of rule k: its id
// folded into -2^31+1 … -2, apart from the campaigns' (positive), the
// schema's migration lock (0) and the escalation lock (-1). Two rules that
// share a lock wait for each other, nothing worse.
func ruleLockID(k int64) int32 { return int32(-(k % (math.MaxInt32 - 1)) - 2) }

// lockRuleSQL takes rule $1's lock, exclusive, waited for when its order
// key is above $2 (the largest the transaction holds), only tried
// otherwise (see lockCampaignSQL); $3 is ruleOrderBase, $4 the schema's
// lock namespace. lockRuleSharedSQL takes it shared.
var (
	lockRuleSQL = `SELECT r.id, CASE WHEN r.id + $3::bigint > $2::bigint
        THEN (SELECT true FROM pg_advisory_xact_lock($4::int, (-(r.id % 2147483646) - 2)::int))
        ELSE pg_try_advisory_xact_lock($4::int, (-(r.id % 2147483646) - 2)::int) END, ` + guardCol + `
FROM rules r WHERE r.uuid = $1`
	lockRuleSharedSQL = `SELECT r.id, CASE WHEN r.id + $3::bigint > $2::bigint
        THEN (SELECT true FROM pg_advisory_xact_lock_shared($4::int, (-(r.id % 2147483646) - 2)::int))
        ELSE pg_try_advisory_xact_lock_shared($4::int, (-(r.id % 2147483646) - 2)::int) END, ` + guardCol + `
FROM rules r WHERE r.uuid = $1`
)

// LockRule takes rule id's lock, exclusive, until the transaction ends:
// an advisory lock in the order locks are taken, after the campaigns' and
// before the pools' (see the package doc). Every other write transaction
// that reads the rule holds it shared (Rule), so that an UpdateRule, which
// takes it exclusive before it reads the rule, waits for every decision
// under the rule's old values under way, on any node, and every later one
// reads the new values: the engine's claims, settlements and expiries.
// Like a campaign's, a rule's lock below one the transaction holds (or
// held shared by this one) is only tried, and when another transaction
// holds it, the transaction runs again, taking its locks in order.
func (t *txn) LockRule(ctx context.Context, id uuid.UUID) error {
	const op = "lock rule"
	if err := t.writable(op); err != nil {
		return err
	}
	_, err := t.lockRule(ctx, id, false, nil, op)
	return err
}

// lockRule takes rule id's lock, shared or not, unless this transaction
// holds it already (shared, when shared is asked), with x, a read, behind
// the lock statement in the same round trip (see lockCampaignBehind): done
// says whether x ran with the lock taken. op names the operation in errors.
func (t *txn) lockRule(ctx context.Context, id uuid.UUID, shared bool, x *behind, op string) (done bool, err error) {
	if l, ok := t.rlocks[id]; ok && (shared || !l.shared) {
		return false, nil
	}
	if t.retry != nil {
		return false, t.retry
	}
	start, prevMax := time.Now(), t.maxKey
	lockSQL := lockRuleSQL
	if shared {
		lockSQL = lockRuleSharedSQL
	}
	k, ok, err := t.sendLock(ctx, x, lockSQL, id, t.maxKey, int64(ruleOrderBase), int32(t.s.lockNS))
	if err != nil {
		if err = translate(err); errors.Is(err, store.ErrNotFound) {
			return false, fmt.Errorf("postgres: %s: rule %s: %w", op, id, err)
		}
		return false, wrap(op, err)
	}
	l := lockedPool{id: id, k: k, rule: true, shared: shared}
	if !ok {
		t.restart = true
		t.retry = errRestart
		t.wanted = append(t.wanted, l)
		return false, errRestart
	}
	if t.rlocks == nil {
		t.rlocks = make(map[uuid.UUID]lockedPool, 1)
	}
	t.rlocks[id] = l
	t.maxKey = max(t.maxKey, ruleOrderKey(k))
	if t.waitedAfterLock(start, prevMax, l) {
		return false, errRestart
	}
	return x != nil, nil
}

// campaignRule returns the internal id of c's rule, nil (NULL) for none,
// or ErrNotFound naming the rule.
func (t *txn) campaignRule(ctx context.Context, c campaign.Campaign) (*int64, error) {
	if c.RuleUUID == nil {
		return nil, nil
	}
	var k int64
	if err := t.queryRow(ctx, []any{&k}, ruleKeySQL, *c.RuleUUID); err != nil {
		if err = translate(err); errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("rule %s: %w", *c.RuleUUID, err)
		}
		return nil, err
	}
	return &k, nil
}

// ruleGone translates the error of a statement that gave a campaign a rule
// that another transaction deleted meanwhile (the foreign key):
// [store.ErrNotFound], as an unknown rule.
func ruleGone(c campaign.Campaign, err error) error {
	if foreignKeyViolation(err) {
		return fmt.Errorf("rule %s: %w (%w)", *c.RuleUUID, store.ErrNotFound, err)
	}
	return err
}

// lockCampaignSQL finds a campaign and takes its lock: waited for when
// its order key is above the largest held ($2), only tried when not.
// $3 is math.MinInt64 (see campaignOrderKey), $4 the schema's hash;
// the second key is campaignLockID's.
// And it reads the schema guard (guardCol), as a pool's lock does.
var lockCampaignSQL = `SELECT c.id, CASE WHEN c.id + $3::bigint > $2::bigint
        THEN (SELECT true FROM pg_advisory_xact_lock($4::int, (c.id % 2147483647 + 1)::int))
        ELSE pg_try_advisory_xact_lock($4::int, (c.id % 2147483647 + 1)::int) END, ` + guardCol + `
FROM campaigns c WHERE c.uuid = $1`

// lockCampaign takes, in a write transaction, the lock of campaign id if
// this transaction does not hold it yet (see the comment at the top of this
// file), and returns its internal id, or [store.ErrNotFound]. Like
// txn.pool, a lock below one held is only tried; when another transaction
// holds it the transaction is marked to run again, taking its locks in
// order.
func (t *txn) lockCampaign(ctx context.Context, id uuid.UUID) (int64, error) {
	k, _, err := t.lockCampaignBehind(ctx, id, nil)
	return k, err
}

// sendLock runs sql, a lock statement whose row is the locked object's
// internal id, whether the lock was taken, and the schema guard
// (guardCol), with x, a read, behind it in the same round trip; x.read
// runs only when the statement succeeded.
func (t *txn) sendLock(ctx context.Context, x *behind, sql string, args ...any) (k int64, ok bool, err error) {
	var guard int
	t.boundLockWait(ctx)
	b := &pgx.Batch{}
	b.Queue(sql, args...)
	if x != nil {
		b.Queue(x.sql, x.args...)
	}
	br := t.tx.SendBatch(ctx, b)
	err = br.QueryRow().Scan(&k, &ok, &guard)
	if err == nil && x != nil {
		err = x.read(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.noteErr(err)
	}
	return k, ok, err
}

// lockCampaignBehind is lockCampaign, with x, a read, sent behind the lock
// statement in the same round trip when the lock is not held yet. done says
// whether x ran, and its results were read, with the lock taken; when it
// did not (the lock was held already, or an error), x is the caller's to
// run. The server runs x after the lock statement has taken the lock, in a
// snapshot of its own (READ COMMITTED), so x reads what the lock's earlier
// holders committed; when the lock was only tried and not taken, x's
// results are dropped with the transaction, which runs again.
func (t *txn) lockCampaignBehind(ctx context.Context, id uuid.UUID, x *behind) (k int64, done bool, err error) {
	if k, ok := t.clocks[id]; ok {
		return k, false, nil
	}
	if t.retry != nil {
		return 0, false, t.retry
	}
	start, prevMax := time.Now(), t.maxKey
	k, ok, err := t.sendLock(ctx, x, lockCampaignSQL, id, t.maxKey, int64(math.MinInt64), int32(t.s.lockNS))
	if err != nil {
		return 0, false, notFoundCampaign(id, err)
	}
	if !ok {
		t.restart = true
		t.retry = errRestart
		t.wanted = append(t.wanted, lockedPool{id: id, k: k, campaign: true})
		return 0, false, errRestart
	}
	if t.clocks == nil {
		t.clocks = make(map[uuid.UUID]int64, 1)
	}
	t.clocks[id] = k
	t.maxKey = max(t.maxKey, campaignOrderKey(k))
	if t.waitedAfterLock(start, prevMax, lockedPool{id: id, k: k, campaign: true}) {
		return 0, false, errRestart
	}
	return k, x != nil, nil
}

// notFoundCampaign names the campaign in a not-found error.
func notFoundCampaign(id uuid.UUID, err error) error {
	if err = translate(err); err == store.ErrNotFound {
		return fmt.Errorf("campaign %s: %w", id, err)
	}
	return err
}

// InsertCampaign stores a new campaign. O(log n). The new campaign is seen
// by no other transaction until this one commits, so it is not locked.
func (t *txn) InsertCampaign(ctx context.Context, c campaign.Campaign) error {
	defer t.forgetCampaigns() // after the write: a pool locked in it reads the campaigns before it
	const op = "insert campaign"
	if err := t.writable(op); err != nil {
		return err
	}
	rule, err := t.campaignRule(ctx, c)
	if err != nil {
		return wrap(op, err)
	}
	created, err := nanos(c.CreatedAt)
	if err != nil {
		return wrap(op, err)
	}
	updated, err := nanos(c.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	_, err = t.exec(ctx, insertCampaignSQL, c.UUID, c.Name, string(c.Status), rule, c.TimeZone,
		created, updated, foldCase(c.Name))
	return wrap(op, ruleGone(c, err))
}

// Campaign returns one campaign with its pools, locking it in a write
// transaction. O(log n + its pools).
func (t *txn) Campaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	op := fmt.Sprintf("campaign %s", id)
	row := func() pgx.Row { return t.tx.QueryRow(ctx, campaignByUUIDSQL, id) }
	if !t.readOnly {
		k, err := t.lockCampaign(ctx, id)
		if err != nil {
			return campaign.Campaign{}, wrap(op, err)
		}
		// Read after the lock, by the id locked.
		row = func() pgx.Row { return t.tx.QueryRow(ctx, campaignByIDSQL, k) }
	}
	var c campaign.Campaign
	_, err := scanCampaign(row(), &c, &c.PoolUUIDs)
	t.noteErr(err)
	if err != nil {
		return campaign.Campaign{}, wrap(op, err)
	}
	return c, nil
}

// UpdateCampaign stores c's settings, locking it; written Completed or
// Archived, it deletes the calls kept for c. O(log n), plus O(k) for its k
// kept calls.
func (t *txn) UpdateCampaign(ctx context.Context, c campaign.Campaign) error {
	defer t.forgetCampaigns() // after the write: a pool locked in it reads the campaigns before it
	op := fmt.Sprintf("update campaign %s", c.UUID)
	if err := t.writable(op); err != nil {
		return err
	}
	k, err := t.lockCampaign(ctx, c.UUID)
	if err != nil {
		return wrap(op, err)
	}
	rule, err := t.campaignRule(ctx, c)
	if err != nil {
		return wrap(op, err)
	}
	updated, err := nanos(c.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	tag, err := t.exec(ctx, updateCampaignSQL, k, c.Name, string(c.Status), rule, c.TimeZone, updated, foldCase(c.Name))
	if err = affected(tag.RowsAffected(), ruleGone(c, err)); err != nil {
		return wrap(op, err)
	}
	if err := t.deferExec(ctx, governsSQL, k, c.Status.Governs()); err != nil || !c.Status.Finished() {
		return wrap(op, err)
	}
	return wrap(op, t.deferExec(ctx, dropFinishedKeptCallsSQL, k))
}

// DeleteCampaign removes a campaign, locking it, then its pools (in the
// order of their keys); its attachments go with it. The pools' locks order
// it with a transaction that keeps the calls of a pool's items for the
// pool's campaigns (KeepCalls, before items or a pool are deleted): that
// one reads the campaign's attachment under the pool's lock, and without
// it could keep calls for a campaign deleted before it commits, which the
// foreign key refuses.
func (t *txn) DeleteCampaign(ctx context.Context, id uuid.UUID) error {
	defer t.forgetCampaigns() // after the write: a pool locked in it reads the campaigns before it
	op := fmt.Sprintf("delete campaign %s", id)
	if err := t.writable(op); err != nil {
		return err
	}
	k, err := t.lockCampaign(ctx, id)
	if err != nil {
		return wrap(op, err)
	}
	if err := t.lockPoolsFound(ctx, poolsOfCampaignSQL, k); err != nil {
		return wrap(op, err)
	}
	tag, err := t.exec(ctx, deleteCampaignSQL, k)
	return wrap(op, affected(tag.RowsAffected(), err))
}

// campaignsSQL returns the statements of Campaigns for q and their
// arguments: the number of matches, and a page of them (two more
// arguments: LIMIT and OFFSET). A page walks campaigns_created (the store's
// connections do not sort); the campaigns of a status are a seek on
// campaigns_status, those of a rule (and no status) on campaigns_rule,
// both in the page's order (0014), counted in the same index.
//
// The filter that leads is written "= ANY (ARRAY[…])" and its column
// leads the ORDER BY, so that its index is the one walk that needs no
// sort. Written "=", the column would be a constant of the plan and drop
// out of the ORDER BY, and campaigns_created, filtered, would serve the
// order too: the generic plan, which takes any status or rule for half
// the campaigns when there are two, weighed the two walks within 0.5% of
// each other, and a few dead rows could tip it to the walk of every
// campaign.
func campaignsSQL(q campaign.Query) (count, page string, args []any) {
	var where []string
	order := "c.created_at, c.uuid"
	if q.Status != "" {
		args = append(args, string(q.Status))
		where = append(where, fmt.Sprintf("c.status = ANY (ARRAY[$%d::text])", len(args)))
		order = "c.status, " + order
	}
	if q.Search != "" {
		args = append(args, foldCase(q.Search))
		where = append(where, fmt.Sprintf("strpos(c.search, $%d) > 0", len(args)))
	}
	if q.RuleUUID != nil {
		args = append(args, *q.RuleUUID)
		rule := fmt.Sprintf("(SELECT id FROM rules WHERE uuid = $%d)", len(args))
		if q.Status == "" {
			where = append(where, "c.rule_id = ANY (ARRAY["+rule+"])")
			order = "c.rule_id, " + order
		} else {
			where = append(where, "c.rule_id = "+rule)
		}
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	n := len(args)
	return `SELECT count(*) FROM campaigns c` + cond,
		`SELECT ` + campaignCols + `, ` + campaignPoolsCol + ` FROM campaigns c` + cond +
			fmt.Sprintf(` ORDER BY %s LIMIT $%d OFFSET $%d`, order, n+1, n+2), args
}

// Campaigns returns one page of campaigns with their pools, and their
// number. The page costs O(log n + offset + per_page) plus the pools
// without a filter or filtered by status or rule (a search beside them
// reads the campaigns of the status or rule), and the number O(log n + m)
// for m matches; a search alone reads every campaign.
func (t *txn) Campaigns(ctx context.Context, q campaign.Query) ([]campaign.Campaign, int, error) {
	const op = "campaigns"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("postgres: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	count, page, args := campaignsSQL(q)
	var total int
	if err := t.queryRow(ctx, []any{&total}, count, args...); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.query(ctx, page, append(args, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out, err := t.scanCampaigns(rows, q.PerPage, true)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	return out, total, nil
}

// AttachPool attaches a pool to a campaign, after its other pools, locking
// both, and drops the calls kept of its items for the campaign. O(log n +
// k) for k calls kept for the campaign.
func (t *txn) AttachPool(ctx context.Context, id, poolID uuid.UUID) (bool, error) {
	defer t.forgetCampaigns() // after the write: a pool locked in it reads the campaigns before it
	const op = "attach pool"
	if err := t.writable(op); err != nil {
		return false, err
	}
	ck, pk, err := t.campaignAndPool(ctx, id, poolID)
	if err != nil {
		return false, wrap(op, err)
	}
	tag, err := t.exec(ctx, attachPoolSQL, ck, pk, string(campaign.InProcess), string(campaign.Paused))
	if err != nil {
		return false, wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	// Its items count as items again.
	return true, wrap(op, t.deferExec(ctx, dropKeptCallsSQL, ck, pk))
}

// DetachPool detaches a pool from a campaign, locking both, and keeps the
// calls of its items for the campaign. O(m log n) for the pool's m items.
func (t *txn) DetachPool(ctx context.Context, id, poolID uuid.UUID) (bool, error) {
	defer t.forgetCampaigns() // after the write: a pool locked in it reads the campaigns before it
	const op = "detach pool"
	if err := t.writable(op); err != nil {
		return false, err
	}
	ck, pk, err := t.campaignAndPool(ctx, id, poolID)
	if err != nil {
		return false, wrap(op, err)
	}
	tag, err := t.exec(ctx, detachPoolSQL, ck, pk)
	if err != nil {
		return false, wrap(op, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil
	}
	// Its items' calls still count in the campaign.
	return true, wrap(op, t.deferExec(ctx, keepDetachedCallsSQL, ck, pk, string(campaign.Completed), string(campaign.Archived)))
}

// campaignAndPool locks a campaign, then a pool (in the order of their
// locks), and returns their internal ids.
func (t *txn) campaignAndPool(ctx context.Context, id, poolID uuid.UUID) (int64, int64, error) {
	ck, err := t.lockCampaign(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	pk, err := t.key(ctx, poolID)
	if err != nil {
		return 0, 0, err
	}
	return ck, pk, nil
}

// RulePools returns the pools of the campaigns rule governs (see
// store.Tx.RulePools). It fails with an error wrapping ErrClockSkew while
// this process's clock is further than MaxClockSkew from the server's:
// it judges which leases ended.
func (t *txn) RulePools(ctx context.Context, rule uuid.UUID, endedBy time.Time) ([]uuid.UUID, error) {
	const op = "rule pools"
	if err := t.s.watch.err(); err != nil {
		return nil, wrap(op, err) // this clock would judge which leases ended
	}
	at, err := nanos(endedBy)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, rulePoolsSQL, rule, string(campaign.InProcess), string(campaign.Paused), at)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			t.noteErr(err)
			return nil, wrap(op, err)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	err = rows.Err()
	t.noteErr(err)
	return out, wrap(op, err)
}

// PoolCampaigns returns the campaigns a pool is attached to, without their
// pools: a seek on campaign_pools_pool. In a write transaction it takes
// the pool's lock first, not the campaigns'.
func (t *txn) PoolCampaigns(ctx context.Context, poolID uuid.UUID) ([]campaign.Campaign, error) {
	const op = "pool campaigns"
	if !t.readOnly {
		if _, err := t.pool(ctx, poolID); err != nil {
			return nil, wrap(op, err)
		}
	}
	k, err := t.key(ctx, poolID)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, poolCampaignsSQL, k)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, err := t.scanPoolCampaigns(rows)
	return out, wrap(op, err)
}

// PoolGovernors returns the campaigns that govern a pool and whether it is
// attached to any (see governorsOfPoolSQL). In a write transaction it
// takes the pool's lock first (the engine's check of a pool's governing
// campaign relies on it), which reads them in the same round trip.
func (t *txn) PoolGovernors(ctx context.Context, poolID uuid.UUID) ([]campaign.Campaign, bool, error) {
	const op = "pool governors"
	if !t.readOnly {
		st, err := t.pool(ctx, poolID)
		if err != nil {
			return nil, false, wrap(op, err)
		}
		if st.hasGovernors {
			return slices.Clone(st.governors), st.attached, nil
		}
	} else if _, err := t.key(ctx, poolID); err != nil { // ErrNotFound for an unknown pool
		return nil, false, wrap(op, err)
	}
	b := &pgx.Batch{}
	b.Queue(attachedSQL, poolID)
	b.Queue(governorsOfPoolSQL, poolID)
	br := t.tx.SendBatch(ctx, b)
	gov, attached, err := t.readGovernors(br)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	t.noteErr(err)
	return gov, attached, wrap(op, err)
}

// readGovernors reads the results of attachedSQL and governorsOfPoolSQL,
// in this order, from br.
func (t *txn) readGovernors(br pgx.BatchResults) ([]campaign.Campaign, bool, error) {
	var attached bool
	if err := br.QueryRow().Scan(&attached); err != nil {
		return nil, false, err
	}
	rows, err := br.Query()
	if err != nil {
		return nil, false, err
	}
	gov, err := t.scanPoolCampaigns(rows)
	return gov, attached, err
}

// scanPoolCampaigns scans and closes rows of poolCampaignsSQL or
// governorsOfPoolSQL, and orders them by CreatedAt then UUID (as ORDER BY
// c.created_at, c.uuid would: PostgreSQL compares UUIDs byte by byte).
func (t *txn) scanPoolCampaigns(rows pgx.Rows) ([]campaign.Campaign, error) {
	out, err := t.scanCampaigns(rows, 1, false)
	slices.SortFunc(out, func(a, b campaign.Campaign) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.UUID[:], b.UUID[:])
	})
	return out, err
}

// forgetCampaigns drops the governing campaigns read with the pools'
// locks: the transaction wrote campaigns or their pools.
func (t *txn) forgetCampaigns() {
	for _, st := range t.states {
		st.governors, st.attached, st.hasGovernors = nil, false, false
	}
}

// scanCampaigns scans and closes rows of campaignCols, followed by
// campaignPoolsCol when withPools.
func (t *txn) scanCampaigns(rows pgx.Rows, capHint int, withPools bool) ([]campaign.Campaign, error) {
	defer rows.Close()
	out := make([]campaign.Campaign, 0, capHint)
	for rows.Next() {
		var c campaign.Campaign
		var err error
		if withPools {
			_, err = scanCampaign(rows, &c, &c.PoolUUIDs)
		} else {
			_, err = scanCampaign(rows, &c)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	err := rows.Err()
	t.noteErr(err)
	return out, err
}

// scanCampaign scans the columns of campaignCols into c, then extra, and
// returns the campaign's internal id.
func scanCampaign(s pgx.Row, c *campaign.Campaign, extra ...any) (int64, error) {
	var (
		k                int64
		status           string
		rule             *uuid.UUID
		created, updated int64
	)
	dest := append([]any{&k, &c.UUID, &c.Name, &status, &rule, &c.TimeZone, &created, &updated}, extra...)
	if err := s.Scan(dest...); err != nil {
		return 0, err
	}
	c.Status = campaign.Status(status)
	c.RuleUUID = rule
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return k, nil
}
