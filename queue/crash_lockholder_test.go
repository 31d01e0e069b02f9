package queue_test

// TestCrash_LockHolderKilled: a process killed with SIGKILL inside a write
// transaction that holds the SQLite file's write lock (with enough written
// to spill into the WAL) or a PostgreSQL pool's lock (row or advisory)
// holds up another process's claims on the pool only until the kill: they
// then go on within a bounded time, and nothing the killed transaction
// wrote is there. internal/lockholder's lock is given back politely
// (ROLLBACK); this one is not.
//
// The child is this test binary re-executed with
// -test.run=^TestCrash_LockHolderKilled$ and POOLQ_CRASH_HOLDER set to the
// store; the test then holds the lock instead of running its subtests.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

const (
	crashHolderEnv      = "POOLQ_CRASH_HOLDER" // sqlite, postgres-row or postgres-advisory
	crashHolderEnvWhere = "POOLQ_CRASH_HOLDER_WHERE"
	crashHolderEnvPool  = "POOLQ_CRASH_HOLDER_POOL"
)

// crashHolderOptions are the PostgreSQL options of each kind of lock.
var crashHolderOptions = map[string]postgres.Options{
	"postgres-row":      {Locking: postgres.RowLock, LeaseGrace: -1},
	"postgres-advisory": {LeaseGrace: -1},
}

func TestCrash_LockHolderKilled(t *testing.T) {
	if kind := os.Getenv(crashHolderEnv); kind != "" {
		crashHoldLock(t, kind)
		return
	}
	if testing.Short() {
		t.Skip("kills child processes; skipped with -short")
	}
	t.Parallel()
	for _, kind := range []string{"sqlite", "postgres-row", "postgres-advisory"} {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			var (
				st    store.Store
				where string
			)
			if kind == "sqlite" {
				where = filepath.Join(t.TempDir(), "held.db")
				st = openFileStore(t, where)
			} else {
				pst := pgtest.Open(t, pgtest.URL(t), crashHolderOptions[kind])
				st, where = pst, pst.Schema()
			}
			eng := openEngine(t, st, queue.Options{})
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "held pool", Description: "x", Type: pool.FIFO})
			require.NoError(t, err)
			_, err = eng.Add(ctx, p.UUID, newItems(3)...)
			require.NoError(t, err)

			var out crashOutput
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrash_LockHolderKilled$", "-test.v")
			cmd.Env = append(os.Environ(), crashHolderEnv+"="+kind, crashHolderEnvWhere+"="+where, crashHolderEnvPool+"="+p.UUID.String())
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Start())
			exited := make(chan struct{})
			go func() { _ = cmd.Wait(); close(exited) }()
			t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })
			require.True(t, waitUntil(30*time.Second, func() bool { return strings.Contains(out.String(), "HOLDING") }),
				"the child never held the lock:\n%s", out.String())

			// A claim on the pool waits behind the holder.
			type result struct {
				l   *queue.Lease
				err error
				at  time.Time
			}
			done := make(chan result, 1)
			go func() {
				l, err := eng.TryDequeue(ctx, p.UUID)
				done <- result{l, err, time.Now()}
			}()
			select {
			case r := <-done:
				t.Fatalf("the claim did not wait for the holder: %+v", r)
			case <-time.After(700 * time.Millisecond):
			}
			killedAt := time.Now()
			require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
			<-exited
			select {
			case r := <-done:
				require.NoError(t, r.err, "the claim after the holder was killed")
				t.Logf("%s: the claim went through %v after the kill", kind, r.at.Sub(killedAt))
				require.Less(t, r.at.Sub(killedAt), 3*time.Second, "the claim after the holder was killed")
				require.NoError(t, eng.Complete(ctx, r.l, "ok"))
			case <-time.After(20 * time.Second):
				t.Fatalf("%s: the claim still waits 20 s after the holder was killed", kind)
			}
			d, err := eng.Pool(ctx, p.UUID)
			require.NoError(t, err)
			require.Equal(t, 3, d.ContactsCount, "the killed transaction's items")
			require.Equal(t, countStatuses(allItems(ctx, t, eng, p.UUID, 100)), d.StatusCounts, "status_counts vs a recount")
			_, err = eng.Add(ctx, p.UUID, newItems(2)...)
			require.NoError(t, err)
			if kind == "sqlite" {
				crashIntegrity(t, where)
			}
		})
	}
}

// crashHoldLock is the child: it opens the store, begins a write
// transaction that inserts items into the pool (taking the pool's lock on
// PostgreSQL, the file's write lock on SQLite), says HOLDING on stdout and
// waits to be killed.
func crashHoldLock(t *testing.T, kind string) {
	ctx := context.Background()
	where := os.Getenv(crashHolderEnvWhere)
	poolID := uuid.MustParse(os.Getenv(crashHolderEnvPool))
	var (
		st  store.Store
		err error
	)
	if kind == "sqlite" {
		st, err = sqlite.Open(ctx, where, sqlite.Options{})
	} else {
		opts := crashHolderOptions[kind]
		opts.Schema = where
		st, err = postgres.Open(ctx, os.Getenv(pgtest.EnvURL), opts)
	}
	require.NoError(t, err)
	err = st.Write(ctx, func(tx store.Tx) error {
		items := make([]pool.Item, 0, 2000)
		for i := range cap(items) { // enough pages to spill into the WAL on SQLite
			items = append(items, pool.Item{ContactUUID: uuid.New(), Status: pool.StatusPending,
				AddedAt: time.Unix(int64(i), 0), Contact: pool.Contact{Name: fmt.Sprintf("held %d %s", i, uuid.NewString())}})
		}
		if _, err := tx.InsertItems(ctx, poolID, items); err != nil {
			return err
		}
		fmt.Println("HOLDING")
		time.Sleep(5 * time.Minute)
		return nil
	})
	require.NoError(t, err)
}
