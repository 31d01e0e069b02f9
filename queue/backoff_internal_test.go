package queue

import (
	"testing"
	"time"
)

// TestBackoff_Pause: each past deadline in a row doubles the floor under a
// blocked Dequeue's sleep, from 1 ms up to the poll interval; a deadline
// still ahead is slept to (just past it) and starts the floor again, so
// that the next past deadline, an ordinary race, is met 1 ms later and not
// after the floor the earlier ones built.
func TestBackoff_Pause(t *testing.T) {
	t.Parallel()
	const poll = time.Second
	var b backoff
	for i, want := range []time.Duration{1, 2, 4, 8} {
		if got := b.pause(-time.Millisecond, poll); got != want*time.Millisecond {
			t.Fatalf("past deadline %d: %v, want %v", i, got, want*time.Millisecond)
		}
	}
	if got := b.pause(5*time.Millisecond, poll); got != 6*time.Millisecond {
		t.Fatalf("a deadline 5 ms ahead: %v, want 6ms", got)
	}
	if got := b.pause(0, poll); got != time.Millisecond {
		t.Fatalf("a past deadline after one ahead: %v, want 1ms (the floor starts again)", got)
	}
	for range 20 {
		b.pause(0, poll)
	}
	if got := b.pause(0, poll); got != poll {
		t.Fatalf("after many past deadlines: %v, want the poll interval, %v", got, poll)
	}
	b.reset()
	if got := b.pause(0, poll); got != time.Millisecond {
		t.Fatalf("a past deadline after reset: %v, want 1ms", got)
	}
}
