package queue_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// TestWork_StoreClosedDuringGrace: a host that cancels Work's context and
// then closes the store before Work has returned (the wrong order) loses
// the result of the call under way: it cannot be written, the item stays
// in flight until its lease ends, then counts as a failed attempt. Work
// must say so, as it does when the store is closed before its context
// ends (an error wrapping store.ErrClosed), not return nil, the word for
// a shutdown whose results were all written.
func TestWork_StoreClosedDuringGrace(t *testing.T) {
	t.Parallel()
	b := realEngine(t, queue.Options{LeaseTimeout: time.Minute, PollInterval: 10 * time.Millisecond})
	p := b.pool(t, pool.Parallel, 5, 3)
	b.add(t, p.UUID, 1)
	started, hangUp := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	unwritten := make(chan queue.Event, 1)
	work := make(chan error, 1)
	go func() {
		work <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			close(started)
			<-hangUp
			return nil // the call went well
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 10 * time.Second, OnEvent: func(ev queue.Event) {
			if ev.Kind == queue.EventError && ev.Lease.ItemID != 0 {
				select {
				case unwritten <- ev:
				default:
				}
			}
		}})
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not start")
	}
	// Shutting down: Work's one worker is busy, so its producer, waiting
	// for a free worker, sees the end of ctx (not the store closed) and
	// Work waits for the call (Grace).
	cancel()
	require.NoError(t, b.st.Close()) // the host's mistake: the store closed before Work returned
	close(hangUp)
	select {
	case ev := <-unwritten:
		require.ErrorIs(t, ev.Err, store.ErrClosed, "the result was not written")
	case <-time.After(5 * time.Second):
		t.Fatal("no EventError for the result that could not be written")
	}
	select {
	case err := <-work:
		require.ErrorIs(t, err, store.ErrClosed,
			"Work returned %v: the call's result was lost with the store closed under it", err)
	case <-time.After(5 * time.Second):
		t.Fatal("Work did not return")
	}
}

// TestWork_StoreClosedAtPastWindowGiveBack: the same mistake met by the
// give-back of a lease whose calling window closed between its claim and
// its handler's start (a slow OnEvent): the item stays in flight until its
// lease ends, a failed attempt of a contact never called, and Work says
// so. (That give-back reported its EventError but did not record the
// store's closing, and Work returned nil.)
func TestWork_StoreClosedAtPastWindowGiveBack(t *testing.T) {
	t.Parallel()
	st := openFileStore(t, "")
	b, clk, p, _ := windowPool(t, st, time.Date(2026, 1, 2, 16, 59, 59, 0, time.UTC))
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	unwritten := make(chan queue.Event, 1)
	work := make(chan error, 1)
	go func() {
		work <- b.eng.Work(ctx, func(context.Context, *queue.Lease) error {
			t.Error("the handler started outside the calling window")
			return nil
		}, queue.WorkOptions{Pools: []uuid.UUID{p.UUID}, Grace: 5 * time.Second, OnEvent: func(ev queue.Event) {
			switch ev.Kind {
			case queue.EventDispatched:
				clk.Advance(5 * time.Minute) // past the window's end, 17:00
				cancel()
				if err := st.Close(); err != nil { // the host's mistake: the store closed before Work returned
					t.Error(err)
				}
			case queue.EventError:
				select {
				case unwritten <- ev:
				default:
				}
			}
		}})
	}()
	select {
	case err := <-work:
		require.ErrorIs(t, err, store.ErrClosed,
			"Work returned %v: the give-back was lost with the store closed under it", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Work did not return")
	}
	select {
	case ev := <-unwritten:
		require.ErrorIs(t, ev.Err, store.ErrClosed, "the give-back was not written")
	default:
		t.Fatal("no EventError for the give-back that could not be written")
	}
}
