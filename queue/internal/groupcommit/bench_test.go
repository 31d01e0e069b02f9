package groupcommit_test

import (
	"context"
	"testing"

	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/store"
)

// nopStore runs every transaction at once on a nil Tx: what is left of a
// Write is the Committer's own machinery.
type nopStore struct{}

func (nopStore) Read(_ context.Context, fn func(store.Tx) error) error  { return fn(nil) }
func (nopStore) Write(_ context.Context, fn func(store.Tx) error) error { return fn(nil) }
func (nopStore) Close() error                                           { return nil }

// BenchmarkCommitter_OneCaller is the cost of group commit for a caller
// alone (one goroutine, one operation a transaction, a store that does
// nothing): the hand-off to the Committer's goroutine and back, which a
// single Add from one goroutine pays on top of its SQL.
func BenchmarkCommitter_OneCaller(b *testing.B) {
	c := groupcommit.New(nopStore{}, groupcommit.Options{})
	defer c.Close()
	ctx := context.Background()
	ran := 0
	op := func(context.Context, *groupcommit.Tx) error { ran++; return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
	if ran != b.N {
		b.Fatalf("ran %d operations, want %d", ran, b.N)
	}
}

// BenchmarkCommitter_OneCallerCancellable is BenchmarkCommitter_OneCaller
// with a context that can be cancelled (a request's, Work's), whose
// cancellation the Write of an operation alone must follow.
func BenchmarkCommitter_OneCallerCancellable(b *testing.B) {
	c := groupcommit.New(nopStore{}, groupcommit.Options{})
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := 0
	op := func(context.Context, *groupcommit.Tx) error { ran++; return nil }
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Write(ctx, op); err != nil {
			b.Fatal(err)
		}
	}
	if ran != b.N {
		b.Fatalf("ran %d operations, want %d", ran, b.N)
	}
}
