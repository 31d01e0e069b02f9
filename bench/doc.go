// Package bench holds poolq's end-to-end benchmarks, run with
//
//	go test -run '^$' -bench . -benchmem ./bench
//
// Throughput benchmarks (Pool, Add, Cycle) report items/s with
// b.ReportMetric besides ns/op, and ops/tx where group commit shares
// transactions; latency benchmarks (Claim, Wake) report p50-µs and p99-µs;
// Memory reports heap-MiB and rss-MiB. Ceiling runs the Serial and
// Batch100 cycles in raw SQL, on a minimal jobs table and on poolq's own
// file, to show how much of a cycle's cost is the engine's. Campaign runs
// the cycles on a pool governed by a rule with a calling window against a
// plain pool, under a clock that reads mid-day in the contacts' zone
// whatever the time of day; SleepingZone reports the claim latency of a
// governed pool whose contacts are mostly outside the window, and
// first-pass-s, how long the first claim takes to postpone them (1M items:
// about 15 s of setup, after about 15 s of adding them). -short uses 100k
// items where the full run uses 1M. The latest results, with the commands and the machine
// that produced them, are in RESULTS.md beside this file; the comparison
// with other SQLite job queues is the separate module bench/peers.
package bench
