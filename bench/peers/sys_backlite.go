package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mikestefanello/backlite"
)

// backliteMaxConns is backlite's database/sql pool size (0: unlimited, the
// database/sql default; backlite's README says nothing about it). Set by a
// flag.
var backliteMaxConns = 1

// backlitePeer is backlite as its README sets it up — "use any SQLite driver"
// (here modernc.org/sqlite under its "sqlite" name, the README's example
// uses mattn/go-sqlite3), WAL and a 5 s busy timeout, plus synchronous=NORMAL
// for poolq's durability — with the configured number of workers, no
// retention of completed tasks (nothing written but the task row and its
// deletion), no logger, no per-task timeout and no cleaner.
var backlitePeer = peer{name: "backlite", open: openBacklite}

// errorLogger drops backlite's info logs (one per task, as its default
// no-op logger does) and keeps its first error log: backlite reports a
// failed claim or deletion only there.
type errorLogger struct{ errs *firstErr }

func (errorLogger) Info(string, ...any) {}

func (l errorLogger) Error(msg string, params ...any) {
	l.errs.set(fmt.Errorf("backlite: %s %v", msg, params))
}

// backliteTask is the job: backlite stores it as JSON ({"i":…}), like the
// other two.
type backliteTask struct {
	I int `json:"i"`
}

func (backliteTask) Config() backlite.QueueConfig {
	return backlite.QueueConfig{Name: "bench", MaxAttempts: 4}
}

type backliteSystem struct {
	db      *sql.DB
	client  *backlite.Client
	onStart atomic.Pointer[func(int)]
	added   atomic.Int64
	errs    firstErr
	cancel  context.CancelFunc
}

func openBacklite(ctx context.Context, path string, workers int) (system, error) {
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(backliteMaxConns)
	s := &backliteSystem{db: db}
	client, err := backlite.NewClient(backlite.ClientConfig{
		DB:           db,
		Logger:       errorLogger{&s.errs},
		NumWorkers:   workers,
		ReleaseAfter: time.Hour,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := client.Install(); err != nil {
		db.Close()
		return nil, fmt.Errorf("install: %w", err)
	}
	s.client = client
	client.Register(backlite.NewQueue[backliteTask](func(_ context.Context, t backliteTask) error {
		(*s.onStart.Load())(t.I)
		return nil
	}))
	return s, nil
}

func (s *backliteSystem) Enqueue(ctx context.Context, i int) error {
	ids, err := s.client.Add(backliteTask{I: i}).Ctx(ctx).Save()
	if err != nil {
		return err
	}
	s.added.Add(int64(len(ids)))
	return nil
}

func (s *backliteSystem) EnqueueBatch(ctx context.Context, first, n int) error {
	tasks := make([]backlite.Task, n)
	for k := range tasks {
		tasks[k] = backliteTask{I: first + k}
	}
	ids, err := s.client.Add(tasks...).Ctx(ctx).Save()
	if err != nil {
		return err
	}
	if len(ids) != n {
		return fmt.Errorf("inserted %d of %d", len(ids), n)
	}
	s.added.Add(int64(n))
	return nil
}

func (s *backliteSystem) Start(ctx context.Context, onStart func(i int)) error {
	s.onStart.Store(&onStart)
	wctx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.client.Start(wctx)
	return nil
}

// Settled counts the tasks deleted from backlite_tasks: backlite deletes a
// task when its processor succeeds (with no retention, it keeps no record of
// it) and offers no completion hook, so the table is the only witness.
func (s *backliteSystem) Settled(ctx context.Context) (int, error) {
	var left int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM backlite_tasks`).Scan(&left); err != nil {
		return 0, err
	}
	return int(s.added.Load()) - left, nil
}

func (s *backliteSystem) Stop(ctx context.Context) error {
	if s.cancel == nil {
		return errNotStarted
	}
	defer func() { s.cancel(); s.cancel = nil }()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if !s.client.Stop(sctx) {
		return errors.New("backlite: workers did not stop within 30s")
	}
	return nil
}

func (s *backliteSystem) Counts(ctx context.Context) (int, int, error) {
	var left int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM backlite_tasks`).Scan(&left)
	return left, -1, err
}

func (s *backliteSystem) Err() error { return s.errs.get() }

func (s *backliteSystem) Close() error {
	if s.cancel != nil {
		s.Stop(context.Background())
	}
	return s.db.Close()
}
