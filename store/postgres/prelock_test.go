package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// The runs of a Write after a restart take the previous run's locks first
// (prelock), and take each again at its first use. These tests run one
// such run by hand (postgres.RunAfter).

// prelockFixture is a store with pools and a campaign, and their ids.
type prelockFixture struct {
	st    *postgres.Store
	url   string
	pools []postgres.Lock // in the order of their locks
	camp  postgres.Lock
}

func newPrelockFixture(t *testing.T, url string, l postgres.Locking, n int) *prelockFixture {
	t.Helper()
	ctx := context.Background()
	f := &prelockFixture{st: pgtest.Open(t, url, postgres.Options{Locking: l}), url: url}
	for i := range n {
		p := newTestPool(fmt.Sprintf("pool %d", i))
		require.NoError(t, f.st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
		f.pools = append(f.pools, postgres.Lock{ID: p.UUID, K: f.id(t, "pools", p.UUID)})
	}
	now := time.Now().UTC()
	c := campaign.Campaign{UUID: uuid.New(), Name: "campaign", Status: campaign.Draft, CreatedAt: now, UpdatedAt: now}
	require.NoError(t, f.st.Write(ctx, func(tx store.Tx) error {
		if err := tx.InsertCampaign(ctx, c); err != nil {
			return err
		}
		_, err := tx.AttachPool(ctx, c.UUID, f.pools[0].ID)
		return err
	}))
	f.camp = postgres.Lock{ID: c.UUID, K: f.id(t, "campaigns", c.UUID), Campaign: true}
	return f
}

// id returns the internal id of the row of table with this UUID.
func (f *prelockFixture) id(t *testing.T, table string, id uuid.UUID) int64 {
	t.Helper()
	ctx := context.Background()
	var k int64
	require.NoError(t, f.st.Read(ctx, func(tx store.Tx) error {
		return postgres.QueryRow(ctx, tx, fmt.Sprintf("SELECT id FROM %s WHERE uuid = '%s'", table, id), &k)
	}))
	return k
}

// lockTable holds table in ACCESS EXCLUSIVE mode, from a session of its
// own, for d: every statement that reads the table waits for it.
func (f *prelockFixture) lockTable(t *testing.T, table string, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(f.url)
	require.NoError(t, err)
	cfg.RuntimeParams["search_path"] = f.st.Schema()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, "LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)
	go func() {
		time.Sleep(d)
		_ = tx.Rollback(ctx)
		_ = conn.Close(ctx)
	}()
}

// TestWrite_SlowLockAlreadyHeld: a run that took a pool's or a campaign's
// lock first (prelock) takes it again at its first use, in a statement
// that cannot wait for it (this transaction holds it). When that statement
// is slow for another reason (here a table lock that the statements read;
// in the wild, a starved CPU), the run has not waited for a lock behind
// another transaction: it commits, and counts no wait. It used to run
// again (Waits 1), a run that took the same locks again and gained
// nothing.
func TestWrite_SlowLockAlreadyHeld(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		f := newPrelockFixture(t, url, l, 1)
		p, c := f.pools[0], f.camp
		// The fixture's own writes may count a wait: on a loaded
		// machine a statement after their first lock can take
		// longer than the slack. Only the runs below must not.
		waits := f.st.Stats().Waits

		f.lockTable(t, "campaign_pools", 200*time.Millisecond) // read with the pool's lock
		err, retry, _ := postgres.RunAfter(ctx, f.st, []postgres.Lock{c, p}, func(tx store.Tx) error {
			_, err := tx.Pool(ctx, p.ID)
			return err
		})
		require.NoError(t, err)
		require.NoError(t, retry, "the pool's lock, held already, counted as a wait")

		f.lockTable(t, "campaigns", 200*time.Millisecond) // read by the campaign's lock statement
		err, retry, _ = postgres.RunAfter(ctx, f.st, []postgres.Lock{c, p}, func(tx store.Tx) error {
			_, err := tx.Campaign(ctx, c.ID)
			return err
		})
		require.NoError(t, err)
		require.NoError(t, retry, "the campaign's lock, held already, counted as a wait")
		require.Equal(t, waits, f.st.Stats().Waits, "a wait counted")
	})
}

// TestWrite_PrelockedCampaignKept: a run that took a campaign's lock first
// and must run again before its first use of the campaign (here for a pool
// below the locks it holds, which another transaction holds) takes the
// campaign's lock first in the next run too. The set of locks a run takes
// first only grows: it used to lose the campaign, so the next run met it
// out of order again, one more run for a lock already learnt.
func TestWrite_PrelockedCampaignKept(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	forEachLocking(t, func(t *testing.T, l postgres.Locking) {
		ctx := context.Background()
		f := newPrelockFixture(t, url, l, 2)
		low, high, c := f.pools[0], f.pools[1], f.camp

		other := pgtest.OpenSchema(t, url, postgres.Options{Schema: f.st.Schema(), Locking: l})
		held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
		go func() {
			done <- other.Write(ctx, func(tx store.Tx) error {
				if _, err := tx.Pool(ctx, low.ID); err != nil {
					return err
				}
				close(held)
				<-release
				return nil
			})
		}()
		<-held
		err, retry, next := postgres.RunAfter(ctx, f.st, []postgres.Lock{c, high}, func(tx store.Tx) error {
			if _, err := tx.Pool(ctx, low.ID); err != nil { // below high, held: tried
				return err
			}
			_, err := tx.Campaign(ctx, c.ID)
			return err
		})
		close(release)
		require.NoError(t, <-done)
		require.Error(t, err)
		require.Error(t, retry, "the run must go round for the pool below")
		require.Equal(t, []postgres.Lock{c, low, high}, next, "the next run takes every lock first, the campaign's included")
	})
}
