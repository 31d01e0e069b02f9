// Package groupcommit runs the write operations of concurrent callers in
// shared transactions, so that they share one commit (and, at Full
// durability, one fsync) while each still succeeds or fails alone.
//
// Callers hand their operations to a [Committer] and wait for their
// results. One goroutine of the Committer, started when the first operation
// arrives and gone once none is left, takes the waiting operations (up to
// MaxBatch) and runs them in one write transaction, in arrival order. It is
// the only goroutine that runs operations, so the order of the write path is
// the order of its loop, and no caller ever runs another caller's
// operation.
//
// What the Committer guarantees, and its tests check:
//
//   - A caller whose context ends while its operation waits returns the
//     context's error at once, and its operation never runs. Once an
//     operation has started it runs to the end (cancelling one statement
//     could abort the shared transaction), and its caller gets its result,
//     as long as another caller of the transaction still waits for it.
//   - A transaction lasts only while a caller of its batch waits for it.
//     A caller has gone once its context has ended: it has left, if its
//     operation had not started, or waits for the result of one that
//     has. Once every caller of a batch has gone, its Write's context
//     ends: a transaction waiting to begin (for the store's turn, a
//     connection, a lock another process holds on a SQLite file) begins
//     none of its operations, and a store may end one under way (a wait
//     for another session's lock inside it), nothing of it written, each
//     caller getting its own context's error. So callers that have gone hold
//     up neither the callers that come next nor Close. The one
//     exception: the Write of an operation that runs alone carries its
//     caller's deadline (store.WithWaitBound), at which the store ends a
//     wait for another session's lock with a clearer error, and the
//     Write's context ends only when the caller's is cancelled.
//   - Every caller gets an answer: an operation's panic is its own error;
//     a panic out of the store itself fails every operation of that
//     transaction, and the next transaction runs as usual.
//   - A transaction's operations run one after the other, each seeing the
//     writes of those before it, at one instant ([Tx.Now]) read when the
//     transaction starts. If one fails, the transaction is rolled back and
//     run again with each operation in a savepoint of its own, so that the
//     failure undoes only its own writes. An operation that failed because
//     it waited out the store's lock timeout (store.ErrLockTimeout: another
//     node holds its pool) keeps that error and is not run again: it would
//     wait as long again, and hold up every other operation of the batch.
//     When the transaction fails as a whole, every other operation gets
//     its error, never one it met in a run that was rolled back. But when
//     an operation's failure ended the whole transaction
//     (store.ErrTxEnded: SQLite after a full disk, say), that operation
//     keeps its error and the batch runs once more without it, so that
//     the others, which may well go through, still succeed or fail alone:
//     a batch runs at most once more per operation that fails in it.
//     A transaction that ended at its commit with every operation through
//     (SQLite whose log could not grow) runs again with each operation in
//     a transaction of its own, so that the one too big fails alone.
//   - Operations of one kind may run combined ([Combiner]): the dequeues
//     of a pool, the settlements of leases. Every operation of a batch was
//     waiting at the same time, so any order among them is one in which
//     the calls could have run one at a time.
//   - The operations of a Late combiner run after the batch's others, so
//     that what they decide at the clock (a lease's end, a calling window)
//     is not followed, before the commit, by another caller's long write
//     or wait.
package groupcommit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/poolq/poolq/store"
)

// ErrClosed is returned for operations submitted after [Committer.Close].
var ErrClosed = errors.New("groupcommit: closed")

// Tx is a write transaction as operations see it: the store's, and the
// instant the transaction runs at, read once when it starts, after every
// one of its callers called (so no settlement made after a lease's deadline
// can be judged before it).
type Tx struct {
	store.Tx
	Now time.Time
	// Flags are bits the operations set for their callers to read after
	// the commit (what to announce). A Tx lives for one run: flags set in
	// a run that rolls back go with it.
	Flags uint64
}

// Func is one caller's operation. It gets a context that is never
// cancelled (the caller's values, without its deadline), and must return
// an error rather than go on when a Tx method fails. It may run more than
// once (a batch run again with savepoints): it must set its results afresh
// each time.
type Func func(ctx context.Context, tx *Tx) error

// Combiner runs several operations of one kind as one call: Run gets the
// requests of every waiting operation with an equal Key, in arrival order,
// and must have the effect of running them one after the other. Key must
// be comparable. A combined call that waits out the store's lock timeout
// fails all its operations, which are not run again (see the package
// doc): operations of one Key should take the same lock (one pool's).
type Combiner struct {
	Key any
	Run func(ctx context.Context, tx *Tx, reqs []any) error
	// Late runs the operations after the batch's operations that are not
	// Late (each group in arrival order).
	Late bool
}

// DefaultMaxBatch is how many operations one transaction takes at most
// unless Options.MaxBatch says otherwise.
const DefaultMaxBatch = 256

// Options configures a [Committer].
type Options struct {
	// MaxBatch is how many operations one transaction takes at most; 1
	// runs one transaction per operation. Defaults to DefaultMaxBatch.
	MaxBatch int
	// Now is the clock, read once per transaction. Defaults to time.Now.
	Now func() time.Time
}

// Stats are a Committer's counters.
type Stats struct {
	Transactions uint64 // write transactions run (a batch run again counts once)
	Operations   uint64 // operations run in them
	Reruns       uint64 // runs of a batch again: with savepoints, then without each operation that ended one; each operation alone after a failed commit
}

// Committer gathers the operations of concurrent callers into shared write
// transactions on a store. It is safe for concurrent use.
//
// Invariant: running is true exactly while the goroutine of loop is
// running; every operation in queue is either taken by that goroutine
// before it stops, or abandoned by its caller. So an operation never waits
// with nobody to run it; and a transaction never waits to begin with
// nobody to run it for (see write.left).
type Committer struct {
	st       store.Store
	maxBatch int
	now      func() time.Time

	mu      sync.Mutex
	queue   []*op
	running bool
	closed  bool
	loops   sync.WaitGroup

	transactions, operations, reruns atomic.Uint64
}

// New returns a Committer over st.
func New(st store.Store, opts Options) *Committer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Committer{st: st, maxBatch: opts.MaxBatch, now: opts.Now}
}

// The states of an op. Only the Committer moves one from waiting to
// started, only its caller from waiting to abandoned; the first to move
// it decides.
const (
	waiting int32 = iota
	started
	abandoned
)

// op is one caller's operation.
type op struct {
	ctx     context.Context
	fn      Func
	combine *Combiner // nil: runs alone
	req     any       // the request passed to combine.Run

	state atomic.Int32
	write atomic.Pointer[write] // the transaction of its batch, once the loop has taken it
	err   error                 // the result, set before done is closed
	done  chan struct{}         // closed once the op is over (or was never run)
	ran   bool                  // ran in a combined call in this run (loop goroutine only)
	// kept: its error stands whatever becomes of its transaction, and it
	// does not run again (loop goroutine only; see runBatch).
	kept bool
}

// late orders o in its batch: 1 for the operations of a Late combiner,
// which run after the others.
func (o *op) late() int {
	if o.combine != nil && o.combine.Late {
		return 1
	}
	return 0
}

// start moves o from waiting to started and reports whether o is started:
// false when its caller abandoned it.
func (o *op) start() bool {
	return o.state.CompareAndSwap(waiting, started) || o.state.Load() == started
}

// Write runs fn in a write transaction shared with other callers and
// returns its result. It returns ctx's error, without running fn, when ctx
// ends before fn starts.
func (c *Committer) Write(ctx context.Context, fn Func) error {
	return c.submit(&op{ctx: ctx, fn: fn})
}

// WriteCombined is Write for an operation that may run combined with the
// other waiting operations of cb.Key: alone it runs as cb.Run(ctx, tx,
// []any{req}).
func (c *Committer) WriteCombined(ctx context.Context, cb *Combiner, req any) error {
	return c.submit(&op{
		ctx:     ctx,
		fn:      func(ctx context.Context, tx *Tx) error { return cb.Run(ctx, tx, []any{req}) },
		combine: cb,
		req:     req,
	})
}

func (c *Committer) submit(o *op) error {
	if err := o.ctx.Err(); err != nil {
		return err
	}
	o.done = make(chan struct{})
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.queue = append(c.queue, o)
	if !c.running {
		c.running = true
		c.loops.Add(1)
		go c.loop()
	}
	c.mu.Unlock()

	select {
	case <-o.done:
		return o.err
	case <-o.ctx.Done():
	}
	if o.state.CompareAndSwap(waiting, abandoned) {
		if w := o.write.Load(); w != nil {
			w.gone()
		}
		return o.ctx.Err()
	}
	// It has started: its result stands, and is the Write's error if the
	// store ended the Write because every caller has gone.
	o.write.Load().gone()
	<-o.done
	return o.err
}

// Close makes every later Write return ErrClosed, and waits until the
// operations submitted before it have run, or their callers have left: a
// transaction still waiting to begin whose callers have all left ends at
// once (see the package doc).
func (c *Committer) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.loops.Wait()
}

// Queued returns how many operations wait for a transaction (not counting
// those of the transaction under way).
func (c *Committer) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// Stats returns the counters.
func (c *Committer) Stats() Stats {
	return Stats{
		Transactions: c.transactions.Load(),
		Operations:   c.operations.Load(),
		Reruns:       c.reruns.Load(),
	}
}

// loop runs batches until the queue is empty.
func (c *Committer) loop() {
	defer c.loops.Done()
	for {
		batch := c.take()
		if batch == nil {
			return
		}
		c.run(batch)
	}
}

// take returns the next batch, or nil, and then running is false, when
// there is none. It first yields the processor while operations keep
// arriving (at most gatherRounds times): callers that the previous batch
// just released are about to submit their next operations, and a yield
// lets them join this transaction instead of waiting for the next one.
func (c *Committer) take() []*op {
	n := c.Queued()
	for range gatherRounds {
		if n >= c.maxBatch {
			break
		}
		runtime.Gosched()
		m := c.Queued()
		if m == n {
			break
		}
		n = m
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.running = false
		c.queue = nil
		return nil
	}
	n = min(len(c.queue), c.maxBatch)
	batch := make([]*op, n)
	copy(batch, c.queue)
	clear(c.queue[:n]) // the array outlives the batch: let the ops go
	c.queue = c.queue[n:]
	slices.SortStableFunc(batch, func(a, b *op) int { return cmp.Compare(a.late(), b.late()) })
	return batch
}

// gatherRounds bounds the yields of take.
const gatherRounds = 4

// write is the transaction of one batch, as its callers see it.
type write struct {
	batch []*op
	end   context.CancelFunc // ends the context of the batch's Write
	// bound: the batch's one live operation runs alone, its caller's
	// deadline the Write's wait bound (see runAlone).
	bound atomic.Bool
}

// gone is called by the caller of an operation of w's batch once its
// context has ended (after abandoning the operation, if it had not
// started). Once every caller has gone, the Write's context ends (see the
// package doc): each caller calls gone after its own context ended, so the
// last to go finds every other one gone, or run does, for the callers that
// left before it counted the live ones (see run).
func (w *write) gone() {
	for _, o := range w.batch {
		err := o.ctx.Err()
		if err == nil || (w.bound.Load() && o.state.Load() == started && errors.Is(err, context.DeadlineExceeded)) {
			// Still waiting; or past the deadline that bounds its
			// waits (see runAlone), its operation runs to the end.
			return
		}
	}
	w.end()
}

// run executes a batch in one transaction and releases every caller in it,
// whatever happens.
func (c *Committer) run(batch []*op) {
	defer func() {
		if v := recover(); v != nil {
			// Out of the store itself (an operation's own panic is its
			// error, see call): the transaction did not commit.
			err := storePanic(v)
			for _, o := range batch {
				if !o.kept {
					o.err = err
				}
			}
		}
		// Counted before any caller is released, so that a caller that
		// reads Stats after its call returns finds its operation in it.
		n := 0
		for _, o := range batch {
			if o.state.Load() == started {
				n++
			}
		}
		c.operations.Add(uint64(n))
		for _, o := range batch {
			close(o.done)
		}
	}()

	// The operations learn their transaction before the live ones are
	// counted: a caller that leaves after its operation was counted finds
	// the write, and the last one to go ends its context (see gone).
	ctx, end := context.WithCancel(context.Background())
	defer end()
	w := &write{batch: batch, end: end}
	for _, o := range batch {
		o.write.Store(w)
	}
	live := 0
	for _, o := range batch {
		if o.state.Load() == waiting {
			live++
		}
	}
	if live == 0 {
		return // every caller left: nothing to run
	}
	c.transactions.Add(1)
	var err error
	if live == 1 {
		err = c.runAlone(ctx, w, batch)
	} else {
		err = c.runBatch(ctx, batch)
	}
	if err != nil {
		// The transaction as a whole failed: nothing of it stands, and its
		// error replaces what each operation returned in a run rolled back
		// (the store's internal errors among them, such as a restart to
		// take locks in order). Only the errors runBatch keeps stand: a
		// wait out of the store's lock timeout (also when alone), and the
		// failure that ended a transaction of the batch. A
		// Write ended because its callers had all gone (see gone) failed
		// for each caller by its own context: a deadline reads as one.
		ended := ctx.Err() != nil && errors.Is(err, context.Canceled)
		for _, o := range batch {
			switch {
			case o.kept, errors.Is(o.err, store.ErrLockTimeout):
			case ended && o.ctx.Err() != nil:
				o.err = fmt.Errorf("%w (nothing written: %v)", o.ctx.Err(), err)
			default:
				o.err = err
			}
		}
	}
}

// runAlone runs the one operation of batch whose caller waits as the whole
// transaction: no savepoint, and its failure rolls back only itself.
//
// The store's wait for another session's lock inside the transaction (a
// PostgreSQL node's, on a pool) ends with the caller's deadline, if its
// context has one (store.WithWaitBound): the operation is the
// transaction's only one, so ending it fails no other caller, and its
// caller, who will not wait for the lock, learns that nothing was written.
// The transaction's error is then the operation's (it says which ended
// the wait). Past that deadline the Write's context lasts (see
// write.gone): a cancellation of the caller's context ends it.
func (c *Committer) runAlone(ctx context.Context, w *write, batch []*op) error {
	for _, o := range batch {
		if o.state.Load() == waiting {
			if d, ok := o.ctx.Deadline(); ok {
				ctx = store.WithWaitBound(ctx, d)
				w.bound.Store(true)
			}
			break
		}
	}
	var ran *op
	err := c.st.Write(ctx, func(stx store.Tx) error {
		tx := &Tx{Tx: stx, Now: c.now()}
		for _, o := range batch {
			if o.start() {
				ran = o
				o.err = call(o, o.fn, tx)
				return o.err
			}
		}
		return nil
	})
	if err != nil && ran != nil {
		ran.err = err
	}
	return err
}

// runBatch runs batch in one transaction, first without savepoints (see
// runAll), and again with one per operation if an operation failed.
func (c *Committer) runBatch(ctx context.Context, batch []*op) error {
	err := c.st.Write(ctx, func(stx store.Tx) error {
		return c.runAll(&Tx{Tx: stx, Now: c.now()}, batch)
	})
	if errors.Is(err, store.ErrTxEnded) {
		// Every operation succeeded and the commit failed (a failed
		// operation would have made it errRerun).
		c.runEach(ctx, batch)
		return nil
	}
	if errors.Is(err, errRerun) {
		c.reruns.Add(1)
		// The first run's results went with its rollback: should this
		// transaction not run at all, every operation gets its error (see
		// run), not one from writes that never committed. But the wait
		// for another node's lock stands (see the package doc): such an
		// operation is kept, and does not run again.
		for _, o := range batch {
			o.kept = errors.Is(o.err, store.ErrLockTimeout)
		}
		for {
			for _, o := range batch {
				if !o.kept {
					o.err = nil
				}
			}
			err = c.st.Write(ctx, func(stx store.Tx) error {
				now := c.now()
				for _, o := range batch {
					if o.kept || !o.start() {
						continue
					}
					o.err = stx.Savepoint(ctx, func(stx store.Tx) error {
						return call(o, o.fn, &Tx{Tx: stx, Now: now})
					})
				}
				return nil
			})
			if !errors.Is(err, store.ErrTxEnded) {
				return err
			}
			// The first operation that failed is taken for the one that
			// ended the transaction: the later ones failed because it
			// had ended, the earlier ones went with the rollback. (If
			// the end came at the commit, that one failed all the same.)
			// Its error stands, whatever becomes of the next run; the
			// others run again without it, in a transaction of their own:
			// nothing of the ended one was written. Each run leaves one
			// more out, so the runs end.
			i := slices.IndexFunc(batch, func(o *op) bool { return !o.kept && o.err != nil })
			if i < 0 {
				// It ended at the commit, with no operation failed.
				c.runEach(ctx, batch)
				return nil
			}
			batch[i].kept = true
			c.reruns.Add(1)
		}
	}
	return err
}

// runEach runs each operation of batch not kept in a transaction of its
// own, in batch order: for a batch whose transaction ended at its commit
// with every operation through (SQLite whose log could not grow: an
// operation too big for it, or a disk with no room left), a failure that
// belongs to no one operation and would otherwise fail them all. Nothing
// of the ended transaction was written (store.ErrTxEnded), so each
// operation then succeeds or fails alone, the one too big among those
// that fail. A batch costs one transaction more per operation.
//
// The transactions run on ctx, the batch's Write's: once every caller of
// the batch has gone, those not yet run begin none of their operations,
// and one waiting to begin (another process's lock on the file) ends,
// each caller getting its own context's error, as for the batch's own
// transaction (see run). (They ran on a context that could not end: after
// a commit that failed, with another process holding the file's lock, each
// waited out the busy timeout in turn, for callers long gone, and every
// caller and Close behind them.)
func (c *Committer) runEach(ctx context.Context, batch []*op) {
	for _, o := range batch {
		if o.kept || !o.start() {
			continue
		}
		c.reruns.Add(1)
		o.err = c.writeAlone(ctx, o)
		if o.err != nil && ctx.Err() != nil && o.ctx.Err() != nil {
			o.err = fmt.Errorf("%w (nothing written: %v)", o.ctx.Err(), o.err)
		}
	}
}

// writeAlone runs o in a transaction of its own. A panic out of the store
// is o's error alone: the operations run before it committed theirs.
func (c *Committer) writeAlone(ctx context.Context, o *op) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = storePanic(v)
		}
	}()
	return c.st.Write(ctx, func(stx store.Tx) error {
		return call(o, o.fn, &Tx{Tx: stx, Now: c.now()})
	})
}

// storePanic is the error of the operations of a transaction that the
// store panicked in.
func storePanic(v any) error {
	return fmt.Errorf("groupcommit: write transaction panicked: %v", v)
}

// errRerun rolls back a batch run without savepoints in which an operation
// failed, so that it runs again with them.
var errRerun = errors.New("groupcommit: rerun the batch with savepoints")

// runAll runs the batch's operations one after the other, with no
// savepoint: the common case where all succeed costs no more statements
// than the operations themselves. The operations that can be combined run
// together at the place of the first of them. It returns errRerun as soon
// as one fails.
func (c *Committer) runAll(tx *Tx, batch []*op) error {
	for _, o := range batch {
		o.err, o.ran = nil, false
	}
	for i, o := range batch {
		if o.ran || !o.start() {
			continue
		}
		if o.combine == nil {
			if o.err = call(o, o.fn, tx); o.err != nil {
				return errRerun
			}
			continue
		}
		group := []*op{o}
		for _, later := range batch[i+1:] {
			if !later.ran && later.combine != nil && later.combine.Key == o.combine.Key && later.start() {
				group = append(group, later)
			}
		}
		reqs := make([]any, len(group))
		for k, g := range group {
			g.ran = true
			reqs[k] = g.req
		}
		run := func(ctx context.Context, tx *Tx) error { return o.combine.Run(ctx, tx, reqs) }
		if err := call(o, run, tx); err != nil {
			for _, g := range group {
				g.err = err // each learns the group's failure (see runBatch)
			}
			return errRerun
		}
	}
	return nil
}

// call runs fn for o, with o's context values and no cancellation, turning
// a panic into an error so that one operation cannot take down the others.
func call(o *op, fn Func, tx *Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("groupcommit: operation panicked: %v", v)
		}
	}()
	return fn(context.WithoutCancel(o.ctx), tx)
}
