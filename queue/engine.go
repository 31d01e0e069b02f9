package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/validate"
)

// Engine manages pools and dispatches their items over a [store.Store]. It
// is safe for concurrent use. The store is the only copy of every state
// change; the engine keeps nothing in memory but wake-up channels.
type Engine struct {
	st   store.Store
	opts Options
	gc   committer

	mu      sync.Mutex
	waiters map[uuid.UUID]chan struct{} // closed to wake Dequeues blocked on a pool
	closed  chan struct{}
	once    sync.Once
}

// New returns an Engine over st. The caller keeps ownership of st: Close does
// not close it. Options are validated; zero fields take their defaults.
func New(st store.Store, opts Options) (*Engine, error) {
	if st == nil {
		return nil, errors.New("queue: new engine: store is nil")
	}
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, fmt.Errorf("queue: new engine: %w", err)
	}
	e := &Engine{
		st:      st,
		opts:    opts,
		waiters: make(map[uuid.UUID]chan struct{}),
		closed:  make(chan struct{}),
	}
	e.gc = committer{st: st, maxBatch: opts.MaxBatch, now: e.now}
	return e, nil
}

// Close stops the engine: blocked Dequeues return ErrClosed, and so does
// every later call. It does not close the store. Close is idempotent.
func (e *Engine) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}

func (e *Engine) isClosed() bool {
	select {
	case <-e.closed:
		return true
	default:
		return false
	}
}

// now reads the clock in UTC, without the monotonic reading.
func (e *Engine) now() time.Time { return e.opts.Now().UTC().Round(0) }

// signal returns the channel that the next notify(id) closes.
func (e *Engine) signal(id uuid.UUID) <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch, ok := e.waiters[id]
	if !ok {
		ch = make(chan struct{})
		e.waiters[id] = ch
	}
	return ch
}

// notify wakes every Dequeue blocked on pool id.
func (e *Engine) notify(id uuid.UUID) {
	e.mu.Lock()
	ch, ok := e.waiters[id]
	if ok {
		delete(e.waiters, id)
	}
	e.mu.Unlock()
	if ok {
		close(ch)
	}
}

// read and write run fn in a transaction after checking the engine is open.
func (e *Engine) read(ctx context.Context, fn func(store.Tx) error) error {
	if e.isClosed() {
		return ErrClosed
	}
	return e.st.Read(ctx, fn)
}

// write runs fn through group commit: in a write transaction shared with
// the concurrent callers' operations (see committer). fn must use the ctx
// it is given, which is not cancelled.
func (e *Engine) write(ctx context.Context, fn func(context.Context, *wtx) error) error {
	if err := e.writable(ctx); err != nil {
		return err
	}
	return e.gc.write(ctx, fn)
}

// writeCombined is write for an operation that group commit may combine
// with others of its kind (see combiner).
func (e *Engine) writeCombined(ctx context.Context, cb *combiner, req any) error {
	if err := e.writable(ctx); err != nil {
		return err
	}
	return e.gc.writeCombined(ctx, cb, req)
}

// writable returns ErrClosed after Close, or ctx's error once it ended.
func (e *Engine) writable(ctx context.Context) error {
	if e.isClosed() {
		return ErrClosed
	}
	return ctx.Err()
}

// checkID rejects the nil UUID as a pool id with a field error.
func checkID(field string, id uuid.UUID) error {
	var v validate.Validator
	v.Check(id != uuid.Nil, field, validate.RuleRequired, "is required (not the nil UUID)")
	return v.Err()
}

// checkIDs rejects nil UUIDs: the pool's ("uuid") and the contacts'
// ("contact_uuid", or "contact_uuids[i]" for several).
func checkIDs(poolID uuid.UUID, contacts ...uuid.UUID) error {
	var v validate.Validator
	v.Check(poolID != uuid.Nil, "uuid", validate.RuleRequired, "is required (not the nil UUID)")
	for i, c := range contacts {
		field := "contact_uuid"
		if len(contacts) > 1 {
			field = fmt.Sprintf("contact_uuids[%d]", i)
		}
		v.Check(c != uuid.Nil, field, validate.RuleRequired, "is required (not the nil UUID)")
	}
	return v.Err()
}

func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// Stats are counters of an Engine's write path since New. Operations /
// Transactions is the average size of a group-commit batch.
type Stats struct {
	// Transactions is the number of write transactions run (a batch whose
	// run was redone with savepoints counts once).
	Transactions uint64
	// Operations is the number of write operations (dispatches,
	// settlements, adds, pool changes) run in them.
	Operations uint64
	// Reruns is the number of batches run a second time, with a savepoint
	// per operation, because an operation in them failed.
	Reruns uint64
}

// Stats returns the engine's counters. It is safe to call at any time.
func (e *Engine) Stats() Stats {
	return Stats{
		Transactions: e.gc.transactions.Load(),
		Operations:   e.gc.operations.Load(),
		Reruns:       e.gc.reruns.Load(),
	}
}
