package queue

import (
	"fmt"
	"time"

	"github.com/poolq/poolq/queue/internal/groupcommit"
	"github.com/poolq/poolq/validate"
)

// Defaults of [Options].
const (
	DefaultLeaseTimeout = 10 * time.Minute
	DefaultRetryDelay   = time.Hour
	DefaultPollInterval = time.Second
	// DefaultMaxBatch is how many callers' operations one group-commit
	// transaction takes at most.
	DefaultMaxBatch = groupcommit.DefaultMaxBatch
)

// MaxMaxBatch bounds Options.MaxBatch. A group-commit transaction takes a
// lock per pool its operations touch, and on PostgreSQL those locks live
// in the server's lock table, shared by all its sessions and sized
// max_locks_per_transaction × (max_connections + max_prepared_transactions)
// (6,400 at the defaults; in practice about twice that): a transaction
// over more pools than it holds fails as a whole with "out of shared
// memory", and while it holds them other sessions' locks fail too. At
// the defaults one transaction took 12,609 locks and no more, and 13,000
// concurrent callers on as many pools under a MaxBatch of 100,000 failed
// all but three. 1024 keeps one node's batch to a sixth of the default
// table, room for several nodes' at once; it costs nothing in throughput
// (a busy node's transactions carry tens of operations). A server with
// fewer connections, or one shared with applications that hold many
// locks, wants a lower MaxBatch or a higher max_locks_per_transaction.
const MaxMaxBatch = 1024

// Bounds of the durations and times the engine accepts. They keep every
// time it computes far inside what a store can hold (years 1678 to 2261),
// so that a mistaken value is a field error of the call that made it, not
// a store error that would fail the other operations of its transaction.
const (
	// MinLeaseTimeout bounds Options.LeaseTimeout and Extend's duration from
	// below: a lease that ends before its dialler has started the call
	// would be taken back and handed out again while the phone rings (a
	// LeaseTimeout of 600 written as a bare number is 600 ns, not 600 s).
	MinLeaseTimeout = 100 * time.Millisecond
	// MaxLeaseTimeout bounds Options.LeaseTimeout and Extend's duration: a
	// week.
	MaxLeaseTimeout = 7 * 24 * time.Hour
	// MaxRetryDelay bounds Options.RetryDelay and how far after now a
	// Failure's RetryAt may be: 366 days.
	MaxRetryDelay = 366 * 24 * time.Hour
	// MinRetryDelay bounds Options.RetryDelay from below. A dialer cannot
	// tell a shorter delay from it (either retries at once), and a shorter
	// one is a bare number's mistake: RetryDelay: 3600 is 3.6 µs, not an
	// hour, and a busy contact would be called again straight away, every
	// attempt in a row. A Failure's RetryAt is not bounded so: it names a
	// time, now or later.
	MinRetryDelay = time.Millisecond
	// MinPollInterval bounds Options.PollInterval from below: a shorter
	// poll is a busy loop.
	MinPollInterval = time.Millisecond
)

// The years New accepts Options.Now's reading in: far inside what a store
// can hold, with room for every lease end and retry time computed from it.
var (
	minClock = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	maxClock = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Options configures an [Engine]. The zero value of every field means its
// default.
type Options struct {
	// LeaseTimeout is how long a dispatched item stays leased before it is
	// taken back as a failed attempt, unless extended. It counts from when
	// the claim got the pool (on PostgreSQL, a claim may wait for the
	// pool's lock behind another node: the wait does not shorten the
	// lease). From MinLeaseTimeout to MaxLeaseTimeout. Defaults to DefaultLeaseTimeout (10
	// minutes).
	LeaseTimeout time.Duration
	// RetryDelay is how long a failed item waits before it is due again
	// when the failure names no retry time. From MinRetryDelay (1 ms) to
	// MaxRetryDelay. Defaults to DefaultRetryDelay (1 hour).
	RetryDelay time.Duration
	// PollInterval bounds how long a blocked Dequeue sleeps without a
	// wake-up. Wake-ups cover every change made through this Engine; the
	// poll only catches changes made by another process sharing the store.
	// Each blocked waiter (a Dequeue, a Work) polls on its own: one read
	// transaction a PollInterval while its pools have nothing to give, no
	// write (2,000 idle waiters: 2,000 reads a second at the default).
	// At least MinPollInterval. Defaults to DefaultPollInterval (1 second).
	PollInterval time.Duration
	// Now is the clock. Defaults to time.Now. Engines on several nodes
	// sharing one database each read their own: their clocks must agree (a
	// node ahead of another by more than the store's lease grace takes its
	// live calls for ended; see store.LeaseGracer and the README's "Several
	// nodes"). The clock decides when a
	// lease ends: a clock stepped forward ends live leases early (their
	// contacts may be called again), one stepped back keeps dead ones
	// (and a retry a claim found due at the later reading is not woken
	// for again: a blocked Dequeue sees it at the next poll); keep it
	// slewed (NTP's default for small offsets), not stepped. Now
	// must not panic: the runner's goroutines read it outside any
	// transaction, where a panic ends the process. New reads it once and
	// refuses a clock that is not between the years 1900 and 2199 (a fake
	// clock left at its zero value): every write would fail.
	Now func() time.Time
	// MaxBatch is how many concurrent callers' write operations group
	// commit runs in one transaction at most; 1 turns group commit off (one
	// transaction per call). At most MaxMaxBatch (1024: on PostgreSQL a
	// transaction holds a lock per pool it touches, in a table of the
	// server's that every session shares). Defaults to DefaultMaxBatch
	// (256).
	MaxBatch int
}

func (o Options) withDefaults() Options {
	if o.LeaseTimeout == 0 {
		o.LeaseTimeout = DefaultLeaseTimeout
	}
	if o.RetryDelay == 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.PollInterval == 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	return o
}

// validate reports every bad field of o, after withDefaults, as
// [validate.Errors] named like WorkOptions' fields ("lease_timeout").
func (o Options) validate() error {
	var v validate.Validator
	v.Check(o.LeaseTimeout >= MinLeaseTimeout && o.LeaseTimeout <= MaxLeaseTimeout, "lease_timeout", validate.RuleRange,
		fmt.Sprintf("must be between %v and %v (got %v)", MinLeaseTimeout, MaxLeaseTimeout, o.LeaseTimeout))
	v.Check(o.RetryDelay >= MinRetryDelay && o.RetryDelay <= MaxRetryDelay, "retry_delay", validate.RuleRange,
		fmt.Sprintf("must be between %v and %v (got %v)", MinRetryDelay, MaxRetryDelay, o.RetryDelay))
	v.Check(o.PollInterval >= MinPollInterval, "poll_interval", validate.RuleRange,
		fmt.Sprintf("must be at least %v (got %v)", MinPollInterval, o.PollInterval))
	v.IntRange("max_batch", o.MaxBatch, 1, MaxMaxBatch)
	if now := o.Now(); now.Before(minClock) || !now.Before(maxClock) {
		v.Add("now", validate.RuleRange, fmt.Sprintf("must read a time between the years %d and %d (read %v)",
			minClock.Year(), maxClock.Year()-1, now))
	}
	return v.Err()
}
