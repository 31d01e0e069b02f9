package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// The do-not-call list's lock (see contacts.go): shared by the write
// transactions that read the list, exclusive by AddDNC, ordered after
// every pool's. TestAddDNC_WaitsForClaimsThatReadTheList has AddDNC wait
// for a reader; these have the readers wait for AddDNC, and check the
// lock's place in the order, its savepoints and its upgrade.

// dncFixture is three stores on one schema, each a node, and two pools.
type dncFixture struct {
	a, b, c *postgres.Store
	p, q    pool.Pool
}

func newDNCFixture(t *testing.T) *dncFixture {
	t.Helper()
	url := pgtest.URL(t)
	f := &dncFixture{a: pgtest.Open(t, url, postgres.Options{})}
	f.b = pgtest.OpenSchema(t, url, postgres.Options{Schema: f.a.Schema()})
	f.c = pgtest.OpenSchema(t, url, postgres.Options{Schema: f.a.Schema()})
	f.p, f.q = newTestPool("pool p"), newTestPool("pool q")
	require.NoError(t, f.a.Write(context.Background(), func(tx store.Tx) error {
		if err := tx.InsertPool(context.Background(), f.p); err != nil {
			return err
		}
		return tx.InsertPool(context.Background(), f.q)
	}))
	return f
}

// claimRead is what a claim does of the list: it locks its pool, then
// reads the list for contact.
func claimRead(ctx context.Context, tx store.Tx, p pool.Pool, contact uuid.UUID) (bool, error) {
	if _, err := tx.Pool(ctx, p.UUID); err != nil {
		return false, err
	}
	on, err := tx.OnDNC(ctx, contact)
	return on[contact], err
}

// within fails the test unless ch yields nil within d.
func within(t *testing.T, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		require.NoError(t, err, what)
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %v", what, d)
	}
}

// notWithin fails the test if ch yields within d.
func notWithin(t *testing.T, ch <-chan error, d time.Duration, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s (%v)", what, err)
	case <-time.After(d):
	}
}

// TestWrite_DNCReadersShareTheList: two claims that read the list, on two
// nodes, do not wait for each other (the claims of every pool run in
// parallel); a claim that holds its pool when an AddDNC holds the list
// waits for it, runs again (its instant was judged before the wait), and
// reads the entry; so does a read of the list that waited for the lock
// first thing, without running again: the read goes behind the lock,
// never before it.
func TestWrite_DNCReadersShareTheList(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDNCFixture(t)
	x := uuid.New()

	held := holdFor(t, f.a, 3*time.Second, func(tx store.Tx) error { _, err := claimRead(ctx, tx, f.p, x); return err })
	second := make(chan error, 1)
	go func() {
		second <- f.b.Write(ctx, func(tx store.Tx) error { _, err := claimRead(ctx, tx, f.q, x); return err })
	}()
	within(t, second, 2*time.Second, "a second reader of the list, while a reader holds it")
	require.NoError(t, <-held)

	added := holdFor(t, f.c, 300*time.Millisecond, func(tx store.Tx) error { _, err := tx.AddDNC(ctx, time.Now(), x); return err })
	waits := f.a.Stats().Waits
	var on bool
	read := make(chan error, 1)
	go func() {
		read <- f.a.Write(ctx, func(tx store.Tx) (err error) { on, err = claimRead(ctx, tx, f.p, x); return err })
	}()
	within(t, added, 10*time.Second, "the AddDNC")
	within(t, read, 10*time.Second, "the claim behind it")
	require.True(t, on, "a claim that waited for the list's lock read the list as the AddDNC left it")
	require.Equal(t, waits+1, f.a.Stats().Waits, "the claim ran again after its wait, the list's lock first")

	// A transaction whose first lock is the list's does not run again
	// after its wait: its read, behind the lock, is what it sees.
	y := uuid.New()
	added = holdFor(t, f.c, 300*time.Millisecond, func(tx store.Tx) error { _, err := tx.AddDNC(ctx, time.Now(), y); return err })
	go func() {
		read <- f.a.Write(ctx, func(tx store.Tx) error {
			got, err := tx.OnDNC(ctx, y)
			on = got[y]
			return err
		})
	}()
	within(t, added, 10*time.Second, "the second AddDNC")
	within(t, read, 10*time.Second, "the read behind it")
	require.True(t, on, "a read of the list that waited for its lock read the list as the AddDNC left it")
	require.Equal(t, waits+1, f.a.Stats().Waits, "no run again for a first lock's wait")
}

// TestWrite_DNCHolderWaitsForNoPool: a transaction that holds the list's
// lock never waits for a pool's (the list's comes after every pool's): an
// AddDNC that then needs a pool another node holds gives the list back
// and runs again, taking the pool first, so that the claims of every
// other pool that read the list are not held up by that node.
func TestWrite_DNCHolderWaitsForNoPool(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDNCFixture(t)
	x := uuid.New()

	poolHeld := holdFor(t, f.c, 4*time.Second, func(tx store.Tx) error { _, err := tx.Pool(ctx, f.p.UUID); return err })
	added, tried := make(chan error, 1), make(chan struct{})
	go func() {
		var once sync.Once
		added <- f.b.Write(ctx, func(tx store.Tx) error {
			if _, err := tx.AddDNC(ctx, time.Now(), x); err != nil {
				return err
			}
			once.Do(func() { close(tried) })
			_, err := tx.Pool(ctx, f.p.UUID)
			return err
		})
	}()
	<-tried
	time.Sleep(100 * time.Millisecond) // b meets p's lock
	read := make(chan error, 1)
	go func() {
		read <- f.a.Write(ctx, func(tx store.Tx) error { _, err := claimRead(ctx, tx, f.q, x); return err })
	}()
	within(t, read, 2*time.Second, "a claim of another pool, while the AddDNC waits for a pool another node holds")
	require.NoError(t, <-poolHeld)
	within(t, added, 10*time.Second, "the AddDNC")
}

// TestWrite_DNCLockInASavepoint: a savepoint rolled back gives back the
// list's lock it took, and the transaction knows it: a read of the list
// after it takes the lock again, and an AddDNC waits for it.
func TestWrite_DNCLockInASavepoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDNCFixture(t)
	x := uuid.New()

	undo := errors.New("undone")
	held := holdFor(t, f.a, time.Second, func(tx store.Tx) error {
		if _, err := tx.Pool(ctx, f.p.UUID); err != nil {
			return err
		}
		if err := tx.Savepoint(ctx, func(tx store.Tx) error {
			if _, err := tx.OnDNC(ctx, x); err != nil {
				return err
			}
			return undo
		}); !errors.Is(err, undo) {
			return err
		}
		_, err := tx.OnDNC(ctx, x)
		return err
	})
	added := make(chan error, 1)
	go func() {
		added <- f.b.Write(ctx, func(tx store.Tx) error { _, err := tx.AddDNC(ctx, time.Now(), x); return err })
	}()
	notWithin(t, added, 500*time.Millisecond, "AddDNC returned while a transaction that had read the list, after a savepoint's rollback, had not committed")
	require.NoError(t, <-held)
	within(t, added, 10*time.Second, "the AddDNC")
}

// TestWrite_DNCReadThenAdd: a transaction that read the list (shared) and
// then adds to it (exclusive), while another node's claim holds the list
// shared, runs again once, taking the lock exclusive first, and commits
// after that claim: never beside it.
func TestWrite_DNCReadThenAdd(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDNCFixture(t)
	x := uuid.New()

	const hold = time.Second
	start := time.Now()
	held := holdFor(t, f.c, hold, func(tx store.Tx) error { _, err := claimRead(ctx, tx, f.q, x); return err })
	retries := f.b.Stats().Retries
	require.NoError(t, f.b.Write(ctx, func(tx store.Tx) error {
		if _, err := tx.OnDNC(ctx, x); err != nil {
			return err
		}
		_, err := tx.AddDNC(ctx, time.Now(), x)
		return err
	}))
	require.GreaterOrEqual(t, time.Since(start), hold*8/10, "the AddDNC committed while a claim that read the list held it")
	require.NoError(t, <-held)
	require.Equal(t, retries+1, f.b.Stats().Retries, "ran again once, the list's lock taken exclusive first")
}

// TestWrite_EscalationLockInASavepoint: as TestWrite_DNCLockInASavepoint
// for the escalation lock: a savepoint rolled back gives back the lock it
// took, the transaction takes it again for its next escalation, and
// another node's escalation waits for it (IDs commit in the order they
// are taken).
func TestWrite_EscalationLockInASavepoint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newDNCFixture(t)
	esc := func(item int64) campaign.Escalation {
		return campaign.Escalation{PoolUUID: f.p.UUID, ContactUUID: uuid.New(), ItemID: item, CampaignUUID: uuid.New(),
			RuleUUID: uuid.New(), FailedAttempts: 1, At: time.Now()}
	}

	undo := errors.New("undone")
	held := holdFor(t, f.a, time.Second, func(tx store.Tx) error {
		if err := tx.Savepoint(ctx, func(tx store.Tx) error {
			if _, _, err := tx.InsertEscalation(ctx, esc(1)); err != nil {
				return err
			}
			return undo
		}); !errors.Is(err, undo) {
			return err
		}
		_, _, err := tx.InsertEscalation(ctx, esc(2))
		return err
	})
	other := make(chan error, 1)
	go func() {
		other <- f.b.Write(ctx, func(tx store.Tx) error { _, _, err := tx.InsertEscalation(ctx, esc(3)); return err })
	}()
	notWithin(t, other, 500*time.Millisecond, "an escalation committed beside a transaction that took the lock again after a savepoint's rollback")
	require.NoError(t, <-held)
	within(t, other, 10*time.Second, "the other escalation")
}
