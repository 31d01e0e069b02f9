package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres/pgtest"

	"github.com/poolq/poolq/store/postgres"
	"github.com/stretchr/testify/require"
)

// TestWrite_WaitRestartsBounded: a write that meets, one run after
// another, a pool held by another node after one it holds goes round again
// for such a wait only in its first runs (maxWaitRestarts, 2): the third
// run waits for what it meets and commits, rather than go round once more
// for each pool the other node holds. Here the other node holds pools 1 to
// 4 for 0.4, 0.8, 1.2 and 1.6 s: the write runs three times, not five.
func TestWrite_WaitRestartsBounded(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 3})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 6})
	ps := make([]pool.Pool, 5)
	for i := range ps {
		ps[i] = newTestPool(fmt.Sprintf("pool %d", i))
		require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, ps[i]) }))
	}
	held := make([]<-chan error, 0, 4)
	for i := 1; i < len(ps); i++ {
		held = append(held, holdFor(t, other, time.Duration(i)*400*time.Millisecond, func(tx store.Tx) error {
			_, err := tx.Pool(ctx, ps[i].UUID)
			return err
		}))
	}
	runs := 0
	err := st.Write(ctx, func(tx store.Tx) error {
		runs++
		for _, p := range ps {
			if _, err := tx.Pool(ctx, p.UUID); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)
	for _, done := range held {
		require.NoError(t, <-done)
	}
	t.Logf("runs %d, stats %+v", runs, st.Stats())
	require.LessOrEqual(t, runs, 3, "a run after the second waits rather than go round again")
	require.LessOrEqual(t, st.Stats().Waits, uint64(2))
}

// TestWrite_WaitBoundEndsEveryLockWait: a write that runs one caller's
// operation alone, with a wait bound (store.WithWaitBound) 1 s away,
// sooner than LockTimeout, waits for pool A's lock (another node holds it
// for 0.6 s), then for pool B's (held for 4 s). The second wait ends at the
// bound too, by the server's lock_timeout, and the Write fails with an
// error wrapping both ErrLockTimeout and context.DeadlineExceeded, as
// store.Store.Write and Options.LockTimeout say, its connection kept.
// (lock_timeout was set once, at the transaction's start, to the time
// left then, and the server applies it to each wait afresh: B's wait ran
// past the bound until its round trip was cut 100 ms after it, the
// connection closed, the error a bare deadline.) Found by a review helper.
func TestWrite_WaitBoundEndsEveryLockWait(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{}) // LockTimeout 30 s
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema()})
	a, b := newTestPool("pool A"), newTestPool("pool B") // A's lock key below B's
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, a) }))
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, b) }))

	heldA := holdFor(t, other, 600*time.Millisecond, func(tx store.Tx) error { _, err := tx.Pool(ctx, a.UUID); return err })
	heldB := holdFor(t, other, 4*time.Second, func(tx store.Tx) error { _, err := tx.Pool(ctx, b.UUID); return err })

	wctx, cancel := context.WithCancel(ctx) // as group commit's Write of a lone caller
	defer cancel()
	bound := time.Now().Add(time.Second)
	wctx = store.WithWaitBound(wctx, bound)
	err := st.Write(wctx, func(tx store.Tx) error {
		if _, err := tx.Pool(wctx, a.UUID); err != nil {
			return err
		}
		_, err := tx.Pool(wctx, b.UUID)
		return err
	})
	t.Logf("write returned %v after the bound: %v", time.Since(bound), err)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, store.ErrLockTimeout, "a lock wait ended at the wait bound by the server's lock_timeout")
	require.NoError(t, <-heldA)
	require.NoError(t, <-heldB)
}

// TestWrite_WaitAfterALockOfACampaignOrRule: a write that holds a
// campaign's lock and then waits for another node's hold of a rule's lock,
// or of a campaign's above it in the order of locks, runs again, taking
// both first (as for a pool's, TestWrite_WaitAfterALock): what it decided
// before the wait, it decided at an instant the wait has left behind.
func TestWrite_WaitAfterALockOfACampaignOrRule(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	for _, lockRule := range []bool{true, false} {
		t.Run(fmt.Sprintf("Rule=%v", lockRule), func(t *testing.T) {
			t.Parallel()
			st := pgtest.Open(t, url, postgres.Options{MaxConns: 3})
			other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
			now := time.Now().UTC()
			r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "Rule"}, now)
			require.NoError(t, err)
			cs := make([]campaign.Campaign, 2) // made in order: the second's lock comes after the first's
			for i := range cs {
				cs[i], err = campaign.New(uuid.New(), campaign.CreateParams{Name: fmt.Sprintf("Campaign %d", i)}, now)
				require.NoError(t, err)
			}
			require.NoError(t, st.Write(ctx, func(tx store.Tx) error {
				if err := tx.InsertRule(ctx, r); err != nil {
					return err
				}
				for _, c := range cs {
					if err := tx.InsertCampaign(ctx, c); err != nil {
						return err
					}
				}
				return nil
			}))
			second := func(tx store.Tx) error {
				if lockRule {
					return tx.LockRule(ctx, r.UUID)
				}
				_, err := tx.Campaign(ctx, cs[1].UUID)
				return err
			}
			held := holdFor(t, other, 300*time.Millisecond, second)
			runs := 0
			err = st.Write(ctx, func(tx store.Tx) error {
				runs++
				if _, err := tx.Campaign(ctx, cs[0].UUID); err != nil {
					return err
				}
				return second(tx)
			})
			require.NoError(t, err)
			require.NoError(t, <-held)
			t.Logf("runs %d, stats %+v", runs, st.Stats())
			require.GreaterOrEqual(t, runs, 2, "the run that waited after a lock runs again")
			require.GreaterOrEqual(t, st.Stats().Waits, uint64(1))
		})
	}
}

// TestWrite_WaitForTheEscalationLock: a write that holds a pool's lock and
// then waits for the escalation lock (another node records an escalation)
// runs again, taking both first (see TestWrite_WaitAfterALock).
func TestWrite_WaitForTheEscalationLock(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxConns: 3})
	other := pgtest.OpenSchema(t, url, postgres.Options{Schema: st.Schema(), MaxConns: 2})
	p := newTestPool("pool")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))
	esc := func(item int64) campaign.Escalation {
		return campaign.Escalation{PoolUUID: p.UUID, ContactUUID: uuid.New(), ItemID: item, CampaignUUID: uuid.New(),
			RuleUUID: uuid.New(), FailedAttempts: 1, At: time.Now()}
	}
	held := holdFor(t, other, 300*time.Millisecond, func(tx store.Tx) error {
		_, _, err := tx.InsertEscalation(ctx, esc(1))
		return err
	})
	runs := 0
	err := st.Write(ctx, func(tx store.Tx) error {
		runs++
		if _, err := tx.Pool(ctx, p.UUID); err != nil {
			return err
		}
		_, _, err := tx.InsertEscalation(ctx, esc(2))
		return err
	})
	require.NoError(t, err)
	require.NoError(t, <-held)
	t.Logf("runs %d, stats %+v", runs, st.Stats())
	require.GreaterOrEqual(t, runs, 2, "the run that waited for the escalation lock after a pool's runs again")
	require.GreaterOrEqual(t, st.Stats().Waits, uint64(1))
}

// holdFor starts a write on st that runs lock and then holds what it took
// for d before it commits. It returns once lock has run, with the write's
// result to come.
func holdFor(t *testing.T, st *postgres.Store, d time.Duration, lock func(store.Tx) error) <-chan error {
	t.Helper()
	locked, held := make(chan struct{}), make(chan error, 1)
	var once sync.Once
	go func() {
		held <- st.Write(context.Background(), func(tx store.Tx) error {
			if err := lock(tx); err != nil {
				return err
			}
			once.Do(func() { close(locked) })
			time.Sleep(d)
			return nil
		})
	}()
	select {
	case <-locked:
		return held
	case err := <-held:
		t.Fatalf("the holding write ended before it held its lock: %v", err)
		return nil
	}
}
