package queue

import (
	"slices"
	"sync"

	"github.com/google/uuid"
)

// wakeups tells the waiters blocked on a pool (Dequeues, Work's producer)
// that something may let them through: a slot freed, an item became due,
// the cap was raised, the pool was deleted.
//
// A waiter subscribes a channel of capacity 1 before its first look at the
// pool and keeps it until it leaves; notify puts a token in it without
// blocking. A change made after a look therefore always leaves a token, and
// the waiter's next wait returns at once: no wake-up is missed, and a burst
// of changes costs one look.
//
// A pool's waiters may also wait for other pools (see follow): a claim
// that passed over an item whose contact is in a call from another pool of
// its campaign needs that call's end, which is a change of the other pool.
//
// Invariant: a pool has an entry in m exactly while it has subscribers,
// and in after only then too. So the maps hold no more entries than there
// are waiters, whatever pools they asked for, existing or not.
type wakeups struct {
	mu sync.Mutex
	m  map[uuid.UUID]map[chan struct{}]struct{}
	// after maps a pool with subscribers to the pools whose changes also
	// wake them, as follow last set it; behind is its inverse.
	after  map[uuid.UUID][]uuid.UUID
	behind map[uuid.UUID]map[uuid.UUID]struct{}
}

// subscribe makes notify(id) wake ch, for each of ids, until the returned
// function is called. ch must have a buffer of 1.
func (w *wakeups) subscribe(ch chan struct{}, ids ...uuid.UUID) (unsubscribe func()) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m == nil {
		w.m = make(map[uuid.UUID]map[chan struct{}]struct{})
	}
	for _, id := range ids {
		set := w.m[id]
		if set == nil {
			set = make(map[chan struct{}]struct{}, 1)
			w.m[id] = set
		}
		set[ch] = struct{}{}
	}
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, id := range ids {
			set := w.m[id]
			delete(set, ch)
			if len(set) == 0 {
				delete(w.m, id)
				w.setAfter(id, nil)
			}
		}
	}
}

// follow makes notify(o), for each of others, also wake the waiters of
// pool id, in place of the pools it named for id before, until the last
// waiter of id leaves. A claim of id calls it with the pools whose calls
// its passed items wait for (none: it ends what the last claim set); it is
// a no-op while id has no waiter, whose first look claims, and sets them.
func (w *wakeups) follow(id uuid.UUID, others []uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.m[id] == nil {
		return
	}
	w.setAfter(id, others)
}

// setAfter replaces the pools whose changes wake the waiters of id.
// w.mu is held.
func (w *wakeups) setAfter(id uuid.UUID, others []uuid.UUID) {
	for _, o := range w.after[id] {
		set := w.behind[o]
		delete(set, id)
		if len(set) == 0 {
			delete(w.behind, o)
		}
	}
	delete(w.after, id)
	if len(others) == 0 {
		return
	}
	if w.after == nil {
		w.after = make(map[uuid.UUID][]uuid.UUID)
		w.behind = make(map[uuid.UUID]map[uuid.UUID]struct{})
	}
	w.after[id] = slices.Clone(others) // the caller's slice is its own
	for _, o := range others {
		set := w.behind[o]
		if set == nil {
			set = make(map[uuid.UUID]struct{}, 1)
			w.behind[o] = set
		}
		set[id] = struct{}{}
	}
}

// notify wakes every waiter subscribed to pool id, and those of the pools
// that follow it.
func (w *wakeups) notify(id uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wake(id)
	for b := range w.behind[id] {
		w.wake(b)
	}
}

// wake puts a token in the channel of each waiter of id. w.mu is held.
func (w *wakeups) wake(id uuid.UUID) {
	for ch := range w.m[id] {
		select {
		case ch <- struct{}{}:
		default: // a token is there already
		}
	}
}

// notifyAll wakes every waiter, whatever it is blocked on: signals from
// other processes may have been lost (see store.Watcher).
func (w *wakeups) notifyAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, set := range w.m {
		for ch := range set {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
}

// following returns how many pools' waiters follow another's, and how many
// pools are followed (for tests).
func (w *wakeups) following() (followers, followed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.after), len(w.behind)
}

// waiting returns how many waiters pool id has, and how many pools have
// any (for tests).
func (w *wakeups) waiting(id uuid.UUID) (waiters, pools int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m[id]), len(w.m)
}
