package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/internal/lockholder"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/poolq/poolq/store/storetest"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// checked are the options of the tests' stores: check mode on, so that a
// wrong cached pool state fails the Write that left it.
var checked = sqlite.Options{CheckCache: true}

// MustOpen opens a fresh in-memory store in check mode, closed when tb
// ends.
func MustOpen(tb testing.TB) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.MemoryPath, checked)
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	return st
}

// MustOpenFile opens a store on a new file in a temporary directory,
// closed when tb ends, and returns it with the file's path.
func MustOpenFile(tb testing.TB, opts sqlite.Options) (*sqlite.Store, string) {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "poolq.db")
	st, err := sqlite.Open(context.Background(), path, opts)
	require.NoError(tb, err)
	tb.Cleanup(func() { st.Close() })
	return st, path
}

var testT0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// insertPool stores a new FIFO pool with n Pending items.
func insertPool(tb testing.TB, st store.Store, n ...int) pool.Pool {
	tb.Helper()
	ctx := context.Background()
	p := pool.Pool{
		UUID: uuid.New(), Name: "test pool", Description: "test", Type: pool.FIFO,
		MaxParallelItems: 10, MaxRetries: 3, IsActive: true, CreatedAt: testT0, UpdatedAt: testT0,
	}
	require.NoError(tb, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		if len(n) == 0 {
			return nil
		}
		_, err := tx.InsertItems(ctx, p.UUID, pendingItems(n[0]))
		return err
	}))
	return p
}

func pendingItems(n int) []pool.Item {
	out := make([]pool.Item, n)
	for i := range out {
		out[i] = pool.Item{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: testT0}
	}
	return out
}

func poolExists(tb testing.TB, st store.Store, id uuid.UUID) bool {
	tb.Helper()
	err := st.Read(context.Background(), func(tx store.Tx) error {
		_, err := tx.Pool(context.Background(), id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	require.NoError(tb, err)
	return true
}

// TestStore_Conformance runs the suite on both kinds of store. Under -short
// (the race run of .ci/run, after the plain run has run it all) the
// in-memory store runs only the suite's tests that work from several
// goroutines: the others are the file store's calls one at a time, on the
// same code but for the in-memory store's one connection, whose turns the
// concurrent tests take.
func TestStore_Conformance(t *testing.T) {
	t.Run("Memory", func(t *testing.T) {
		t.Parallel()
		run := storetest.Run
		if testing.Short() {
			run = storetest.RunConcurrent
		}
		run(t, func(t *testing.T) store.Store { return MustOpen(t) })
	})
	t.Run("File", func(t *testing.T) {
		t.Parallel()
		storetest.Run(t, func(t *testing.T) store.Store {
			st, _ := MustOpenFile(t, checked)
			return st
		})
	})
}

func TestOpen_Options(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		path string
		o    sqlite.Options
		want []string
	}{
		{"x.db", sqlite.Options{Durability: 7}, []string{"durability"}},
		{"x.db", sqlite.Options{Durability: -1}, []string{"durability"}},
		{"x.db", sqlite.Options{BusyTimeout: -time.Second}, []string{"busy_timeout"}},
		{"x.db", sqlite.Options{CacheMiB: -1}, []string{"cache_mib"}},
		{"x.db", sqlite.Options{BusyTimeout: sqlite.MaxBusyTimeout + time.Millisecond}, []string{"busy_timeout"}},
		{"x.db", sqlite.Options{CacheMiB: sqlite.MaxCacheMiB + 1}, []string{"cache_mib"}},
		{"x.db", sqlite.Options{CheckpointInterval: sqlite.MaxCheckpointInterval + time.Millisecond}, []string{"checkpoint_interval"}},
		// 100 meant as milliseconds is 100 ns: a ticker that fast burned
		// 70% of a core while the store sat idle.
		{"x.db", sqlite.Options{CheckpointInterval: 100}, []string{"checkpoint_interval"}},
		{"x.db", sqlite.Options{CheckpointInterval: time.Millisecond - 1}, []string{"checkpoint_interval"}},
		// 5000 meant as milliseconds is 5 µs: a Write that met another
		// process's write lock on the file failed with ErrLockTimeout at
		// its first try instead of waiting 5 s (and the connections'
		// pragma, in whole milliseconds, rounded it up to 1 ms).
		{"x.db", sqlite.Options{BusyTimeout: 5000}, []string{"busy_timeout"}},
		{"x.db", sqlite.Options{BusyTimeout: time.Millisecond - 1}, []string{"busy_timeout"}},
		{"", sqlite.Options{}, []string{"path"}},
		// The driver would open the path cut at the NUL: another file.
		{"x.db\x00.other", sqlite.Options{}, []string{"path"}},
		{"x.db", sqlite.Options{Durability: 9, BusyTimeout: -1, CacheMiB: -1}, []string{"durability", "busy_timeout", "cache_mib"}},
	} {
		path := c.path
		if path != "" {
			path = filepath.Join(dir, path)
		}
		_, err := sqlite.Open(ctx, path, c.o)
		require.ErrorIs(t, err, validate.ErrInvalid, "%q %+v", c.path, c.o)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		var fields []string
		for _, f := range ve {
			fields = append(fields, f.Field)
		}
		require.Equal(t, c.want, fields, "%q %+v", c.path, c.o)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "%q %+v: no file is created", c.path, c.o)
	}
}

// TestOpen_NilContext: a nil ctx is a field error, reported with the
// other bad arguments, not a panic; nothing is created.
func TestOpen_NilContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var nilCtx context.Context
	for _, c := range []struct {
		path string
		o    sqlite.Options
		want []string
	}{
		{filepath.Join(dir, "x.db"), sqlite.Options{}, []string{"ctx"}},
		{sqlite.MemoryPath, sqlite.Options{}, []string{"ctx"}},
		{filepath.Join(dir, "x.db"), sqlite.Options{Durability: 9}, []string{"ctx", "durability"}},
	} {
		var err error
		require.NotPanics(t, func() { _, err = sqlite.Open(nilCtx, c.path, c.o) }, c.path)
		require.ErrorIs(t, err, validate.ErrInvalid, c.path)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		require.Equal(t, c.want, ve.Fields(), c.path)
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "no file is created")
}

// TestStore_Check damages a file (the middle of its pages overwritten, as
// a disk or a copy gone wrong would) and checks that Check and Open's
// QuickCheck report it as ErrCorrupt, while a sound file passes both.
func TestStore_Check(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, sqlite.Options{})
	p := insertPool(t, st, 2000)
	require.NoError(t, st.Check(ctx), "a sound file")
	require.NoError(t, st.Close())

	sound, err := sqlite.Open(ctx, path, sqlite.Options{QuickCheck: true})
	require.NoError(t, err, "a sound file passes the quick check")
	require.NoError(t, sound.Close())

	mem := MustOpen(t)
	require.NoError(t, mem.Check(ctx), "an in-memory store")

	// Damage, in their middle, the pages of the second half of the file:
	// items and their indexes, not the schema and version table that Open
	// reads first.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	info, err := f.Stat()
	require.NoError(t, err)
	const pageSize = 4096
	require.Greater(t, info.Size(), int64(8*pageSize), "the file has pages to damage")
	junk := bytes.Repeat([]byte{0xA5}, 64)
	for off := info.Size() / 2 / pageSize * pageSize; off+pageSize <= info.Size(); off += pageSize {
		_, err := f.WriteAt(junk, off+pageSize/2)
		require.NoError(t, err)
	}
	require.NoError(t, f.Close())

	_, err = sqlite.Open(ctx, path, sqlite.Options{QuickCheck: true})
	require.ErrorIs(t, err, sqlite.ErrCorrupt, "Open with the quick check")

	damaged, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err, "without the check, Open does not read the damaged pages")
	defer damaged.Close()
	err = damaged.Check(ctx)
	require.ErrorIs(t, err, sqlite.ErrCorrupt)
	t.Logf("report: %v", err)
	// An operation that reads a damaged page fails with ErrCorrupt too.
	err = damaged.Read(ctx, func(tx store.Tx) error {
		for page := 1; page <= 20; page++ {
			if _, _, err := tx.Items(ctx, p.UUID, pool.ItemQuery{Page: page, PerPage: 100}); err != nil {
				return err
			}
		}
		return nil
	})
	require.ErrorIs(t, err, sqlite.ErrCorrupt, "a read of every item meets the damaged pages")
}

func TestOpen_PathWithURICharacters(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "a b?c=d#e%20f.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	require.NoError(t, err)
	insertPool(t, st)
	require.NoError(t, st.Close())
	_, err = os.Stat(path)
	require.NoError(t, err, "the file has exactly the name given")
}

// TestOpen_PathBeginningWithTwoSlashes: a POSIX path that begins with
// "//" names a file like any other, not a URI's host: "//" + an absolute
// directory is that directory, and "//localhost/<dir>/b.db" is a
// directory that does not exist (Open fails, and creates nothing in
// <dir>).
func TestOpen_PathBeginningWithTwoSlashes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), "/"+filepath.Join(dir, "a.db"), sqlite.Options{})
	require.NoError(t, err)
	insertPool(t, st)
	require.NoError(t, st.Close())
	_, err = os.Stat(filepath.Join(dir, "a.db"))
	require.NoError(t, err)

	st, err = sqlite.Open(context.Background(), "//localhost"+filepath.Join(dir, "b.db"), sqlite.Options{})
	if err == nil {
		st.Close()
	}
	require.Error(t, err, "/localhost%s does not exist", dir)
	_, err = os.Stat(filepath.Join(dir, "b.db"))
	require.ErrorIs(t, err, os.ErrNotExist, "a file the path does not name")
}

func TestDurability_String(t *testing.T) {
	t.Parallel()
	require.Equal(t, "Normal", sqlite.Normal.String())
	require.Equal(t, "Full", sqlite.Full.String())
	require.Equal(t, "Durability(9)", sqlite.Durability(9).String())
}

func TestStore_Write(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("RollbackOnPanic", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st *sqlite.Store) {
			p := insertPool(t, st, 2)
			items := poolItems(t, st, p.UUID)
			viewPool(t, st, p.UUID)
			require.Equal(t, 1, sqlite.CachedPools(st))
			id := uuid.New()
			require.PanicsWithValue(t, "boom", func() {
				st.Write(ctx, func(tx store.Tx) error {
					require.NoError(t, tx.InsertPool(ctx, insertPoolParams(id)))
					require.NoError(t, tx.UpdateItem(ctx, pool.StatusPending, claimed(items[0])))
					panic("boom")
				})
			})
			require.Zero(t, sqlite.CachedPools(st), "the cache is emptied")
			require.False(t, poolExists(t, st, id))
			require.Equal(t, poolView{cap: 10, contacts: 2, due: contacts(items...)}, viewPool(t, st, p.UUID),
				"the writer is free again, and the claim undone")
		})
	})

	t.Run("PanicInRead", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st *sqlite.Store) {
			p := insertPool(t, st, 1)
			require.PanicsWithValue(t, "boom", func() {
				st.Read(ctx, func(tx store.Tx) error {
					_, err := tx.Pool(ctx, p.UUID)
					require.NoError(t, err)
					panic("boom")
				})
			})
			require.True(t, poolExists(t, st, p.UUID), "reads go on")
			insertPool(t, st) // and so do writes
		})
	})

	t.Run("RollbackOnCancel", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st *sqlite.Store) {
			id := uuid.New()
			cctx, cancel := context.WithCancel(ctx)
			err := st.Write(cctx, func(tx store.Tx) error {
				require.NoError(t, tx.InsertPool(cctx, insertPoolParams(id)))
				cancel()
				return nil
			})
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, poolExists(t, st, id))
			insertPool(t, st)
		})
	})

	t.Run("CanceledBeforeStart", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st *sqlite.Store) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			called := false
			err := st.Write(cctx, func(store.Tx) error { called = true; return nil })
			require.ErrorIs(t, err, context.Canceled)
			require.False(t, called)
		})
	})

	// A Write waiting for its turn behind another leaves when its context
	// ends: the first one holds the writer until the second has returned.
	// On an in-memory store a Read waits for its turn the same way.
	t.Run("WaitEndsWithContext", func(t *testing.T) {
		t.Parallel()
		eachStore(t, func(t *testing.T, st *sqlite.Store) {
			holding, release := make(chan struct{}), make(chan struct{})
			first := make(chan error, 1)
			go func() {
				first <- st.Write(ctx, func(store.Tx) error {
					close(holding)
					<-release
					return nil
				})
			}()
			<-holding
			wait := func(call func(context.Context, func(store.Tx) error) error) error {
				cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
				defer cancel()
				return call(cctx, func(store.Tx) error { return errors.New("ran") })
			}
			require.ErrorIs(t, wait(st.Write), context.DeadlineExceeded)
			if _, r := sqlite.DBs(st); r == nil {
				require.ErrorIs(t, wait(st.Read), context.DeadlineExceeded)
			}
			close(release)
			require.NoError(t, <-first)
			insertPool(t, st)
		})
	})

	// A Write waiting for the file's write lock, which another process
	// holds, leaves when its context ends rather than at the busy timeout
	// (the whole wait: the one in BEGIN IMMEDIATE and, behind it, the turn
	// of a second Write); neither runs, and nothing is left open: once the
	// lock is gone, writes work. Without a context that ends, a Write waits
	// for the lock and gets it.
	// A Write that waits out the busy timeout for another process's lock
	// fails with the sentinel a caller can wait on and try again, and
	// writes nothing.
	t.Run("ErrLockTimeout", func(t *testing.T) {
		t.Parallel()
		st, path := MustOpenFile(t, sqlite.Options{BusyTimeout: 50 * time.Millisecond})
		unlock := lockholder.Hold(t, path)
		id := uuid.New()
		start := time.Now()
		err := st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, insertPoolParams(id)) })
		require.ErrorIs(t, err, store.ErrLockTimeout)
		require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "it waited the busy timeout")
		unlock()
		require.False(t, poolExists(t, st, id))
	})

	t.Run("LockWaitEndsWithContext", func(t *testing.T) {
		t.Parallel()
		st, path := MustOpenFile(t, sqlite.Options{BusyTimeout: time.Minute})
		unlock := lockholder.Hold(t, path) // another process's write lock

		ran := errors.New("ran")
		waits := make(chan error, 2)
		start := time.Now()
		for _, d := range []time.Duration{50 * time.Millisecond, 100 * time.Millisecond} {
			go func() {
				cctx, cancel := context.WithTimeout(ctx, d)
				defer cancel()
				waits <- st.Write(cctx, func(store.Tx) error { return ran })
			}()
		}
		for range 2 {
			require.ErrorIs(t, <-waits, context.DeadlineExceeded)
		}
		require.Less(t, time.Since(start), 2*time.Second, "held for the busy timeout")

		id := uuid.New()
		inserted := make(chan error, 1)
		go func() {
			inserted <- st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, insertPoolParams(id)) })
		}()
		time.Sleep(20 * time.Millisecond) // it waits for the lock
		unlock()
		require.NoError(t, <-inserted, "once the lock is gone")
		require.True(t, poolExists(t, st, id))
	})

	t.Run("FailedStatementKeepsTransaction", func(t *testing.T) {
		t.Parallel()
		// A statement that fails (here a conflict) undoes only itself: fn
		// may handle the error and go on.
		eachStore(t, func(t *testing.T, st *sqlite.Store) {
			p := insertPool(t, st)
			other := uuid.New()
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertPool(ctx, insertPoolParams(p.UUID)); !errors.Is(err, store.ErrConflict) {
					return err
				}
				return tx.InsertPool(ctx, insertPoolParams(other))
			}))
			require.True(t, poolExists(t, st, other))
		})
	})
}

// TestStore_ReadMemory: an in-memory store's Read runs on its one
// connection in a transaction of its own, which sees the committed writes
// and leaves nothing behind, even when fn wrote through another way than
// the Tx.
func TestStore_ReadMemory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := MustOpen(t)
	p := insertPool(t, st, 2)
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, err := tx.Pool(ctx, p.UUID)
		require.Equal(t, 2, got.ContactsCount)
		if err != nil {
			return err
		}
		_, err = sqlite.WriterConn(st).ExecContext(ctx, `DELETE FROM items`)
		return err
	}))
	require.Equal(t, 2, len(poolItems(t, st, p.UUID)), "rolled back")
}

func insertPoolParams(id uuid.UUID) pool.Pool {
	return pool.Pool{
		UUID: id, Name: "test pool", Description: "test", Type: pool.FIFO,
		MaxParallelItems: 10, MaxRetries: 3, IsActive: true, CreatedAt: testT0, UpdatedAt: testT0,
	}
}

func TestStore_Close(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, st *sqlite.Store) {
		insertPool(t, st, 1)
		require.NoError(t, st.Close())
		called := false
		fn := func(store.Tx) error { called = true; return nil }
		require.ErrorIs(t, st.Write(ctx, fn), store.ErrClosed)
		require.ErrorIs(t, st.Read(ctx, fn), store.ErrClosed)
		require.False(t, called)
		require.NoError(t, st.Close(), "a second Close")
	})
}

// TestStore_CloseWaitsForWrite: a Close called while a Write is under way
// waits for it, and the Write commits; the Writes that come after get
// ErrClosed.
func TestStore_CloseWaitsForWrite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, checked) // its cleanup closes it again
	p := insertPool(t, st)
	holding, release := make(chan struct{}), make(chan struct{})
	wrote := make(chan error, 1)
	go func() {
		wrote <- st.Write(ctx, func(tx store.Tx) error {
			close(holding)
			<-release
			_, err := tx.InsertItems(ctx, p.UUID, pendingItems(1))
			return err
		})
	}()
	<-holding
	closed := make(chan error, 1)
	go func() { closed <- st.Close() }()
	close(release)
	require.NoError(t, <-wrote)
	require.NoError(t, <-closed)
	require.ErrorIs(t, st.Write(ctx, func(store.Tx) error { return nil }), store.ErrClosed)

	again, err := sqlite.Open(ctx, path, checked)
	require.NoError(t, err)
	t.Cleanup(func() { again.Close() })
	require.Len(t, poolItems(t, again, p.UUID), 1, "the Write committed")
}

// TestTx_UnknownPool covers the methods whose contract does not name
// ErrNotFound: this store returns it for an unknown pool all the same.
func TestTx_UnknownPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := MustOpen(t)
	p := insertPool(t, st, 1)
	unknown := uuid.New()
	calls := map[string]func(tx store.Tx) error{
		"Items": func(tx store.Tx) error {
			_, _, err := tx.Items(ctx, unknown, pool.ItemQuery{Page: 1, PerPage: 10})
			return err
		},
		"InFlight": func(tx store.Tx) error { _, err := tx.InFlight(ctx, unknown); return err },
		"Due": func(tx store.Tx) error {
			_, err := tx.Due(ctx, unknown, pool.FIFO, testT0, 1)
			return err
		},
		"Expired": func(tx store.Tx) error {
			_, err := tx.Expired(ctx, unknown, testT0, 1)
			return err
		},
		"NextWake":       func(tx store.Tx) error { _, _, err := tx.NextWake(ctx, unknown); return err },
		"CopyItems/Src":  func(tx store.Tx) error { _, err := tx.CopyItems(ctx, unknown, p.UUID, testT0); return err },
		"CopyItems/Dst":  func(tx store.Tx) error { _, err := tx.CopyItems(ctx, p.UUID, unknown, testT0); return err },
		"Item/KnownPool": func(tx store.Tx) error { _, err := tx.Item(ctx, p.UUID, unknown); return err },
	}
	for name, call := range calls {
		require.ErrorIs(t, st.Write(ctx, call), store.ErrNotFound, name)
	}
}

// TestTx_ItemNotFoundSays checks that an item not found says which was
// missing, the pool or the contact in it: both are ErrNotFound, and a
// caller answering a user (a REST API's 404) can tell them apart by text.
func TestTx_ItemNotFoundSays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := MustOpen(t)
	p := insertPool(t, st, 1)
	contact, other := uuid.New(), uuid.New()
	err := st.Read(ctx, func(tx store.Tx) error { _, err := tx.Item(ctx, other, contact); return err })
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "pool "+other.String()+": not found")
	require.NotContains(t, err.Error(), contact.String())

	err = st.Read(ctx, func(tx store.Tx) error { _, err := tx.Item(ctx, p.UUID, contact); return err })
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, "contact "+contact.String()+" in pool "+p.UUID.String()+": not found")
}

func TestTx_BadArguments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := MustOpen(t)
	p := insertPool(t, st, 1)
	for name, call := range map[string]func(tx store.Tx) error{
		"DueUnknownType": func(tx store.Tx) error {
			_, err := tx.Due(ctx, p.UUID, "Random", testT0, 1)
			return err
		},
		"TimeBefore1678": func(tx store.Tx) error {
			_, err := tx.InsertItems(ctx, p.UUID, []pool.Item{{ContactUUID: uuid.New(), Status: pool.StatusPending}})
			return err
		},
		"TimeAfter2262": func(tx store.Tx) error {
			bad := insertPoolParams(uuid.New())
			bad.CreatedAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
			return tx.InsertPool(ctx, bad)
		},
		"PoolsNotNormalized": func(tx store.Tx) error {
			_, _, err := tx.Pools(ctx, pool.PoolQuery{})
			return err
		},
		"ItemsNotNormalized": func(tx store.Tx) error {
			_, _, err := tx.Items(ctx, p.UUID, pool.ItemQuery{})
			return err
		},
	} {
		require.Error(t, st.Write(ctx, call), name)
	}
	for _, limit := range []int{0, -1} {
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			due, err := tx.Due(ctx, p.UUID, pool.FIFO, testT0, limit)
			require.Empty(t, due, "Due limit %d", limit)
			if err != nil {
				return err
			}
			exp, err := tx.Expired(ctx, p.UUID, testT0, limit)
			require.Empty(t, exp, "Expired limit %d", limit)
			return err
		}))
	}
}

// TestTx_InsertItemsBatches crosses the batch boundaries of InsertItems:
// repeated contacts within a batch and across batches are skipped, IDs
// follow the order given.
func TestTx_InsertItemsBatches(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	t.Parallel()
	ctx := context.Background()
	for _, n := range []int{1, 2, 63, 64, 65, 129, 1000} {
		st := MustOpen(t)
		p := insertPool(t, st)
		items := pendingItems(n)
		// Repeat the first contact at the end and one in the middle.
		items = append(items, items[0], items[n/2])
		var added int
		require.NoError(t, st.Write(ctx, func(tx store.Tx) (err error) {
			added, err = tx.InsertItems(ctx, p.UUID, items)
			return err
		}))
		require.Equal(t, n, added, "n=%d", n)
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			got, total, err := tx.Items(ctx, p.UUID, pool.ItemQuery{Page: 1, PerPage: 100})
			require.Equal(t, n, total)
			for i, it := range got {
				require.Equal(t, items[i].ContactUUID, it.ContactUUID, "n=%d item %d", n, i)
			}
			return err
		}))
	}
}

// TestTx_NextWakeAfterDue: a retry time that has come counts until a Due
// sees the item due; from then on the item waits for a dispatch, not for a
// time, and NextWake looks further.
func TestTx_NextWakeAfterDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := MustOpen(t)
	p := insertPool(t, st)
	early, late := testT0.Add(time.Hour), testT0.Add(3*time.Hour)
	items := pendingItems(2)
	for i, at := range []time.Time{early, late} {
		items[i].Status = pool.StatusRetrying
		items[i].NextRetryAt = &at
		items[i].Attempts, items[i].RetryCount = 1, 1
	}
	wake := func() time.Time {
		var w time.Time
		require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
			var ok bool
			var err error
			w, ok, err = tx.NextWake(ctx, p.UUID)
			require.True(t, ok)
			return err
		}))
		return w
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.InsertItems(ctx, p.UUID, items)
		return err
	}))
	require.Equal(t, early, wake())
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		_, err := tx.Due(ctx, p.UUID, pool.FIFO, early.Add(-1), 10)
		return err
	}))
	require.Equal(t, early, wake(), "not due yet")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		due, err := tx.Due(ctx, p.UUID, pool.FIFO, early.Add(time.Minute), 10)
		require.Len(t, due, 1)
		return err
	}))
	require.Equal(t, late, wake(), "the due item is left out")
}

// TestOpen_CacheAndCheckpoint checks the page caches, and that the
// write-ahead log is checkpointed by the Store's goroutine rather than by
// commits. The proof is the log's size: the same commits are written in two
// halves. With the goroutine, the test waits between them for a round of it
// that started after the first half and copied the whole log back; the
// second half then restarts the log from its beginning, and it ends the
// size of the second half's frames. Without (and below SQLite's own
// threshold), it holds both halves.
func TestOpen_CacheAndCheckpoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pragma := func(db interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}, name string) int {
		var n int
		require.NoError(t, db.QueryRowContext(ctx, "PRAGMA "+name).Scan(&n))
		return n
	}
	// walGrowth writes twice the same commits, calling between() in
	// between, and returns the log's size after the first half and after
	// the second.
	walGrowth := func(st *sqlite.Store, path string, between func()) (half, full int64) {
		p := insertPool(t, st)
		write := func() int64 {
			for range 20 {
				require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
					_, err := tx.InsertItems(ctx, p.UUID, pendingItems(20))
					return err
				}))
			}
			fi, err := os.Stat(path + "-wal")
			require.NoError(t, err)
			return fi.Size()
		}
		half = write()
		between()
		return half, write()
	}

	on, onPath := MustOpenFile(t, sqlite.Options{CacheMiB: 8, CheckpointInterval: 20 * time.Millisecond})
	sqlite.SetCheckpointPages(on, 1) // every round with something to copy (TestCheckpoint_WaitsForPages tests the threshold)
	w := sqlite.WriterConn(on)
	_, r := sqlite.DBs(on)
	require.Equal(t, -8*1024, pragma(w, "cache_size"))
	require.Equal(t, -2*1024, pragma(r, "cache_size"), "readers: a quarter, at least 2 MiB")
	require.Equal(t, 20000, pragma(w, "wal_autocheckpoint"))
	_, onFull := walGrowth(on, onPath, func() {
		// The count of pages falls to zero only through a full round
		// that saw every page of the first half: one that started after
		// it.
		require.Eventually(t, func() bool { return sqlite.LogPages(on) == 0 }, 10*time.Second, time.Millisecond)
	})

	off, offPath := MustOpenFile(t, sqlite.Options{CheckpointInterval: -1})
	w = sqlite.WriterConn(off)
	require.Equal(t, 1000, pragma(w, "wal_autocheckpoint"), "no goroutine: SQLite's own threshold")
	require.Equal(t, -sqlite.DefaultCacheMiB*1024, pragma(w, "cache_size"))
	offHalf, offFull := walGrowth(off, offPath, func() {}) // nothing to wait for
	require.Greater(t, offFull, offHalf+offHalf/2, "without the goroutine the log keeps both halves")
	require.Less(t, onFull, offFull-offHalf/2, "with it, the second half restarted the log")
}

// TestCheckpoint_WaitsForPages checks that the checkpointer copies the log
// back only once the Store has written CheckpointPages pages to it: a few
// small commits leave the log as it is (so no commit restarts it, and pays
// the sync of its header), and a large one gets it checkpointed.
func TestCheckpoint_WaitsForPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, sqlite.Options{CheckpointInterval: 2 * time.Millisecond})
	require.Zero(t, sqlite.LogPages(st), "the migrations are not counted")
	p := insertPool(t, st)
	add := func(n int) {
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.InsertItems(ctx, p.UUID, pendingItems(n))
			return err
		}))
	}
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		require.NoError(t, err)
		return fi.Size()
	}
	// rounds waits for n more ticks of the checkpointer.
	rounds := func(n int64) {
		from := sqlite.CheckpointRounds(st)
		require.Eventually(t, func() bool { return sqlite.CheckpointRounds(st) >= from+n }, 10*time.Second, time.Millisecond)
	}

	for range 10 {
		add(1)
	}
	small := sqlite.LogPages(st)
	require.GreaterOrEqual(t, small, int64(11), "every commit writes a page at least (the pool, then ten adds)")
	require.Less(t, small, int64(sqlite.CheckpointPages))
	before := walSize()
	rounds(3)
	require.Zero(t, sqlite.FullCheckpoints(st), "below the threshold: no checkpoint")
	add(1)
	require.Greater(t, walSize(), before, "the log was not restarted: it grew")

	for sqlite.LogPages(st) < sqlite.CheckpointPages {
		add(500)
	}
	require.Eventually(t, func() bool { return sqlite.FullCheckpoints(st) >= 1 }, 10*time.Second, time.Millisecond)
	require.Less(t, sqlite.LogPages(st), int64(sqlite.CheckpointPages), "a full round takes its pages off the count")
}

// TestCheckpoint_SteadyWrites: under commits every few milliseconds, the
// checkpointer's rounds restart the log, which stays within a few times
// CheckpointPages. (The rounds copied the log while the writer committed
// beside them, counted that copy whole, and the writer's next transaction,
// finding the last commit's frames not copied, never restarted the log: it
// grew to the 20,000 pages of the backstop, 80 MB.)
func TestCheckpoint_SteadyWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, path := MustOpenFile(t, sqlite.Options{})
	p := insertPool(t, st)
	var most int64
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(3 * time.Millisecond) {
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.InsertItems(ctx, p.UUID, pendingItems(20))
			return err
		}))
		fi, err := os.Stat(path + "-wal")
		require.NoError(t, err)
		most = max(most, fi.Size())
	}
	require.Less(t, most, int64(4*sqlite.CheckpointPages*4096),
		"the log outgrew four checkpoints' worth (full rounds %d)", sqlite.FullCheckpoints(st))
}

// TestCheckpoint_ImportHoldsTheWriterBriefly: under writes at full speed
// (an import: 500 items a commit), a round copies with the writer's turn
// held only a pass's worth of the writer's commits, at most heldPages (100)
// plus those queued for the turn; a writer that outruns the unheld passes is
// left to the backstop. (The held pass copied whatever came during the
// first: a median 3,900 pages, 18-30 ms of a stopped writer.)
func TestCheckpoint_ImportHoldsTheWriterBriefly(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, _ := MustOpenFile(t, sqlite.Options{})
	p := insertPool(t, st)
	var largest int64 // pages of one commit
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		before := sqlite.LogPages(st)
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
			_, err := tx.InsertItems(ctx, p.UUID, pendingItems(500))
			return err
		}))
		if n := sqlite.LogPages(st) - before; n > largest {
			largest = n
		}
	}
	t.Logf("held at most %d pages (a commit writes up to %d); full rounds %d", sqlite.HeldCheckpointPages(st), largest, sqlite.FullCheckpoints(st))
	require.LessOrEqual(t, sqlite.HeldCheckpointPages(st), 100+2*largest)
}

// TestOpen_URIRefused: path is a file name. A SQLite URI ("file:x.db?mode=ro")
// would otherwise open an empty database under that literal name in the
// working directory (its characters are escaped, see
// TestOpen_PathWithURICharacters): a user who meant a read-only open would
// read no pools and no error. It is refused, creating nothing; a file whose
// name really begins with "file:" is opened as "./file:…".
func TestOpen_URIRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, path := range []string{"file:x.db?mode=ro", "file:x.db", "file:///" + filepath.Join(dir, "x.db"), "FILE:x.db"} {
		_, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		require.ErrorIs(t, err, validate.ErrInvalid, path)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		require.Equal(t, []string{"path"}, ve.Fields(), path)
		require.Contains(t, err.Error(), "not a URI", path)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "%q: no file is created", path)
	}
	st, err := sqlite.Open(context.Background(), "./file:x.db", sqlite.Options{})
	require.NoError(t, err)
	insertPool(t, st)
	require.NoError(t, st.Close())
	_, err = os.Stat(filepath.Join(dir, "file:x.db"))
	require.NoError(t, err, "./file:x.db is the file named file:x.db")
}

// TestOpen_MemoryWithParametersRefused: ":memory:?cache=shared" (the
// driver's idiom for an in-memory database, whose parameters it strips
// from a DSN that is not a URI) is refused, creating nothing: it made a
// file of that literal name in the working directory, which outlived the
// Store and was opened again, with its data, by the next run. A file whose
// name begins so is "./:memory:…".
func TestOpen_MemoryWithParametersRefused(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, path := range []string{":memory:?cache=shared", ":memory:?_pragma=foreign_keys(1)", ":memory:x"} {
		_, err := sqlite.Open(context.Background(), path, sqlite.Options{})
		require.ErrorIs(t, err, validate.ErrInvalid, path)
		var ve validate.Errors
		require.ErrorAs(t, err, &ve)
		require.Equal(t, []string{"path"}, ve.Fields(), path)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Empty(t, entries, "%q: no file is created", path)
	}
	st, err := sqlite.Open(context.Background(), "./:memory:x", sqlite.Options{})
	require.NoError(t, err)
	require.NoError(t, st.Close())
	_, err = os.Stat(filepath.Join(dir, ":memory:x"))
	require.NoError(t, err, "./:memory:x is the file named :memory:x")
}
