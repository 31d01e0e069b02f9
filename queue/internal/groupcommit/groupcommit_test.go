package groupcommit_test

// Tests of the Committer alone, on a real store: operations are inserts
// and reads of pools, so that what ran, in which transaction and in which
// order, can be read back from the database.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// heldStore wraps a store: its next Write, once armed, waits before it
// starts until released, or panics.
type heldStore struct {
	store.Store

	mu      sync.Mutex
	hold    chan struct{}
	entered chan struct{}
	panics  bool
	fails   error // every Write returns it without running
	// failsAfter, once armed, makes the next Write run its function, roll
	// it back and return failsAfter: a store whose run met an error that
	// it runs again for, and whose next run failed before its function
	// ran (a lock it took up front timed out, say).
	failsAfter error
}

// holdNext makes the next Write wait until release is called, and returns
// a channel closed once it waits. Release runs at the end of tb's test if
// not before: a check that fails between hold and release would otherwise
// leave the Committer's Close (a cleanup registered earlier, so run
// later) waiting for the held Write, and the package hanging.
func (s *heldStore) holdNext(tb testing.TB) (entered <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold, s.entered = make(chan struct{}), make(chan struct{})
	h := s.hold
	var once sync.Once
	release = func() { once.Do(func() { close(h) }) }
	tb.Cleanup(release)
	return s.entered, release
}

// failWrites makes every Write from now on return err without running
// (nil: run again).
func (s *heldStore) failWrites(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = err
}

func (s *heldStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	s.mu.Lock()
	hold, entered, panics, fails, failsAfter := s.hold, s.entered, s.panics, s.fails, s.failsAfter
	s.hold, s.entered, s.panics, s.failsAfter = nil, nil, false, nil
	s.mu.Unlock()
	if hold != nil {
		close(entered)
		<-hold
	}
	if panics {
		panic("the store panicked")
	}
	if fails != nil {
		return fails
	}
	if failsAfter != nil {
		_ = s.Store.Write(ctx, func(tx store.Tx) error { _ = fn(tx); return failsAfter })
		return failsAfter
	}
	return s.Store.Write(ctx, fn)
}

type bundle struct {
	ctx context.Context
	st  *heldStore
	c   *groupcommit.Committer
}

func setup(t *testing.T, opts groupcommit.Options) *bundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	h := &heldStore{Store: st}
	c := groupcommit.New(h, opts)
	t.Cleanup(c.Close)
	return &bundle{ctx: ctx, st: h, c: c}
}

// insert is an operation that stores a new pool with id.
func insert(id uuid.UUID) groupcommit.Func {
	return func(ctx context.Context, tx *groupcommit.Tx) error {
		return tx.InsertPool(ctx, pool.Pool{
			UUID: id, Name: "pool " + id.String()[:8], Description: "group commit",
			Type: pool.FIFO, MaxParallelItems: 1, IsActive: true, CreatedAt: tx.Now, UpdatedAt: tx.Now,
		})
	}
}

// exists reports whether pool id is in the database.
func (b *bundle) exists(t *testing.T, id uuid.UUID) bool {
	t.Helper()
	err := b.st.Read(b.ctx, func(tx store.Tx) error { _, err := tx.Pool(b.ctx, id); return err })
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	require.NoError(t, err)
	return true
}

// queue starts f on a goroutine and waits until the committer has one
// more operation waiting.
func (b *bundle) queue(t *testing.T, wg *sync.WaitGroup, f func()) {
	t.Helper()
	n := b.c.Queued()
	wg.Go(f)
	require.Eventually(t, func() bool { return b.c.Queued() == n+1 }, 5*time.Second, time.Millisecond)
}

// queueInserts queues an insert of each pool of ids, in order (see
// queue), and returns their results, set once wg is done.
func (b *bundle) queueInserts(t *testing.T, wg *sync.WaitGroup, ids []uuid.UUID) []error {
	t.Helper()
	errs := make([]error, len(ids))
	for i := range ids {
		b.queue(t, wg, func() { errs[i] = b.c.Write(b.ctx, insert(ids[i])) })
	}
	return errs
}

// hold starts a Write of a new pool whose transaction waits until the
// returned release; the operations queued meanwhile form the next batch.
func (b *bundle) hold(t *testing.T, wg *sync.WaitGroup) (release func()) {
	t.Helper()
	entered, release := b.st.holdNext(t)
	wg.Go(func() { require.NoError(t, b.c.Write(b.ctx, insert(uuid.New()))) })
	<-entered
	return release
}

func TestCommitter_Write(t *testing.T) {
	t.Parallel()

	t.Run("OneTransactionInArrivalOrder", func(t *testing.T) {
		t.Parallel()
		b := setup(t, groupcommit.Options{})
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		before := b.c.Stats()

		a, failed, cancelled, z := uuid.New(), uuid.New(), uuid.New(), uuid.New()
		var errA, errSees, errFailed, errCancelled, errZ error
		var sawA bool
		var nowA, nowZ time.Time
		b.queue(t, &wg, func() {
			errA = b.c.Write(b.ctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				nowA = tx.Now
				return insert(a)(ctx, tx)
			})
		})
		b.queue(t, &wg, func() {
			errSees = b.c.Write(b.ctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				_, err := tx.Pool(ctx, a)
				sawA = err == nil
				return nil
			})
		})
		b.queue(t, &wg, func() {
			errFailed = b.c.Write(b.ctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				if err := insert(failed)(ctx, tx); err != nil {
					return err
				}
				return errors.New("changed my mind")
			})
		})
		cctx, cancel := context.WithCancel(b.ctx)
		var ranCancelled atomic.Bool
		cancelledDone := make(chan struct{})
		b.queue(t, &wg, func() {
			defer close(cancelledDone)
			errCancelled = b.c.Write(cctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				ranCancelled.Store(true)
				return insert(cancelled)(ctx, tx)
			})
		})
		b.queue(t, &wg, func() {
			errZ = b.c.Write(b.ctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				nowZ = tx.Now
				return insert(z)(ctx, tx)
			})
		})
		cancel()
		<-cancelledDone // its caller has left before the batch is taken
		release()
		wg.Wait()

		require.NoError(t, errA)
		require.NoError(t, errSees)
		require.True(t, sawA, "a later operation sees an earlier one's write")
		require.ErrorContains(t, errFailed, "changed my mind")
		require.ErrorIs(t, errCancelled, context.Canceled)
		require.False(t, ranCancelled.Load(), "an operation whose caller left never runs")
		require.NoError(t, errZ)
		require.True(t, nowA.Equal(nowZ), "one instant for the whole transaction")
		require.True(t, b.exists(t, a))
		require.False(t, b.exists(t, failed), "the failed operation's insert was undone")
		require.False(t, b.exists(t, cancelled))
		require.True(t, b.exists(t, z))

		after := b.c.Stats()
		require.Equal(t, before.Transactions+1, after.Transactions, "the queued operations shared one transaction")
		require.Equal(t, before.Reruns+1, after.Reruns, "the failure made the batch run again with savepoints")
		// The held operation is counted when it ends, then four: the one
		// that never ran is not counted.
		require.Equal(t, before.Operations+5, after.Operations)
	})

	t.Run("CallerLeavesAtItsDeadline", func(t *testing.T) {
		t.Parallel()
		b := setup(t, groupcommit.Options{})
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		defer release()
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Millisecond)
		defer cancel()
		id := uuid.New()
		start := time.Now()
		err := b.c.Write(ctx, insert(id))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Less(t, time.Since(start), time.Second)
		release()
		wg.Wait()
		require.NoError(t, b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { return nil }))
		require.False(t, b.exists(t, id), "never run")
	})

	t.Run("StartedAloneCancelled", func(t *testing.T) {
		// Alone in its transaction, a started operation's statements run
		// to their end (its context is not cancelled); its Write is
		// rolled back if the cancellation reaches it before its COMMIT
		// (the caller gets the cancellation, nothing written), else it
		// commits and the result stands: either way the caller is told
		// what happened. (TestCommitter_CancelEndsALoneWrite waits for
		// the cancellation to reach the Write; in a batch the operation
		// runs to the end.)
		t.Parallel()
		b := setup(t, groupcommit.Options{})
		ctx, cancel := context.WithCancel(b.ctx)
		id := uuid.New()
		err := b.c.Write(ctx, func(opCtx context.Context, tx *groupcommit.Tx) error {
			cancel() // the caller's context ends while the operation runs
			require.NoError(t, opCtx.Err(), "the operation's context is not cancelled")
			return insert(id)(opCtx, tx)
		})
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
		}
		require.Equal(t, err == nil, b.exists(t, id), "written, yet failed (or failed, yet written): %v", err)
	})

	t.Run("DoneContextNeverQueued", func(t *testing.T) {
		t.Parallel()
		b := setup(t, groupcommit.Options{})
		ctx, cancel := context.WithCancel(b.ctx)
		cancel()
		require.ErrorIs(t, b.c.Write(ctx, insert(uuid.New())), context.Canceled)
		require.Zero(t, b.c.Stats().Transactions)
		// While a transaction holds the committer, a queued operation
		// would stay in the queue: Queued tells whether it was queued.
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		defer release()
		id := uuid.New()
		require.ErrorIs(t, b.c.Write(ctx, insert(id)), context.Canceled)
		require.Zero(t, b.c.Queued(), "an operation whose context was done was queued")
		release()
		wg.Wait()
		require.False(t, b.exists(t, id))
	})
}

func TestCommitter_Panics(t *testing.T) {
	t.Parallel()

	t.Run("OperationPanicIsItsError", func(t *testing.T) {
		t.Parallel()
		b := setup(t, groupcommit.Options{})
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		x, y := uuid.New(), uuid.New()
		var errX, errPanic, errY error
		b.queue(t, &wg, func() { errX = b.c.Write(b.ctx, insert(x)) })
		b.queue(t, &wg, func() {
			errPanic = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { panic("boom") })
		})
		b.queue(t, &wg, func() { errY = b.c.Write(b.ctx, insert(y)) })
		release()
		wg.Wait()
		require.NoError(t, errX)
		require.ErrorContains(t, errPanic, "boom")
		require.NoError(t, errY)
		require.True(t, b.exists(t, x))
		require.True(t, b.exists(t, y))
	})

	t.Run("StorePanicFailsTheBatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t, groupcommit.Options{})
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		errs := b.queueInserts(t, &wg, ids)
		b.st.mu.Lock()
		b.st.panics = true
		b.st.mu.Unlock()
		release()
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the callers of a batch whose store panicked were never released")
		}
		for i, err := range errs {
			require.ErrorContains(t, err, "panicked", "operation %d", i)
			require.False(t, b.exists(t, ids[i]))
		}
		id := uuid.New()
		require.NoError(t, b.c.Write(b.ctx, insert(id)), "the next write works")
		require.True(t, b.exists(t, id))
	})
}

// TestCommitter_LockTimeoutNotRunAgain: an operation that waited out the
// store's lock timeout (another node holds its pool) keeps its error and
// is not run again with the batch's savepoints, where it would wait as
// long again; the others commit. A combined group that did keeps it for
// each of its callers.
func TestCommitter_LockTimeoutNotRunAgain(t *testing.T) {
	t.Parallel()
	timedOut := fmt.Errorf("lock pool: %w", store.ErrLockTimeout)
	for _, combined := range []bool{false, true} {
		t.Run(fmt.Sprintf("Combined=%v", combined), func(t *testing.T) {
			t.Parallel()
			b := setup(t, groupcommit.Options{})
			var wg sync.WaitGroup
			release := b.hold(t, &wg)
			var runs atomic.Int32
			waited := func(context.Context, *groupcommit.Tx) error { runs.Add(1); return timedOut }
			cb := &groupcommit.Combiner{Key: "q", Run: func(ctx context.Context, tx *groupcommit.Tx, _ []any) error {
				return waited(ctx, tx)
			}}
			a, z := uuid.New(), uuid.New()
			var errA, errZ error
			errs := make([]error, 2)
			b.queue(t, &wg, func() { errA = b.c.Write(b.ctx, insert(a)) })
			for i := range errs {
				if combined {
					b.queue(t, &wg, func() { errs[i] = b.c.WriteCombined(b.ctx, cb, i) })
				} else {
					b.queue(t, &wg, func() { errs[i] = b.c.Write(b.ctx, waited) })
				}
			}
			b.queue(t, &wg, func() { errZ = b.c.Write(b.ctx, insert(z)) })
			release()
			wg.Wait()
			require.NoError(t, errA)
			require.NoError(t, errZ)
			for _, err := range errs {
				require.ErrorIs(t, err, store.ErrLockTimeout)
			}
			// Combined: one run of the group, in the first run. Apart: the
			// first in the first run, the second only in the rerun.
			want := int32(2)
			if combined {
				want = 1
			}
			require.Equal(t, want, runs.Load(), "run again, an operation would wait as long again")
			require.True(t, b.exists(t, a))
			require.True(t, b.exists(t, z))
		})
	}
}

func TestCommitter_FailedTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	boom := errors.New("disk on fire")
	b.st.fails = boom
	var ran atomic.Bool
	err := b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { ran.Store(true); return nil })
	require.ErrorIs(t, err, boom)
	require.False(t, ran.Load())
}

func TestCommitter_MaxBatch(t *testing.T) {
	t.Parallel()
	for _, maxBatch := range []int{1, 3} {
		b := setup(t, groupcommit.Options{MaxBatch: maxBatch})
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		before := b.c.Stats()
		for range 7 {
			b.queue(t, &wg, func() { require.NoError(t, b.c.Write(b.ctx, insert(uuid.New()))) })
		}
		release()
		wg.Wait()
		after := b.c.Stats()
		require.Equal(t, uint64((7+maxBatch-1)/maxBatch), after.Transactions-before.Transactions, "MaxBatch %d", maxBatch)
		require.Equal(t, uint64(8), after.Operations-before.Operations, "MaxBatch %d: the held one (counted when it ends) and seven", maxBatch)
	}
}

// TestCommitter_Combined: the waiting operations of one key run as one
// call, at the place of the first of them, with their requests in arrival
// order; other operations run at their own places.
func TestCommitter_Combined(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	var mu sync.Mutex
	var log []string
	record := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		log = append(log, s)
	}
	combiner := func(key string) *groupcommit.Combiner {
		return &groupcommit.Combiner{Key: key, Run: func(_ context.Context, _ *groupcommit.Tx, reqs []any) error {
			s := key + ":"
			for _, r := range reqs {
				s += r.(string)
			}
			record(s)
			return nil
		}}
	}
	plain := func(s string) groupcommit.Func {
		return func(context.Context, *groupcommit.Tx) error { record(s); return nil }
	}
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	for _, step := range []func() error{
		func() error { return b.c.WriteCombined(b.ctx, combiner("a"), "1") },
		func() error { return b.c.Write(b.ctx, plain("p")) },
		func() error { return b.c.WriteCombined(b.ctx, combiner("b"), "1") },
		func() error { return b.c.WriteCombined(b.ctx, combiner("a"), "2") },
		func() error { return b.c.WriteCombined(b.ctx, combiner("b"), "2") },
		func() error { return b.c.WriteCombined(b.ctx, combiner("a"), "3") },
	} {
		b.queue(t, &wg, func() { require.NoError(t, step()) })
	}
	release()
	wg.Wait()
	require.Equal(t, []string{"a:123", "p", "b:12"}, log)

	// A Late combiner's operations run after the others, whenever they
	// came.
	log = nil
	late := combiner("l")
	late.Late = true
	release = b.hold(t, &wg)
	for _, step := range []func() error{
		func() error { return b.c.WriteCombined(b.ctx, late, "1") },
		func() error { return b.c.WriteCombined(b.ctx, combiner("a"), "1") },
		func() error { return b.c.WriteCombined(b.ctx, late, "2") },
		func() error { return b.c.Write(b.ctx, plain("p")) },
	} {
		b.queue(t, &wg, func() { require.NoError(t, step()) })
	}
	release()
	wg.Wait()
	require.Equal(t, []string{"a:1", "p", "l:12"}, log)

	// In a batch of many, the others keep their arrival order, and so do
	// the Late ones after them (a sort that is not stable mixes them up
	// past a dozen operations).
	log = nil
	release = b.hold(t, &wg)
	var want []string
	lateReqs := "l:"
	for i := range 40 {
		s := fmt.Sprintf("%c", 'A'+i)
		if i%3 == 0 {
			lateReqs += s
			b.queue(t, &wg, func() { require.NoError(t, b.c.WriteCombined(b.ctx, late, s)) })
		} else {
			want = append(want, s)
			b.queue(t, &wg, func() { require.NoError(t, b.c.Write(b.ctx, plain(s))) })
		}
	}
	release()
	wg.Wait()
	require.Equal(t, append(want, lateReqs), log)

	// Alone, a combinable operation runs as a call with its one request.
	log = nil
	require.NoError(t, b.c.WriteCombined(b.ctx, combiner("a"), "9"))
	require.Equal(t, []string{"a:9"}, log)
}

func TestCommitter_Close(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	id := uuid.New()
	var queuedErr error
	b.queue(t, &wg, func() { queuedErr = b.c.Write(b.ctx, insert(id)) })
	closed := make(chan struct{})
	go func() { b.c.Close(); close(closed) }()
	require.Eventually(t, func() bool {
		// Until Close has begun, this write waits behind the held one, and
		// leaves (never run) at its deadline.
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Millisecond)
		defer cancel()
		return errors.Is(b.c.Write(ctx, insert(uuid.New())), groupcommit.ErrClosed)
	}, 5*time.Second, time.Millisecond, "writes after Close")
	select {
	case <-closed:
		t.Fatal("Close returned while operations were waiting")
	default:
	}
	release()
	<-closed
	wg.Wait()
	require.NoError(t, queuedErr, "an operation submitted before Close runs")
	require.True(t, b.exists(t, id))
	b.c.Close() // twice is fine
}

// TestCommitter_Stress: many callers, some leaving early, none sleeping.
// An operation has run (its pool exists) exactly when its caller got nil.
func TestCommitter_Stress(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{MaxBatch: 16})
	const callers, each = 16, 60
	type result struct {
		id  uuid.UUID
		err error
	}
	results := make(chan result, callers*each)
	var wg sync.WaitGroup
	for w := range callers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for range each {
				id := uuid.New()
				ctx, cancel := b.ctx, context.CancelFunc(func() {})
				switch rng.IntN(4) {
				case 0:
					ctx, cancel = context.WithTimeout(b.ctx, time.Duration(rng.IntN(300))*time.Microsecond)
				case 1:
					var c context.CancelFunc
					ctx, c = context.WithCancel(b.ctx)
					time.AfterFunc(time.Duration(rng.IntN(200))*time.Microsecond, c)
					cancel = c
				}
				fn := insert(id)
				if rng.IntN(10) == 0 {
					fn = func(ctx context.Context, tx *groupcommit.Tx) error {
						if err := insert(id)(ctx, tx); err != nil {
							return err
						}
						return errors.New("fails after writing")
					}
				}
				results <- result{id, b.c.Write(ctx, fn)}
				cancel()
			}
		})
	}
	wg.Wait()
	close(results)
	var ok, left, failed int
	for r := range results {
		switch {
		case r.err == nil:
			ok++
			require.True(t, b.exists(t, r.id), "an operation that returned nil is committed")
		case errors.Is(r.err, context.Canceled), errors.Is(r.err, context.DeadlineExceeded):
			left++
			require.False(t, b.exists(t, r.id), "an operation whose caller left never ran")
		default:
			failed++
			require.ErrorContains(t, r.err, "fails after writing")
			require.False(t, b.exists(t, r.id), "a failed operation's writes are undone")
		}
	}
	s := b.c.Stats()
	t.Logf("%d committed, %d left, %d failed; %d operations in %d transactions, %d reruns", ok, left, failed, s.Operations, s.Transactions, s.Reruns)
	// Operations counts those started: each that committed or failed, and
	// maybe some whose callers left (an operation alone in its
	// transaction whose caller was cancelled is rolled back even once it
	// has started).
	require.GreaterOrEqual(t, s.Operations, uint64(ok+failed), "operations run")
	require.LessOrEqual(t, s.Operations, uint64(ok+failed+left), "operations run")
	require.Positive(t, left, "no caller left early: the test did not test that")
	require.Less(t, s.Transactions, s.Operations, "no transaction was shared")
}

// TestCommitter_StatsCountBeforeRelease: an operation is in Stats by the
// time its Write returns (tests and callers compare counts right after a
// call).
func TestCommitter_StatsCountBeforeRelease(t *testing.T) {
	t.Parallel()
	c := groupcommit.New(nopStore{}, groupcommit.Options{})
	defer c.Close()
	ctx := context.Background()
	op := func(context.Context, *groupcommit.Tx) error { return nil }
	for i := range 20_000 {
		require.NoError(t, c.Write(ctx, op))
		if got := c.Stats().Operations; got != uint64(i+1) {
			t.Fatalf("after %d writes returned, Stats counts %d operations", i+1, got)
		}
	}
}

// TestCommitter_RerunThatCannotBegin: a batch in which an operation failed
// is rolled back and run again with savepoints; when that second
// transaction cannot even begin (the file locked by another process, the
// store closed), no operation ran in a transaction that stands, so every
// caller gets the store's error, not an error its operation returned in
// the run that was rolled back (a conflict judged on writes that never
// committed, or another operation's error in a combined call).
func TestCommitter_RerunThatCannotBegin(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	cannot := errors.New("cannot begin")
	own := errors.New("the operation's error, in the run rolled back")
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	var failed, fine error
	b.queue(t, &wg, func() {
		failed = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error {
			b.st.failWrites(cannot) // the rerun's Write
			return own
		})
	})
	id := uuid.New()
	b.queue(t, &wg, func() { fine = b.c.Write(b.ctx, insert(id)) })
	release()
	wg.Wait()
	require.ErrorIs(t, failed, cannot)
	require.NotErrorIs(t, failed, own)
	require.ErrorIs(t, fine, cannot)
	require.False(t, b.exists(t, id))
	require.Equal(t, uint64(1), b.c.Stats().Reruns)
}

// TestCommitter_LockTimeoutStandsWhenRerunCannotBegin: an operation that
// waited out the store's lock timeout keeps that error even when the
// batch's rerun then fails as a whole (run: "Only a wait out of the store's
// lock timeout is the operation's own, and stands"); the other operations
// get the rerun's error. TestCommitter_RerunThatCannotBegin has no such
// operation, and in TestCommitter_WholeTransactionErrorReplacesRolledBack
// the whole transaction's error is a lock timeout itself.
func TestCommitter_LockTimeoutStandsWhenRerunCannotBegin(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	cannot := errors.New("cannot begin")
	timedOut := fmt.Errorf("lock pool: %w", store.ErrLockTimeout)
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	var runs atomic.Int32
	var waited, fine error
	b.queue(t, &wg, func() {
		waited = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error {
			runs.Add(1)
			b.st.failWrites(cannot) // the rerun's Write
			return timedOut
		})
	})
	id := uuid.New()
	b.queue(t, &wg, func() { fine = b.c.Write(b.ctx, insert(id)) })
	release()
	wg.Wait()
	require.ErrorIs(t, waited, store.ErrLockTimeout, "the wait out of the lock timeout is the operation's own")
	require.NotErrorIs(t, waited, cannot)
	require.Equal(t, int32(1), runs.Load(), "not run again")
	require.ErrorIs(t, fine, cannot)
	require.False(t, b.exists(t, id))
	require.Equal(t, uint64(1), b.c.Stats().Reruns)
}

// TestCommitter_WholeTransactionErrorReplacesRolledBack: an operation's
// error in a run that the store rolled back and ran again (its internal
// "restart the transaction", say) never reaches its caller when the
// transaction then fails as a whole: every caller gets the transaction's
// error.
func TestCommitter_WholeTransactionErrorReplacesRolledBack(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	internal := errors.New("the store's internal restart")
	timedOut := fmt.Errorf("lock pools: %w", store.ErrLockTimeout)
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	b.st.mu.Lock()
	b.st.failsAfter = timedOut // the batch's Write
	b.st.mu.Unlock()
	var errQ, errP error
	q := uuid.New()
	b.queue(t, &wg, func() { errQ = b.c.Write(b.ctx, insert(q)) })
	b.queue(t, &wg, func() {
		errP = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { return internal })
	})
	release()
	wg.Wait()
	require.ErrorIs(t, errQ, store.ErrLockTimeout)
	require.ErrorIs(t, errP, store.ErrLockTimeout)
	require.NotErrorIs(t, errP, internal, "an error of a run rolled back reached its caller")
	require.False(t, b.exists(t, q))
}

// TestCommitter_AbandonedCombinedOpDoesNotRun: a combined operation
// whose caller left (its context ended) while it waited must not run, even
// when a live operation with the same key gathers its group; a caller told
// "context canceled" must not find its write committed (a claim's leases
// would have no one to work them). TestCommitter_Combined only has live
// callers, and the abandonment tests only plain operations.
func TestCommitter_AbandonedCombinedOpDoesNotRun(t *testing.T) {
	t.Parallel()
	b := setup(t, groupcommit.Options{})
	var mu sync.Mutex
	var ran []string
	cb := &groupcommit.Combiner{Key: "k", Run: func(_ context.Context, _ *groupcommit.Tx, reqs []any) error {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range reqs {
			ran = append(ran, r.(string))
		}
		return nil
	}}
	var wg sync.WaitGroup
	release := b.hold(t, &wg)
	// Two live operations, so that the batch runs as one (not runAlone).
	b.queue(t, &wg, func() {
		require.NoError(t, b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { return nil }))
	})
	b.queue(t, &wg, func() { require.NoError(t, b.c.WriteCombined(b.ctx, cb, "live")) })
	ctx, cancel := context.WithCancel(b.ctx)
	left := make(chan error, 1)
	b.queue(t, &wg, func() { left <- b.c.WriteCombined(ctx, cb, "abandoned") })
	cancel()
	require.ErrorIs(t, <-left, context.Canceled)
	release()
	wg.Wait()
	require.Equal(t, []string{"live"}, ran, "the abandoned operation ran")
}

// endingStore is a store whose transactions end as SQLite's do after some
// errors (a full disk): an operation that fails with an error wrapping
// store.ErrTxEnded rolls the whole transaction back; every later Savepoint
// of it fails, and so does its Write, with store.ErrTxEnded. The Write
// numbered endAt (counted from 1) ends at its commit, with no operation
// failed.
type endingStore struct {
	store.Store
	writes atomic.Int32
	endAt  atomic.Int32
	// big is set by an operation too big for the log: the Write that ran
	// it, rolled back or not, ends at its commit (SQLite whose log cannot
	// grow). The Committer runs one Write at a time.
	big atomic.Bool
	// panicAt is the number of a Write that panics before it runs.
	panicAt atomic.Int32
}

// setupEndingStore is setup over an endingStore.
func setupEndingStore(t *testing.T) (*bundle, *endingStore) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	es := &endingStore{Store: st}
	h := &heldStore{Store: es}
	c := groupcommit.New(h, groupcommit.Options{})
	t.Cleanup(c.Close)
	return &bundle{ctx: ctx, st: h, c: c}, es
}

type endingTx struct {
	store.Tx
	ended error
}

func (s *endingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	n := s.writes.Add(1)
	if n == s.panicAt.Load() {
		panic("the store panicked")
	}
	s.big.Store(false)
	var ended error
	err := s.Store.Write(ctx, func(stx store.Tx) error {
		tx := &endingTx{Tx: stx}
		err := fn(tx)
		ended = tx.ended
		if ended == nil && (n == s.endAt.Load() || s.big.Load()) {
			ended = fmt.Errorf("commit: %w", store.ErrTxEnded)
		}
		if ended != nil {
			return ended // rolled back
		}
		return err
	})
	if ended != nil {
		return ended
	}
	return err
}

func (t *endingTx) Savepoint(ctx context.Context, fn func(store.Tx) error) error {
	if t.ended != nil {
		return t.ended
	}
	err := t.Tx.Savepoint(ctx, fn)
	if errors.Is(err, store.ErrTxEnded) {
		t.ended = fmt.Errorf("the transaction ended: %w", err)
		return t.ended
	}
	return err
}

// TestCommitter_OperationThatEndsTheTransaction: an operation whose
// failure ends the whole transaction (store.ErrTxEnded: SQLite after a
// full disk) keeps its error, and the batch runs again without it: the
// others, before and after it, succeed alone, each written once; a batch
// with two such operations runs three times in all after the first run.
// A transaction that ends at its commit, with no operation failed, runs
// again with each operation in a transaction of its own.
func TestCommitter_OperationThatEndsTheTransaction(t *testing.T) {
	t.Parallel()
	full := fmt.Errorf("insert items: database or disk is full: %w", store.ErrTxEnded)
	// counted inserts pool id, and counts its runs.
	counted := func(id uuid.UUID, runs *atomic.Int32) groupcommit.Func {
		return func(ctx context.Context, tx *groupcommit.Tx) error {
			runs.Add(1)
			return insert(id)(ctx, tx)
		}
	}
	ender := func(ctx context.Context, tx *groupcommit.Tx) error {
		if err := insert(uuid.New())(ctx, tx); err != nil {
			return err
		}
		return full
	}

	t.Run("OthersSucceed", func(t *testing.T) {
		t.Parallel()
		b, es := setupEndingStore(t)
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		runs := make([]atomic.Int32, len(ids))
		errs := make([]error, len(ids))
		var errE1, errE2 error
		b.queue(t, &wg, func() { errs[0] = b.c.Write(b.ctx, counted(ids[0], &runs[0])) })
		b.queue(t, &wg, func() { errE1 = b.c.Write(b.ctx, ender) })
		b.queue(t, &wg, func() { errs[1] = b.c.Write(b.ctx, counted(ids[1], &runs[1])) })
		b.queue(t, &wg, func() { errE2 = b.c.Write(b.ctx, ender) })
		b.queue(t, &wg, func() { errs[2] = b.c.Write(b.ctx, counted(ids[2], &runs[2])) })
		writes := es.writes.Load()
		release()
		wg.Wait()
		require.ErrorIs(t, errE1, store.ErrTxEnded)
		require.ErrorContains(t, errE1, "disk is full")
		require.ErrorIs(t, errE2, store.ErrTxEnded)
		for i, id := range ids {
			require.NoError(t, errs[i], "operation %d", i)
			require.True(t, b.exists(t, id), "operation %d", i)
		}
		// The held lead, then: a run without savepoints, one with them
		// ended by the first ender, one ended by the second, one that
		// commits.
		require.Equal(t, int32(1+4), es.writes.Load()-writes)
		require.Equal(t, int32(4), runs[0].Load(), "run in each of the batch's four runs")
		pools, err := countPools(b)
		require.NoError(t, err)
		require.Equal(t, 1+len(ids), pools, "the lead's and the three, once each; nothing of the enders")
	})

	// The commit ends the transaction, no operation failed: the failure
	// belongs to none of them, so each runs again alone, in a transaction
	// of its own (this store ends only the batch's), and is written once.
	t.Run("EndedAtCommit", func(t *testing.T) {
		t.Parallel()
		b, es := setupEndingStore(t)
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		errs := b.queueInserts(t, &wg, ids)
		writes := es.writes.Load()
		es.endAt.Store(writes + 2) // the lead's, then the batch's
		release()
		wg.Wait()
		for i, id := range ids {
			require.NoError(t, errs[i], "operation %d", i)
			require.True(t, b.exists(t, id), "operation %d", i)
		}
		require.Equal(t, int32(1+1+len(ids)), es.writes.Load()-writes, "the lead, the batch, each alone")
		pools, err := countPools(b)
		require.NoError(t, err)
		require.Equal(t, 1+len(ids), pools, "each written once")
	})

	// The run after the one an operation ended fails as a whole: the
	// others get that failure, and the operation that ended its
	// transaction keeps its own error, as the package doc says (it was
	// replaced by the next run's).
	t.Run("EndersErrorStandsWhenTheRerunFails", func(t *testing.T) {
		t.Parallel()
		for _, how := range []string{"panics", "cannot begin"} {
			b, es := setupEndingStore(t)
			h := b.st
			cannot := errors.New("cannot begin")
			var runs atomic.Int32
			// ender, which on its second run (the batch's run with
			// savepoints) makes the Write after it fail as a whole.
			endsThenFails := func(ctx context.Context, tx *groupcommit.Tx) error {
				if runs.Add(1) == 2 {
					if how == "panics" {
						es.panicAt.Store(es.writes.Load() + 1)
					} else {
						h.failWrites(cannot)
					}
				}
				return ender(ctx, tx)
			}
			var wg sync.WaitGroup
			release := b.hold(t, &wg)
			var errA, errE, errB error
			b.queue(t, &wg, func() { errA = b.c.Write(b.ctx, insert(uuid.New())) })
			b.queue(t, &wg, func() { errE = b.c.Write(b.ctx, endsThenFails) })
			b.queue(t, &wg, func() { errB = b.c.Write(b.ctx, insert(uuid.New())) })
			release()
			wg.Wait()
			h.failWrites(nil)
			require.Equal(t, int32(2), runs.Load(), "%s: the ender ran twice, not in the rerun", how)
			require.ErrorIs(t, errE, store.ErrTxEnded, how)
			require.ErrorContains(t, errE, "disk is full", how)
			for _, err := range []error{errA, errB} {
				if how == "panics" {
					require.ErrorContains(t, err, "panicked", how)
				} else {
					require.ErrorIs(t, err, cannot, how)
				}
			}
			pools, err := countPools(b)
			require.NoError(t, err)
			require.Equal(t, 1, pools, "%s: the lead's alone", how)
		}
	})

	// The store panics in one operation's transaction of its own: that
	// operation gets the panic, the others their own results (the one
	// before it committed).
	t.Run("PanicWhenAlone", func(t *testing.T) {
		t.Parallel()
		b, es := setupEndingStore(t)
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
		errs := b.queueInserts(t, &wg, ids)
		writes := es.writes.Load()
		es.endAt.Store(writes + 2)   // the lead's, then the batch's
		es.panicAt.Store(writes + 4) // the second operation's alone
		release()
		wg.Wait()
		require.NoError(t, errs[0])
		require.True(t, b.exists(t, ids[0]), "written")
		require.ErrorContains(t, errs[1], "panicked")
		require.False(t, b.exists(t, ids[1]))
		require.NoError(t, errs[2])
		require.True(t, b.exists(t, ids[2]), "written")
	})

	// The savepoint run (an operation failed once, then not) ends at its
	// commit: again no operation's failure, so each runs alone.
	t.Run("SavepointRunEndedAtCommit", func(t *testing.T) {
		t.Parallel()
		b, es := setupEndingStore(t)
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New()}
		errs := make([]error, len(ids))
		var once atomic.Bool
		b.queue(t, &wg, func() { errs[0] = b.c.Write(b.ctx, insert(ids[0])) })
		b.queue(t, &wg, func() {
			errs[1] = b.c.Write(b.ctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				if once.CompareAndSwap(false, true) {
					return errors.New("a failure of the first run only")
				}
				return insert(ids[1])(ctx, tx)
			})
		})
		writes := es.writes.Load()
		es.endAt.Store(writes + 3) // the lead's, the batch's first run, its savepoint run
		release()
		wg.Wait()
		for i, id := range ids {
			require.NoError(t, errs[i], "operation %d", i)
			require.True(t, b.exists(t, id), "operation %d", i)
		}
		require.Equal(t, int32(1+2+len(ids)), es.writes.Load()-writes, "the lead, two runs of the batch, each alone")
	})

	// An operation makes its transaction too big to commit (SQLite: the
	// log cannot grow), with no statement failed: run alone, it fails with
	// the commit's error, and the others of its batch, each alone too,
	// succeed. Combined operations run alone as well.
	t.Run("TooBigToCommit", func(t *testing.T) {
		t.Parallel()
		b, es := setupEndingStore(t)
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New()}
		errs := make([]error, len(ids))
		var combined []string
		cb := &groupcommit.Combiner{Key: "k", Run: func(ctx context.Context, tx *groupcommit.Tx, reqs []any) error {
			for _, r := range reqs {
				combined = append(combined, r.(string))
			}
			return nil
		}}
		var errBig, errC1, errC2 error
		b.queue(t, &wg, func() { errs[0] = b.c.Write(b.ctx, insert(ids[0])) })
		b.queue(t, &wg, func() { errC1 = b.c.WriteCombined(b.ctx, cb, "c1") })
		b.queue(t, &wg, func() {
			errBig = b.c.Write(b.ctx, func(ctx context.Context, tx *groupcommit.Tx) error {
				es.big.Store(true)
				return insert(uuid.New())(ctx, tx)
			})
		})
		b.queue(t, &wg, func() { errC2 = b.c.WriteCombined(b.ctx, cb, "c2") })
		b.queue(t, &wg, func() { errs[1] = b.c.Write(b.ctx, insert(ids[1])) })
		reruns := b.c.Stats().Reruns
		release()
		wg.Wait()
		require.ErrorIs(t, errBig, store.ErrTxEnded)
		require.ErrorContains(t, errBig, "commit")
		require.NoError(t, errC1)
		require.NoError(t, errC2)
		for i, id := range ids {
			require.NoError(t, errs[i], "operation %d", i)
			require.True(t, b.exists(t, id), "operation %d", i)
		}
		pools, err := countPools(b)
		require.NoError(t, err)
		require.Equal(t, 1+len(ids), pools, "the lead's and the two, once each; nothing of the big one")
		// Combined in the batch's run, then one call each, in arrival order.
		require.Equal(t, []string{"c1", "c2", "c1", "c2"}, combined)
		require.Equal(t, uint64(5), b.c.Stats().Reruns-reruns, "each of the five alone")
	})

	// The savepoint run ends at its commit after an operation failed as
	// usual: that one keeps its own error, and the others, run again,
	// succeed (the ended run wrote nothing: each is written once).
	t.Run("EndedAtCommitAfterAFailure", func(t *testing.T) {
		t.Parallel()
		b, es := setupEndingStore(t)
		var wg sync.WaitGroup
		release := b.hold(t, &wg)
		ids := []uuid.UUID{uuid.New(), uuid.New()}
		errs := make([]error, len(ids))
		refused := errors.New("refused")
		var errF error
		b.queue(t, &wg, func() { errs[0] = b.c.Write(b.ctx, insert(ids[0])) })
		b.queue(t, &wg, func() {
			errF = b.c.Write(b.ctx, func(context.Context, *groupcommit.Tx) error { return refused })
		})
		b.queue(t, &wg, func() { errs[1] = b.c.Write(b.ctx, insert(ids[1])) })
		es.endAt.Store(es.writes.Load() + 3) // the lead's, the batch's first run, its savepoint run
		release()
		wg.Wait()
		require.ErrorIs(t, errF, refused)
		for i, id := range ids {
			require.NoError(t, errs[i], "operation %d", i)
			require.True(t, b.exists(t, id), "operation %d", i)
		}
		pools, err := countPools(b)
		require.NoError(t, err)
		require.Equal(t, 1+len(ids), pools)
	})
}

// countPools returns how many pools the store of b holds.
func countPools(b *bundle) (int, error) {
	var n int
	err := b.st.Read(b.ctx, func(tx store.Tx) error {
		var err error
		_, n, err = tx.Pools(b.ctx, pool.PoolQuery{Page: 1, PerPage: 1})
		return err
	})
	return n, err
}
