package queue

import (
	"testing"

	"github.com/google/uuid"
)

// TestTurns_Bounded: an engine keeps at most maxTurns campaigns' turns,
// however many campaigns it ever claimed for (see maxTurns for those
// forgetTurn does not see), and a known campaign's turn moves without
// emptying them.
func TestTurns_Bounded(t *testing.T) {
	t.Parallel()
	var e Engine
	first := uuid.New()
	e.setTurn(first, 1)
	for range maxTurns - 1 {
		e.setTurn(uuid.New(), 1)
	}
	if n := len(e.turns); n != maxTurns {
		t.Fatalf("%d turns, want %d", n, maxTurns)
	}
	e.setTurn(first, 2)
	if n, got := len(e.turns), e.turn(first, 3); n != maxTurns || got != 2 {
		t.Fatalf("after moving a known turn: %d turns (want %d), its turn %d (want 2)", n, maxTurns, got)
	}
	e.setTurn(uuid.New(), 1)
	if n := len(e.turns); n != 1 {
		t.Fatalf("a turn past maxTurns: %d turns, want 1 (they start again empty)", n)
	}
}
