package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_LeaseGrace: the grace a Store reports to its engines
// (store.LeaseGracer): twice MaxClockSkew unless set, none when negative.
func TestOpen_LeaseGrace(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	schema := pgtest.Schema(t, url)
	for _, c := range []struct {
		o    postgres.Options
		want time.Duration
	}{
		{postgres.Options{}, 2 * postgres.DefaultMaxClockSkew},
		{postgres.Options{MaxClockSkew: 2 * time.Second}, 4 * time.Second},
		{postgres.Options{MaxClockSkew: -1}, 2 * postgres.DefaultMaxClockSkew}, // the clocks not checked: still a margin
		{postgres.Options{MaxClockSkew: 1<<63 - 1}, postgres.MaxLeaseGrace},    // twice it would wrap round
		{postgres.Options{MaxClockSkew: 20 * time.Hour}, postgres.MaxLeaseGrace},
		{postgres.Options{LeaseGrace: 5 * time.Second}, 5 * time.Second},
		{postgres.Options{LeaseGrace: postgres.MinLeaseGrace}, postgres.MinLeaseGrace},
		{postgres.Options{LeaseGrace: -1}, 0},
	} {
		o := c.o
		o.Schema, o.MaxConns = schema, 1
		st, err := postgres.Open(context.Background(), url, o)
		require.NoError(t, err, "%+v", c.o)
		require.Equal(t, c.want, st.LeaseGrace(), "%+v", c.o)
		require.NoError(t, st.Close())
	}
}
