package bench

import (
	"slices"
	"testing"
	"time"
)

// reportPercentiles reports the p50 and p99 of lat in microseconds.
func reportPercentiles(b *testing.B, lat []time.Duration) {
	reportNamedPercentiles(b, lat, "")
}

// reportNamedPercentiles is reportPercentiles with the metrics' names
// prefixed by name and a dash (name-p50-µs, name-p99-µs) when name is not
// empty: the latencies of calls beside those the benchmark counts.
func reportNamedPercentiles(b *testing.B, lat []time.Duration, name string) {
	if len(lat) == 0 {
		return
	}
	if name != "" {
		name += "-"
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	at := func(q float64) float64 {
		return float64(s[int(q*float64(len(s)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), name+"p50-µs")
	b.ReportMetric(at(0.99), name+"p99-µs")
}
