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
// is further from the database server's than [Options.MaxClockSkew], and
// by the errors of the claims (and the other operations that judge leases
// by this process's clock, see the package documentation) made while it
// is, after Open.
var ErrClockSkew = errors.New("clock skew")

// clockKey is the context key of the clock that a Store reads instead of
// time.Now to compare with the server's (at Open and after, see
// clockWatch), which only tests set.
type clockKey struct{}

// skewError is the error of a clock at least skew ahead of the server's
// (behind: negative), more than max.
func skewError(skew, max time.Duration) error {
	way := "ahead of"
	if skew < 0 {
		way = "behind"
	}
	return fmt.Errorf("this process's clock is at least %v %s the database server's, more than MaxClockSkew (%v): "+
		"nodes judge leases and calling windows by their own clocks, so fix the time sync of this host or of the server: %w",
		skew.Abs().Round(time.Millisecond), way, max, ErrClockSkew)
}

// measureSkew compares clock with the server's clock: over three round
// trips, the one that took the least time, the server's clock_timestamp()
// against the middle of the local readings around it. The server read its
// clock within margin (half that round trip) of that middle, so clock was
// between mid-margin and mid+margin ahead of the server's (behind:
// negative); see leastSkew.
func measureSkew(ctx context.Context, conn *pgx.Conn, clock func() time.Time) (mid, margin time.Duration, err error) {
	var best time.Duration
	for i := range 3 {
		var server time.Time
		before := clock()
		if err := conn.QueryRow(ctx, "SELECT clock_timestamp()").Scan(&server); err != nil {
			return 0, 0, err
		}
		rtt := clock().Sub(before)
		if i == 0 || rtt < best {
			best, mid = rtt, before.Add(rtt/2).Sub(server)
		}
	}
	return mid, best / 2, nil
}

// leastSkew returns the skew nearest zero within margin of mid: how far a
// clock measured so is ahead of the server's (behind: negative), at the
// least. A slow round trip makes it smaller, never larger.
func leastSkew(mid, margin time.Duration) time.Duration {
	switch {
	case mid > margin:
		return mid - margin
	case mid < -margin:
		return mid + margin
	}
	return 0
}
