//go:build unix

package queue_test

import (
	"os"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// mpCounters maps the shared counters: [0] F in flight, [1] F max,
// [2] P in flight, [3] P max, [4] lock timeouts seen.
func mpCounters(t *testing.T, path string) []int32 {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(4096))
	b, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	require.NoError(t, err)
	return unsafe.Slice((*int32)(unsafe.Pointer(&b[0])), 8)
}
