package queue

import (
	"errors"
	"fmt"
	"time"

	"github.com/poolq/poolq/queue/internal/groupcommit"
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

// Bounds of the durations and times the engine accepts. They keep every
// time it computes far inside what a store can hold (years 1678 to 2261),
// so that a mistaken value is a field error of the call that made it, not
// a store error that would fail the other operations of its transaction.
const (
	// MaxLeaseTimeout bounds Options.LeaseTimeout and Extend's duration: a
	// week.
	MaxLeaseTimeout = 7 * 24 * time.Hour
	// MaxRetryDelay bounds Options.RetryDelay and how far after now a
	// Failure's RetryAt may be: 366 days.
	MaxRetryDelay = 366 * 24 * time.Hour
)

// Options configures an [Engine]. The zero value of every field means its
// default.
type Options struct {
	// LeaseTimeout is how long a dispatched item stays leased before it is
	// taken back as a failed attempt, unless extended. It counts from when
	// the claim got the pool (on PostgreSQL, a claim may wait for the
	// pool's lock behind another node: the wait does not shorten the
	// lease). At most MaxLeaseTimeout. Defaults to DefaultLeaseTimeout (10
	// minutes).
	LeaseTimeout time.Duration
	// RetryDelay is how long a failed item waits before it is due again
	// when the failure names no retry time. At most MaxRetryDelay.
	// Defaults to DefaultRetryDelay (1 hour).
	RetryDelay time.Duration
	// PollInterval bounds how long a blocked Dequeue sleeps without a
	// wake-up. Wake-ups cover every change made through this Engine; the
	// poll only catches changes made by another process sharing the store.
	// Defaults to DefaultPollInterval (1 second).
	PollInterval time.Duration
	// Now is the clock. Defaults to time.Now. Engines on several nodes
	// sharing one database each read their own: their clocks must agree (a
	// node ahead of another by more than a lease's margin expires its live
	// leases; see the README's "Several nodes"). The clock decides when a
	// lease ends: a clock stepped forward ends live leases early (their
	// contacts may be called again), one stepped back keeps dead ones;
	// keep it slewed (NTP's default for small offsets), not stepped. Now
	// must not panic: the runner's goroutines read it outside any
	// transaction, where a panic ends the process.
	Now func() time.Time
	// MaxBatch is how many concurrent callers' write operations group
	// commit runs in one transaction at most; 1 turns group commit off (one
	// transaction per call). Defaults to DefaultMaxBatch (256).
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

func (o Options) validate() error {
	var errs []error
	if o.LeaseTimeout < 0 || o.LeaseTimeout > MaxLeaseTimeout {
		errs = append(errs, fmt.Errorf("LeaseTimeout must be between 0 and %v (got %v)", MaxLeaseTimeout, o.LeaseTimeout))
	}
	if o.RetryDelay < 0 || o.RetryDelay > MaxRetryDelay {
		errs = append(errs, fmt.Errorf("RetryDelay must be between 0 and %v (got %v)", MaxRetryDelay, o.RetryDelay))
	}
	if o.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("MaxBatch must not be negative (got %d)", o.MaxBatch))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("PollInterval must not be negative (got %v)", o.PollInterval))
	}
	return errors.Join(errs...)
}
