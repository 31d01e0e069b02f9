package queue

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
)

// DefaultMaxBatch is how many callers' operations one group-commit
// transaction takes at most, unless Options.MaxBatch says otherwise.
const DefaultMaxBatch = 256

// committer implements group commit: the write operations of concurrent
// callers are gathered and run in one write transaction, each in a
// savepoint of its own, so they share one commit (and, at Full durability,
// one fsync) while each still succeeds or fails alone.
//
// It needs no goroutine of its own. The first caller to find the committer
// idle leads: it takes every operation queued so far (up to maxBatch, its
// own first), runs them in one transaction, hands each its result, and
// passes the lead to the oldest operation still queued, if any. So a caller
// waits at most for the transaction under way plus its own.
//
// Operations run in arrival order, each seeing the writes of those before
// it, except that operations of one kind that can be combined (the dequeues
// of a pool, the settlements) run together, as one call with one read and
// one write, at the place of the first of them. Every operation of a batch
// was waiting at the same time, so any order among them is one in which
// the calls could have run one at a time: the result is always that of
// some one-at-a-time run.
type committer struct {
	st       store.Store
	maxBatch int
	now      func() time.Time // the engine's clock, read once per transaction

	mu    sync.Mutex
	queue []*op
	busy  bool // a leader is running a batch

	// Counters for Engine.Stats.
	transactions, operations, reruns atomic.Uint64
}

// op is one caller's write operation.
type op struct {
	ctx   context.Context
	fn    func(context.Context, *wtx) error
	err   error
	lead  bool          // set before ready is closed: run the next batch
	ready chan struct{} // closed once: done, or your turn to lead

	// combine, when set, can run this operation together with the other
	// operations of its batch that have the same key, in one call: the
	// dequeues of one pool, the settlements. The call must have the effect
	// of running their fns one after the other in the order given.
	combine *combiner
	req     any  // the operation's request and results, for combine.run
	ran     bool // run already, as part of a combined call (in run only)
}

// combiner runs several operations of one kind as one.
type combiner struct {
	key any // comparable: operations with equal keys combine
	run func(ctx context.Context, tx *wtx, reqs []any) error
}

// write runs fn in a write transaction shared with other callers. fn gets
// a context that is not cancelled: once an operation has started it
// completes (cancelling one statement could abort the whole shared
// transaction), and its result is returned even if ctx ended meanwhile. An
// operation whose ctx ended before it started is not run.
func (c *committer) write(ctx context.Context, fn func(context.Context, *wtx) error) error {
	return c.submit(&op{ctx: ctx, fn: fn})
}

// writeCombined is write for an operation that may run combined with
// others of the same key (see op.combine): alone it runs as
// cb.run(ctx, tx, []any{req}).
func (c *committer) writeCombined(ctx context.Context, cb *combiner, req any) error {
	return c.submit(&op{
		ctx:     ctx,
		fn:      func(ctx context.Context, tx *wtx) error { return cb.run(ctx, tx, []any{req}) },
		combine: cb,
		req:     req,
	})
}

func (c *committer) submit(o *op) error {
	o.ready = make(chan struct{})
	c.mu.Lock()
	c.queue = append(c.queue, o)
	if c.busy {
		c.mu.Unlock()
		<-o.ready
		if !o.lead {
			return o.err
		}
	} else {
		c.busy = true
		c.mu.Unlock()
	}
	c.lead(o)
	return o.err
}

// lead runs one batch, which starts with self, and passes the lead on.
func (c *committer) lead(self *op) {
	c.gather()
	c.mu.Lock()
	n := min(len(c.queue), c.maxBatch)
	batch := make([]*op, n)
	copy(batch, c.queue)
	c.queue = c.queue[n:]
	c.mu.Unlock()

	c.run(batch)

	c.mu.Lock()
	if len(c.queue) > 0 {
		next := c.queue[0]
		next.lead = true
		close(next.ready)
	} else {
		c.busy = false
		c.queue = nil
	}
	c.mu.Unlock()
	for _, o := range batch {
		if o != self {
			close(o.ready)
		}
	}
}

// gather yields the processor while operations keep arriving, at most
// gatherRounds times, before the leader takes its batch: callers that the
// previous batch just released are about to submit their next operations,
// and a yield lets them join this transaction instead of waiting for the
// next one. A lone caller pays one yield with nothing to run, well under a
// microsecond.
func (c *committer) gather() {
	c.mu.Lock()
	n := len(c.queue)
	c.mu.Unlock()
	for range gatherRounds {
		if n >= c.maxBatch {
			return
		}
		runtime.Gosched()
		c.mu.Lock()
		m := len(c.queue)
		c.mu.Unlock()
		if m == n {
			return
		}
		n = m
	}
}

// gatherRounds bounds the yields of gather.
const gatherRounds = 4

// run executes a batch in one transaction. A lone operation runs as the
// whole transaction. Several run one after the other (combinable ones
// combined) with no savepoint, the common case where all succeed costing no
// more statements than the operations themselves; if one fails, that
// transaction is rolled back and the batch runs again with each operation
// alone in a savepoint, so that the failure undoes only its own writes. (Operations are re-runnable: each sets
// its results afresh when it runs.) If a transaction fails as a whole,
// every operation that had succeeded in it gets the error.
func (c *committer) run(batch []*op) {
	ctx := context.WithoutCancel(batch[0].ctx)
	c.transactions.Add(1)
	c.operations.Add(uint64(len(batch)))
	if len(batch) == 1 {
		o := batch[0]
		if o.err = o.ctx.Err(); o.err == nil {
			o.err = c.st.Write(ctx, func(tx store.Tx) error { return call(ctx, o.fn, c.begin(tx)) })
		}
		return
	}
	err := c.st.Write(ctx, func(tx store.Tx) error {
		w := c.begin(tx)
		for _, o := range batch {
			o.err = o.ctx.Err()
		}
		for i, o := range batch {
			if o.err != nil || o.ran {
				continue
			}
			if o.combine == nil {
				if o.err = call(ctx, o.fn, w); o.err != nil {
					return errRerun
				}
				continue
			}
			// o and the later operations of its kind run here, as one.
			group := []*op{o}
			for _, later := range batch[i+1:] {
				if later.err == nil && !later.ran && later.combine != nil && later.combine.key == o.combine.key {
					group = append(group, later)
				}
			}
			reqs := make([]any, len(group))
			for k, g := range group {
				g.ran = true
				reqs[k] = g.req
			}
			if err := callCombined(ctx, o.combine, w, reqs); err != nil {
				o.err = err
				return errRerun
			}
		}
		return nil
	})
	for _, o := range batch {
		o.ran = false
	}
	if errors.Is(err, errRerun) {
		c.reruns.Add(1)
		err = c.st.Write(ctx, func(tx store.Tx) error {
			now := c.now()
			for _, o := range batch {
				if o.err = o.ctx.Err(); o.err != nil {
					continue
				}
				// A wtx of its own: what the operation caches goes with
				// its savepoint if that is undone.
				o.err = tx.Savepoint(ctx, func(tx store.Tx) error { return call(ctx, o.fn, newWtx(tx, now)) })
			}
			return nil
		})
	}
	if err != nil {
		for _, o := range batch {
			if o.err == nil {
				o.err = err
			}
		}
	}
}

func (c *committer) begin(tx store.Tx) *wtx { return newWtx(tx, c.now()) }

// wtx is a write transaction as operations see it: the store's, with the
// time of the transaction and what it has learnt so far. Every operation of
// a batch runs at the same instant, read when the batch starts, so after
// all its callers called: no settlement called after its lease's deadline
// can be judged before it.
type wtx struct {
	store.Tx
	now time.Time
	// ready holds the pools whose expired leases have been applied at now
	// in this transaction, with their rows as of then (kept current by the
	// operations that change a pool). At one instant a lease expires once,
	// so later operations on the pool skip the pool read and the reclaim.
	ready map[uuid.UUID]pool.Pool
}

func newWtx(tx store.Tx, now time.Time) *wtx { return &wtx{Tx: tx, now: now} }

// errRerun rolls back a batch run without savepoints in which an operation
// failed, so that it runs again with them.
var errRerun = errors.New("queue: rerun the batch with savepoints")

// callCombined is call for a combined run.
func callCombined(ctx context.Context, cb *combiner, tx *wtx, reqs []any) error {
	return call(ctx, func(ctx context.Context, tx *wtx) error { return cb.run(ctx, tx, reqs) }, tx)
}

// call runs fn, turning a panic into an error so that one operation cannot
// take down the leader (and with it every caller waiting on the batch).
func call(ctx context.Context, fn func(context.Context, *wtx) error, tx *wtx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("queue: operation panicked: %v", v)
		}
	}()
	return fn(ctx, tx)
}
