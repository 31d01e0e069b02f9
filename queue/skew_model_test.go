package queue_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// offsetClock is a node's clock: a shared base, off ahead of it (behind
// when negative).
type offsetClock struct {
	base *clock
	off  time.Duration
}

func (c *offsetClock) Now() time.Time { return c.base.Now().Add(c.off) }

// skewCall is a lease a node holds, and its call: on from the claim until
// it is settled, or lost, or its holder's clock reaches its deadline (the
// holder stops there, as Work does).
type skewCall struct {
	l    *queue.Lease
	node int
	over bool
}

// TestEngine_SkewedNodesNeverCallTwice: two nodes (two stores on one
// SQLite file, each reporting a lease grace as PostgreSQL's does) whose
// clocks are apart by less than the grace claim, extend and settle calls
// of contacts that are in both pools of a running campaign, while time
// goes by in steps. At no instant of the shared time does a contact have
// two calls on, each judged by its holder's clock: a node ahead never
// takes a call for ended that its holder may still be on, in the same
// pool (its cap) or in the campaign's other pool.
func TestEngine_SkewedNodesNeverCallTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var runs atomic.Int64
	skewCheck(t, func(rt *rapid.T, grace time.Duration) [2]store.Store {
		path := filepath.Join(dir, fmt.Sprintf("skew-%d.db", runs.Add(1)))
		var out [2]store.Store
		for i := range out {
			st, err := sqlite.Open(context.Background(), path, sqlite.Options{CheckCache: true})
			require.NoError(rt, err)
			rt.Cleanup(func() { _ = st.Close() })
			out[i] = gracedStore{st, grace}
		}
		return out
	})
}

// TestPostgres_SkewedNodesNeverCallTwice: the same on two PostgreSQL stores
// of one schema, with postgres.Options.LeaseGrace.
func TestPostgres_SkewedNodesNeverCallTwice(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	schemas := pgtest.NewSchemas(t, url)
	skewCheck(t, func(rt *rapid.T, grace time.Duration) [2]store.Store {
		nodes := schemas.Nodes(rt, postgres.Options{MaxConns: 2, LeaseGrace: grace}, 2)
		return [2]store.Store{nodes[0], nodes[1]}
	})
}

// skewCheck runs the check of TestEngine_SkewedNodesNeverCallTwice on the
// stores of two nodes that open returns, each with a lease grace of grace.
func skewCheck(t *testing.T, open func(rt *rapid.T, grace time.Duration) [2]store.Store) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		grace := rapid.SampledFrom([]time.Duration{2 * time.Second, 30 * time.Second}).Draw(rt, "grace")
		stores := open(rt, grace)
		base := newClock()
		engines := make([]*queue.Engine, 2)
		clocks := make([]*offsetClock, 2)
		for i := range engines {
			// Each node within half the grace of the base: the two
			// within the grace of each other, as MaxClockSkew makes them.
			off := time.Duration(rapid.Int64Range(-int64(grace/2), int64(grace/2)-1).Draw(rt, "offset"))
			clocks[i] = &offsetClock{base: base, off: off}
			var err error
			engines[i], err = queue.New(stores[i], queue.Options{Now: clocks[i].Now,
				LeaseTimeout: time.Minute, RetryDelay: time.Second, PollInterval: time.Hour})
			require.NoError(rt, err)
			rt.Cleanup(func() { _ = engines[i].Close() })
		}

		eng := engines[0]
		r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule", MaxCallsPerDay: new(50), MaxTotalCalls: new(50),
			RetryIntervalMinutes: new(1), StartTime: new("00:00"), EndTime: new("23:59")})
		require.NoError(rt, err)
		var pools []uuid.UUID
		for i := range 2 {
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("pool %d", i), Description: "skew",
				Type: pool.Parallel, MaxParallelItems: new(2), MaxRetries: new(50)})
			require.NoError(rt, err)
			pools = append(pools, p.UUID)
		}
		c, err := eng.CreateCampaign(ctx, campaign.CreateParams{Name: "campaign", RuleUUID: &r.UUID})
		require.NoError(rt, err)
		_, err = eng.AttachPools(ctx, c.UUID, pools...)
		require.NoError(rt, err)
		_, err = eng.StartCampaign(ctx, c.UUID)
		require.NoError(rt, err)
		contacts := newItems(3)
		for _, p := range pools {
			_, err = eng.Add(ctx, p, contacts...)
			require.NoError(rt, err)
		}

		var calls []*skewCall
		on := func(sc *skewCall) bool {
			if !sc.over && !clocks[sc.node].Now().Before(sc.l.ExpiresAt) {
				sc.over = true // its holder stops at its deadline, by its clock
			}
			return !sc.over
		}
		pick := func(label string) *skewCall {
			var live []*skewCall
			for _, sc := range calls {
				if on(sc) {
					live = append(live, sc)
				}
			}
			if len(live) == 0 {
				return nil
			}
			return live[rapid.IntRange(0, len(live)-1).Draw(rt, label)]
		}
		steps := rapid.IntRange(10, 80).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 4).Draw(rt, "action") {
			case 0:
				node := rapid.IntRange(0, 1).Draw(rt, "node")
				p := rapid.IntRange(0, 1).Draw(rt, "pool")
				l, err := engines[node].TryDequeue(ctx, pools[p])
				if errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity) {
					break
				}
				require.NoError(rt, err)
				rt.Logf("+%v node %d claims %s in pool %d, deadline +%v", base.Now().Sub(newClock().Now()), node,
					l.ContactUUID, p, l.ExpiresAt.Sub(clocks[node].Now()))
				calls = append(calls, &skewCall{l: l, node: node})
			case 1:
				sc := pick("extend")
				if sc == nil {
					break
				}
				d := rapid.SampledFrom([]time.Duration{10 * time.Second, time.Minute}).Draw(rt, "extend by")
				// On by its holder's clock, so no node took it for ended:
				// ErrLeaseLost here would be a call cut off under its holder.
				require.NoError(rt, engines[sc.node].Extend(ctx, sc.l, d), "extend a call on by its holder's clock")
			case 2:
				sc := pick("complete")
				if sc == nil {
					break
				}
				require.NoError(rt, engines[sc.node].Complete(ctx, sc.l, "answered"), "complete a call on by its holder's clock")
				sc.over = true
			case 3:
				d := rapid.SampledFrom([]time.Duration{500 * time.Millisecond, 5 * time.Second, 20 * time.Second,
					40 * time.Second, 61 * time.Second, 2 * time.Minute}).Draw(rt, "advance")
				base.Advance(d)
			case 4:
				// Onto a call's deadline by one node's clock: by the other's,
				// if that is behind, the call is still on.
				sc := pick("to deadline")
				if sc == nil {
					break
				}
				node := rapid.IntRange(0, 1).Draw(rt, "by node")
				if d := sc.l.ExpiresAt.Sub(clocks[node].Now()); d > 0 {
					base.Advance(d)
				}
			}
			byContact := map[uuid.UUID][]*skewCall{}
			byPool := map[uuid.UUID]int{}
			for _, sc := range calls {
				if on(sc) {
					byContact[sc.l.ContactUUID] = append(byContact[sc.l.ContactUUID], sc)
					byPool[sc.l.PoolUUID]++
				}
			}
			for p, n := range byPool {
				if n > 2 {
					rt.Fatalf("pool %s has %d calls on at once, its cap 2", p, n)
				}
			}
			for contact, both := range byContact {
				if len(both) > 1 {
					rt.Fatalf("contact %s in %d calls at once: node %d's (deadline %v by its clock, %v left) and node %d's (%v left)",
						contact, len(both), both[0].node, both[0].l.ExpiresAt, both[0].l.ExpiresAt.Sub(clocks[both[0].node].Now()),
						both[1].node, both[1].l.ExpiresAt.Sub(clocks[both[1].node].Now()))
				}
			}
		}
	})
}
