package queue

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// reclaimBatch is how many expired leases one query fetches.
const reclaimBatch = 64

// TryDequeue claims the next due item of a pool without waiting. It returns
// [ErrEmpty] when nothing is due, [ErrAtCapacity] when items are due but the
// pool's cap is reached (1 for FIFO and LIFO, max_parallel_items for
// Parallel), [ErrHeld] when the pool's campaigns hold it (it is attached to
// campaigns, none In Process), [store.ErrNotFound] for an unknown pool.
//
// In the same write transaction it first applies the pool's expired leases
// (each a failed attempt), then checks the cap, then takes due items in the
// pool's order; a due item whose attempts already reach the ceiling (the
// governing rule's max_total_calls, else the pool's max_retries + 1)
// becomes Failed and the next one is tried. Under a rule, the caps are the
// contact's across the campaign's pools: an item whose contact is in
// flight in another of them is passed over (left due), and the attempts
// and the day's calls of the contact's items there count with its own.
// Cost: an index seek, whatever the number of items (under a rule, and a
// seek per contact and pool of the campaign); the items a claim skips,
// postpones or fails on its way leave the due set, each once, about 1,000
// a transaction (a claim that meets more commits those and goes on in the
// next).
//
// A claim that commits more than 2 s after the instant it judged the pool
// at (a stalled store, a commit whose outcome was learned late) hands out
// nothing: leases' ends and calling windows were judged then, so its
// leases are given back, unattempted, and the pool is looked at again. After
// 3 such claims in a row, TryDequeue, [Engine.Dequeue], [Engine.DequeueN]
// and [Engine.DequeueCampaign] return an error (no sentinel) and hold no
// lease, rather than hold the caller forever.
//
// A claim whose commit's outcome the store could not learn (the database
// unreachable: an error wrapping [store.ErrCommitUnknown]) may have
// committed. Its leases are given back, unattempted, in the background,
// tried again until the database answers: the caller holds no lease, and
// its items are due again as soon as the database is back. A lease that
// could not be given back before its end (the database unreachable that
// long), or before Close, expires: its item counts a failed attempt. The
// same holds for Dequeue, DequeueN, DequeueCampaign and Work's claims.
func (e *Engine) TryDequeue(ctx context.Context, poolID uuid.UUID) (*Lease, error) {
	ls, err := e.tryDequeue(ctx, poolID, 1, uuid.Nil)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// Dequeue claims the next due item of a pool, waiting until one is due and
// the cap allows. It wakes on every change made through this Engine that can
// let it through (an Add, a settlement that frees a slot or makes an item
// due, a raised cap, a Requeue, the pool's deletion; in a pool of a
// campaign with a rule, also the end of a call from another of the
// campaign's pools to a contact whose item the last look passed over, one
// call at a time to a contact), at the next retry time
// or lease deadline of the pool, and at the latest every PollInterval (for
// changes made by another process). A look that no wake-up asked for (the
// poll, a retry time or deadline come) is first a read transaction, which
// claims only when the pool may give: a Dequeue blocked on a pool with
// nothing to give costs a read a PollInterval (see the README's "Many
// pools"), and holds no connection while it sleeps. It returns ctx's error when ctx ends
// first, and [ErrClosed] once Close has begun; in both cases no lease is
// held. A store lock that another process or node holds past the store's
// timeout ([store.ErrLockTimeout]) does not end the wait: it looks again;
// nor does a read between looks that fails (the next look's claim, a
// write, returns the store's error if it persists).
// Errors also: [store.ErrNotFound], the error of 3 late claims in a row,
// and one wrapping [store.ErrCommitUnknown], whose claim, if it committed,
// is given back (see [Engine.TryDequeue]).
func (e *Engine) Dequeue(ctx context.Context, poolID uuid.UUID) (*Lease, error) {
	ls, err := e.dequeueWait(ctx, poolID, 1)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// DequeueN is [Engine.Dequeue] for up to n items, claimed in one
// transaction in the pool's order, as many as are due and the cap allows:
// it waits until it can claim at least one, then returns them all. It never
// returns an empty slice. n must be at least 1; a pool never has more than
// [pool.MaxParallelItems] (100) items in flight, so a larger n claims as
// many as 100 would.
func (e *Engine) DequeueN(ctx context.Context, poolID uuid.UUID, n int) ([]*Lease, error) {
	var v validate.Validator
	v.Check(poolID != uuid.Nil, "uuid", validate.RuleRequired, "is required (not the nil UUID)")
	v.IntMin("n", n, 1)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	return e.dequeueWait(ctx, poolID, n)
}

// dequeueWait claims up to n items of a pool, waiting until it can claim
// one.
func (e *Engine) dequeueWait(ctx context.Context, poolID uuid.UUID, n int) ([]*Lease, error) {
	if err := checkID("uuid", poolID); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	wake := make(chan struct{}, 1)
	defer e.wake.subscribe(wake, poolID)() // before the first look, so no wake-up is missed
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var floor, locked backoff
	polled := false // the last sleep ended at its timer, not at a wake-up
	held := false   // the last claim found the pool held by its campaigns
	for {
		wait, look := time.Duration(0), true
		if polled {
			wait, look = e.poll(ctx, poolID, held, &floor)
		}
		if look {
			ls, err := e.tryDequeue(ctx, poolID, n, uuid.Nil)
			held = errors.Is(err, ErrHeld)
			if !isNothing(err) && !isLockTimeout(err) {
				return ls, err
			}
			wait = e.opts.PollInterval // held: what frees it (a start, a resume, a detach) wakes this
			switch {
			case isLockTimeout(err):
				// Another process or node held the lock past the store's
				// timeout: the wait goes on, as long as ctx allows, looking
				// again soon (a growing pause, in case the timeout is short).
				wait = locked.pause(0, e.opts.PollInterval)
			case !errors.Is(err, ErrHeld):
				locked.reset()
				// A read that fails (a store that blinked) does not end
				// the wait, as in DequeueCampaign and Work: it sleeps
				// PollInterval, and the next look's claim tells a store
				// that stays down.
				if w, err := e.pause(ctx, poolID, &floor); err == nil {
					wait = w
				}
			}
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		polled = false
		select {
		case <-wake:
		case <-timer.C:
			polled = true
		case <-ctx.Done():
			return nil, fmt.Errorf("dequeue: %w", ctx.Err())
		case <-e.closing:
			return nil, fmt.Errorf("dequeue: %w", ErrClosed)
		}
	}
}

// pause returns how long a Dequeue that found nothing may sleep: until the
// pool's next retry time or lease deadline (just past it), at most
// PollInterval, with floor under deadlines already past (see backoff).
func (e *Engine) pause(ctx context.Context, poolID uuid.UUID, floor *backoff) (time.Duration, error) {
	var next time.Time
	var ok bool
	err := e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) error {
		var err error
		next, ok, err = tx.NextWake(ctx, poolID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("dequeue: %w", err)
	}
	if !ok {
		floor.reset()
		return e.opts.PollInterval, nil
	}
	return floor.pause(next.Sub(e.now()), e.opts.PollInterval), nil
}

// poll is a blocked Dequeue's look at its pool when its sleep ended with
// no wake-up (its safety poll, or the pool's next retry time or lease
// deadline come): it reads whether a claim could find anything (see
// store.Tx.PoolWakes), and reports whether to claim; if not, it returns
// how long to sleep again, as pause does. So a Dequeue blocked on a pool
// with nothing to give costs a read transaction a PollInterval, not a
// claim's write: a dialer keeps thousands of pools, most of them empty,
// each with a waiter, and their claims would go through the one writer
// (group commit) beside the busy pools'. A read that fails, or finds the
// pool gone, leaves the answer to the claim. When the last claim found the
// pool held by its campaigns (held), and it has items to give, the read
// also asks whether it still is (see stillHeld): a held pool's items stay
// due, and what frees it in another process (a campaign started there)
// is learnt at this poll. Until then its ended leases and come retries
// wait, as they do for any pool no claim touches, for the first claim
// once the hold ends.
func (e *Engine) poll(ctx context.Context, poolID uuid.UUID, held bool, floor *backoff) (wait time.Duration, claim bool) {
	var w store.PoolWake
	var found, still bool
	err := e.readUntilClosing(ctx, func(ctx context.Context, tx store.Tx) error {
		wakes, err := tx.PoolWakes(ctx, poolID)
		if err != nil {
			return err
		}
		w, found = wakes[poolID]
		still = false
		if held && found && mayGive(w, e.now()) {
			still, err = stillHeld(ctx, tx, poolID)
		}
		return err
	})
	now := e.now()
	if err == nil && still {
		return e.opts.PollInterval, false // what frees it (a start, a resume, a detach) wakes this
	}
	if err != nil || !found || mayGive(w, now) {
		return 0, true
	}
	if !w.HasNext {
		floor.reset()
		return e.opts.PollInterval, false
	}
	return floor.pause(w.Next.Sub(now), e.opts.PollInterval), false
}

// stillHeld reports whether pool id, in a read transaction, is held by its
// campaigns as a claim would find it (see govern): attached to some, none
// of them In Process.
func stillHeld(ctx context.Context, tx store.Tx, id uuid.UUID) (bool, error) {
	cs, attached, err := tx.PoolGovernors(ctx, id)
	if err != nil || !attached {
		return false, err
	}
	return len(cs) == 0 || !cs[0].Status.Dispatches(), nil
}

// backoff is the floor under a blocked Dequeue's sleeps. A next-wake time
// that is already past when read is usually a race (an item came due
// between the look and the read) and is met a millisecond later; but a
// store whose bound is wrong would answer the same past time forever, and
// turn the wait into a write every millisecond. So each past deadline in a
// row doubles the pause, up to the poll interval.
type backoff struct{ last time.Duration }

// pause returns how long to sleep for a deadline d from now, at most poll.
func (b *backoff) pause(d, poll time.Duration) time.Duration {
	if d > 0 {
		b.last = 0
		return min(d+time.Millisecond, poll) // just past the deadline, not at it
	}
	b.last = min(max(2*b.last, time.Millisecond), poll)
	return b.last
}

func (b *backoff) reset() { b.last = 0 }

// tryDequeue claims up to n items in one write transaction, without
// waiting. Concurrent dequeues of one pool that share a group-commit batch
// are claimed together (see claim). A caller that serves campaign via (not
// uuid.Nil) gets items only while that campaign governs the pool, else
// ErrHeld: it read the campaign's pools before, and the pool may have been
// detached since, and attached to another campaign.
func (e *Engine) tryDequeue(ctx context.Context, poolID uuid.UUID, n int, via uuid.UUID) ([]*Lease, error) {
	if err := checkID("uuid", poolID); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	// A claim counts as a Work call does: Close waits for it, so that one
	// under way when Close begins can give its leases back (below) before
	// writes end. None starts once Close has begun.
	if !e.beginWork() {
		return nil, fmt.Errorf("dequeue: %w", ErrClosed)
	}
	defer e.works.Done()
	r := &claimReq{n: min(n, pool.MaxParallelItems)}
	// Late: a claim decides at the clock (leases' ends, calling windows),
	// so no other caller's long write runs between it and the commit.
	cb := &groupcommit.Combiner{Key: claimKey{poolID, via}, Late: true, Run: func(ctx context.Context, tx *wtx, reqs []any) error {
		return e.claim(ctx, tx, poolID, via, reqs)
	}}
	lateClaims := 0 // given back for being late; the transactions that end in errMore do not count
	for {
		if err := e.writeCombined(ctx, cb, r); err != nil {
			if errors.Is(err, store.ErrCommitUnknown) {
				e.giveBackUnknown(r.leases) // the claim may have committed: see giveBackUnknown
			}
			return nil, fmt.Errorf("dequeue: %w", err)
		}
		if r.freed {
			e.wake.notify(poolID) // expired leases freed slots
		}
		if r.outcome == errMore {
			// The claim deferred as many items as one transaction may
			// (see maxDeferrals): commit those, look further in the next.
			if e.isClosing() {
				return nil, fmt.Errorf("dequeue: %w", ErrClosed) // nothing claimed: errMore holds no lease
			}
			continue
		}
		if r.outcome != nil {
			return nil, r.outcome
		}
		if e.isClosing() {
			return nil, e.giveBackAtClose(ctx, r.leases)
		}
		late := e.now().Sub(r.at)
		if late <= lateClaimSlack {
			return r.leases, nil
		}
		// Committed long after it was judged (a commit whose answer was
		// lost and learned later, a store stalled): the leases' ends and
		// the calling windows were judged then. They go back, unattempted,
		// and the pool is looked at again, now.
		if err := e.giveBackAll(ctx, r.leases, giveBackTries); err != nil {
			return nil, fmt.Errorf("dequeue: the claim committed %v after it was judged; giving its leases back failed: %w", late, err)
		}
		if lateClaims++; lateClaims >= maxLateClaims {
			return nil, fmt.Errorf("dequeue: the claim committed %v after it was judged, %d times in a row; its leases were given back", late, lateClaims)
		}
	}
}

// lateClaimSlack is how long after the instant it was judged at a claim
// may commit and still hand out its leases: far above a commit's time on a
// busy machine, below the round trip's bound past which the PostgreSQL
// store learns a silent commit's outcome on another connection (at least
// 5.5 s), after which a lease may have ended, or a calling window closed.
const lateClaimSlack = 2 * time.Second

// maxLateClaims bounds the claims in a row a Dequeue gives back for being
// late: a store that commits every claim that late fails the call rather
// than hold it forever.
const maxLateClaims = 3

// giveBackAll releases, unattempted, the leases of a claim that cannot hand
// them out (committed too late, see lateClaimSlack, or as Close began), all
// in one write transaction, tried up to tries times, giveBackPause apart,
// while the leases last (see giveBackLease). A lease that has ended
// meanwhile is not the caller's to give back: its expiry counts. It
// returns the error of the last try, when no try was written.
//
// One write, not one a lease: on a database gone silent each try waits out
// a write's round-trip bound, and the time taken must not grow with the
// leases (up to 100).
func (e *Engine) giveBackAll(ctx context.Context, leases []*Lease, tries int) error {
	if len(leases) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx) // the caller may have left: the leases are still held
	reqs := make([]*settleReq, len(leases))
	ends := leases[0].ExpiresAt
	for i, l := range leases {
		reqs[i] = &settleReq{l: l, fn: func(it pool.Item, gv governance, now time.Time) (pool.Item, error) {
			return gv.released(it, now)
		}}
		if l.ExpiresAt.Before(ends) {
			ends = l.ExpiresAt
		}
	}
	for try := 1; ; try++ {
		err := e.writeSettle(ctx, reqs)
		if err == nil {
			break
		}
		if try >= tries || failsForGood(err) || !e.now().Add(giveBackPause).Before(ends) {
			return fmt.Errorf("release of %d leases: %w", len(leases), err)
		}
		time.Sleep(giveBackPause)
	}
	if slices.ContainsFunc(reqs, func(r *settleReq) bool { return r.freed }) {
		e.wake.notify(leases[0].PoolUUID) // a claim's leases are of one pool
	}
	return nil
}

// giveBackTries and giveBackPause bound the tries of a give-back
// (giveBackAll's, the runner's giveBackUnstarted's): a database busy for a
// moment, not one that is down (each try may itself wait the store's lock
// timeout).
const (
	giveBackTries = 3
	giveBackPause = 250 * time.Millisecond

	giveBackMaxPause = 4 * time.Second // giveBackUnknown's longest pause
)

// giveBackAtClose releases, unattempted, the leases of a claim that
// committed after Close had begun, and returns ErrClosed: nothing is
// dispatched once Close has begun, and a lease handed out then could not
// be settled once the engine closed (its item would come back at the
// lease's end as a failed attempt, called again). Writes are still open:
// Close waits for the claim. The leases get one try, in one write (see
// giveBackAll): a try already waits out a busy database (SQLite's busy timeout,
// PostgreSQL's lock timeout), and on one gone silent every try waits out
// a write's round-trip bound, which Close would wait for (as for the
// leases of a claim of unknown outcome, see giveBackUnknown).
func (e *Engine) giveBackAtClose(ctx context.Context, leases []*Lease) error {
	if err := e.giveBackAll(ctx, leases, 1); err != nil {
		return fmt.Errorf("dequeue: %w (claimed as Close began; giving the leases back failed: %v)", ErrClosed, err)
	}
	return fmt.Errorf("dequeue: %w", ErrClosed)
}

// giveBackUnknown releases, unattempted, the leases of a claim whose
// commit's outcome is unknown (store.ErrCommitUnknown): it may have
// committed, and then its items stand dispatched under leases nobody
// holds, which would come back at their end as failed attempts, contacts
// never called counted as called. If it did not commit, each release gets
// ErrLeaseLost and writes nothing, so giving back is right either way.
//
// The outcome is unknown because the database has just been unreachable
// for seconds (see store/postgres), so a few quick tries would rarely
// reach it; and the caller should not wait for it. So the releases run in
// a goroutine of their own, and each is tried again, after giveBackPause,
// then twice as long each time up to giveBackMaxPause (a database down
// for the length of a lease is not asked thousands of times), until it is
// done, or fails for good, or its lease ends (its expiry then counts), or
// Close begins (the lease is left to expire). The goroutine counts as a
// Work call does, so Close waits for it: for one more try of each lease
// left at most.
func (e *Engine) giveBackUnknown(leases []*Lease) {
	if len(leases) == 0 {
		return
	}
	e.works.Add(1) // the claim's own count is held: Close has not finished waiting
	go func() {
		defer e.works.Done()
		ctx := context.Background()
		pause := giveBackPause
		for _, l := range leases {
			if e.isClosing() {
				return // the leases left expire: Close waits for no more tries
			}
			for {
				err := e.Release(ctx, l)
				if err == nil || failsForGood(err) || errors.Is(err, ErrWrongStatus) || e.isClosing() {
					break
				}
				// The last try comes a pause before the lease's end.
				wait := min(pause, l.ExpiresAt.Sub(e.now())-giveBackPause)
				if wait <= 0 {
					break
				}
				pause = min(2*pause, giveBackMaxPause)
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-e.closing:
				}
				t.Stop()
			}
		}
	}()
}

// errMore is the outcome of a claim that deferred maxDeferrals items
// without filling its want: the due set may hold more, which the next
// transaction looks at. It never leaves tryDequeue.
var errMore = errors.New("queue: claim: more to look at")

// admissionBatch is how many due items a claim reads at a time once it
// has deferred one (or passed one over, or failed one at the ceiling), so
// that such items cost a query per batch, not each. Until then it reads
// what it wants: the common case, where the next item may be called,
// reads no more than a plain pool's claim.
const admissionBatch = 64

// claimKey is the group-commit key of the dequeues of a pool for a
// campaign (uuid.Nil: for whatever governs the pool).
type claimKey struct{ pool, via uuid.UUID }

// claimReq is one dequeue: n wanted (at most pool.MaxParallelItems, so
// that the sum of a batch's cannot overflow), and its results.
type claimReq struct {
	n       int
	at      time.Time // the instant the claim was judged at
	leases  []*Lease
	outcome error // ErrEmpty, ErrAtCapacity or ErrHeld, decided inside, returned after commit
	freed   bool  // expired leases were applied: slots freed
}

// claim runs the dequeues reqs (each a *claimReq) of one pool as if one
// after the other, in order, with one read of the due set and one write:
// it claims as many items as they want together (within the pool's room),
// in the pool's order, and hands them out in order; a dequeue left with
// nothing gets ErrAtCapacity when the room is used up and items are still
// due, ErrEmpty otherwise, as it would have alone; all get ErrHeld when the
// pool's campaigns hold it, or when they serve campaign via (not uuid.Nil)
// and it does not govern the pool (see tryDequeue).
func (e *Engine) claim(ctx context.Context, tx *wtx, poolID, via uuid.UUID, reqs []any) error {
	total := 0
	for _, r := range reqs {
		r := r.(*claimReq)
		r.leases, r.outcome, r.freed = nil, nil, false
		total += r.n
	}
	// The pool and the items its first claim would read, in one call (on
	// PostgreSQL, with its lock): they stand unless an expired lease is
	// applied here, which writes the pool's items, or the claim waited for
	// the lock and is judged at a later instant than they were read at.
	firstLimit := min(total, pool.MaxParallelItems)
	pl, first, err := tx.PoolDue(ctx, poolID, tx.Now, firstLimit)
	if err != nil {
		return err
	}
	now := e.lockedNow(tx.Now)
	for _, r := range reqs {
		r.(*claimReq).at = now
	}
	reclaimed, err := e.reclaim(ctx, tx, pl, now)
	if err != nil {
		return err
	}
	if reclaimed > 0 || !now.Equal(tx.Now) {
		first = nil
	}
	p, err := e.govern(ctx, tx, pl)
	if err != nil {
		return err
	}
	if reclaimed > 0 {
		signal(tx, poolID) // expired leases freed slots
	}
	if p.held || via != uuid.Nil && (p.campaign == nil || p.campaign.UUID != via) {
		for _, r := range reqs {
			r := r.(*claimReq)
			r.outcome, r.freed = ErrHeld, reclaimed > 0
		}
		return nil
	}
	inFlight, err := tx.InFlight(ctx, poolID)
	if err != nil {
		return err
	}
	room := max(p.Cap()-inFlight, 0)
	want := min(total, room)
	expires := now.Add(e.opts.LeaseTimeout + e.grace) // as stored: the holder's deadline is LeaseTimeout
	leases := make([]*Lease, 0, want)
	adm := admission{g: p, txNow: tx.Now}
	var changes []store.Change
	passed := 0 // due items passed over, at the head of the due set: each read skips them
	for len(leases) < want && adm.defers < maxDeferrals {
		n := want - len(leases)
		if adm.defers > 0 || passed > 0 {
			// The rule defers items here (a sleeping zone, say): look
			// at the rest in batches, a query per batch, not per item.
			n = max(n, admissionBatch)
		}
		var due []pool.Item
		if first != nil && n <= min(firstLimit, room) {
			// PoolDue read the first min(firstLimit, room) due items,
			// of which Due(n) would read the first n.
			due = first[:min(n, len(first))]
		} else if due, err = tx.Due(ctx, poolID, p.Type, now, passed+n); err != nil {
			return err
		} else {
			due = due[min(passed, len(due)):]
		}
		first = nil
		if err := adm.look(ctx, tx, due); err != nil {
			return err
		}
		changes = changes[:0]
		for _, it := range due {
			if len(leases) == want {
				break // the rest stay due, untouched
			}
			in, ceiling, v, err := adm.decide(it, now)
			if err != nil {
				return err
			}
			switch v {
			case pass:
				passed++
				continue
			case deferral:
				changes = append(changes, store.Change{From: it.Status, Item: in}) // skipped or postponed
				continue
			}
			out, ok := in.Dispatched(ceiling, now, expires)
			if ok && v == admitCounted {
				out.CallToken = out.Token // the day's count is this dispatch's: its Release gives it back
			}
			if !ok && in.Attempts < p.ceiling {
				out.Notes = campaign.NoteContactCeiling // the contact's other items took the rest
			}
			changes = append(changes, store.Change{From: it.Status, Item: out})
			if !ok {
				// Failed at the ceiling instead: a deferral too, so that a
				// list whose contacts have no calls left (recycled into
				// another pool of the campaign, say) is failed a thousand
				// items a transaction, not all in one that holds the writer.
				adm.defers++
				continue
			}
			l := e.newLease(out)
			if g, governed := adm.g.gate(out); governed && v == admitCounted {
				l.window = &callWindow{w: g.Window, loc: g.Loc} // for Work to check again at the call's start
			}
			leases = append(leases, l)
		}
		if err := tx.UpdateItems(ctx, changes...); err != nil {
			return err
		}
		if len(due) < n {
			break
		}
	}
	// A settlement of the calls the passed items wait for, here or on
	// another node, wakes this pool's waiters. Set before the commit: a
	// settlement that waited for it notifies after it. (On PostgreSQL one
	// that committed while this read the call may notify before: the poll
	// covers that.)
	e.wake.follow(poolID, adm.behind)
	// Deferrals ran out with room left: the items looked at so far are
	// out of the due set; a new transaction goes on (tryDequeue).
	more := adm.defers >= maxDeferrals && len(leases) < want
	// A dequeue left with nothing met an empty due set while there was
	// room (fewer claimed than wanted: ErrEmpty), or a full pool: then it
	// is ErrAtCapacity if items are still due (read once, if needed).
	full := len(leases) == want
	var atCapacity *bool
	for _, r := range reqs {
		r := r.(*claimReq)
		r.freed = reclaimed > 0
		k := min(r.n, len(leases))
		r.leases, leases = leases[:k:k], leases[k:]
		if k > 0 {
			continue
		}
		r.outcome = ErrEmpty
		if more {
			r.outcome = errMore
			continue
		}
		if !full {
			continue
		}
		if atCapacity == nil {
			due, err := tx.Due(ctx, poolID, p.Type, now, 1)
			if err != nil {
				return err
			}
			v := len(due) > 0
			atCapacity = &v
		}
		if *atCapacity {
			r.outcome = ErrAtCapacity
		}
	}
	return nil
}

// isNothing reports whether err is a claim's "nothing to give now": no
// item due, the pool full, or the pool held by its campaigns.
func isNothing(err error) bool {
	return errors.Is(err, ErrEmpty) || errors.Is(err, ErrAtCapacity) || errors.Is(err, ErrHeld)
}

// isLockTimeout reports whether err is a write's wait for another
// session's lock past the store's timeout: it wrote nothing, and a
// blocked Dequeue looks again rather than fail.
func isLockTimeout(err error) bool { return errors.Is(err, store.ErrLockTimeout) }
