package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWatch_AgainAfterStop: the stop of the last watcher ends the
// listener and its connection (a store outlives the engines on it), and a
// Watch after that starts it again: an engine opened on a store whose
// earlier engine closed still hears the other processes' signals.
func TestWatch_AgainAfterStop(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(context.Background()) })
	listeners := func() int {
		var n int
		require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1`,
			"poolq listener "+st.Schema()).Scan(&n))
		return n
	}

	gotA := make(chan uuid.UUID, 16)
	stopA := st.Watch(func(id uuid.UUID) { gotA <- id })
	listening(t, gotA)
	require.Equal(t, 1, listeners())
	stopA()
	require.Eventually(t, func() bool { return listeners() == 0 }, 5*time.Second, 10*time.Millisecond,
		"the last watcher stopped: the listener's connection is closed")

	gotB := make(chan uuid.UUID, 16)
	stopB := st.Watch(func(id uuid.UUID) { gotB <- id })
	defer stopB()
	listening(t, gotB)
	id := uuid.New()
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { tx.(store.Signaler).Signal(id); return nil }))
	select {
	case got := <-gotB:
		require.Equal(t, id, got)
	case <-time.After(5 * time.Second):
		t.Fatal("the signal did not arrive")
	}
}

// TestWatch_SignalBeforeAFailedSavepoint: a savepoint rolled back forgets
// the signals given inside it, not those given before it in the same
// transaction (a group commit runs each caller's operation in a
// savepoint: one caller's failure must not drop another's wake-up).
func TestWatch_SignalBeforeAFailedSavepoint(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	got := make(chan uuid.UUID, 16)
	stop := st.Watch(func(id uuid.UUID) { got <- id })
	defer stop()
	listening(t, got)
	before, undone := uuid.New(), uuid.New()
	boom := errors.New("boom")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		tx.(store.Signaler).Signal(before)
		require.ErrorIs(t, tx.Savepoint(ctx, func(tx store.Tx) error { tx.(store.Signaler).Signal(undone); return boom }), boom)
		return nil
	}))
	select {
	case id := <-got:
		require.Equal(t, before, id, "the signal given before the savepoint")
	case <-time.After(5 * time.Second):
		t.Fatal("the signal given before the failed savepoint did not arrive")
	}
	select {
	case id := <-got:
		t.Fatalf("a second signal arrived: %s", id)
	case <-time.After(100 * time.Millisecond):
	}
}
