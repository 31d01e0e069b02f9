package queue

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
)

// escalationsKey is the wake-up key of WatchEscalations: no pool has it.
var escalationsKey = uuid.Max

// maxDeferrals bounds the items one claim transaction may skip or
// postpone (outside their window, over their day's cap, on the
// do-not-call list) before it commits them and a new transaction goes on:
// a pool of a million contacts whose zone is asleep is moved out of the
// due set a thousand at a time, never in one long transaction that holds
// the writer.
const maxDeferrals = 1000

// admission is what the rule that governs a pool decides for the due items
// of one claim: the do-not-call and opt-out lists, read once for the
// batch of items the claim looks at.
type admission struct {
	g      governed
	dnc    map[uuid.UUID]bool
	opted  map[uuid.UUID]bool
	defers int // items skipped or postponed by this claim
}

// look reads the lists the rule checks for the contacts of due.
func (a *admission) look(ctx context.Context, tx *wtx, due []pool.Item) error {
	r := a.g.rule
	if r == nil || (!r.DNCCheck && !r.RemoveOnOptOut) || len(due) == 0 {
		return nil
	}
	contacts := make([]uuid.UUID, len(due))
	for i, it := range due {
		contacts[i] = it.ContactUUID
	}
	var err error
	switch {
	case r.DNCCheck && r.RemoveOnOptOut:
		a.dnc, a.opted, err = tx.Listed(ctx, contacts...) // one statement for both
	case r.DNCCheck:
		a.dnc, err = tx.OnDNC(ctx, contacts...)
	default:
		a.opted, err = tx.OptedOut(ctx, contacts...)
	}
	return err
}

// decide returns what becomes of the due item it at now: ok and it with
// its day's count taken when the rule lets it be attempted now, else the
// item skipped (its contact is on the do-not-call list, or opted out) or
// postponed (outside its window, or over its day's cap), and ok false. An
// item whose attempts reach the ceiling is left to Dispatched, which fails
// it: the ceiling comes first.
func (a *admission) decide(it pool.Item, now time.Time) (out pool.Item, ok bool, err error) {
	if a.g.rule == nil || it.Attempts >= a.g.ceiling {
		return it, true, nil
	}
	switch {
	case a.dnc[it.ContactUUID]:
		out, err = it.Skipped(campaign.NoteDNC)
	case a.opted[it.ContactUUID]:
		out, err = it.Skipped(campaign.NoteOptOut)
	default:
		gate, _ := a.g.gate(it)
		in, at, admitted := gate.Admit(it, now)
		if admitted {
			return in, true, nil
		}
		out, err = it.Postponed(at)
	}
	a.defers++
	return out, false, err
}

// governFailure applies the governing rule to out, an item a failed
// attempt (or an expired lease) has just settled:
//
//   - when its failed attempts (all its attempts: it was not completed)
//     reach the rule's escalation_after_failed_attempts (above 0), its
//     escalation is recorded, once in the item's life;
//   - an item its contact's opt-out removes (remove_on_opt_out) is Skipped
//     instead of retried;
//   - a retry the rule's window or day cap does not allow moves to the
//     earliest instant it does, Scheduled ([campaign.Gate.Retry]).
func (e *Engine) governFailure(ctx context.Context, tx *wtx, g governed, out pool.Item) (pool.Item, error) {
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
			return out.Skipped(campaign.NoteOptOut)
		}
	}
	gate, _ := g.gate(out)
	return gate.Retry(out), nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
