package sqlite_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_ContextEndsAtBegin: a Read or Write whose context ends while
// its BEGIN runs on the writer's connection must not leave that connection
// inside a transaction. The driver reports the context's error for a
// statement it saw the context end during, even one that ran: a BEGIN that
// did begin, then an error, and every later BEGIN on the connection failed
// ("cannot start a transaction within a transaction") — the store unusable.
// The window is a few microseconds wide, so the test cancels many calls at
// random instants around it: without the fix it failed every run on the
// write path, and about every other run on the read path (Memory).
func TestStore_ContextEndsAtBegin(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, st *sqlite.Store) {
		nop := func(store.Tx) error { return nil }
		calls := []func(context.Context) error{
			func(ctx context.Context) error { return st.Read(ctx, nop) },
			func(ctx context.Context) error { return st.Write(ctx, nop) },
		}
		n := 10000
		if testing.Short() {
			n = 3000 // CI's race run, slower: the plain run makes them all
		}
		for i := range n {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(time.Duration(rand.IntN(60))*time.Microsecond, cancel)
			err := calls[i%2](ctx)
			cancel()
			if err != nil {
				require.True(t, errors.Is(err, context.Canceled), "call %d: %v", i, err)
			}
			require.NoError(t, st.Write(context.Background(), nop), "a write after call %d", i)
		}
	})
}
