package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/sqlite"
	"github.com/stretchr/testify/require"
)

// TestRule_BeyondAnInt: a file written by a 64-bit process holds a rule
// whose escalation threshold is beyond 2^31, which a 32-bit process (386,
// arm) cannot hold in an int. Rule returns the value exactly where an int
// holds it, and an error where it does not: never another number (it read
// 2^40 as 0 on 386, an escalation at the first failed attempt).
func TestRule_BeyondAnInt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wide.db")
	st, err := sqlite.Open(ctx, path, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "wide rule", EscalationAfterFailedAttempts: new(3)}, time.Now())
	require.NoError(t, err)
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertRule(ctx, r) }))

	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer db.Close()
	const wide = int64(1) << 40
	_, err = db.ExecContext(ctx, "UPDATE rules SET escalation_after = ?", wide)
	require.NoError(t, err)

	var got campaign.Rule
	err = st.Read(ctx, func(tx store.Tx) (err error) { got, err = tx.Rule(ctx, r.UUID); return err })
	if strconv.IntSize == 64 {
		require.NoError(t, err)
		require.Equal(t, wide, int64(*got.EscalationAfterFailedAttempts))
		return
	}
	if err == nil {
		t.Fatalf("2^40 read into a 32-bit int as %d", *got.EscalationAfterFailedAttempts)
	}
}
