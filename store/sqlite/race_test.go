//go:build race

package sqlite_test

// raceCycles divides the volume of the checkpoint tests under the race
// detector, which makes every statement many times slower.
const raceCycles = 5
