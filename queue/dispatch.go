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

// dequeue claims up to n items in one write transaction.
func (e *Engine) dequeue(ctx context.Context, poolID uuid.UUID, n int) ([]*Lease, error) {
	if err := checkID("uuid", poolID); err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	var (
		leases  []*Lease
		outcome error // ErrEmpty or ErrAtCapacity, decided inside, returned after commit
		changed bool  // expiries or ceiling failures were written
	)
	err := e.write(ctx, func(ctx context.Context, tx *wtx) error {
		leases, outcome, changed = nil, nil, false
		p, reclaimed, err := e.poolAt(ctx, tx, poolID)
		if err != nil {
			return err
		}
		now := tx.now
		changed = reclaimed > 0
		inFlight, err := tx.InFlight(ctx, poolID)
		if err != nil {
			return err
		}
		room := min(n, p.Cap()-inFlight)
		if room <= 0 {
			due, err := tx.Due(ctx, poolID, p.Type, now, 1)
			if err != nil {
				return err
			}
			outcome = ErrEmpty
			if len(due) > 0 {
				outcome = ErrAtCapacity
			}
			return nil
		}
		expires := now.Add(e.opts.LeaseTimeout)
		for len(leases) < room {
			want := room - len(leases)
			due, err := tx.Due(ctx, poolID, p.Type, now, want)
			if err != nil {
				return err
			}
			for i, it := range due {
				out, ok := pool.Dispatch(it, p, now, expires)
				due[i] = out
				if !ok {
					changed = true // failed at the ceiling instead
					continue
				}
				leases = append(leases, newLease(out))
			}
			if err := tx.UpdateItems(ctx, due...); err != nil {
				return err
			}
			if len(due) < want {
				break
			}
		}
		if len(leases) == 0 {
			outcome = ErrEmpty
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dequeue: %w", err)
	}
	if changed {
		e.notify(poolID) // expiries freed slots and may have made items due
	}
	if outcome != nil {
		return nil, outcome
	}
	return leases, nil
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
			out, err := pool.Expire(it, p, now, e.opts.RetryDelay)
			if err != nil {
				return total, err
			}
			if err := tx.UpdateItem(ctx, out); err != nil {
				return total, err
			}
		}
		total += len(expired)
		if len(expired) < reclaimBatch {
			return total, nil
		}
	}
}
