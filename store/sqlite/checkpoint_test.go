package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// maxWAL is the bound the -wal file must stay under while the log has a
// reader or another process's writer at nearly every moment: twice
// RestartFrames pages of 4 KiB, the size past which the checkpointer
// restarts the log, and as much again for what is written before a restart
// gets through (the next tick, a round that meets the other Store's
// checkpoint, a restart that gives up). The tests below write about three
// times maxWAL to the log: without restarts it outgrows maxWAL within a
// second or two.
const maxWAL = 2 * sqlite.RestartFrames * 4096

// cycle writes one transaction to st, a dispatcher's: five items added,
// and the five oldest due items completed. It writes about 14 pages to the
// log.
func cycle(ctx context.Context, st *sqlite.Store, poolID uuid.UUID) error {
	return st.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.InsertItems(ctx, poolID, pendingItems(5)); err != nil {
			return err
		}
		due, err := tx.Due(ctx, poolID, pool.FIFO, testT0, 5)
		if err != nil {
			return err
		}
		for _, it := range due {
			from := it.Status
			it.Status = pool.StatusCompleted
			if err := tx.UpdateItem(ctx, from, it); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeCycles runs n cycles on st, one a millisecond, unless the -wal file
// at path outgrows maxWAL first, and returns the largest size the file had.
func writeCycles(st *sqlite.Store, poolID uuid.UUID, path string, n int) (most int64, err error) {
	ctx := context.Background()
	for range n {
		if err := cycle(ctx, st, poolID); err != nil {
			return most, err
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			return most, err
		}
		if most = max(most, fi.Size()); most > maxWAL {
			return most, nil
		}
		time.Sleep(time.Millisecond)
	}
	return most, nil
}

// TestCheckpoint_TwoStoresRestartTheLog: two Stores on one file, as two
// processes, each committing every millisecond. A whole copy leaves the
// restart of the log to the next writer, which cannot restart it while a
// reader reads it (the other Store's writer, at nearly every moment), and
// each checkpointer counted only its own Store's pages: the log grew by
// about 20 MiB a second, past 400 MiB in a longer run. The checkpointer
// now restarts a log past RestartFrames frames, whoever wrote them.
func TestCheckpoint_TwoStoresRestartTheLog(t *testing.T) {
	t.Parallel()
	a, path := MustOpenFile(t, sqlite.Options{})
	b, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })

	sizes, errs := make([]int64, 2), make([]error, 2)
	var wg sync.WaitGroup
	for i, st := range []*sqlite.Store{a, b} {
		p := insertPool(t, st)
		wg.Go(func() { sizes[i], errs[i] = writeCycles(st, p.UUID, path, 1000/raceCycles) })
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	most := max(sizes[0], sizes[1])
	t.Logf("log at most %.1f MiB; restarts %d + %d", float64(most)/(1<<20),
		sqlite.CheckpointRestarts(a), sqlite.CheckpointRestarts(b))
	require.LessOrEqual(t, most, int64(maxWAL), "the log outgrew twice RestartFrames")
}

// TestCheckpoint_OverlappingReadsRestartTheLog: in one Store, read
// transactions that overlap without pause keep the writer from ever
// restarting the log after the checkpointer's whole copies. The
// checkpointer's restart waits for the readers of the log (new ones read
// the database file meanwhile), restarts it, and holds the writers for a
// short copy.
func TestCheckpoint_OverlappingReadsRestartTheLog(t *testing.T) {
	t.Parallel()
	st, path := MustOpenFile(t, sqlite.Options{})
	_, r := sqlite.DBs(st)
	p := insertPool(t, st)
	ctx, stop := context.WithCancel(context.Background())
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			time.Sleep(time.Duration(i) * 2 * time.Millisecond) // staggered: one is always reading
			for ctx.Err() == nil && errs[i] == nil {
				errs[i] = readFor(r, 4*time.Millisecond)
			}
		})
	}
	most, err := writeCycles(st, p.UUID, path, 2000/raceCycles)
	stop()
	wg.Wait()
	require.NoError(t, err)
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	held := sqlite.RestartHeldFrames(st)
	t.Logf("log at most %.1f MiB; restarts %d, at most %d frames copied with the writers held",
		float64(most)/(1<<20), sqlite.CheckpointRestarts(st), held)
	require.LessOrEqual(t, most, int64(maxWAL), "the log outgrew twice RestartFrames")
	// What the writer commits during the last unheld pass, which copied
	// about heldPages (100): a few commits, not a round's thousands.
	require.LessOrEqual(t, held, int64(500))
}

// readFor holds a read transaction of r open for d.
func readFor(r *sql.DB, d time.Duration) error {
	tx, err := r.BeginTx(context.Background(), &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRow("SELECT count(*) FROM pools").Scan(&n); err != nil {
		return err
	}
	time.Sleep(d)
	return tx.Commit()
}
