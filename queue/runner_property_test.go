package queue_test

// Property and stress tests of Engine.Work.
//
// TestEngine_Work_Model is a rapid state machine: the test decides when
// each call ends and how (completed, failed and due again, failed for good,
// panicked), adds items and changes the cap, and after every step waits
// until the runner has started exactly the calls a model says it must:
// every worker busy while items are due and the cap allows, never more
// than the workers or the cap, never a contact twice at once, never an item
// beyond its ceiling; calls connect (MarkInCall) at random. At the end Work
// is stopped with calls still running, each of which then returns its
// context's error, nil or an error of its own: only a cancelled call that
// had not connected is given back unattempted, the others are settled as
// they say, and nothing is left in flight.
//
// TestEngine_Work_Stress runs real handlers of random durations (some
// outliving the lease they were given, kept alive by the heartbeat),
// random outcomes and panics, over two pools, and checks that no contact is
// ever in two calls at once, that no call runs on an ended lease, that no
// lease is lost while its handler runs, and that every item ends Completed
// or Failed within its ceiling.
//
// Longer runs:
//
//	go test -race ./queue -run 'TestEngine_Work_Model$' -rapid.checks=500 -rapid.steps=100
//	POOLQ_WORK_STRESS_ITEMS=5000 go test -race ./queue -run 'TestEngine_Work_Stress$'

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// workCall is one handler call that the model test ends.
type workCall struct {
	contact   uuid.UUID
	attempt   int
	end       chan string // the outcome: "complete", "retry", "final", "panic"; or "connect", answered on connected
	connected chan error  // MarkInCall's result, after a "connect"
	stop      chan string // what the call returns once cancelled at shutdown: "cancelled", "complete", "hangup"
	inCall    bool        // the model's: MarkInCall succeeded
	atStop    string      // the model's: what was sent on stop
}

// workModel is the model of one Work run over one Parallel pool.
type workModel struct {
	ctx     context.Context
	eng     *queue.Engine
	pool    uuid.UUID
	workers int
	cap     int
	retries int // max_retries

	due     []uuid.UUID               // items waiting and due, in no particular order
	running []*workCall               // calls the model knows to have started
	tries   map[uuid.UUID]int         // attempts per contact
	settled map[uuid.UUID]pool.Status // items that stay as they are until the end: finished, or retried after RetryDelay

	mu         sync.Mutex
	started    []*workCall // calls started by the runner, not yet seen by the model
	active     map[uuid.UUID]bool
	violations []string
}

func (m *workModel) handler(ctx context.Context, l *queue.Lease) error {
	c := &workCall{contact: l.ContactUUID, attempt: l.Attempt, end: make(chan string, 1),
		connected: make(chan error, 1), stop: make(chan string, 1)}
	m.mu.Lock()
	if m.active[c.contact] {
		m.violations = append(m.violations, fmt.Sprintf("contact %s called twice at once", c.contact))
	}
	m.active[c.contact] = true
	if n := len(m.active); n > m.workers {
		m.violations = append(m.violations, fmt.Sprintf("%d calls at once with %d workers", n, m.workers))
	}
	m.started = append(m.started, c)
	m.mu.Unlock()
	var outcome string
	for outcome == "" || outcome == "connect" {
		select {
		case outcome = <-c.end:
			if outcome == "connect" {
				c.connected <- m.eng.MarkInCall(ctx, l)
			}
		case <-ctx.Done():
			select {
			case outcome = <-c.stop: // sent before Work was stopped
			default: // a call the model did not expect: reported after Work returns
				outcome = "cancelled"
			}
		}
	}
	m.mu.Lock()
	delete(m.active, c.contact)
	m.mu.Unlock()
	switch outcome {
	case "complete":
		return nil
	case "retry":
		return queue.RetryAt(time.Now(), errors.New("busy")) // due again at once
	case "final":
		return queue.Final(errors.New("wrong number"))
	case "panic":
		panic("the handler panicked")
	case "hangup":
		return errors.New("hung up")
	}
	return ctx.Err()
}

// want is how many calls must be running once the runner has caught up:
// every worker busy while items are due and the cap allows. A lowered cap
// preempts nothing, so more may be running than the cap.
func (m *workModel) want() int {
	return max(len(m.running), min(m.workers, m.cap, len(m.running)+len(m.due)))
}

// catchUp waits until the runner has started the calls the model expects,
// checking each start against the model.
func (m *workModel) catchUp(t *rapid.T) {
	want := m.want()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m.mu.Lock()
		started := m.started
		m.started = nil
		violations := slices.Clone(m.violations)
		m.mu.Unlock()
		require.Empty(t, violations)
		for _, c := range started {
			i := slices.Index(m.due, c.contact)
			require.GreaterOrEqual(t, i, 0, "call of %s, which is not due", c.contact)
			m.due = slices.Delete(m.due, i, i+1)
			m.tries[c.contact]++
			require.Equal(t, m.tries[c.contact], c.attempt, "attempt number of %s", c.contact)
			require.LessOrEqual(t, c.attempt, m.retries+1, "call of %s beyond its ceiling", c.contact)
			m.running = append(m.running, c)
		}
		require.LessOrEqual(t, len(m.running), want, "more calls started than the workers, the cap and the due items allow")
		if len(m.running) == want {
			return
		}
		require.False(t, time.Now().After(deadline), "%d calls running, want %d (%d workers, cap %d, %d due)",
			len(m.running), want, m.workers, m.cap, len(m.due))
		time.Sleep(time.Millisecond)
	}
}

func (m *workModel) add(t *rapid.T) {
	items := newItems(rapid.IntRange(1, 3).Draw(t, "add"))
	_, err := m.eng.Add(m.ctx, m.pool, items...)
	require.NoError(t, err)
	for _, it := range items {
		m.due = append(m.due, it.ContactUUID)
	}
	m.catchUp(t)
}

func (m *workModel) end(t *rapid.T) {
	if len(m.running) == 0 {
		t.Skip("no call is running")
	}
	i := rapid.IntRange(0, len(m.running)-1).Draw(t, "call")
	c := m.running[i]
	outcome := rapid.SampledFrom([]string{"complete", "retry", "final", "panic"}).Draw(t, "outcome")
	m.running = slices.Delete(m.running, i, i+1)
	c.end <- outcome
	// The item's next state, once the runner has settled it: a retry is
	// due at once, a panic is retried after the engine's RetryDelay (an
	// hour: not in this run).
	var want pool.Status
	switch {
	case outcome == "complete":
		want = pool.StatusCompleted
	case outcome == "final" || c.attempt == m.retries+1:
		want = pool.StatusFailed
	case outcome == "panic":
		want = pool.StatusRetrying
	}
	require.Eventually(t, func() bool {
		it, err := m.eng.Item(m.ctx, m.pool, c.contact)
		return err == nil && (!it.Status.InFlight() || it.Attempts > c.attempt)
	}, 10*time.Second, time.Millisecond, "the call of %s was not settled", c.contact)
	if want == "" {
		m.due = append(m.due, c.contact)
	} else {
		m.settled[c.contact] = want
	}
	m.catchUp(t)
}

func (m *workModel) connect(t *rapid.T) {
	if len(m.running) == 0 {
		t.Skip("no call is running")
	}
	c := m.running[rapid.IntRange(0, len(m.running)-1).Draw(t, "call")]
	if c.inCall {
		t.Skip("in call already")
	}
	c.end <- "connect"
	require.NoError(t, <-c.connected)
	c.inCall = true
}

func (m *workModel) setCap(t *rapid.T) {
	m.cap = rapid.IntRange(1, 4).Draw(t, "cap")
	_, err := m.eng.UpdatePool(m.ctx, m.pool, pool.UpdateParams{MaxParallelItems: &m.cap})
	require.NoError(t, err)
	m.catchUp(t)
}

func TestEngine_Work_Model(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		b := realEngine(t, queue.Options{PollInterval: time.Hour})
		m := &workModel{
			ctx:     b.ctx,
			eng:     b.eng,
			workers: rapid.IntRange(1, 4).Draw(t, "workers"),
			cap:     rapid.IntRange(1, 4).Draw(t, "cap"),
			retries: rapid.IntRange(0, 2).Draw(t, "max_retries"),
			tries:   map[uuid.UUID]int{},
			settled: map[uuid.UUID]pool.Status{},
			active:  map[uuid.UUID]bool{},
		}
		p, err := b.eng.CreatePool(b.ctx, pool.CreateParams{
			Name: "work model", Description: "rapid", Type: pool.Parallel,
			MaxParallelItems: &m.cap, MaxRetries: &m.retries,
		})
		require.NoError(t, err)
		m.pool = p.UUID
		ctx, cancel := context.WithCancel(b.ctx)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			errc <- b.eng.Work(ctx, m.handler, queue.WorkOptions{
				Pools: []uuid.UUID{p.UUID}, Workers: m.workers, Grace: queue.MinGrace,
			})
		}()

		t.Repeat(map[string]func(*rapid.T){
			"Add":     m.add,
			"End":     m.end,
			"Connect": m.connect,
			"SetCap":  m.setCap,
			"":        m.catchUp,
		})

		// Stop with calls running: after the grace they are cancelled, and
		// each returns what the model draws for it.
		for _, c := range m.running {
			c.atStop = rapid.SampledFrom([]string{"cancelled", "complete", "hangup"}).Draw(t, "at stop")
			c.stop <- c.atStop
		}
		cancel()
		select {
		case err := <-errc:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Work did not return after its context ended")
		}
		m.mu.Lock()
		require.Empty(t, m.violations)
		require.Empty(t, m.started, "calls started after the model's last look")
		m.mu.Unlock()
		d, err := b.eng.Pool(b.ctx, p.UUID)
		require.NoError(t, err)
		require.Zero(t, d.StatusCounts[pool.StatusProcessing]+d.StatusCounts[pool.StatusInCall], "in flight after shutdown")
		for c, want := range m.settled {
			it, err := b.eng.Item(b.ctx, p.UUID, c)
			require.NoError(t, err)
			require.Equal(t, want, it.Status, "item %s", c)
		}
		for _, c := range m.running {
			it, err := b.eng.Item(b.ctx, p.UUID, c.contact)
			require.NoError(t, err)
			switch how := c.atStop; {
			case how == "complete":
				require.Equal(t, pool.StatusCompleted, it.Status, "a call that ended well at shutdown, %s", c.contact)
				require.Equal(t, c.attempt, it.Attempts)
			case how == "cancelled" && !c.inCall:
				require.Contains(t, []pool.Status{pool.StatusPending, pool.StatusRetrying}, it.Status, "given back: %s", c.contact)
				require.Equal(t, c.attempt-1, it.Attempts, "a call given back at shutdown is not an attempt")
			default: // cut short after connecting, or failed: an attempt
				want := pool.StatusRetrying
				if c.attempt == m.retries+1 {
					want = pool.StatusFailed
				}
				require.Equal(t, want, it.Status, "%s at shutdown (in call: %v), %s", how, c.inCall, c.contact)
				require.Equal(t, c.attempt, it.Attempts)
			}
		}
	})
}

func TestEngine_Work_Stress(t *testing.T) {
	t.Parallel()
	items := 150
	if s := os.Getenv("POOLQ_WORK_STRESS_ITEMS"); s != "" {
		n, err := strconv.Atoi(s)
		require.NoError(t, err, "POOLQ_WORK_STRESS_ITEMS")
		items = n
	}
	// The heartbeat is frequent, but a lease lasts far longer: an
	// extension due every hb can be lease-hb late before the lease ends,
	// more than a starved machine (go test ./... on two loaded cores)
	// delays it, so the test fails for the runner, not for the load. Leases
	// that do end, before or while a handler runs, have tests of their own
	// (TestEngine_Work_SlowOnEventBeforeStart, _LeaseEndStopsHandler).
	const lease, hb = 2 * time.Second, 100 * time.Millisecond
	b := realEngine(t, queue.Options{LeaseTimeout: lease, RetryDelay: 5 * time.Millisecond})
	par := b.pool(t, pool.Parallel, 5, 2)
	fifo := b.pool(t, pool.FIFO, 1, 2)
	b.add(t, par.UUID, items-items/5)
	b.add(t, fifo.UUID, items/5)

	var mu sync.Mutex
	active := map[uuid.UUID]bool{}
	calls := map[uuid.UUID]int{}
	var violations []string
	h := func(ctx context.Context, l *queue.Lease) error {
		mu.Lock()
		if active[l.ContactUUID] {
			violations = append(violations, fmt.Sprintf("contact %s called twice at once", l.ContactUUID))
		}
		if !time.Now().Before(l.ExpiresAt) {
			violations = append(violations, fmt.Sprintf("contact %s called on an ended lease", l.ContactUUID))
		}
		active[l.ContactUUID] = true
		calls[l.ContactUUID]++
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(active, l.ContactUUID)
			mu.Unlock()
		}()
		rng := rand.New(rand.NewPCG(uint64(l.ItemID), uint64(l.Attempt)))
		d := time.Duration(rng.IntN(20)) * time.Millisecond
		if rng.IntN(30) == 0 {
			// Past the end of the lease as given, however late the
			// handler started: only the heartbeat keeps it.
			d = time.Until(l.ExpiresAt) + 2*hb
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
		switch r := rng.IntN(20); {
		case r < 12:
			return nil
		case r < 15:
			return errors.New("busy")
		case r < 17:
			return queue.RetryAt(time.Now(), errors.New("call back"))
		case r < 18:
			return queue.Final(errors.New("wrong number"))
		default:
			panic("handler panic")
		}
	}
	rec := newRecorder(nil)
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- b.eng.Work(ctx, h, queue.WorkOptions{Pools: []uuid.UUID{par.UUID, fifo.UUID}, Workers: 8, Heartbeat: hb, OnEvent: rec.on})
	}()
	finished := func(id uuid.UUID) bool {
		d, err := b.eng.Pool(b.ctx, id)
		require.NoError(t, err)
		return d.StatusCounts[pool.StatusCompleted]+d.StatusCounts[pool.StatusFailed] == d.ContactsCount
	}
	// A lost lease ends the wait: it is the failure to report (a long
	// call that loses its lease may be given back and made again, on and
	// on, and the items never finish). The FIFO pool's fifth of the items
	// go one call at a time, about 1.5 calls an item of 90 ms on average
	// (one call in 30 outlasts its 2 s lease): 27 ms an item in all, so
	// the wait is 100 ms an item, 2 minutes at least (5,000 items under
	// -race took 168 s; the 2 minutes they had were too few).
	wait := max(2*time.Minute, time.Duration(items)*100*time.Millisecond)
	if !waitUntil(wait, func() bool {
		return rec.count(queue.EventExpired) > 0 || finished(par.UUID) && finished(fifo.UUID)
	}) {
		for name, id := range map[string]uuid.UUID{"Parallel": par.UUID, "FIFO": fifo.UUID} {
			d, err := b.eng.Pool(b.ctx, id)
			require.NoError(t, err)
			t.Logf("%s pool after %v: %v", name, wait, d.StatusCounts)
		}
		t.Fatalf("the items did not finish in %v", wait)
	}
	cancel()
	require.NoError(t, <-errc)
	require.Zero(t, rec.count(queue.EventExpired), "a lease lost while its handler ran")

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, violations)
	for _, id := range []uuid.UUID{par.UUID, fifo.UUID} {
		for _, it := range allItems(b.ctx, t, b.eng, id, 100) {
			require.LessOrEqual(t, calls[it.ContactUUID], 3, "calls of %s (max_retries 2)", it.ContactUUID)
			require.Equal(t, calls[it.ContactUUID], it.Attempts, "calls of %s against its attempts", it.ContactUUID)
		}
	}
	require.Zero(t, rec.count(queue.EventError))
	t.Logf("%d items, %d calls, %d completed, %d retried, %d failed", items,
		rec.count(queue.EventDispatched), rec.count(queue.EventCompleted), rec.count(queue.EventRetried), rec.count(queue.EventFailed))
}
