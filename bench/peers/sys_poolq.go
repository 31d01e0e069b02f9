package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/sqlite"
)

// poolqPeer is poolq as a user would wire it: sqlite.Open with the default
// options (WAL, synchronous=NORMAL, one writer connection plus a small read
// pool), queue.New with the default options (group commit on), one Parallel
// pool with the largest cap (100), and Engine.Work with the configured
// number of workers — or, with -poolq-drain loop, that many goroutines each
// calling Dequeue then Complete.
var poolqPeer = peer{name: "poolq", open: openPoolq}

// poolqDrain is how poolq's workers run, set by a flag: "work" (the
// runner, Engine.Work, what the README shows) or "loop" (a goroutine per
// worker calling Engine.Dequeue and Engine.Complete).
var poolqDrain = "work"

type poolqSystem struct {
	st      io.Closer // the store (and, on PostgreSQL, its schema)
	eng     *queue.Engine
	pool    uuid.UUID
	workers int

	settled atomic.Int64
	errs    firstErr
	cancel  context.CancelFunc
	done    chan error
}

func openPoolq(ctx context.Context, path string, workers int) (system, error) {
	st, err := sqlite.Open(ctx, path, sqlite.Options{Durability: sqlite.Normal})
	if err != nil {
		return nil, err
	}
	eng, err := queue.New(st, queue.Options{})
	if err != nil {
		st.Close()
		return nil, err
	}
	capacity := pool.MaxParallelItems
	p, err := eng.CreatePool(ctx, pool.CreateParams{
		Name: "peers benchmark", Description: "bench/peers", Type: pool.Parallel, MaxParallelItems: &capacity,
	})
	if err != nil {
		eng.Close()
		st.Close()
		return nil, err
	}
	return &poolqSystem{st: st, eng: eng, pool: p.UUID, workers: workers}, nil
}

func poolqItem(i int) pool.NewItem {
	return pool.NewItem{ContactUUID: uuid.New(), Payload: payload(i)}
}

func (s *poolqSystem) Enqueue(ctx context.Context, i int) error {
	_, err := s.eng.Add(ctx, s.pool, poolqItem(i))
	return err
}

func (s *poolqSystem) EnqueueBatch(ctx context.Context, first, n int) error {
	items := make([]pool.NewItem, n)
	for k := range items {
		items[k] = poolqItem(first + k)
	}
	res, err := s.eng.Add(ctx, s.pool, items...)
	if err != nil {
		return err
	}
	if res.ContactsAdded != n {
		return fmt.Errorf("added %d of %d", res.ContactsAdded, n)
	}
	return nil
}

type jobArgs struct {
	I int `json:"i"`
}

func (s *poolqSystem) Start(ctx context.Context, onStart func(i int)) error {
	h := func(_ context.Context, l *queue.Lease) error {
		var a jobArgs
		if err := json.Unmarshal(l.Item.Payload, &a); err != nil {
			return queue.Final(err)
		}
		onStart(a.I)
		return nil
	}
	wctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.done = make(chan error, 1)
	if poolqDrain == "loop" {
		go func() { s.done <- s.loop(wctx, onStart) }()
		return nil
	}
	opts := queue.WorkOptions{
		Pools:   []uuid.UUID{s.pool},
		Workers: s.workers,
		OnEvent: func(ev queue.Event) {
			switch ev.Kind {
			case queue.EventCompleted:
				s.settled.Add(1)
			case queue.EventDispatched, queue.EventReleased:
			default:
				s.errs.set(fmt.Errorf("poolq: event %s: %v", ev.Kind, ev.Err))
			}
		},
	}
	go func() { s.done <- s.eng.Work(wctx, h, opts) }()
	return nil
}

// loop is the hand-written worker pool: s.workers goroutines, each
// blocking in Dequeue and settling with Complete, until ctx ends.
func (s *poolqSystem) loop(ctx context.Context, onStart func(i int)) error {
	var wg sync.WaitGroup
	for range s.workers {
		wg.Go(func() {
			for {
				l, err := s.eng.Dequeue(ctx, s.pool)
				if err != nil {
					if ctx.Err() == nil {
						s.errs.set(fmt.Errorf("poolq: dequeue: %w", err))
					}
					return
				}
				var a jobArgs
				if err := json.Unmarshal(l.Item.Payload, &a); err != nil {
					s.errs.set(fmt.Errorf("poolq: payload: %w", err))
					return
				}
				onStart(a.I)
				// Settle even when ctx has just ended: the job ran.
				if err := s.eng.Complete(context.WithoutCancel(ctx), l, ""); err != nil {
					s.errs.set(fmt.Errorf("poolq: complete: %w", err))
					return
				}
				s.settled.Add(1)
			}
		})
	}
	wg.Wait()
	return nil
}

func (s *poolqSystem) Settled(context.Context) (int, error) { return int(s.settled.Load()), nil }

func (s *poolqSystem) Stop(context.Context) error {
	if s.cancel == nil {
		return errNotStarted
	}
	s.cancel()
	err := <-s.done
	s.cancel = nil
	return err
}

func (s *poolqSystem) Counts(ctx context.Context) (int, int, error) {
	d, err := s.eng.Pool(ctx, s.pool)
	if err != nil {
		return 0, 0, err
	}
	completed := d.StatusCounts[pool.StatusCompleted]
	return d.ContactsCount - completed, completed, nil
}

func (s *poolqSystem) Err() error { return s.errs.get() }

func (s *poolqSystem) Close() error {
	if s.cancel != nil {
		s.Stop(context.Background())
	}
	return errors.Join(s.eng.Close(), s.st.Close())
}
