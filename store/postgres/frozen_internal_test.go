package postgres

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestFrozenPools: a pool noted is held until it is forgotten, however
// long ago it was noted (a try that finds its lock free forgets it).
func TestFrozenPools(t *testing.T) {
	t.Parallel()
	var f frozenPools
	a, b := uuid.New(), uuid.New()
	require.False(t, f.isHeld(a), "nothing noted")
	f.note(a)
	f.note(b)
	require.True(t, f.isHeld(a))
	require.True(t, f.isHeld(b))
	f.forget(b)
	require.False(t, f.isHeld(b), "forgotten")
	require.True(t, f.isHeld(a), "still noted")
}
