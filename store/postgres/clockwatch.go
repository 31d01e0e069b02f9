package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// clockCheckEvery is how often a Store reads the server's clock again
// after Open (see clockWatch).
const clockCheckEvery = 5 * time.Second

// clockWatch keeps this process's clock compared with the server's from
// Open to Close, so that a node whose clock goes wrong after Open (a time
// sync that broke, a clock stepped by hand or by a bad time server) stops
// judging leases by it, and starts again by itself once it is right.
//
// Open measures the skew (measureSkew) on its own connection, and a
// goroutine measures it again every clockCheckEvery on a connection of the
// pool. Between two measures, err adds to the last one how far the clock
// has moved against the process's monotonic clock (Go's), which a
// step of the clock does not move: a step is seen at the next operation
// that asks, not at the next measure. What err cannot see between two
// measures is what moves the monotonic clock too: the host's oscillator
// drifting from the server's (a clock NTP disciplines slews by at most
// 500 ppm: 2.5 ms in 5 s), and the server's own clock moving (which moves
// every node's skew alike, not the nodes' skew against each other). And a
// host that sleeps (suspend) stops the monotonic clock, not the wall
// clock: err then counts the sleep as a step ahead until the next measure,
// at most clockCheckEvery later.
//
// err judges as Open does, by the least skew the readings allow (a slow
// round trip makes it smaller, see leastSkew): the measure's margin, half
// its best round trip, is kept with it. So a clock within MaxClockSkew is
// never refused, and one that err lets through is within MaxClockSkew plus
// a round trip (plus the drift since the last measure) of the server's.
//
// Invariant: last holds a measure from Open on (none when max is
// negative: no watch, err is always nil); the goroutine runs from the end
// of Open until close, which waits for it to return.
type clockWatch struct {
	max   time.Duration    // Options.MaxClockSkew
	every time.Duration    // clockCheckEvery, or a test's
	clock func() time.Time // the process's clock: time.Now, or a test's
	// now reads clock (without its monotonic reading) and a monotonic
	// clock (time since the watch began) at one instant: with time.Now,
	// in one call, so that no pause between two calls reads as a step.
	now  func() (wall time.Time, elapsed time.Duration)
	last atomic.Pointer[clockReading]

	stop context.CancelFunc
	done chan struct{}
}

// clockReading is a measure of the skew, and the two clocks when it was
// taken.
type clockReading struct {
	mid, margin time.Duration // the clock was mid±margin ahead of the server's (see measureSkew)
	wall        time.Time     // the clock's reading, without its monotonic reading
	elapsed     time.Duration // the monotonic clock's
}

// watchKey is the context key of the watchHooks of an Open, which only
// tests set.
type watchKey struct{}

// watchHooks replace, for a test, how often the watch measures and, when
// elapsed is not nil, its monotonic clock.
type watchHooks struct {
	every   time.Duration
	elapsed func() time.Duration
}

// newClockWatch returns the watch of a Store opened with ctx and o, not
// started.
func newClockWatch(ctx context.Context, o Options) *clockWatch {
	origin := time.Now()
	w := &clockWatch{max: o.MaxClockSkew, every: clockCheckEvery, clock: time.Now,
		now: func() (time.Time, time.Duration) {
			t := time.Now()
			return t.Round(0), t.Sub(origin) // t.Sub: the monotonic readings
		}}
	clock, ok := ctx.Value(clockKey{}).(func() time.Time)
	if ok {
		w.clock = clock
		w.now = func() (time.Time, time.Duration) { return clock().Round(0), time.Since(origin) }
	}
	if h, ok := ctx.Value(watchKey{}).(watchHooks); ok {
		w.every = h.every
		if h.elapsed != nil {
			clock := w.clock
			w.now = func() (time.Time, time.Duration) { return clock().Round(0), h.elapsed() }
		}
	}
	return w
}

// open measures the skew on conn, Open's connection, and returns an error
// wrapping ErrClockSkew when it is beyond max.
func (w *clockWatch) open(ctx context.Context, conn *pgx.Conn) error {
	if w.max < 0 {
		return nil
	}
	r, err := w.measure(ctx, conn)
	if err != nil {
		return fmt.Errorf("read the server's clock: %w", err)
	}
	w.last.Store(r)
	if skew := leastSkew(r.mid, r.margin); skew.Abs() > w.max {
		return skewError(skew, w.max)
	}
	return nil
}

// measure measures the skew on conn.
func (w *clockWatch) measure(ctx context.Context, conn *pgx.Conn) (*clockReading, error) {
	mid, margin, err := measureSkew(ctx, conn, w.clock)
	if err != nil {
		return nil, err
	}
	wall, elapsed := w.now()
	return &clockReading{mid: mid, margin: margin, wall: wall, elapsed: elapsed}, nil
}

// err returns an error wrapping ErrClockSkew while the clock is further
// from the server's than max, by the last measure and the clock's steps
// since (see clockWatch); nil when it is not, or with no watch. Cost: a
// reading of each clock.
func (w *clockWatch) err() error {
	if skew, ok := w.skew(); ok && skew.Abs() > w.max {
		return skewError(skew, w.max)
	}
	return nil
}

// behindErr is err for a clock behind the server's only: nil while it is
// ahead, however far.
func (w *clockWatch) behindErr() error {
	if skew, ok := w.skew(); ok && skew < -w.max {
		return skewError(skew, w.max)
	}
	return nil
}

// skew returns the least skew of the clock (see leastSkew), by the last
// measure and the clock's steps since; not ok with no watch.
func (w *clockWatch) skew() (skew time.Duration, ok bool) {
	r := w.last.Load()
	if r == nil {
		return 0, false
	}
	wall, elapsed := w.now()
	step := wall.Sub(r.wall) - (elapsed - r.elapsed)
	return leastSkew(r.mid+step, r.margin), true
}

// start runs the goroutine that measures the skew every w.every on a
// connection of p, until close. Nothing with no watch.
func (w *clockWatch) start(p *pgxpool.Pool) {
	if w.max < 0 {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	w.stop, w.done = stop, make(chan struct{})
	go func() {
		defer close(w.done)
		t := time.NewTicker(w.every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// A measure that fails (the database unreachable, the pool
			// busy past the next tick) keeps the last one: err still
			// counts the clock's steps since.
			if r, err := w.measureOn(ctx, p); err == nil {
				w.last.Store(r)
			}
		}
	}()
}

// measureOn measures the skew on a connection of p, within w.every.
func (w *clockWatch) measureOn(ctx context.Context, p *pgxpool.Pool) (*clockReading, error) {
	ctx, cancel := context.WithTimeout(ctx, w.every)
	defer cancel()
	c, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	return w.measure(ctx, c.Conn())
}

// close stops the goroutine and waits for it to return.
func (w *clockWatch) close() {
	if w.stop != nil {
		w.stop()
		<-w.done
	}
}
