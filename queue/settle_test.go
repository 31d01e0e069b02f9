package queue_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

func TestEngine_Settle(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{RetryDelay: time.Hour})
	p, err := eng.CreatePool(ctx, pool.CreateParams{
		Name: "settle", Description: "batch settle", Type: pool.Parallel, MaxRetries: pqPtr(1),
	})
	require.NoError(t, err)
	batch := make([]pool.NewItem, 5)
	for i := range batch {
		batch[i] = pool.NewItem{ContactUUID: uuid.New()}
	}
	_, err = eng.Add(ctx, p.UUID, batch...)
	require.NoError(t, err)
	ls, err := eng.DequeueN(ctx, p.UUID, 5)
	require.NoError(t, err)
	require.Len(t, ls, 5)
	stale := *ls[4]
	require.NoError(t, eng.Complete(ctx, ls[4], "settled alone"))

	later := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	results, err := eng.Settle(ctx,
		queue.Outcome{Lease: ls[0], Note: "answered"},
		queue.Outcome{Lease: ls[1], Failure: &queue.Failure{Note: "busy"}},
		queue.Outcome{Lease: ls[2], Failure: &queue.Failure{RetryAt: later, Note: "call back"}},
		queue.Outcome{Lease: ls[3], Failure: &queue.Failure{Final: true, Note: "wrong number"}},
		queue.Outcome{Lease: &stale, Note: "again"},
		queue.Outcome{Lease: ls[0], Note: "twice"},
	)
	require.NoError(t, err)
	require.Len(t, results, 6)
	for i, want := range []error{nil, nil, nil, nil, queue.ErrLeaseLost, queue.ErrLeaseLost} {
		if want == nil {
			require.NoError(t, results[i], "outcome %d", i)
		} else {
			require.ErrorIs(t, results[i], want, "outcome %d", i)
		}
	}
	get := func(i int) pool.Item {
		it, err := eng.Item(ctx, p.UUID, batch[i].ContactUUID)
		require.NoError(t, err)
		return it
	}
	require.Equal(t, pool.StatusCompleted, get(0).Status)
	require.Equal(t, "answered", get(0).Notes)
	require.Equal(t, pool.StatusRetrying, get(1).Status)
	require.Equal(t, pool.StatusScheduled, get(2).Status)
	require.True(t, later.Equal(*get(2).NextRetryAt))
	require.Equal(t, pool.StatusFailed, get(3).Status)
	require.Equal(t, "settled alone", get(4).Notes, "a stale outcome changes nothing")

	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, map[pool.Status]int{
		pool.StatusPending: 0, pool.StatusProcessing: 0, pool.StatusInCall: 0,
		pool.StatusRetrying: 1, pool.StatusScheduled: 1,
		pool.StatusCompleted: 2, pool.StatusFailed: 1, pool.StatusSkipped: 0,
	}, d.StatusCounts)
}

func TestEngine_SettleRejectsBadInput(t *testing.T) {
	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "settle", Description: "bad input", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	_, err = eng.Settle(ctx)
	require.ErrorIs(t, err, validate.ErrInvalid)

	results, err := eng.Settle(ctx, queue.Outcome{Lease: l}, queue.Outcome{Lease: nil}, queue.Outcome{Lease: &queue.Lease{PoolUUID: p.UUID}})
	require.ErrorIs(t, err, validate.ErrInvalid)
	require.Nil(t, results)
	var fe validate.Errors
	require.ErrorAs(t, err, &fe)
	var fields []string
	for _, f := range fe {
		fields = append(fields, f.Field)
	}
	require.Equal(t, []string{"outcomes[1].lease", "outcomes[2].contact_uuid", "outcomes[2].item_id", "outcomes[2].token"}, fields)

	it, err := eng.Item(ctx, p.UUID, l.ContactUUID)
	require.NoError(t, err)
	require.Equal(t, pool.StatusProcessing, it.Status, "a rejected Settle settles nothing, not even its good outcomes")
}

// TestEngine_GroupCommitConcurrent drives one Parallel pool with many
// goroutines that never sleep, so their operations pile up and share
// transactions: single Adds, Dequeue / TryDequeue / DequeueN, and every kind
// of settlement including batched Settle. The invariants are those of the
// one-at-a-time tests (concurrency_test.go): the cap, one holder per item,
// the ceiling, each item completed or failed exactly once, counts that
// agree. The engine's Stats must show that batches were formed.
func TestEngine_GroupCommitConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{
		LeaseTimeout: time.Minute, RetryDelay: time.Millisecond, PollInterval: 10 * time.Millisecond,
	})
	const total, workers, adders = 600, 24, 8
	p, err := eng.CreatePool(ctx, pool.CreateParams{
		Name: "group commit", Description: "many writers",
		Type: pool.Parallel, MaxParallelItems: pqPtr(5), MaxRetries: pqPtr(2),
	})
	require.NoError(t, err)

	runCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	h := newCCHarness(t, cancel, p.Cap(), p.Ceiling(), total)
	var wg sync.WaitGroup
	for a := range adders {
		wg.Go(func() {
			for i := a; i < total; i += adders {
				res, err := eng.Add(runCtx, p.UUID, pool.NewItem{ContactUUID: uuid.New(), Priority: i % 4})
				if err != nil || res.ContactsAdded != 1 {
					h.fail("adder %d: add: %v (%+v)", a, err, res)
					return
				}
			}
		})
	}
	for w := range workers {
		wg.Go(func() { batchWorker(runCtx, h, w, eng, p.UUID) })
	}
	wg.Wait()
	require.NoError(t, h.failedErr)
	require.Equal(t, total, int(h.terminal.Load()), "the run timed out before every item was settled")
	h.verify(ctx, eng, p.UUID)
	s := eng.Stats()
	t.Logf("group commit: %d operations in %d transactions (%.1f a transaction), %d reruns",
		s.Operations, s.Transactions, float64(s.Operations)/float64(s.Transactions), s.Reruns)
	require.Greater(t, s.Operations, s.Transactions+s.Transactions/4, "operations did not share transactions")
	require.Positive(t, h.atCapacity.Load(), "no dequeue was ever refused with ErrAtCapacity: the cap was not tested")
}

// batchWorker is ccHarness.worker without the sleeps, settling half of its
// claims one by one and half with one Settle.
func batchWorker(ctx context.Context, h *ccHarness, id int, eng *queue.Engine, poolID uuid.UUID) {
	rng := rand.New(rand.NewPCG(uint64(id), uint64(time.Now().UnixNano())))
	for ctx.Err() == nil {
		var (
			leases []*queue.Lease
			err    error
		)
		switch rng.IntN(3) {
		case 0:
			var l *queue.Lease
			if l, err = eng.Dequeue(ctx, poolID); err == nil {
				leases = []*queue.Lease{l}
			}
		case 1:
			leases, err = eng.DequeueN(ctx, poolID, 1+rng.IntN(4))
		default:
			var l *queue.Lease
			if l, err = eng.TryDequeue(ctx, poolID); err == nil {
				leases = []*queue.Lease{l}
			}
		}
		switch {
		case ctx.Err() != nil:
			for _, l := range leases {
				_ = eng.Release(context.Background(), l)
			}
			return
		case isOneOf(err, queue.ErrEmpty, queue.ErrAtCapacity):
			if err == queue.ErrAtCapacity {
				h.atCapacity.Add(1)
			}
			time.Sleep(time.Duration(200+rng.IntN(800)) * time.Microsecond)
			continue
		case err != nil:
			h.fail("worker %d: dequeue: %v", id, err)
			return
		}
		for _, l := range leases {
			h.acquire(id, l)
		}
		outs := make([]queue.Outcome, len(leases))
		for i, l := range leases {
			switch r := rng.IntN(10); {
			case r < 6:
				outs[i] = queue.Outcome{Lease: l, Note: "answered"}
			default:
				outs[i] = queue.Outcome{Lease: l, Failure: &queue.Failure{Final: r == 9, Note: "busy"}}
			}
		}
		for _, l := range leases {
			h.letGo(l)
		}
		if rng.IntN(2) == 0 {
			results, err := eng.Settle(context.Background(), outs...)
			if err != nil {
				h.fail("worker %d: settle: %v", id, err)
				return
			}
			for i, err := range results {
				if err != nil {
					h.fail("worker %d: settle %s: %v", id, outs[i].Lease.ContactUUID, err)
					return
				}
			}
		} else {
			for _, o := range outs {
				var err error
				if o.Failure == nil {
					err = eng.Complete(context.Background(), o.Lease, o.Note)
				} else {
					err = eng.Fail(context.Background(), o.Lease, *o.Failure)
				}
				if err != nil {
					h.fail("worker %d: settle %s: %v", id, o.Lease.ContactUUID, err)
					return
				}
			}
		}
		for _, o := range outs {
			if o.Failure == nil {
				h.settled(o.Lease, true)
			} else if o.Failure.Final || o.Lease.Attempt >= h.ceiling {
				h.settled(o.Lease, false)
			}
		}
	}
}
