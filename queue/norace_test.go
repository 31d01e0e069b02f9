//go:build !race

package queue_test

// raceSlowdown scales the time bounds of tests that time the engine (see
// race_test.go).
const raceSlowdown = 1
