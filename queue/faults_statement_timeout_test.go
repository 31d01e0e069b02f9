package queue_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPostgres_RoleStatementTimeoutIsNotTheLockTimeout: a DBA's default
// statement_timeout for the service's role (ALTER ROLE … SET
// statement_timeout, common policy) shorter than postgres.Options.LockTimeout.
// The store sets its sessions' lock_timeout to LockTimeout, and documents
// that a write waits for another node's lock up to it, then fails with
// store.ErrLockTimeout, and that a blocked Dequeue does not end on that
// but looks again. A pool held by another session for 1 s (LockTimeout
// 5 s): a Complete of one of its leases waits and goes through, and so
// does a Dequeue; neither fails after the role's 300 ms with "canceling
// statement due to statement timeout".
func TestPostgres_RoleStatementTimeoutIsNotTheLockTimeout(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	schema := pgtest.Schema(t, url)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+schema)
	require.NoError(t, err)
	roleURL := pgtest.LoginRole(t, url, "poolq_st_"+strings.TrimPrefix(schema, "poolq_test_"),
		"GRANT USAGE, CREATE ON SCHEMA "+schema+" TO %s", "ALTER ROLE %s SET statement_timeout = '300ms'")

	st := pgtest.OpenSchema(t, roleURL, postgres.Options{Schema: schema, LockTimeout: 5 * time.Second})
	eng := openEngine(t, st, queue.Options{})
	p, err := eng.CreatePool(ctx, pool.CreateParams{Name: "held", Description: "held by another session", Type: pool.Parallel})
	require.NoError(t, err)
	_, err = eng.Add(ctx, p.UUID, newItems(2)...)
	require.NoError(t, err)
	l, err := eng.TryDequeue(ctx, p.UUID)
	require.NoError(t, err)

	// Another session holds the items for 1 s: another node's long
	// transaction. The channel is closed once it is over.
	hold := func() <-chan struct{} {
		t.Helper()
		tx, err := conn.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, "items"}.Sanitize()+" IN EXCLUSIVE MODE")
		require.NoError(t, err)
		over := make(chan struct{})
		time.AfterFunc(time.Second, func() { _ = tx.Commit(ctx); close(over) })
		return over
	}

	over := hold()
	start := time.Now()
	err = eng.Complete(ctx, l, "answered")
	assert.NoError(t, err, "Complete after %v, behind a lock held for 1 s (LockTimeout 5 s)", time.Since(start).Round(time.Millisecond))
	<-over

	over = hold()
	dctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	start = time.Now()
	_, err = eng.Dequeue(dctx, p.UUID)
	assert.NoError(t, err, "Dequeue after %v, behind a lock held for 1 s (LockTimeout 5 s)", time.Since(start).Round(time.Millisecond))
	<-over
}
