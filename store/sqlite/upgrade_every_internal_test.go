package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestMigrate_EveryVersionWithLeases makes a file at every earlier schema
// version (1 … latest-1), with a FIFO pool (2 in parallel) holding an item
// in every status, two of them leased, a retry due and a retry to come,
// written with the columns of version 1 (which every version has), opens it
// with today's code and checks through the engine: every field reads back,
// the counts carry over, the cap counts the leases taken before the
// upgrade, a lease taken before the upgrade settles with its token (and a
// stale token is refused), and dispatch goes on in FIFO order.
//
// Not parallel: it narrows the package's migrations (fileAtVersion).
func TestMigrate_EveryVersionWithLeases(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	for k := 1; k < latestVersion(); k++ {
		t.Run(fmt.Sprintf("v%d", k), func(t *testing.T) { upgradeWithLeases(t, k) })
	}
}

func upgradeWithLeases(t *testing.T, version int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	var (
		db   interface{ Close() error }
		exec func(string, ...any)
	)
	if version >= 9 {
		db, exec = searchFileAtVersion(t, path, version)
	} else {
		db, exec = fileAtVersion(t, path, version)
	}

	now := time.Now().UTC().Truncate(time.Microsecond)
	ns := func(d time.Duration) int64 { return now.Add(d).UnixNano() }
	p := uuid.New()
	exec(`INSERT INTO pools (uuid, name, description, type, max_parallel_items, max_retries,
    is_active, created_at, updated_at, search) VALUES (?, 'old pool', 'desc', 'FIFO', 2, 3, 1, ?, ?, 'old pool')`,
		p[:], ns(-time.Hour), ns(-time.Hour))
	type row struct {
		status          pool.Status
		prio, att, retr int
		started, done   *int64
		failed, next    *int64
		token           int64
		lease           *int64
		ready           int
		notes, payload  string
	}
	v := func(d time.Duration) *int64 { x := ns(d); return &x }
	rows := []row{
		{status: pool.StatusPending, prio: 5, notes: "p1", payload: `{"a":1}`, ready: 1},
		{status: pool.StatusProcessing, att: 1, started: v(-time.Minute), token: 7, lease: v(time.Hour), notes: "leased"},
		{status: pool.StatusInCall, att: 2, retr: 1, started: v(-time.Minute), token: 9, lease: v(time.Hour), notes: "in call"},
		{status: pool.StatusRetrying, att: 1, retr: 1, next: v(-time.Minute), token: 3, notes: "retry due"},
		{status: pool.StatusScheduled, next: v(time.Hour), notes: "later"},
		{status: pool.StatusCompleted, att: 1, started: v(-2 * time.Minute), done: v(-time.Minute), token: 4, notes: "done"},
		{status: pool.StatusFailed, att: 4, retr: 3, started: v(-2 * time.Minute), failed: v(-time.Minute), token: 5, notes: "failed"},
		{status: pool.StatusSkipped, notes: "skipped"},
		{status: pool.StatusPending, prio: -1, ready: 1, notes: "p2"},
	}
	contacts := make([]uuid.UUID, len(rows))
	counts := pool.ZeroCounts()
	for i, r := range rows {
		contacts[i] = uuid.New()
		var payload any
		if r.payload != "" {
			payload = r.payload
		}
		exec(`INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count, started_at,
    completed_at, failed_at, next_retry_at, notes, added_at, payload, token, lease_expires_at, ready)
    VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			contacts[i][:], string(r.status), r.prio, r.att, r.retr, r.started, r.done, r.failed, r.next, r.notes,
			ns(time.Duration(i)-time.Hour), payload, r.token, r.lease, r.ready)
		counts[r.status]++
	}
	if version >= 2 { // the store kept the counts
		for s, n := range counts {
			exec(`UPDATE pool_counts SET n = ? WHERE pool_id = 1 AND status = ?`, n, string(s))
		}
	}
	require.NoError(t, db.Close())

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
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

	// The two leases taken before the upgrade fill the cap.
	_, err = e.TryDequeue(ctx, p)
	require.ErrorIs(t, err, queue.ErrAtCapacity, "two leases in flight, max 2 in parallel")

	// A stale token is refused; the lease's own settles.
	stale := &queue.Lease{PoolUUID: p, ContactUUID: contacts[1], ItemID: 2, Token: 6, Attempt: 1, ExpiresAt: now.Add(time.Hour)}
	require.ErrorIs(t, e.Complete(ctx, stale, "stale"), queue.ErrLeaseLost)
	lease := &queue.Lease{PoolUUID: p, ContactUUID: contacts[1], ItemID: 2, Token: 7, Attempt: 1, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, e.Complete(ctx, lease, "done after the upgrade"))
	inCall := &queue.Lease{PoolUUID: p, ContactUUID: contacts[2], ItemID: 3, Token: 9, Attempt: 2, ExpiresAt: now.Add(time.Hour)}
	require.NoError(t, e.Complete(ctx, inCall, "connected before the upgrade"))

	// FIFO: the items due, in insertion order: 1, 4 (its retry came), 9.
	var got []uuid.UUID
	for range 3 {
		l, err := e.TryDequeue(ctx, p)
		require.NoError(t, err)
		require.NotNil(t, l)
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
