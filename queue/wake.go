package queue

import (
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
// Invariant: a pool has an entry exactly while it has subscribers. So the
// map holds no more entries than there are waiters, whatever pools they
// asked for, existing or not.
type wakeups struct {
	mu sync.Mutex
	m  map[uuid.UUID]map[chan struct{}]struct{}
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
			}
		}
	}
}

// notify wakes every waiter subscribed to pool id.
func (w *wakeups) notify(id uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
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

// waiting returns how many waiters pool id has, and how many pools have
// any (for tests).
func (w *wakeups) waiting(id uuid.UUID) (waiters, pools int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.m[id]), len(w.m)
}
