package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/internal/jsonenc"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// Lease is one dispatch of one item: the right to settle it until ExpiresAt.
// It is a plain value: it can be copied, marshalled to JSON (a dialer may
// store it with the call and settle it from a webhook later, on another
// goroutine or in another process sharing the store), and settled once.
type Lease struct {
	PoolUUID    uuid.UUID `json:"pool_uuid"`
	ContactUUID uuid.UUID `json:"contact_uuid"`
	// ItemID and Token name this dispatch: the item and its fencing token.
	// Token is positive and larger than the item's previous token by a
	// random step (see [pool.Item.Token]), not by one: a dispatch whose
	// commit a crash lost does not leave its token to the next, so its
	// lease gets ErrLeaseLost. Compare tokens of one item for equality
	// (or order); their values mean nothing else. Each step is at most
	// 2^31, so a token stays below 2^53 (exact in a JSON reader's float64)
	// for an item's first 2^22 dispatches.
	ItemID int64 `json:"item_id"`
	Token  int64 `json:"token"`
	// Attempt is the item's attempt number, 1 for its first dispatch.
	Attempt int `json:"attempt"`
	// ExpiresAt is the holder's deadline: when the lease ends unless
	// extended (Extend moves it), by the holder's clock. Settlements and
	// extensions after it are ErrLeaseLost. On a store with a lease grace
	// (PostgreSQL's: postgres.Options.LeaseGrace), nobody else takes the
	// lease for ended until the grace after it (Item.LeaseExpiresAt).
	ExpiresAt time.Time `json:"expires_at"`
	// Item is the item as dispatched, with its payload.
	Item pool.Item `json:"item"`

	// window is, for a lease whose claim a rule's calling window let
	// through, that window in the contact's zone; nil otherwise. Work
	// checks it again before it starts the handler (see runner.handle).
	window *callWindow
}

// callWindow is a rule's calling window in a contact's time zone.
type callWindow struct {
	w   campaign.Window
	loc *time.Location
}

// outsideWindow reports whether l's claim was let through by a calling
// window that t is outside of: a call started at t would break its rule.
func (l *Lease) outsideWindow(t time.Time) bool {
	return l.window != nil && !l.window.w.Contains(t, l.window.loc)
}

// MarshalJSON writes the lease with ExpiresAt as a [pool.Timestamp] (whole
// seconds, rounded down), like every time of the API.
func (l Lease) MarshalJSON() ([]byte, error) {
	type plain Lease // without this method
	return jsonenc.Marshal(struct {
		plain
		ExpiresAt pool.Timestamp `json:"expires_at"`
	}{plain(l), pool.Timestamp(l.ExpiresAt)})
}

func (e *Engine) newLease(it pool.Item) *Lease {
	return &Lease{
		PoolUUID:    it.PoolUUID,
		ContactUUID: it.ContactUUID,
		ItemID:      it.ID,
		Token:       it.Token,
		Attempt:     it.Attempts,
		ExpiresAt:   e.deadline(it),
		Item:        it,
	}
}

// deadline is the end of the lease of the in-flight item it for its
// holder: the end as stored less the store's grace (see
// store.LeaseGracer). Everyone else takes the lease for ended at the end
// as stored.
func (e *Engine) deadline(it pool.Item) time.Time {
	return it.LeaseExpiresAt.Add(-e.grace)
}

// Failure describes a failed attempt for [Engine.Fail]: a retry time, or a
// final failure, and a note. It is [pool.Failure].
type Failure = pool.Failure

// MarkInCall records that the call of a leased item connected: Processing
// becomes In_Call (In_Call stays). On success l.Item is updated, and
// l.ExpiresAt is the lease's deadline as stored (a lease rebuilt from an
// item and its token, as a webhook's handler does, learns it here).
// Errors: [ErrLeaseLost].
func (e *Engine) MarkInCall(ctx context.Context, l *Lease) error {
	it, err := e.settle(ctx, "mark in call", l, func(it pool.Item, _ governance, _ time.Time) (pool.Item, error) {
		return it.InCall()
	})
	if err == nil {
		l.Item = it
		l.ExpiresAt = e.deadline(it)
	}
	return err
}

// Extend moves the end of a lease to now + d and updates l.ExpiresAt; a d
// shorter than what is left of the lease brings its end closer. In a pool
// a campaign governs (or of a call a campaign kept when the pool was
// detached from it mid-call), it takes its turn with the claims of the
// campaign's pools (on PostgreSQL, the campaign's lock), so that a claim in another
// pool that took the call for ended is never followed by an extension of
// it: the lease is judged after those claims, and is lost when the
// contact was called from another of the campaign's pools at or after the
// lease's end (a claim on a node whose clock is ahead took this call for
// ended); after this node's clock stepped back, a call counted there
// before the lease began, at an instant now ahead of its end, reads the
// same way: the call is cut short rather than the contact called twice
// (times cannot tell the two apart). d must be
// from [MinLeaseTimeout] to [MaxLeaseTimeout]. Errors: [ErrLeaseLost],
// also for a lease that ended before the extension was written (its
// transaction waited behind others), [validate.Errors] for a bad d or a
// malformed lease, every bad field at once, and the store's ClockBehind
// error ([store.ClockChecker]; PostgreSQL's wraps postgres.ErrClockSkew)
// while this process's clock is too far behind the other nodes' for them
// to judge the new end by it: the lease keeps the end it had, and its
// call must stop there, counted from the last extension written on a
// clock that a step does not move (as [Engine.Work] does). Do not
// Extend a *Lease that another goroutine reads at the same time; copy it.
func (e *Engine) Extend(ctx context.Context, l *Lease, d time.Duration) error {
	var v validate.Validator
	checkLeaseInto(&v, l)
	v.Check(d >= MinLeaseTimeout && d <= MaxLeaseTimeout, "duration", validate.RuleRange,
		fmt.Sprintf("must be between %v and %v (got %v)", MinLeaseTimeout, MaxLeaseTimeout, d))
	if err := v.Err(); err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	it, err := e.settle(ctx, "extend", l, func(it pool.Item, gv governance, now time.Time) (pool.Item, error) {
		// A claim of another pool of the campaign, not held back by this
		// pool's lock, may take the call for ended once its lease's end
		// has passed, and call the contact from there: the extension
		// must not keep this call going then. So it takes its turn with
		// those claims (the campaign's lock, see campaignCalls), and the
		// lease is judged after that, at the clock: a claim that judged
		// the call ended committed before it, at an instant no later.
		// (The transaction's own instant, or lockedNow's, may be earlier
		// than such a claim's, by a wait shorter than lockWaitSlack.)
		// And the claim may have judged at a clock ahead of this one
		// (another node's): what it leaves is a call of the contact from
		// another pool counted at or after this lease's end, whatever
		// this clock says of the lease.
		others, err := gv.campaignCalls(it)
		if err != nil {
			return pool.Item{}, err
		}
		at := now
		if t := e.now(); t.After(at) {
			at = t
		}
		if !e.deadline(it).After(at) || calledSince(others, it) {
			return pool.Item{}, errLeaseEnded
		}
		if e.clockBehind != nil {
			// The other nodes judge the end written here by their
			// clocks: set by a clock too far behind theirs, they would
			// reach it before this holder does, and take its call for
			// ended while it goes on. The lease keeps its end, set by a
			// clock that was right. Asked after at was read: a step
			// after that leaves at right.
			if err := e.clockBehind(); err != nil {
				return pool.Item{}, err
			}
		}
		return it.Extended(at.Add(d + e.grace))
	})
	if err == nil {
		l.ExpiresAt = e.deadline(it)
		l.Item = it
	}
	return err
}

// Complete settles a leased item as Completed with note. On success
// l.Item is the item as settled. Errors: [ErrLeaseLost], [validate.Errors]
// for a malformed lease and for a note that is not valid UTF-8, holds NUL or
// is longer than [pool.MaxNoteLen], every bad field at once.
func (e *Engine) Complete(ctx context.Context, l *Lease, note string) error {
	var v validate.Validator
	checkLeaseInto(&v, l)
	v.Text("note", note, pool.MaxNoteLen)
	if err := v.Err(); err != nil {
		return fmt.Errorf("complete: %w", err)
	}
	it, err := e.settle(ctx, "complete", l, completeWith(note))
	if err == nil {
		l.Item = it
	}
	return err
}

// completeWith is the settlement of Complete.
func completeWith(note string) settleFunc {
	return func(it pool.Item, _ governance, now time.Time) (pool.Item, error) {
		return it.Completed(now, note)
	}
}

// failWith is the settlement of Fail.
func (e *Engine) failWith(f Failure) settleFunc {
	return func(it pool.Item, gv governance, now time.Time) (pool.Item, error) {
		return gv.fail(it, now, f)
	}
}

// Fail settles a leased item after a failed attempt. With attempts left
// (fewer than max_retries + 1 dispatches) it becomes Retrying, due at now +
// RetryDelay, or Scheduled at f.RetryAt when given; with none left, or when
// f.Final is set, it becomes Failed. The pool's current max_retries decides.
// f.RetryAt may be at most [MaxRetryDelay] after now; one in the past is
// due at once. Under a running campaign's rule, its max_total_calls and
// retry_interval_minutes stand for max_retries + 1 and RetryDelay, and a
// retry time outside the contact's calling window, or on a local day whose
// max_calls_per_day is reached, f.RetryAt included, moves to the earliest
// instant the rule allows (Scheduled); a contact that opted out is Skipped
// instead of retried; and the failure that brings the item's failed
// attempts to escalation_after_failed_attempts records its escalation. On
// success l.Item is the item as settled. Errors: [ErrLeaseLost],
// [validate.Errors] for a malformed lease, a RetryAt too far ahead, a
// RetryAt with Final (a final failure has no retry), or a bad note (as for
// Complete), every bad field at once.
func (e *Engine) Fail(ctx context.Context, l *Lease, f Failure) error {
	it, err := e.fail(ctx, l, f)
	if err == nil {
		l.Item = it
	}
	return err
}

// fail is Fail returning the item as settled, so the runner can tell a retry
// from a final failure.
func (e *Engine) fail(ctx context.Context, l *Lease, f Failure) (pool.Item, error) {
	var v validate.Validator
	checkLeaseInto(&v, l)
	e.checkFailure(&v, f)
	if err := v.Err(); err != nil {
		return pool.Item{}, fmt.Errorf("fail: %w", err)
	}
	return e.settle(ctx, "fail", l, e.failWith(f))
}

// checkFailure adds to v the errors of a RetryAt too far ahead or given
// with Final ("retry_at"), and of a bad note ("note").
func (e *Engine) checkFailure(v *validate.Validator, f Failure) {
	v.Text("note", f.Note, pool.MaxNoteLen)
	if f.RetryAt.IsZero() {
		return
	}
	if f.RetryAt.After(e.now().Add(MaxRetryDelay)) {
		v.Add("retry_at", validate.RuleRange,
			fmt.Sprintf("must be at most %v from now (got %s)", MaxRetryDelay, f.RetryAt.UTC().Format(time.RFC3339)))
	}
	if f.Final {
		v.Add("retry_at", validate.RuleExclusive, "must be zero when final is set: a final failure is not retried")
	}
}

// Release gives a leased item back unattempted: the attempt is not counted
// (nor, under a rule, the day's call) and the item is due again at once
// (Pending, or Retrying if it failed before), in its insertion place. On
// success l.Item is the item as released. A call that connected
// ([Engine.MarkInCall]) was an attempt: Release refuses it with
// [ErrWrongStatus] and changes nothing; complete or fail it. Errors:
// [ErrLeaseLost], [ErrWrongStatus].
func (e *Engine) Release(ctx context.Context, l *Lease) error {
	it, err := e.settle(ctx, "release", l, func(it pool.Item, gv governance, now time.Time) (pool.Item, error) {
		return gv.released(it, now)
	})
	if err == nil {
		l.Item = it
	}
	return err
}

// giveBack settles l as Release does when its item's call has not
// connected, and as Fail with f does when it has (In_Call: the contact was
// spoken to, so the attempt counts); released says which. It is Work's
// settlement of a handler stopped at shutdown. Errors: as Fail's.
func (e *Engine) giveBack(ctx context.Context, l *Lease, f Failure) (it pool.Item, released bool, err error) {
	var v validate.Validator
	checkLeaseInto(&v, l)
	e.checkFailure(&v, f)
	if err := v.Err(); err != nil {
		return pool.Item{}, false, fmt.Errorf("release: %w", err)
	}
	it, err = e.settle(ctx, "release", l, func(it pool.Item, gv governance, now time.Time) (pool.Item, error) {
		released = it.Status != pool.StatusInCall // set afresh at every run of the transaction
		if released {
			return gv.released(it, now)
		}
		return gv.fail(it, now, f)
	})
	if err == nil {
		l.Item = it
	}
	return it, released, err
}

// settle checks that l is the item's current lease and applies fn in one
// write transaction. A lease past its deadline is lost: its expiry is written
// (a failed attempt) and ErrLeaseLost returned.
func (e *Engine) settle(ctx context.Context, op string, l *Lease, fn settleFunc) (pool.Item, error) {
	if err := checkLease(l); err != nil {
		return pool.Item{}, fmt.Errorf("%s: %w", op, err)
	}
	r := &settleReq{l: l, fn: fn}
	if err := e.writeSettle(ctx, r); err != nil {
		return pool.Item{}, fmt.Errorf("%s: %w", op, err)
	}
	if r.freed {
		e.wake.notify(l.PoolUUID)
	}
	if r.lost {
		return pool.Item{}, fmt.Errorf("%s: %w", op, ErrLeaseLost)
	}
	return r.out, nil
}

// settleReq is one settlement and its result.
type settleReq struct {
	l    *Lease
	fn   settleFunc
	out  pool.Item
	lost bool
	// freed is set when the settlement freed a slot of the pool or made an
	// item due (the item left flight, or expired leases were applied), or
	// brought a lease's end closer (an Extend shorter than what was left):
	// the pool's waiters look again, and sleep until its next deadline.
	freed bool
}

// settleKey is the group-commit key of settlements: a batch's settlements
// of one pool run as one (see settleAll); a Settle whose outcomes span
// pools runs alone (alone names it). Per pool, because a combined call
// that waits out the store's lock timeout (another node holds the pool)
// fails all its operations for good (see groupcommit's package doc): the
// settlements of the other pools must not be among them.
type settleKey struct {
	pool  uuid.UUID
	alone *settleReq
}

// settleKeyOf returns req's settleKey.
func settleKeyOf(req any) settleKey {
	switch r := req.(type) {
	case *settleReq:
		return settleKey{pool: r.l.PoolUUID}
	case []*settleReq:
		for _, x := range r[1:] {
			if x.l.PoolUUID != r[0].l.PoolUUID {
				return settleKey{alone: r[0]}
			}
		}
		return settleKey{pool: r[0].l.PoolUUID}
	}
	panic(fmt.Sprintf("queue: settle request of type %T", req))
}

// writeSettle runs req (a *settleReq, or a non-empty []*settleReq for
// Settle) through group commit, combined with the batch's other
// settlements of its pool.
func (e *Engine) writeSettle(ctx context.Context, req any) error {
	// Late, as claims are: an extension sets a lease's end from the clock.
	return e.writeCombined(ctx, &groupcommit.Combiner{Key: settleKeyOf(req), Late: true, Run: e.settleAll}, req)
}

// settleAll runs settlements (each req a *settleReq or a []*settleReq) as
// if one after the other, in order, with one read of their items and one
// write: each sees the items as the ones before it left them, so a lease
// settled twice is lost the second time, and a MarkInCall then a Complete
// of one lease both apply.
func (e *Engine) settleAll(ctx context.Context, tx *wtx, reqs []any) error {
	var list []*settleReq
	for _, r := range reqs {
		switch r := r.(type) {
		case *settleReq:
			list = append(list, r)
		case []*settleReq:
			list = append(list, r...)
		}
	}
	ids := make([]int64, len(list))
	for i, r := range list {
		r.out, r.lost, r.freed = pool.Item{}, true, false
		ids[i] = r.l.ItemID
	}
	found, err := leasedItems(ctx, tx, list, ids)
	if err != nil {
		return err
	}
	items := make(map[int64]pool.Item, len(found))
	from := make(map[int64]pool.Status, len(found)) // as read: what the writes change from
	for _, it := range found {
		items[it.ID] = it
		from[it.ID] = it.Status
	}
	var writes []int64 // items to write, each once, in first-settled order
	written := make(map[int64]bool, len(list))
	for _, r := range list {
		it, ok := items[r.l.ItemID]
		if !ok {
			continue
		}
		out, lost, reclaimed, err := e.settleItem(ctx, tx, it, r.l, r.fn)
		if err != nil {
			return err
		}
		r.freed = reclaimed > 0
		if lost {
			continue
		}
		r.out, r.lost = out, false
		r.freed = r.freed || !out.Status.InFlight() || out.LeaseExpiresAt.Before(it.LeaseExpiresAt)
		items[out.ID] = out
		if !written[out.ID] {
			written[out.ID] = true
			writes = append(writes, out.ID)
		}
	}
	changes := make([]store.Change, len(writes))
	for i, id := range writes {
		changes[i] = store.Change{From: from[id], Item: items[id]}
	}
	signalled := make(map[uuid.UUID]bool, 1)
	for _, r := range list {
		if r.freed && !signalled[r.l.PoolUUID] {
			signalled[r.l.PoolUUID] = true
			signal(tx, r.l.PoolUUID)
		}
	}
	return tx.UpdateItems(ctx, changes...)
}

// leasedItems reads the items of the leases of list (ids, their IDs) in a
// settlement, each lease's pool first (settleItem reads it anyway): a
// store that locks each pool (PostgreSQL) then reads the items under
// those locks, rather than read them, lock their pools and read them
// again; with one pool, in the round trip that locks it (PoolItems). A
// lease that names a pool not there settles nothing (an item in another
// pool is not the lease's, see current).
func leasedItems(ctx context.Context, tx *wtx, list []*settleReq, ids []int64) ([]pool.Item, error) {
	if len(list) == 0 {
		return nil, nil
	}
	one := list[0].l.PoolUUID
	for _, r := range list {
		if r.l.PoolUUID != one {
			one = uuid.Nil
			break
		}
	}
	if one != uuid.Nil {
		_, found, err := tx.PoolItems(ctx, one, ids)
		if isNotFound(err) {
			return nil, nil
		}
		return found, err
	}
	seen := make(map[uuid.UUID]bool, 2)
	for _, r := range list {
		if id := r.l.PoolUUID; !seen[id] {
			seen[id] = true
			if _, err := tx.Pool(ctx, id); err != nil && !isNotFound(err) {
				return nil, err
			}
		}
	}
	return tx.ItemsByID(ctx, ids)
}

// settleFunc is what a settlement does to a leased item; gv reads what
// governs its pool, for the settlements that depend on it (a failure).
type settleFunc func(it pool.Item, gv governance, now time.Time) (pool.Item, error)

// governance is a settlement's access to what governs its item's pool,
// read only by the settlements that need it.
type governance struct {
	e   *Engine
	ctx context.Context
	tx  *wtx
	p   pool.Pool
}

// released gives back the in-flight item it unattempted at now (see
// [pool.Item.Released]), and the attempt in the calls a campaign kept of
// it when its pool was detached mid-call (see [store.Tx.DetachPool]).
func (gv governance) released(it pool.Item, now time.Time) (pool.Item, error) {
	out, err := it.Released(now)
	if err != nil {
		return out, err
	}
	day := out.CallsToday < it.CallsToday // the day's call given back too
	return out, gv.tx.ReleaseKeptCall(gv.ctx, it.ID, it.Token, day)
}

// campaignCalls takes the turn, with the claims of their pools, of the
// campaigns that count the call of the in-flight item it: the one that
// governs its pool (In Process or Paused), and those that keep the call,
// its pool detached from them mid-call ([store.Tx.KeepingCampaigns]); and
// returns the items of its contact in their pools but its own, and the
// calls they kept ([store.Tx.CampaignItems]). The turn is, on PostgreSQL,
// each campaign's lock, which every claim under its rule takes and holds
// until it commits, as the detach of a pool does; SQLite runs one write
// at a time already.
func (gv governance) campaignCalls(it pool.Item) ([]pool.Item, error) {
	g, err := gv.e.govern(gv.ctx, gv.tx, gv.p)
	if err != nil {
		return nil, err
	}
	campaigns, err := gv.tx.KeepingCampaigns(gv.ctx, it.ID, it.Token)
	if err != nil {
		return nil, err
	}
	if g.campaign != nil && !slices.Contains(campaigns, g.campaign.UUID) {
		campaigns = append(campaigns, g.campaign.UUID)
	}
	var out []pool.Item
	for _, c := range campaigns {
		items, err := gv.tx.CampaignItems(gv.ctx, c, it.PoolUUID, it.ContactUUID)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

// calledSince reports whether one of items, a contact's items in a
// campaign's other pools and the calls it kept, counts a call made at or
// after the end of it's lease, as stored (pool.Item.CallAt, the latest
// call a rule counted): a claim took that lease for ended, by a clock
// that said so (a claim's call is counted at its clock, at or after the
// end it read). The call kept of it itself, in flight (its pool detached
// mid-call), is left out: it reads the same lease's end, which a taking
// claim's own lease ends after; its call was counted at its dispatch, which
// a clock stepped back since may put after the lease's end.
func calledSince(items []pool.Item, it pool.Item) bool {
	end := it.LeaseExpiresAt
	return slices.ContainsFunc(items, func(o pool.Item) bool {
		self := o.PoolUUID == uuid.Nil && o.Status.InFlight() && o.LeaseExpiresAt.Equal(end)
		return !self && !o.CallAt.Before(end)
	})
}

// fail settles the in-flight item it after a failed attempt at now, under
// what governs its pool: the ceiling and retry delay, then the rule's
// escalation, opt-out and window (see governFailure).
func (gv governance) fail(it pool.Item, now time.Time, f Failure) (pool.Item, error) {
	g, err := gv.e.govern(gv.ctx, gv.tx, gv.p)
	if err != nil {
		return pool.Item{}, err
	}
	ceiling, others, err := gv.e.contactsOthers(gv.ctx, gv.tx, g, it)
	if err != nil {
		return pool.Item{}, err
	}
	out, err := it.Failed(ceiling, now, f, g.retry)
	if err != nil {
		return pool.Item{}, err
	}
	return gv.e.governFailure(gv.ctx, gv.tx, g, out, others)
}

// settleItem settles the item it, as read in this transaction, at tx.Now.
// The pool's expired leases go first, as in every write on it (reclaimed
// says how many), then it is written with fn applied unless l is not its
// current lease.
func (e *Engine) settleItem(ctx context.Context, tx *wtx, it pool.Item, l *Lease, fn settleFunc) (out pool.Item, lost bool, reclaimed int, err error) {
	if !current(it, l) {
		return pool.Item{}, true, 0, nil
	}
	p, reclaimed, err := e.poolNow(ctx, tx, it.PoolUUID)
	if err != nil {
		return pool.Item{}, false, 0, err
	}
	if !e.deadline(it).After(tx.Now) {
		// The holder's deadline has passed: the lease is lost. The reclaim
		// in poolNow applied its expiry, or an earlier one in this
		// transaction did, or, within the store's grace after the
		// deadline, no one has taken it back yet: the item stays in
		// flight until then.
		return pool.Item{}, true, reclaimed, nil
	}
	out, err = fn(it, governance{e: e, ctx: ctx, tx: tx, p: p}, tx.Now)
	if errors.Is(err, errLeaseEnded) {
		return pool.Item{}, true, reclaimed, nil
	}
	if err != nil {
		return pool.Item{}, false, reclaimed, err
	}
	return out, false, reclaimed, nil
}

// errLeaseEnded is returned by a settleFunc that judges the lease ended
// at a later instant than the transaction's: the lease is lost.
var errLeaseEnded = errors.New("lease ended")

// current reports whether l is the current lease of it.
// Every field that names the dispatch must match: a lease whose pool or
// contact is not the item's (a webhook that paired the wrong contact with a
// lease) settles nothing.
func current(it pool.Item, l *Lease) bool {
	return it.PoolUUID == l.PoolUUID && it.ContactUUID == l.ContactUUID &&
		it.Status.InFlight() && it.Token == l.Token
}

// Outcome is how one leased item ends, for [Engine.Settle].
type Outcome struct {
	Lease *Lease
	// Failure, when not nil, fails the attempt as [Engine.Fail] does; nil
	// completes the item as [Engine.Complete] does.
	Failure *Failure
	// Note is the note of a completion. A failure carries its own
	// (Failure.Note): a Note beside a Failure is refused, not dropped.
	Note string
}

// Settle completes or fails many leases in one write transaction: the batch
// path, for a dialer that claims with [Engine.DequeueN] and reports results
// in bulk. Each outcome is applied as [Engine.Complete] or [Engine.Fail]
// would apply it, in order; results[i] is nil or wraps [ErrLeaseLost] for
// outs[i], and a lost lease does not stop the others. On success the
// Lease.Item of each outcome settled is the item as settled. err is for the call as
// a whole: a nil or malformed lease, a bad failure or note, or a Note beside
// a Failure ([validate.Errors] naming each, with its index), or a store
// failure; then nothing is written and results is nil, except after an
// error wrapping [store.ErrCommitUnknown] (PostgreSQL: the COMMIT's answer
// lost), when the outcomes may have been written: settled again, each one
// that was gets [ErrLeaseLost].
func (e *Engine) Settle(ctx context.Context, outs ...Outcome) (results []error, err error) {
	var v validate.Validator
	v.Check(len(outs) > 0, "outcomes", validate.RuleRequired, "at least one outcome is required")
	for i, o := range outs {
		// Checked unprefixed, named only if it fails: no field name is
		// made for the outcomes of a batch that pass.
		var ov validate.Validator
		checkLeaseInto(&ov, o.Lease)
		if o.Failure != nil {
			var fv validate.Validator
			e.checkFailure(&fv, *o.Failure)
			ov.Merge("failure.", fv.Err())
			if o.Note != "" {
				ov.Add("note", validate.RuleExclusive, "must be empty with a failure: the failure's note is recorded")
			}
		} else {
			ov.Text("note", o.Note, pool.MaxNoteLen)
		}
		if err := ov.Err(); err != nil {
			v.Merge(fmt.Sprintf("outcomes[%d].", i), err)
		}
	}
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("settle: %w", err)
	}
	reqs := make([]*settleReq, len(outs))
	for i, o := range outs {
		fn := completeWith(o.Note)
		if o.Failure != nil {
			fn = e.failWith(*o.Failure)
		}
		reqs[i] = &settleReq{l: o.Lease, fn: fn}
	}
	if err := e.writeSettle(ctx, reqs); err != nil {
		return nil, fmt.Errorf("settle: %w", err)
	}
	results = make([]error, len(outs))
	notified := make(map[uuid.UUID]bool, 1)
	for i, r := range reqs {
		if r.lost {
			results[i] = fmt.Errorf("settle: outcomes[%d]: %w", i, ErrLeaseLost)
		} else {
			r.l.Item = r.out
		}
		if r.freed && !notified[r.l.PoolUUID] {
			notified[r.l.PoolUUID] = true
			e.wake.notify(r.l.PoolUUID)
		}
	}
	return results, nil
}

// checkLease returns the [validate.Errors] of a nil or malformed lease.
func checkLease(l *Lease) error {
	var v validate.Validator
	checkLeaseInto(&v, l)
	return v.Err()
}

// checkLeaseInto adds to v the errors of a nil or malformed lease.
func checkLeaseInto(v *validate.Validator, l *Lease) {
	if l == nil {
		v.Add("lease", validate.RuleRequired, "is required")
		return
	}
	v.Check(l.PoolUUID != uuid.Nil, "pool_uuid", validate.RuleRequired, "is required (not the nil UUID)")
	v.Check(l.ContactUUID != uuid.Nil, "contact_uuid", validate.RuleRequired, "is required (not the nil UUID)")
	v.Check(l.ItemID > 0, "item_id", validate.RuleRange, "must be positive")
	v.Check(l.Token > 0, "token", validate.RuleRange, "must be positive")
}
