package sqlite_test

import (
	"testing"

	"github.com/poolq/poolq/internal/leakcheck"
)

// TestMain fails a run whose tests passed but left a store open.
func TestMain(m *testing.M) {
	leakcheck.Main(m)
}
