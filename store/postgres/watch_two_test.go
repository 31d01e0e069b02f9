package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWatch_Two: two watchers of one store share its one listener. A
// signal reaches each of them once (a second listener would deliver it
// twice, and leak when the watchers stop), and stopping one leaves the
// other watching.
func TestWatch_Two(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	gotA, gotB := make(chan uuid.UUID, 64), make(chan uuid.UUID, 64)
	stopA := st.Watch(func(id uuid.UUID) { gotA <- id })
	defer stopA()
	listening(t, gotA)
	stopB := st.Watch(func(id uuid.UUID) { gotB <- id })
	defer stopB()
	signal := func(id uuid.UUID) {
		t.Helper()
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { tx.(store.Signaler).Signal(id); return nil }))
	}

	first := uuid.New()
	signal(first)
	require.Equal(t, []uuid.UUID{first}, signals(t, gotA), "watcher A")
	require.Equal(t, []uuid.UUID{first}, signals(t, gotB), "watcher B")

	stopA()
	second := uuid.New()
	signal(second)
	require.Equal(t, []uuid.UUID{second}, signals(t, gotB), "watcher B, after A stopped")
	select {
	case id := <-gotA:
		t.Fatalf("a stopped watcher was called with %s", id)
	default:
	}
}

// signals waits up to 5 s for a signal on got, then collects what else
// arrives in the next 300 ms; the listener's uuid.Nil (look again) is
// left out.
func signals(t *testing.T, got <-chan uuid.UUID) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	wait := time.After(5 * time.Second)
	for len(ids) == 0 {
		select {
		case id := <-got:
			if id != uuid.Nil {
				ids = append(ids, id)
			}
		case <-wait:
			t.Fatal("no signal arrived")
		}
	}
	more := time.After(300 * time.Millisecond)
	for {
		select {
		case id := <-got:
			if id != uuid.Nil {
				ids = append(ids, id)
			}
		case <-more:
			return ids
		}
	}
}
