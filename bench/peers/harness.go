package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// system is one job queue under test, opened on a fresh SQLite file. Every
// job carries an index i (0 ≤ i < n) in its arguments, so the harness can
// check that each job ran exactly once whatever the queue's own ids are.
type system interface {
	// Enqueue adds job i with one call (one transaction).
	Enqueue(ctx context.Context, i int) error
	// EnqueueBatch adds jobs first … first+n-1 with one call.
	EnqueueBatch(ctx context.Context, first, n int) error
	// Start starts the workers. onStart(i) is called by the handler of job
	// i when it starts; the handler then returns success at once (a no-op
	// job). onStart is safe for concurrent use.
	Start(ctx context.Context, onStart func(i int)) error
	// Settled reports how many jobs the queue has recorded as completed
	// since it was opened (from its own completion hook or its tables).
	Settled(ctx context.Context) (int, error)
	// Stop stops the workers gracefully, waiting for running handlers.
	Stop(ctx context.Context) error
	// Counts reads the database: jobs not finished (waiting or running),
	// and jobs recorded as completed (-1 when the queue keeps no record of
	// completed jobs).
	Counts(ctx context.Context) (unfinished, completed int, err error)
	// Err returns the first error the workers reported (a failed job, a
	// failed settlement), if any.
	Err() error
	// Close releases everything, the database included.
	Close() error
}

// peer is a queue library and the way to open it.
type peer struct {
	name string
	// open opens the queue on a new SQLite file at path, configured for
	// workers concurrent handlers.
	open func(ctx context.Context, path string, workers int) (system, error)
}

// config is what the command line sets.
type config struct {
	n         int           // jobs for enqueue-one and drain
	bulkN     int           // jobs for bulk enqueue
	batch     int           // jobs per call in bulk enqueue (and to pre-fill the drain)
	workers   int           // handlers for drain and latency
	samples   int           // latency samples
	gap       time.Duration // least idle time before a latency sample
	jitter    time.Duration // random extra idle time before a latency sample, uniform in [0, jitter)
	timeout   time.Duration // upper bound of one workload run
	tmpDir    string        // where the fresh files go
	fileCount atomic.Int64
}

// result is one run of one workload on one peer.
type result struct {
	rate     float64       // items/s (throughput workloads)
	p50, p99 time.Duration // latency workload
}

// workload is one of the four measurements.
type workload struct {
	key  string // for -only
	name func(c *config) string
	run  func(ctx context.Context, p peer, c *config) (result, error)
}

var workloads = []workload{
	{"enqueue", func(c *config) string {
		return fmt.Sprintf("enqueue one at a time, 1 goroutine (%s jobs), items/s", num(c.n))
	}, runEnqueueOne},
	{"enqueue-concurrent", func(c *config) string {
		return fmt.Sprintf("enqueue one at a time, %d goroutines (%s jobs), items/s", c.workers, num(c.n))
	}, runEnqueueConcurrent},
	{"bulk", func(c *config) string {
		return fmt.Sprintf("bulk enqueue (%s jobs, %s per call), items/s", num(c.bulkN), num(c.batch))
	}, runBulk},
	{"drain", func(c *config) string {
		return fmt.Sprintf("drain %s no-op jobs, %d workers, items/s", num(c.n), c.workers)
	}, runDrain},
	{"latency", nil, runLatency}, // two rows: p50, p99
}

// fresh opens p on a new file of its own.
func fresh(ctx context.Context, p peer, c *config) (system, error) {
	k := c.fileCount.Add(1)
	path := filepath.Join(c.tmpDir, fmt.Sprintf("%s-%d.db", p.name, k))
	s, err := p.open(ctx, path, c.workers)
	if err != nil {
		return nil, fmt.Errorf("%s: open: %w", p.name, err)
	}
	return s, nil
}

// runEnqueueOne adds n jobs sequentially, one call each.
func runEnqueueOne(ctx context.Context, p peer, c *config) (result, error) {
	s, err := fresh(ctx, p, c)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	start := time.Now()
	for i := range c.n {
		if err := s.Enqueue(ctx, i); err != nil {
			return result{}, fmt.Errorf("enqueue %d: %w", i, err)
		}
	}
	el := time.Since(start)
	if err := checkStored(ctx, s, c.n); err != nil {
		return result{}, err
	}
	return result{rate: float64(c.n) / el.Seconds()}, nil
}

// runEnqueueConcurrent adds n jobs from c.workers goroutines, one call
// (one job) each: what a service does when many requests each enqueue a job.
func runEnqueueConcurrent(ctx context.Context, p peer, c *config) (result, error) {
	s, err := fresh(ctx, p, c)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	var (
		next atomic.Int64
		errs firstErr
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range c.workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= c.n || errs.get() != nil {
					return
				}
				if err := s.Enqueue(ctx, i); err != nil {
					errs.set(fmt.Errorf("enqueue %d: %w", i, err))
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if err := errs.get(); err != nil {
		return result{}, err
	}
	if err := checkStored(ctx, s, c.n); err != nil {
		return result{}, err
	}
	return result{rate: float64(c.n) / el.Seconds()}, nil
}

// runBulk adds bulkN jobs in calls of batch jobs.
func runBulk(ctx context.Context, p peer, c *config) (result, error) {
	s, err := fresh(ctx, p, c)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	start := time.Now()
	if err := fill(ctx, s, c.bulkN, c.batch); err != nil {
		return result{}, err
	}
	el := time.Since(start)
	if err := checkStored(ctx, s, c.bulkN); err != nil {
		return result{}, err
	}
	return result{rate: float64(c.bulkN) / el.Seconds()}, nil
}

func fill(ctx context.Context, s system, n, batch int) error {
	for first := 0; first < n; first += batch {
		k := min(batch, n-first)
		if err := s.EnqueueBatch(ctx, first, k); err != nil {
			return fmt.Errorf("enqueue batch at %d: %w", first, err)
		}
	}
	return nil
}

// checkStored checks that the database holds exactly n unfinished jobs.
func checkStored(ctx context.Context, s system, n int) error {
	unfinished, _, err := s.Counts(ctx)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	if unfinished != n {
		return fmt.Errorf("database holds %d jobs after enqueueing %d", unfinished, n)
	}
	return nil
}

// tally counts handler starts per job: the proof that none is lost and
// none runs twice.
type tally struct {
	starts  []atomic.Int32
	total   atomic.Int64
	all     chan struct{} // closed when total reaches len(starts)
	onStart func(i int)
	mu      sync.Mutex
	bad     error
}

func newTally(n int, also func(i int)) *tally {
	t := &tally{starts: make([]atomic.Int32, n), all: make(chan struct{})}
	t.onStart = func(i int) {
		if i < 0 || i >= n {
			t.fail(fmt.Errorf("handler got job index %d, outside [0, %d)", i, n))
			return
		}
		if k := t.starts[i].Add(1); k > 1 {
			t.fail(fmt.Errorf("job %d started %d times", i, k))
		}
		if also != nil {
			also(i)
		}
		if t.total.Add(1) == int64(n) {
			close(t.all)
		}
	}
	return t
}

func (t *tally) fail(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bad == nil {
		t.bad = err
	}
}

// check reports any job not started exactly once.
func (t *tally) check() error {
	t.mu.Lock()
	bad := t.bad
	t.mu.Unlock()
	if bad != nil {
		return bad
	}
	var lost, twice int
	for i := range t.starts {
		switch k := t.starts[i].Load(); {
		case k == 0:
			lost++
		case k > 1:
			twice++
		}
	}
	if lost > 0 || twice > 0 {
		return fmt.Errorf("%d jobs never started, %d started more than once", lost, twice)
	}
	return nil
}

// settlePoll is how often waitSettled looks at the completion count. It
// only polls once every job has started (drain) or between latency samples,
// so it adds at most this much to a measured drain time.
const settlePoll = 500 * time.Microsecond

// waitSettled polls s.Settled until it reaches n.
func waitSettled(ctx context.Context, s system, n int) error {
	for {
		k, err := s.Settled(ctx)
		if err != nil {
			return fmt.Errorf("settled: %w", err)
		}
		if k == n {
			return nil
		}
		if k > n {
			return fmt.Errorf("%d completions recorded for %d jobs", k, n)
		}
		if err := s.Err(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for completions (%d of %d): %w", k, n, ctx.Err())
		case <-time.After(settlePoll):
		}
	}
}

// finish stops s and checks the end state: every job started exactly once,
// n completions recorded, nothing left unfinished.
func finish(ctx context.Context, s system, t *tally, n int) error {
	if err := s.Stop(ctx); err != nil {
		return fmt.Errorf("stop: %w", err)
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("worker error: %w", err)
	}
	if err := t.check(); err != nil {
		return err
	}
	k, err := s.Settled(ctx)
	if err != nil {
		return fmt.Errorf("settled: %w", err)
	}
	if k != n {
		return fmt.Errorf("%d completions recorded for %d jobs", k, n)
	}
	unfinished, completed, err := s.Counts(ctx)
	if err != nil {
		return fmt.Errorf("count: %w", err)
	}
	if unfinished != 0 || (completed != -1 && completed != n) {
		return fmt.Errorf("after the drain the database holds %d unfinished and %d completed jobs, want 0 and %d",
			unfinished, completed, n)
	}
	return nil
}

// runDrain pre-enqueues n jobs (not timed), then times from starting the
// workers until all n completions are recorded.
func runDrain(ctx context.Context, p peer, c *config) (result, error) {
	s, err := fresh(ctx, p, c)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	if err := fill(ctx, s, c.n, c.batch); err != nil {
		return result{}, err
	}
	t := newTally(c.n, nil)
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	start := time.Now()
	if err := s.Start(wctx, t.onStart); err != nil {
		return result{}, fmt.Errorf("start: %w", err)
	}
	select {
	case <-t.all:
	case <-wctx.Done():
		s.Stop(context.Background())
		return result{}, fmt.Errorf("drain: %d of %d jobs started before the timeout (%s)", t.total.Load(), c.n, c.timeout)
	}
	if err := waitSettled(wctx, s, c.n); err != nil {
		s.Stop(context.Background())
		return result{}, err
	}
	el := time.Since(start)
	if err := finish(ctx, s, t, c.n); err != nil {
		return result{}, err
	}
	return result{rate: float64(c.n) / el.Seconds()}, nil
}

// runLatency starts the workers on an empty queue, then, one job at a time:
// waits c.gap plus a random part of c.jitter (the workers are idle),
// enqueues a job, and measures from just before the enqueue call until its
// handler starts. The random wait puts the enqueues at random points of any
// polling period a queue has (River fetches every 20 ms); a fixed wait would
// lock them to one phase of it. The waits are the same sequence for every
// system (a fixed seed). It does not wait
// for each completion to be recorded before the next sample — River records
// completions in batches up to 250 ms apart, which would make the run
// minutes long — but it waits for all of them at the end.
func runLatency(ctx context.Context, p peer, c *config) (result, error) {
	s, err := fresh(ctx, p, c)
	if err != nil {
		return result{}, err
	}
	defer s.Close()
	startedAt := make([]time.Time, c.samples)
	got := make(chan int, c.samples)
	t := newTally(c.samples, func(i int) {
		startedAt[i] = time.Now()
		got <- i
	})
	wctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	if err := s.Start(wctx, t.onStart); err != nil {
		return result{}, fmt.Errorf("start: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // let every worker settle into its idle wait
	lat := make([]time.Duration, 0, c.samples)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range c.samples {
		wait := c.gap
		if c.jitter > 0 {
			wait += time.Duration(rnd.Int64N(int64(c.jitter)))
		}
		time.Sleep(wait)
		t0 := time.Now()
		if err := s.Enqueue(wctx, i); err != nil {
			s.Stop(context.Background())
			return result{}, fmt.Errorf("enqueue %d: %w", i, err)
		}
		select {
		case j := <-got:
			if j != i {
				s.Stop(context.Background())
				return result{}, fmt.Errorf("latency: job %d started while waiting for %d", j, i)
			}
		case <-wctx.Done():
			s.Stop(context.Background())
			return result{}, fmt.Errorf("latency: job %d not started before the timeout", i)
		}
		lat = append(lat, startedAt[i].Sub(t0))
	}
	if err := waitSettled(wctx, s, c.samples); err != nil {
		s.Stop(context.Background())
		return result{}, err
	}
	if err := finish(ctx, s, t, c.samples); err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	return result{p50: quantile(lat, 0.50), p99: quantile(lat, 0.99)}, nil
}

// quantile returns the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

// payload is the JSON arguments of job i, the same bytes for every peer.
func payload(i int) []byte {
	b := make([]byte, 0, 24)
	b = append(b, `{"i":`...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, '}')
}

// firstErr keeps the first error reported by concurrent workers.
type firstErr struct {
	mu  sync.Mutex
	err error
}

func (f *firstErr) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstErr) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

var errNotStarted = errors.New("workers not started")
