//go:build !race

package sqlite_test

const raceCycles = 1

const raceEnabled = false
