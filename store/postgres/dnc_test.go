package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestAddDNC_WaitsForTheContactsPools: a claim reads the do-not-call list
// after it locks its pool, and commits later. AddDNC on another node takes
// the locks of the pools that hold the contacts' items before it adds
// them, so it returns only after such a claim committed (the item is then
// in flight, for the host to see), and a claim that locks the pool after
// it sees the entry. Without the locks, AddDNC returned while the claim
// that had read the list without the entry was still to commit: a call
// started after the list said "do not call".
func TestAddDNC_WaitsForTheContactsPools(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	p, other := newTestPool("held"), newTestPool("other")
	items := pendingItems(1)
	c := items[0].ContactUUID
	stranger := uuid.New() // on the list, in no pool: locks nothing
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		if err := tx.InsertPool(ctx, other); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, items)
		return err
	}))

	read := make(chan struct{})
	release := make(chan struct{})
	claimed := make(chan error, 1)
	go func() {
		claimed <- a.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, p.UUID); err != nil { // the claim's lock
				return err
			}
			on, err := tx.OnDNC(ctx, c)
			if err != nil {
				return err
			}
			if on[c] {
				return errors.New("the contact is on the list before AddDNC ran")
			}
			close(read)
			<-release // the claim goes on, and commits
			return nil
		})
	}()
	<-read
	added := make(chan error, 1)
	go func() {
		added <- b.Write(ctx, func(tx store.Tx) error {
			_, err := tx.AddDNC(ctx, time.Now(), stranger, c)
			return err
		})
	}()
	select {
	case err := <-added:
		close(release)
		<-claimed
		t.Fatalf("AddDNC returned (%v) while a claim that read the list without the contact had not committed", err)
	case <-time.After(500 * time.Millisecond):
	}
	// Another pool's writes do not wait for it.
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, other.UUID); return err }))
	close(release)
	require.NoError(t, <-claimed)
	require.NoError(t, <-added)
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, p.UUID); err != nil {
			return err
		}
		on, err := tx.OnDNC(ctx, c, stranger)
		require.Equal(t, map[uuid.UUID]bool{c: true, stranger: true}, on)
		return err
	}))
}
