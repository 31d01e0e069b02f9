//go:build race

package storetest

// maxSteps is the longest sequence of operations of a random-operations
// test. The race detector slows SQLite down some twentyfold, and these
// single-goroutine sequences have no race to find, so they stay short under
// it.
const maxSteps = 10
