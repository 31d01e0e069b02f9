package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultMaxClockSkew is [Options.MaxClockSkew] when it is zero: far above
// what time sync leaves (milliseconds), far below a lease's margin.
const DefaultMaxClockSkew = 30 * time.Second

// MinMaxClockSkew is the smallest positive [Options.MaxClockSkew]. Time
// sync over a network (NTP) commonly keeps hosts a millisecond or so
// apart, and nothing about leases or calling windows needs them closer: a
// tighter bound fails Open with ErrClockSkew between hosts whose clocks
// are fine (30 written as a bare number is 30 ns, not 30 s, and Open
// failed for a clock 0.5 ms ahead, telling the caller to fix the time
// sync).
const MinMaxClockSkew = time.Millisecond

// ErrClockSkew is wrapped by the error of [Open] when this process's clock
// is further from the database server's than [Options.MaxClockSkew].
var ErrClockSkew = errors.New("clock skew")

// clockKey is the context key of the clock that checkClock reads instead
// of time.Now, which only tests set.
type clockKey struct{}

// checkClock fails when this process's clock is further from the server's
// than o.MaxClockSkew (unless that is negative).
func checkClock(ctx context.Context, conn *pgx.Conn, o Options) error {
	if o.MaxClockSkew < 0 {
		return nil
	}
	clock, ok := ctx.Value(clockKey{}).(func() time.Time)
	if !ok {
		clock = time.Now
	}
	skew, err := clockSkew(ctx, conn, clock)
	if err != nil {
		return fmt.Errorf("read the server's clock: %w", err)
	}
	if skew.Abs() <= o.MaxClockSkew {
		return nil
	}
	way := "ahead of"
	if skew < 0 {
		way = "behind"
	}
	return fmt.Errorf("this process's clock is at least %v %s the database server's, more than MaxClockSkew (%v): "+
		"nodes judge leases and calling windows by their own clocks, so fix the time sync of this host or of the server: %w",
		skew.Abs().Round(time.Millisecond), way, o.MaxClockSkew, ErrClockSkew)
}

// clockSkew returns how far clock is ahead of the server's clock (behind:
// negative), at the least: over three round trips, the one that took the
// least time, the server's clock_timestamp() against the middle of the
// local readings around it, less half the round trip (as far as the
// server's reading can be from that middle).
func clockSkew(ctx context.Context, conn *pgx.Conn, clock func() time.Time) (time.Duration, error) {
	var skew, best time.Duration
	for i := range 3 {
		var server time.Time
		before := clock()
		if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&server); err != nil {
			return 0, err
		}
		rtt := clock().Sub(before)
		if i == 0 || rtt < best {
			best, skew = rtt, before.Add(rtt/2).Sub(server)
		}
	}
	switch margin := best / 2; {
	case skew > margin:
		return skew - margin, nil
	case skew < -margin:
		return skew + margin, nil
	}
	return 0, nil
}
