package sqlite_test

// Review (r-full): the engine over a file whose disk is full. The disk is
// made full by capping the file at its size (PRAGMA max_page_count on the
// writer's connection): a write that needs a new page fails with
// SQLITE_FULL, as on a full disk, and SQLite may roll back the whole
// transaction by itself. Group commit must then answer every caller of the
// batch with the truth (nil only for what is in the database), leave the
// Store's cache of pool state equal to the database (check mode), and the
// engine must work again once space is back.

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// capFile makes st's disk full: its file may not grow past the pages it
// has. It returns the function that gives the space back. It runs a
// PRAGMA on the writer's held connection, which database/sql serializes
// with the Store's own statements; the PRAGMA writes nothing.
func capFile(t *testing.T, st *sqlite.Store) (uncap func()) {
	t.Helper()
	ctx := context.Background()
	wc := sqlite.WriterConn(st)
	var pages int
	require.NoError(t, wc.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages))
	_, err := wc.ExecContext(ctx, `PRAGMA max_page_count = `+strconv.Itoa(pages))
	require.NoError(t, err)
	return func() {
		t.Helper()
		_, err := wc.ExecContext(ctx, `PRAGMA max_page_count = 1073741823`)
		require.NoError(t, err)
	}
}

// isFull reports whether err carries SQLite's SQLITE_FULL.
func isFull(err error) bool {
	var se *msqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_FULL
}

// newContacts returns n new items, each a new contact.
func newContacts(n int) []pool.NewItem {
	out := make([]pool.NewItem, n)
	for i := range out {
		out[i] = pool.NewItem{ContactUUID: uuid.New(), Payload: []byte(`{"phone":"+15550100000","name":"a contact with a name long enough to fill pages"}`)}
	}
	return out
}

// holdWrites holds st's writer (a Write that waits) until the function it
// returns is called, so that the engine's callers meanwhile gather in one
// group-commit batch.
func holdWrites(t *testing.T, st *sqlite.Store) (release func()) {
	t.Helper()
	in, out, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- st.Write(context.Background(), func(store.Tx) error {
			close(in)
			<-out
			return nil
		})
	}()
	<-in
	return func() {
		close(out)
		require.NoError(t, <-done)
	}
}

// TestEngine_DiskFullBatch: callers of one group-commit batch on a full
// disk. The Adds that need space fail with an error that says the disk is
// full (SQLITE_FULL in its chain) and leave nothing. The others of the
// batch need no new page (a settlement alone goes through on the full
// disk, checked first) and succeed, as the package doc promises ("each
// operation succeeds or fails alone"): SQLite rolls the whole transaction
// back after the failed Add, and a settlement that shared its batch must
// not fail with it, or a dialer importing contacts on a full disk keeps
// failing the settlements of the calls it makes until their leases end,
// and the contacts are called again. The cache stays equal to the database
// (check mode: every later Write compares them); a Dequeue blocked
// meanwhile keeps waiting and wakes at the Add made once space is back;
// the file is sound.
func TestEngine_DiskFullBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := MustOpenFile(t, checked)
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })

	a, err := eng.CreatePool(ctx, pool.CreateParams{Name: "settled", Description: "leases settled while full", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, a.UUID, newContacts(4)...)
	require.NoError(t, err)
	leases, err := eng.DequeueN(ctx, a.UUID, 3)
	require.NoError(t, err)
	require.Len(t, leases, 3)
	b, err := eng.CreatePool(ctx, pool.CreateParams{Name: "filled", Description: "big adds while full", Type: pool.Parallel})
	require.NoError(t, err)

	type dequeued struct {
		l   *queue.Lease
		err error
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	blocked := make(chan dequeued, 1)
	go func() {
		l, err := eng.Dequeue(dctx, b.UUID)
		blocked <- dequeued{l, err}
	}()

	uncap := capFile(t, st)
	_, err = eng.Add(ctx, b.UUID, newContacts(200)...)
	require.True(t, isFull(err), "the disk is full: %v", err)
	require.NoError(t, eng.Complete(ctx, leases[2], "alone"), "a settlement alone on the full disk")
	release := holdWrites(t, st)
	var wg sync.WaitGroup
	bigAdds := make([]error, 3)
	for i := range bigAdds {
		wg.Go(func() {
			_, bigAdds[i] = eng.Add(ctx, b.UUID, newContacts(200)...)
		})
	}
	var completeErr, failErr error
	var smallAdd pool.AddResult
	var smallErr error
	small := newContacts(1)
	wg.Go(func() { completeErr = eng.Complete(ctx, leases[0], "answered") })
	wg.Go(func() { failErr = eng.Fail(ctx, leases[1], queue.Failure{Note: "busy"}) })
	wg.Go(func() { smallAdd, smallErr = eng.Add(ctx, a.UUID, small...) })
	time.Sleep(100 * time.Millisecond) // the callers queue behind the held writer
	release()
	wg.Wait()

	for i, err := range bigAdds {
		require.Error(t, err, "add %d of 200 items on a full disk", i)
		require.True(t, isFull(err), "add %d: the error says the disk is full: %v", i, err)
	}
	t.Logf("stats %+v", eng.Stats())
	require.NoError(t, completeErr, "a settlement in the batch of the failed Adds")
	require.NoError(t, failErr, "a settlement in the batch of the failed Adds")
	require.NoError(t, smallErr, "an Add of one item in the batch of the failed Adds")

	d, err := eng.Pool(ctx, b.UUID)
	require.NoError(t, err)
	require.Zero(t, d.ContactsCount, "nothing of the failed adds")
	items, err := eng.Items(ctx, b.UUID, pool.ItemQuery{})
	require.NoError(t, err)
	require.Zero(t, items.Total)

	// Each other caller's answer is the database's truth.
	byContact := map[uuid.UUID]pool.Item{}
	ia, err := eng.Items(ctx, a.UUID, pool.ItemQuery{PerPage: 100})
	require.NoError(t, err)
	for _, it := range ia.Data {
		byContact[it.ContactUUID] = it
	}
	require.Equal(t, pool.StatusCompleted, byContact[leases[0].ContactUUID].Status)
	require.Equal(t, pool.StatusRetrying, byContact[leases[1].ContactUUID].Status)
	require.Contains(t, byContact, small[0].ContactUUID)
	require.Equal(t, 1, smallAdd.ContactsAdded)

	select {
	case r := <-blocked:
		t.Fatalf("the blocked Dequeue returned while the disk was full: %v, %v", r.l, r.err)
	default:
	}

	// Space is back: the Add goes through, and the blocked Dequeue wakes
	// at it.
	uncap()
	_, err = eng.Add(ctx, b.UUID, newContacts(200)...)
	require.NoError(t, err)
	select {
	case r := <-blocked:
		require.NoError(t, r.err)
		require.NoError(t, eng.Complete(ctx, r.l, "after"))
	case <-time.After(5 * time.Second):
		t.Fatal("the blocked Dequeue did not wake at the Add")
	}
	d, err = eng.Pool(ctx, b.UUID)
	require.NoError(t, err)
	require.Equal(t, 200, d.ContactsCount)
	require.Equal(t, 1, d.StatusCounts[pool.StatusCompleted])
	da, err := eng.Pool(ctx, a.UUID)
	require.NoError(t, err)
	require.Equal(t, 2, da.StatusCounts[pool.StatusCompleted])
	require.Equal(t, 1, da.StatusCounts[pool.StatusRetrying])
	require.NoError(t, st.Check(ctx))
}
