package queue

import (
	"errors"
	"fmt"
	"time"
)

// Defaults of [Options].
const (
	DefaultLeaseTimeout = 10 * time.Minute
	DefaultRetryDelay   = time.Hour
	DefaultPollInterval = time.Second
)

// Options configures an [Engine]. The zero value of every field means its
// default.
type Options struct {
	// LeaseTimeout is how long a dispatched item stays leased before it is
	// taken back as a failed attempt, unless extended. Defaults to
	// DefaultLeaseTimeout (10 minutes).
	LeaseTimeout time.Duration
	// RetryDelay is how long a failed item waits before it is due again
	// when the failure names no retry time. Defaults to DefaultRetryDelay
	// (1 hour).
	RetryDelay time.Duration
	// PollInterval bounds how long a blocked Dequeue sleeps without a
	// wake-up. Wake-ups cover every change made through this Engine; the
	// poll only catches changes made by another process sharing the store.
	// Defaults to DefaultPollInterval (1 second).
	PollInterval time.Duration
	// Now is the clock. Defaults to time.Now.
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
	if o.LeaseTimeout < 0 {
		errs = append(errs, fmt.Errorf("LeaseTimeout must not be negative (got %v)", o.LeaseTimeout))
	}
	if o.RetryDelay < 0 {
		errs = append(errs, fmt.Errorf("RetryDelay must not be negative (got %v)", o.RetryDelay))
	}
	if o.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("MaxBatch must not be negative (got %d)", o.MaxBatch))
	}
	if o.PollInterval < 0 {
		errs = append(errs, fmt.Errorf("PollInterval must not be negative (got %v)", o.PollInterval))
	}
	return errors.Join(errs...)
}
