package leakcheck_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/poolq/poolq/internal/leakcheck"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestRunning: an open store's goroutines are found, by the names this
// Go and this store give them, and are gone once it is closed.
func TestRunning(t *testing.T) {
	require.Empty(t, leakcheck.Running())
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "poolq.db"), sqlite.Options{})
	require.NoError(t, err)
	// A goroutine that has not begun to run yet may be missing from
	// runtime.Stack's list: look until both kinds are there.
	require.Eventually(t, func() bool {
		left := strings.Join(leakcheck.Running(), "\n\n")
		return strings.Contains(left, "database/sql.(*DB).connectionOpener(") &&
			strings.Contains(left, "store/sqlite.startCheckpointer.")
	}, 2*time.Second, time.Millisecond)
	require.NoError(t, st.Close())
	require.Empty(t, leakcheck.Wait(2*time.Second))
}
