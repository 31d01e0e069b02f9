package queue_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestEngine_SwitchRacesClaims: a Parallel pool (cap 5) with 5 items in
// flight is switched to FIFO or LIFO, or its cap lowered to 2, while
// workers on several engines (two stores on one SQLite file; three
// engines on one PostgreSQL schema, each with its own idea of the pool
// from its last claim) claim and complete its items, and the 5 are
// completed one by one around the update. DESIGN: the switch preempts
// nothing, and no new dispatch until in flight is below the new cap (so a
// pool switched to FIFO dispatches nothing until none is in flight), the
// next dispatch in the new order. Checked for every claim that started
// after the update returned (TryDequeueN of 1 to 3): the leases held when it returned (each
// counted from the return of its claim to the start of its Complete, so
// never more than are really in flight) are at most the new cap, and in a
// serial pool its item is the oldest (FIFO) or newest (LIFO) not claimed
// yet. (Every item has a random priority, which Parallel would follow.)
func TestEngine_SwitchRacesClaims(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		u    pool.UpdateParams
		cap  int
	}{
		{"ToFIFO", pool.UpdateParams{Type: pqPtr(pool.FIFO)}, 1},
		{"ToLIFO", pool.UpdateParams{Type: pqPtr(pool.LIFO)}, 1},
		{"CapTo2", pool.UpdateParams{MaxParallelItems: pqPtr(2)}, 2},
	}
	opts := queue.Options{LeaseTimeout: time.Minute, PollInterval: 20 * time.Millisecond}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			t.Run("SQLite", func(t *testing.T) {
				t.Parallel()
				path := filepath.Join(t.TempDir(), "shared.db")
				engines := []*queue.Engine{openEngine(t, openFileStore(t, path), opts), openEngine(t, openFileStore(t, path), opts)}
				for round := range 8 {
					switchRound(t, engines, tc.u, tc.cap, round)
				}
			})
			t.Run("PostgreSQL", func(t *testing.T) {
				url := pgtest.URL(t)
				t.Parallel()
				engines, _ := pgEngines(t, url, 3, opts)
				for round := range 8 {
					switchRound(t, engines, tc.u, tc.cap, round)
				}
			})
		})
	}
}

// switchRound runs one round of TestEngine_SwitchRacesClaims on a new
// pool.
func switchRound(t *testing.T, engines []*queue.Engine, u pool.UpdateParams, newCap, round int) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(round), 7))
	boss := engines[0]
	p, err := boss.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("switch %d", round), Description: "d",
		Type: pool.Parallel, MaxParallelItems: pqPtr(5)})
	require.NoError(t, err)
	batch := newItems(400)
	for i := range batch {
		batch[i].Priority = rng.IntN(100)
	}
	_, err = boss.Add(ctx, p.UUID, batch...)
	require.NoError(t, err)
	var ids []int64 // in insertion order
	for _, it := range allItems(ctx, t, boss, p.UUID, 100) {
		ids = append(ids, it.ID)
	}
	var first []*queue.Lease
	for i := range 5 { // every engine learns the pool as Parallel, cap 5
		first = append(first, mustTry(t, engines[i%len(engines)], p.UUID))
	}

	var (
		held     atomic.Int64 // leases between their claim's return and their Complete
		updated  atomic.Bool  // the update has returned
		stop     atomic.Bool
		mu       sync.Mutex
		claimed  = map[int64]bool{}
		problems []string
		after    int // claims started after the update
	)
	held.Store(5)
	for _, l := range first {
		claimed[l.ItemID] = true
	}
	problem := func(format string, args ...any) {
		mu.Lock()
		problems = append(problems, fmt.Sprintf(format, args...))
		mu.Unlock()
	}
	serial := u.Type != nil && *u.Type != pool.Parallel
	var wg sync.WaitGroup
	for w := range 6 {
		eng := engines[w%len(engines)]
		wg.Go(func() {
			wr := rand.New(rand.NewPCG(uint64(round), uint64(w)))
			for !stop.Load() {
				late := updated.Load()
				ls, err := queue.TryDequeueN(ctx, eng, p.UUID, 1+wr.IntN(3))
				if errors.Is(err, queue.ErrAtCapacity) || errors.Is(err, queue.ErrEmpty) {
					time.Sleep(50 * time.Microsecond)
					continue
				}
				if err != nil {
					problem("worker %d: %v", w, err)
					return
				}
				n := held.Add(int64(len(ls)))
				mu.Lock()
				if n > 5 {
					problems = append(problems, fmt.Sprintf("%d leases held, cap 5", n))
				}
				if late {
					after++
					if n > int64(newCap) {
						problems = append(problems, fmt.Sprintf("a claim after the update: %d leases held, new cap %d", n, newCap))
					}
					if serial && len(ls) > 1 {
						problems = append(problems, fmt.Sprintf("%s: %d claimed at once", *u.Type, len(ls)))
					}
					if serial {
						l := ls[0]
						unclaimed := slices.DeleteFunc(slices.Clone(ids), func(id int64) bool { return claimed[id] })
						i := 0
						if *u.Type == pool.LIFO {
							i = len(unclaimed) - 1
						}
						if unclaimed[i] != l.ItemID {
							problems = append(problems, fmt.Sprintf("%s: claimed item %d, want %d", *u.Type, l.ItemID, unclaimed[i]))
						}
					}
				}
				for _, l := range ls {
					claimed[l.ItemID] = true
				}
				mu.Unlock()
				for _, l := range ls {
					time.Sleep(time.Duration(wr.IntN(300)) * time.Microsecond)
					held.Add(-1)
					if err := eng.Complete(ctx, l, "answered"); err != nil {
						problem("worker %d: complete: %v", w, err)
						return
					}
				}
			}
		})
	}
	at := rng.IntN(len(first)) // how many of the first leases are completed before the update
	for i, l := range first {
		if i == at {
			_, err := engines[len(engines)-1].UpdatePool(ctx, p.UUID, u)
			require.NoError(t, err)
			updated.Store(true)
		}
		time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
		held.Add(-1)
		require.NoError(t, engines[i%len(engines)].Complete(ctx, l, "answered"))
	}
	waitUntil(5*time.Second, func() bool { // a few claims in the new order, then stop
		mu.Lock()
		defer mu.Unlock()
		return after >= 3
	})
	stop.Store(true)
	wg.Wait()
	require.Empty(t, problems, "round %d (update after %d of the first completed)", round, at)
	require.Positive(t, after, "round %d: no claim after the update (%d of %d items claimed)", round, len(claimed), len(ids))
}
