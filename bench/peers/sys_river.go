package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// River's tuning, set by flags (see main.go and README.md). The defaults
// are the values River's own benchmark command (cmd/river/riverbench) uses
// "to maximize job throughput": River's client defaults are 100 ms and 1 s.
var (
	riverFetchCooldown     = 2 * time.Millisecond
	riverFetchPollInterval = 20 * time.Millisecond
	// riverPollOnly turns off River's insert notifications (on SQLite, rows
	// in river_notification that a listener polls for every 50 ms): off by
	// default, as in River's own setup; see README.md for what it changes.
	riverPollOnly = false
)

// riverPeer is River with its SQLite driver (riversqlite) on
// modernc.org/sqlite, as River's SQLite documentation sets it up: one open
// connection (dbPool.SetMaxOpenConns(1)) and WAL, plus synchronous=NORMAL
// so that its durability is poolq's default. Schema by rivermigrate.
var riverPeer = peer{name: "River", open: openRiver}

type riverArgs struct {
	I int `json:"i"`
}

func (riverArgs) Kind() string { return "bench" }

type riverWorker struct {
	river.WorkerDefaults[riverArgs]
	onStart atomic.Pointer[func(int)]
}

func (w *riverWorker) Work(_ context.Context, job *river.Job[riverArgs]) error {
	(*w.onStart.Load())(job.Args.I)
	return nil
}

type riverSystem struct {
	riverClient[*sql.Tx]
	db *sql.DB
}

// riverClient is what River does the same on either driver: enqueue,
// run, count completions through its event subscription, stop. TTx is the
// driver's transaction type.
type riverClient[TTx any] struct {
	client *river.Client[TTx]
	worker *riverWorker

	settled     atomic.Int64
	errs        firstErr
	started     bool
	unsubscribe func()
	subDone     chan struct{}
}

func (s *riverClient[TTx]) Err() error { return s.errs.get() }

func openRiver(ctx context.Context, path string, workers int) (system, error) {
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	driver := riversqlite.New(db)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	w := &riverWorker{}
	workersReg := river.NewWorkers()
	river.AddWorker(workersReg, w)
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     riverFetchCooldown,
		FetchPollInterval: riverFetchPollInterval,
		PollOnly:          riverPollOnly,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           workersReg,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &riverSystem{riverClient: riverClient[*sql.Tx]{client: client, worker: w}, db: db}, nil
}

func (s *riverClient[TTx]) Enqueue(ctx context.Context, i int) error {
	_, err := s.client.Insert(ctx, riverArgs{I: i}, nil)
	return err
}

func (s *riverClient[TTx]) EnqueueBatch(ctx context.Context, first, n int) error {
	params := make([]river.InsertManyParams, n)
	for k := range params {
		params[k] = river.InsertManyParams{Args: riverArgs{I: first + k}}
	}
	res, err := s.client.InsertMany(ctx, params)
	if err != nil {
		return err
	}
	if len(res) != n {
		return fmt.Errorf("inserted %d of %d", len(res), n)
	}
	return nil
}

func (s *riverClient[TTx]) Start(ctx context.Context, onStart func(i int)) error {
	s.worker.onStart.Store(&onStart)
	// The subscription is how River reports completions: it receives a
	// job's event once the completer has written it. riverbench counts
	// worked jobs the same way.
	events, cancel := s.client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: 100_000,
		Kinds:    []river.EventKind{river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled, river.EventKindJobSnoozed},
	})
	s.unsubscribe = cancel
	s.subDone = make(chan struct{})
	go func() {
		defer close(s.subDone)
		for ev := range events {
			if ev.Kind == river.EventKindJobCompleted {
				s.settled.Add(1)
				continue
			}
			s.errs.set(fmt.Errorf("river: job %d: event %s", ev.Job.ID, ev.Kind))
		}
	}()
	if err := s.client.Start(ctx); err != nil {
		return err
	}
	s.started = true
	return nil
}

func (s *riverClient[TTx]) Settled(context.Context) (int, error) { return int(s.settled.Load()), nil }

func (s *riverClient[TTx]) Stop(ctx context.Context) error {
	if !s.started {
		return errNotStarted
	}
	s.started = false
	err := s.client.Stop(ctx)
	s.unsubscribe()
	<-s.subDone
	return err
}

func (s *riverSystem) Counts(ctx context.Context) (int, int, error) {
	var unfinished, completed int
	err := s.db.QueryRowContext(ctx,
		`SELECT coalesce(sum(state <> 'completed'), 0), coalesce(sum(state = 'completed'), 0) FROM river_job`).
		Scan(&unfinished, &completed)
	return unfinished, completed, err
}

func (s *riverSystem) Close() error {
	if s.started {
		s.Stop(context.Background())
	}
	return s.db.Close()
}
