//go:build !unix

package queue_test

import "testing"

// mpCounters: the processes of TestMultiProcess_SharedFile share their
// counters through a memory map of a file (mmap), which this test has only
// on Unix systems.
func mpCounters(t *testing.T, _ string) []int32 {
	t.Skip("TestMultiProcess_SharedFile shares counters between processes through mmap: Unix only")
	return nil
}
