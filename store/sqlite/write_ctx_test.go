package sqlite_test

import (
	"context"
	"testing"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestStore_WriteUnderACancellableContext: a Write whose context can end
// costs what one under context.Background does. Group commit gives every
// Write such a context (it ends once the batch's callers have all left),
// and the driver watches a statement's cancellable context from a
// goroutine it starts for the statement: a BEGIN run on it cost every
// write transaction that goroutine, 25 % of SQLite's serial dispatch cycle
// (bench/RESULTS.md, session 57). The waits for another process's lock
// watch the context; the statements need not. Counted in allocations, which
// the goroutine's set-up makes and the machine's load does not change.
func TestStore_WriteUnderACancellableContext(t *testing.T) {
	st, _ := MustOpenFile(t, sqlite.Options{})
	write := func(ctx context.Context) func() {
		return func() {
			if err := st.Write(ctx, func(store.Tx) error { return nil }); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	background := testing.AllocsPerRun(200, write(context.Background()))
	cancellable := testing.AllocsPerRun(200, write(ctx))
	require.LessOrEqual(t, cancellable, background,
		"a Write under a cancellable context allocates %v, under context.Background %v", cancellable, background)
}
