package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_UpgradesVersion1 opens a schema left at version 1 (before items
// had contact fields) holding a pool and its items: Open brings it to the
// latest version in place, the items keep everything they had and have no
// contact fields, and the items added afterwards have theirs, and are
// found by a search.
func TestOpen_UpgradesVersion1(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	require.NoError(t, postgres.MigrateTo(ctx, url, schema, 1))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET search_path = "+schema)
	require.NoError(t, err)
	var version int
	require.NoError(t, conn.QueryRow(ctx, "SELECT max(version) FROM schema_version").Scan(&version))
	require.Equal(t, 1, version)

	// A pool with two Pending items and a Completed one, as version 1
	// stored them.
	p := newTestPool("from version 1")
	p.CreatedAt = time.Unix(0, p.CreatedAt.UnixNano()).UTC()
	p.UpdatedAt = p.CreatedAt
	var k int64
	require.NoError(t, conn.QueryRow(ctx, `INSERT INTO pools (uuid, name, description, type, max_parallel_items,
    max_retries, is_active, created_at, updated_at, search) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id`,
		p.UUID, p.Name, p.Description, string(p.Type), p.MaxParallelItems, p.MaxRetries, p.IsActive,
		p.CreatedAt.UnixNano(), "from version 1\ntest").Scan(&k))
	_, err = conn.Exec(ctx, `INSERT INTO pool_counts (pool_id, pending, completed) VALUES ($1, 2, 1)`, k)
	require.NoError(t, err)
	old := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	added := p.CreatedAt.Add(time.Second)
	for i, c := range old {
		status, ready, completed := "Pending", true, (*int64)(nil)
		if i == 2 {
			n := added.Add(time.Minute).UnixNano()
			status, ready, completed = "Completed", false, &n
		}
		_, err = conn.Exec(ctx, `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    completed_at, notes, added_at, payload, token, ready) VALUES ($1, $2, $3, $4, 0, 0, $5, '', $6, $7, 0, $8)`,
			k, c, status, i, completed, added.UnixNano(), []byte(`{"n":1}`), ready)
		require.NoError(t, err)
	}

	st := pgtest.OpenSchema(t, url, postgres.Options{Schema: schema})
	var versions []int
	rows, err := conn.Query(ctx, "SELECT version FROM schema_version ORDER BY version")
	require.NoError(t, err)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	want := make([]int, postgres.LatestVersion())
	for i := range want {
		want[i] = i + 1
	}
	require.Equal(t, want, versions, "every migration recorded once, in order")

	var items []pool.Item
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, err := tx.Pool(ctx, p.UUID)
		if err != nil {
			return err
		}
		require.Equal(t, 3, got.ContactsCount)
		items, _, err = tx.Items(ctx, p.UUID, pool.ItemQuery{Page: 1, PerPage: 10})
		return err
	}))
	require.Len(t, items, 3)
	for i, it := range items {
		require.Equal(t, old[i], it.ContactUUID)
		require.Zero(t, it.Contact, "an item of version 1 has no contact fields")
		require.JSONEq(t, `{"n":1}`, string(it.Payload))
	}
	require.Equal(t, pool.StatusCompleted, items[2].Status)

	// New items have contact fields; an old contact added again keeps
	// none; a search finds the new ones only.
	ada := pool.Contact{Name: "Ada Lovelace", Email: "ada@example.com", PhoneNumber: "+15551234567", TimeZone: "Europe/London"}
	fresh := []pool.Item{
		{ContactUUID: uuid.New(), Status: pool.StatusPending, AddedAt: added, Contact: ada},
		{ContactUUID: old[0], Status: pool.StatusPending, AddedAt: added, Contact: pool.Contact{Name: "Old Contact"}},
	}
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
		n, err := tx.InsertItems(ctx, p.UUID, fresh)
		require.Equal(t, 1, n)
		return err
	}))
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		got, total, err := tx.Items(ctx, p.UUID, pool.ItemQuery{Search: "lovelace", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		require.Equal(t, ada, got[0].Contact)
		require.Greater(t, got[0].ID, items[2].ID)
		got, total, err = tx.Items(ctx, p.UUID, pool.ItemQuery{Search: "old", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Zero(t, total)
		require.Empty(t, got)
		it, err := tx.Item(ctx, p.UUID, old[0])
		require.NoError(t, err)
		require.Zero(t, it.Contact)
		return nil
	}))
}
