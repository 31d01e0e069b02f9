package queue_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_AddLargeBatch adds a batch several of Add's chunks long, with
// repeats that straddle the chunks and contacts already in the pool: the
// counts, the insertion order and the FIFO order must be those of the
// batch, first occurrences winning.
func TestEngine_AddLargeBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("no concurrency; the plain run covers it, and -short (CI's race run) leaves it out")
	}
	ctx := context.Background()
	eng := openEngine(t, openFileStore(t, ""), queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "large", Description: "chunked add"})
	require.NoError(t, err)
	existing := []uuid.UUID{uuid.New(), uuid.New()}
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: existing[0]}, pool.NewItem{ContactUUID: existing[1]})
	require.NoError(t, err)

	const n = 10_000
	batch := make([]pool.NewItem, 0, n+3)
	want := []uuid.UUID{existing[0], existing[1]}
	for i := range n {
		c := uuid.New()
		batch = append(batch, pool.NewItem{ContactUUID: c, Priority: i})
		want = append(want, c)
	}
	// Repeats of items 10 and 5000 far from their first occurrence, and the
	// pool's existing contacts.
	batch = append(batch, pool.NewItem{ContactUUID: batch[10].ContactUUID, Priority: -1},
		pool.NewItem{ContactUUID: existing[1]}, pool.NewItem{ContactUUID: batch[5000].ContactUUID})
	batch = append([]pool.NewItem{{ContactUUID: existing[0]}}, batch...)

	res, err := eng.Add(ctx, p.UUID, batch...)
	require.NoError(t, err)
	require.Equal(t, pool.AddResult{ContactsAdded: n, ContactsSkipped: 2}, res)

	items := allItems(ctx, t, eng, p.UUID, 100)
	require.Len(t, items, n+2)
	for i, it := range items {
		require.Equal(t, want[i], it.ContactUUID, "item %d in insertion order", i)
		if i >= 2 {
			require.Equal(t, i-2, it.Priority, "the first occurrence's priority")
		}
	}
	d, err := eng.Pool(ctx, p.UUID)
	require.NoError(t, err)
	require.Equal(t, n+2, d.ContactsCount)
	require.Equal(t, n+2, d.StatusCounts[pool.StatusPending])
}
