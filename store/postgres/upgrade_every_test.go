package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_UpgradesEveryVersionWithLeases makes a schema at every earlier
// version (1 … latest-1), with a FIFO pool (2 in parallel) holding an item
// in every status, two of them leased, a retry due and a retry to come,
// written with the columns of version 1 (which every version has), opens
// it with today's code and checks through the engine: every field reads
// back, the counts carry over, the cap counts the leases taken before the
// upgrade, a lease taken before the upgrade settles with its token (a
// stale token is refused), and dispatch goes on in FIFO order.
func TestOpen_UpgradesEveryVersionWithLeases(t *testing.T) {
	oneGoroutine(t)
	url := pgtest.URL(t)
	for k := 1; k < postgres.LatestVersion(); k++ {
		t.Run(fmt.Sprintf("v%d", k), func(t *testing.T) { pgUpgradeWithLeases(t, url, k) })
	}
}

func pgUpgradeWithLeases(t *testing.T, url string, version int) {
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, version))
	conn := postgres.SchemaConn(t, url, schema)

	now := time.Now().UTC().Truncate(time.Microsecond)
	ns := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	p := uuid.New()
	var k int64
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, 'old pool', 'desc', 'FIFO', 2, 3, true, $2, $2, 'old pool')
    RETURNING id`, p, ns(-time.Hour)).Scan(&k))
	type row struct {
		status          pool.Status
		prio, att, retr int
		started, done   *int64
		failed, next    *int64
		token           int64
		lease           *int64
		ready           bool
		notes, payload  string
	}
	v := func(d time.Duration) *int64 { x := ns(d); return &x }
	rows := []row{
		{status: pool.StatusPending, prio: 5, notes: "p1", payload: `{"a":1}`, ready: true},
		{status: pool.StatusProcessing, att: 1, started: v(-time.Minute), token: 7, lease: v(time.Hour), notes: "leased"},
		{status: pool.StatusInCall, att: 2, retr: 1, started: v(-time.Minute), token: 9, lease: v(time.Hour), notes: "in call"},
		{status: pool.StatusRetrying, att: 1, retr: 1, next: v(-time.Minute), token: 3, notes: "retry due"},
		{status: pool.StatusScheduled, next: v(time.Hour), notes: "later"},
		{status: pool.StatusCompleted, att: 1, started: v(-2 * time.Minute), done: v(-time.Minute), token: 4, notes: "done"},
		{status: pool.StatusFailed, att: 4, retr: 3, started: v(-2 * time.Minute), failed: v(-time.Minute), token: 5, notes: "failed"},
		{status: pool.StatusSkipped, notes: "skipped"},
		{status: pool.StatusPending, prio: -1, ready: true, notes: "p2"},
	}
	contacts := make([]uuid.UUID, len(rows))
	counts := pool.ZeroCounts()
	for i, r := range rows {
		contacts[i] = uuid.New()
		var payload []byte
		if r.payload != "" {
			payload = []byte(r.payload)
		}
		_, err := conn.Exec(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, started_at,
    completed_at, failed_at, next_retry_at, notes, added_at, payload, token, lease_expires_at, ready)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
			k, contacts[i], string(r.status), r.prio, r.att, r.retr, r.started, r.done, r.failed, r.next, r.notes,
			ns(time.Duration(i)-time.Hour), payload, r.token, r.lease, r.ready)
		require.NoError(t, err)
		counts[r.status]++
	}
	_, err := conn.Exec(ctx, `INSERT INTO pool_counts (pool_id, pending, processing, in_call, retrying, scheduled, completed,
    failed, skipped) VALUES ($1, 2, 1, 1, 1, 1, 1, 1, 1)`, k)
	require.NoError(t, err)

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	e, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	defer e.Close()

	d, err := e.Pool(ctx, p)
	require.NoError(t, err)
	require.Equal(t, counts, d.StatusCounts)
	require.Equal(t, pool.FIFO, d.Type)
	require.Equal(t, 2, d.MaxParallelItems)
	require.Equal(t, 3, d.MaxRetries)
	require.Equal(t, "desc", d.Description)

	page, err := e.Items(ctx, p, pool.ItemQuery{PerPage: 100})
	require.NoError(t, err)
	require.Len(t, page.Data, len(rows))
	tm := func(x *int64) *time.Time {
		if x == nil {
			return nil
		}
		y := time.Unix(0, *x).UTC()
		return &y
	}
	for i, it := range page.Data {
		r := rows[i]
		require.Equal(t, contacts[i], it.ContactUUID, "item %d", i)
		require.Equal(t, r.status, it.Status, "item %d", i)
		require.Equal(t, r.prio, it.Priority, "item %d", i)
		require.Equal(t, r.att, it.Attempts, "item %d", i)
		require.Equal(t, r.retr, it.RetryCount, "item %d", i)
		require.Equal(t, tm(r.started), it.StartedAt, "item %d", i)
		require.Equal(t, tm(r.done), it.CompletedAt, "item %d", i)
		require.Equal(t, tm(r.failed), it.FailedAt, "item %d", i)
		require.Equal(t, tm(r.next), it.NextRetryAt, "item %d", i)
		require.Equal(t, r.notes, it.Notes, "item %d", i)
		require.True(t, it.AddedAt.Equal(time.Unix(0, ns(time.Duration(i)-time.Hour))), "item %d", i)
		if r.payload != "" {
			require.JSONEq(t, r.payload, string(it.Payload), "item %d", i)
		} else {
			require.Empty(t, it.Payload, "item %d", i)
		}
		require.True(t, it.Contact.IsZero(), "item %d", i)
	}

	_, err = e.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "two leases in flight, max 2 in parallel")

	r2, err := conn.Query(ctx, `SELECT id FROM items ORDER BY id`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(r2, pgx.RowTo[int64])
	require.NoError(t, err)
	stale := &queue.Lease{PoolUUID: p, ContactUUID: contacts[1], ItemID: ids[1], Token: 6, Attempt: 1, ExpiresAt: now.Add(time.Hour)}
	require.ErrorIs(t, e.Complete(ctx, stale, "stale"), queue.ErrLeaseLost)
	lease := &queue.Lease{PoolUUID: p, ContactUUID: contacts[1], ItemID: ids[1], Token: 7, Attempt: 1, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, e.Complete(ctx, lease, "done after the upgrade"))
	inCall := &queue.Lease{PoolUUID: p, ContactUUID: contacts[2], ItemID: ids[2], Token: 9, Attempt: 2, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, e.Complete(ctx, inCall, "connected before the upgrade"))

	var got []uuid.UUID
	for range 3 {
		l, err := e.TryDequeue(ctx, p)
		require.NoError(t, err)
		got = append(got, l.ContactUUID)
		require.NoError(t, e.Complete(ctx, l, ""))
	}
	require.Equal(t, []uuid.UUID{contacts[0], contacts[3], contacts[8]}, got)
	_, err = e.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrEmpty, "the Scheduled item's time has not come")
	d, err = e.Pool(ctx, p)
	require.NoError(t, err)
	require.Equal(t, 6, d.StatusCounts[pool.StatusCompleted])
	require.Equal(t, 1, d.StatusCounts[pool.StatusScheduled])
}
