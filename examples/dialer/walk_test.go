package main

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestEachItem: the summary's walk meets every item of the pool once, in
// insertion order, over pages (250 items: two full pages and a part), a
// status filter keeps only that status, and the walk stops after a full
// last page too (200 items).
func TestEachItem(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "walk.db"), sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	eng, err := queue.New(st, queue.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })

	for _, n := range []int{250, 200} {
		p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "walked", Description: "d"})
		require.NoError(t, err)
		want := make([]uuid.UUID, n)
		items := make([]pool.NewItem, n)
		for i := range items {
			want[i] = uuid.New()
			items[i] = pool.NewItem{ContactUUID: want[i]}
		}
		_, err = eng.Add(ctx, p.UUID, items...)
		require.NoError(t, err)
		for i := 0; i < n; i += 3 {
			_, err := eng.Skip(ctx, p.UUID, want[i], "walked past")
			require.NoError(t, err)
		}

		var got, skipped []uuid.UUID
		require.NoError(t, eachItem(ctx, eng, p.UUID, "", func(it pool.Item) { got = append(got, it.ContactUUID) }))
		require.Equal(t, want, got, "n=%d", n)
		require.NoError(t, eachItem(ctx, eng, p.UUID, pool.StatusSkipped, func(it pool.Item) {
			require.Equal(t, "walked past", it.Notes)
			skipped = append(skipped, it.ContactUUID)
		}))
		var wantSkipped []uuid.UUID
		for i := 0; i < n; i += 3 {
			wantSkipped = append(wantSkipped, want[i])
		}
		require.Equal(t, wantSkipped, skipped, "n=%d", n)
	}
}
