package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// basePeer is the system the others are compared with: poolq, or
// poolq-pg with -postgres.
var basePeer = poolqPeer.name

// pgServer returns the PostgreSQL server's version, for the report.
func pgServer() string {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return "version unknown"
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&v); err != nil {
		return "version unknown"
	}
	return "PostgreSQL " + v
}

// report prints the machine, the versions and the one table.
func report(w io.Writer, c *config, runs int, ps []peer, ws []workload, results map[string]map[string][]result, took time.Duration) {
	onPostgres := basePeer != poolqPeer.name
	if onPostgres {
		fmt.Fprintf(w, "# poolq and River on PostgreSQL\n\n")
	} else {
		fmt.Fprintf(w, "# poolq and peer job queues on SQLite\n\n")
	}
	fmt.Fprintf(w, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %s/%s, runtime.NumCPU()=%d, %s\n", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
	fmt.Fprintf(w, "- Go: %s\n", runtime.Version())
	fmt.Fprintf(w, "- modules: %s\n", strings.Join(versions(), ", "))
	fmt.Fprintf(w, "- command: `%s` (median of %d runs, %s in all)\n",
		strings.TrimSpace("cd bench/peers && go run . "+strings.Join(os.Args[1:], " ")), runs, took.Round(time.Second))
	if onPostgres {
		fmt.Fprintf(w, "- every system: a fresh schema per run on one PostgreSQL server (%s), synchronous_commit off; no-op jobs carrying {\"i\":n}\n", pgServer())
		fmt.Fprintf(w, "- poolq-pg: store/postgres with default options (8 connections, advisory pool locks), default queue.Options (group commit), one Parallel pool, cap 100; workers: %s\n", poolqWorkers())
		fmt.Fprintf(w, "- River-pg: riverpgxv5 on a pgxpool of poolq-pg's size (8 connections), FetchCooldown %s, FetchPollInterval %s (riverbench's values), PollOnly %t, queue MaxWorkers = workers\n\n",
			riverFetchCooldown, riverFetchPollInterval, riverPollOnly)
	} else {
		fmt.Fprintf(w, "- every system: a fresh SQLite file per run (modernc.org/sqlite), WAL, synchronous=NORMAL, busy timeout 5 s; no-op jobs carrying {\"i\":n}\n")
		fmt.Fprintf(w, "- poolq: default sqlite.Options and queue.Options (group commit), one Parallel pool, cap 100; workers: %s\n", poolqWorkers())
		fmt.Fprintf(w, "- River: riversqlite, one open connection, FetchCooldown %s, FetchPollInterval %s (riverbench's values), PollOnly %t, queue MaxWorkers = workers\n",
			riverFetchCooldown, riverFetchPollInterval, riverPollOnly)
		fmt.Fprintf(w, "- backlite: README setup, max open conns %s, NumWorkers = workers, no retention, no task timeout\n\n", conns(backliteMaxConns))
	}

	fmt.Fprintf(w, "| workload |")
	for _, p := range ps {
		fmt.Fprintf(w, " %s |", p.name)
	}
	var others []peer
	for _, p := range ps {
		if p.name != basePeer {
			others = append(others, p)
		}
	}
	hasPoolq := len(others) < len(ps)
	if hasPoolq {
		for _, p := range others {
			fmt.Fprintf(w, " %s vs %s |", basePeer, p.name)
		}
	}
	fmt.Fprintf(w, "\n|---|")
	for range ps {
		fmt.Fprintf(w, "---:|")
	}
	if hasPoolq {
		for range others {
			fmt.Fprintf(w, "---:|")
		}
	}
	fmt.Fprintln(w)

	row := func(name string, val func(ps string) (float64, bool), format func(float64) string, higherIsBetter bool) {
		fmt.Fprintf(w, "| %s |", name)
		for _, p := range ps {
			if v, ok := val(p.name); ok {
				fmt.Fprintf(w, " %s |", format(v))
			} else {
				fmt.Fprintf(w, " — |")
			}
		}
		if hasPoolq {
			base, ok := val(basePeer)
			for _, p := range others {
				v, ok2 := val(p.name)
				switch {
				case !ok || !ok2 || base == 0 || v == 0:
					fmt.Fprintf(w, " — |")
				case higherIsBetter:
					fmt.Fprintf(w, " %s |", ratio(base/v))
				default:
					fmt.Fprintf(w, " %s |", ratio(v/base))
				}
			}
		}
		fmt.Fprintln(w)
	}
	for _, wl := range ws {
		rs := results[wl.key]
		if wl.key == "latency" {
			for _, q := range []struct {
				name string
				get  func(result) time.Duration
			}{{"p50", func(r result) time.Duration { return r.p50 }}, {"p99", func(r result) time.Duration { return r.p99 }}} {
				row(fmt.Sprintf("enqueue→start latency %s (%d samples, %d idle workers)", q.name, c.samples, c.workers),
					func(p string) (float64, bool) {
						if len(rs[p]) == 0 {
							return 0, false
						}
						return median(rs[p], func(r result) float64 { return float64(q.get(r)) }), true
					},
					func(v float64) string { return latency(time.Duration(v)) }, false)
			}
			continue
		}
		row(wl.name(c), func(p string) (float64, bool) {
			if len(rs[p]) == 0 {
				return 0, false
			}
			return median(rs[p], func(r result) float64 { return r.rate }), true
		}, num64, true)
	}
	if hasPoolq {
		fmt.Fprintf(w, "\n\"poolq vs X\" is how many times better poolq is: its throughput ÷ X's, or X's latency ÷ poolq's; below 1× poolq is worse.\n")
	}
}

func poolqWorkers() string {
	if poolqDrain == "loop" {
		return "goroutines calling Dequeue + Complete (-poolq-drain loop)"
	}
	return "Engine.Work (the runner)"
}

func ratio(x float64) string {
	switch {
	case x >= 10:
		return fmt.Sprintf("%.0f×", x)
	case x >= 1:
		return fmt.Sprintf("%.1f×", x)
	default:
		return fmt.Sprintf("%.2f×", x)
	}
}

func latency(d time.Duration) string {
	switch {
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// num formats n with thousands separators.
func num(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func num64(v float64) string { return num(int(v + 0.5)) }

func conns(n int) string {
	if n <= 0 {
		return "unlimited"
	}
	return fmt.Sprint(n)
}

// cpuModel is the first "model name" of /proc/cpuinfo, if there is one.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "CPU model unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "CPU model unknown"
}

// versions lists the modules that matter, as built.
func versions() []string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return []string{"build info unavailable"}
	}
	want := []string{
		"github.com/poolq/poolq",
		"github.com/riverqueue/river",
		"github.com/riverqueue/river/riverdriver/riversqlite",
		"github.com/riverqueue/river/riverdriver/riverpgxv5", // the -postgres runs' driver
		"github.com/mikestefanello/backlite",
		"modernc.org/sqlite",
		"github.com/jackc/pgx/v5",
	}
	var out []string
	for _, path := range want {
		for _, d := range bi.Deps {
			if d.Path != path {
				continue
			}
			v := d.Version
			if d.Replace != nil {
				v = "=> " + d.Replace.Path
				if d.Replace.Version != "" {
					v += " " + d.Replace.Version
				}
				v += " (this checkout)"
			}
			out = append(out, path+" "+v)
		}
	}
	return out
}
