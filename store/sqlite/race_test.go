//go:build race

package sqlite_test

// raceCycles divides the volume of the checkpoint tests under the race
// detector, which makes every statement many times slower.
const raceCycles = 5

// raceEnabled: the plan tests after ANALYZE skip themselves under the race
// detector: they run one goroutine's SQL, which the detector has nothing
// to check in, and building their 50,000-item files took 75 s of CI's
// race pass (3 s without it). CI's first pass runs them.
const raceEnabled = true
