package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// reclaimBatch is how many expired leases one query fetches.
const reclaimBatch = 64

// TryDequeue claims the next due item of a pool without waiting. It returns
// [ErrEmpty] when nothing is due, [ErrAtCapacity] when items are due but the
// pool's cap is reached (1 for FIFO and LIFO, max_parallel_items for
// Parallel), [store.ErrNotFound] for an unknown pool.
//
// In the same write transaction it first applies the pool's expired leases
// (each a failed attempt), then checks the cap, then takes due items in the
// pool's order; a due item whose attempts already reach the ceiling becomes
// Failed and the next one is tried. Cost: an index seek, whatever the number
// of items.
func (e *Engine) TryDequeue(ctx context.Context, poolID uuid.UUID) (*Lease, error) {
	ls, err := e.dequeue(ctx, poolID, 1)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// DequeueN claims up to n due items of a pool in one transaction, as many as
// the cap allows, in the pool's order. It never returns an empty slice: when
// it can claim nothing it returns [ErrEmpty] or [ErrAtCapacity] like
// [Engine.TryDequeue]. n must be at least 1.
func (e *Engine) DequeueN(ctx context.Context, poolID uuid.UUID, n int) ([]*Lease, error) {
	var v validate.Validator
	v.IntMin("n", n, 1)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	return e.dequeue(ctx, poolID, n)
}

// Dequeue claims the next due item of a pool, waiting until one is due and
// the cap allows. It wakes on every change made through this Engine that can
// let it through (an Add, a settled lease, a raised cap or a type change), at
// the next retry time or lease deadline of the pool, and at the latest every
// PollInterval (for changes made by another process). It returns ctx's error
// when ctx ends first, and [ErrClosed] when the engine is closed; in both
// cases no lease is held. Errors also: [store.ErrNotFound].
func (e *Engine) Dequeue(ctx context.Context, poolID uuid.UUID) (*Lease, error) {
	ls, err := e.DequeueWait(ctx, poolID, 1)
	if err != nil {
		return nil, err
	}
	return ls[0], nil
}

// DequeueWait is [Engine.DequeueN] that waits like [Engine.Dequeue] until it
// can claim at least one item.
func (e *Engine) DequeueWait(ctx context.Context, poolID uuid.UUID, n int) ([]*Lease, error) {
	var v validate.Validator
	v.IntMin("n", n, 1)
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		wake := e.signal(poolID) // taken before trying, so no wake-up is missed
		ls, err := e.dequeue(ctx, poolID, n)
		if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrAtCapacity) {
			return ls, err
		}
		wait, err := e.waitFor(ctx, poolID)
		if err != nil {
			return nil, err
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-wake:
		case <-timer.C:
		case <-ctx.Done():
			return nil, fmt.Errorf("dequeue: %w", ctx.Err())
		case <-e.closed:
			return nil, fmt.Errorf("dequeue: %w", ErrClosed)
		}
	}
}

// waitFor returns how long a blocked Dequeue may sleep: until the pool's next
// retry time or lease deadline, at most PollInterval.
func (e *Engine) waitFor(ctx context.Context, poolID uuid.UUID) (time.Duration, error) {
	var next time.Time
	var ok bool
	err := e.read(ctx, func(tx store.Tx) error {
		var err error
		next, ok, err = tx.NextWake(ctx, poolID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("dequeue: %w", err)
	}
	wait := e.opts.PollInterval
	if ok {
		if d := next.Sub(e.now()); d < wait {
			wait = max(d, 0) + time.Millisecond // past the deadline, not at it
		}
	}
	return wait, nil
}

// dequeue claims up to n items in one write transaction. Concurrent
// dequeues of one pool that share a group-commit batch are claimed together
// (see claim).
func (e *Engine) dequeue(ctx context.Context, poolID uuid.UUID, n int) ([]*Lease, error) {
	if err := checkID("uuid", poolID); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	r := &claimReq{n: n}
	cb := &combiner{key: claimKey{poolID}, run: func(ctx context.Context, tx *wtx, reqs []any) error {
		return e.claim(ctx, tx, poolID, reqs)
	}}
	if err := e.writeCombined(ctx, cb, r); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	if r.changed {
		e.notify(poolID) // expiries freed slots and may have made items due
	}
	if r.outcome != nil {
		return nil, r.outcome
	}
	return r.leases, nil
}

// claimKey is the group-commit key of the dequeues of a pool.
type claimKey struct{ pool uuid.UUID }

// claimReq is one dequeue: n wanted, and its results.
type claimReq struct {
	n       int
	leases  []*Lease
	outcome error // ErrEmpty or ErrAtCapacity, decided inside, returned after commit
	changed bool  // expiries or ceiling failures were written
}

// claim runs the dequeues reqs (each a *claimReq) of one pool as if one
// after the other, in order, with one read of the due set and one write:
// it claims as many items as they want together (within the pool's room),
// in the pool's order, and hands them out in order; a dequeue left with
// nothing gets ErrAtCapacity when the room is used up and items are still
// due, ErrEmpty otherwise, as it would have alone.
func (e *Engine) claim(ctx context.Context, tx *wtx, poolID uuid.UUID, reqs []any) error {
	total := 0
	for _, r := range reqs {
		r := r.(*claimReq)
		r.leases, r.outcome, r.changed = nil, nil, false
		total += r.n
	}
	p, reclaimed, err := e.poolAt(ctx, tx, poolID)
	if err != nil {
		return err
	}
	now := tx.now
	changed := reclaimed > 0
	inFlight, err := tx.InFlight(ctx, poolID)
	if err != nil {
		return err
	}
	room := max(p.Cap()-inFlight, 0)
	want := min(total, room)
	expires := now.Add(e.opts.LeaseTimeout)
	leases := make([]*Lease, 0, want)
	for len(leases) < want {
		n := want - len(leases)
		due, err := tx.Due(ctx, poolID, p.Type, now, n)
		if err != nil {
			return err
		}
		changes := make([]store.Change, len(due))
		for i, it := range due {
			out, ok := it.Dispatched(p, now, expires)
			changes[i] = store.Change{From: it.Status, Item: out}
			if !ok {
				changed = true // failed at the ceiling instead
				continue
			}
			leases = append(leases, newLease(out))
		}
		if err := tx.UpdateItems(ctx, changes...); err != nil {
			return err
		}
		if len(due) < n {
			break
		}
	}
	// A dequeue left with nothing met an empty due set while there was
	// room (fewer claimed than wanted: ErrEmpty), or a full pool: then it
	// is ErrAtCapacity if items are still due (read once, if needed).
	full := len(leases) == want
	var atCapacity *bool
	for _, r := range reqs {
		r := r.(*claimReq)
		r.changed = changed
		k := min(r.n, len(leases))
		r.leases, leases = leases[:k:k], leases[k:]
		if k > 0 {
			continue
		}
		r.outcome = ErrEmpty
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

// poolAt returns a pool as of tx.now with its expired leases applied
// (each a failed attempt), and how many it applied. It reads the pool and
// reclaims once per transaction; later calls get the row from tx.
func (e *Engine) poolAt(ctx context.Context, tx *wtx, id uuid.UUID) (pool.Pool, int, error) {
	if p, ok := tx.ready[id]; ok {
		return p, 0, nil
	}
	p, err := tx.Pool(ctx, id)
	if err != nil {
		return pool.Pool{}, 0, err
	}
	n, err := e.reclaim(ctx, tx, p, tx.now)
	if err != nil {
		return pool.Pool{}, 0, err
	}
	if tx.ready == nil {
		tx.ready = make(map[uuid.UUID]pool.Pool, 1)
	}
	tx.ready[id] = p
	return p, n, nil
}

// reclaim applies every expired lease of p at now, each as a failed attempt,
// and returns how many it applied.
func (e *Engine) reclaim(ctx context.Context, tx store.Tx, p pool.Pool, now time.Time) (int, error) {
	total := 0
	for {
		expired, err := tx.Expired(ctx, p.UUID, now, reclaimBatch)
		if err != nil {
			return total, err
		}
		for _, it := range expired {
			out, err := it.Expired(p, now, e.opts.RetryDelay)
			if err != nil {
				return total, err
			}
			if err := tx.UpdateItem(ctx, it.Status, out); err != nil {
				return total, err
			}
		}
		total += len(expired)
		if len(expired) < reclaimBatch {
			return total, nil
		}
	}
}
