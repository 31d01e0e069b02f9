package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWrite_RestartWithTheSameLocksCountsAsARetry: a run that goes round
// for a lock (a restart) is free, not counted against MaxRetries, only when
// it adds a lock for the next run to take first; one whose next run takes
// the same locks as its own gained nothing, and counts, so that a Write
// that cannot make progress ends after MaxRetries runs again, not after
// the 10,000 that bound lock restarts.
func TestWrite_RestartWithTheSameLocksCountsAsARetry(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxRetries: 3})
	p := newTestPool("restarts")
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertPool(ctx, p) }))

	errTooMany := errors.New("the Write ran on past its retries")
	runs := 0
	err := st.Write(ctx, func(tx store.Tx) error {
		runs++
		if runs > 50 {
			return errTooMany
		}
		if _, err := tx.Pool(ctx, p.UUID); err != nil { // the pool's lock
			return err
		}
		postgres.MarkRestart(tx)
		return nil
	})
	require.Error(t, err, "a Write whose every run must go round again cannot succeed")
	require.NotErrorIs(t, err, errTooMany)
	// The first run; the run again after it, free (the first run's restart
	// added the pool's lock, which it takes first); then MaxRetries runs
	// again, counted, since each restart left the same locks.
	require.Equal(t, 1+1+3, runs)
}
