package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/stretchr/testify/require"
)

// withStore has run open its database through wrap until the test ends.
// The tests that use it are not parallel: the parallel ones start after
// them, and see openStore restored.
func withStore(t *testing.T, wrap func(store.Store) store.Store) {
	t.Helper()
	open := openStore
	openStore = func(ctx context.Context, db string) (store.Store, error) {
		st, err := open(ctx, db)
		if err != nil {
			return nil, err
		}
		return wrap(st), nil
	}
	t.Cleanup(func() { openStore = open })
}

// syncBuffer is a bytes.Buffer that run's goroutines may write at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// blinkStore fails every Read for blink, from its afterWrites-th Write on:
// past the dialer's setup (a dozen writes), while it dials.
type blinkStore struct {
	store.Store
	afterWrites int64
	blink       time.Duration

	writes    atomic.Int64
	failUntil atomic.Int64 // UnixNano
	failed    atomic.Int64 // reads failed
}

func (s *blinkStore) Write(ctx context.Context, fn func(store.Tx) error) error {
	if s.writes.Add(1) == s.afterWrites {
		s.failUntil.Store(time.Now().Add(s.blink).UnixNano())
	}
	return s.Store.Write(ctx, fn)
}

func (s *blinkStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	if time.Now().UnixNano() < s.failUntil.Load() {
		s.failed.Add(1)
		return errors.New("the database is unreachable")
	}
	return s.Store.Read(ctx, fn)
}

// TestRun_ProgressReadsFailForAWhile: reads of the progress that fail for
// a moment (a database that blinks) do not stop the dialer, whose calls
// go on: it says so, tries again at its next tick, and ends as usual.
// Before, the first failed read ended the run with its error.
func TestRun_ProgressReadsFailForAWhile(t *testing.T) {
	bs := &blinkStore{afterWrites: 40, blink: 700 * time.Millisecond}
	withStore(t, func(st store.Store) store.Store { bs.Store = st; return bs })
	var out syncBuffer
	err := run(context.Background(), []string{"-db", filepath.Join(t.TempDir(), "dialer.db"), "-contacts", "300", "-workers", "8"}, &out, &out)
	require.NoError(t, err, "output: %s", out.String())
	require.Positive(t, bs.failed.Load(), "no read failed: the test tested nothing")
	require.Contains(t, out.String(), "reading the progress failed, trying again: get pool: the database is unreachable")
	require.Contains(t, out.String(), "most calls to one contact: 2 (the rule's max_total_calls: 2)")
}

// cancelStore cancels run's context at the first read of a pool's items:
// the summary's first (the dialling loop reads counts only).
type cancelStore struct {
	store.Store
	cancel context.CancelFunc
	once   sync.Once
	hit    atomic.Bool
}

func (s *cancelStore) Read(ctx context.Context, fn func(store.Tx) error) error {
	return s.Store.Read(ctx, func(tx store.Tx) error { return fn(cancelTx{Tx: tx, s: s}) })
}

type cancelTx struct {
	store.Tx
	s *cancelStore
}

func (tx cancelTx) Items(ctx context.Context, poolID uuid.UUID, q pool.ItemQuery) ([]pool.Item, int, error) {
	tx.s.once.Do(func() {
		tx.s.hit.Store(true)
		tx.s.cancel() // Ctrl-C
	})
	return tx.Tx.Items(ctx, poolID, q)
}

// TestRun_StopDuringTheSummary: a stop (Ctrl-C, -timeout) while the summary
// is read says that the dialling finished and the summary was cut short,
// not a bare "context canceled" as before.
func TestRun_StopDuringTheSummary(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := &cancelStore{cancel: cancel}
	withStore(t, func(st store.Store) store.Store { cs.Store = st; return cs })
	var out syncBuffer
	err := run(ctx, []string{"-db", filepath.Join(t.TempDir(), "dialer.db"), "-contacts", "30", "-workers", "4"}, &out, &out)
	require.True(t, cs.hit.Load(), "the summary read no items: the test tested nothing; output: %s", out.String())
	require.ErrorIs(t, err, context.Canceled)
	require.EqualError(t, err, "the dialling finished, its summary was cut short: context canceled", "output: %s", out.String())
	require.False(t, strings.Contains(out.String(), "most calls to one contact"), "the summary went on after the stop")
}
