package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestBackup_VacuumIntoWhileWriting: the README's backup, VACUUM INTO from
// another connection while an engine adds an item every 2 ms, ends in one
// pass (one read transaction: the commits beside it do not start it over)
// without holding the writer up, and its file opens (QuickCheck) and
// checks whole, with every item acknowledged before it began and none
// acknowledged after it ended.
func TestBackup_VacuumIntoWhileWriting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, sqlite.Options{})
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "backed up", Description: "d"})
	require.NoError(t, err)
	for range 10 {
		items := make([]pool.NewItem, 2000)
		for i := range items {
			items[i] = pool.NewItem{ContactUUID: uuid.New(), Contact: pool.Contact{Name: "Ada Lovelace", PhoneNumber: "+15551234567"}}
		}
		_, err := eng.Add(ctx, p.UUID, items...)
		require.NoError(t, err)
	}
	var acked, slowest atomic.Int64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			began := time.Now()
			if _, err := eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()}); err != nil {
				t.Errorf("an Add beside the backup: %v", err)
				return
			}
			acked.Add(1)
			if took := int64(time.Since(began)); took > slowest.Load() {
				slowest.Store(took)
			}
		}
	}()
	time.Sleep(100 * time.Millisecond)

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	backup := filepath.Join(t.TempDir(), "backup.db")
	before := acked.Load()
	start := time.Now()
	_, err = db.Exec(`VACUUM INTO ?`, backup)
	took := time.Since(start)
	after := acked.Load()
	time.Sleep(100 * time.Millisecond) // Adds go on after it too
	close(stop)
	<-stopped
	require.NoError(t, err)
	t.Logf("VACUUM INTO took %v beside %d Adds (the slowest %v)", took.Round(time.Millisecond), after-before, time.Duration(slowest.Load()).Round(time.Millisecond))
	require.Greater(t, after, before, "the writer went on meanwhile")
	require.Less(t, took, 10*time.Second)

	restored, err := sqlite.Open(ctx, backup, sqlite.Options{QuickCheck: true})
	require.NoError(t, err)
	defer restored.Close()
	require.NoError(t, restored.Check(ctx))
	reng, err := queue.New(restored, queue.Options{})
	require.NoError(t, err)
	defer reng.Close()
	d, err := reng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.GreaterOrEqual(t, int64(d.ContactsCount), 20_000+before, "every item acknowledged before the backup began")
	require.LessOrEqual(t, int64(d.ContactsCount), 20_000+after, "no item acknowledged after it ended")
}
