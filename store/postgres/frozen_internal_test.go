package postgres

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestFrozenPools: a pool noted stays until it is forgotten, or a try
// finds another holder than the first one a try found (or none).
func TestFrozenPools(t *testing.T) {
	t.Parallel()
	var f frozenPools
	a, b := uuid.New(), uuid.New()
	require.False(t, f.isHeld(a), "nothing noted")
	require.False(t, f.stillHeld(a, "3/7"), "not noted")
	require.False(t, f.isHeld(a), "a try of a pool not noted notes nothing")
	f.note(a)
	f.note(b)
	require.True(t, f.isHeld(a))
	require.True(t, f.stillHeld(a, "3/7"), "the first holder found is the one noted")
	require.True(t, f.stillHeld(a, "3/7"), "the same holder")
	require.True(t, f.isHeld(a))
	require.False(t, f.stillHeld(a, "4/2"), "another holder: a live transaction")
	require.False(t, f.isHeld(a), "forgotten")
	require.False(t, f.stillHeld(b, ""), "no holder found: just released")
	require.False(t, f.isHeld(b), "forgotten")
	f.note(a)
	f.forget(a)
	require.False(t, f.isHeld(a), "forgotten")
	f.note(b)
	require.True(t, f.stillHeld(b, "5/1"))
	f.note(b) // waited past the timeout again: the next try learns the holder anew
	require.True(t, f.stillHeld(b, "6/1"))
}
