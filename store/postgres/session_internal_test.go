package postgres

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestHearOwn_IgnoresOtherChannels: checkOwnSession's wait passes on a
// notification of its own channel only. Through a pooler in transaction
// or statement mode a connection may be handed a notification meant for
// another: two nodes opening at once, the server session that ran one
// node's LISTEN can run the other's next statement, and send that
// connection the first node's notification; taken as its own, it let a
// node pass the check (the likely cause of a CI failure: a
// node opened through PgBouncer in statement mode, 2026-12-07:
// "migrate: begin: FATAL: transaction blocks not allowed in statement
// pooling mode" instead of ErrTransactionPooling).
func TestHearOwn_IgnoresOtherChannels(t *testing.T) {
	url := os.Getenv("POOLQ_TEST_POSTGRES")
	if url == "" {
		t.Skip("POOLQ_TEST_POSTGRES is not set: no PostgreSQL server to test against")
	}
	t.Parallel()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	other, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer other.Close(ctx)
	_, err = conn.Exec(ctx, `LISTEN poolq_hear_own; LISTEN "poolq_hear_other"`)
	require.NoError(t, err)

	_, err = other.Exec(ctx, "NOTIFY poolq_hear_other")
	require.NoError(t, err)
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, hearOwn(wctx, conn, "poolq_hear_own"), context.DeadlineExceeded, "another channel's notification taken as its own")

	_, err = other.Exec(ctx, "NOTIFY poolq_hear_other; NOTIFY poolq_hear_own")
	require.NoError(t, err)
	wctx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	require.NoError(t, hearOwn(wctx, conn, "poolq_hear_own"), "its own, after another's")
}
