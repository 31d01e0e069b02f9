package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
)

// The contacts the rule's do-not-call and opt-out checks meet. Each is the
// first contact of its pool, which every -contacts (at least 3) has:
//
//   - on the do-not-call list: the FIFO pool's (the first item its
//     dispatch meets) and the Parallel pool's;
//   - opting out: the LIFO pool's, which that pool dials last (newest
//     first), so that it is still waiting when the opt-out comes, just
//     after the run's first call.
func dncContacts(cfg config) []uuid.UUID {
	return []uuid.UUID{contactID(cfg.seed, 0, 0), contactID(cfg.seed, 2, 0)}
}

func optOutContact(cfg config) uuid.UUID { return contactID(cfg.seed, 1, 0) }

// dncSetup is what setupDNC did: the contacts it listed, and how many of
// them were not on the list yet.
type dncSetup struct {
	contacts []uuid.UUID
	added    int
}

// setupDNC puts the demo's do-not-call contacts on the list (those already
// on it, from an earlier run, are counted, not added twice).
func setupDNC(ctx context.Context, eng *queue.Engine, cfg config, out io.Writer) (dncSetup, error) {
	cs := dncContacts(cfg)
	added, err := eng.AddDNC(ctx, cs...)
	if err != nil {
		return dncSetup{}, err
	}
	fmt.Fprintf(out, "do-not-call list: %d demo contacts put on it before dialling (added %d, already there %d)\n",
		len(cs), added, len(cs)-added)
	return dncSetup{contacts: cs, added: added}, nil
}

// escalationWatch follows the escalations recorded while the demo runs,
// through queue.Engine.WatchEscalations on a goroutine of its own, from
// the last one recorded before it started: an earlier run's are not
// counted again. It keeps those of the demo's pools, whoever recorded
// them: another dialer on the same file or database counts in it too.
type escalationWatch struct {
	pools  map[uuid.UUID]string // the demo's pools, by UUID: their names
	cancel context.CancelFunc   // nil once the goroutine has ended
	done   chan error           // the goroutine's result

	// Written by the goroutine until it ends, then by drain.
	last  int64                // ID of the last escalation seen
	count int                  // escalations of the demo's pools seen
	first *campaign.Escalation // the first of them
}

// watchEscalations starts following escalations; the caller calls close
// (or drain) when done.
func watchEscalations(ctx context.Context, eng *queue.Engine, ids []uuid.UUID) (*escalationWatch, error) {
	w := &escalationWatch{pools: map[uuid.UUID]string{}, done: make(chan error, 1)}
	for i, id := range ids {
		w.pools[id] = pools[i].name
	}
	for { // the last escalation already recorded
		batch, err := eng.Escalations(ctx, campaign.EscalationQuery{After: w.last})
		if err != nil {
			return nil, err
		}
		if len(batch) == 0 {
			break
		}
		w.last = batch[len(batch)-1].ID
	}
	ctx, w.cancel = context.WithCancel(ctx)
	go func() { w.done <- w.watch(ctx, eng) }()
	return w, nil
}

// watch runs WatchEscalations until ctx ends or the engine closes. It
// returns at a failed read too (the database unreachable a moment: a
// PostgreSQL restart, another process holding the SQLite file's lock past
// its busy timeout): it is started again a second later, from the last
// escalation seen, so that none is missed or counted twice.
func (w *escalationWatch) watch(ctx context.Context, eng *queue.Engine) error {
	for {
		err := eng.WatchEscalations(ctx, w.last, w.see)
		if ctx.Err() != nil || errors.Is(err, queue.ErrClosed) || errors.Is(err, store.ErrClosed) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// see counts esc, one escalation, if it is of the demo's pools.
func (w *escalationWatch) see(esc campaign.Escalation) error {
	w.last = esc.ID
	if _, ok := w.pools[esc.PoolUUID]; ok {
		w.count++
		if w.first == nil {
			w.first = &esc
		}
	}
	return nil
}

// close stops the goroutine and waits for it. It is safe to call again.
func (w *escalationWatch) close() error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	w.cancel = nil
	if err := <-w.done; !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// drain closes the watch, then reads the escalations it had not been
// handed yet (WatchEscalations hands them over after their commit, on its
// own goroutine), so that count holds every escalation recorded so far.
func (w *escalationWatch) drain(ctx context.Context, eng *queue.Engine) error {
	if err := w.close(); err != nil {
		return err
	}
	for {
		batch, err := eng.Escalations(ctx, campaign.EscalationQuery{After: w.last})
		if err != nil {
			return err
		}
		for _, esc := range batch {
			_ = w.see(esc)
		}
		if len(batch) == 0 {
			return nil
		}
	}
}

// reportRules prints what the rule's checks did: the items the
// do-not-call list and the opt-out skipped (all runs), and the
// escalations recorded (while this run ran, by any process or node, and
// in all). optedOut is how many items
// this run's opt-out skipped, -1 when it did not opt the contact out (it
// dialled nothing).
func reportRules(ctx context.Context, out io.Writer, eng *queue.Engine, ids []uuid.UUID,
	dnc dncSetup, optOut uuid.UUID, optedOut int, escs *escalationWatch) error {
	if err := escs.drain(ctx, eng); err != nil {
		return err
	}
	skipped, err := skippedByNote(ctx, eng, ids)
	if err != nil {
		return err
	}
	total := 0
	for _, id := range ids {
		n, err := countEscalations(ctx, eng, id)
		if err != nil {
			return err
		}
		total += n
	}
	fmt.Fprintf(out, "skipped for do-not-call: %5d  (dnc_check: %d demo contacts are on the list)\n",
		skipped[campaign.NoteDNC], len(dnc.contacts))
	how := "no opt-out this run: it comes after the first call, and there was none"
	if optedOut >= 0 {
		how = fmt.Sprintf("contact %s opted out after the first call: %s skipped at once", optOut, plural(optedOut, "waiting item"))
	}
	fmt.Fprintf(out, "skipped for opt-out:     %5d  (remove_on_opt_out: %s)\n", skipped[campaign.NoteOptOut], how)
	fmt.Fprintf(out, "escalations recorded:    %5d  while it ran (by any process), %d in all (after %d failed calls: %s, %s)\n",
		escs.count, total, escalateAfter, escalationType, escalationTarget)
	if e := escs.first; e != nil {
		fmt.Fprintf(out, "  the first: contact %s of %s, %d failed calls, at %s UTC\n",
			e.ContactUUID, escs.pools[e.PoolUUID], e.FailedAttempts, e.At.UTC().Format("15:04:05.000"))
	}
	return nil
}

// skippedByNote counts the Skipped items of the pools by their note
// (campaign.NoteDNC, campaign.NoteOptOut, or another skip's).
func skippedByNote(ctx context.Context, eng *queue.Engine, ids []uuid.UUID) (map[string]int, error) {
	out := map[string]int{}
	for _, id := range ids {
		err := eachItem(ctx, eng, id, pool.StatusSkipped, func(it pool.Item) { out[it.Notes]++ })
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// countEscalations returns how many escalations pool id has.
func countEscalations(ctx context.Context, eng *queue.Engine, id uuid.UUID) (int, error) {
	n := 0
	var after int64
	for {
		batch, err := eng.Escalations(ctx, campaign.EscalationQuery{After: after, PoolUUID: &id})
		if err != nil {
			return 0, err
		}
		n += len(batch)
		if len(batch) == 0 {
			return n, nil
		}
		after = batch[len(batch)-1].ID
	}
}

// plural is n and noun, with an "s" unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
