package pool_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/poolq/poolq/pool"
)

const retryDelay = time.Hour

var (
	// now is when the machine tests act; earlier is a time in the past.
	now     = t0.Add(time.Hour)
	earlier = t0.Add(10 * time.Minute)
	expires = now.Add(10 * time.Minute)
	// elsewhere is a zone that is not UTC, to check every stored time is.
	elsewhere = time.FixedZone("UTC+9", 9*3600)
)

// poolWithRetries returns the default pool with max_retries set.
func poolWithRetries(n int) pool.Pool {
	p := defaultPool()
	p.MaxRetries = n
	return p
}

// itemIn returns a consistent item in status s, as the state machine would
// have left it: in flight items hold a lease, retried ones have failed once.
func itemIn(s pool.Status) pool.Item {
	started := earlier
	it := pool.Item{
		ID: 42, PoolUUID: poolID, ContactUUID: contactA, Priority: 3,
		AddedAt: t0, Payload: json.RawMessage(`{"phone":"+1555"}`),
		Status: s,
	}
	switch s {
	case pool.StatusPending:
	case pool.StatusProcessing, pool.StatusInCall:
		it.Attempts, it.Token = 1, 1
		it.StartedAt = &started
		it.LeaseExpiresAt = now.Add(5 * time.Minute)
	case pool.StatusRetrying, pool.StatusScheduled:
		next := now.Add(-time.Minute)
		it.Attempts, it.RetryCount, it.Token = 1, 1, 1
		it.StartedAt, it.NextRetryAt = &started, &next
		it.Notes = "busy"
	case pool.StatusCompleted:
		done := earlier.Add(time.Minute)
		it.Attempts, it.Token = 1, 1
		it.StartedAt, it.CompletedAt = &started, &done
		it.Notes = "answered"
	case pool.StatusFailed:
		failed := earlier.Add(time.Minute)
		it.Attempts, it.RetryCount, it.Token = 4, 4, 4
		it.StartedAt, it.FailedAt = &started, &failed
		it.Notes = "no answer"
	case pool.StatusSkipped:
		it.Notes = "opted out"
	}
	return it
}

// inFlight returns an item in status s (Processing or In_Call) on its
// attempts-th dispatch, having failed every earlier one.
func inFlight(s pool.Status, attempts int) pool.Item {
	it := itemIn(s)
	it.Attempts, it.RetryCount, it.Token = attempts, attempts-1, int64(attempts)
	return it
}

// notInFlight lists the statuses an in-flight-only operation rejects.
var notInFlight = []pool.Status{
	pool.StatusPending, pool.StatusRetrying, pool.StatusScheduled,
	pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped,
}

// requireRejected checks that op refuses every status of from with
// wantErr and returns the item unchanged.
func requireRejected(t *testing.T, from []pool.Status, wantErr error, op func(pool.Item) (pool.Item, error)) {
	t.Helper()
	for _, s := range from {
		in := itemIn(s)
		out, err := op(in)
		require.ErrorIs(t, err, wantErr, "from %s", s)
		require.Equal(t, itemIn(s), out, "a refused operation changes nothing (from %s)", s)
	}
}

func TestItem_Dispatched(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		in         pool.Item
		maxRetries int
		want       func(it *pool.Item) // applied to a copy of in; the token is checked apart
		wantOK     bool
	}{
		{
			name: "OKFirstDispatch", in: itemIn(pool.StatusPending), maxRetries: 3, wantOK: true,
			want: func(it *pool.Item) {
				it.Status, it.Attempts = pool.StatusProcessing, 1
				it.StartedAt = &now
				it.LeaseExpiresAt = expires
			},
		},
		{
			name: "OKRetryKeepsStartedAt", in: itemIn(pool.StatusRetrying), maxRetries: 3, wantOK: true,
			want: func(it *pool.Item) {
				it.Status, it.Attempts = pool.StatusProcessing, 2
				it.NextRetryAt = nil
				it.LeaseExpiresAt = expires
			},
		},
		{
			name: "OKScheduled", in: itemIn(pool.StatusScheduled), maxRetries: 3, wantOK: true,
			want: func(it *pool.Item) {
				it.Status, it.Attempts = pool.StatusProcessing, 2
				it.NextRetryAt = nil
				it.LeaseExpiresAt = expires
			},
		},
		{
			name: "OKLastAttempt", in: withAttempts(itemIn(pool.StatusRetrying), 3), maxRetries: 3, wantOK: true,
			want: func(it *pool.Item) {
				it.Status, it.Attempts = pool.StatusProcessing, 4
				it.NextRetryAt = nil
				it.LeaseExpiresAt = expires
			},
		},
		{
			name: "OKMaxRetriesZeroFirstAttempt", in: itemIn(pool.StatusPending), maxRetries: 0, wantOK: true,
			want: func(it *pool.Item) {
				it.Status, it.Attempts = pool.StatusProcessing, 1
				it.StartedAt = &now
				it.LeaseExpiresAt = expires
			},
		},
		{
			name: "FailedAtCeiling", in: withAttempts(itemIn(pool.StatusRetrying), 4), maxRetries: 3, wantOK: false,
			want: func(it *pool.Item) {
				it.Status = pool.StatusFailed
				it.FailedAt = &now
				it.NextRetryAt = nil
				it.Notes = pool.NoteCeiling
			},
		},
		{
			name: "FailedCeilingLowered", in: withAttempts(itemIn(pool.StatusScheduled), 2), maxRetries: 1, wantOK: false,
			want: func(it *pool.Item) {
				it.Status = pool.StatusFailed
				it.FailedAt = &now
				it.NextRetryAt = nil
				it.Notes = pool.NoteCeiling
			},
		},
		{
			name: "FailedAboveCeiling", in: withAttempts(itemIn(pool.StatusRetrying), 5), maxRetries: 0, wantOK: false,
			want: func(it *pool.Item) {
				it.Status = pool.StatusFailed
				it.FailedAt = &now
				it.NextRetryAt = nil
				it.Notes = pool.NoteCeiling
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.in
			tt.want(&want)
			got, ok := tt.in.Dispatched(poolWithRetries(tt.maxRetries).Ceiling(), now, expires)
			require.Equal(t, tt.wantOK, ok)
			if ok {
				require.Greater(t, got.Token, tt.in.Token, "a new fencing token")
				require.LessOrEqual(t, got.Token-tt.in.Token, int64(pool.TokenSpread))
				want.Token = got.Token
			}
			require.Equal(t, want, got)
			require.LessOrEqual(t, got.Attempts, max(tt.in.Attempts, tt.maxRetries+1))
			require.Equal(t, tt.in.RetryCount, got.RetryCount, "dispatch is not a failure")
		})
	}

	t.Run("OKTimesInUTC", func(t *testing.T) {
		t.Parallel()
		got, ok := itemIn(pool.StatusPending).Dispatched(poolWithRetries(3).Ceiling(), now.In(elsewhere), expires.In(elsewhere))
		require.True(t, ok)
		require.Equal(t, now, *got.StartedAt)
		require.Equal(t, time.UTC, got.StartedAt.Location())
		require.Equal(t, expires, got.LeaseExpiresAt)
		require.Equal(t, time.UTC, got.LeaseExpiresAt.Location())

		failed, ok := withAttempts(itemIn(pool.StatusRetrying), 9).Dispatched(poolWithRetries(3).Ceiling(), now.In(elsewhere), expires)
		require.False(t, ok)
		require.Equal(t, time.UTC, failed.FailedAt.Location())
	})

	t.Run("OKTokenGrowsOnEveryDispatch", func(t *testing.T) {
		t.Parallel()
		p := poolWithRetries(5)
		it := itemIn(pool.StatusPending)
		for i := 1; i <= 6; i++ {
			before := it.Token
			var ok bool
			it, ok = it.Dispatched(p.Ceiling(), now, expires)
			require.True(t, ok)
			require.Greater(t, it.Token, before)
			require.LessOrEqual(t, it.Token-before, int64(pool.TokenSpread))
			require.Equal(t, i, it.Attempts)
			require.Equal(t, now, *it.StartedAt, "started_at is the first dispatch's")
			var err error
			it, err = it.Failed(p.Ceiling(), now, pool.Failure{RetryAt: now}, retryDelay)
			require.NoError(t, err)
		}
		require.Equal(t, pool.StatusFailed, it.Status, "six attempts with max_retries 5")
	})

	// A dispatch whose commit is lost leaves the item as it was: the next
	// dispatch starts from the same item, and must not hand out the lost
	// one's token again, or the lost lease's holder could settle it.
	t.Run("OKLostDispatchTokenNotReissued", func(t *testing.T) {
		t.Parallel()
		p := poolWithRetries(3)
		before := itemIn(pool.StatusRetrying)
		lost, ok := before.Dispatched(p.Ceiling(), now, expires)
		require.True(t, ok)
		again, ok := before.Dispatched(p.Ceiling(), now, expires)
		require.True(t, ok)
		require.NotEqual(t, lost.Token, again.Token, "the dispatch after a lost one reissued its token")
	})

	// Tokens grow by a random step of 1 to TokenSpread: strictly
	// increasing, positive, and not consecutive (a step of 1 has
	// probability 2^-31). The mean step of n draws is TokenSpread/2 within
	// a margin of over 25 standard deviations.
	t.Run("OKTokenStepIsRandom", func(t *testing.T) {
		t.Parallel()
		const n = 1000
		it := itemIn(pool.StatusPending)
		var sum, ones int64
		steps := map[int64]bool{}
		for range n {
			before := it.Token
			var ok bool
			it, ok = it.Dispatched(math.MaxInt, now, expires)
			require.True(t, ok)
			step := it.Token - before
			require.GreaterOrEqual(t, step, int64(1), "strictly increasing")
			require.LessOrEqual(t, step, int64(pool.TokenSpread))
			if step == 1 {
				ones++
			}
			sum += step
			steps[step] = true
			var err error
			it, err = it.Released(now)
			require.NoError(t, err)
		}
		require.Positive(t, it.Token)
		require.Zero(t, ones, "consecutive tokens")
		require.Greater(t, len(steps), n/2, "distinct steps")
		mean := float64(sum) / n
		require.InDelta(t, pool.TokenSpread/2, mean, pool.TokenSpread/4, "mean step")
	})
}

func withAttempts(it pool.Item, n int) pool.Item {
	it.Attempts, it.RetryCount, it.Token = n, n, int64(n)
	return it
}

func TestItem_InCall(t *testing.T) {
	t.Parallel()

	t.Run("OKFromProcessing", func(t *testing.T) {
		t.Parallel()
		in := itemIn(pool.StatusProcessing)
		got, err := in.InCall()
		require.NoError(t, err)
		want := in
		want.Status = pool.StatusInCall
		require.Equal(t, want, got)
	})

	t.Run("OKInCallStays", func(t *testing.T) {
		t.Parallel()
		in := itemIn(pool.StatusInCall)
		got, err := in.InCall()
		require.NoError(t, err)
		require.Equal(t, in, got)
	})

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, notInFlight, pool.ErrWrongStatus, pool.Item.InCall)
	})
}

func TestItem_Extended(t *testing.T) {
	t.Parallel()

	later := now.Add(time.Hour)
	for _, s := range []pool.Status{pool.StatusProcessing, pool.StatusInCall} {
		t.Run("OK"+string(s), func(t *testing.T) {
			t.Parallel()
			in := itemIn(s)
			got, err := in.Extended(later.In(elsewhere))
			require.NoError(t, err)
			want := in
			want.LeaseExpiresAt = later
			require.Equal(t, want, got)
			require.Equal(t, time.UTC, got.LeaseExpiresAt.Location())
		})
	}

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, notInFlight, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			return it.Extended(later)
		})
	})
}

func TestItem_Completed(t *testing.T) {
	t.Parallel()

	for _, s := range []pool.Status{pool.StatusProcessing, pool.StatusInCall} {
		t.Run("OK"+string(s), func(t *testing.T) {
			t.Parallel()
			in := inFlight(s, 2)
			got, err := in.Completed(now.In(elsewhere), "answered")
			require.NoError(t, err)
			want := in
			want.Status = pool.StatusCompleted
			want.CompletedAt = &now
			want.Notes = "answered"
			want.LeaseExpiresAt = time.Time{}
			require.Equal(t, want, got)
			require.Equal(t, time.UTC, got.CompletedAt.Location())
			require.True(t, got.Status.Terminal())
		})
	}

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, notInFlight, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			return it.Completed(now, "answered")
		})
	})
}

func TestItem_Failed(t *testing.T) {
	t.Parallel()

	retryAt := now.Add(24 * time.Hour)
	retryAtElsewhere := retryAt.In(elsewhere)
	retryingAt := now.Add(retryDelay)

	tests := []struct {
		name       string
		in         pool.Item
		maxRetries int
		f          pool.Failure
		want       func(it *pool.Item)
	}{
		{
			name: "RetryingAfterDelay", in: inFlight(pool.StatusProcessing, 1), maxRetries: 3,
			f: pool.Failure{Note: "busy"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusRetrying, 1, "busy"
				it.NextRetryAt = &retryingAt
			},
		},
		{
			name: "RetryingFromInCall", in: inFlight(pool.StatusInCall, 2), maxRetries: 3,
			f: pool.Failure{Note: "hung up"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusRetrying, 2, "hung up"
				it.NextRetryAt = &retryingAt
			},
		},
		{
			name: "ScheduledAtRetryAt", in: inFlight(pool.StatusProcessing, 1), maxRetries: 3,
			f: pool.Failure{RetryAt: retryAtElsewhere, Note: "call back tomorrow"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusScheduled, 1, "call back tomorrow"
				it.NextRetryAt = &retryAt
			},
		},
		{
			// Due at once, for every clock that has passed the first dispatch.
			name: "ScheduledInThePastIsKept", in: inFlight(pool.StatusProcessing, 1), maxRetries: 3,
			f: pool.Failure{RetryAt: now.Add(-time.Second).In(elsewhere), Note: "asap"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusScheduled, 1, "asap"
				it.NextRetryAt = ptr(now.Add(-time.Second))
			},
		},
		{
			name: "ScheduledBeforeTheFirstDispatchIsIt", in: inFlight(pool.StatusProcessing, 1), maxRetries: 3,
			f: pool.Failure{RetryAt: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), Note: "asap"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusScheduled, 1, "asap"
				it.NextRetryAt = ptr(earlier)
			},
		},
		{
			name: "FinalFails", in: inFlight(pool.StatusProcessing, 1), maxRetries: 3,
			f: pool.Failure{Final: true, Note: "wrong number"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusFailed, 0, "wrong number"
				it.FailedAt = &now
			},
		},
		{
			name: "FinalWinsOverRetryAt", in: inFlight(pool.StatusInCall, 1), maxRetries: 3,
			f: pool.Failure{Final: true, RetryAt: retryAt, Note: "do not call"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusFailed, 0, "do not call"
				it.FailedAt = &now
			},
		},
		{
			name: "OneAttemptLeftRetries", in: inFlight(pool.StatusProcessing, 3), maxRetries: 3,
			f: pool.Failure{},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount = pool.StatusRetrying, 3
				it.NextRetryAt = &retryingAt
			},
		},
		{
			name: "LastAttemptFails", in: inFlight(pool.StatusProcessing, 4), maxRetries: 3,
			f: pool.Failure{Note: "busy"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusFailed, 3, "busy"
				it.FailedAt = &now
			},
		},
		{
			name: "LastAttemptIgnoresRetryAt", in: inFlight(pool.StatusProcessing, 4), maxRetries: 3,
			f: pool.Failure{RetryAt: retryAt},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusFailed, 3, ""
				it.FailedAt = &now
			},
		},
		{
			name: "MaxRetriesZeroFailsFirstAttempt", in: inFlight(pool.StatusProcessing, 1), maxRetries: 0,
			f: pool.Failure{Note: "busy"},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount, it.Notes = pool.StatusFailed, 0, "busy"
				it.FailedAt = &now
			},
		},
		{
			name: "CeilingLoweredWhileInFlight", in: inFlight(pool.StatusInCall, 3), maxRetries: 1,
			f: pool.Failure{},
			want: func(it *pool.Item) {
				it.Status, it.RetryCount = pool.StatusFailed, 2
				it.FailedAt = &now
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.in
			want.LeaseExpiresAt = time.Time{}
			tt.want(&want)
			got, err := tt.in.Failed(poolWithRetries(tt.maxRetries).Ceiling(), now.In(elsewhere), tt.f, retryDelay)
			require.NoError(t, err)
			require.Equal(t, want, got)
			if got.Status == pool.StatusFailed {
				require.Equal(t, tt.in.RetryCount, got.RetryCount, "a failure that ends the item schedules no retry")
			} else {
				require.Equal(t, tt.in.RetryCount+1, got.RetryCount)
			}
			require.Equal(t, tt.in.Attempts, got.Attempts, "a failure does not count a new attempt")
			require.Equal(t, tt.in.Token, got.Token)
			for _, ts := range []*time.Time{got.NextRetryAt, got.FailedAt} {
				if ts != nil {
					require.Equal(t, time.UTC, ts.Location())
				}
			}
		})
	}

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, notInFlight, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			return it.Failed(poolWithRetries(3).Ceiling(), now, pool.Failure{Note: "x"}, retryDelay)
		})
	})
}

func TestItem_Expired(t *testing.T) {
	t.Parallel()

	retryingAt := now.Add(retryDelay)

	t.Run("OKRetrying", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusInCall, 1)
		got, err := in.Expired(poolWithRetries(3).Ceiling(), now, retryDelay)
		require.NoError(t, err)
		want := in
		want.Status, want.RetryCount, want.Notes = pool.StatusRetrying, 1, pool.NoteExpired
		want.NextRetryAt = &retryingAt
		want.LeaseExpiresAt = time.Time{}
		require.Equal(t, want, got)
	})

	t.Run("OKLastAttemptFails", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusProcessing, 2)
		got, err := in.Expired(poolWithRetries(1).Ceiling(), now, retryDelay)
		require.NoError(t, err)
		want := in
		want.Status, want.RetryCount, want.Notes = pool.StatusFailed, 1, pool.NoteExpired
		want.FailedAt = &now
		want.LeaseExpiresAt = time.Time{}
		require.Equal(t, want, got)
	})

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, notInFlight, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			return it.Expired(poolWithRetries(3).Ceiling(), now, retryDelay)
		})
	})
}

func TestItem_Released(t *testing.T) {
	t.Parallel()

	t.Run("OKFirstAttemptBackToPending", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusProcessing, 1)
		got, err := in.Released(now)
		require.NoError(t, err)
		want := in
		want.Status, want.Attempts = pool.StatusPending, 0
		want.StartedAt, want.NextRetryAt = nil, nil
		want.LeaseExpiresAt = time.Time{}
		require.Equal(t, want, got)
		require.Equal(t, in.Token, got.Token, "the token stays, so the released lease cannot settle a later dispatch")
		require.True(t, got.Due(now))
	})

	t.Run("ErrInCall", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusInCall, 1)
		in.CallAt, in.CallsToday, in.CallToken = now, 1, in.Token
		got, err := in.Released(now)
		require.ErrorIs(t, err, pool.ErrWrongStatus, "a connected call is an attempt made")
		require.Equal(t, in, got, "unchanged")
	})

	t.Run("OKFailedBeforeRetryingDueNow", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusProcessing, 3) // two failures before
		got, err := in.Released(now.In(elsewhere))
		require.NoError(t, err)
		want := in
		want.Status, want.Attempts = pool.StatusRetrying, 2
		want.NextRetryAt = ptr(earlier) // the first dispatch
		want.LeaseExpiresAt = time.Time{}
		require.Equal(t, want, got)
		require.Equal(t, time.UTC, got.NextRetryAt.Location())
		require.Equal(t, 2, got.RetryCount)
		require.NotNil(t, got.StartedAt, "earlier attempts keep started_at")
		require.True(t, got.Due(now), "due again at once")
		require.True(t, got.Due(now.Add(-time.Second)), "for a clock a little behind too")
	})

	t.Run("OKFirstDispatchAfterNow", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusProcessing, 3)
		in.StartedAt = ptr(now.Add(time.Minute)) // by a clock ahead of this one
		got, err := in.Released(now)
		require.NoError(t, err)
		require.Equal(t, now, *got.NextRetryAt, "never later than now")
	})

	t.Run("OKReleaseThenDispatchGetsNewToken", func(t *testing.T) {
		t.Parallel()
		p := poolWithRetries(0)
		first, ok := itemIn(pool.StatusPending).Dispatched(p.Ceiling(), now, expires)
		require.True(t, ok)
		it, err := first.Released(now)
		require.NoError(t, err)
		it, ok = it.Dispatched(p.Ceiling(), now, expires)
		require.True(t, ok, "a released attempt does not count against the ceiling")
		require.Equal(t, 1, it.Attempts)
		require.Greater(t, it.Token, first.Token)
	})

	t.Run("OKGivesTheDaysCallBack", func(t *testing.T) {
		t.Parallel()
		in := inFlight(pool.StatusProcessing, 1)
		in.CallAt, in.CallsToday, in.CallToken = now, 2, in.Token
		got, err := in.Released(now)
		require.NoError(t, err)
		require.Equal(t, now, got.CallAt)
		require.Equal(t, 1, got.CallsToday, "a released attempt does not count against the day's cap")
		in.CallsToday = 0
		got, err = in.Released(now)
		require.NoError(t, err)
		require.Zero(t, got.CallsToday, "never below zero")
	})

	t.Run("OKKeepsTheDaysCallOfAnotherDispatch", func(t *testing.T) {
		t.Parallel()
		// The rule counted the dispatch before this one; this one was made
		// while no rule governed the pool, and counted nothing.
		in := inFlight(pool.StatusProcessing, 2)
		in.CallAt, in.CallsToday, in.CallToken = now, 1, in.Token-1
		got, err := in.Released(now)
		require.NoError(t, err)
		require.Equal(t, 1, got.CallsToday, "the day's call of the other dispatch stays counted")
	})

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, notInFlight, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			return it.Released(now)
		})
	})
}

func TestItem_Postponed(t *testing.T) {
	t.Parallel()
	until := now.Add(9 * time.Hour)
	for _, s := range []pool.Status{pool.StatusPending, pool.StatusRetrying, pool.StatusScheduled} {
		t.Run("OK"+string(s), func(t *testing.T) {
			t.Parallel()
			in := itemIn(s)
			got, err := in.Postponed(until.In(elsewhere))
			require.NoError(t, err)
			want := in
			want.Status = pool.StatusScheduled
			want.NextRetryAt = &until
			require.Equal(t, want, got)
			require.Equal(t, time.UTC, got.NextRetryAt.Location())
			require.False(t, got.Due(until.Add(-time.Nanosecond)))
			require.True(t, got.Due(until))
		})
	}
	t.Run("ErrInFlight", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, []pool.Status{pool.StatusProcessing, pool.StatusInCall}, pool.ErrInFlight, func(it pool.Item) (pool.Item, error) {
			return it.Postponed(until)
		})
	})
	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, []pool.Status{pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped}, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			return it.Postponed(until)
		})
	})
}

func TestItem_Skipped(t *testing.T) {
	t.Parallel()

	for _, s := range []pool.Status{pool.StatusPending, pool.StatusRetrying, pool.StatusScheduled} {
		t.Run("OK"+string(s), func(t *testing.T) {
			t.Parallel()
			in := itemIn(s)
			got, err := in.Skipped("opted out")
			require.NoError(t, err)
			want := in
			want.Status = pool.StatusSkipped
			want.NextRetryAt = nil
			want.Notes = "opted out"
			require.Equal(t, want, got)
		})
	}

	t.Run("ErrInFlight", func(t *testing.T) {
		t.Parallel()
		inFlightStatuses := []pool.Status{pool.StatusProcessing, pool.StatusInCall}
		requireRejected(t, inFlightStatuses, pool.ErrInFlight, func(it pool.Item) (pool.Item, error) {
			_, err := it.Skipped("x")
			require.NotErrorIs(t, err, pool.ErrWrongStatus)
			return it.Skipped("x")
		})
	})

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		terminal := []pool.Status{pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped}
		requireRejected(t, terminal, pool.ErrWrongStatus, func(it pool.Item) (pool.Item, error) {
			_, err := it.Skipped("x")
			require.NotErrorIs(t, err, pool.ErrInFlight)
			return it.Skipped("x")
		})
	})
}

func TestItem_Requeued(t *testing.T) {
	t.Parallel()

	for _, s := range []pool.Status{pool.StatusCompleted, pool.StatusFailed, pool.StatusSkipped} {
		t.Run("OK"+string(s), func(t *testing.T) {
			t.Parallel()
			in := itemIn(s)
			in.CallAt, in.CallsToday, in.CallToken = now, 3, 1
			got, err := in.Requeued()
			require.NoError(t, err)
			want := pool.Item{
				// kept: identity, priority, payload, insertion place, token,
				// and the day's count of calls
				ID: in.ID, PoolUUID: in.PoolUUID, ContactUUID: in.ContactUUID,
				Priority: in.Priority, Payload: in.Payload, AddedAt: in.AddedAt, Token: in.Token,
				CallAt: now, CallsToday: 3, CallToken: 1,
				// reset
				Status: pool.StatusPending,
			}
			require.Equal(t, want, got)
			require.True(t, got.Due(now))
		})
	}

	t.Run("OKRequeuedItemHasFullCeilingAgain", func(t *testing.T) {
		t.Parallel()
		p := poolWithRetries(1)
		it, err := itemIn(pool.StatusFailed).Requeued()
		require.NoError(t, err)
		for i := 0; i < p.Ceiling(); i++ {
			var ok bool
			it, ok = it.Dispatched(p.Ceiling(), now, expires)
			require.True(t, ok)
			it, err = it.Failed(p.Ceiling(), now, pool.Failure{RetryAt: now}, retryDelay)
			require.NoError(t, err)
		}
		require.Equal(t, pool.StatusFailed, it.Status)
		require.GreaterOrEqual(t, it.Token, itemIn(pool.StatusFailed).Token+2, "the token keeps growing across a requeue")
	})

	t.Run("ErrInFlight", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, []pool.Status{pool.StatusProcessing, pool.StatusInCall}, pool.ErrInFlight, pool.Item.Requeued)
	})

	t.Run("ErrWrongStatus", func(t *testing.T) {
		t.Parallel()
		waiting := []pool.Status{pool.StatusPending, pool.StatusRetrying, pool.StatusScheduled}
		requireRejected(t, waiting, pool.ErrWrongStatus, pool.Item.Requeued)
	})
}

func TestItem_WithPriority(t *testing.T) {
	t.Parallel()

	for _, s := range notInFlight {
		t.Run("OK"+string(s), func(t *testing.T) {
			t.Parallel()
			in := itemIn(s)
			for _, prio := range []int{-5, 0, 100} {
				got, err := in.WithPriority(prio)
				require.NoError(t, err)
				want := in
				want.Priority = prio
				require.Equal(t, want, got)
			}
		})
	}

	t.Run("ErrInFlight", func(t *testing.T) {
		t.Parallel()
		requireRejected(t, []pool.Status{pool.StatusProcessing, pool.StatusInCall}, pool.ErrInFlight,
			func(it pool.Item) (pool.Item, error) { return it.WithPriority(99) })
	})
}

func TestItem_Removable(t *testing.T) {
	t.Parallel()

	for _, s := range pool.Statuses() {
		err := itemIn(s).Removable()
		if s.InFlight() {
			require.ErrorIs(t, err, pool.ErrInFlight, "%s", s)
		} else {
			require.NoError(t, err, "%s", s)
		}
	}
}

// TestMachine_ErrorsNameTheStatus: a transition refused names the item's
// status; the operation is its caller's to name (the engine's "complete:
// ..."), not named twice.
func TestMachine_ErrorsNameTheStatus(t *testing.T) {
	t.Parallel()

	_, err := itemIn(pool.StatusPending).Completed(now, "")
	require.ErrorIs(t, err, pool.ErrWrongStatus)
	require.Equal(t, "the item is Pending: "+pool.ErrWrongStatus.Error(), err.Error())
	require.False(t, errors.Is(err, pool.ErrInFlight))
}
