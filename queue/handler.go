package queue

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/poolq/poolq/pool"
)

// Handler processes one leased item for [Engine.Work]. Its result settles
// the item: nil completes it; an error fails it with the error's text as the
// note — retried after the engine's RetryDelay, or at the time carried by
// [RetryAt], or failed for good when wrapped by [Final] — and a panic (or a
// runtime.Goexit, or an error whose own methods panic) fails it with the
// panic recorded in the note, as an error whose chain wraps itself (or
// holds more than 100 errors) fails it with its text. The handler may call
// [Engine.MarkInCall] on the lease (with a context that Work's shutdown does
// not cancel, such as context.WithoutCancel(ctx): a call that connected is
// an attempt even when it is cut short, see [Engine.Work]); it must not
// settle the lease itself (Complete, Fail, Release), nor Extend it (Work
// does, on its own copy: an Extend of the handler's that brings the end
// closer would let the lease end before Work's next extension, and another
// worker call the contact while this one still is), and it must return
// soon after ctx is done.
type Handler func(ctx context.Context, l *Lease) error

type retryAtError struct {
	at  time.Time
	err error
}

func (e *retryAtError) Error() string {
	switch {
	case e.err != nil:
		return e.err.Error()
	case e.at.IsZero():
		return "retry after the retry delay" // a zero t names no time
	}
	return "retry at " + e.at.UTC().Format(time.RFC3339)
}

func (e *retryAtError) Unwrap() error { return e.err }

// RetryAt returns an error that, returned by a [Handler], fails the attempt
// and schedules the next one at t (status Scheduled) instead of after the
// engine's RetryDelay. err, which may be nil, is the note. The pool's retry
// ceiling still applies: with no attempts left the item fails for good; an
// error that also wraps [Final] fails it for good whatever t. A t
// further than [MaxRetryDelay] ahead, which [Engine.Fail] refuses, fails
// the item for good too (the note says why): left unwritten, the attempt
// would expire and be retried after RetryDelay, long before t. A zero t
// names no time, as a zero [Failure.RetryAt]: the item is Retrying after
// RetryDelay.
func RetryAt(t time.Time, err error) error { return &retryAtError{at: t, err: err} }

type finalError struct{ err error }

func (e *finalError) Error() string {
	if e.err == nil {
		return "final failure"
	}
	return e.err.Error()
}

func (e *finalError) Unwrap() error { return e.err }

// Final returns an error that, returned by a [Handler], fails the item for
// good (status Failed) whatever attempts are left: a wrong number, an
// opt-out. err is the note.
func Final(err error) error { return &finalError{err: err} }

// failureOf maps a handler's error to the [Failure] Work records: its text
// as the note (made a valid note: see noteOf), and the finality of a
// [Final] or else the time of a [RetryAt] found anywhere in its chain (a
// final failure is not retried, so with both, Final wins).
func failureOf(err error) Failure {
	f := Failure{Note: noteOf(err.Error())}
	var fe *finalError
	var ra *retryAtError
	switch {
	case errors.As(err, &fe):
		f.Final = true
	case errors.As(err, &ra):
		f.RetryAt = ra.at
	}
	return f
}

// maxErrChain bounds the errors in a handler's error's chain that the
// runner reads: far more than any error carries, short of the no end of
// one that wraps itself.
const maxErrChain = 100

// boundedChain reports whether err's chain, through Unwrap() error and
// Unwrap() []error, holds at most maxErrChain errors. It calls only the
// Unwrap methods, at most maxErrChain times.
func boundedChain(err error) bool {
	stack := []error{err}
	for n := 0; len(stack) > 0; n++ {
		if n == maxErrChain {
			return false
		}
		e := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if w := u.Unwrap(); w != nil {
				stack = append(stack, w)
			}
		case interface{ Unwrap() []error }:
			for _, w := range u.Unwrap() {
				if w != nil {
					stack = append(stack, w)
				}
			}
		}
	}
	return true
}

// noteOf makes s a note the engine accepts, so that a handler's error text
// can never make its settlement fail (and the attempt wait for its lease to
// expire): invalid UTF-8 becomes U+FFFD, NUL characters are dropped, and
// the text is cut to pool.MaxNoteLen characters.
func noteOf(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if utf8.RuneCountInString(s) > pool.MaxNoteLen {
		s = string([]rune(s)[:pool.MaxNoteLen])
	}
	return s
}
