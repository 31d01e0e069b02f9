package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// modelTime is the time the model's nodes and server share, which the
// check moves by hand.
type modelTime struct {
	mu sync.Mutex
	t  time.Time
}

func (m *modelTime) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.t
}

func (m *modelTime) Advance(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.t = m.t.Add(d)
}

// modelNode is a node of the model: its clock is the shared time, off
// ahead of it (behind: negative).
type modelNode struct {
	eng  *queue.Engine
	base *modelTime
	mu   sync.Mutex
	off  time.Duration
}

func (n *modelNode) Now() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.base.Now().Add(n.off)
}

func (n *modelNode) step(off time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.off = off
}

// modelCall is a call a node holds: on from its claim until it is
// settled, or lost, or the shared time reaches end, its deadline as last
// written (queue.Work stops a handler there: its watchdog runs on the
// monotonic clock from the write, which a step of the node's clock does
// not move).
type modelCall struct {
	l    *queue.Lease
	node int
	end  time.Time
	over bool
}

// TestClockWatch_SteppedNodesNeverCallTwice: two nodes of one schema
// (postgres.Options' defaults: MaxClockSkew 30 s, LeaseGrace 60 s) claim,
// extend and settle the calls of contacts that are in both pools of a
// running campaign, while time goes by in steps and their clocks are
// stepped after Open, ahead and behind, within MaxClockSkew and far
// beyond it, with calls on or not. The server's clock is the shared time
// (the Stores count their clocks' steps against it, and measure it only
// at Open). A node's claim is refused (ErrClockSkew) when, and only when,
// its clock is beyond MaxClockSkew; its extensions when, and only when,
// its clock is that far behind (unless the lease is lost); its
// settlements never are; and at no instant of the shared time does a
// contact have two calls on.
func TestClockWatch_SteppedNodesNeverCallTwice(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	schemas := pgtest.NewSchemas(t, url)
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		schema := schemas.Schema(rt)
		base := &modelTime{t: time.Now()}
		origin := base.Now()
		var nodes [2]*modelNode
		for i := range nodes {
			n := &modelNode{base: base}
			octx := postgres.WithClockWatch(postgres.WithClock(ctx, n.Now), time.Hour,
				func() time.Duration { return base.Now().Sub(origin) })
			st, err := postgres.Open(octx, url, postgres.Options{Schema: schema, MaxConns: 2})
			require.NoError(rt, err)
			rt.Cleanup(func() { _ = st.Close() })
			n.eng, err = queue.New(st, queue.Options{Now: n.Now, LeaseTimeout: time.Minute, RetryDelay: time.Second,
				PollInterval: time.Hour})
			require.NoError(rt, err)
			rt.Cleanup(func() { _ = n.eng.Close() })
			nodes[i] = n
		}

		eng := nodes[0].eng
		r, err := eng.CreateRule(ctx, campaign.CreateRuleParams{Name: "rule", MaxCallsPerDay: new(50), MaxTotalCalls: new(50),
			RetryIntervalMinutes: new(1), StartTime: new("00:00"), EndTime: new("23:59")})
		require.NoError(rt, err)
		var pools []uuid.UUID
		for i := range 2 {
			p, err := eng.CreatePool(ctx, pool.CreateParams{Name: fmt.Sprintf("pool %d", i), Description: "stepped",
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
		var contacts []pool.NewItem
		for range 3 {
			contacts = append(contacts, pool.NewItem{ContactUUID: uuid.New()})
		}
		for _, p := range pools {
			_, err = eng.Add(ctx, p, contacts...)
			require.NoError(rt, err)
		}

		var calls []*modelCall
		on := func(mc *modelCall) bool {
			if !mc.over && !base.Now().Before(mc.end) {
				mc.over = true // its holder stops at its deadline as last written
			}
			return !mc.over
		}
		pick := func(label string) *modelCall {
			var live []*modelCall
			for _, mc := range calls {
				if on(mc) {
					live = append(live, mc)
				}
			}
			if len(live) == 0 {
				return nil
			}
			return live[rapid.IntRange(0, len(live)-1).Draw(rt, label)]
		}
		// Offsets well away from MaxClockSkew (30 s): the Stores' own
		// readings at Open are a few milliseconds off the shared time.
		offsets := []time.Duration{0, 10 * time.Second, -10 * time.Second, 25 * time.Second, -25 * time.Second,
			45 * time.Second, -45 * time.Second, 3 * time.Minute, -3 * time.Minute}
		steps := rapid.IntRange(10, 60).Draw(rt, "steps")
		for range steps {
			switch rapid.IntRange(0, 4).Draw(rt, "action") {
			case 0:
				node := rapid.IntRange(0, 1).Draw(rt, "node")
				p := rapid.IntRange(0, 1).Draw(rt, "pool")
				l, err := nodes[node].eng.TryDequeue(ctx, pools[p])
				skewed := nodes[node].off.Abs() > postgres.DefaultMaxClockSkew
				if skewed {
					require.ErrorIs(rt, err, postgres.ErrClockSkew, "node %d, %v off", node, nodes[node].off)
					break
				}
				if errors.Is(err, queue.ErrEmpty) || errors.Is(err, queue.ErrAtCapacity) {
					break
				}
				require.NoError(rt, err, "node %d, %v off", node, nodes[node].off)
				calls = append(calls, &modelCall{l: l, node: node, end: l.ExpiresAt.Add(-nodes[node].off)})
			case 1:
				mc := pick("extend")
				if mc == nil {
					break
				}
				d := rapid.SampledFrom([]time.Duration{10 * time.Second, time.Minute}).Draw(rt, "extend by")
				err := nodes[mc.node].eng.Extend(ctx, mc.l, d)
				if errors.Is(err, queue.ErrLeaseLost) {
					mc.over = true
					break
				}
				if nodes[mc.node].off < -postgres.DefaultMaxClockSkew {
					require.ErrorIs(rt, err, postgres.ErrClockSkew, "node %d, %v off", mc.node, nodes[mc.node].off)
					break // the lease keeps its end
				}
				require.NoError(rt, err, "node %d, %v off", mc.node, nodes[mc.node].off)
				mc.end = mc.l.ExpiresAt.Add(-nodes[mc.node].off)
			case 2:
				mc := pick("complete")
				if mc == nil {
					break
				}
				err := nodes[mc.node].eng.Complete(ctx, mc.l, "answered")
				if !errors.Is(err, queue.ErrLeaseLost) {
					require.NoError(rt, err)
				}
				mc.over = true
			case 3:
				d := rapid.SampledFrom([]time.Duration{500 * time.Millisecond, 5 * time.Second, 20 * time.Second,
					40 * time.Second, 61 * time.Second, 2 * time.Minute}).Draw(rt, "advance")
				base.Advance(d)
			case 4:
				node := rapid.IntRange(0, 1).Draw(rt, "stepped node")
				nodes[node].step(rapid.SampledFrom(offsets).Draw(rt, "step to"))
			}
			byContact := map[uuid.UUID][]*modelCall{}
			for _, mc := range calls {
				if on(mc) {
					byContact[mc.l.ContactUUID] = append(byContact[mc.l.ContactUUID], mc)
				}
			}
			for contact, both := range byContact {
				if len(both) > 1 {
					rt.Fatalf("contact %s in %d calls at once: node %d's (%v off, %v left) and node %d's (%v off, %v left)",
						contact, len(both), both[0].node, nodes[both[0].node].off, both[0].end.Sub(base.Now()),
						both[1].node, nodes[both[1].node].off, both[1].end.Sub(base.Now()))
				}
			}
		}
	})
}
