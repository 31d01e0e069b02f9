package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWrite_LockBelowTheHighestKeepsTheOrder: a pool lock taken out of
// order (below the highest held, tried without waiting, and granted)
// leaves the highest key where it was: the next lock between the two is
// tried too, not waited for, since waiting for it while holding the
// higher one is how two transactions deadlock. Node a holds p3, then
// takes p1 (tried: free) and wants p2, which node b holds while it waits
// for p3. With the order kept, a's try fails, a runs again from the start
// (releasing p3), b goes on, then a. Had a waited for p2, both would wait
// for each other until the server's deadlock detector, off here, or
// LockTimeout ended one.
func TestWrite_LockBelowTheHighestKeepsTheOrder(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	var opts postgres.Options
	url, off := withoutDeadlockDetector(t, url, &opts)
	a := pgtest.Open(t, url, opts)
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema(), LockTimeout: opts.LockTimeout})
	ps := make([]pool.Pool, 3) // lock keys in this order: made one after another
	for i := range ps {
		ps[i] = newTestPool("order " + string(rune('1'+i)))
		require.NoError(t, a.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, ps[i]) }))
	}
	p1, p2, p3 := ps[0].UUID, ps[1].UUID, ps[2].UUID
	lock := func(tx store.Tx, p pool.Pool) error { _, err := tx.Pool(ctx, p.UUID); return err }

	bHolds, aHolds := make(chan struct{}), make(chan struct{})
	var bOnce, aOnce sync.Once
	start := time.Now()
	errB := make(chan error, 1)
	go func() {
		errB <- b.Write(ctx, func(tx store.Tx) error {
			if err := lock(tx, ps[1]); err != nil { // p2
				return err
			}
			first := false
			bOnce.Do(func() { first = true; close(bHolds) })
			if first {
				<-aHolds // a holds p3 and p1
			}
			return lock(tx, ps[2]) // p3: in order, waits for a
		})
	}()
	<-bHolds
	runs := 0
	errA := a.Write(ctx, func(tx store.Tx) error {
		runs++
		for _, p := range []pool.Pool{ps[2], ps[0]} { // p3, then p1 below it
			if err := lock(tx, p); err != nil {
				return err
			}
		}
		first := false
		aOnce.Do(func() { first = true; close(aHolds) })
		if first {
			time.Sleep(200 * time.Millisecond) // b waits for p3 by now
		}
		return lock(tx, ps[1]) // p2, held by b
	})
	require.NoError(t, errA, "pools %v, %v, %v", p1, p2, p3)
	require.NoError(t, <-errB)
	require.GreaterOrEqual(t, runs, 2, "a's try of p2 failed, and it ran again")
	if !off {
		requireNoDeadlockFound(t, start.Add(200*time.Millisecond))
	}
}
