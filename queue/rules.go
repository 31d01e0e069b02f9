package queue

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
)

// escalationsKey is the wake-up key of WatchEscalations: no pool has it.
var escalationsKey = uuid.Max

// maxDeferrals bounds the items one claim transaction may skip, postpone
// (outside their window, over their day's cap, on the do-not-call list)
// or fail at the ceiling before it commits them and a new transaction goes
// on (checked between reads of the due set, so one may go past it by a
// read's worth): a pool of a million contacts whose zone is asleep is
// moved out of the due set a thousand at a time, never in one long
// transaction that holds the writer (and, on PostgreSQL, its campaign's
// lock).
const maxDeferrals = 1000

// admission is what the rule that governs a pool decides for the due items
// of one claim: the do-not-call and opt-out lists, and the contacts' items
// in the campaign's other pools (the rule's caps are the contact's, across
// the campaign, not each item's), read once for the batch of items the
// claim looks at.
type admission struct {
	g governed
	// txNow is the transaction's instant, at which the leases of the
	// other pools are judged (see decide).
	txNow  time.Time
	dnc    map[uuid.UUID]bool
	opted  map[uuid.UUID]bool
	others map[uuid.UUID][]pool.Item // by contact
	defers int                       // items skipped, postponed or failed at the ceiling by this claim
	// behind lists the pools, once each, whose calls the items passed
	// over wait for: their waiters follow them (see wakeups.follow).
	behind []uuid.UUID
}

// verdict is what admission decides for one due item.
type verdict int

const (
	admit        verdict = iota // dispatch it, under the ceiling decide returns
	admitCounted                // admit, with the call counted on its day (campaign.Gate.Admit): CallToken is the dispatch's token
	deferral                    // skipped or postponed: write what decide returns
	pass                        // its contact is in flight in another pool of the campaign: leave it due, as it is
)

// look reads what the rule checks for the contacts of due: their items in
// the campaign's other pools (on PostgreSQL this takes the campaign's
// lock, see [store.Tx.CampaignItems]), and the lists the rule asks for.
func (a *admission) look(ctx context.Context, tx *wtx, due []pool.Item) error {
	r := a.g.rule
	if r == nil || len(due) == 0 {
		return nil
	}
	contacts := make([]uuid.UUID, len(due))
	for i, it := range due {
		contacts[i] = it.ContactUUID
	}
	others, err := tx.CampaignItems(ctx, a.g.campaign.UUID, a.g.UUID, contacts...)
	if err != nil {
		return err
	}
	clear(a.others)
	for _, it := range others {
		if a.others == nil {
			a.others = make(map[uuid.UUID][]pool.Item, len(others))
		}
		a.others[it.ContactUUID] = append(a.others[it.ContactUUID], it)
	}
	switch {
	case r.DNCCheck && r.RemoveOnOptOut:
		a.dnc, a.opted, err = tx.Listed(ctx, contacts...) // one statement for both
	case r.DNCCheck:
		a.dnc, err = tx.OnDNC(ctx, contacts...)
	case r.RemoveOnOptOut:
		a.opted, err = tx.OptedOut(ctx, contacts...)
	}
	return err
}

// decide returns what becomes of the due item it at now, and the ceiling
// of its attempts:
//
//   - admitCounted, with it and its day's count taken, when the rule lets
//     it be attempted now; admit, with it as it is, when no rule governs it
//     or its attempts reach the ceiling;
//   - pass, with it as it is, when its contact is in flight in another
//     pool of the campaign, under a lease that has not ended: one call at
//     a time to a contact;
//   - deferral, with it skipped (its contact is on the do-not-call list,
//     or opted out) or postponed (outside its window, or over the day's
//     cap).
//
// The rule's caps are the contact's: the ceiling is max_total_calls less
// the attempts of the contact's items in the campaign's other pools, and
// their calls count against the day's cap with the item's own. An item
// whose own attempts reach the ceiling is admitted as it is, for
// Dispatched to fail it: that comes first; then the call in flight
// elsewhere (passed over now, failed later if the contact's attempts
// reach it), then the contact's ceiling.
func (a *admission) decide(it pool.Item, now time.Time) (out pool.Item, ceiling int, v verdict, err error) {
	if a.g.rule == nil || it.Attempts >= a.g.ceiling {
		return it, a.g.ceiling, admit, nil
	}
	others := a.others[it.ContactUUID]
	ceiling = a.g.ceiling
	for _, o := range others {
		// A lease past its end is a call that ended; it is judged at the
		// transaction's instant, which is never later than now: a
		// settlement in this transaction takes the lease as it stands at
		// that instant, and an Extend of it after this claim must not
		// keep alive a call this claim took for ended.
		if o.Status.InFlight() && o.LeaseExpiresAt.After(a.txNow) {
			if o.PoolUUID != uuid.Nil && !slices.Contains(a.behind, o.PoolUUID) {
				a.behind = append(a.behind, o.PoolUUID) // not a call kept of a detached pool
			}
			return it, ceiling, pass, nil
		}
		ceiling -= o.Attempts
	}
	if it.Attempts >= ceiling {
		return it, ceiling, admit, nil
	}
	switch {
	case a.dnc[it.ContactUUID]:
		out, err = it.Skipped(campaign.NoteDNC)
	case a.opted[it.ContactUUID]:
		out, err = it.Skipped(campaign.NoteOptOut)
	default:
		gate, _ := a.g.gate(it)
		gate.Others = others
		in, at, admitted := gate.Admit(it, now)
		if admitted {
			return in, ceiling, admitCounted, nil
		}
		out, err = it.Postponed(at)
	}
	a.defers++
	return out, ceiling, deferral, err
}

// governFailure applies the governing rule to out, an item a failed
// attempt (or an expired lease) has just settled:
//
//   - when its failed attempts (all its attempts: it was not completed)
//     reach the rule's escalation_after_failed_attempts (above 0), its
//     escalation is recorded, once in the item's life;
//   - an item its contact's opt-out removes (remove_on_opt_out) is Skipped
//     instead of retried, and its retry_count does not count the retry;
//   - a retry the rule's window or day cap does not allow moves to the
//     earliest instant it does, Scheduled ([campaign.Gate.Retry]), the
//     contact's calls in the campaign's other pools (others, see
//     contactsOthers) counted with its own.
func (e *Engine) governFailure(ctx context.Context, tx *wtx, g governed, out pool.Item, others []pool.Item) (pool.Item, error) {
	r := g.rule
	if r == nil {
		return out, nil
	}
	if n := r.EscalationAfterFailedAttempts; n != nil && *n > 0 && out.Attempts >= *n {
		esc := campaign.Escalation{
			PoolUUID: out.PoolUUID, ContactUUID: out.ContactUUID, ItemID: out.ID,
			CampaignUUID: g.campaign.UUID, RuleUUID: r.UUID,
			Type: deref(r.EscalationType), Target: deref(r.EscalationTarget),
			FailedAttempts: out.Attempts, At: tx.Now,
		}
		_, added, err := tx.InsertEscalation(ctx, esc)
		if err != nil {
			return out, err
		}
		if added {
			tx.Flags |= flagEscalated
			// Other processes' WatchEscalations too (PostgreSQL's NOTIFY):
			// the key is no pool's, and wakes only them.
			signal(tx, escalationsKey)
		}
	}
	if !out.Status.Waiting() {
		return out, nil // Failed for good
	}
	if r.RemoveOnOptOut {
		opted, err := tx.OptedOut(ctx, out.ContactUUID)
		if err != nil {
			return out, err
		}
		if opted[out.ContactUUID] {
			out.RetryCount-- // the retry Failed counted is not scheduled: the item ends
			return out.Skipped(campaign.NoteOptOut)
		}
	}
	gate, _ := g.gate(out)
	gate.Others = others
	return gate.Retry(out, tx.Now), nil
}

// contactsOthers returns, when a rule governs g, the ceiling of its
// attempts that the contact's items in the campaign's other pools leave
// (the rule's max_total_calls less their attempts), and those items with
// the calls they kept ([store.Tx.CampaignItems], which on PostgreSQL takes
// the campaign's lock), as a claim reads them (see admission): a failure
// judges its retry by the contact's caps, as the claim of the retry will.
// (It judged by the item's alone: a contact's last call failed as a retry
// never to be made, and a retry past the day's cap waited Retrying for a
// time it could not be called.) Without a rule: g's ceiling, and no items.
func (e *Engine) contactsOthers(ctx context.Context, tx *wtx, g governed, it pool.Item) (int, []pool.Item, error) {
	if g.rule == nil || g.campaign == nil {
		return g.ceiling, nil, nil
	}
	others, err := tx.CampaignItems(ctx, g.campaign.UUID, g.UUID, it.ContactUUID)
	if err != nil {
		return 0, nil, err
	}
	ceiling := g.ceiling
	for _, o := range others {
		ceiling -= o.Attempts
	}
	return ceiling, others, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
