package queue_test

// Tests written by a mutation review of the management API (items.go,
// pools.go, contacts.go): each one kills a mutant that the suite let
// through.

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
)

// TestEngine_DuplicatePoolCopiesEverySetting: DuplicatePool copies
// every setting of the source (description and is_active included, not
// only type and caps), and the Duplicated it returns counts the items the
// copy holds (ContactsCount), as the copy read back does.
func TestEngine_DuplicatePoolCopiesEverySetting(t *testing.T) {
	t.Parallel()
	b := setup(t)
	src, err := b.eng.CreatePool(b.ctx, pool.CreateParams{
		Name: "Source pool", Description: "leads from the spring fair", Type: pool.LIFO,
		MaxParallelItems: pqPtr(4), MaxRetries: pqPtr(5), IsActive: pqPtr(false),
	})
	require.NoError(t, err)
	b.add(t, src.UUID, 3)

	d, err := b.eng.DuplicatePool(b.ctx, src.UUID, pool.DuplicateParams{})
	require.NoError(t, err)
	require.Equal(t, "Source pool (copy)", d.Name)
	require.Equal(t, "leads from the spring fair", d.Description, "description copied")
	require.False(t, d.IsActive, "is_active copied from an inactive source")
	require.Equal(t, pool.LIFO, d.Type)
	require.Equal(t, 4, d.MaxParallelItems)
	require.Equal(t, 5, d.MaxRetries)
	require.Equal(t, 3, d.ContactsCopied)
	require.Equal(t, 3, d.ContactsCount, "the copy's contacts_count in the answer")

	got, err := b.eng.Pool(b.ctx, d.UUID)
	require.NoError(t, err)
	require.Equal(t, d.ContactsCount, got.ContactsCount, "the answer agrees with the copy read back")
	require.Equal(t, "leads from the spring fair", got.Description)
	require.False(t, got.IsActive)

	// Listed by the active flag, the copy is with the inactive pools.
	inactive, err := b.eng.Pools(b.ctx, pool.PoolQuery{IsActive: pqPtr(false)})
	require.NoError(t, err)
	require.Equal(t, 2, inactive.Total, "the source and its copy are both inactive")
}

// TestEngine_WatchEscalationsPollsForOtherProcesses:
// WatchEscalations sees an escalation another process records (here:
// another store on the same SQLite file, whose commits this engine is not
// told of) within PollInterval, every time, not only at its first poll.
func TestEngine_WatchEscalationsPollsForOtherProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "poolq.db")
	c := newClock()
	opts := queue.Options{LeaseTimeout: testLease, RetryDelay: testRetry, Now: c.Now, PollInterval: 20 * time.Millisecond}
	stA := openFileStore(t, path)
	watcher := openEngine(t, stA, opts)
	b := &testBundle{ctx: ctx, eng: watcher, st: stA, clock: c}
	p, _ := b.governed(t, pool.FIFO, "", campaign.CreateRuleParams{EscalationAfterFailedAttempts: pqPtr(1)})
	contacts := []uuid.UUID{b.addIn(t, p.UUID, ""), b.addIn(t, p.UUID, "")}

	other := openEngine(t, openFileStore(t, path), opts) // another process's engine
	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan campaign.Escalation, 10)
	done := make(chan error, 1)
	go func() {
		done <- watcher.WatchEscalations(wctx, 0, func(e campaign.Escalation) error { seen <- e; return nil })
	}()
	t.Cleanup(func() { cancel(); <-done })

	for i, want := range contacts {
		// Several PollIntervals after the watch began (or after the
		// last escalation it saw): it has polled already, and must poll again.
		time.Sleep(150 * time.Millisecond)
		l, err := other.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		require.Equal(t, want, l.ContactUUID)
		require.NoError(t, other.Fail(ctx, l, queue.Failure{Note: "no answer"}))
		select {
		case e := <-seen:
			require.Equal(t, want, e.ContactUUID, "escalation %d", i)
		case <-time.After(2 * time.Second):
			t.Fatalf("escalation %d, recorded by another process, not seen within 2 s (PollInterval 20 ms)", i)
		}
	}
}
