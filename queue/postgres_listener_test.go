package queue_test

// Several engines on one PostgreSQL schema: the wake-ups that cross nodes,
// and the store's listener connection failing, slow or silent. Every test
// sets PollInterval to an hour, so that a wake-up that does not come shows
// as a timeout.

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// nodeProxy is a TCP proxy in front of PostgreSQL that tells the
// listener's connection (its startup message names "poolq listener") from
// the others, so that a test can fail only its own store's listener:
//
//   - holdListener: a new listener connection is held (not forwarded)
//     until releaseListener;
//   - refuse: new connections are closed at once (the server unreachable);
//   - cutListeners: the listener connections are closed;
//   - silenceListeners: the listener connections forward nothing more
//     either way and stay open (a NAT or firewall that dropped the idle
//     flow; the other connections, and new ones, still work).
type nodeProxy struct {
	ln           net.Listener
	dst          string
	refuse       atomic.Bool
	holdListener atomic.Bool
	release      chan struct{}
	once         sync.Once

	mu      sync.Mutex
	conns   []*proxyConn
	refused []time.Time // when each connection refuse closed at once arrived
	wg      sync.WaitGroup
}

type proxyConn struct {
	c, s     net.Conn
	listener bool
	silent   atomic.Bool
}

func newNodeProxy(t *testing.T, dst string) *nodeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &nodeProxy{ln: ln, dst: dst, release: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *nodeProxy) releaseListener() { p.once.Do(func() { close(p.release) }) }

func (p *nodeProxy) close() {
	p.ln.Close()
	p.releaseListener()
	p.mu.Lock()
	for _, pc := range p.conns {
		pc.c.Close()
		if pc.s != nil {
			pc.s.Close()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *nodeProxy) each(f func(*proxyConn)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pc := range p.conns {
		if pc.listener {
			f(pc)
		}
	}
}

func (p *nodeProxy) cutListeners() {
	p.each(func(pc *proxyConn) {
		pc.c.Close()
		if pc.s != nil {
			pc.s.Close()
		}
	})
}

func (p *nodeProxy) silenceListeners() { p.each(func(pc *proxyConn) { pc.silent.Store(true) }) }

func (p *nodeProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			c.Close()
			p.mu.Lock()
			p.refused = append(p.refused, time.Now())
			p.mu.Unlock()
			continue
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

func (p *nodeProxy) handle(c net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 64<<10)
	n, err := c.Read(buf) // the startup message (sslmode=disable)
	if err != nil {
		c.Close()
		return
	}
	pc := &proxyConn{c: c, listener: bytes.Contains(buf[:n], []byte("poolq listener"))}
	p.mu.Lock()
	p.conns = append(p.conns, pc)
	p.mu.Unlock()
	if pc.listener && p.holdListener.Load() {
		<-p.release
	}
	s, err := net.Dial("tcp", p.dst)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	pc.s = s
	p.mu.Unlock()
	if _, err := s.Write(buf[:n]); err != nil {
		c.Close()
		s.Close()
		return
	}
	p.wg.Add(2)
	go p.pipe(pc, s, c)
	go p.pipe(pc, c, s)
}

func (p *nodeProxy) pipe(pc *proxyConn, dst, src net.Conn) {
	defer p.wg.Done()
	defer dst.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pc.silent.Load() {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// awaitListeners waits until the two nodes of nodesThroughProxy listen
// (their listeners' sessions on the server, at url, for schema).
func awaitListeners(t *testing.T, url, schema string, msgAndArgs ...any) {
	t.Helper()
	require.Eventually(t, func() bool { return listeners(t, url, schema) == 2 }, 10*time.Second, 5*time.Millisecond, msgAndArgs...)
}

// nodesThroughProxy opens two engines on one schema: the first (the
// waiter) on a store reached through a nodeProxy, the second directly.
func nodesThroughProxy(t *testing.T, opts queue.Options, hold bool) (px *nodeProxy, waiter, other *queue.Engine, wst *postgres.Store, schema string) {
	t.Helper()
	return nodesThroughProxyWith(t, opts, hold, postgres.Options{})
}

// nodesThroughProxyWith is nodesThroughProxy with the waiter's store
// opened with wopts (its Schema set to the other's).
func nodesThroughProxyWith(t *testing.T, opts queue.Options, hold bool, wopts postgres.Options) (px *nodeProxy, waiter, other *queue.Engine, wst *postgres.Store, schema string) {
	t.Helper()
	raw := pgtest.URL(t)
	ost := pgtest.Open(t, raw, postgres.Options{})
	schema = ost.Schema()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	px = newNodeProxy(t, u.Host)
	px.holdListener.Store(hold)
	u.Host = px.ln.Addr().String()
	wopts.Schema = schema
	wst = pgtest.OpenSchema(t, u.String(), wopts)
	other = openEngine(t, ost, opts)
	waiter = openEngine(t, wst, opts)
	return px, waiter, other, wst, schema
}

// blockedDequeue starts a Dequeue of p on eng and returns once it has made
// its first look (and is asleep); the channel gets its result.
func blockedDequeue(t *testing.T, eng *queue.Engine, p uuid.UUID) <-chan ccResult {
	t.Helper()
	got := make(chan ccResult, 1)
	before := eng.Stats().Operations
	go func() {
		l, err := eng.Dequeue(context.Background(), p)
		got <- ccResult{l, err, time.Now()}
	}()
	require.Eventually(t, func() bool { return eng.Stats().Operations > before }, 5*time.Second, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	return got
}

func wokenWithin(t *testing.T, what string, got <-chan ccResult, t0 time.Time, d time.Duration) {
	t.Helper()
	select {
	case r := <-got:
		require.NoError(t, r.err)
		t.Logf("%s: woken %v after", what, r.at.Sub(t0).Round(time.Millisecond))
	case <-time.After(d):
		t.Fatalf("%s: the blocked Dequeue on the other node was not woken within %v (PollInterval is an hour)", what, d)
	}
}

// TestPostgres_ListenerReconnectLooksAgain: the waiter's listener
// connection is cut and the server unreachable for a moment; meanwhile
// another node adds an item to the pool a Dequeue of the waiter is blocked
// on. Once the listener listens again, every waiter looks again: the
// signal sent meanwhile was lost. (It was left to the poll.)
func TestPostgres_ListenerReconnectLooksAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, waiter, other, _, schema := nodesThroughProxy(t, queue.Options{PollInterval: time.Hour}, false)
	raw := pgtest.URL(t)
	awaitListeners(t, raw, schema)
	p, err := other.CreatePool(ctx, pool.CreateParams{Name: "reconnect", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	got := blockedDequeue(t, waiter, p.UUID)

	px.refuse.Store(true)
	px.cutListeners()
	require.Eventually(t, func() bool { return listeners(t, raw, schema) == 1 }, 10*time.Second, 5*time.Millisecond)
	_, err = other.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	px.refuse.Store(false)
	t0 := time.Now()
	awaitListeners(t, raw, schema, "the listener connects again")
	wokenWithin(t, "after the server was reachable again (listener back)", got, t0, 5*time.Second)
}

// TestPostgres_NewNodeBeforeItListens: queue.New returns (and a Dequeue
// blocks) before the store's listener listens (here its connection is held
// by the proxy for 300 ms); another node's Add meanwhile is not heard, but
// once the listener listens every waiter looks again. (It was left to the
// poll.)
func TestPostgres_NewNodeBeforeItListens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	px, waiter, other, _, schema := nodesThroughProxy(t, queue.Options{PollInterval: time.Hour}, true)
	raw := pgtest.URL(t)
	p, err := other.CreatePool(ctx, pool.CreateParams{Name: "startup", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	got := blockedDequeue(t, waiter, p.UUID)
	_, err = other.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	time.Sleep(300 * time.Millisecond)
	px.releaseListener()
	t0 := time.Now()
	awaitListeners(t, raw, schema, "the listener listens")
	wokenWithin(t, "once the new node's listener was let through", got, t0, 5*time.Second)
}

// TestPostgres_SilentListenerConnection: the listener's connection goes
// silent (a NAT or firewall dropped the idle flow: no FIN, no RST), while
// the node's other connections, and new ones, work. After ListenerIdle
// (here 2 s, 30 s by default) without a notification the listener pings;
// the ping goes unanswered for 5 s, and it connects again and every waiter
// looks again. (It had no liveness check: the node stayed deaf to every
// other node until TCP keepalive ended the connection, about 50 minutes.)
func TestPostgres_SilentListenerConnection(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const idle = 2 * time.Second
	px, waiter, other, _, schema := nodesThroughProxyWith(t, queue.Options{PollInterval: time.Hour}, false, postgres.Options{ListenerIdle: idle})
	raw := pgtest.URL(t)
	awaitListeners(t, raw, schema)
	p, err := other.CreatePool(ctx, pool.CreateParams{Name: "silent", Description: "d", Type: pool.Parallel})
	require.NoError(t, err)
	px.silenceListeners()
	got := blockedDequeue(t, waiter, p.UUID)
	t0 := time.Now()
	_, err = other.Add(ctx, p.UUID, newItems(1)...)
	require.NoError(t, err)
	// idle + the ping's 5 s at most, then a reconnect.
	wokenWithin(t, "listener connection silent", got, t0, idle+5*time.Second+10*time.Second)
}

// TestPostgres_CloseWhileListenerStuck: Close returns while the
// listener is connecting (held) or its connection is silent.
func TestPostgres_CloseWhileListenerStuck(t *testing.T) {
	t.Parallel()
	for _, hold := range []bool{true, false} {
		px, waiter, _, wst, schema := nodesThroughProxy(t, queue.Options{PollInterval: time.Hour}, hold)
		if !hold {
			raw := pgtest.URL(t)
			awaitListeners(t, raw, schema)
			px.silenceListeners()
		} else {
			time.Sleep(100 * time.Millisecond)
		}
		done := make(chan struct{})
		go func() { waiter.Close(); wst.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			px.releaseListener()
			px.cutListeners()
			t.Fatalf("Close hangs while the listener is stuck (hold=%v)", hold)
		}
	}
}

// TestPostgres_WakesAcrossNodes: a Dequeue (or DequeueCampaign) blocked
// on one node, with an hour's poll, is woken by each change another node
// makes that lets it through.
func TestPostgres_WakesAcrossNodes(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	engines, stores := pgEngines(t, url, 2, queue.Options{PollInterval: time.Hour, LeaseTimeout: time.Minute})
	waiter, other := engines[0], engines[1]
	require.Eventually(t, func() bool { return listeners(t, url, stores[0].Schema()) == 2 }, 10*time.Second, 5*time.Millisecond)

	fifoWithOneInFlight := func(t *testing.T) (pool.Pool, *queue.Lease) {
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "fifo", Description: "d"})
		require.NoError(t, err)
		_, err = other.Add(ctx, p.UUID, newItems(2)...)
		require.NoError(t, err)
		l, err := other.TryDequeue(ctx, p.UUID)
		require.NoError(t, err)
		return p, l
	}
	check := func(t *testing.T, what string, got <-chan ccResult, act func()) {
		t.Helper()
		t0 := time.Now()
		act()
		wokenWithin(t, what, got, t0, 5*time.Second)
	}

	t.Run("Complete", func(t *testing.T) {
		p, l := fifoWithOneInFlight(t)
		got := blockedDequeue(t, waiter, p.UUID)
		check(t, "Complete", got, func() { require.NoError(t, other.Complete(ctx, l, "")) })
	})
	t.Run("RaiseCapByTypeSwitch", func(t *testing.T) {
		p, _ := fifoWithOneInFlight(t)
		got := blockedDequeue(t, waiter, p.UUID)
		par := pool.Parallel
		check(t, "type switch", got, func() {
			_, err := other.UpdatePool(ctx, p.UUID, pool.UpdateParams{Type: &par})
			require.NoError(t, err)
		})
	})
	t.Run("Requeue", func(t *testing.T) {
		p, err := other.CreatePool(ctx, pool.CreateParams{Name: "requeue", Description: "d", Type: pool.Parallel})
		require.NoError(t, err)
		items := newItems(1)
		_, err = other.Add(ctx, p.UUID, items...)
		require.NoError(t, err)
		_, err = other.Skip(ctx, p.UUID, items[0].ContactUUID, "x")
		require.NoError(t, err)
		got := blockedDequeue(t, waiter, p.UUID)
		check(t, "Requeue", got, func() {
			_, err := other.Requeue(ctx, p.UUID, items[0].ContactUUID)
			require.NoError(t, err)
		})
	})
	t.Run("Resume", func(t *testing.T) {
		_, c, p := allDayCampaign(t, other)
		_, err := other.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		_, err = other.PauseCampaign(ctx, c.UUID)
		require.NoError(t, err)
		got := blockedDequeue(t, waiter, p.UUID)
		check(t, "Resume", got, func() {
			_, err := other.ResumeCampaign(ctx, c.UUID)
			require.NoError(t, err)
		})
	})
	t.Run("Detach", func(t *testing.T) {
		_, c, p := allDayCampaign(t, other)
		_, err := other.Add(ctx, p.UUID, newItems(1)...)
		require.NoError(t, err)
		_, err = other.PauseCampaign(ctx, c.UUID)
		require.NoError(t, err)
		got := blockedDequeue(t, waiter, p.UUID)
		check(t, "Detach", got, func() {
			_, err := other.DetachPool(ctx, c.UUID, p.UUID)
			require.NoError(t, err)
		})
	})
	// A DequeueCampaign on the waiter, its campaign running with one empty
	// pool; the other node attaches a second pool that has an item: the
	// attach signals the campaign, whose waiters do not know the new pool
	// yet. (It signalled only the new pool.)
	t.Run("AttachToDequeueCampaign", func(t *testing.T) {
		_, c, p1 := allDayCampaign(t, other)
		got := make(chan ccResult, 1)
		go func() {
			l, err := waiter.DequeueCampaign(ctx, c.UUID)
			got <- ccResult{l, err, time.Now()}
		}()
		require.Eventually(t, func() bool { return queue.Waiting(waiter, p1.UUID) == 1 }, 5*time.Second, time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		p2, err := other.CreatePool(ctx, pool.CreateParams{Name: "second", Description: "d"})
		require.NoError(t, err)
		_, err = other.Add(ctx, p2.UUID, newItems(1)...)
		require.NoError(t, err)
		check(t, "AttachPools", got, func() {
			_, err := other.AttachPools(ctx, c.UUID, p2.UUID)
			require.NoError(t, err)
		})
	})
	// A DequeueCampaign on a campaign without pools learns of another
	// node's completion: the transition signals the campaign itself too.
	// (It signalled only the campaign's pools, and this one has none.)
	t.Run("CompleteCampaignWithoutPools", func(t *testing.T) {
		c, err := other.CreateCampaign(ctx, campaign.CreateParams{Name: "no pools yet"})
		require.NoError(t, err)
		got := make(chan error, 1)
		go func() { _, err := waiter.DequeueCampaign(ctx, c.UUID); got <- err }()
		time.Sleep(200 * time.Millisecond)
		_, err = other.StartCampaign(ctx, c.UUID)
		if err != nil {
			t.Skipf("a campaign without pools cannot start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		_, err = other.CompleteCampaign(ctx, c.UUID)
		require.NoError(t, err)
		select {
		case err := <-got:
			require.ErrorIs(t, err, campaign.ErrWrongStatus)
		case <-time.After(5 * time.Second):
			t.Fatal("CompleteCampaign on another node: the DequeueCampaign (campaign without pools) was not told within 5s (PollInterval is an hour)")
		}
	})
	// The same, for Work with WorkOptions.Campaigns.
	t.Run("AttachToWork", func(t *testing.T) {
		_, c, p1 := allDayCampaign(t, other)
		handled, stop := workReportingHandled(waiter, queue.WorkOptions{Campaigns: []uuid.UUID{c.UUID}, Grace: time.Second})
		defer stop()
		require.Eventually(t, func() bool { return queue.Waiting(waiter, p1.UUID) == 1 }, 5*time.Second, time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		p2, err := other.CreatePool(ctx, pool.CreateParams{Name: "second", Description: "d"})
		require.NoError(t, err)
		_, err = other.Add(ctx, p2.UUID, newItems(1)...)
		require.NoError(t, err)
		t0 := time.Now()
		_, err = other.AttachPools(ctx, c.UUID, p2.UUID)
		require.NoError(t, err)
		select {
		case at := <-handled:
			t.Logf("Work woken %v after the attach", at.Sub(t0))
		case <-time.After(5 * time.Second):
			t.Fatal("AttachPools on another node: the Work on the waiter was not woken within 5s (PollInterval is an hour)")
		}
	})
}

// allDayCampaign is runningCampaign with a rule whose window is the whole
// day (the default 09:00-18:00 UTC would schedule the items instead).
func allDayCampaign(t *testing.T, eng *queue.Engine) (campaign.Rule, campaign.Campaign, pool.Pool) {
	t.Helper()
	return campaignUnder(t, eng, campaign.CreateRuleParams{Name: "all day", StartTime: new("00:00"), EndTime: new("23:59")})
}

// workReportingHandled runs Work on e with opts and a handler that sends
// the instant it first ran on handled; stop ends Work and waits for it.
func workReportingHandled(e *queue.Engine, opts queue.WorkOptions) (handled <-chan time.Time, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() {
		done <- e.Work(ctx, func(context.Context, *queue.Lease) error {
			select {
			case ch <- time.Now():
			default:
			}
			return nil
		}, opts)
	}()
	return ch, func() { cancel(); <-done }
}

// TestPostgres_ListenerPausesBetweenAttempts: while the server is
// unreachable, the listener tries to connect again after a pause that
// grows to reconnectMax (2 s) and no further: a few attempts over 12 s
// (not a busy loop), none more than 2 s (and slack) after the one before
// (the pause bounded), and it listens again soon after the server is
// back. Only the listener connects meanwhile (PollInterval is an hour).
func TestPostgres_ListenerPausesBetweenAttempts(t *testing.T) {
	if testing.Short() {
		t.Skip("12 s of refused connections: -short leaves it out")
	}
	t.Parallel()
	px, _, _, _, schema := nodesThroughProxy(t, queue.Options{PollInterval: time.Hour}, false)
	raw := pgtest.URL(t)
	awaitListeners(t, raw, schema)

	px.refuse.Store(true)
	px.cutListeners()
	time.Sleep(12 * time.Second)
	px.mu.Lock()
	refused := append([]time.Time(nil), px.refused...)
	px.mu.Unlock()
	px.refuse.Store(false)
	t0 := time.Now()
	awaitListeners(t, raw, schema, "the listener connects again")
	t.Logf("%d attempts refused; listening again %v after the server was back", len(refused), time.Since(t0).Round(time.Millisecond))

	// 10 ms doubling to 2 s: about 8 attempts in the first 2.6 s, then one
	// every 2 s.
	require.GreaterOrEqual(t, len(refused), 4, "the listener tries again while the server is unreachable")
	require.LessOrEqual(t, len(refused), 100, "the listener pauses between attempts")
	for i := 1; i < len(refused); i++ {
		require.Less(t, refused[i].Sub(refused[i-1]), 3500*time.Millisecond, "a pause past reconnectMax (2 s), attempt %d", i)
	}
	require.Less(t, time.Since(t0), 5*time.Second, "the listener's pause is at most reconnectMax (2 s)")
}
