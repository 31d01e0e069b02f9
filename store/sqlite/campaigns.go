package sqlite

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// ruleCols are the columns scanned by scanRule.
const ruleCols = `r.uuid, r.name, r.type, r.max_calls_per_day, r.max_total_calls, r.retry_interval_minutes,
    r.start_time, r.end_time, r.dnc_check, r.remove_on_opt_out, r.escalation_after, r.escalation_type,
    r.escalation_target, r.created_at, r.updated_at`

// campaignCols are the columns scanned by scanCampaign.
const campaignCols = `c.id, c.uuid, c.name, c.status, (SELECT r.uuid FROM rules r WHERE r.id = c.rule_id),
    c.timezone, c.created_at, c.updated_at`

const (
	insertRuleSQL = `INSERT INTO rules (uuid, name, type, max_calls_per_day, max_total_calls,
    retry_interval_minutes, start_time, end_time, dnc_check, remove_on_opt_out, escalation_after,
    escalation_type, escalation_target, created_at, updated_at, search)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	updateRuleSQL = `UPDATE rules SET name = ?, type = ?, max_calls_per_day = ?, max_total_calls = ?,
    retry_interval_minutes = ?, start_time = ?, end_time = ?, dnc_check = ?, remove_on_opt_out = ?,
    escalation_after = ?, escalation_type = ?, escalation_target = ?, updated_at = ?, search = ?
WHERE uuid = ?`

	ruleSQL       = `SELECT ` + ruleCols + ` FROM rules r WHERE r.uuid = ?`
	deleteRuleSQL = `DELETE FROM rules WHERE uuid = ?`
	ruleKeySQL    = `SELECT id FROM rules WHERE uuid = ?`

	insertCampaignSQL = `INSERT INTO campaigns (uuid, name, status, rule_id, timezone, created_at, updated_at, search)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

	updateCampaignSQL = `UPDATE campaigns SET name = ?, status = ?, rule_id = ?, timezone = ?, updated_at = ?, search = ?
WHERE uuid = ?`

	campaignSQL       = `SELECT ` + campaignCols + ` FROM campaigns c WHERE c.uuid = ?`
	deleteCampaignSQL = `DELETE FROM campaigns WHERE uuid = ?`
	campaignKeySQL    = `SELECT id FROM campaigns WHERE uuid = ?`

	// campaignPoolsSQL lists the pools of a campaign in attachment order.
	campaignPoolsSQL = `SELECT p.uuid FROM campaign_pools cp JOIN pools p ON p.id = cp.pool_id
WHERE cp.campaign_id = ? ORDER BY cp.seq`

	// attachPoolSQL attaches pool ?2 to campaign ?1, governing (see 0012)
	// when the campaign's status is ?3 or ?4 (In Process, Paused).
	attachPoolSQL = `INSERT INTO campaign_pools (campaign_id, pool_id, seq, governs)
VALUES (?1, ?2, (SELECT coalesce(max(seq), 0) + 1 FROM campaign_pools WHERE campaign_id = ?1),
    (SELECT status IN (?3, ?4) FROM campaigns WHERE id = ?1))
ON CONFLICT DO NOTHING`

	// governsSQL marks the attachments of campaign ?2 governing or not
	// (?1), as its status is: a seek on the primary key.
	governsSQL = `UPDATE campaign_pools SET governs = ?1 WHERE campaign_id = (SELECT id FROM campaigns WHERE uuid = ?2) AND governs <> ?1`

	// dropFinishedKeptCallsSQL deletes the calls kept for campaign ?, which
	// is now Completed or Archived: it never dispatches again, so nothing
	// reads them (see store.Tx.UpdateCampaign). A range of
	// kept_calls_contact, the campaign's rows only.
	dropFinishedKeptCallsSQL = `DELETE FROM kept_calls WHERE campaign_id = (SELECT id FROM campaigns WHERE uuid = ?)`

	detachPoolSQL = `DELETE FROM campaign_pools WHERE campaign_id = ? AND pool_id = ?`

	// keepDetachedCallsSQL keeps the calls of pool ?2's items for campaign
	// ?1, which it leaves (see store.Tx.DetachPool), unless the campaign
	// is ?3 or ?4 (Completed, Archived: it never reads them); dropKeptCallsSQL
	// drops those of its items when it is attached to the campaign again.
	keepDetachedCallsSQL = `INSERT INTO kept_calls (campaign_id, item_id, contact_uuid, attempts, call_at, calls_today, lease_token,
    prev_call_at, prev_calls_today, older_call_at, older_calls_today)
SELECT ?1, i.id, i.contact_uuid, i.attempts, i.call_at, i.calls_today,
    CASE WHEN i.status IN ('Processing', 'In_Call') THEN i.token ELSE 0 END, i.prev_call_at, i.prev_calls_today,
    i.older_call_at, i.older_calls_today
FROM campaigns k JOIN items i ON i.pool_id = ?2
WHERE k.id = ?1 AND k.status NOT IN (?3, ?4)
    AND (i.attempts > 0 OR i.calls_today > 0 OR i.prev_calls_today > 0 OR i.older_calls_today > 0)`
	dropKeptCallsSQL = `DELETE FROM kept_calls WHERE campaign_id = ?1
    AND item_id IN (SELECT i.id FROM kept_calls k JOIN items i ON i.id = k.item_id WHERE k.campaign_id = ?1 AND i.pool_id = ?2)`

	// rulePoolsSQL is a seek on campaigns_rule, then on campaign_pools_seq
	// for each governing campaign. CROSS JOIN and INDEXED BY: once the
	// file has statistics (ANALYZE, PRAGMA optimize) of a rule that has
	// most of the campaigns, SQLite otherwise walks every pool and reads
	// each one's attachments and campaigns, whatever the rule's few.
	// Of each pool, the first entry of items_lease says whether it holds
	// a lease ended at ?4.
	rulePoolsSQL = `SELECT p.uuid FROM campaigns c INDEXED BY campaigns_rule CROSS JOIN campaign_pools cp CROSS JOIN pools p
WHERE c.rule_id = (SELECT id FROM rules WHERE uuid = ?1) AND c.status IN (?2, ?3)
    AND cp.campaign_id = c.id AND p.id = cp.pool_id
    AND EXISTS (SELECT 1 FROM items i WHERE i.pool_id = p.id AND i.status IN ('Processing', 'In_Call') AND i.lease_expires_at <= ?4)`

	// poolCampaignsSQL is a seek on campaign_pools_pool: nothing to read
	// for a pool attached to no campaign.
	poolCampaignsSQL = `SELECT ` + campaignCols + ` FROM campaign_pools cp JOIN campaigns c ON c.id = cp.campaign_id
WHERE cp.pool_id = ? ORDER BY c.created_at, c.uuid`

	// poolGovernorsSQL reads the governing attachments of a pool, a seek
	// on campaign_pools_governs (0012), and whether it has any attachment,
	// the first entry of campaign_pools_pool: neither grows with the
	// campaigns that are done with it. PoolGovernors orders the rows (one
	// at most, but for a bug).
	poolGovernorsSQL = `SELECT ` + campaignCols + ` FROM campaign_pools cp JOIN campaigns c ON c.id = cp.campaign_id
WHERE cp.pool_id = ?1 AND cp.governs = 1`
	poolAttachedSQL = `SELECT EXISTS (SELECT 1 FROM campaign_pools WHERE pool_id = ?)`
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
	args := append([]any{blob(r.UUID)}, ruleSettings(r)...)
	_, err = t.exec(ctx, insertRuleSQL, append(args, created, updated, ruleSearchText(r))...)
	return wrap(op, err)
}

// ruleSettings returns the settings of r, name to escalation_target, in
// the order of the columns of insertRuleSQL and updateRuleSQL.
func ruleSettings(r campaign.Rule) []any {
	var end any
	if r.EndTime != nil {
		end = int(*r.EndTime)
	}
	return []any{r.Name, string(r.Type), r.MaxCallsPerDay, r.MaxTotalCalls, nullInt(r.RetryIntervalMinutes),
		int(r.StartTime), end, r.DNCCheck, r.RemoveOnOptOut, nullInt(r.EscalationAfterFailedAttempts),
		nullString(r.EscalationType), nullString(r.EscalationTarget)}
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

// Rule returns one rule. O(log n).
func (t *txn) Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error) {
	const op = "rule"
	s, err := t.stmt(ctx, ruleSQL)
	if err != nil {
		return campaign.Rule{}, wrap(op, err)
	}
	r, err := scanRule(s.QueryRowContext(ctx, blob(id)))
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
	res, err := t.exec(ctx, updateRuleSQL, append(ruleSettings(r), updated, ruleSearchText(r), blob(r.UUID))...)
	return wrap(fmt.Sprintf("%s %s", op, r.UUID), affected(res, err))
}

// DeleteRule removes a rule. O(log n).
func (t *txn) DeleteRule(ctx context.Context, id uuid.UUID) error {
	const op = "delete rule"
	if err := t.writable(op); err != nil {
		return err
	}
	res, err := t.exec(ctx, deleteRuleSQL, blob(id))
	return wrap(fmt.Sprintf("%s %s", op, id), affected(res, err))
}

// rulesSQL returns the statements of Rules for q and their arguments: the
// number of matches, and a page of them (two more arguments: LIMIT and
// OFFSET), a walk of rules_created.
func rulesSQL(q campaign.RuleQuery) (count, page string, args []any) {
	var where []string
	if q.Type != "" {
		where = append(where, "r.type = ?")
		args = append(args, string(q.Type))
	}
	if q.Search != "" {
		where = append(where, "instr(r.search, ?) > 0")
		args = append(args, foldCase(q.Search))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	return `SELECT count(*) FROM rules r` + cond,
		`SELECT ` + ruleCols + ` FROM rules r` + cond + ` ORDER BY r.created_at, r.uuid LIMIT ? OFFSET ?`, args
}

// Rules returns one page of rules and their number; the total counts every
// match.
func (t *txn) Rules(ctx context.Context, q campaign.RuleQuery) ([]campaign.Rule, int, error) {
	const op = "rules"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("sqlite: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	count, page, args := rulesSQL(q)
	var total int
	if err := t.tx.QueryRowContext(ctx, count, args...).Scan(&total); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.tx.QueryContext(ctx, page, append(args, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
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
	return out, total, wrap(op, rows.Err())
}

func scanRule(s scanner) (campaign.Rule, error) {
	var (
		r                       campaign.Rule
		typ                     string
		end                     sql.NullInt64
		escType, escTarget      sql.NullString
		start, created, updated int64
		dnc, optOut             bool
	)
	// The ints are scanned into the Rule's own: database/sql refuses a
	// value that an int cannot hold (beyond 2^31 on 32-bit systems), where
	// a conversion from an int64 would wrap it round.
	err := s.Scan(&r.UUID, &r.Name, &typ, &r.MaxCallsPerDay, &r.MaxTotalCalls, &r.RetryIntervalMinutes, &start, &end,
		&dnc, &optOut, &r.EscalationAfterFailedAttempts, &escType, &escTarget, &created, &updated)
	if err != nil {
		return campaign.Rule{}, err
	}
	r.Type = campaign.RuleType(typ)
	r.StartTime = campaign.Clock(start)
	if end.Valid {
		c := campaign.Clock(end.Int64)
		r.EndTime = &c
	}
	r.DNCCheck, r.RemoveOnOptOut = dnc, optOut
	r.EscalationType, r.EscalationTarget = stringPtr(escType), stringPtr(escTarget)
	r.CreatedAt, r.UpdatedAt = fromNanos(created), fromNanos(updated)
	return r, nil
}

// LockRule checks that rule id exists: SQLite's writes are serial, so
// the transaction holds every rule already.
func (t *txn) LockRule(ctx context.Context, id uuid.UUID) error {
	if err := t.writable("lock rule"); err != nil {
		return err
	}
	_, err := t.ruleKey(ctx, id)
	return wrap("lock rule", err)
}

// ruleKey returns the internal id of rule id, or ErrNotFound naming it.
func (t *txn) ruleKey(ctx context.Context, id uuid.UUID) (int64, error) {
	var k int64
	if err := t.queryRow(ctx, []any{&k}, ruleKeySQL, blob(id)); err != nil {
		if err = translate(err); errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("rule %s: %w", id, err)
		}
		return 0, err
	}
	return k, nil
}

// campaignKey returns the internal id of campaign id, or ErrNotFound
// naming it.
func (t *txn) campaignKey(ctx context.Context, id uuid.UUID) (int64, error) {
	var k int64
	if err := t.queryRow(ctx, []any{&k}, campaignKeySQL, blob(id)); err != nil {
		if err = translate(err); errors.Is(err, store.ErrNotFound) {
			return 0, fmt.Errorf("campaign %s: %w", id, err)
		}
		return 0, err
	}
	return k, nil
}

// campaignRule returns the internal id of c's rule, nil (NULL) for none.
func (t *txn) campaignRule(ctx context.Context, c campaign.Campaign) (any, error) {
	if c.RuleUUID == nil {
		return nil, nil
	}
	return t.ruleKey(ctx, *c.RuleUUID)
}

// InsertCampaign stores a new campaign. O(log n).
func (t *txn) InsertCampaign(ctx context.Context, c campaign.Campaign) error {
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
	_, err = t.exec(ctx, insertCampaignSQL, blob(c.UUID), c.Name, string(c.Status), rule, c.TimeZone,
		created, updated, foldCase(c.Name))
	return wrap(op, err)
}

// Campaign returns one campaign with its pools. O(log n + its pools).
func (t *txn) Campaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	const op = "campaign"
	s, err := t.stmt(ctx, campaignSQL)
	if err != nil {
		return campaign.Campaign{}, wrap(op, err)
	}
	c, k, err := scanCampaign(s.QueryRowContext(ctx, blob(id)))
	if err != nil {
		return campaign.Campaign{}, wrap(fmt.Sprintf("%s %s", op, id), err)
	}
	if c.PoolUUIDs, err = t.campaignPools(ctx, k); err != nil {
		return campaign.Campaign{}, wrap(op, err)
	}
	return c, nil
}

// campaignPools lists the pools of campaign k in attachment order.
func (t *txn) campaignPools(ctx context.Context, k int64) ([]uuid.UUID, error) {
	rows, err := t.query(ctx, campaignPoolsSQL, k)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []uuid.UUID{}
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// UpdateCampaign stores c's settings; written Completed or Archived, it
// deletes the calls kept for c. O(log n), plus O(k) for its k kept calls.
func (t *txn) UpdateCampaign(ctx context.Context, c campaign.Campaign) error {
	const op = "update campaign"
	if err := t.writable(op); err != nil {
		return err
	}
	rule, err := t.campaignRule(ctx, c)
	if err != nil {
		return wrap(op, err)
	}
	updated, err := nanos(c.UpdatedAt)
	if err != nil {
		return wrap(op, err)
	}
	res, err := t.exec(ctx, updateCampaignSQL, c.Name, string(c.Status), rule, c.TimeZone, updated,
		foldCase(c.Name), blob(c.UUID))
	if err = affected(res, err); err == nil {
		_, err = t.exec(ctx, governsSQL, c.Status.Governs(), blob(c.UUID))
	}
	if err == nil && c.Status.Finished() {
		_, err = t.exec(ctx, dropFinishedKeptCallsSQL, blob(c.UUID))
	}
	return wrap(fmt.Sprintf("%s %s", op, c.UUID), err)
}

// DeleteCampaign removes a campaign; its attachments go with it.
func (t *txn) DeleteCampaign(ctx context.Context, id uuid.UUID) error {
	const op = "delete campaign"
	if err := t.writable(op); err != nil {
		return err
	}
	res, err := t.exec(ctx, deleteCampaignSQL, blob(id))
	return wrap(fmt.Sprintf("%s %s", op, id), affected(res, err))
}

// campaignsSQL returns the statements of Campaigns for q and their
// arguments: the number of matches, and a page of them (two more
// arguments: LIMIT and OFFSET). A page walks campaigns_created, but the
// campaigns of a status, a seek on campaigns_status in the page's order
// (0015), and those of a rule, a seek on campaigns_rule, sorted.
func campaignsSQL(q campaign.Query) (count, page string, args []any) {
	var where []string
	if q.Status != "" {
		where = append(where, "c.status = ?")
		args = append(args, string(q.Status))
	}
	if q.Search != "" {
		where = append(where, "instr(c.search, ?) > 0")
		args = append(args, foldCase(q.Search))
	}
	if q.RuleUUID != nil {
		where = append(where, "c.rule_id = (SELECT id FROM rules WHERE uuid = ?)")
		args = append(args, blob(*q.RuleUUID))
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	return `SELECT count(*) FROM campaigns c` + cond,
		`SELECT ` + campaignCols + ` FROM campaigns c` + cond + ` ORDER BY c.created_at, c.uuid LIMIT ? OFFSET ?`, args
}

// Campaigns returns one page of campaigns with their pools, and their
// number. The page costs O(log n + offset + per_page) plus the pools
// without a filter or filtered by status (a search beside it reads the
// campaigns of the status), and a rule's the sort of its m campaigns; the
// number O(log n + m) for m matches; a search alone reads every campaign.
func (t *txn) Campaigns(ctx context.Context, q campaign.Query) ([]campaign.Campaign, int, error) {
	const op = "campaigns"
	if q.Page < 1 || q.PerPage < 1 {
		return nil, 0, fmt.Errorf("sqlite: %s: query not normalized (page %d, per_page %d)", op, q.Page, q.PerPage)
	}
	count, page, args := campaignsSQL(q)
	var total int
	if err := t.tx.QueryRowContext(ctx, count, args...).Scan(&total); err != nil {
		return nil, 0, wrap(op, err)
	}
	rows, err := t.tx.QueryContext(ctx, page, append(args, q.PerPage, pool.Offset(q.Page, q.PerPage))...)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	out, keys, err := scanCampaigns(rows, q.PerPage)
	if err != nil {
		return nil, 0, wrap(op, err)
	}
	for i := range out {
		if out[i].PoolUUIDs, err = t.campaignPools(ctx, keys[i]); err != nil {
			return nil, 0, wrap(op, err)
		}
	}
	return out, total, nil
}

// AttachPool attaches a pool to a campaign, after its other pools, and
// drops the calls kept of its items for the campaign. O(log n + k) for k
// calls kept for the campaign.
func (t *txn) AttachPool(ctx context.Context, id, poolID uuid.UUID) (bool, error) {
	const op = "attach pool"
	if err := t.writable(op); err != nil {
		return false, err
	}
	ck, pk, err := t.campaignAndPool(ctx, id, poolID)
	if err != nil {
		return false, wrap(op, err)
	}
	res, err := t.exec(ctx, attachPoolSQL, ck, pk, string(campaign.InProcess), string(campaign.Paused))
	if err != nil {
		return false, wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err == nil && n > 0 {
		_, err = t.exec(ctx, dropKeptCallsSQL, ck, pk) // its items count as items again
	}
	return n > 0, wrap(op, err)
}

// DetachPool detaches a pool from a campaign and keeps the calls of its
// items for the campaign. O(m log n) for the pool's m items.
func (t *txn) DetachPool(ctx context.Context, id, poolID uuid.UUID) (bool, error) {
	const op = "detach pool"
	if err := t.writable(op); err != nil {
		return false, err
	}
	ck, pk, err := t.campaignAndPool(ctx, id, poolID)
	if err != nil {
		return false, wrap(op, err)
	}
	res, err := t.exec(ctx, detachPoolSQL, ck, pk)
	if err != nil {
		return false, wrap(op, err)
	}
	n, err := res.RowsAffected()
	if err == nil && n > 0 {
		_, err = t.exec(ctx, keepDetachedCallsSQL, ck, pk, string(campaign.Completed), string(campaign.Archived)) // they still count in the campaign
	}
	return n > 0, wrap(op, err)
}

func (t *txn) campaignAndPool(ctx context.Context, id, poolID uuid.UUID) (int64, int64, error) {
	ck, err := t.campaignKey(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	pk, err := t.poolKey(ctx, poolID)
	if err != nil {
		return 0, 0, err
	}
	return ck, pk, nil
}

// RulePools returns the pools of the campaigns rule governs (see
// store.Tx.RulePools).
func (t *txn) RulePools(ctx context.Context, rule uuid.UUID, endedBy time.Time) ([]uuid.UUID, error) {
	const op = "rule pools"
	at, err := nanos(endedBy)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, rulePoolsSQL, blob(rule), string(campaign.InProcess), string(campaign.Paused), at)
	if err != nil {
		return nil, wrap(op, err)
	}
	defer rows.Close()
	var out []uuid.UUID
	for rows.Next() {
		var id uuid.UUID
		if err := rows.Scan(&id); err != nil {
			return nil, wrap(op, err)
		}
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out, wrap(op, rows.Err())
}

// PoolCampaigns returns the campaigns a pool is attached to, without their
// pools. A seek on campaign_pools_pool.
func (t *txn) PoolCampaigns(ctx context.Context, poolID uuid.UUID) ([]campaign.Campaign, error) {
	const op = "pool campaigns"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return nil, wrap(op, err)
	}
	rows, err := t.query(ctx, poolCampaignsSQL, k)
	if err != nil {
		return nil, wrap(op, err)
	}
	out, _, err := scanCampaigns(rows, 1)
	return out, wrap(op, err)
}

// PoolGovernors returns the campaigns that govern a pool and whether it is
// attached to any: two seeks (see poolGovernorsSQL).
func (t *txn) PoolGovernors(ctx context.Context, poolID uuid.UUID) ([]campaign.Campaign, bool, error) {
	const op = "pool governors"
	k, err := t.poolKey(ctx, poolID)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	var attached bool
	if err := t.queryRow(ctx, []any{&attached}, poolAttachedSQL, k); err != nil || !attached {
		return nil, false, wrap(op, err)
	}
	rows, err := t.query(ctx, poolGovernorsSQL, k)
	if err != nil {
		return nil, false, wrap(op, err)
	}
	out, _, err := scanCampaigns(rows, 1)
	slices.SortFunc(out, func(a, b campaign.Campaign) int { // as ORDER BY created_at, uuid
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return bytes.Compare(a.UUID[:], b.UUID[:])
	})
	return out, true, wrap(op, err)
}

// scanCampaigns scans and closes rows of campaignCols, with their keys.
func scanCampaigns(rows *sql.Rows, capHint int) ([]campaign.Campaign, []int64, error) {
	defer rows.Close()
	out := make([]campaign.Campaign, 0, capHint)
	var keys []int64
	for rows.Next() {
		c, k, err := scanCampaign(rows)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, c)
		keys = append(keys, k)
	}
	return out, keys, rows.Err()
}

func scanCampaign(s scanner) (campaign.Campaign, int64, error) {
	var (
		c                campaign.Campaign
		k                int64
		status           string
		rule             []byte
		created, updated int64
	)
	if err := s.Scan(&k, &c.UUID, &c.Name, &status, &rule, &c.TimeZone, &created, &updated); err != nil {
		return campaign.Campaign{}, 0, err
	}
	c.Status = campaign.Status(status)
	if rule != nil {
		id, err := uuid.FromBytes(rule)
		if err != nil {
			return campaign.Campaign{}, 0, err
		}
		c.RuleUUID = &id
	}
	c.CreatedAt, c.UpdatedAt = fromNanos(created), fromNanos(updated)
	return c, k, nil
}

func nullInt(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func nullString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func stringPtr(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}
