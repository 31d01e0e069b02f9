package queue_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_SmallConnectionPool: a Store of one or two connections
// (the listener has one of its own) under a Work of 32 handlers whose calls
// outlast their lease (each lease lives on its extensions alone), handlers
// that extend their leases themselves too, blocked Dequeues on another
// pool, an Add and settlements from other goroutines, then Close. Every
// call shares the connection(s): nothing deadlocks, no lease ends because
// its extension waited for a connection, every contact is called once, and
// Close returns at once.
func TestPostgres_SmallConnectionPool(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, conns := range []int{1, 2} {
		t.Run(fmt.Sprintf("MaxConns%d", conns), func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t, url, postgres.Options{MaxConns: conns})
			// 2 s: with 1 s, under -race and four other tests beside it
			// on 2 cores, 9 leases of 64 ended while their extensions
			// waited (for the CPU as much as for the connection).
			const lease = 2 * time.Second
			eng, err := queue.New(st, queue.Options{LeaseTimeout: lease, PollInterval: 50 * time.Millisecond})
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			work, err := eng.CreatePool(ctx, pool.CreateParams{Name: "work", Description: "d", Type: pool.Parallel, MaxParallelItems: pqPtr(100)})
			require.NoError(t, err)
			side, err := eng.CreatePool(ctx, pool.CreateParams{Name: "side", Description: "d", Type: pool.Parallel, MaxParallelItems: pqPtr(100)})
			require.NoError(t, err)
			const items = 64
			_, err = eng.Add(ctx, work.UUID, newItems(items)...)
			require.NoError(t, err)

			var mu sync.Mutex
			calls := map[uuid.UUID]int{}
			var expired, errs atomic.Int64
			var firstErr atomic.Value
			handler := func(hctx context.Context, l *queue.Lease) error {
				mu.Lock()
				calls[l.ContactUUID]++
				n := len(calls)
				mu.Unlock()
				// A call of 1.5 leases: it lives on the heartbeat's extensions.
				end := time.Now().Add(lease * 3 / 2)
				if n%3 == 0 { // and some extend their leases themselves
					time.Sleep(lease / 2)
					if err := eng.Extend(hctx, l, lease); err != nil {
						return err
					}
				}
				select {
				case <-time.After(time.Until(end)):
					return nil
				case <-hctx.Done():
					return hctx.Err()
				}
			}
			wctx, stopWork := context.WithCancel(ctx)
			workDone := make(chan error, 1)
			go func() {
				workDone <- eng.Work(wctx, handler, queue.WorkOptions{
					Pools: []uuid.UUID{work.UUID}, Workers: 32, Heartbeat: lease / 4,
					OnEvent: func(ev queue.Event) {
						switch ev.Kind {
						case queue.EventExpired:
							expired.Add(1)
						case queue.EventError:
							errs.Add(1)
							firstErr.CompareAndSwap(nil, ev.Err)
						}
					},
				})
			}()

			// Blocked Dequeues on the side pool, settled by other
			// goroutines as an Add lets them through.
			const waiters = 4
			var wg sync.WaitGroup
			sideErrs := make(chan error, waiters)
			for range waiters {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l, err := eng.Dequeue(ctx, side.UUID)
					if err != nil {
						sideErrs <- fmt.Errorf("dequeue: %w", err)
						return
					}
					settled := make(chan error, 1)
					go func() { settled <- eng.Complete(ctx, l, "") }()
					if err := <-settled; err != nil {
						sideErrs <- fmt.Errorf("complete: %w", err)
					}
				}()
			}
			time.Sleep(lease)
			_, err = eng.Add(ctx, side.UUID, newItems(waiters)...)
			require.NoError(t, err)
			wg.Wait()
			close(sideErrs)
			for err := range sideErrs {
				require.NoError(t, err)
			}

			require.Eventually(t, func() bool {
				d, err := eng.Pool(ctx, work.UUID)
				return err == nil && d.StatusCounts[pool.StatusCompleted] == items
			}, 45*time.Second, 20*time.Millisecond, "every item completed")
			stopWork()
			require.NoError(t, <-workDone)
			start := time.Now()
			require.NoError(t, eng.Close())
			require.Less(t, time.Since(start), time.Second, "Close")

			require.Zero(t, expired.Load(), "leases lost")
			if e := firstErr.Load(); e != nil {
				t.Errorf("%d EventErrors, the first: %v", errs.Load(), e.(error))
			}
			require.Len(t, calls, items)
			for c, n := range calls {
				require.Equal(t, 1, n, "calls of %s", c)
			}
		})
	}
}

// TestPostgres_OneConnectionBusyCallsKeepTheirDeadlines: the one
// connection of a Store (MaxConns 1) is held by a write waiting for a lock
// another session holds (up to LockTimeout, 5 s). Every other call, read or
// write, made meanwhile with a deadline of 200 ms returns at its deadline
// with context.DeadlineExceeded, rather than wait for the connection; and
// once the lock is free, the engine goes on.
func TestPostgres_OneConnectionBusyCallsKeepTheirDeadlines(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 1, LockTimeout: 5 * time.Second})
	eng := openEngine(t, st, queue.Options{LeaseTimeout: time.Minute})
	held, err := eng.CreatePool(ctx, pool.CreateParams{Name: "held", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	other, err := eng.CreatePool(ctx, pool.CreateParams{Name: "other", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, other.UUID, newItems(2)...)
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, other.UUID)
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{st.Schema(), "items"}.Sanitize()+" IN EXCLUSIVE MODE")
	require.NoError(t, err)
	blocked := make(chan error, 1)
	go func() { _, err := eng.Add(ctx, held.UUID, newItems(1)...); blocked <- err }()
	require.Len(t, awaitWaiters(t, tx, 1, 5*time.Second, "the Add, on the store's one connection"), 1)

	calls := []struct {
		name string
		call func(context.Context) error
	}{
		{"Pool", func(ctx context.Context) error { _, err := eng.Pool(ctx, other.UUID); return err }},
		{"Items", func(ctx context.Context) error { _, err := eng.Items(ctx, other.UUID, pool.ItemQuery{}); return err }},
		{"Add", func(ctx context.Context) error { _, err := eng.Add(ctx, other.UUID, newItems(1)...); return err }},
		{"TryDequeue", func(ctx context.Context) error { _, err := eng.TryDequeue(ctx, other.UUID); return err }},
		{"Dequeue", func(ctx context.Context) error { _, err := eng.Dequeue(ctx, other.UUID); return err }},
		{"Extend", func(ctx context.Context) error { return eng.Extend(ctx, l, time.Minute) }},
	}
	for _, c := range calls {
		cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start := time.Now()
		err := c.call(cctx)
		took := time.Since(start)
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded, "%s", c.name)
		require.Less(t, took, time.Second, "%s returned after %v", c.name, took)
	}

	require.NoError(t, tx.Rollback(ctx))
	require.NoError(t, <-blocked, "the Add that waited for the lock")
	require.NoError(t, eng.Complete(ctx, l, ""), "the engine goes on")
}
