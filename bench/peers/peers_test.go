package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tinyConfig is every workload at a size that runs in seconds.
func tinyConfig(t *testing.T) *config {
	t.Helper()
	return &config{
		n: 40, bulkN: 120, batch: 50, workers: 16,
		samples: 5, gap: time.Millisecond, timeout: time.Minute,
		tmpDir: t.TempDir(),
	}
}

// TestWorkloads runs every workload on every peer at a tiny size — each run
// checks that every job started exactly once and was recorded as completed
// once — then prints the report, so that the harness and each peer's wiring
// keep working. It starts River and backlite, so -short skips it.
func TestWorkloads(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every peer; skipped with -short")
	}
	c := tinyConfig(t)
	results := map[string]map[string][]result{}
	for _, w := range workloads {
		results[w.key] = map[string][]result{}
		for _, p := range peers {
			t.Run(w.key+"/"+p.name, func(t *testing.T) {
				r, err := w.run(context.Background(), p, c)
				require.NoError(t, err)
				if w.key == "latency" {
					require.Positive(t, r.p50)
					require.GreaterOrEqual(t, r.p99, r.p50)
				} else {
					require.Positive(t, r.rate)
				}
				results[w.key][p.name] = append(results[w.key][p.name], r)
			})
		}
	}

	var out bytes.Buffer
	report(&out, c, 1, peers, workloads, results, time.Second)
	table := out.String()
	require.Contains(t, table, "| workload | poolq | River | backlite | poolq vs River | poolq vs backlite |")
	rows := 0
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| workload") {
			rows++
			require.NotContains(t, line, "—", "a cell is missing: %s", line)
		}
	}
	require.Equal(t, len(workloads)+1, rows, "one row per workload, two for latency")
}

// TestWorkloads_poolqLoop drains and measures latency with poolq's
// hand-written Dequeue + Complete workers (-poolq-drain loop).
func TestWorkloads_poolqLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	defer func(old string) { poolqDrain = old }(poolqDrain)
	poolqDrain = "loop"
	c := tinyConfig(t)
	for _, w := range workloads {
		if w.key != "drain" && w.key != "latency" {
			continue
		}
		t.Run(w.key, func(t *testing.T) {
			_, err := w.run(context.Background(), poolqPeer, c)
			require.NoError(t, err)
		})
	}
}

func TestTally_check(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		tl := newTally(3, nil)
		for i := range 3 {
			tl.onStart(i)
		}
		require.NoError(t, tl.check())
		select {
		case <-tl.all:
		default:
			t.Fatal("all not closed after every job started")
		}
	})
	t.Run("ErrLost", func(t *testing.T) {
		tl := newTally(3, nil)
		tl.onStart(0)
		tl.onStart(2)
		require.ErrorContains(t, tl.check(), "1 jobs never started")
	})
	t.Run("ErrTwice", func(t *testing.T) {
		tl := newTally(3, nil)
		tl.onStart(0)
		tl.onStart(1)
		tl.onStart(1)
		require.ErrorContains(t, tl.check(), "job 1 started 2 times")
	})
	t.Run("ErrOutOfRange", func(t *testing.T) {
		tl := newTally(3, nil)
		tl.onStart(3)
		require.ErrorContains(t, tl.check(), "outside [0, 3)")
	})
}

func TestSelection(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		ps, ws, err := selection("River, drain")
		require.NoError(t, err)
		require.Len(t, ps, 1)
		require.Equal(t, "River", ps[0].name)
		require.Len(t, ws, 1)
		require.Equal(t, "drain", ws[0].key)

		ps, ws, err = selection("")
		require.NoError(t, err)
		require.Len(t, ps, len(peers))
		require.Len(t, ws, len(workloads))
	})
	t.Run("ErrUnknown", func(t *testing.T) {
		_, _, err := selection("sidekiq")
		require.ErrorContains(t, err, `"sidekiq" is neither a peer`)
	})
}

func TestQuantile(t *testing.T) {
	d := make([]time.Duration, 100)
	for i := range d {
		d[i] = time.Duration(i+1) * time.Millisecond
	}
	require.Equal(t, 51*time.Millisecond, quantile(d, 0.50)) // nearest rank of 99·0.5 = 49.5 → index 50
	require.Equal(t, 99*time.Millisecond, quantile(d, 0.99))
	require.Equal(t, time.Duration(0), quantile(nil, 0.5))
}
