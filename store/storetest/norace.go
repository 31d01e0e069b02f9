//go:build !race

package storetest

// maxSteps is the longest sequence of operations of a random-operations
// test (shorter under the race detector, see race.go).
const maxSteps = 50
