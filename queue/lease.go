package queue

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
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
	ItemID int64 `json:"item_id"`
	Token  int64 `json:"token"`
	// Attempt is the item's attempt number, 1 for its first dispatch.
	Attempt int `json:"attempt"`
	// ExpiresAt is when the lease ends unless extended. Extend moves it.
	ExpiresAt time.Time `json:"expires_at"`
	// Item is the item as dispatched, with its payload.
	Item pool.Item `json:"item"`
}

func newLease(it pool.Item) *Lease {
	return &Lease{
		PoolUUID:    it.PoolUUID,
		ContactUUID: it.ContactUUID,
		ItemID:      it.ID,
		Token:       it.Token,
		Attempt:     it.Attempts,
		ExpiresAt:   it.LeaseExpiresAt,
		Item:        it,
	}
}

// Failure describes a failed attempt for [Engine.Fail]: a retry time, or a
// final failure, and a note. It is [pool.Failure].
type Failure = pool.Failure

// MarkInCall records that the call of a leased item connected: Processing
// becomes In_Call (In_Call stays). On success l.Item.Status is updated.
// Errors: [ErrLeaseLost].
func (e *Engine) MarkInCall(ctx context.Context, l *Lease) error {
	it, err := e.settle(ctx, "mark in call", l, func(it pool.Item, _ pool.Pool, _ time.Time) (pool.Item, error) {
		return pool.MarkInCall(it)
	})
	if err == nil {
		l.Item = it
	}
	return err
}

// Extend moves the end of a lease to now + d (d > 0) and updates
// l.ExpiresAt. Errors: [ErrLeaseLost], [validate.Errors] for d ≤ 0. Do not
// Extend a *Lease that another goroutine reads at the same time; copy it.
func (e *Engine) Extend(ctx context.Context, l *Lease, d time.Duration) error {
	var v validate.Validator
	v.Check(d > 0, "duration", validate.RuleRange, fmt.Sprintf("must be positive (got %v)", d))
	if err := v.Err(); err != nil {
		return fmt.Errorf("extend: %w", err)
	}
	it, err := e.settle(ctx, "extend", l, func(it pool.Item, _ pool.Pool, now time.Time) (pool.Item, error) {
		return pool.Extend(it, now.Add(d))
	})
	if err == nil {
		l.ExpiresAt = it.LeaseExpiresAt
		l.Item = it
	}
	return err
}

// Complete settles a leased item as Completed with note. Errors:
// [ErrLeaseLost].
func (e *Engine) Complete(ctx context.Context, l *Lease, note string) error {
	_, err := e.settle(ctx, "complete", l, func(it pool.Item, _ pool.Pool, now time.Time) (pool.Item, error) {
		return pool.Complete(it, now, note)
	})
	return err
}

// Fail settles a leased item after a failed attempt. With attempts left
// (fewer than max_retries + 1 dispatches) it becomes Retrying, due at now +
// RetryDelay, or Scheduled at f.RetryAt when given; with none left, or when
// f.Final is set, it becomes Failed. The pool's current max_retries decides.
// Errors: [ErrLeaseLost].
func (e *Engine) Fail(ctx context.Context, l *Lease, f Failure) error {
	_, err := e.fail(ctx, l, f)
	return err
}

// fail is Fail returning the item as settled, so the runner can tell a retry
// from a final failure.
func (e *Engine) fail(ctx context.Context, l *Lease, f Failure) (pool.Item, error) {
	return e.settle(ctx, "fail", l, func(it pool.Item, p pool.Pool, now time.Time) (pool.Item, error) {
		return pool.Fail(it, p, now, f, e.opts.RetryDelay)
	})
}

// Release gives a leased item back unattempted: the attempt is not counted
// and the item is due again at once (Pending, or Retrying if it failed
// before), in its insertion place. Errors: [ErrLeaseLost].
func (e *Engine) Release(ctx context.Context, l *Lease) error {
	_, err := e.settle(ctx, "release", l, func(it pool.Item, _ pool.Pool, now time.Time) (pool.Item, error) {
		return pool.Release(it, now)
	})
	return err
}

// settle checks that l is the item's current lease and applies fn in one
// write transaction. A lease past its deadline is lost: its expiry is written
// (a failed attempt) and ErrLeaseLost returned.
func (e *Engine) settle(ctx context.Context, op string, l *Lease, fn func(pool.Item, pool.Pool, time.Time) (pool.Item, error)) (pool.Item, error) {
	if err := checkLease(l); err != nil {
		return pool.Item{}, fmt.Errorf("%s: %w", op, err)
	}
	var (
		out  pool.Item
		lost bool
	)
	err := e.write(ctx, func(ctx context.Context, tx store.Tx) error {
		lost = false
		it, err := tx.ItemByID(ctx, l.ItemID)
		if isNotFound(err) {
			lost = true
			return nil
		}
		if err != nil {
			return err
		}
		if it.PoolUUID != l.PoolUUID || !it.Status.InFlight() || it.Token != l.Token {
			lost = true
			return nil
		}
		p, err := tx.Pool(ctx, it.PoolUUID)
		if err != nil {
			return err
		}
		now := e.now()
		if !it.LeaseExpiresAt.After(now) {
			lost = true
			_, err := e.reclaim(ctx, tx, p, now)
			return err
		}
		// The pool's other expired leases go too, as in every write on it:
		// a settlement on a busy pool keeps its counts current.
		if _, err := e.reclaim(ctx, tx, p, now); err != nil {
			return err
		}
		if out, err = fn(it, p, now); err != nil {
			return err
		}
		return tx.UpdateItem(ctx, out)
	})
	if err != nil {
		return pool.Item{}, fmt.Errorf("%s: %w", op, err)
	}
	e.notify(l.PoolUUID) // a slot freed or an item became due (expiries included)
	if lost {
		return pool.Item{}, fmt.Errorf("%s: %w", op, ErrLeaseLost)
	}
	return out, nil
}

func checkLease(l *Lease) error {
	var v validate.Validator
	if l == nil {
		v.Add("lease", validate.RuleRequired, "is required")
		return v.Err()
	}
	v.Check(l.PoolUUID != uuid.Nil, "pool_uuid", validate.RuleRequired, "is required (not the nil UUID)")
	v.Check(l.ItemID > 0, "item_id", validate.RuleRange, "must be positive")
	v.Check(l.Token > 0, "token", validate.RuleRange, "must be positive")
	return v.Err()
}
