package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
	"github.com/stretchr/testify/require"
)

// TestOpen_ClockSkewSlowRoundTrips: the skew Open judges is the least the
// readings allow: against the middle of the local readings around the
// server's, less half the round trip. With round trips that read 4 s
// long (the local clock jumps 4 s during each), a clock 29 s ahead when
// the round trips begin passes MaxClockSkew 30 s (its middle is 31 s ahead, less 2 s), and one 31.5 s
// ahead does not (33.5 s less 2 s). Judged from the first reading of a
// round trip, the second would pass; without the margin, the first would
// fail.
func TestOpen_ClockSkewSlowRoundTrips(t *testing.T) {
	url := pgtest.URL(t)
	t.Parallel()
	for _, c := range []struct {
		off time.Duration
		ok  bool
	}{
		{29 * time.Second, true},
		{31500 * time.Millisecond, false},
	} {
		calls := 0 // Open reads the clock before and after each round trip, in turn
		clock := func() time.Time {
			calls++
			if calls%2 == 0 { // after: the round trip reads 4 s long
				return time.Now().Add(c.off + 4*time.Second)
			}
			return time.Now().Add(c.off)
		}
		schema := pgtest.Schema(t, url)
		st, err := postgres.Open(postgres.WithClock(context.Background(), clock), url,
			postgres.Options{Schema: schema, MaxConns: 2, MaxClockSkew: 30 * time.Second})
		if c.ok {
			require.NoError(t, err, "clock %v ahead", c.off)
			require.NoError(t, st.Close())
			continue
		}
		require.ErrorIs(t, err, postgres.ErrClockSkew, "clock %v ahead", c.off)
	}
}
