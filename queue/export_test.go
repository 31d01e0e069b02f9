package queue

import (
	"context"

	"github.com/google/uuid"
)

// Hooks for the external tests: observable conditions to wait on instead
// of sleeping, and the claim without waiting that DequeueN's callers do
// not have.

// Queued returns how many write operations wait for a transaction.
func Queued(e *Engine) int { return e.gc.Queued() }

// Waiting returns how many waiters (Dequeues, Work's producers) are
// subscribed to pool id.
func Waiting(e *Engine, id uuid.UUID) int {
	n, _ := e.wake.waiting(id)
	return n
}

// WaitingPools returns how many pools have waiters subscribed.
func WaitingPools(e *Engine) int {
	_, n := e.wake.waiting(uuid.Nil)
	return n
}

// Following returns how many pools' waiters follow other pools, and how
// many pools are followed (see wakeups.follow).
func Following(e *Engine) (followers, followed int) { return e.wake.following() }

// TryDequeueN claims up to n items without waiting.
func TryDequeueN(ctx context.Context, e *Engine, id uuid.UUID, n int) ([]*Lease, error) {
	return e.tryDequeue(ctx, id, n, uuid.Nil)
}

// TryDequeueCampaign is one look of DequeueCampaign: the first lease its
// pass over the campaign's pools gets, or ErrEmpty.
func TryDequeueCampaign(ctx context.Context, e *Engine, id uuid.UUID) (*Lease, error) {
	c, err := e.Campaign(ctx, id)
	if err != nil {
		return nil, err
	}
	l, _, err := e.campaignPass(ctx, c, map[uuid.UUID]*backoff{}, &backoff{})
	if l == nil && err == nil {
		err = ErrEmpty
	}
	return l, err
}

// FailureOf is failureOf.
func FailureOf(err error) Failure { return failureOf(err) }

// SetResubscribing makes f run while a campaign's waiter changes the pools
// it is subscribed to (between the old ones dropped and the new ones
// subscribed). Set it before the waiter starts.
func SetResubscribing(e *Engine, f func()) { e.resubscribing = f }

// Turns returns how many campaigns have a DequeueCampaign turn kept.
func Turns(e *Engine) int {
	e.turnsMu.Lock()
	defer e.turnsMu.Unlock()
	return len(e.turns)
}
