package bench

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/queue"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/postgres"
	"github.com/poolq/poolq/store/postgres/pgtest"
)

// BenchmarkPostgresClaim is BenchmarkClaim on PostgreSQL: the latency of
// TryDequeue (p50/p99; a Complete follows each claim, outside the
// percentiles; ns/op and items/s are of the whole claim + Complete cycle,
// one goroutine, each its own transaction) on a pool of 10k items against
// one of 1M (-short: 100k), of each type, with all items due and with half
// of them Retrying a year away where the pool's order meets them first.
// Governed is a Parallel pool under a running campaign with campaignRule
// (BenchmarkPostgresCampaign's: every claim reads the campaign's items of
// its contacts and both lists), its contacts in campaignZone at noon.
//
// Each pool is measured twice: fresh, right after its items were added,
// before any VACUUM or ANALYZE of its tables (a dialer that imports a
// million contacts and starts calling at once; autovacuum is off for
// them), then vacuumed, after a VACUUM (ANALYZE) of every table of the
// schema, as autovacuum would do after the import (the claims of the fresh
// run included).
//
// Parallel/items=…/half-delayed-after-vacuum is a Parallel pool whose due
// half was added and vacuumed before its delayed half was added: the
// statistics know of no item waiting for a retry while half of them do,
// as after autovacuum analyzed an import and before it analyzes the table
// again (after a tenth of its rows changed, by default), while the calls
// fail and are retried, or a calling window postpones its contacts.
func BenchmarkPostgresClaim(b *testing.B) {
	for _, typ := range []pool.Type{pool.FIFO, pool.LIFO, pool.Parallel} {
		for _, n := range claimSizes() {
			for _, delayed := range []bool{false, true} {
				b.Run(claimName(typ, n, delayed), func(b *testing.B) {
					eng, st := pgOpenStore(b, postgres.Options{}, queue.Options{})
					pgAutovacuumOff(b, st)
					c := newClaimPool(b, eng, st, typ, n, delayed)
					b.Run("fresh", c.cycle)
					pgVacuum(b, st)
					b.Run("vacuumed", c.cycle)
				})
			}
		}
	}
	for _, n := range claimSizes() {
		b.Run(fmt.Sprintf("Parallel/items=%d/half-delayed-after-vacuum", n), func(b *testing.B) {
			eng, st := pgOpenStore(b, postgres.Options{}, queue.Options{})
			pgAutovacuumOff(b, st)
			c := newClaimPool(b, eng, st, pool.Parallel, n/2, false)
			pgVacuum(b, st)
			addDelayed(b, st, c.id, n-n/2) // at a higher priority: they would come first
			c.cycle(b)
		})
	}
	loc, err := pool.LoadZone(campaignZone)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range claimSizes() {
		b.Run(fmt.Sprintf("Governed/items=%d", n), func(b *testing.B) {
			eng, st := pgOpenStore(b, postgres.Options{}, queue.Options{Now: campaignClock(loc)})
			pgAutovacuumOff(b, st)
			c := &claimPool{eng: eng, st: st, id: mustPool(b, eng, pool.Parallel).UUID, zone: campaignZone, due: n}
			c.add(b, n)
			contactLists(b, eng)
			runCampaign(b, eng, c.id)
			b.Run("fresh", c.cycle)
			pgVacuum(b, st)
			b.Run("vacuumed", c.cycle)
		})
	}
}

// BenchmarkPostgresPoolOps measures, on PostgreSQL, what a dialer asks of
// a pool besides claims while it dials, on a pool of 10k items against one
// of 1M (-short: 100k): the latency of each call, one at a time (p50/p99;
// ns/op is their mean):
//
//   - AddOne: Add of one new contact (a write transaction);
//   - Pool: the pool's detail, with its status counts;
//   - PoolWakes: store.Tx.PoolWakes of the pool in a read transaction, the
//     read of an idle poll (DequeueCampaign, Work over several pools);
//   - ItemsPending: page 1 (25 items) of the pool's Pending items.
//
// The pool is Parallel, half of its items Retrying a year away (their
// priority higher), 10 of the others in flight (leases held, never
// settled). As BenchmarkPostgresClaim, fresh then vacuumed.
func BenchmarkPostgresPoolOps(b *testing.B) {
	ctx := context.Background()
	for _, n := range claimSizes() {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			eng, st := pgOpenStore(b, postgres.Options{}, queue.Options{})
			pgAutovacuumOff(b, st)
			c := newClaimPool(b, eng, st, pool.Parallel, n, true)
			for range 10 {
				if _, err := eng.TryDequeue(ctx, c.id); err != nil {
					b.Fatal(err)
				}
			}
			ops := []struct {
				name string
				op   func() error
			}{
				{"AddOne", func() error {
					_, err := eng.Add(ctx, c.id, pool.NewItem{ContactUUID: uuid.New()})
					return err
				}},
				{"Pool", func() error {
					d, err := eng.Pool(ctx, c.id)
					if err == nil && d.StatusCounts[pool.StatusRetrying] != n/2 {
						err = fmt.Errorf("%d items Retrying, want %d", d.StatusCounts[pool.StatusRetrying], n/2)
					}
					return err
				}},
				{"PoolWakes", func() error {
					return st.Read(ctx, func(tx store.Tx) error {
						w, err := tx.PoolWakes(ctx, c.id)
						if err == nil && len(w) != 1 {
							err = fmt.Errorf("%d pools' wakes, want 1", len(w))
						}
						return err
					})
				}},
				{"ItemsPending", func() error {
					pg, err := eng.Items(ctx, c.id, pool.ItemQuery{Status: pool.StatusPending, Page: 1})
					if err == nil && len(pg.Data) != 25 {
						err = fmt.Errorf("a page of %d items, want 25", len(pg.Data))
					}
					return err
				}},
			}
			for _, state := range []string{"fresh", "vacuumed"} {
				if state == "vacuumed" {
					pgVacuum(b, st)
				}
				for _, o := range ops {
					b.Run(state+"/"+o.name, func(b *testing.B) {
						lat := make([]time.Duration, 0, 4096)
						b.ReportAllocs()
						for b.Loop() {
							start := time.Now()
							err := o.op()
							lat = append(lat, time.Since(start))
							if err != nil {
								b.Fatal(err)
							}
						}
						reportPercentiles(b, lat)
					})
				}
			}
		})
	}
}

// pgTables runs sql (a format with one %s) on every table of st's schema,
// each a statement of its own, on a connection of the benchmark's own.
func pgTables(b *testing.B, st *postgres.Store, sql string) {
	b.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(pgtest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.RuntimeParams["search_path"] = st.Schema()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
	if err != nil {
		b.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err == nil && len(tables) == 0 {
		err = errors.New("no tables")
	}
	if err != nil {
		b.Fatalf("the tables of schema %s: %v", st.Schema(), err)
	}
	for _, t := range tables {
		q := fmt.Sprintf(sql, pgx.Identifier{t}.Sanitize())
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
}

// pgAutovacuumOff turns autovacuum off for the tables of st's schema
// (the project's server runs without it; another may not), so that they
// stay as a bulk add left them until pgVacuum.
func pgAutovacuumOff(b *testing.B, st *postgres.Store) {
	b.Helper()
	pgTables(b, st, "ALTER TABLE %s SET (autovacuum_enabled = false)")
}

// pgVacuum runs VACUUM (ANALYZE) on the tables of st's schema: what
// autovacuum does to a table after a bulk add (since PostgreSQL 13 it
// vacuums after inserts too, which sets the visibility map).
func pgVacuum(b *testing.B, st *postgres.Store) {
	b.Helper()
	start := time.Now()
	pgTables(b, st, "VACUUM (ANALYZE) %s")
	b.Logf("VACUUM (ANALYZE) in %v", time.Since(start).Round(time.Millisecond))
}
