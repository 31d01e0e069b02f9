package queue_test

// Management operations racing with dispatch (review branch r-ops): two
// engines over one database (two stores on one SQLite file, or two nodes
// on one PostgreSQL schema), Work on one, direct dequeuers on the other,
// and a mutator calling UpdatePool (type, cap, max_retries), Skip,
// Requeue, Remove, SetPriority, Add of present contacts, DuplicatePool and
// DeletePool on both. The handlers' own bookkeeping checks the invariants.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

type opsKey struct{ pool, contact uuid.UUID }

type opsSuspect struct {
	k             opsKey
	item          int64
	attempt, last int
	who           string
}

type opsHarness struct {
	t       *testing.T
	maxCap  int
	maxCeil int

	mu          sync.Mutex
	held        map[opsKey]*queue.Lease
	perPool     map[uuid.UUID]int
	lastAttempt map[int64]int // by item ID
	suspects    []opsSuspect
	deleted     map[uuid.UUID]bool
	violations  []string
	dispatches  int
	opsOK       map[string]int
}

func (h *opsHarness) violate(format string, args ...any) {
	h.violations = append(h.violations, fmt.Sprintf(format, args...))
}

func (h *opsHarness) acquire(who string, l *queue.Lease) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.dispatches++
	k := opsKey{l.PoolUUID, l.ContactUUID}
	if o := h.held[k]; o != nil {
		h.violate("%s: contact %s of pool %s dispatched (token %d) while held under token %d", who, l.ContactUUID, l.PoolUUID, l.Token, o.Token)
	}
	h.held[k] = l
	h.perPool[l.PoolUUID]++
	if n := h.perPool[l.PoolUUID]; n > h.maxCap {
		h.violate("%s: %d items of pool %s held at once, the largest cap ever set is %d", who, n, l.PoolUUID, h.maxCap)
	}
	if h.deleted[l.PoolUUID] {
		h.violate("%s: contact %s dispatched from pool %s after DeletePool succeeded", who, l.ContactUUID, l.PoolUUID)
	}
	if l.Attempt > h.maxCeil {
		h.violate("%s: contact %s dispatched for attempt %d, the largest ceiling ever set is %d", who, l.ContactUUID, l.Attempt, h.maxCeil)
	}
	if last := h.lastAttempt[l.ItemID]; l.Attempt <= last {
		h.suspects = append(h.suspects, opsSuspect{k, l.ItemID, l.Attempt, last, who})
	}
	h.lastAttempt[l.ItemID] = l.Attempt
}

// letGo is called right before settling l; released: it is given back
// unattempted.
func (h *opsHarness) letGo(l *queue.Lease, released bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := opsKey{l.PoolUUID, l.ContactUUID}
	if h.held[k] == l {
		delete(h.held, k)
		h.perPool[l.PoolUUID]--
	}
	if released {
		h.lastAttempt[l.ItemID] = l.Attempt - 1
	}
}

// heldToken returns the token under which k is held, 0 if not held.
func (h *opsHarness) heldToken(k opsKey) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l := h.held[k]; l != nil {
		return l.Token
	}
	return 0
}

// itemOp runs op on k and checks that it did not succeed while k was held
// under one lease from before to after it.
func (h *opsHarness) itemOp(name string, k opsKey, op func() error) {
	before := h.heldToken(k)
	err := op()
	after := h.heldToken(k)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err == nil {
		h.opsOK[name]++
		h.opsOK[name+" "+k.pool.String()+k.contact.String()]++
		if before != 0 && before == after {
			h.violate("%s of contact %s in pool %s succeeded while it was held under token %d", name, k.contact, k.pool, before)
		}
		return
	}
	if !isOneOf(err, queue.ErrInFlight, pool.ErrWrongStatus, store.ErrNotFound, context.Canceled, context.DeadlineExceeded, queue.ErrClosed) {
		h.violate("%s of contact %s in pool %s: unexpected error %v", name, k.contact, k.pool, err)
	}
}

// runOpsRace runs the race on engines a (Work) and b (direct dequeues);
// both mutate.
func runOpsRace(t *testing.T, a, b *queue.Engine, d time.Duration) {
	ctx := context.Background()
	const nPools, nItems = 4, 40
	types := []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel, pool.Parallel}
	var pools []uuid.UUID
	contacts := map[uuid.UUID][]uuid.UUID{}
	for i := range nPools {
		p, err := a.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("ops %d", i), Description: "race", Type: types[i],
			MaxParallelItems: pqPtr(3), MaxRetries: pqPtr(3)})
		require.NoError(t, err)
		items := newItems(nItems)
		for j := range items {
			items[j].Priority = j % 5
			contacts[p.UUID] = append(contacts[p.UUID], items[j].ContactUUID)
		}
		_, err = a.Add(ctx, p.UUID, items...)
		require.NoError(t, err)
		pools = append(pools, p.UUID)
	}
	// A pool to delete while it is worked on.
	dp, err := a.CreatePool(ctx, pool.CreateParams{Name: "to delete", Description: "race", Type: pool.Parallel, MaxParallelItems: pqPtr(3)})
	require.NoError(t, err)
	_, err = a.Add(ctx, dp.UUID, newItems(nItems)...)
	require.NoError(t, err)

	h := &opsHarness{t: t, maxCap: 3, maxCeil: 4, held: map[opsKey]*queue.Lease{}, perPool: map[uuid.UUID]int{},
		lastAttempt: map[int64]int{}, deleted: map[uuid.UUID]bool{}, opsOK: map[string]int{}}

	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup

	// Work on a, over every pool.
	workPools := append(append([]uuid.UUID{}, pools...), dp.UUID)
	var settleErrs sync.Map
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
		var rmu sync.Mutex
		err := a.Work(rctx, func(ctx context.Context, l *queue.Lease) error {
			h.acquire("work", l)
			rmu.Lock()
			r := rng.IntN(10)
			sl := time.Duration(rng.IntN(4000)) * time.Microsecond
			rmu.Unlock()
			time.Sleep(sl)
			h.letGo(l, false)
			switch {
			case r < 5:
				return nil
			case r < 9:
				return errors.New("busy")
			default:
				return queue.Final(errors.New("wrong number"))
			}
		}, queue.WorkOptions{Pools: workPools, Workers: 4, OnEvent: func(ev queue.Event) {
			if (ev.Kind == queue.EventError || ev.Kind == queue.EventExpired) && !isOneOf(ev.Err, context.Canceled, store.ErrNotFound, queue.ErrClosed) {
				settleErrs.Store(fmt.Sprint(ev.Kind, ": ", ev.Err), true)
			}
		}})
		// store.ErrNotFound: a pool deleted by the mutators before Work's
		// start-up read it (Work's documented answer).
		if err != nil && !isOneOf(err, context.Canceled, context.DeadlineExceeded, store.ErrNotFound) {
			settleErrs.Store("work: "+err.Error(), true)
		}
	}()

	// Direct dequeuers on b.
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(10+w), uint64(time.Now().UnixNano())))
			for rctx.Err() == nil {
				p := workPools[rng.IntN(len(workPools))]
				l, err := b.TryDequeue(rctx, p)
				if err != nil {
					if !isOneOf(err, queue.ErrEmpty, queue.ErrAtCapacity, store.ErrNotFound, context.Canceled, context.DeadlineExceeded) {
						h.mu.Lock()
						h.violate("dequeue: %v", err)
						h.mu.Unlock()
					}
					time.Sleep(time.Millisecond)
					continue
				}
				h.acquire("direct", l)
				time.Sleep(time.Duration(rng.IntN(5000)) * time.Microsecond)
				bg := context.Background()
				var serr error
				switch r := rng.IntN(12); {
				case r >= 10:
					// Abandoned past its end: it comes back as a failed
					// attempt, whatever the mutators did meanwhile, and
					// its settlement must be refused.
					h.letGo(l, false)
					time.Sleep(opsShortLease + 200*time.Millisecond)
					var lerr error
					if r == 10 {
						lerr = b.Complete(bg, l, "late")
					} else {
						lerr = b.Release(bg, l)
					}
					if !errors.Is(lerr, queue.ErrLeaseLost) {
						h.mu.Lock()
						h.violate("settlement of contact %s (token %d) after its lease ended: %v, want ErrLeaseLost", l.ContactUUID, l.Token, lerr)
						h.mu.Unlock()
					}
				case r < 2:
					h.letGo(l, true)
					serr = b.Release(bg, l)
				case r < 3:
					if serr = b.MarkInCall(bg, l); serr == nil {
						h.letGo(l, false)
						serr = b.Complete(bg, l, "ok")
					}
				case r < 6:
					h.letGo(l, false)
					serr = b.Complete(bg, l, "ok")
				default:
					h.letGo(l, false)
					serr = b.Fail(bg, l, queue.Failure{Note: "busy"})
				}
				if serr != nil {
					h.letGo(l, false)
					h.mu.Lock()
					h.violate("direct settle of %s (token %d): %v", l.ContactUUID, l.Token, serr)
					h.mu.Unlock()
				}
			}
		}()
	}

	// Mutators, one per engine.
	for m, eng := range []*queue.Engine{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(20+m), uint64(time.Now().UnixNano())))
			for rctx.Err() == nil {
				p := pools[rng.IntN(len(pools))]
				h.mu.Lock()
				cs := contacts[p]
				c := cs[rng.IntN(len(cs))]
				h.mu.Unlock()
				k := opsKey{p, c}
				switch rng.IntN(12) {
				case 0, 1:
					ty := []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel}[rng.IntN(3)]
					cp, mr := 1+rng.IntN(3), rng.IntN(4)
					_, err := eng.UpdatePool(rctx, p, pool.UpdateParams{Type: &ty, MaxParallelItems: &cp, MaxRetries: &mr})
					if err != nil && rctx.Err() == nil {
						h.mu.Lock()
						h.violate("update pool: %v", err)
						h.mu.Unlock()
					}
				case 2:
					h.itemOp("skip", k, func() error { _, err := eng.Skip(rctx, p, c, "skip"); return err })
				case 3, 4:
					h.itemOp("requeue", k, func() error { _, err := eng.Requeue(rctx, p, c); return err })
				case 5:
					h.itemOp("priority", k, func() error { _, err := eng.SetPriority(rctx, p, c, rng.IntN(10)); return err })
				case 6:
					h.itemOp("remove", k, func() error {
						n, err := eng.Remove(rctx, p, c)
						if err == nil && n == 0 {
							return store.ErrNotFound
						}
						return err
					})
				case 7, 8:
					// Add back (present or removed), with a new contact too.
					n := uuid.New()
					res, err := eng.Add(rctx, p, pool.NewItem{ContactUUID: c}, pool.NewItem{ContactUUID: n})
					if err == nil {
						h.mu.Lock()
						contacts[p] = append(contacts[p], n) // only this goroutine... see below
						h.mu.Unlock()
						if res.ContactsAdded < 1 {
							h.mu.Lock()
							h.violate("add: new contact not added: %+v", res)
							h.mu.Unlock()
						}
					}
				case 9:
					_, err := eng.DuplicatePool(rctx, p, pool.DuplicateParams{})
					if err != nil && rctx.Err() == nil {
						h.mu.Lock()
						h.violate("duplicate: %v", err)
						h.mu.Unlock()
					}
				case 10:
					err := eng.DeletePool(rctx, dp.UUID)
					h.mu.Lock()
					if err == nil {
						h.opsOK["delete"]++
						h.deleted[dp.UUID] = true
						if n := h.perPool[dp.UUID]; n > 0 {
							h.violate("DeletePool succeeded while %d of its items were held", n)
						}
					} else if !isOneOf(err, queue.ErrInFlight, store.ErrNotFound, context.Canceled, context.DeadlineExceeded) {
						h.violate("delete pool: %v", err)
					}
					h.mu.Unlock()
				case 11:
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	settleErrs.Range(func(k, _ any) bool {
		h.violate("work event: %v", k)
		return true
	})

	// Quiesced: counts against a recount, nothing in flight, nothing held.
	all, err := a.Pools(ctx, pool.PoolQuery{Page: 1, PerPage: 100})
	require.NoError(t, err)
	for _, p := range all.Data {
		d, err := a.Pool(ctx, p.UUID)
		require.NoError(t, err)
		sum := 0
		for _, n := range d.StatusCounts {
			sum += n
		}
		items := allItems(ctx, t, a, p.UUID, 100)
		if sum != d.ContactsCount || len(items) != d.ContactsCount {
			h.violate("pool %s (%s): status counts sum %d, contacts_count %d, items listed %d", p.UUID, p.Name, sum, d.ContactsCount, len(items))
		}
		if re := countStatuses(items); fmt.Sprint(re) != fmt.Sprint(d.StatusCounts) {
			h.violate("pool %s (%s): status_counts %v, recount %v", p.UUID, p.Name, d.StatusCounts, re)
		}
		for _, it := range items {
			if it.Status.InFlight() {
				h.violate("pool %s: contact %s still %s after every worker stopped", p.UUID, it.ContactUUID, it.Status)
			}
		}
	}
	for k, l := range h.held {
		h.violate("contact %s of pool %s still held (token %d)", k.contact, k.pool, l.Token)
	}
	for _, s := range h.suspects {
		if h.opsOK["requeue "+s.k.pool.String()+s.k.contact.String()] == 0 {
			h.violate("%s: contact %s (item %d) of pool %s dispatched for attempt %d after attempt %d, never requeued", s.who, s.k.contact, s.item, s.k.pool, s.attempt, s.last)
		}
	}
	ok := map[string]int{}
	for _, n := range []string{"skip", "requeue", "priority", "remove", "delete"} {
		ok[n] = h.opsOK[n]
	}
	t.Logf("dispatches %d, successful ops %v", h.dispatches, ok)
	for i, v := range h.violations {
		if i == 20 {
			t.Errorf("... %d violations in all", len(h.violations))
			break
		}
		t.Error(v)
	}
}

var opsOpts = queue.Options{LeaseTimeout: time.Minute, RetryDelay: time.Millisecond, PollInterval: 20 * time.Millisecond}

// opsShortLease is the lease of engine b, whose direct dequeuers abandon
// some of their leases.
const opsShortLease = time.Second

var opsShortOpts = queue.Options{LeaseTimeout: opsShortLease, RetryDelay: time.Millisecond, PollInterval: 20 * time.Millisecond}

func TestOpsRace_SQLiteTwoStores(t *testing.T) {
	path := filepath.Join(t.TempDir(), "poolq.db")
	st1 := openFileStore(t, path)
	st2 := openFileStore(t, path)
	runOpsRace(t, openEngine(t, st1, opsOpts), openEngine(t, st2, opsShortOpts), 6*time.Second)
}

func TestOpsRace_SQLiteOneStore(t *testing.T) {
	st := openFileStore(t, "")
	runOpsRace(t, openEngine(t, st, opsOpts), openEngine(t, st, opsShortOpts), 6*time.Second)
}

func TestOpsRace_PostgresTwoNodes(t *testing.T) {
	url := pgtest.URL(t)
	engines, stores := pgEngines(t, url, 2, opsOpts)
	runOpsRace(t, engines[0], openEngine(t, stores[1], opsShortOpts), 6*time.Second)
}
