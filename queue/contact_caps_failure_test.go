package queue_test

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_FailureRetryPastTheContactsDayCap: under a rule of 2 calls a
// day, a contact in two pools of one campaign is called once from each,
// and both calls fail. The caps are the contact's across the campaign's
// pools: the second failure's retry is blocked by the day's cap, and is
// Scheduled at the earliest allowed instant, the next day's window start.
// (It was Retrying 30 minutes later, a time at which the contact may not
// be called: the failure counted the item's own calls of the day only.)
// Found by a review helper.
func TestEngine_FailureRetryPastTheContactsDayCap(t *testing.T) {
	oneGoroutine(t)
	b := setup(t) // 2026-01-02 09:00 UTC
	a, p, c := b.sharedContact(t, allDay(2, 10), pool.Parallel, pool.Parallel)

	l, err := b.eng.TryDequeue(b.ctx, a)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
	l, err = b.eng.TryDequeue(b.ctx, p)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))

	it := b.item(t, p, c)
	tomorrow := time.Date(2026, 1, 3, 0, 0, 0, 0, time.UTC)
	require.Equal(t, pool.StatusScheduled, it.Status,
		"the contact's 2 calls of the day are made: its retry is blocked by the day's cap (next_retry_at %v)", it.NextRetryAt)
	require.Equal(t, tomorrow, *it.NextRetryAt, "the earliest allowed instant")
}

// TestEngine_FailureAtTheContactsCeiling: under a rule of 3 calls in all
// (the contact's, across the campaign's pools), the third call to a
// contact fails. No call is left to the contact: the failure decides
// Failed (the ceiling is read at a failure), what Work reports as
// EventFailed. (It was Scheduled, a retry counted that would never be made,
// failed later by a claim that reports no event: the failure judged by the
// item's own attempts only.) Found by a review helper.
func TestEngine_FailureAtTheContactsCeiling(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	a, p, _ := b.sharedContact(t, allDay(10, 3), pool.Parallel, pool.Parallel)

	for i, from := range []uuid.UUID{a, p, a} {
		l, err := b.eng.TryDequeue(b.ctx, from)
		require.NoError(t, err, "call %d", i+1)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now(), Note: "no answer"}))
		if i == 2 {
			require.Equal(t, pool.StatusFailed, l.Item.Status,
				"the contact's 3rd call of 3 failed: no retry is left (retry_count %d, next_retry_at %v)",
				l.Item.RetryCount, l.Item.NextRetryAt)
		}
	}
}

// TestEngine_ExpiryAtTheContactsCeiling: the same when the third call's
// lease ends with no one settling it (its holder vanished): the expiry is
// a failed attempt judged by the contact's ceiling too.
func TestEngine_ExpiryAtTheContactsCeiling(t *testing.T) {
	oneGoroutine(t)
	b := setup(t)
	a, p, c := b.sharedContact(t, allDay(10, 3), pool.Parallel, pool.Parallel)
	for i, from := range []uuid.UUID{a, p} {
		l, err := b.eng.TryDequeue(b.ctx, from)
		require.NoError(t, err, "call %d", i+1)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now(), Note: "no answer"}))
	}
	_, err := b.eng.TryDequeue(b.ctx, a) // the third call, whose holder vanishes
	require.NoError(t, err)
	b.clock.Advance(2 * testLease)
	_, err = b.eng.TryDequeue(b.ctx, a) // applies the expiry
	require.ErrorIs(t, err, queue.ErrEmpty)
	it := b.item(t, a, c)
	require.Equal(t, pool.StatusFailed, it.Status,
		"the contact's 3rd call of 3 expired: no retry is left (retry_count %d, next_retry_at %v)", it.RetryCount, it.NextRetryAt)
}
