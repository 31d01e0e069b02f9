package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// CreateRule validates p, applies the defaults of its type (a text rule is
// one-shot: see [campaign.NewRule]) and stores a new rule. Errors:
// [validate.Errors] listing every failing field; nothing is written then.
func (e *Engine) CreateRule(ctx context.Context, p campaign.CreateRuleParams) (campaign.Rule, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return campaign.Rule{}, fmt.Errorf("create rule: %w", err)
	}
	r, err := campaign.NewRule(id, p, e.now())
	if err != nil {
		return campaign.Rule{}, fmt.Errorf("create rule: %w", err)
	}
	if err := e.write(ctx, func(ctx context.Context, tx *wtx) error { return tx.InsertRule(ctx, r) }); err != nil {
		return campaign.Rule{}, fmt.Errorf("create rule: %w", err)
	}
	return r, nil
}

// UpdateRule changes the given fields of a rule ([campaign.UpdateRuleParams])
// and returns it. It is not retroactive: items already Retrying or
// Scheduled keep their times; later decisions use the new values (a
// lowered max_total_calls fails, at their next dispatch, the items that
// already reached it). On a store several nodes share it waits for every
// claim, settlement and lease expiry under the old values under way, on
// any node, and none under them commits after it returns: each holds the
// rule's lock, shared, from before it reads the rule (see
// [store.Tx.LockRule]), and the update holds it exclusive. A lease of the
// rule's campaigns' pools that ended before the update is applied first,
// a failed attempt under the old values. Its locks do not grow with the
// pools the rule governs: the rule's, and those of the pools that hold
// such a lease (usually none).
// Errors: [validate.Errors] listing every failing field, nothing written
// then; [store.ErrNotFound], unless fields that fail whatever the rule
// (name, type, start_time) make it a [validate.Errors] of them. Those
// fields are reported before a nil ctx and [ErrClosed] too; a field whose
// check needs the stored rule (a cap, which a text rule ignores) is not
// known to fail then.
func (e *Engine) UpdateRule(ctx context.Context, id uuid.UUID, u campaign.UpdateRuleParams) (campaign.Rule, error) {
	// Whether most fields count depends on the stored rule's type, so the
	// whole check is Apply's, in the transaction. What holds whatever the
	// rule is known before it: a nil id, or an unknown rule, gets it.
	early := u.ValidateWithoutRule()
	if id == uuid.Nil {
		return campaign.Rule{}, fmt.Errorf("update rule: %w", checkIDAnd("uuid", id, early))
	}
	var out campaign.Rule
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		// The rule's lock first, exclusive: an update on another node
		// commits before this one reads the rule, or after it (none of
		// its fields is lost), and so does every transaction that reads
		// the rule to decide under it (see store.Tx.LockRule).
		err := tx.LockRule(ctx, id)
		if errors.Is(err, store.ErrNotFound) && early != nil {
			return early
		}
		if err != nil {
			return err
		}
		r, err := tx.Rule(ctx, id)
		if errors.Is(err, store.ErrNotFound) && early != nil {
			return early
		}
		if err != nil {
			return err
		}
		// Every failing field, early's included (Apply checks them again),
		// each once; a failure writes nothing.
		nr, changed, err := u.Apply(r)
		if err != nil || !changed {
			out = r
			return err
		}
		nr.UpdatedAt = tx.Now
		out = nr
		if err := e.lockRulePools(ctx, tx, id); err != nil {
			return err
		}
		return tx.UpdateRule(ctx, nr)
	})
	if err != nil && early != nil && (ctx == nil || errors.Is(err, ErrClosed)) {
		// The rule was not read (a nil ctx, the engine closed): the fields
		// that fail whatever it is come first, as every call's arguments
		// are checked before its context and the engine's state.
		err = early
	}
	if err != nil {
		return campaign.Rule{}, fmt.Errorf("update rule: %w", err)
	}
	return out, nil
}

// Rule returns one rule. Errors: [store.ErrNotFound].
func (e *Engine) Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error) {
	if err := checkID("uuid", id); err != nil {
		return campaign.Rule{}, fmt.Errorf("get rule: %w", err)
	}
	var r campaign.Rule
	err := e.read(ctx, func(ctx context.Context, tx store.Tx) (err error) { r, err = tx.Rule(ctx, id); return err })
	if err != nil {
		return campaign.Rule{}, fmt.Errorf("get rule: %w", err)
	}
	return r, nil
}

// Rules returns one page of rules, oldest first, filtered by type and by a
// case-insensitive search in name, escalation type and target. Page
// defaults to 1, PerPage to 15 (at most 100). Errors: [validate.Errors].
func (e *Engine) Rules(ctx context.Context, q campaign.RuleQuery) (campaign.RulePage, error) {
	q, err := q.Normalize()
	if err != nil {
		return campaign.RulePage{}, fmt.Errorf("list rules: %w", err)
	}
	return listPage(ctx, e, "list rules", q.Page, q.PerPage, func(ctx context.Context, tx store.Tx) ([]campaign.Rule, int, error) {
		return tx.Rules(ctx, q)
	})
}

// DeleteRule removes a rule. It is refused with [campaign.ErrConflict]
// while a campaign uses it. Errors: [store.ErrNotFound].
func (e *Engine) DeleteRule(ctx context.Context, id uuid.UUID) error {
	if err := checkID("uuid", id); err != nil {
		return fmt.Errorf("delete rule: %w", err)
	}
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		if _, err := tx.Rule(ctx, id); err != nil {
			return err
		}
		_, n, err := tx.Campaigns(ctx, campaign.Query{Page: 1, PerPage: 1, RuleUUID: &id})
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("rule %s is the rule of %d campaigns: %w", id, n, campaign.ErrConflict)
		}
		return tx.DeleteRule(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("delete rule: %w", err)
	}
	return nil
}

// CreateCampaign validates p and stores a new campaign, a Draft. Its pools
// are attached with [Engine.AttachPools]. Errors: [validate.Errors],
// [store.ErrNotFound] for an unknown rule.
func (e *Engine) CreateCampaign(ctx context.Context, p campaign.CreateParams) (campaign.Campaign, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	c, err := campaign.New(id, p, e.now())
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	if err := e.write(ctx, func(ctx context.Context, tx *wtx) error { return tx.InsertCampaign(ctx, c) }); err != nil {
		return campaign.Campaign{}, fmt.Errorf("create campaign: %w", err)
	}
	c.PoolUUIDs = []uuid.UUID{}
	return c, nil
}

// UpdateCampaign changes a campaign's name or default time zone. A new
// zone of a campaign In Process or Paused takes its pools, as a rule's
// update does: on a store several nodes share, no claim that judged a
// calling window in the old zone commits after it returns. Errors:
// [validate.Errors], [store.ErrNotFound].
func (e *Engine) UpdateCampaign(ctx context.Context, id uuid.UUID, u campaign.UpdateParams) (campaign.Campaign, error) {
	if err := checkIDAnd("uuid", id, u.Validate()); err != nil {
		return campaign.Campaign{}, fmt.Errorf("update campaign: %w", err)
	}
	out, err := e.changeCampaign(ctx, id, func(ctx context.Context, tx *wtx, c campaign.Campaign) (campaign.Campaign, bool, error) {
		nc, changed, err := u.Apply(c)
		if err != nil || !changed {
			return nc, changed, err
		}
		if c.Status.Governs() && nc.TimeZone != c.TimeZone {
			if err := e.lockPools(ctx, tx, c.PoolUUIDs); err != nil {
				return c, false, err
			}
		}
		return nc, true, nil
	})
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("update campaign: %w", err)
	}
	return out, nil
}

// Campaign returns one campaign with its pools. Errors:
// [store.ErrNotFound].
func (e *Engine) Campaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	if err := checkID("uuid", id); err != nil {
		return campaign.Campaign{}, fmt.Errorf("get campaign: %w", err)
	}
	var c campaign.Campaign
	err := e.read(ctx, func(ctx context.Context, tx store.Tx) (err error) { c, err = tx.Campaign(ctx, id); return err })
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("get campaign: %w", err)
	}
	return c, nil
}

// Campaigns returns one page of campaigns, oldest first, filtered by
// status, rule and a case-insensitive search in the name. Errors:
// [validate.Errors].
func (e *Engine) Campaigns(ctx context.Context, q campaign.Query) (campaign.Page, error) {
	q, err := q.Normalize()
	if err != nil {
		return campaign.Page{}, fmt.Errorf("list campaigns: %w", err)
	}
	return listPage(ctx, e, "list campaigns", q.Page, q.PerPage, func(ctx context.Context, tx store.Tx) ([]campaign.Campaign, int, error) {
		return tx.Campaigns(ctx, q)
	})
}

// DeleteCampaign removes a campaign and detaches its pools. It is refused
// with [campaign.ErrConflict] while the campaign is In Process or Paused
// (complete it first), and with [ErrInFlight] while a contact two of its
// pools share is in a call from one of them (a call the campaign started
// may go on after it completes): apart, the other pool could call the
// contact at once. Errors: [store.ErrNotFound].
func (e *Engine) DeleteCampaign(ctx context.Context, id uuid.UUID) error {
	if err := checkID("uuid", id); err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	var pools []uuid.UUID
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		c, err := tx.Campaign(ctx, id)
		if err != nil {
			return err
		}
		if c.Status.Governs() {
			return fmt.Errorf("campaign %s is %s: %w", id, c.Status, campaign.ErrConflict)
		}
		if err := sharedCall(ctx, tx, c, uuid.Nil); err != nil {
			return err
		}
		pools = c.PoolUUIDs
		for _, p := range pools {
			signal(tx, p) // a pool it held may be free now
		}
		signal(tx, id) // the other processes' DequeueCampaigns on it: not found now
		return tx.DeleteCampaign(ctx, id)
	})
	if err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	e.wakePools(pools...)
	e.wake.notify(id) // a DequeueCampaign on it: not found now
	e.forgetTurn(id)
	return nil
}

// StartCampaign moves a Draft campaign In Process: its pools are dialled,
// under its rule. It is refused with [campaign.ErrConflict] when another
// campaign In Process or Paused has one of its pools, and with
// [campaign.ErrWrongStatus] from another status. Errors also:
// [store.ErrNotFound].
func (e *Engine) StartCampaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	return e.transition(ctx, id, campaign.Start)
}

// PauseCampaign moves a campaign In Process to Paused: its pools are held
// (no new dispatch; items in flight finish) and stay its own.
func (e *Engine) PauseCampaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	return e.transition(ctx, id, campaign.Pause)
}

// ResumeCampaign moves a Paused campaign back In Process.
func (e *Engine) ResumeCampaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	return e.transition(ctx, id, campaign.Resume)
}

// CompleteCampaign moves a campaign In Process or Paused to Completed: it
// no longer governs its pools, which stay held while attached to it. It
// never dials again: the calls kept for it of items removed from its pools
// and of pools detached from it (see [Engine.DetachPool]) are deleted.
func (e *Engine) CompleteCampaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	return e.transition(ctx, id, campaign.Complete)
}

// ArchiveCampaign moves a Completed campaign to Archived.
func (e *Engine) ArchiveCampaign(ctx context.Context, id uuid.UUID) (campaign.Campaign, error) {
	return e.transition(ctx, id, campaign.Archive)
}

// transition applies action a to campaign id, checking that a campaign
// about to govern its pools is the only one to.
func (e *Engine) transition(ctx context.Context, id uuid.UUID, a campaign.Action) (campaign.Campaign, error) {
	out, err := e.changeCampaign(ctx, id, func(ctx context.Context, tx *wtx, c campaign.Campaign) (campaign.Campaign, bool, error) {
		to, err := c.Status.After(a)
		if err != nil {
			return c, false, err
		}
		if to.Governs() && !c.Status.Governs() && c.RuleUUID != nil {
			// The rule's lock, shared (Rule): an UpdateRule under way
			// commits first, or after this start. Not that the start
			// needs it: the claims under the rule take it themselves, and
			// the leases of its pools that ended are applied below, under
			// what governed the pools then. (A resume takes none: a Paused
			// campaign governs, among those whose pools an UpdateRule
			// reads.)
			if _, err := tx.Rule(ctx, *c.RuleUUID); err != nil {
				return c, false, err
			}
		}
		if err := e.lockPools(ctx, tx, c.PoolUUIDs); err != nil {
			return c, false, err
		}
		if to.Governs() {
			for _, p := range c.PoolUUIDs {
				if err := e.checkFree(ctx, tx, p, c.UUID); err != nil {
					return c, false, err
				}
			}
		}
		c.Status = to
		// The other processes' waiters: a Dequeue of a pool that may run
		// now, a DequeueCampaign (subscribed to the pools too) whose
		// campaign finished.
		for _, p := range c.PoolUUIDs {
			signal(tx, p)
		}
		signal(tx, id) // and those of a campaign without pools
		return c, true, nil
	})
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("%s campaign: %w", a, err)
	}
	if out.Status.Dispatches() {
		e.wakePools(out.PoolUUIDs...)
	}
	e.wake.notify(id) // a DequeueCampaign: its campaign runs, or finished
	if out.Status.Finished() {
		e.forgetTurn(id)
	}
	return out, nil
}

// lockPools reads the pools of a campaign in a write transaction, which
// on a store that several nodes share locks them (see store.Tx.Pool): a
// claim on one of them that read the campaign's former state commits
// before this transaction does, so that once a pause, a completion or a
// new rule is committed, no dispatch under the old state follows it. A
// pool deleted meanwhile is skipped.
//
// It applies the pools' expired leases too (poolNow), before the change: a
// lease that ended (its holder killed, say) is a failed attempt under what
// governed its pool when it ended, as it is when a claim or any other
// write on the pool comes first; applied after a completion or a detach,
// it would be judged without the rule (no escalation, the pool's
// max_retries instead of max_total_calls), after an AssignRule under
// another rule.
func (e *Engine) lockPools(ctx context.Context, tx *wtx, pools []uuid.UUID) error {
	for _, p := range pools {
		_, n, err := e.poolNow(ctx, tx, p)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			signal(tx, p) // expired leases freed slots
		}
	}
	return nil
}

// lockRulePools applies (lockPools) the leases ended at tx.Now in the
// pools of every campaign rule governs (In Process or Paused), before the
// rule changes: each is a failed attempt under what governed its pool
// when it ended, as it is when any other write on the pool comes first.
// It takes the locks of those pools only, read in one statement
// (store.Tx.RulePools): a listing in pages, or per status, could miss a
// campaign that governs throughout while another left the listing
// between two of its statements, on PostgreSQL, where each statement sees
// what committed last.
//
// The other pools' locks are not needed, and a rule may govern more pools
// than the server's lock table holds (MaxPoolsPerCampaign bounds a
// campaign's, not a rule's campaigns): what decides under the rule reads
// it holding its lock, shared, which the caller holds exclusive (see
// store.Tx.LockRule), and a claim, a settlement or an expiry under the
// old values thus committed before, and none comes after. No pool comes
// to hold a lease ended at tx.Now after the read: a claim under the rule
// waits for its lock, one under another campaign or none is not
// governed by it (a start, AssignRule and AttachPools apply the pools'
// ended leases before the pools come under the rule), and an Extend sets
// a lease's end at least MinLeaseTimeout after the instant its
// transaction judges it at: before tx.Now only for a transaction that
// judged that long before, behind this one (the nodes' clocks agree, see
// the README's Clocks).
func (e *Engine) lockRulePools(ctx context.Context, tx *wtx, rule uuid.UUID) error {
	pools, err := tx.RulePools(ctx, rule, tx.Now)
	if err != nil {
		return err
	}
	return e.lockPools(ctx, tx, pools)
}

// checkFree returns campaign.ErrConflict when a campaign other than self
// governs pool p.
func (e *Engine) checkFree(ctx context.Context, tx *wtx, p, self uuid.UUID) error {
	cs, _, err := tx.PoolGovernors(ctx, p)
	if err != nil {
		return err
	}
	for _, other := range cs {
		if other.UUID != self {
			return fmt.Errorf("pool %s is governed by campaign %s (%s): %w", p, other.UUID, other.Status, campaign.ErrConflict)
		}
	}
	return nil
}

// AssignRule assigns a rule to a campaign, or replaces its rule. A running
// campaign's pools take the new rule's ceiling and retry interval for
// their later decisions. A Completed or Archived campaign takes one too
// (it holds no pool that could dispatch): so a rule used only by finished
// campaigns is freed for [Engine.DeleteRule]. Errors: [store.ErrNotFound]
// for the campaign or the rule.
func (e *Engine) AssignRule(ctx context.Context, id, ruleID uuid.UUID) (campaign.Campaign, error) {
	if err := checkIDAnd("uuid", id, checkID("rule_uuid", ruleID)); err != nil {
		return campaign.Campaign{}, fmt.Errorf("assign rule: %w", err)
	}
	out, err := e.changeCampaign(ctx, id, func(ctx context.Context, tx *wtx, c campaign.Campaign) (campaign.Campaign, bool, error) {
		// The rule's lock, shared, as a start takes it (see transition).
		if _, err := tx.Rule(ctx, ruleID); err != nil {
			return c, false, err
		}
		if err := e.lockPools(ctx, tx, c.PoolUUIDs); err != nil {
			return c, false, err
		}
		changed := c.RuleUUID == nil || *c.RuleUUID != ruleID
		c.RuleUUID = &ruleID
		return c, changed, nil
	})
	if err != nil {
		return campaign.Campaign{}, fmt.Errorf("assign rule: %w", err)
	}
	return out, nil
}

// changeCampaign applies fn to a campaign in a write transaction and
// stores it when fn reports a change (UpdatedAt then moves).
func (e *Engine) changeCampaign(ctx context.Context, id uuid.UUID,
	fn func(context.Context, *wtx, campaign.Campaign) (campaign.Campaign, bool, error)) (campaign.Campaign, error) {
	if err := checkID("uuid", id); err != nil {
		return campaign.Campaign{}, err
	}
	var out campaign.Campaign
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		c, err := tx.Campaign(ctx, id)
		if err != nil {
			return err
		}
		nc, changed, err := fn(ctx, tx, c)
		if err != nil || !changed {
			out = c
			return err
		}
		nc.UpdatedAt = tx.Now
		out = nc
		return tx.UpdateCampaign(ctx, nc)
	})
	return out, err
}

// MaxPoolsPerCampaign bounds the pools attached to one campaign:
// [Engine.AttachPools] refuses a call that would leave the campaign with
// more. A campaign's start, pause, resume, completion, deletion, a new
// rule or time zone take a lock per pool of the campaign in one
// transaction, and on PostgreSQL those locks live in
// the server's lock table, shared by all its sessions and sized
// max_locks_per_transaction × (max_connections +
// max_prepared_transactions) (6,400 at the defaults; one transaction took
// about 12,600 at most): a campaign of 13,000 pools could be neither
// started nor deleted ("out of shared memory", SQLSTATE 53200), and while
// such a transaction holds thousands of locks, other sessions' lock
// requests fail too. 1,000 is of the order of [MaxMaxBatch] (a
// group-commit batch's pools), a sixth of the default table, so that a
// campaign's change and several nodes' batches fit in it at once, and far
// above what a dialer campaign attaches (a handful of lists); a host with more
// pools runs several campaigns. At the bound, on PostgreSQL 15 at the
// defaults, a start, a pause, a completion and a deletion each took 0.3 to
// 1 s, while another node's Adds went on without a failure. The campaigns
// of a rule are not bounded: [Engine.UpdateRule] takes the rule's lock,
// and the pools' only of those that hold a lease that ended (taking every
// pool of the rule's campaigns, it could not update a rule of 13 campaigns
// at the bound).
//
// A campaign attached past the bound by a poolq that had no such bound
// keeps its pools and works as far as the server allows
// (at the defaults, with 6,000 pools a start or a pause took 1.4 s; with
// 13,000 neither a start nor a deletion could, and the deletion made
// other sessions' Adds fail too); it takes no new pool until detaches
// bring it back to the bound ([Engine.DetachPool] is never refused for
// the bound, and locks only the pool it detaches: 0.09 s from a campaign of 13,000). On a
// server with fewer connections, or shared with applications that hold
// many locks, keep campaigns well under the bound, or raise
// max_locks_per_transaction.
const MaxPoolsPerCampaign = 1000

// MaxPoolsPerCall is the most pools [Engine.AttachPools] takes at once,
// duplicates and unknown pools included: MaxPoolsPerCampaign, as a call
// reads, and on PostgreSQL locks, each pool it names in one transaction
// (a call of more, which could not attach them all anyway, would take
// locks past the bound's).
const MaxPoolsPerCall = MaxPoolsPerCampaign

// AttachPools attaches pools to a campaign, after those it has. It is
// additive and idempotent: pools attached already are skipped (even if
// deactivated since), UUIDs that name no pool are reported in the
// result's PoolUUIDsNotFound (the call does not fail for them). An
// inactive pool cannot be attached
// ([validate.Errors] naming its index in pools); a pool governed by another
// campaign cannot be attached to one In Process or Paused
// ([campaign.ErrConflict]). A pool's leases that have ended are applied
// first, as failed attempts under what governed it before (its own
// settings, or the campaign it dispatched under). On any error nothing is
// attached, except after
// an error wrapping [store.ErrCommitUnknown] (PostgreSQL: the COMMIT's
// answer lost), when the pools may have been: attaching them again skips
// those that were. A call that would leave the campaign with more than
// [MaxPoolsPerCampaign] pools attached is refused ([validate.Errors] on
// pool_uuids, naming the bound and the counts; nothing attached): the
// pools it attaches count, not those attached already, its duplicates or
// its unknown pools, and a call that attaches none (a repeated request)
// succeeds whatever the campaign's count. The count is read in the write
// transaction, under the campaign's lock: of two concurrent calls, on
// any nodes, the second sees the first's pools. Errors also:
// [validate.Errors] for no pool, more than [MaxPoolsPerCall] or the nil
// UUID; [store.ErrNotFound] for the campaign; [campaign.ErrWrongStatus]
// for a campaign that is Completed or Archived: it will not run again, and
// a pool attached to it would be held for good.
func (e *Engine) AttachPools(ctx context.Context, id uuid.UUID, pools ...uuid.UUID) (campaign.AttachResult, error) {
	var v validate.Validator
	v.Check(id != uuid.Nil, "uuid", validate.RuleRequired, "is required (not the nil UUID)")
	v.Check(len(pools) > 0, "pool_uuids", validate.RuleRequired, "at least one pool is required")
	v.Check(len(pools) <= MaxPoolsPerCall, "pool_uuids", validate.RuleLength,
		fmt.Sprintf("must hold at most %d pools (got %d)", MaxPoolsPerCall, len(pools)))
	for i, p := range pools {
		v.Check(p != uuid.Nil, fmt.Sprintf("pool_uuids[%d]", i), validate.RuleRequired, "is required (not the nil UUID)")
	}
	if err := v.Err(); err != nil {
		return campaign.AttachResult{}, fmt.Errorf("attach pools: %w", err)
	}
	var res campaign.AttachResult
	var attached []uuid.UUID
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		res, attached = campaign.AttachResult{PoolUUIDsNotFound: []uuid.UUID{}}, nil
		c, err := tx.Campaign(ctx, id)
		if err != nil {
			return err
		}
		if c.Status.Finished() {
			// It will not run again: a pool attached would be held for
			// good (a pool of campaigns dispatches only while one runs).
			return fmt.Errorf("campaign %s is %s: it will not dispatch again: %w", id, c.Status, campaign.ErrWrongStatus)
		}
		if c.Status.Governs() && c.RuleUUID != nil {
			// The rule's lock, shared, as a start takes it (see
			// transition).
			if _, err := tx.Rule(ctx, *c.RuleUUID); err != nil {
				return err
			}
		}
		has := make(map[uuid.UUID]bool, len(c.PoolUUIDs))
		for _, p := range c.PoolUUIDs {
			has[p] = true
		}
		var v validate.Validator
		seen := map[uuid.UUID]bool{}
		for i, p := range pools {
			if seen[p] {
				continue // folded
			}
			seen[p] = true
			pl, err := tx.Pool(ctx, p)
			if isNotFound(err) {
				res.PoolUUIDsNotFound = append(res.PoolUUIDsNotFound, p)
				continue
			}
			if err != nil {
				return err
			}
			if has[p] {
				// Skipped, even if deactivated since: is_active guards a
				// new attachment, and a repeated request must not fail.
				res.PoolsSkipped++
				continue
			}
			if !pl.IsActive {
				v.Add(fmt.Sprintf("pool_uuids[%d]", i), "active", fmt.Sprintf("pool %s is inactive: it cannot be attached", p))
				continue
			}
			if c.Status.Governs() {
				if err := e.checkFree(ctx, tx, p, c.UUID); err != nil {
					return err
				}
			}
			// Its leases that ended are failed attempts under what governed
			// it then, before it is attached (see lockPools).
			if n, err := e.reclaim(ctx, tx, pl, tx.Now); err != nil {
				return err
			} else if n > 0 {
				signal(tx, p) // expired leases freed slots
			}
			ok, err := tx.AttachPool(ctx, id, p)
			if err != nil {
				return err
			}
			if !ok {
				res.PoolsSkipped++
				continue
			}
			res.PoolsAttached++
			attached = append(attached, p)
			signal(tx, p)
		}
		if n := len(c.PoolUUIDs) + len(attached); len(attached) > 0 && n > MaxPoolsPerCampaign {
			// Refused as a whole: the failed write rolls back every attach above.
			v.Add("pool_uuids", validate.RuleLength, fmt.Sprintf(
				"a campaign holds at most %d pools: campaign %s has %d, and %d more would make %d (detach some, or use another campaign)",
				MaxPoolsPerCampaign, id, len(c.PoolUUIDs), len(attached), n))
		}
		if len(attached) > 0 {
			signal(tx, id) // the other processes' waiters on the campaign, not yet on its new pools
		}
		return v.Err()
	})
	if err != nil {
		return campaign.AttachResult{}, fmt.Errorf("attach pools: %w", err)
	}
	e.wakePools(attached...)
	e.wake.notify(id) // a DequeueCampaign waiting for pools
	return res, nil
}

// DetachPool detaches a pool from a campaign and reports whether it was
// attached. A pool attached to no campaign any more dispatches under its
// own settings again. Its items' calls still count against the campaign's
// caps, for their contacts' items in its other pools, until the pool is
// attached to it again (see [store.Tx.DetachPool]); a call still under way
// when it leaves holds its contact's items there until it ends (one call
// at a time). A pool cannot leave a campaign, whatever its status (a call
// started In Process goes on after it completes), while a contact it
// shares with the campaign's other pools is in a call from one of them,
// this pool included ([ErrInFlight], naming the contact): once apart,
// neither side would see the other's call, and the contact could be called
// from both at once. Let the call end (pause the campaign to start no
// more), then detach. The pool's leases that have ended are applied first,
// as failed attempts under the campaign. Errors: [store.ErrNotFound] for the
// campaign or the pool.
func (e *Engine) DetachPool(ctx context.Context, id, poolID uuid.UUID) (bool, error) {
	if err := checkIDAnd("uuid", id, checkID("pool_uuid", poolID)); err != nil {
		return false, fmt.Errorf("detach pool: %w", err)
	}
	var detached bool
	err := e.write(ctx, func(ctx context.Context, tx *wtx) (err error) {
		c, err := tx.Campaign(ctx, id)
		if err != nil {
			return err
		}
		if slices.Contains(c.PoolUUIDs, poolID) {
			// Its leases that ended are failed attempts under the
			// campaign, before it leaves (see lockPools).
			if err := e.lockPools(ctx, tx, []uuid.UUID{poolID}); err != nil {
				return err
			}
			if err := sharedCall(ctx, tx, c, poolID); err != nil {
				return err
			}
		}
		detached, err = tx.DetachPool(ctx, id, poolID)
		if err == nil && detached {
			signal(tx, poolID)
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("detach pool: %w", err)
	}
	if detached {
		e.wakePools(poolID)
	}
	return detached, nil
}

// sharedCall returns ErrInFlight when a contact is in a call (under a lease
// that has not ended) from a pool of campaign c and has an item across the
// line that detaching poolID would draw: in poolID for a call from another
// pool, in another pool for a call from poolID; with poolID uuid.Nil (the
// campaign deleted: every pool apart), in any other pool. It takes no
// pool's lock: on PostgreSQL it holds the campaign's (CampaignCalls), which
// every claim under its rule takes too, so no call starts meanwhile, and a
// call that ends meanwhile only makes it refuse. Cost: a walk of the pools'
// lease indexes, and a seek per call and pool.
func sharedCall(ctx context.Context, tx *wtx, c campaign.Campaign, poolID uuid.UUID) error {
	calls, err := tx.CampaignCalls(ctx, c.UUID, tx.Now)
	if err != nil || len(calls) == 0 {
		return err
	}
	byPool := make(map[uuid.UUID][]uuid.UUID, len(c.PoolUUIDs))
	for _, it := range calls {
		byPool[it.PoolUUID] = append(byPool[it.PoolUUID], it.ContactUUID)
	}
	for _, q := range c.PoolUUIDs {
		live := byPool[q]
		if len(live) == 0 {
			continue
		}
		items, err := tx.CampaignItems(ctx, c.UUID, q, live...)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.PoolUUID == uuid.Nil {
				continue // calls kept of a removed item: no call to hide
			}
			if poolID == uuid.Nil || q == poolID || it.PoolUUID == poolID {
				return fmt.Errorf("contact %s is in a call from pool %s of campaign %s and has an item in pool %s: %w",
					it.ContactUUID, q, c.UUID, it.PoolUUID, ErrInFlight)
			}
		}
	}
	return nil
}

// wakePools wakes the Dequeues blocked on the pools.
func (e *Engine) wakePools(pools ...uuid.UUID) {
	for _, p := range pools {
		e.wake.notify(p)
	}
}

// DequeueCampaign claims the next due item of a campaign In Process,
// taking its pools in turn (each pool's order and cap hold), so that a big
// pool does not starve a small one. It waits like [Engine.Dequeue] until an
// item is due, the campaign In Process and a cap allows; a campaign
// Completed or Archived, which will not run again, gets an error wrapping
// [campaign.ErrWrongStatus], at once or when it finishes. Every lease it
// returns is of a pool the campaign governed when the item was claimed: a
// pool detached meanwhile gives nothing. Errors also: [store.ErrNotFound]
// for an unknown campaign, ctx's error, [ErrClosed], the error of a claim
// that commits late three times in a row, and one wrapping
// [store.ErrCommitUnknown], whose claim, if it committed, is given back
// (see [Engine.TryDequeue]).
//
// Cost: each look reads the campaign, then, when it has more than one
// pool, in one read transaction, which of its pools may give an item (a few index seeks a pool, whatever its
// items), and claims (a write transaction, as TryDequeue's) only in those,
// in turn, until one gives: its pools that have nothing due, or are full
// (their items in flight at their cap) with no lease ended, however many,
// cost no write. When that read fails, the look claims in every pool (a
// store that stays down fails the claims, whose error it returns); a
// failed read of the campaign itself ends the call with its error.
func (e *Engine) DequeueCampaign(ctx context.Context, id uuid.UUID) (*Lease, error) {
	if err := checkID("uuid", id); err != nil {
		return nil, fmt.Errorf("dequeue campaign: %w", err)
	}
	wake := make(chan struct{}, 1)
	// The campaign stays subscribed for the whole call (a start, an
	// attach); its pools are subscribed again whenever they change, before
	// the pass that looks at them.
	defer e.wake.subscribe(wake, id)()
	unsubscribe := func() {}
	defer func() { unsubscribe() }()
	var subscribed []uuid.UUID
	floors := map[uuid.UUID]*backoff{}
	var locked backoff // the pause after passes that met another's lock past the store's timeout
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Through readUntilClosing, as its other reads: Close ends a read
		// under way (a database gone silent), and the call returns
		// ErrClosed, not once its own context ends.
		var c campaign.Campaign
		err := e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) (err error) {
			c, err = tx.Campaign(ctx, id)
			return err
		})
		if err != nil {
			err = fmt.Errorf("dequeue campaign: %w", err)
		}
		if isNotFound(err) || err == nil && c.Status.Finished() {
			e.forgetTurn(id) // deleted or finished by another node: its turn is not needed again
		}
		if err != nil {
			return nil, err
		}
		if c.Status.Finished() {
			return nil, fmt.Errorf("dequeue campaign: campaign %s is %s: it will not dispatch again: %w", id, c.Status, campaign.ErrWrongStatus)
		}
		if !sameIDs(subscribed, c.PoolUUIDs) {
			unsubscribe()
			if e.resubscribing != nil {
				e.resubscribing()
			}
			unsubscribe = e.wake.subscribe(wake, c.PoolUUIDs...)
			subscribed = c.PoolUUIDs
		}
		l, wait, err := e.campaignPass(ctx, c, floors, &locked)
		if l != nil || err != nil {
			return l, err
		}
		timer.Reset(wait)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("dequeue campaign: %w", ctx.Err())
		case <-e.closing:
			return nil, fmt.Errorf("dequeue campaign: %w", ErrClosed)
		}
	}
}

// campaignPass is one look of DequeueCampaign at campaign c: it tries c's
// pools once each, from the one whose turn it is, and returns the first
// lease it gets, or nil and how long to wait before the next look (until
// an item may be due, floors pacing each pool's retries). It gets nothing
// from a campaign that is not In Process, and touches none of its pools
// then.
//
// A pass over several pools costs one read transaction
// (store.Tx.PoolWakes: a few index seeks a pool), then a claim, a write
// transaction, in each pool that may give something at now (mayGive), in
// turn, until one does (and for each that gives nothing, a read of its
// next wake): the pools that have nothing due, or are full, and have no
// lease ended, however many, cost no write. That read is exact or errs
// towards a claim: a pool is passed over only when it has no waiting item
// in its due set (a Pending one, or a retry that a claim found due and
// left, say at its cap) or its items in flight fill its cap, and neither
// a retry time (in a pool not full) nor a lease's end is at or before now
// (see store.PoolWake). Something that comes due or frees a slot after
// the read (an Add, a settlement, a pool's cap raised, on this node or
// another) wakes the caller, subscribed to the pools before the pass, and
// a retry time or lease end still to come (a full pool's lease end only)
// is the pass's wait; a retry or lease whose time passes between the read
// and the wait makes that wait the floor's (a millisecond first), and the
// next look claims it. A claim that met another's lock past the store's
// timeout makes the wait short, as Dequeue's (locked: a growing pause,
// reset by a pass that met none).
func (e *Engine) campaignPass(ctx context.Context, c campaign.Campaign, floors map[uuid.UUID]*backoff, locked *backoff) (*Lease, time.Duration, error) {
	wait := e.opts.PollInterval
	if !c.Status.Dispatches() || len(c.PoolUUIDs) == 0 {
		return nil, wait, nil
	}
	// The read of which pools may give pays for itself when it can save a
	// claim in another pool; a campaign of one pool claims in it (as
	// TryDequeue does), a write that finds out as much.
	var wakes map[uuid.UUID]store.PoolWake
	if len(c.PoolUUIDs) > 1 {
		err := e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) (err error) {
			wakes, err = tx.PoolWakes(ctx, c.PoolUUIDs...)
			return err
		})
		if err != nil {
			// A read that fails (a store that blinked) leaves the answer
			// to the claims, as Dequeue's poll does: every pool is tried,
			// and a store that stays down fails them.
			wakes = nil
		}
	}
	now := e.now() // after the read: a retry or lease that ends meanwhile is claimed now
	start := e.turn(c.UUID, len(c.PoolUUIDs))
	lockedOut := false
	for k := range c.PoolUUIDs {
		i := (start + k) % len(c.PoolUUIDs)
		p := c.PoolUUIDs[i]
		w, found := wakes[p]
		if wakes != nil && !found {
			continue // deleted since c was read
		}
		if floors[p] == nil {
			floors[p] = &backoff{}
		}
		if found && !mayGive(w, now) {
			// Nothing due, or the pool full, and no lease ended: a claim
			// would find nothing.
			if w.HasNext {
				wait = min(wait, floors[p].pause(w.Next.Sub(e.now()), e.opts.PollInterval))
			} else {
				floors[p].reset()
			}
			continue
		}
		ls, err := e.tryDequeue(ctx, p, 1, c.UUID) // nothing if p left c since c was read
		if err == nil {
			e.setTurn(c.UUID, i+1)
			return ls[0], 0, nil
		}
		// A pool deleted meanwhile, or locked past the store's timeout by
		// another process or node: the others are tried, and it later.
		if !isNothing(err) && !isLockTimeout(err) && !errors.Is(err, store.ErrNotFound) {
			return nil, 0, fmt.Errorf("dequeue campaign: %w", err)
		}
		lockedOut = lockedOut || isLockTimeout(err)
		if w, err := e.pause(ctx, p, floors[p]); err == nil {
			wait = min(wait, w)
		}
	}
	if !lockedOut {
		locked.reset()
		return nil, wait, nil
	}
	return nil, min(wait, locked.pause(0, e.opts.PollInterval)), nil
}

// mayGive reports whether a claim at now may find something to do in a
// pool whose PoolWakes read w: an item in its due set while it has room
// for one, or a retry time (not in a full pool, see store.PoolWake) or a
// lease's end at or before now. False only when the claim would find
// nothing: a full pool is passed over unless a lease of it has ended,
// which the claim would end, freeing a slot.
func mayGive(w store.PoolWake, now time.Time) bool {
	return w.Due && !w.Full || w.HasNext && !w.Next.After(now)
}

// turn returns the index of the pool of campaign id whose turn it is to be
// claimed from first, of n; setTurn moves it. The turns are a hint for
// fairness, kept in memory: a new engine starts at the first pool.
func (e *Engine) turn(id uuid.UUID, n int) int {
	e.turnsMu.Lock()
	defer e.turnsMu.Unlock()
	return e.turns[id] % n
}

// forgetTurn drops the turn of campaign id, deleted or finished: the
// turns are kept for the campaigns that may dispatch, not for every one
// that ever did.
func (e *Engine) forgetTurn(id uuid.UUID) {
	e.turnsMu.Lock()
	defer e.turnsMu.Unlock()
	delete(e.turns, id)
}

// maxTurns bounds the turns kept. forgetTurn does not see every campaign
// that will not dispatch again: one finished or deleted by another node
// while no DequeueCampaign of it ran here, or one whose last claim
// returned just after its finish forgot its turn, which the claim's
// setTurn then brings back. Past maxTurns the turns start again empty:
// each campaign's next pass begins at its first pool (a hint lost, once).
const maxTurns = 4096

// setTurn moves the turn of campaign id (see turn).
func (e *Engine) setTurn(id uuid.UUID, next int) {
	e.turnsMu.Lock()
	defer e.turnsMu.Unlock()
	if _, ok := e.turns[id]; e.turns == nil || !ok && len(e.turns) >= maxTurns {
		e.turns = map[uuid.UUID]int{}
	}
	e.turns[id] = next
}

func sameIDs(a, b []uuid.UUID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
