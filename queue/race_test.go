//go:build race

package queue_test

// raceSlowdown scales the time bounds of tests that time the engine: the
// race detector makes it several times slower.
const raceSlowdown = 10
