package storetest

import (
	"testing"

	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

func closeTests() []test {
	return []test{
		{"Twice", testCloseTwice},
	}
}

// testCloseTwice closes a store twice, both times without error, then
// checks that Read and Write return ErrClosed without running their
// function. The cleanup of open closes the store once more.
func testCloseTwice(t *testing.T, b *bundle) {
	p := b.insertPool()
	b.insertItems(p.UUID, pending(2))
	require.NoError(t, b.st.Close())
	require.NoError(t, b.st.Close(), "a second Close")
	called := false
	fn := func(store.Tx) error { called = true; return nil }
	require.ErrorIs(t, b.st.Read(b.ctx, fn), store.ErrClosed)
	require.ErrorIs(t, b.st.Write(b.ctx, fn), store.ErrClosed)
	require.False(t, called, "fn does not run after Close")
}
