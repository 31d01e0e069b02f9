package queue_test

import (
	"flag"
	"fmt"
	"testing"

	"github.com/poolq/poolq/internal/leakcheck"
)

// parallelTests is how many of this package's parallel tests run at once
// unless -parallel says otherwise (go test's default is GOMAXPROCS).
// Most of them wait rather than compute: for leases and retry times to
// come, for lock timeouts, for child processes and for other nodes; with
// two at a time, a run of the package on 2 cores used 38 % of its CPU
// (398 s). With 4 at a time, their waits overlap.
const parallelTests = 4

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		if err := flag.Set("test.parallel", fmt.Sprint(parallelTests)); err != nil {
			panic(err)
		}
	}
	leakcheck.Main(m) // fails a run that left a store open
}
