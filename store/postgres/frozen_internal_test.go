package postgres

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestFrozenPools: a pool noted is held until its time passes or it is
// forgotten; a note drops the pools whose time has passed.
func TestFrozenPools(t *testing.T) {
	t.Parallel()
	var f frozenPools
	a, b := uuid.New(), uuid.New()
	require.False(t, f.held(a), "nothing noted")
	f.note(a, 20*time.Millisecond)
	f.note(b, time.Hour)
	require.True(t, f.held(a))
	require.True(t, f.held(b))
	time.Sleep(30 * time.Millisecond)
	require.False(t, f.held(a), "its time has passed")
	f.forget(b)
	require.False(t, f.held(b), "forgotten")
	f.note(a, 10*time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	f.note(b, time.Hour)
	require.Len(t, f.until, 1, "the note dropped the pool whose time passed")
}

// TestFrozenFor: a pool found held stays noted for LockTimeout, and at
// least frozenMemory (a blocked Dequeue's looks come a PollInterval apart).
func TestFrozenFor(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ lockTimeout, want time.Duration }{
		{MinLockTimeout, frozenMemory},
		{time.Second, frozenMemory},
		{frozenMemory, frozenMemory},
		{time.Minute, time.Minute},
	} {
		s := &Store{opts: Options{LockTimeout: c.lockTimeout}}
		require.Equal(t, c.want, s.frozenFor(), "LockTimeout %v", c.lockTimeout)
	}
}
