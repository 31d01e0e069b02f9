package queue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestPostgres_ExtendAcrossTheCampaignsClaims: a contact is in pools A and
// Q of one running campaign, in a call from Q on one node. Its lease is
// about to end; that node's Extend judges it alive, and commits only after
// another node's claim in A has judged it ended (the same clock on both):
// the claim calls the contact from A, and the extension keeps the call
// from Q going, two calls at once to one contact of the campaign, for a
// whole lease. The claims of a campaign's pools run one at a time (the
// campaign's lock), but an extension ran beside them. Either the
// extension must be refused (ErrLeaseLost) or the claim pass the contact
// over (ErrEmpty).
//
// Two ways the extension commits late: it waits for its pool's lock
// behind another node for less than the engine's slack (its instant is
// then the transaction's, read before the wait), or its write of the item
// waits (a row another transaction holds) after it was judged.
func TestPostgres_ExtendAcrossTheCampaignsClaims(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, tc := range []struct {
		name string
		// hold holds up the extension of lease l until the returned
		// channel receives.
		hold func(t *testing.T, h *pgHolder, l *queue.Lease) <-chan error
	}{
		{"ItsPoolsLock", func(t *testing.T, h *pgHolder, l *queue.Lease) <-chan error {
			return holdPool(t, h.st, l.PoolUUID, 600*time.Millisecond)
		}},
		{"ItsItemsRow", func(t *testing.T, h *pgHolder, l *queue.Lease) <-chan error {
			return h.holdItemRow(t, l.ItemID, 600*time.Millisecond)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			const lease = time.Minute
			clk := &clock{t: time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)}
			engines, stores := pgEngines(t, url, 2, queue.Options{Now: clk.Now, LeaseTimeout: lease, PollInterval: time.Hour})
			claimer, extender := engines[0], engines[1]
			h := &pgHolder{url: url, schema: stores[0].Schema(),
				st: pgtest.OpenSchema(t, url, postgres.Options{Schema: stores[0].Schema(), MaxConns: 2})}
			b := &testBundle{ctx: ctx, eng: claimer, clock: clk}
			a, q, contact := b.sharedContact(t, allDay(10, 10), pool.Parallel, pool.Parallel)

			lq, err := extender.TryDequeue(ctx, q) // the call from Q
			require.NoError(t, err)
			require.Equal(t, contact, lq.ContactUUID)

			clk.Advance(lease - 10*time.Millisecond) // 10 ms of the lease left
			held := tc.hold(t, h, lq)
			extended := make(chan error, 1)
			go func() { extended <- extender.Extend(ctx, lq, lease) }()
			time.Sleep(200 * time.Millisecond) // the extension has begun, judged at 10 ms before the end, and waits

			clk.Advance(20 * time.Millisecond) // the lease ended 10 ms ago
			la, claimErr := claimer.TryDequeue(ctx, a)
			require.NoError(t, <-held)
			extendErr := <-extended

			if claimErr == nil {
				require.Equal(t, contact, la.ContactUUID)
			} else {
				require.ErrorIs(t, claimErr, queue.ErrEmpty)
			}
			if extendErr != nil {
				require.ErrorIs(t, extendErr, queue.ErrLeaseLost)
			}
			if claimErr == nil && extendErr == nil {
				t.Fatalf("the contact is called from A (lease until %s) while its call from Q was extended until %s",
					la.ExpiresAt.Format(time.StampMilli), lq.ExpiresAt.Format(time.StampMilli))
			}
		})
	}
}

// pgHolder holds locks of a schema as another node's transactions would.
type pgHolder struct {
	url, schema string
	st          *postgres.Store
}

// holdItemRow holds the row of item id (a lock a write of it waits for)
// for d, from a connection of its own, and returns once it holds it; the
// channel gets the transaction's result.
func (h *pgHolder) holdItemRow(t *testing.T, id int64, d time.Duration) <-chan error {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, h.url)
	require.NoError(t, err)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	var one int
	err = tx.QueryRow(ctx, `SELECT 1 FROM `+pgx.Identifier{h.schema, "items"}.Sanitize()+` WHERE id = $1 FOR UPDATE`, id).Scan(&one)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		time.Sleep(d)
		err := tx.Commit(ctx)
		done <- errors.Join(err, conn.Close(ctx))
	}()
	return done
}
