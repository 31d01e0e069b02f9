package queue

import (
	"context"
	"errors"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store/sqlite"
)

// TestWrite_GroupCommitClosedFirst: a Close that closes group commit after
// a call passed the engine's own check (isClosed) and before it reached
// group commit gets ErrClosed, as every call after Close does, and not
// group commit's error of the same name. The window is a few instructions
// wide; here group commit is closed by hand while the engine is open,
// which is what a call in it meets. Claims and settlements (combined
// operations) and the other writes each.
func TestWrite_GroupCommitClosedFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.MemoryPath, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	p, err := e.CreatePool(ctx, pool.CreateParams{Name: "closed window", Description: "d", Type: pool.Parallel})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}, pool.NewItem{ContactUUID: uuid.New()}); err != nil {
		t.Fatal(err)
	}
	l, err := e.TryDequeue(ctx, p.UUID)
	if err != nil {
		t.Fatal(err)
	}

	e.gc.Close()
	for name, call := range map[string]func() error{
		"Complete (combined)": func() error { return e.Complete(ctx, l, "answered") },
		"TryDequeue (combined)": func() error {
			_, err := e.TryDequeue(ctx, p.UUID)
			return err
		},
		"Add": func() error {
			_, err := e.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()})
			return err
		},
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s with group commit closed: %v, want ErrClosed", name, err)
		}
	}
}
