// Package bench holds poolq's end-to-end benchmarks, run with
//
//	go test -run '^$' -bench . -benchmem ./bench
//
// Every benchmark reports items/s (b.ReportMetric) besides ns/op. The latest
// results, with the command and the machine that produced them, are in
// RESULTS.md beside this file.
package bench
