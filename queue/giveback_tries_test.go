package queue_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// busyAfterStore fails the next fails write transactions (errBusy), once
// it is armed and the first write after that has ended, and then runs
// after. It counts the writes it failed.
type busyAfterStore struct {
	store.Store
	armed  atomic.Bool
	fails  atomic.Int64 // writes still to fail; -1: every write
	failed atomic.Int64
	after  func()
}

func (s *busyAfterStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if n := s.fails.Load(); n != 0 && (n < 0 || s.fails.CompareAndSwap(n, n-1)) {
		s.failed.Add(1)
		return errBusy
	}
	err := s.Store.Write(ctx, fn)
	if s.armed.CompareAndSwap(true, false) {
		s.after()
	}
	return err
}

// TestEngine_LateClaimGiveBackTries: the leases of a claim that committed
// late are given back in up to three tries (giveBackTries), a quarter
// second apart: a database busy for two tries in a row still gets them
// back, unattempted, and the dequeue claims the item again; one that
// stays busy is tried three times, not hammered, and the dequeue fails
// (the lease comes back at its end). A bound one lower left the item in
// flight after two busy tries; one higher tried a down database a fourth
// time.
func TestEngine_LateClaimGiveBackTries(t *testing.T) {
	t.Parallel()
	for _, sub := range []struct {
		name  string
		fails int64 // the give-back's tries that fail; -1: all of them
	}{
		{"BusyTwice", 2},
		{"Down", -1},
	} {
		t.Run(sub.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			bs := &busyAfterStore{Store: openFileStore(t, "")}
			clk := newClock()
			eng := openEngine(t, bs, queue.Options{LeaseTimeout: 10 * time.Minute, Now: clk.Now})
			zero := 0
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "late", Description: "d", MaxRetries: &zero})
			require.NoError(t, err)
			c := uuid.New()
			_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
			require.NoError(t, err)

			bs.after = func() {
				clk.Advance(3 * time.Second) // the claim's answer, late
				bs.fails.Store(sub.fails)    // and the database busy
			}
			bs.armed.Store(true)
			l, err := eng.TryDequeue(ctx, p.UUID)
			if sub.fails > 0 {
				require.NoError(t, err, "the third try gave the leases back; the next look claims the item")
				require.Equal(t, sub.fails, bs.failed.Load(), "tries that failed")
				require.Equal(t, c, l.ContactUUID)
				require.Equal(t, 1, l.Attempt, "the late claim's attempt was given back")
				return
			}
			require.ErrorContains(t, err, "giving its leases back failed")
			require.Equal(t, int64(3), bs.failed.Load(), "tries of the give-back")
			bs.fails.Store(0)
			it, err := eng.Item(ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, pool.StatusProcessing, it.Status, "no try was written: the lease comes back at its end")
		})
	}
}

// TestEngine_Work_PastWindowGiveBackTries: a lease whose calling window
// closed before its handler started is given back (see
// TestEngine_Work_SlowOnEventPastWindow) in up to three tries
// (giveBackTries): a database busy for two tries still gets the item back,
// unattempted (EventReleased); one that stays busy is tried three times,
// and Work reports the failure (EventError). A bound one lower, or one
// higher, changes the count.
func TestEngine_Work_PastWindowGiveBackTries(t *testing.T) {
	t.Parallel()
	for _, sub := range []struct {
		name  string
		fails int64 // the give-back's tries that fail; -1: all of them
		last  queue.EventKind
	}{
		{"BusyTwice", 2, queue.EventReleased},
		{"Down", -1, queue.EventError},
	} {
		t.Run(sub.name, func(t *testing.T) {
			t.Parallel()
			bs := &busyAfterStore{Store: openFileStore(t, "")}
			b, clk, p, c := windowPool(t, bs, time.Date(2026, 1, 2, 16, 59, 59, 0, time.UTC))
			eng := b.eng

			ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
			defer cancel()
			var mu sync.Mutex
			var kinds []queue.EventKind
			var failed int64
			err := eng.Work(ctx, func(context.Context, *queue.Lease) error {
				t.Error("the handler started outside the calling window")
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Workers: 1, OnEvent: func(ev queue.Event) {
				mu.Lock()
				defer mu.Unlock()
				kinds = append(kinds, ev.Kind)
				switch ev.Kind {
				case queue.EventDispatched:
					clk.Advance(5 * time.Minute) // past the window's end
					bs.fails.Store(sub.fails)    // and the database busy
				default:
					failed = bs.failed.Load()
					bs.fails.Store(0)
					cancel()
				}
			}})
			require.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			require.Equal(t, []queue.EventKind{queue.EventDispatched, sub.last}, kinds)
			if sub.fails > 0 {
				require.Equal(t, sub.fails, failed, "tries that failed")
				it, err := eng.Item(b.ctx, p.UUID, c)
				require.NoError(t, err)
				require.Equal(t, pool.StatusPending, it.Status, "given back on the third try")
				require.Zero(t, it.Attempts, "given back, unattempted")
				return
			}
			require.Equal(t, int64(3), failed, "tries of the give-back")
		})
	}
}

// TestEngine_ClaimAtCloseGiveBackTriedOnce: the leases of a claim that
// commits as Close begins are given back in one try (see giveBackAtClose):
// Close waits for the claim, and on a database that stays busy each try
// waits out its lock timeout, so one more try would hold Close up as long
// again. The dequeue gets ErrClosed and says the give-back failed; the
// lease comes back at its end. (Two tries survived every other test.)
func TestEngine_ClaimAtCloseGiveBackTriedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bs := &busyAfterStore{Store: openFileStore(t, "")}
	eng, err := queue.New(bs, queue.Options{LeaseTimeout: 10 * time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "claim at close", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(3)...)
	require.NoError(t, err)

	closed := make(chan error, 1)
	bs.after = func() {
		go func() { closed <- eng.Close() }()
		// Close has begun once Work is refused (before it, Work reads a
		// pool not found: a dequeue would write, and wait for this claim).
		probe := queue.WorkOptions{Pools: []uuid.UUID{uuid.New()}}
		for !errors.Is(eng.Work(ctx, func(context.Context, *queue.Lease) error { return nil }, probe), queue.ErrClosed) {
			time.Sleep(time.Millisecond)
		}
		bs.fails.Store(-1) // and the database busy
	}
	bs.armed.Store(true)
	leases, err := eng.DequeueN(ctx, p.UUID, 3)
	failed := bs.failed.Load()
	require.ErrorIs(t, err, queue.ErrClosed)
	require.ErrorContains(t, err, "giving the leases back failed")
	require.Empty(t, leases)
	require.Equal(t, int64(1), failed, "tries of the give-back")
	require.NoError(t, <-closed)
}
