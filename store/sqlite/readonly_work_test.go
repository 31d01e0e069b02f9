package sqlite_test

// Review (r-full): Work when the database refuses writes while a handler
// runs: its settlement fails. The writer is made read-only with PRAGMA
// query_only on its held connection: every write transaction then fails at
// BEGIN IMMEDIATE with SQLITE_READONLY, as on a file that became read-only
// (a remount, a full quota); reads go on.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// setReadOnly makes st's writer refuse (on) or take (off) writes.
func setReadOnly(t *testing.T, st *sqlite.Store, on bool) {
	v := "0"
	if on {
		v = "1"
	}
	_, err := sqlite.WriterConn(st).ExecContext(context.Background(), `PRAGMA query_only = `+v)
	if err != nil {
		t.Errorf("query_only: %v", err)
	}
}

func isReadOnly(err error) bool {
	var se *msqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_READONLY
}

// workEvents records Work's events.
type workEvents struct {
	mu        sync.Mutex
	kinds     []queue.EventKind
	settleErr []error // EventErrors with a lease: a settlement or an extension that failed
	claimErr  []error // EventErrors without one: a claim that failed
}

func (w *workEvents) on(ev queue.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.kinds = append(w.kinds, ev.Kind)
	if ev.Kind == queue.EventError {
		if ev.Lease.Token == 0 {
			w.claimErr = append(w.claimErr, ev.Err)
		} else {
			w.settleErr = append(w.settleErr, ev.Err)
		}
	}
}

func (w *workEvents) counts() (settle, claim int, kinds []queue.EventKind) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.settleErr), len(w.claimErr), append([]queue.EventKind(nil), w.kinds...)
}

// TestWork_SettleOnReadOnlyDatabase: a handler's call went through, and the
// database refuses writes when its result is written. As Work's doc says,
// the result is written again every quarter Heartbeat while the lease
// lasts: once writes are back it is written (the contact is not called
// again); if they never come back, the tries stop at the lease's end, the
// item stays in flight under its lease (no one else calls it before then),
// the claims that fail meanwhile do not turn into a busy loop, and Work
// returns within its grace.
func TestWork_SettleOnReadOnlyDatabase(t *testing.T) {
	t.Parallel()
	const lease = 1200 * time.Millisecond // Heartbeat lease/3: a try every 100 ms
	setup := func(t *testing.T) (*sqlite.Store, *queue.Engine, pool.Pool) {
		st, _ := MustOpenFile(t, checked)
		eng, err := queue.New(st, queue.Options{LeaseTimeout: lease, PollInterval: 200 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { eng.Close() })
		ctx := context.Background()
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "read-only", Description: "settled on a read-only database"})
		require.NoError(t, err)
		_, err = eng.Add(ctx, p.UUID, newContacts(1)...)
		require.NoError(t, err)
		return st, eng, p
	}

	t.Run("WritesComeBack", func(t *testing.T) {
		t.Parallel()
		st, eng, p := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var ev workEvents
		var calls atomic.Int32
		done := make(chan error, 1)
		go func() {
			done <- eng.Work(ctx, func(context.Context, *queue.Lease) error {
				calls.Add(1)
				setReadOnly(t, st, true)
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: ev.on})
		}()
		require.Eventually(t, func() bool { n, _, _ := ev.counts(); return n >= 2 }, 5*time.Second, time.Millisecond,
			"the settlement fails and is tried again")
		ev.mu.Lock()
		for _, err := range ev.settleErr {
			require.True(t, isReadOnly(err), "the error says the database is read-only: %v", err)
		}
		ev.mu.Unlock()
		setReadOnly(t, st, false)
		require.Eventually(t, func() bool {
			_, _, kinds := ev.counts()
			return kinds[len(kinds)-1] == queue.EventCompleted
		}, 5*time.Second, time.Millisecond, "the result is written once writes are back")
		cancel()
		require.NoError(t, <-done)
		require.Equal(t, int32(1), calls.Load(), "the contact is called once")
		items, err := eng.Items(context.Background(), p.UUID, pool.ItemQuery{})
		require.NoError(t, err)
		require.Equal(t, pool.StatusCompleted, items.Data[0].Status)
		require.Equal(t, 1, items.Data[0].Attempts)
	})

	t.Run("WritesStayRefused", func(t *testing.T) {
		t.Parallel()
		st, eng, p := setup(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var ev workEvents
		var calls atomic.Int32
		leased := make(chan queue.Lease, 1)
		done := make(chan error, 1)
		go func() {
			done <- eng.Work(ctx, func(_ context.Context, l *queue.Lease) error {
				calls.Add(1)
				leased <- *l
				setReadOnly(t, st, true)
				return nil
			}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, OnEvent: ev.on, Grace: 500 * time.Millisecond})
		}()
		l := <-leased
		// The tries stop at the lease's end: wait past it, and a little.
		time.Sleep(time.Until(l.ExpiresAt) + 300*time.Millisecond)
		settle, claim, _ := ev.counts()
		time.Sleep(300 * time.Millisecond)
		settle2, claim2, _ := ev.counts()
		require.Equal(t, settle, settle2, "settlement tried again after the lease's end")
		require.LessOrEqual(t, settle, int(lease/(lease/12))+2, "a try every quarter Heartbeat at most")
		require.GreaterOrEqual(t, settle, 3)
		t.Logf("settlement errors %d; claim errors %d, then %d, in 0.3 s", settle, claim, claim2)
		// The lease has ended unsettled: each claim, a write, fails;
		// they must be paced (PollInterval, 200 ms), not a busy loop.
		require.LessOrEqual(t, claim2-claim, 5, "claims on a read-only database in 0.3 s")

		start := time.Now()
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Fatal("Work did not return on a read-only database")
		}
		require.Less(t, time.Since(start), 2*time.Second, "Work returns within its grace")
		require.Equal(t, int32(1), calls.Load(), "no second call while the database refuses writes")

		// Writes are back: the item is still the lease's until it is
		// claimed again (its expiry counts a failed attempt then).
		setReadOnly(t, st, false)
		items, err := eng.Items(context.Background(), p.UUID, pool.ItemQuery{})
		require.NoError(t, err)
		require.Equal(t, pool.StatusProcessing, items.Data[0].Status)
		require.Equal(t, 1, items.Data[0].Attempts)
		require.ErrorIs(t, eng.Complete(context.Background(), &l, "late"), queue.ErrLeaseLost)
	})
}
