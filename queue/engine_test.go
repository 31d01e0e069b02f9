package queue_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/poolq/poolq/validate"
	"github.com/stretchr/testify/require"
)

// clock is a fake time source that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type testBundle struct {
	ctx   context.Context
	eng   *queue.Engine
	st    *sqlite.Store
	clock *clock
}

const (
	testLease = time.Minute
	testRetry = 10 * time.Minute
)

// setup returns an engine over a fresh in-memory store with a fake clock.
func setup(t *testing.T) *testBundle {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	c := newClock()
	eng, err := queue.New(st, queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	return &testBundle{ctx: ctx, eng: eng, st: st, clock: c}
}

func (b *testBundle) pool(t *testing.T, typ pool.Type, maxParallel, maxRetries int) pool.Pool {
	t.Helper()
	p, err := b.eng.CreatePool(b.ctx, pool.CreateParams{
		Name: "Test pool", Description: "for tests", Type: typ,
		MaxParallelItems: &maxParallel, MaxRetries: &maxRetries,
	})
	require.NoError(t, err)
	return p
}

// add adds n contacts with the given priorities (0 when short) and returns
// their UUIDs in insertion order.
func (b *testBundle) add(t *testing.T, p uuid.UUID, n int, prio ...int) []uuid.UUID {
	t.Helper()
	ids := make([]uuid.UUID, n)
	items := make([]pool.NewItem, n)
	for i := range n {
		ids[i] = uuid.New()
		items[i] = pool.NewItem{ContactUUID: ids[i]}
		if i < len(prio) {
			items[i].Priority = prio[i]
		}
	}
	res, err := b.eng.Add(b.ctx, p, items...)
	require.NoError(t, err)
	require.Equal(t, n, res.ContactsAdded)
	return ids
}

func (b *testBundle) item(t *testing.T, p, c uuid.UUID) pool.Item {
	t.Helper()
	it, err := b.eng.Item(b.ctx, p, c)
	require.NoError(t, err)
	return it
}

func (b *testBundle) counts(t *testing.T, p uuid.UUID) map[pool.Status]int {
	t.Helper()
	d, err := b.eng.Pool(b.ctx, p)
	require.NoError(t, err)
	return d.StatusCounts
}

// fieldsOf returns the failing fields of a validation error.
func fieldsOf(t interface {
	require.TestingT
	Helper()
}, err error) []string {
	t.Helper()
	require.ErrorIs(t, err, validate.ErrInvalid)
	var fe validate.Errors
	require.True(t, errors.As(err, &fe), "error %v is not validate.Errors", err)
	return fe.Fields()
}

func TestNew(t *testing.T) {
	t.Parallel()
	st, err := sqlite.Open(context.Background(), ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()

	t.Run("ErrNilStore", func(t *testing.T) {
		_, err := queue.New(nil, queue.Options{})
		require.Equal(t, []string{"store"}, fieldsOf(t, err))
		_, err = queue.New(nil, queue.Options{LeaseTimeout: -1})
		require.Equal(t, []string{"store", "lease_timeout"}, fieldsOf(t, err), "every bad field at once")
	})
	// A nil *sqlite.Store in a store.Store is not a nil interface: New
	// must refuse it, not return an engine that panics at its first call.
	t.Run("ErrTypedNilStore", func(t *testing.T) {
		var lite *sqlite.Store
		var pg *postgres.Store
		for _, st := range []store.Store{lite, pg} {
			var e *queue.Engine
			require.NotPanics(t, func() {
				var err error
				e, err = queue.New(st, queue.Options{})
				require.Equal(t, []string{"store"}, fieldsOf(t, err), "%T", st)
			})
			require.Nil(t, e)
		}
	})
	t.Run("ErrNegative", func(t *testing.T) {
		_, err := queue.New(st, queue.Options{LeaseTimeout: -1, RetryDelay: -1, PollInterval: -1})
		require.Equal(t, []string{"lease_timeout", "retry_delay", "poll_interval"}, fieldsOf(t, err))
	})
	t.Run("ErrClock", func(t *testing.T) {
		for _, at := range []time.Time{{}, time.Date(1899, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)} {
			_, err := queue.New(st, queue.Options{Now: func() time.Time { return at }})
			require.Equal(t, []string{"now"}, fieldsOf(t, err), "a clock at %v", at)
		}
		for _, at := range []time.Time{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2199, 12, 31, 22, 59, 0, 0, time.FixedZone("", -3600))} {
			e, err := queue.New(st, queue.Options{Now: func() time.Time { return at }})
			require.NoError(t, err, "a clock at %v", at)
			require.NoError(t, e.Close())
		}
	})
}

func TestEngine_CreatePool(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p, err := b.eng.CreatePool(b.ctx, pool.CreateParams{Name: "VIP customers", Description: "High-value leads"})
		require.NoError(t, err)
		require.Equal(t, uuid.Version(7), p.UUID.Version())
		require.Equal(t, pool.FIFO, p.Type)
		require.Equal(t, 10, p.MaxParallelItems)
		require.Equal(t, 3, p.MaxRetries)
		require.True(t, p.IsActive)
		require.Equal(t, b.clock.Now(), p.CreatedAt)
		require.Equal(t, p.CreatedAt, p.UpdatedAt)

		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, p, d.Pool)
		require.Equal(t, pool.ZeroCounts(), d.StatusCounts)
	})

	t.Run("ErrInvalidWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		zero, big := 0, -1
		_, err := b.eng.CreatePool(b.ctx, pool.CreateParams{Name: "ab", Description: " ", Type: "Random",
			MaxParallelItems: &zero, MaxRetries: &big})
		require.ElementsMatch(t, []string{"name", "description", "type", "max_parallel_items", "max_retries"}, fieldsOf(t, err))
		pg, err := b.eng.Pools(b.ctx, pool.PoolQuery{})
		require.NoError(t, err)
		require.Zero(t, pg.Total)
	})
}

func TestEngine_UpdatePool(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		b.clock.Advance(time.Second)
		typ, n := pool.Type("parallel"), 20
		up, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Type: &typ, MaxParallelItems: &n})
		require.NoError(t, err)
		require.Equal(t, pool.Parallel, up.Type)
		require.Equal(t, 20, up.MaxParallelItems)
		require.Equal(t, p.Name, up.Name)
		require.Equal(t, p.MaxRetries, up.MaxRetries)
		require.Equal(t, p.CreatedAt, up.CreatedAt)
		require.Equal(t, b.clock.Now(), up.UpdatedAt)

		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, up, d.Pool)
	})

	t.Run("NoChangeKeepsUpdatedAt", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		b.clock.Advance(time.Second)
		same := p.Name
		up, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Name: &same})
		require.NoError(t, err)
		require.Equal(t, p.UpdatedAt, up.UpdatedAt)
	})

	t.Run("ErrInvalidWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		name, n := "ok name", 101
		_, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Name: &name, MaxParallelItems: &n})
		require.Equal(t, []string{"max_parallel_items"}, fieldsOf(t, err))
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, p, d.Pool)
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.eng.UpdatePool(b.ctx, uuid.New(), pool.UpdateParams{})
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestEngine_Pools(t *testing.T) {
	t.Parallel()
	b := setup(t)
	inactive := false
	mk := func(name, desc string, typ pool.Type, active *bool) pool.Pool {
		p, err := b.eng.CreatePool(b.ctx, pool.CreateParams{Name: name, Description: desc, Type: typ, IsActive: active})
		require.NoError(t, err)
		b.clock.Advance(time.Second)
		return p
	}
	a := mk("Alpha leads", "École partners", pool.FIFO, nil)
	c := mk("Charlie", "warm", pool.Parallel, &inactive)
	d := mk("Delta", "cold", pool.LIFO, nil)

	names := func(pg pool.PoolPage) []string {
		var out []string
		for _, p := range pg.Data {
			out = append(out, p.Name)
		}
		return out
	}
	pg, err := b.eng.Pools(b.ctx, pool.PoolQuery{})
	require.NoError(t, err)
	require.Equal(t, []string{a.Name, c.Name, d.Name}, names(pg))
	require.Equal(t, pool.PoolPage{CurrentPage: 1, LastPage: 1, PerPage: 15, Total: 3, Data: pg.Data}, pg)

	pg, err = b.eng.Pools(b.ctx, pool.PoolQuery{Search: "éCOLE"})
	require.NoError(t, err)
	require.Equal(t, []string{a.Name}, names(pg))

	pg, err = b.eng.Pools(b.ctx, pool.PoolQuery{Type: "lifo"})
	require.NoError(t, err)
	require.Equal(t, []string{d.Name}, names(pg))

	pg, err = b.eng.Pools(b.ctx, pool.PoolQuery{IsActive: &inactive})
	require.NoError(t, err)
	require.Equal(t, []string{c.Name}, names(pg))

	pg, err = b.eng.Pools(b.ctx, pool.PoolQuery{Page: 2, PerPage: 2})
	require.NoError(t, err)
	require.Equal(t, []string{d.Name}, names(pg))
	require.Equal(t, 2, pg.LastPage)

	_, err = b.eng.Pools(b.ctx, pool.PoolQuery{PerPage: 101})
	require.Equal(t, []string{"per_page"}, fieldsOf(t, err))
}

func TestEngine_DeletePool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 10, 3)
	b.add(t, p.UUID, 2)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)

	require.ErrorIs(t, b.eng.DeletePool(b.ctx, p.UUID), queue.ErrInFlight)
	require.Equal(t, 2, b.counts(t, p.UUID)[pool.StatusPending]+b.counts(t, p.UUID)[pool.StatusProcessing])

	require.NoError(t, b.eng.Complete(b.ctx, l, ""))
	require.NoError(t, b.eng.DeletePool(b.ctx, p.UUID))
	_, err = b.eng.Pool(b.ctx, p.UUID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorIs(t, b.eng.DeletePool(b.ctx, p.UUID), store.ErrNotFound)

	// A lease that has expired does not hold the pool: its expiry is
	// applied, then the pool is deleted.
	q := b.pool(t, pool.FIFO, 10, 3)
	b.add(t, q.UUID, 1)
	_, err = b.eng.TryDequeue(b.ctx, q.UUID)
	require.NoError(t, err)
	b.clock.Advance(2 * testLease)
	require.NoError(t, b.eng.DeletePool(b.ctx, q.UUID), "an expired lease does not block the delete")
}

// TestEngine_InactivePoolDispatches: is_active only hides a pool from
// campaign builders (the API's meaning); it does not stop dispatch.
func TestEngine_InactivePoolDispatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 1, 3)
	ids := b.add(t, p.UUID, 1)
	_, err := b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{IsActive: new(false)})
	require.NoError(t, err)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, ids[0], l.ContactUUID)
}

func TestEngine_DuplicatePool(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 7, 2)
	ids := b.add(t, p.UUID, 3, 5, 1, 9)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID) // priority 9 goes first
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))

	t.Run("WithContacts", func(t *testing.T) {
		d, err := b.eng.DuplicatePool(b.ctx, p.UUID, pool.DuplicateParams{})
		require.NoError(t, err)
		require.Equal(t, "Test pool (copy)", d.Name)
		require.Equal(t, 3, d.ContactsCopied)
		require.Equal(t, pool.Parallel, d.Type)
		require.Equal(t, 7, d.MaxParallelItems)
		require.Equal(t, 2, d.MaxRetries)
		page, err := b.eng.Items(b.ctx, d.UUID, pool.ItemQuery{})
		require.NoError(t, err)
		require.Len(t, page.Data, 3)
		for i, it := range page.Data {
			require.Equal(t, ids[i], it.ContactUUID)
			require.Equal(t, pool.StatusPending, it.Status)
			require.Zero(t, it.Attempts)
			require.Zero(t, it.RetryCount)
		}
		require.Equal(t, 9, page.Data[2].Priority)
		require.Equal(t, 3, b.counts(t, d.UUID)[pool.StatusPending])
	})
	t.Run("WithoutContacts", func(t *testing.T) {
		name, no := "Fresh copy", false
		d, err := b.eng.DuplicatePool(b.ctx, p.UUID, pool.DuplicateParams{Name: &name, CopyContacts: &no})
		require.NoError(t, err)
		require.Equal(t, "Fresh copy", d.Name)
		require.Zero(t, d.ContactsCopied)
		require.Zero(t, d.ContactsCount)
	})
	t.Run("ErrInvalid", func(t *testing.T) {
		name := "x"
		_, err := b.eng.DuplicatePool(b.ctx, p.UUID, pool.DuplicateParams{Name: &name})
		require.Equal(t, []string{"name"}, fieldsOf(t, err))
	})
}

func TestEngine_Add(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		c1, c2, c3 := uuid.New(), uuid.New(), uuid.New()
		res, err := b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: c1, Payload: []byte(`{"phone":"+15550001"}`)},
			pool.NewItem{ContactUUID: c2}, pool.NewItem{ContactUUID: c1, Priority: 9})
		require.NoError(t, err)
		require.Equal(t, pool.AddResult{ContactsAdded: 2, ContactsSkipped: 0}, res)

		res, err = b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: c2}, pool.NewItem{ContactUUID: c3})
		require.NoError(t, err)
		require.Equal(t, pool.AddResult{ContactsAdded: 1, ContactsSkipped: 1}, res)

		it := b.item(t, p.UUID, c1)
		require.Equal(t, 0, it.Priority, "the first occurrence in a batch wins")
		require.JSONEq(t, `{"phone":"+15550001"}`, string(it.Payload))
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 3, d.ContactsCount)
	})

	t.Run("ErrInvalidWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		_, err := b.eng.Add(b.ctx, p.UUID, pool.NewItem{ContactUUID: uuid.New()},
			pool.NewItem{ContactUUID: uuid.Nil}, pool.NewItem{ContactUUID: uuid.New(), Payload: []byte(`{nope`)})
		require.Equal(t, []string{"items[1].contact_uuid", "items[2].payload"}, fieldsOf(t, err))
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Zero(t, d.ContactsCount)

		_, err = b.eng.Add(b.ctx, p.UUID)
		require.Equal(t, []string{"items"}, fieldsOf(t, err))

		// Every bad argument at once: the pool's and the items'.
		_, err = b.eng.Add(b.ctx, uuid.Nil, pool.NewItem{ContactUUID: uuid.Nil})
		require.Equal(t, []string{"uuid", "items[0].contact_uuid"}, fieldsOf(t, err))
		_, err = b.eng.Skip(b.ctx, uuid.Nil, uuid.Nil, "\x00")
		require.Equal(t, []string{"uuid", "contact_uuid", "note"}, fieldsOf(t, err))
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.eng.Add(b.ctx, uuid.New(), pool.NewItem{ContactUUID: uuid.New()})
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

// drain dequeues and completes every item one by one and returns the order.
func (b *testBundle) drain(t *testing.T, p uuid.UUID) []uuid.UUID {
	t.Helper()
	var out []uuid.UUID
	for {
		l, err := b.eng.TryDequeue(b.ctx, p)
		if errors.Is(err, queue.ErrEmpty) {
			return out
		}
		require.NoError(t, err)
		out = append(out, l.ContactUUID)
		require.NoError(t, b.eng.Complete(b.ctx, l, "ok"))
	}
}

func TestEngine_Order(t *testing.T) {
	t.Parallel()
	prio := []int{1, 5, 5, 0, 9}

	t.Run("FIFO", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 5, prio...)
		require.Equal(t, ids, b.drain(t, p.UUID))
	})
	t.Run("LIFO", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.LIFO, 10, 3)
		ids := b.add(t, p.UUID, 5, prio...)
		require.Equal(t, []uuid.UUID{ids[4], ids[3], ids[2], ids[1], ids[0]}, b.drain(t, p.UUID))
	})
	t.Run("Parallel", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.Parallel, 10, 3)
		ids := b.add(t, p.UUID, 5, prio...)
		require.Equal(t, []uuid.UUID{ids[4], ids[1], ids[2], ids[0], ids[3]}, b.drain(t, p.UUID))
	})
	t.Run("RetryKeepsPlace", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 3)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now()}))
		require.Equal(t, ids, b.drain(t, p.UUID))
	})
	t.Run("TypeSwitch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 4)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[0], l.ContactUUID)
		lifo := pool.LIFO
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{Type: &lifo})
		require.NoError(t, err)
		require.Equal(t, pool.StatusProcessing, b.item(t, p.UUID, ids[0]).Status, "in-flight item kept")
		require.NoError(t, b.eng.Complete(b.ctx, l, ""))
		require.Equal(t, []uuid.UUID{ids[3], ids[2], ids[1]}, b.drain(t, p.UUID))
	})
}

func TestEngine_Cap(t *testing.T) {
	t.Parallel()

	t.Run("Serial", func(t *testing.T) {
		t.Parallel()
		for _, typ := range []pool.Type{pool.FIFO, pool.LIFO} {
			b := setup(t)
			p := b.pool(t, typ, 10, 3)
			b.add(t, p.UUID, 3)
			_, err := b.eng.TryDequeue(b.ctx, p.UUID)
			require.NoError(t, err)
			_, err = b.eng.TryDequeue(b.ctx, p.UUID)
			require.ErrorIs(t, err, queue.ErrAtCapacity, typ)
			_, err = queue.TryDequeueN(b.ctx, b.eng, p.UUID, 5)
			require.ErrorIs(t, err, queue.ErrAtCapacity, typ)
		}
	})
	t.Run("Parallel", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.Parallel, 3, 3)
		b.add(t, p.UUID, 5)
		ls, err := b.eng.DequeueN(b.ctx, p.UUID, 10)
		require.NoError(t, err)
		require.Len(t, ls, 3)
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity)

		// Lowering the cap preempts nothing; no dispatch until below it.
		one := 1
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxParallelItems: &one})
		require.NoError(t, err)
		require.Equal(t, 3, b.counts(t, p.UUID)[pool.StatusProcessing])
		require.NoError(t, b.eng.Complete(b.ctx, ls[0], ""))
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrAtCapacity)
		require.NoError(t, b.eng.Complete(b.ctx, ls[1], ""))
		require.NoError(t, b.eng.Complete(b.ctx, ls[2], ""))
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
	})
	t.Run("EmptyWhenNothingDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		b.add(t, p.UUID, 1)
		_, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty)
	})
	t.Run("ErrInvalidN", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		// Bounded: a DequeueN that took 0 would wait for an item.
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		_, err := b.eng.DequeueN(ctx, p.UUID, 0)
		require.Equal(t, []string{"n"}, fieldsOf(t, err))
		_, err = b.eng.DequeueN(ctx, uuid.Nil, 0)
		require.Equal(t, []string{"uuid", "n"}, fieldsOf(t, err), "every bad argument at once")
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.eng.TryDequeue(b.ctx, uuid.New())
		require.ErrorIs(t, err, store.ErrNotFound)
	})
}

func TestEngine_Lease(t *testing.T) {
	t.Parallel()

	t.Run("Complete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 1)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, p.UUID, l.PoolUUID)
		require.Equal(t, ids[0], l.ContactUUID)
		require.Equal(t, 1, l.Attempt)
		require.Equal(t, b.clock.Now().Add(testLease), l.ExpiresAt)
		require.NoError(t, b.eng.MarkInCall(b.ctx, l))
		require.Equal(t, pool.StatusInCall, b.item(t, p.UUID, ids[0]).Status)
		require.NoError(t, b.eng.Complete(b.ctx, l, "answered"))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusCompleted, it.Status)
		require.Equal(t, "answered", it.Notes)
		require.Equal(t, b.clock.Now(), *it.CompletedAt)

		// The lease is spent: every settling call now loses.
		require.ErrorIs(t, b.eng.Complete(b.ctx, l, ""), queue.ErrLeaseLost)
		require.ErrorIs(t, b.eng.Fail(b.ctx, l, queue.Failure{}), queue.ErrLeaseLost)
		require.ErrorIs(t, b.eng.Release(b.ctx, l), queue.ErrLeaseLost)
		require.ErrorIs(t, b.eng.Extend(b.ctx, l, time.Minute), queue.ErrLeaseLost)
		require.ErrorIs(t, b.eng.MarkInCall(b.ctx, l), queue.ErrLeaseLost)
		require.Equal(t, it, b.item(t, p.UUID, ids[0]))
	})

	t.Run("StaleTokenAfterRedispatch", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		b.add(t, p.UUID, 1)
		old, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Release(b.ctx, old))
		cur, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Greater(t, cur.Token, old.Token)
		require.Equal(t, 1, cur.Attempt, "a released attempt is not counted")
		require.ErrorIs(t, b.eng.Complete(b.ctx, old, ""), queue.ErrLeaseLost)
		require.NoError(t, b.eng.Complete(b.ctx, cur, ""))
	})

	t.Run("FailRetryThenCeiling", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 1) // two attempts
		ids := b.add(t, p.UUID, 1)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "busy"}))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, b.clock.Now().Add(testRetry), *it.NextRetryAt)
		require.Equal(t, 1, it.RetryCount)

		_, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.ErrorIs(t, err, queue.ErrEmpty, "not due before its retry time")
		b.clock.Advance(testRetry)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 2, l.Attempt)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Note: "no answer"}))
		it = b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusFailed, it.Status)
		require.Equal(t, 1, it.RetryCount, "the last failure schedules no retry: max_retries 1")
		require.Equal(t, b.clock.Now(), *it.FailedAt)
	})

	t.Run("FailScheduledAndFinal", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.Parallel, 10, 5)
		ids := b.add(t, p.UUID, 2)
		ls, err := b.eng.DequeueN(b.ctx, p.UUID, 2)
		require.NoError(t, err)
		at := b.clock.Now().Add(3 * time.Hour)
		require.NoError(t, b.eng.Fail(b.ctx, ls[0], queue.Failure{RetryAt: at}))
		require.NoError(t, b.eng.Fail(b.ctx, ls[1], queue.Failure{Final: true, Note: "wrong number"}))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusScheduled, it.Status)
		require.Equal(t, at, *it.NextRetryAt)
		require.Equal(t, pool.StatusFailed, b.item(t, p.UUID, ids[1]).Status)
	})

	t.Run("CeilingLowered", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 2)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now()}))
		zero := 0
		_, err = b.eng.UpdatePool(b.ctx, p.UUID, pool.UpdateParams{MaxRetries: &zero})
		require.NoError(t, err)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[1], l.ContactUUID, "the item at the ceiling is failed, the next one goes")
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusFailed, it.Status)
		require.Equal(t, 1, it.Attempts)
	})

	t.Run("Expiry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 2)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		b.clock.Advance(testLease)
		require.ErrorIs(t, b.eng.Complete(b.ctx, l, ""), queue.ErrLeaseLost, "lost at its deadline")
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, 1, it.RetryCount)
		require.Equal(t, pool.NoteExpired, it.Notes)

		// The slot is free again: the next item goes.
		l2, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[1], l2.ContactUUID)
	})

	t.Run("ExpiryBeforeCapacity", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 2)
		_, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		b.clock.Advance(testLease + time.Second)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err, "the expired lease is reclaimed before the cap is checked")
		require.Equal(t, ids[1], l.ContactUUID)
		require.Equal(t, 1, b.counts(t, p.UUID)[pool.StatusRetrying])
	})

	t.Run("Extend", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		b.add(t, p.UUID, 1)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		b.clock.Advance(testLease / 2)
		require.NoError(t, b.eng.Extend(b.ctx, l, 5*time.Minute))
		require.Equal(t, b.clock.Now().Add(5*time.Minute), l.ExpiresAt)
		b.clock.Advance(testLease)
		require.NoError(t, b.eng.Complete(b.ctx, l, ""), "the extended lease still holds")

		err = b.eng.Extend(b.ctx, l, 0)
		require.Equal(t, []string{"duration"}, fieldsOf(t, err))
	})

	t.Run("ReleaseAfterFailureIsRetryingDueNow", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		p := b.pool(t, pool.FIFO, 10, 3)
		ids := b.add(t, p.UUID, 1)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{RetryAt: b.clock.Now()}))
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.NoError(t, b.eng.Release(b.ctx, l))
		it := b.item(t, p.UUID, ids[0])
		require.Equal(t, pool.StatusRetrying, it.Status)
		require.Equal(t, 1, it.Attempts)
		l, err = b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 2, l.Attempt)
	})

	t.Run("ErrInvalidLease", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, []string{"lease"}, fieldsOf(t, b.eng.Complete(b.ctx, nil, "")))
		require.ElementsMatch(t, []string{"pool_uuid", "contact_uuid", "item_id", "token"}, fieldsOf(t, b.eng.Complete(b.ctx, &queue.Lease{}, "")))
		// A lease naming no contact is malformed, not lost.
		p := b.pool(t, pool.FIFO, 1, 3)
		b.add(t, p.UUID, 1)
		l, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		noContact := *l
		noContact.ContactUUID = uuid.Nil
		require.Equal(t, []string{"contact_uuid"}, fieldsOf(t, b.eng.Release(b.ctx, &noContact)))
		require.NoError(t, b.eng.Release(b.ctx, l))
	})
}

func TestEngine_ItemOps(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.Parallel, 10, 3)
	ids := b.add(t, p.UUID, 4)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, ids[0], l.ContactUUID)

	t.Run("ErrInFlight", func(t *testing.T) {
		_, err := b.eng.Skip(b.ctx, p.UUID, ids[0], "")
		require.ErrorIs(t, err, queue.ErrInFlight)
		_, err = b.eng.Requeue(b.ctx, p.UUID, ids[0])
		require.ErrorIs(t, err, queue.ErrInFlight)
		_, err = b.eng.SetPriority(b.ctx, p.UUID, ids[0], 3)
		require.ErrorIs(t, err, queue.ErrInFlight)
		n, err := b.eng.Remove(b.ctx, p.UUID, ids[1], ids[0])
		require.ErrorIs(t, err, queue.ErrInFlight)
		require.ErrorContains(t, err, ids[0].String(), "names the contact in flight")
		require.Zero(t, n)
		require.Equal(t, 4, b.counts(t, p.UUID)[pool.StatusPending]+1, "nothing removed")
	})
	t.Run("SkipRequeue", func(t *testing.T) {
		it, err := b.eng.Skip(b.ctx, p.UUID, ids[1], "opted out")
		require.NoError(t, err)
		require.Equal(t, pool.StatusSkipped, it.Status)
		_, err = b.eng.Skip(b.ctx, p.UUID, ids[1], "")
		require.ErrorIs(t, err, queue.ErrWrongStatus)
		_, err = b.eng.Requeue(b.ctx, p.UUID, ids[2])
		require.ErrorIs(t, err, queue.ErrWrongStatus)
		it, err = b.eng.Requeue(b.ctx, p.UUID, ids[1])
		require.NoError(t, err)
		require.Equal(t, pool.StatusPending, it.Status)
		require.Empty(t, it.Notes)
	})
	t.Run("SetPriority", func(t *testing.T) {
		it, err := b.eng.SetPriority(b.ctx, p.UUID, ids[3], 50)
		require.NoError(t, err)
		require.Equal(t, 50, it.Priority)
		l2, err := b.eng.TryDequeue(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, ids[3], l2.ContactUUID)
		require.NoError(t, b.eng.Release(b.ctx, l2))
	})
	t.Run("Remove", func(t *testing.T) {
		n, err := b.eng.Remove(b.ctx, p.UUID, ids[2], uuid.New())
		require.NoError(t, err)
		require.Equal(t, 1, n)
		_, err = b.eng.Item(b.ctx, p.UUID, ids[2])
		require.ErrorIs(t, err, store.ErrNotFound)
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, 3, d.ContactsCount)
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		_, err := b.eng.Skip(b.ctx, p.UUID, uuid.New(), "")
		require.ErrorIs(t, err, store.ErrNotFound)
	})
	t.Run("ErrNilUUID", func(t *testing.T) {
		_, err := b.eng.Skip(b.ctx, p.UUID, uuid.Nil, "")
		require.Equal(t, []string{"contact_uuid"}, fieldsOf(t, err))
	})
}

func TestEngine_Items(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 10, 3)
	ids := b.add(t, p.UUID, 30)
	l, err := b.eng.TryDequeue(b.ctx, p.UUID)
	require.NoError(t, err)
	require.NoError(t, b.eng.Fail(b.ctx, l, queue.Failure{Final: true}))

	pg, err := b.eng.Items(b.ctx, p.UUID, pool.ItemQuery{Page: 2})
	require.NoError(t, err)
	require.Equal(t, 30, pg.Total)
	require.Equal(t, 2, pg.LastPage)
	require.Equal(t, 25, pg.PerPage)
	require.Len(t, pg.Data, 5)
	require.Equal(t, ids[25], pg.Data[0].ContactUUID)

	pg, err = b.eng.Items(b.ctx, p.UUID, pool.ItemQuery{Status: "failed"})
	require.NoError(t, err)
	require.Equal(t, 1, pg.Total)
	require.Equal(t, ids[0], pg.Data[0].ContactUUID)

	_, err = b.eng.Items(b.ctx, p.UUID, pool.ItemQuery{Status: "Done"})
	require.Equal(t, []string{"status"}, fieldsOf(t, err))
	_, err = b.eng.Items(b.ctx, uuid.New(), pool.ItemQuery{})
	require.ErrorIs(t, err, store.ErrNotFound)
}

// TestEngine_ItemsAfter: a walk by keyset (After the last item's ID)
// meets every item once, in insertion order, with the whole pool's total
// on every page; a page number with After, or a negative After, is a field
// error.
func TestEngine_ItemsAfter(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.pool(t, pool.FIFO, 10, 3)
	ids := b.add(t, p.UUID, 30)

	var got []uuid.UUID
	var after int64
	for {
		pg, err := b.eng.Items(b.ctx, p.UUID, pool.ItemQuery{After: after, PerPage: 7})
		require.NoError(t, err)
		require.Equal(t, 30, pg.Total)
		if len(pg.Data) == 0 {
			break
		}
		for _, it := range pg.Data {
			got = append(got, it.ContactUUID)
		}
		after = pg.Data[len(pg.Data)-1].ID
	}
	require.Equal(t, ids, got)

	_, err := b.eng.Items(b.ctx, p.UUID, pool.ItemQuery{After: after, Page: 2})
	require.Equal(t, []string{"page"}, fieldsOf(t, err))
	_, err = b.eng.Items(b.ctx, p.UUID, pool.ItemQuery{After: -1})
	require.Equal(t, []string{"after"}, fieldsOf(t, err))
}

func TestEngine_Close(t *testing.T) {
	t.Parallel()
	b := setup(t)
	require.NoError(t, b.eng.Close())
	require.NoError(t, b.eng.Close())
	_, err := b.eng.CreatePool(b.ctx, pool.CreateParams{Name: "abc", Description: "d"})
	require.ErrorIs(t, err, queue.ErrClosed)
}

// slowReads delays the start of every read, so that it overlaps Close.
type slowReads struct {
	store.Store
	started chan struct{}
}

func (s slowReads) Read(ctx context.Context, fn func(store.Tx) error) error {
	s.started <- struct{}{}
	time.Sleep(100 * time.Millisecond)
	return s.Store.Read(ctx, fn)
}

// TestEngine_CloseDuringRead: Close does not wait for reads, and the host
// may close the store once Close returned; a read under way then fails
// with ErrClosed, as every call after Close does, not with the closed
// store's error.
func TestEngine_CloseDuringRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/close.db", sqlite.Options{})
	require.NoError(t, err)
	reads := slowReads{st, make(chan struct{}, 1)}
	eng, err := queue.New(reads, queue.Options{})
	require.NoError(t, err)
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "closing", Description: "d"})
	require.NoError(t, err)
	res := make(chan error, 1)
	go func() { _, err := eng.Pool(ctx, p.UUID); res <- err }()
	<-reads.started
	require.NoError(t, eng.Close())
	require.NoError(t, st.Close())
	require.ErrorIs(t, <-res, queue.ErrClosed)
}

// tickingClock moves on by step at every reading, as a slow transaction
// sees the time go by.
type tickingClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

func (c *tickingClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestEngine_ClaimAtOneInstant: a claim whose clock moved during its
// transaction (it waited for its pool) judges everything after the wait at
// one instant: the expired lease it applies is retried RetryDelay after
// that instant, so the same claim does not dispatch it again at once.
func TestEngine_ClaimAtOneInstant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	clk := &tickingClock{t: time.Date(2026, 1, 2, 9, 0, 0, 0, time.UTC), step: 100 * time.Millisecond}
	eng := openEngine(t, st, queue.Options{Now: clk.Now, LeaseTimeout: time.Minute, RetryDelay: 50 * time.Millisecond})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "ticking", Description: "d"})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	_, err = eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)
	clk.Advance(time.Hour) // the holder vanished

	_, err = eng.TryDequeue(ctx, p.UUID)
	require.ErrorIs(t, err, queue.ErrEmpty, "the expired item was dispatched again in the claim that applied its expiry")
	items := allItems(ctx, t, eng, p.UUID, 10)
	require.Equal(t, pool.StatusRetrying, items[0].Status)
	require.Equal(t, 1, items[0].Attempts)
}
