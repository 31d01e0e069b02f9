package postgres_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestAddDNC_WaitsForClaimsThatReadTheList: a claim reads the do-not-call
// list after it locks its pool, and commits later. AddDNC on another node
// takes the list's lock, which such a claim holds shared from its read on,
// so it returns only after the claim committed (the item is then in
// flight, for the host to see), and a claim that reads the list after it
// sees the entry. Without the lock, AddDNC returned while the claim that
// had read the list without the contact was still to commit: a call
// started after the list said "do not call". A write of the contact's
// pool that reads no list (an Add, a Complete, a claim under a rule
// without dnc_check) does not hold AddDNC up, and AddDNC holds up no write
// of another pool.
func TestAddDNC_WaitsForClaimsThatReadTheList(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	a := pgtest.Open(t, url, postgres.Options{})
	b := pgtest.OpenSchema(t, url, postgres.Options{Schema: a.Schema()})
	p, other := newTestPool("held"), newTestPool("other")
	items := pendingItems(1)
	c := items[0].ContactUUID
	stranger := uuid.New() // on the list, in no pool
	require.NoError(t, a.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, p); err != nil {
			return err
		}
		if err := tx.InsertPool(ctx, other); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, p.UUID, items)
		return err
	}))

	// hold runs a write of pool p that, with read, reads the list, and
	// holds it until release is closed.
	hold := func(read bool) (held, release chan struct{}, done chan error) {
		held, release, done = make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			first := true
			done <- a.Write(ctx, func(tx store.Tx) error {
				if _, err := tx.Pool(ctx, p.UUID); err != nil { // the claim's lock
					return err
				}
				if read {
					on, err := tx.OnDNC(ctx, c)
					if err != nil {
						return err
					}
					if on[c] {
						return errors.New("the contact is on the list before AddDNC ran")
					}
				}
				if first {
					first = false
					close(held)
				}
				<-release // the claim goes on, and commits
				return nil
			})
		}()
		<-held
		return held, release, done
	}
	addDNC := func() chan error {
		added := make(chan error, 1)
		go func() {
			added <- b.Write(ctx, func(tx store.Tx) error {
				_, err := tx.AddDNC(ctx, time.Now(), stranger, c)
				return err
			})
		}()
		return added
	}

	// A write of the pool that reads no list does not hold AddDNC up.
	_, release, claimed := hold(false)
	added := addDNC()
	select {
	case err := <-added:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("AddDNC waited for a write of the contact's pool that read no list")
	}
	close(release)
	require.NoError(t, <-claimed)
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error { _, err := tx.RemoveDNC(ctx, stranger, c); return err }))

	// A claim that read the list does.
	_, release, claimed = hold(true)
	added = addDNC()
	select {
	case err := <-added:
		close(release)
		<-claimed
		t.Fatalf("AddDNC returned (%v) while a claim that read the list without the contact had not committed", err)
	case <-time.After(500 * time.Millisecond):
	}
	// Another pool's writes do not wait for it.
	require.NoError(t, b.Write(ctx, func(tx store.Tx) error { _, err := tx.Pool(ctx, other.UUID); return err }))
	close(release)
	require.NoError(t, <-claimed)
	require.NoError(t, <-added)
	var on map[uuid.UUID]bool
	require.NoError(t, a.Write(ctx, func(tx store.Tx) (err error) {
		if _, err := tx.Pool(ctx, p.UUID); err != nil {
			return err
		}
		on, err = tx.OnDNC(ctx, c, stranger) // may run twice: a slow lock statement counts as a wait
		return err
	}))
	require.Equal(t, map[uuid.UUID]bool{c: true, stranger: true}, on)
}

// TestAddDNC_ContactsInMorePoolsThanLocks: AddDNC takes one lock, the
// list's, whatever the pools of its contacts. Until December 2026 it took
// the lock of every pool that held an item of them, each an entry of the
// server's shared lock table (max_locks_per_transaction ×
// (max_connections + max_prepared_transactions) slots): a contact in more
// pools than twice that failed with "out of shared memory", nothing added.
func TestAddDNC_ContactsInMorePoolsThanLocks(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	slots := lockSlots(t, st)
	n := 2*slots + 1000
	if n > 50_000 {
		t.Skipf("the server's lock table has %d slots: too many pools to make", slots)
	}
	template := newTestPool("pool")
	item := pendingItems(1)
	c := item[0].ContactUUID
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertPool(ctx, template); err != nil {
			return err
		}
		_, err := tx.InsertItems(ctx, template.UUID, item)
		return err
	}))
	clonePool(t, url, st.Schema(), template.UUID, n-1)
	var added int
	err := st.Write(ctx, func(tx store.Tx) (err error) {
		added, err = tx.AddDNC(ctx, time.Now(), c)
		return err
	})
	require.NoError(t, err, "AddDNC of a contact in %d pools (%d lock slots)", n, slots)
	require.Equal(t, 1, added)
}

// clonePool makes n copies of pool id, each with a copy of its items (the
// same contacts) and counts, in three statements of a session of its own:
// a store's InsertPool and InsertItems per pool took two minutes for
// 13,800 on a busy machine. Every column but the keys is copied as it is,
// whatever the migrations added.
func clonePool(t *testing.T, url, schema string, id uuid.UUID, n int) {
	t.Helper()
	ctx := context.Background()
	conn := postgres.SchemaConn(t, url, schema)
	// columns returns the columns of table but keys, and them prefixed.
	columns := func(table, prefix string, keys ...string) (string, string) {
		rows, err := conn.Query(ctx, `SELECT column_name FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2 AND is_identity = 'NO' AND is_generated = 'NEVER' AND column_name <> ALL($3)
ORDER BY ordinal_position`, schema, table, keys)
		require.NoError(t, err)
		cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.NotEmpty(t, cols, table)
		return strings.Join(cols, ", "), prefix + strings.Join(cols, ", "+prefix)
	}
	pools, _ := columns("pools", "", "uuid")
	items, fromItems := columns("items", "i.", "pool_id")
	counts, fromCounts := columns("pool_counts", "c.", "pool_id")
	for _, sql := range []string{
		`INSERT INTO pools (uuid, ` + pools + `) SELECT gen_random_uuid(), ` + pools + ` FROM pools, generate_series(1, $2) WHERE uuid = $1`,
		`INSERT INTO items (pool_id, ` + items + `) SELECT p.id, ` + fromItems + ` FROM pools p, items i
WHERE i.pool_id = (SELECT id FROM pools WHERE uuid = $1) AND p.uuid <> $1 AND $2::int > 0`,
		`INSERT INTO pool_counts (pool_id, ` + counts + `) SELECT p.id, ` + fromCounts + ` FROM pools p, pool_counts c
WHERE c.pool_id = (SELECT id FROM pools WHERE uuid = $1) AND p.uuid <> $1 AND $2::int > 0`,
	} {
		_, err := conn.Exec(ctx, sql, id, n)
		require.NoError(t, err)
	}
	var copies int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pools p JOIN pool_counts c ON c.pool_id = p.id
WHERE EXISTS (SELECT FROM items i WHERE i.pool_id = p.id)`).Scan(&copies))
	require.Equal(t, n+1, copies, "pools with items and counts")
}

// lockSlots returns the number of entries of the server's shared lock
// table: max_locks_per_transaction × (max_connections +
// max_prepared_transactions).
func lockSlots(t *testing.T, st *postgres.Store) int {
	t.Helper()
	setting := func(name string) int {
		v, err := postgres.Setting(context.Background(), st, name)
		require.NoError(t, err)
		n, err := strconv.Atoi(v)
		require.NoError(t, err)
		return n
	}
	return setting("max_locks_per_transaction") * (setting("max_connections") + setting("max_prepared_transactions"))
}
