package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestWrite_RetriesSerializationFailuresAndDeadlocks: a write whose
// transaction fails with a serialization failure (40001) or a deadlock
// (40P01) runs again from the start and commits; one that fails with
// another error of the same class (40002,
// transaction_integrity_constraint_violation) returns it, run once. A
// trigger on pools raises the error on the first runs (a sequence counts
// them: its nextval outlives the rollback); fn is InsertPool.
func TestWrite_RetriesSerializationFailuresAndDeadlocks(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	for _, tc := range []struct {
		code  string
		fails int // runs that fail
		retry bool
	}{
		{"40001", 2, true},  // serialization_failure
		{"40P01", 1, true},  // deadlock_detected
		{"40002", 1, false}, // transaction_integrity_constraint_violation: not retryable
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := pgtest.Open(t, url, postgres.Options{})
			conn, err := pgx.Connect(ctx, url)
			require.NoError(t, err)
			defer conn.Close(ctx)
			schema := pgx.Identifier{st.Schema()}.Sanitize()
			_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE SEQUENCE %[1]s.runs;
CREATE FUNCTION %[1]s.flaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF nextval('%[2]s.runs') <= %[3]d THEN
		RAISE EXCEPTION 'flaky' USING ERRCODE = '%[4]s';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER flaky BEFORE INSERT ON %[1]s.pools FOR EACH ROW EXECUTE FUNCTION %[1]s.flaky();`,
				schema, st.Schema(), tc.fails, tc.code))
			require.NoError(t, err)

			p := newTestPool("flaky")
			runs := 0
			err = st.Write(ctx, func(tx store.Tx) error {
				runs++
				return tx.InsertPool(ctx, p)
			})
			if !tc.retry {
				var pe *pgconn.PgError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, tc.code, pe.Code)
				require.Equal(t, 1, runs)
				require.Zero(t, st.Stats().Retries)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.fails+1, runs, "run again after each failure")
			require.Equal(t, uint64(tc.fails), st.Stats().Retries)
			require.Equal(t, uint64(1), st.Stats().Commits)
			require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
				_, err := tx.Pool(ctx, p.UUID)
				return err
			}))
		})
	}
}

// TestWrite_RetriesBounded: a write that fails with a serialization
// failure every time runs 1 + MaxRetries times, then returns the error,
// also when fn swallowed it.
func TestWrite_RetriesBounded(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{MaxRetries: 3})
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	schema := pgx.Identifier{st.Schema()}.Sanitize()
	_, err = conn.Exec(ctx, fmt.Sprintf(`CREATE FUNCTION %[1]s.flaky() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'flaky' USING ERRCODE = '40001';
END $$;
CREATE TRIGGER flaky BEFORE INSERT ON %[1]s.pools FOR EACH ROW EXECUTE FUNCTION %[1]s.flaky();`, schema))
	require.NoError(t, err)
	runs := 0
	err = st.Write(ctx, func(tx store.Tx) error {
		runs++
		return tx.InsertPool(ctx, newTestPool("flaky"))
	})
	var pe *pgconn.PgError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "40001", pe.Code)
	require.Equal(t, 4, runs, "the first run and MaxRetries more")
	require.Equal(t, uint64(3), st.Stats().Retries)
	require.Zero(t, st.Stats().Commits)

	// fn may swallow the error (group commit gives it to one caller, its
	// savepoint rolled back): the write still failed, and says so.
	runs = 0
	err = st.Write(ctx, func(tx store.Tx) error {
		runs++
		_ = tx.InsertPool(ctx, newTestPool("flaky"))
		return nil
	})
	require.ErrorAs(t, err, &pe, "nothing was committed")
	require.Equal(t, "40001", pe.Code)
	require.Equal(t, 4, runs)
	require.Zero(t, st.Stats().Commits)
}
