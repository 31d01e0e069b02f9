package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store/postgres"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// The PostgreSQL systems (-postgres): poolq on store/postgres and River on
// its pgx driver (riverpgxv5), on one server, each run in a fresh schema
// of its own, dropped at Close. The server is -pg, by default
// $POOLQ_TEST_POSTGRES.
var (
	pgURL    string
	pgPeers  = []peer{poolqPGPeer, riverPGPeer}
	pgSchema = func() string {
		var b [6]byte
		_, _ = rand.Read(b[:])
		return "peers_" + hex.EncodeToString(b[:])
	}
)

// poolqPGPeer is poolq on PostgreSQL as a user would wire it:
// postgres.Open with the default options (synchronous_commit off, 8
// connections, advisory pool locks), queue.New with the default options,
// one Parallel pool with the largest cap (100), and the same workers as
// the SQLite poolq.
var poolqPGPeer = peer{name: "poolq-pg", open: openPoolqPG}

// riverPGPeer is River with riverpgxv5 on a pgxpool of its own, as many
// connections as poolq-pg's store (postgres.DefaultMaxConns, or the URL's
// pool_max_conns for both), configured as the SQLite River is (riverbench's
// fetch settings), with synchronous_commit off like poolq's default.
var riverPGPeer = peer{name: "River-pg", open: openRiverPG}

// schemaCloser closes a store, then drops its schema.
type schemaCloser struct {
	close  func()
	schema string
}

func (c schemaCloser) Close() error {
	c.close()
	return dropSchema(c.schema)
}

func dropSchema(schema string) error {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

func openPoolqPG(ctx context.Context, _ string, workers int) (system, error) {
	schema := pgSchema()
	st, err := postgres.Open(ctx, pgURL, postgres.Options{Schema: schema})
	if err != nil {
		_ = dropSchema(schema)
		return nil, err
	}
	closer := schemaCloser{close: func() { st.Close() }, schema: schema}
	eng, err := queue.New(st, queue.Options{})
	if err != nil {
		closer.Close()
		return nil, err
	}
	capacity := pool.MaxParallelItems
	p, err := eng.CreatePool(ctx, pool.CreateParams{
		Name: "peers benchmark", Description: "bench/peers", Type: pool.Parallel, MaxParallelItems: &capacity,
	})
	if err != nil {
		eng.Close()
		closer.Close()
		return nil, err
	}
	return &poolqSystem{st: closer, eng: eng, pool: p.UUID, workers: workers}, nil
}

type riverPGSystem struct {
	riverClient[pgx.Tx]
	db     *pgxpool.Pool
	schema string
}

func openRiverPG(ctx context.Context, _ string, workers int) (system, error) {
	schema := pgSchema()
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return nil, err
	}
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize())
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(pgURL)
	if err != nil {
		return nil, err
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	if !strings.Contains(pgURL, "pool_max_conns") {
		// poolq-pg's store has postgres.DefaultMaxConns when the URL names
		// no size; pgx's own default is max(4, NumCPU), which would give
		// River half as many on 2 cores and more on 16.
		cfg.MaxConns = postgres.DefaultMaxConns
	}
	db, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (system, error) {
		db.Close()
		return nil, errors.Join(err, dropSchema(schema))
	}
	driver := riverpgxv5.New(db)
	migrator, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fail(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fail(fmt.Errorf("migrate: %w", err))
	}
	w := &riverWorker{}
	workersReg := river.NewWorkers()
	river.AddWorker(workersReg, w)
	client, err := river.NewClient(driver, &river.Config{
		FetchCooldown:     riverFetchCooldown,
		FetchPollInterval: riverFetchPollInterval,
		PollOnly:          riverPollOnly,
		Schema:            schema,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:           workersReg,
	})
	if err != nil {
		return fail(err)
	}
	return &riverPGSystem{riverClient: riverClient[pgx.Tx]{client: client, worker: w}, db: db, schema: schema}, nil
}

func (s *riverPGSystem) Counts(ctx context.Context) (int, int, error) {
	var unfinished, completed int
	err := s.db.QueryRow(ctx,
		`SELECT count(*) FILTER (WHERE state <> 'completed'), count(*) FILTER (WHERE state = 'completed') FROM river_job`).
		Scan(&unfinished, &completed)
	return unfinished, completed, err
}

func (s *riverPGSystem) Close() error {
	if s.started {
		s.Stop(context.Background())
	}
	s.db.Close()
	return dropSchema(s.schema)
}
