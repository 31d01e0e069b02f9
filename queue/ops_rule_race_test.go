package queue_test

// Rule updates racing on two PostgreSQL nodes (review branch r-ops).

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// pausingStore runs hook, when set, in each write transaction right after
// the transaction has read a rule: a node whose transaction is slow there
// (scheduling, a network round trip), made deterministic.
type pausingStore struct {
	store.Store
	mu   sync.Mutex
	hook func()
}

func (s *pausingStore) setHook(f func()) {
	s.mu.Lock()
	s.hook = f
	s.mu.Unlock()
}

func (s *pausingStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Write(ctx, func(tx store.Tx) error { return fn(pausingTx{tx, s}) })
}

type pausingTx struct {
	store.Tx
	s *pausingStore
}

func (t pausingTx) Rule(ctx context.Context, id uuid.UUID) (campaign.Rule, error) {
	r, err := t.Tx.Rule(ctx, id)
	t.s.mu.Lock()
	hook := t.s.hook
	t.s.hook = nil // once
	t.s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return r, err
}

// TestPostgres_ConcurrentRuleUpdatesKeepEachField: two nodes update
// different fields of one rule at once. UpdateRule is partial ("only the
// fields given change"), so both changes must stand, whatever the order
// of the commits. Node b reads the rule, then node a's update commits
// before b writes: b's write must not put back the field a changed.
func TestPostgres_ConcurrentRuleUpdatesKeepEachField(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	first := pgtest.Open(t, url, postgres.Options{})
	second := &pausingStore{Store: pgtest.OpenSchema(t, url, postgres.Options{Schema: first.Schema()})}
	a := openEngine(t, first, queue.Options{})
	b := openEngine(t, second, queue.Options{})
	ctx := context.Background()

	r, err := a.CreateRule(ctx, campaign.CreateRuleParams{Name: "two editors", MaxCallsPerDay: pqPtr(3), MaxTotalCalls: pqPtr(10)})
	require.NoError(t, err)

	read, resume := make(chan struct{}), make(chan struct{})
	second.setHook(func() { close(read); <-resume })
	done := make(chan error, 1)
	go func() {
		_, err := b.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxTotalCalls: pqPtr(7)})
		done <- err
	}()
	select { // b has read the rule, and has not written it yet
	case <-read:
	case err := <-done:
		t.Fatalf("b's update returned before it read the rule: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("b's update did not read the rule")
	}
	aDone := make(chan error, 1)
	go func() {
		_, err := a.UpdateRule(ctx, r.UUID, campaign.UpdateRuleParams{MaxCallsPerDay: pqPtr(5)})
		aDone <- err
	}()
	aFirst := false
	select {
	case err := <-aDone:
		require.NoError(t, err, "a's update")
		aFirst = true
	case <-time.After(time.Second):
		// a waits for b: the rule is locked by b's read. Fine too.
	}
	close(resume)
	require.NoError(t, <-done, "b's update")
	if !aFirst {
		require.NoError(t, <-aDone, "a's update")
	}

	got, err := a.Rule(ctx, r.UUID)
	require.NoError(t, err)
	require.Equal(t, 7, got.MaxTotalCalls, "max_total_calls, set by b")
	require.Equal(t, 5, got.MaxCallsPerDay, "max_calls_per_day, set by a: lost when b wrote the rule as it read it before a's update")
}
