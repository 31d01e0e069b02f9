package postgres

import (
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
)

// TestHints_Bounded: a node keeps at most maxHints PoolDue guesses, however
// many pools it claims from over its life; the newest is kept, and a pool
// already known is updated in place without dropping the others.
func TestHints_Bounded(t *testing.T) {
	var h hints
	first := uuid.New()
	h.store(first, poolHint{pool.FIFO, 1})
	for range maxHints - 1 {
		h.store(uuid.New(), poolHint{pool.Parallel, 10})
	}
	if n := h.len(); n != maxHints {
		t.Fatalf("%d hints, want %d", n, maxHints)
	}
	h.store(first, poolHint{pool.LIFO, 1}) // known: updated, nothing dropped
	if n := h.len(); n != maxHints {
		t.Fatalf("after updating a known pool: %d hints, want %d", n, maxHints)
	}
	if v, ok := h.load(first); !ok || v != (poolHint{pool.LIFO, 1}) {
		t.Fatalf("updated hint: %v %v", v, ok)
	}
	last := uuid.New()
	h.store(last, poolHint{pool.Parallel, 5}) // one more: the rest go
	if n := h.len(); n > maxHints || n < 1 {
		t.Fatalf("%d hints after one more pool, want 1..%d", n, maxHints)
	}
	if v, ok := h.load(last); !ok || v != (poolHint{pool.Parallel, 5}) {
		t.Fatalf("newest hint: %v %v", v, ok)
	}
	h.forget(last)
	if _, ok := h.load(last); ok {
		t.Fatal("a forgotten hint is still there")
	}
}
