package queue_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// Tests of a blocked Dequeue's sleep, each killing a mutant of dispatch.go
// the other tests let through (a mutation review, 2026-12-07).

// nextWakeStore runs hook before every NextWake read (a blocked
// Dequeue's read of its pool's next wake, after a claim that found
// nothing); an error of hook is the read's.
type nextWakeStore struct {
	store.Store
	hook func() error
}

type nextWakeTx struct {
	store.Tx
	s *nextWakeStore
}

func (tx nextWakeTx) NextWake(ctx context.Context, id uuid.UUID) (time.Time, bool, error) {
	if err := tx.s.hook(); err != nil {
		return time.Time{}, false, err
	}
	return tx.Tx.NextWake(ctx, id)
}

func (s *nextWakeStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Read(ctx, func(tx store.Tx) error { return fn(nextWakeTx{tx, s}) })
}

// TestDequeue_WakeDuringALookIsKept: a wake-up that comes while the waiter
// is between its claim and its sleep (here, reading its pool's next wake)
// is kept, and the waiter looks again at once, not a PollInterval later
// (an unbuffered wake channel dropped it).
func TestDequeue_WakeDuringALookIsKept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var gate atomic.Pointer[chan struct{}] // the next read waits for it to close
	entered := make(chan struct{}, 1)
	st := &nextWakeStore{Store: openFileStore(t, ""), hook: func() error {
		if g := gate.Swap(nil); g != nil {
			entered <- struct{}{}
			<-*g
		}
		return nil
	}}
	eng := openEngine(t, st, queue.Options{PollInterval: time.Minute})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "gate", Description: "gate", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	held, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	g := make(chan struct{})
	gate.Store(&g)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go func() { _, err := eng.Dequeue(dctx, p.UUID); got <- err }()
	<-entered                                       // the waiter found the pool full and reads its next wake
	require.NoError(t, eng.Complete(ctx, held, "")) // frees the slot: a wake-up now
	close(g)
	require.NoError(t, <-got, "the wake-up that came during the look was lost")
}

// TestEngine_DequeueWakesAtRetryTimeWithClockAhead: a retry time is met at
// its instant when the engine's clock (Options.Now) runs ahead of the wall
// clock: the sleep is measured on the engine's clock, not the wall's, which
// is an hour behind and would sleep the whole poll interval.
func TestEngine_DequeueWakesAtRetryTimeWithClockAhead(t *testing.T) {
	t.Parallel()
	const poll = 5 * time.Second
	ahead := func() time.Time { return time.Now().Add(time.Hour) }
	b := realEngine(t, queue.Options{PollInterval: poll, Now: ahead})
	p := b.pool(t, pool.FIFO, 1, 3)
	b.add(t, p.UUID, 1)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: ahead().Add(300 * time.Millisecond)}))
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, 2*poll)
	defer cancel()
	_, err = b.eng.Dequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.Less(t, time.Since(start), poll/2, "the retry time was met a PollInterval late")
}

// TestEngine_EmptyPoolPolledEveryPollInterval: a Dequeue blocked on an
// empty pool (nothing to time but the safety poll) sees another process's
// Add at its next poll, within a PollInterval (with room for a loaded
// machine), not later.
func TestEngine_EmptyPoolPolledEveryPollInterval(t *testing.T) {
	t.Parallel()
	const poll = 300 * time.Millisecond
	path := filepath.Join(t.TempDir(), "shared.db")
	opts := queue.Options{PollInterval: poll}
	here := &testBundle{ctx: context.Background(), eng: openEngine(t, openFileStore(t, path), opts)}
	there := &testBundle{ctx: context.Background(), eng: openEngine(t, openFileStore(t, path), opts)}
	p := here.pool(t, pool.FIFO, 1, 3)
	ctx, cancel := context.WithTimeout(here.ctx, 50*poll)
	defer cancel()
	got := make(chan error, 1)
	go func() { _, err := here.eng.Dequeue(ctx, p.UUID); got <- err }()
	require.Eventually(t, func() bool { return queue.Waiting(here.eng, p.UUID) > 0 }, 5*time.Second, time.Millisecond)
	time.Sleep(poll / 4) // asleep after its first look
	there.add(t, p.UUID, 1)
	start := time.Now()
	require.NoError(t, <-got)
	// Five polls' room for a loaded machine's race run; a waiter that
	// slept ten would miss it.
	require.Less(t, time.Since(start), 5*poll, "an Add in another process seen later than the next poll")
}

// TestEngine_HeldPoolIgnoresItsRetryTimes: a Dequeue on a pool its paused
// campaign holds sleeps until a wake-up or its poll: the pool's retry
// times coming due do not wake it (what frees the pool does), so it reads
// nothing before the poll.
func TestEngine_HeldPoolIgnoresItsRetryTimes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cs := &txCountStore{Store: openFileStore(t, "")}
	eng := openEngine(t, cs, queue.Options{PollInterval: 2 * time.Second})
	b := &testBundle{ctx: ctx, eng: eng}
	p := b.pool(t, pool.FIFO, 3, 3)
	b.add(t, p.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, p.UUID)
	_, err := eng.StartCampaign(ctx, c.UUID)
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, eng.Fail(ctx, l, queue.Failure{RetryAt: time.Now().Add(150 * time.Millisecond)}))
	_, err = eng.PauseCampaign(ctx, c.UUID)
	require.NoError(t, err)

	reads := cs.reads.Load()
	dctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	_, err = eng.Dequeue(dctx, p.UUID)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, cs.reads.Load()-reads, "reads by a Dequeue on a held pool before its poll")
}

// TestDequeue_FailedReadBetweenLooksWaitsOn: a blocked Dequeue's read of
// its pool's next wake, after a claim that found the pool full, that fails
// does not end the wait (it did, with the read's error, where
// DequeueCampaign and Work went on): the wake-up of the slot freed later
// gets it its lease.
func TestDequeue_FailedReadBetweenLooksWaitsOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var armed atomic.Bool // the next read fails
	failed := make(chan struct{})
	st := &nextWakeStore{Store: openFileStore(t, ""), hook: func() error {
		if armed.CompareAndSwap(true, false) {
			close(failed)
			return errors.New("the database blinked")
		}
		return nil
	}}
	eng := openEngine(t, st, queue.Options{PollInterval: time.Minute})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "blink", Description: "blink", Type: pool.FIFO})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	held, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	armed.Store(true)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	type result struct {
		l   *queue.Lease
		err error
	}
	got := make(chan result, 1)
	go func() { l, err := eng.Dequeue(dctx, p.UUID); got <- result{l, err} }()
	select {
	case <-failed: // the pool was full, and the read after failed
	case r := <-got:
		t.Fatalf("Dequeue returned before its read: %v, %v", r.l, r.err)
	}
	require.NoError(t, eng.Complete(ctx, held, "")) // frees the slot: a wake-up
	r := <-got
	require.NoError(t, r.err, "a failed read between looks ended the wait")
	require.NotNil(t, r.l)
}

// poolWakesStore fails the next PoolWakes read once armed (a
// DequeueCampaign's read of which of its pools may give).
type poolWakesStore struct {
	store.Store
	armed  atomic.Bool
	failed atomic.Int32
}

type poolWakesTx struct {
	store.Tx
	s *poolWakesStore
}

func (tx poolWakesTx) PoolWakes(ctx context.Context, ids ...uuid.UUID) (map[uuid.UUID]store.PoolWake, error) {
	if tx.s.armed.CompareAndSwap(true, false) {
		tx.s.failed.Add(1)
		return nil, errors.New("the database blinked")
	}
	return tx.Tx.PoolWakes(ctx, ids...)
}

func (s *poolWakesStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Read(ctx, func(tx store.Tx) error { return fn(poolWakesTx{tx, s}) })
}

// TestDequeueCampaign_FailedPoolsReadClaims: a DequeueCampaign whose read
// of which pools may give fails (a store that blinked) claims in its pools
// as if the read had said they all may, as Dequeue's poll does, rather
// than end with the read's error (as it did).
func TestDequeueCampaign_FailedPoolsReadClaims(t *testing.T) {
	t.Parallel()
	st := &poolWakesStore{Store: openFileStore(t, "")}
	b := &testBundle{ctx: context.Background(), eng: openEngine(t, st, queue.Options{PollInterval: time.Minute})}
	p1 := b.pool(t, pool.Parallel, 5, 3)
	p2 := b.pool(t, pool.Parallel, 5, 3)
	b.add(t, p2.UUID, 1)
	c := b.campaignOf(t, uuid.Nil, p1.UUID, p2.UUID)
	_, err := b.eng.StartCampaign(b.ctx, c.UUID)
	require.NoError(t, err)

	st.armed.Store(true)
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	l, err := b.eng.DequeueCampaign(ctx, c.UUID)
	require.NoError(t, err, "a failed read of the pools ended the wait")
	require.Equal(t, p2.UUID, l.PoolUUID)
	require.Equal(t, int32(1), st.failed.Load(), "the read did not fail: the test tested nothing")
}
