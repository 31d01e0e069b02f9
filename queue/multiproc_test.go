package queue_test

// TestMultiProcess_SharedFile runs several OS processes (this test binary
// re-executed), each with its own *sqlite.Store and queue.Engine on one
// file, dispatching a FIFO pool and a Parallel pool at once while one
// goroutine of each process rewrites the pools' rows and adds items. The
// processes count the leases they hold in a counter shared through a
// memory-mapped file (incremented after a claim returns, decremented
// before its settlement is sent: never above the real number in flight).
// The parent then checks: the shared counters never passed the caps, the
// FIFO pool's items were started in insertion order, one at a time (each
// started at or after the previous one completed), status_counts agree
// with a recount, no attempt beyond the ceiling, and no child saw an
// error other than the documented ErrLockTimeout.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const (
	mpEnvChild = "POOLQ_MP_CHILD"
	mpEnvDB    = "POOLQ_MP_DB"
	mpEnvF     = "POOLQ_MP_F"
	mpEnvP     = "POOLQ_MP_P"
	mpEnvShm   = "POOLQ_MP_SHM"
	mpEnvCheck = "POOLQ_MP_CHECK"
	mpEnvRun   = "POOLQ_MP_RUN"

	mpCapP       = 3
	mpMaxRetries = 2
	mpChildren   = 3
)

func mpHold(c []int32, i int, n int32) {
	v := atomic.AddInt32(&c[i], n)
	for {
		m := atomic.LoadInt32(&c[i+1])
		if v <= m || atomic.CompareAndSwapInt32(&c[i+1], m, v) {
			return
		}
	}
}

func TestMultiProcess_SharedFile(t *testing.T) {
	if os.Getenv(mpEnvChild) != "" {
		mpChild(t)
		return
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, check := range []bool{true, false} {
		t.Run(fmt.Sprintf("CheckCache=%v", check), func(t *testing.T) {
			mpRun(t, check)
		})
	}
}

func mpRun(t *testing.T, check bool) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "shared.db")
	shm := filepath.Join(dir, "counters")
	counters := mpCounters(t, shm)
	st, err := sqlite.Open(ctx, path, sqlite.Options{CheckCache: check})
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute})
	require.NoError(t, err)
	f, err := eng.CreatePool(ctx, pool.CreateParams{Name: "fifo", Description: "serial", Type: pool.FIFO})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "parallel", Description: "capped", Type: pool.Parallel,
		MaxParallelItems: pqPtr(mpCapP), MaxRetries: pqPtr(mpMaxRetries)})
	require.NoError(t, err)
	_, err = eng.Add(ctx, f.UUID, newItems(300)...)
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(300)...)
	require.NoError(t, err)

	var wg sync.WaitGroup
	outs := make([]crashOutput, mpChildren)
	errs := make([]error, mpChildren)
	for i := range mpChildren {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMultiProcess_SharedFile$", "-test.v")
		cmd.Env = append(os.Environ(), mpEnvChild+"="+strconv.Itoa(i), mpEnvDB+"="+path, mpEnvF+"="+f.UUID.String(),
			mpEnvP+"="+p.UUID.String(), mpEnvShm+"="+shm, mpEnvCheck+"="+strconv.FormatBool(check), mpEnvRun+"=4s")
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		require.NoError(t, cmd.Start())
		wg.Go(func() { errs[i] = cmd.Wait() })
	}
	// The parent writes too: pool rows and adds, as a fourth process would.
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	pwg.Go(func() {
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
			}
			_, err := eng.UpdatePool(ctx, p.UUID, pool.UpdateParams{Name: pqPtr(fmt.Sprintf("parallel %d", n))})
			if err != nil && !errors.Is(err, store.ErrLockTimeout) {
				t.Errorf("parent: update pool: %v", err)
				return
			}
		}
	})
	wg.Wait()
	close(stop)
	pwg.Wait()
	for i := range mpChildren {
		require.NoError(t, errs[i], "child %d:\n%s", i, outs[i].String())
		require.Contains(t, outs[i].String(), "mp child done", "child %d:\n%s", i, outs[i].String())
	}
	t.Logf("max in flight: F %d, P %d; lock timeouts %d", counters[1], counters[3], counters[4])
	require.LessOrEqual(t, counters[1], int32(1), "FIFO pool: leases held at once across processes")
	require.LessOrEqual(t, counters[3], int32(mpCapP), "Parallel pool: leases held at once across processes")

	for _, id := range []uuid.UUID{f.UUID, p.UUID} {
		items := allItems(ctx, t, eng, id, 100)
		d, err := eng.Pool(ctx, id)
		require.NoError(t, err)
		require.Equal(t, countStatuses(items), d.StatusCounts, "status_counts vs a recount")
		require.Equal(t, len(items), d.ContactsCount)
		for _, it := range items {
			require.LessOrEqual(t, it.Attempts, mpMaxRetries+1)
			require.False(t, it.Status.InFlight(), "an item is left in flight: %+v", it)
		}
		if id != f.UUID {
			continue
		}
		started := 0
		var last *pool.Item
		for i := range items {
			it := &items[i]
			if it.StartedAt == nil {
				last = nil
				for _, rest := range items[i:] {
					require.Nil(t, rest.StartedAt, "FIFO: item %d started after an earlier one that never was", rest.ID)
				}
				break
			}
			started++
			require.Equal(t, pool.StatusCompleted, it.Status)
			if last != nil {
				require.False(t, it.StartedAt.Before(*last.CompletedAt),
					"FIFO: item %d started at %v, before item %d (earlier) completed at %v", it.ID, it.StartedAt, last.ID, last.CompletedAt)
			}
			last = it
		}
		t.Logf("FIFO: %d of %d items dispatched", started, len(items))
		require.Positive(t, started)
	}
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
}

// mpChild is one process's workload.
func mpChild(t *testing.T) {
	ctx := context.Background()
	me, _ := strconv.Atoi(os.Getenv(mpEnvChild))
	check, _ := strconv.ParseBool(os.Getenv(mpEnvCheck))
	run, err := time.ParseDuration(os.Getenv(mpEnvRun))
	require.NoError(t, err)
	fID := uuid.MustParse(os.Getenv(mpEnvF))
	pID := uuid.MustParse(os.Getenv(mpEnvP))
	c := mpCounters(t, os.Getenv(mpEnvShm))
	st, err := sqlite.Open(ctx, os.Getenv(mpEnvDB), sqlite.Options{CheckCache: check})
	require.NoError(t, err)
	eng, err := queue.New(st, queue.Options{LeaseTimeout: time.Minute, RetryDelay: time.Millisecond})
	require.NoError(t, err)

	deadline := time.Now().Add(run)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		if first == nil {
			first = fmt.Errorf(format, args...)
		}
		mu.Unlock()
	}
	alive := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return first == nil && time.Now().Before(deadline)
	}
	// ok reports whether err is nothing, or a documented "try again".
	ok := func(what string, err error, allowed ...error) bool {
		if err == nil {
			return true
		}
		if errors.Is(err, store.ErrLockTimeout) {
			atomic.AddInt32(&c[4], 1)
			return false
		}
		if isOneOf(err, allowed...) {
			return false
		}
		fail("child %d: %s: %v", me, what, err)
		return false
	}
	settle := func(l *queue.Lease, complete bool) {
		for {
			var err error
			if complete {
				err = eng.Complete(ctx, l, "ok")
			} else {
				err = eng.Fail(ctx, l, queue.Failure{Note: "busy"})
			}
			if ok("settle", err) || !errors.Is(err, store.ErrLockTimeout) {
				return
			}
		}
	}
	for w := range 2 { // FIFO workers
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(me), uint64(w)))
			for alive() {
				l, err := eng.TryDequeue(ctx, fID)
				if !ok("dequeue F", err, queue.ErrEmpty, queue.ErrAtCapacity) {
					time.Sleep(time.Millisecond)
					continue
				}
				mpHold(c, 0, 1)
				time.Sleep(time.Duration(rng.IntN(1500)) * time.Microsecond)
				atomic.AddInt32(&c[0], -1)
				settle(l, true)
			}
		})
	}
	for w := range 3 { // Parallel workers
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(me), uint64(10+w)))
			for alive() {
				ls, err := queue.TryDequeueN(ctx, eng, pID, 1+rng.IntN(3))
				if !ok("dequeue P", err, queue.ErrEmpty, queue.ErrAtCapacity) {
					time.Sleep(time.Millisecond)
					continue
				}
				mpHold(c, 2, int32(len(ls)))
				time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
				atomic.AddInt32(&c[2], -int32(len(ls)))
				for _, l := range ls {
					settle(l, rng.IntN(3) > 0)
				}
			}
		})
	}
	wg.Go(func() { // rows and adds
		rng := rand.New(rand.NewPCG(uint64(me), 99))
		for n := 0; alive(); n++ {
			switch rng.IntN(4) {
			case 0:
				_, err := eng.UpdatePool(ctx, fID, pool.UpdateParams{Description: pqPtr(fmt.Sprintf("serial %d/%d", me, n))})
				ok("update F", err)
			case 1:
				_, err := eng.UpdatePool(ctx, pID, pool.UpdateParams{IsActive: pqPtr(n%2 == 0)})
				ok("update P", err)
			case 2:
				_, err := eng.Add(ctx, fID, newItems(1+rng.IntN(3))...)
				ok("add F", err)
			default:
				_, err := eng.Add(ctx, pID, newItems(1+rng.IntN(5))...)
				ok("add P", err)
			}
			time.Sleep(time.Duration(rng.IntN(4)) * time.Millisecond)
		}
	})
	wg.Wait()
	require.NoError(t, first)
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	t.Log("mp child done")
}
