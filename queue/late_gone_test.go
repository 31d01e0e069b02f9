package queue_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// afterWriteStore runs after once, when the first write transaction after
// it is armed has ended.
type afterWriteStore struct {
	store.Store
	armed atomic.Bool
	after func()
}

func (s *afterWriteStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.Store.Write(ctx, fn)
	if s.armed.CompareAndSwap(true, false) {
		s.after()
	}
	return err
}

// TestEngine_LateClaimOfACallerGoneIsGivenBack: a claim commits long after
// it was judged (the clock moves 3 s while it commits) and its caller's
// context ends meanwhile. The leases are still given back, unattempted:
// the caller left, but no one else holds them, and a lease left to its end
// would come back as a failed attempt (under max_retries 0, Failed) of a
// contact never called.
func TestEngine_LateClaimOfACallerGoneIsGivenBack(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, ":memory:", sqlite.Options{CheckCache: true})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	as := &afterWriteStore{Store: st}
	clk := newClock()
	eng, err := queue.New(as, queue.Options{LeaseTimeout: 10 * time.Minute, Now: clk.Now})
	require.NoError(t, err)
	t.Cleanup(func() { eng.Close() })
	zero := 0
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "late", Description: "d", MaxRetries: &zero})
	require.NoError(t, err)
	c := uuid.New()
	_, err = eng.Add(ctx, p.UUID, pool.NewItem{ContactUUID: c})
	require.NoError(t, err)

	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	as.after = func() {
		clk.Advance(3 * time.Second) // the claim's answer, late
		cancel()                     // and its caller gone
	}
	as.armed.Store(true)
	_, err = eng.TryDequeue(dctx, p.UUID)
	require.ErrorIs(t, err, context.Canceled)
	it, err := eng.Item(ctx, p.UUID, c)
	require.NoError(t, err)
	require.Equal(t, pool.StatusPending, it.Status, "given back")
	require.Zero(t, it.Attempts, "given back, unattempted")
}
