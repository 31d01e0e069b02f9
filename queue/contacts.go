package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// escalationBatch is how many escalations WatchEscalations reads at a
// time (EscalationQuery's largest limit).
const escalationBatch = 100

// MaxContactsPerCall is the most contacts AddDNC, RemoveDNC and
// [Engine.Remove] take at once (one transaction each).
const MaxContactsPerCall = 10_000

// checkContacts validates the contacts of a list call.
func checkContacts(contacts []uuid.UUID) error {
	var v validate.Validator
	checkContactCount(&v, len(contacts))
	for i, c := range contacts {
		v.Check(c != uuid.Nil, fmt.Sprintf("contact_uuids[%d]", i), validate.RuleRequired, "is required (not the nil UUID)")
	}
	return v.Err()
}

// checkContactCount adds to v the errors of a list of n contacts: none, or
// more than MaxContactsPerCall.
func checkContactCount(v *validate.Validator, n int) {
	v.Check(n > 0, "contact_uuids", validate.RuleRequired, "at least one contact is required")
	v.Check(n <= MaxContactsPerCall, "contact_uuids", validate.RuleLength,
		fmt.Sprintf("must hold at most %d contacts (got %d)", MaxContactsPerCall, n))
}

// AddDNC puts contacts on the do-not-call list, which every pool shares,
// and returns how many were not on it. An item of a contact on the list is
// never dispatched by a pool whose governing rule has dnc_check: dispatch
// skips it (Skipped, note "do not call") when it meets it. Items of pools
// without such a rule are dialled as before. An item of a contact in
// flight when it returns finishes its attempt; no claim that starts after
// it returns dispatches one, on any node: on PostgreSQL it waits for the
// claims under way that read the list (those under a rule with dnc_check,
// in any pool), so that an attempt that started before it counted is in
// flight when it returns, and such claims that start meanwhile wait for it.
// Errors: [validate.Errors] for no contact, more than
// [MaxContactsPerCall], or the nil UUID.
func (e *Engine) AddDNC(ctx context.Context, contacts ...uuid.UUID) (int, error) {
	if err := checkContacts(contacts); err != nil {
		return 0, fmt.Errorf("add dnc: %w", err)
	}
	var added int
	err := e.write(ctx, func(ctx context.Context, tx *wtx) (err error) {
		added, err = tx.AddDNC(ctx, tx.Now, contacts...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("add dnc: %w", err)
	}
	return added, nil
}

// RemoveDNC takes contacts off the do-not-call list and returns how many
// were on it. Items it skipped stay Skipped ([Engine.Requeue] revives
// one). Errors: as for AddDNC.
func (e *Engine) RemoveDNC(ctx context.Context, contacts ...uuid.UUID) (int, error) {
	if err := checkContacts(contacts); err != nil {
		return 0, fmt.Errorf("remove dnc: %w", err)
	}
	var removed int
	err := e.write(ctx, func(ctx context.Context, tx *wtx) (err error) {
		removed, err = tx.RemoveDNC(ctx, contacts...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("remove dnc: %w", err)
	}
	return removed, nil
}

// IsDNC reports whether contact is on the do-not-call list.
func (e *Engine) IsDNC(ctx context.Context, contact uuid.UUID) (bool, error) {
	if err := checkID("contact_uuid", contact); err != nil {
		return false, fmt.Errorf("is dnc: %w", err)
	}
	var on bool
	err := e.read(ctx, func(ctx context.Context, tx store.Tx) error {
		set, err := tx.OnDNC(ctx, contact)
		on = set[contact]
		return err
	})
	if err != nil {
		return false, fmt.Errorf("is dnc: %w", err)
	}
	return on, nil
}

// DNC returns a page of the do-not-call list, oldest entry first.
func (e *Engine) DNC(ctx context.Context, q campaign.DNCQuery) (campaign.DNCPage, error) {
	q, err := q.Normalize()
	if err != nil {
		return campaign.DNCPage{}, fmt.Errorf("list dnc: %w", err)
	}
	return listPage(ctx, e, "list dnc", q.Page, q.PerPage, func(ctx context.Context, tx store.Tx) ([]campaign.DNCEntry, int, error) {
		return tx.DNC(ctx, q)
	})
}

// OptOut records that contact opted out, and in the same transaction skips
// (Skipped, note "opted out") every waiting item of the contact in a pool
// whose governing rule has remove_on_opt_out. An item of the contact in
// flight finishes its attempt: completed, it stays Completed; failed, it
// is Skipped instead of retried. Items in pools governed by no such rule
// are left alone, but the opt-out is kept: a pool that comes under such a
// rule later skips the contact's item when dispatch meets it. It returns
// the number of items skipped. Opting out twice is harmless (the second
// skips what the first could not, if anything).
func (e *Engine) OptOut(ctx context.Context, contact uuid.UUID) (skipped int, err error) {
	if err := checkID("contact_uuid", contact); err != nil {
		return 0, fmt.Errorf("opt out: %w", err)
	}
	var freed []uuid.UUID // the pools whose expired leases freed slots
	err = e.write(ctx, func(ctx context.Context, tx *wtx) error {
		skipped, freed = 0, freed[:0]
		if _, err := tx.OptOut(ctx, contact, tx.Now); err != nil {
			return err
		}
		items, err := tx.ContactItems(ctx, contact)
		if err != nil {
			return err
		}
		for _, it := range items {
			if it.Status.Terminal() {
				continue
			}
			p, expired, err := e.applyExpiries(ctx, tx, it.PoolUUID)
			if err != nil {
				return err
			}
			if expired {
				freed = append(freed, p.UUID)
			}
			g, err := e.govern(ctx, tx, p)
			if err != nil {
				return err
			}
			if g.rule == nil || !g.rule.RemoveOnOptOut {
				continue
			}
			cur, err := tx.ItemByID(ctx, it.ID) // as the expiries left it
			if err != nil {
				return err
			}
			if cur.Status == pool.StatusSkipped {
				skipped++ // its lease had ended: the expiry, a failure, skipped it for the opt-out
				continue
			}
			if !cur.Status.Waiting() {
				continue // in flight: its failure will skip it; or finished
			}
			it := cur
			out, err := it.Skipped(campaign.NoteOptOut)
			if err != nil {
				return err
			}
			if err := tx.UpdateItem(ctx, it.Status, out); err != nil {
				return err
			}
			skipped++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("opt out: %w", err)
	}
	for _, id := range freed {
		e.wake.notify(id)
	}
	return skipped, nil
}

// Escalations returns escalations in the order they were recorded: those
// after q.After, at most q.Limit (100 by default), of one pool when
// q.PoolUUID is set. A consumer keeps the ID of the last one it handled
// and asks for those after it.
func (e *Engine) Escalations(ctx context.Context, q campaign.EscalationQuery) ([]campaign.Escalation, error) {
	q, err := q.Normalize()
	if err != nil {
		return nil, fmt.Errorf("list escalations: %w", err)
	}
	var out []campaign.Escalation
	err = e.read(ctx, func(ctx context.Context, tx store.Tx) error {
		out, err = tx.Escalations(ctx, q)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list escalations: %w", err)
	}
	return out, nil
}

// WatchEscalations calls fn with every escalation whose ID is above after,
// in ID order: those recorded already, then each as it is recorded, after
// its commit: at once for those this engine records, and for another
// process's on a store that tells it of their commits (PostgreSQL's
// LISTEN/NOTIFY, which looks again when its listener reconnects); within
// PollInterval for another process's on a SQLite file it shares.
// It returns when ctx ends (ctx's error), when fn
// returns an error (that error: fn is not called again), when the engine
// is closed ([ErrClosed]) and when a read fails (an error wrapping the
// store's: the database unreachable, a lock timeout), as Dequeue does; it
// does not retry, since it has no way to report a failure that goes on.
// fn runs on the caller's goroutine, one call at a time. A consumer that
// keeps the ID of the last escalation it handled, and passes it as after
// when it starts again (after a failed read too, a moment later), sees
// every escalation once (at least once, if it stops between handling one
// and keeping its ID).
func (e *Engine) WatchEscalations(ctx context.Context, after int64, fn func(campaign.Escalation) error) error {
	if fn == nil || after < 0 {
		var v validate.Validator
		v.Check(fn != nil, "fn", validate.RuleRequired, "is required")
		v.Check(after >= 0, "after", validate.RuleRange, "must be at least 0")
		return fmt.Errorf("watch escalations: %w", v.Err())
	}
	wake := make(chan struct{}, 1)
	defer e.wake.subscribe(wake, escalationsKey)() // before the first look: no recording is missed
	timer := time.NewTimer(e.opts.PollInterval)
	defer timer.Stop()
	for {
		for {
			batch, err := e.Escalations(ctx, campaign.EscalationQuery{After: after, Limit: escalationBatch})
			if err != nil {
				return fmt.Errorf("watch escalations: %w", err)
			}
			for _, esc := range batch {
				if err := fn(esc); err != nil {
					return err
				}
				after = esc.ID
			}
			if len(batch) < escalationBatch {
				break
			}
		}
		timer.Reset(e.opts.PollInterval)
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			return fmt.Errorf("watch escalations: %w", ctx.Err())
		case <-e.closed:
			return fmt.Errorf("watch escalations: %w", ErrClosed)
		}
	}
}
