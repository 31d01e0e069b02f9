// Command peers runs the same four workloads on poolq and on two peer job
// queues on SQLite — River with its SQLite driver, and backlite — each on a
// fresh file, and prints one markdown table with poolq's ratio to each peer.
//
//	cd bench/peers && go run .
//
// Workloads (see README.md): enqueue one at a time (from one goroutine,
// then from 16), bulk enqueue, drain n no-op jobs with 16 workers (every job
// must complete exactly once, or the command fails), and enqueue→start
// latency with idle workers. Each
// measurement is the median of -runs runs; progress goes to stderr, the
// report to stdout.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver for River and backlite
)

var peers = []peer{poolqPeer, riverPeer, backlitePeer}

func main() {
	c := &config{}
	flag.IntVar(&c.n, "n", 5000, "jobs for the enqueue-one-at-a-time workloads and drain")
	flag.IntVar(&c.bulkN, "bulk-n", 50_000, "jobs for bulk enqueue")
	flag.IntVar(&c.batch, "batch", 1000, "jobs per call in bulk enqueue")
	flag.IntVar(&c.workers, "workers", 16, "workers for drain and latency, goroutines for concurrent enqueue")
	flag.IntVar(&c.samples, "latency-samples", 200, "enqueue→start samples")
	flag.DurationVar(&c.gap, "latency-gap", 5*time.Millisecond, "least idle time before each latency sample")
	flag.DurationVar(&c.jitter, "latency-jitter", 50*time.Millisecond, "random extra idle time before each latency sample, uniform in [0, jitter)")
	flag.DurationVar(&c.timeout, "timeout", 10*time.Minute, "longest one workload run may take")
	runs := flag.Int("runs", 3, "runs of each measurement; the table shows the median")
	only := flag.String("only", "", "comma-separated peers (poolq, river, backlite) and/or workloads (enqueue, enqueue-concurrent, bulk, drain, latency) to run; default all")
	flag.StringVar(&poolqDrain, "poolq-drain", poolqDrain, "poolq's workers: work (Engine.Work, the runner) or loop (goroutines calling Dequeue and Complete)")
	flag.DurationVar(&riverFetchCooldown, "river-fetch-cooldown", riverFetchCooldown, "River Config.FetchCooldown")
	flag.DurationVar(&riverFetchPollInterval, "river-fetch-poll", riverFetchPollInterval, "River Config.FetchPollInterval")
	flag.BoolVar(&riverPollOnly, "river-poll-only", riverPollOnly, "River Config.PollOnly (no insert notifications)")
	flag.IntVar(&backliteMaxConns, "backlite-max-conns", backliteMaxConns, "backlite's sql.DB SetMaxOpenConns (0: unlimited)")
	postgresMode := flag.Bool("postgres", false, "run poolq and River on PostgreSQL (-pg) instead of the SQLite systems")
	flag.StringVar(&pgURL, "pg", os.Getenv("POOLQ_TEST_POSTGRES"), "PostgreSQL URL for -postgres (each run in a fresh schema, dropped after)")
	flag.Parse()
	if *postgresMode {
		if pgURL == "" {
			fmt.Fprintln(os.Stderr, "peers: -postgres needs -pg or POOLQ_TEST_POSTGRES")
			os.Exit(2)
		}
		peers, basePeer = pgPeers, poolqPGPeer.name
	}

	if err := run(c, *runs, *only); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func run(c *config, runs int, only string) error {
	if poolqDrain != "work" && poolqDrain != "loop" {
		return fmt.Errorf("-poolq-drain must be work or loop, not %q", poolqDrain)
	}
	if c.gap < 0 || c.jitter < 0 {
		return fmt.Errorf("-latency-gap and -latency-jitter must not be negative")
	}
	if c.n < 1 || c.bulkN < 1 || c.batch < 1 || c.workers < 1 || c.samples < 1 || runs < 1 {
		return fmt.Errorf("-n, -bulk-n, -batch, -workers, -latency-samples and -runs must be positive")
	}
	ps, ws, err := selection(only)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "poolq-peers-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c.tmpDir = dir

	ctx := context.Background()
	results := map[string]map[string][]result{} // workload → peer → runs
	began := time.Now()
	// Peers take turns inside each run, so that a slow spell of the machine
	// hits all of them rather than one.
	for r := range runs {
		for _, w := range ws {
			for _, p := range ps {
				t0 := time.Now()
				res, err := w.run(ctx, p, c)
				if err != nil {
					return fmt.Errorf("%s / %s (run %d): %w", p.name, w.key, r+1, err)
				}
				if results[w.key] == nil {
					results[w.key] = map[string][]result{}
				}
				results[w.key][p.name] = append(results[w.key][p.name], res)
				fmt.Fprintf(os.Stderr, "run %d  %-18s %-8s %-30s (%s with setup)\n",
					r+1, w.key, p.name, res, time.Since(t0).Round(time.Millisecond))
			}
		}
	}
	report(os.Stdout, c, runs, ps, ws, results, time.Since(began))
	return nil
}

func (r result) String() string {
	if r.rate != 0 {
		return fmt.Sprintf("%.0f items/s", r.rate)
	}
	return fmt.Sprintf("p50 %s  p99 %s", r.p50, r.p99)
}

// selection applies -only.
func selection(only string) ([]peer, []workload, error) {
	if strings.TrimSpace(only) == "" {
		return peers, workloads, nil
	}
	var ps []peer
	var ws []workload
	for _, f := range strings.Split(only, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		found := false
		for _, p := range peers {
			if strings.EqualFold(p.name, f) {
				ps, found = append(ps, p), true
			}
		}
		for _, w := range workloads {
			if w.key == f {
				ws, found = append(ws, w), true
			}
		}
		if !found {
			return nil, nil, fmt.Errorf("-only: %q is neither a peer (poolq, river, backlite) nor a workload (enqueue, enqueue-concurrent, bulk, drain, latency)", f)
		}
	}
	if ps == nil {
		ps = peers
	}
	if ws == nil {
		ws = workloads
	}
	return ps, ws, nil
}

// sqliteDSN is the modernc.org/sqlite DSN the peers open: WAL, a 5 s busy
// timeout, and synchronous=NORMAL — poolq's default durability (a commit
// survives a crash of the process; the last ones may be lost on power loss).
func sqliteDSN(path string) string {
	return "file:" + path +
		"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)&_pragma=synchronous(normal)"
}
