package postgres_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/campaign"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestRule_BeyondAnInt: the nodes sharing a database are 64-bit and 32-bit
// ones (386, arm), and a 64-bit node wrote a rule whose caps and
// escalation threshold are beyond 2^31, which a 32-bit node cannot hold in
// an int. Rule returns the values exactly where an int holds them, and an
// error where it does not: never another number (the caps of 2^40 read as
// 0 on 386, a ceiling that no contact passes).
func TestRule_BeyondAnInt(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	ctx := context.Background()
	st := pgtest.Open(t, url, postgres.Options{})
	r, err := campaign.NewRule(uuid.New(), campaign.CreateRuleParams{Name: "wide rule", EscalationAfterFailedAttempts: new(3)}, time.Now())
	require.NoError(t, err)
	require.NoError(t, st.Write(ctx, func(tx store.Tx) error { return tx.InsertRule(ctx, r) }))

	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	const wide = int64(1) << 40
	for _, column := range []string{"max_calls_per_day", "max_total_calls", "escalation_after"} {
		_, err = conn.Exec(ctx, "UPDATE "+pgx.Identifier{st.Schema(), "rules"}.Sanitize()+" SET "+column+" = $1", wide)
		require.NoError(t, err)
		var got campaign.Rule
		err = st.Read(ctx, func(tx store.Tx) (err error) { got, err = tx.Rule(ctx, r.UUID); return err })
		if strconv.IntSize == 64 {
			require.NoError(t, err, column)
			values := map[string]int64{"max_calls_per_day": int64(got.MaxCallsPerDay), "max_total_calls": int64(got.MaxTotalCalls),
				"escalation_after": int64(*got.EscalationAfterFailedAttempts)}
			require.Equal(t, wide, values[column], column)
		} else if err == nil {
			t.Errorf("%s: 2^40 read into a 32-bit int: per day %d, total %d, escalation after %d",
				column, got.MaxCallsPerDay, got.MaxTotalCalls, *got.EscalationAfterFailedAttempts)
		}
		_, err = conn.Exec(ctx, "UPDATE "+pgx.Identifier{st.Schema(), "rules"}.Sanitize()+" SET "+column+" = 3")
		require.NoError(t, err)
	}
}
