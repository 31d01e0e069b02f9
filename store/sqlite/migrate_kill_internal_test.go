package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/poolq/poolq/pool"
	"github.com/poolq/poolq/store"
	"github.com/poolq/poolq/store/internal/migrations"
	"github.com/stretchr/testify/require"
)

const killEnvPath = "POOLQ_MIGRATE_KILL_PATH"

// TestMigrate_KilledInside: a process killed (SIGKILL) while it migrates a
// version 8 file (0009 indexes every item again: long enough to be killed
// inside it) leaves the file as it was; the next Open migrates it to the
// latest version, every item there, the search index whole. Both journal
// modes: a file an older poolq left in WAL mode, and one still in
// rollback-journal mode.
//
// Not parallel: fileAtVersion narrows the package's migrations.
func TestMigrate_KilledInside(t *testing.T) {
	if p := os.Getenv(killEnvPath); p != "" {
		// The real migrations, then one that runs until the process is
		// killed: the kill lands inside the migration's transaction,
		// after the real ones have run in it.
		history = append(history[:len(history):len(history)], migrations.Migration{
			Version: len(history) + 1, Name: "burn.sql",
			SQL: `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000000) SELECT count(*) FROM c`})
		st, err := Open(context.Background(), p, Options{})
		if err != nil {
			fmt.Println("open:", err)
			os.Exit(3)
		}
		st.Close()
		os.Exit(0)
	}
	if testing.Short() {
		t.Skip("runs child processes")
	}
	for _, from := range []int{2, 8} {
		for _, wal := range []bool{false, true} {
			t.Run(fmt.Sprintf("v%d/wal=%v", from, wal), func(t *testing.T) { killInsideMigration(t, from, wal) })
		}
	}
}

func killInsideMigration(t *testing.T, from int, wal bool) {
	ctx := context.Background()
	const n = 20000
	path := filepath.Join(t.TempDir(), "old.db")
	db, exec1 := fileAtVersion(t, path, from)
	p := uuid.New()
	exec1(insertOldPool, p[:])
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	insert := `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready) VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1)`
	if from >= 4 {
		insert = `INSERT INTO items (pool_id, contact_uuid, status, priority, attempts, retry_count,
    notes, added_at, token, ready, name, email) VALUES (1, ?, 'Pending', 0, 0, 0, '', ?, 0, 1, ?, ?)`
	}
	stmt, err := tx.PrepareContext(ctx, insert)
	require.NoError(t, err)
	for i := range n {
		c := uuid.New()
		args := []any{c[:], i}
		if from >= 4 {
			args = append(args, fmt.Sprintf("Name%d Person", i), fmt.Sprintf("p%d@example.com", i))
		}
		_, err := stmt.ExecContext(ctx, args...)
		require.NoError(t, err)
	}
	require.NoError(t, stmt.Close())
	require.NoError(t, tx.Commit())
	exec1(`UPDATE pool_counts SET n = ? WHERE pool_id = 1 AND status = 'Pending'`, n)
	if wal {
		exec1(`PRAGMA journal_mode = WAL`)
	}
	require.NoError(t, db.Close())

	probe := openDB(path)
	probe.SetMaxOpenConns(1)
	defer probe.Close()
	var killed int
	for try := 0; try < 2; try++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestMigrate_KilledInside$")
		cmd.Env = append(os.Environ(), killEnvPath+"="+path)
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// Inside the migration: its journal (rollback mode) or the WAL
		// grows past what an idle open writes.
		for {
			select {
			case err := <-done:
				t.Logf("try %d: child ended before the kill: %v", try, err)
				goto next
			default:
			}
			if migrating(ctx, probe) {
				time.Sleep(200 * time.Millisecond)
				require.NoError(t, cmd.Process.Kill())
				err := <-done
				t.Logf("try %d: killed: %v", try, err)
				killed++
				goto next
			}
			time.Sleep(time.Millisecond)
		}
	next:
		var v int
		d := openDB(path)
		require.NoError(t, d.QueryRowContext(ctx, currentVersionSQL).Scan(&v))
		require.NoError(t, d.Close())
		if v == latestVersion() {
			t.Fatalf("try %d: the child finished the migration before the kill: make the file bigger", try)
		}
		require.Equal(t, from, v, "a killed migration leaves the file at its version")
	}
	require.Equal(t, 2, killed)

	st, err := Open(ctx, path, Options{CheckCache: true})
	require.NoError(t, err)
	defer st.Close()
	var check string
	require.NoError(t, st.wc.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check))
	require.Equal(t, "ok", check)
	var v int
	require.NoError(t, st.wc.QueryRowContext(ctx, currentVersionSQL).Scan(&v))
	require.Equal(t, latestVersion(), v)
	require.NoError(t, st.Read(ctx, func(tx store.Tx) error {
		counts, err := tx.StatusCounts(ctx, p)
		require.NoError(t, err)
		require.Equal(t, n, counts[pool.StatusPending])
		if from < 4 {
			return nil
		}
		found, total, err := tx.Items(ctx, p, pool.ItemQuery{Search: "name19999", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, 1, total)
		require.Equal(t, "Name19999 Person", found[0].Name)
		_, total, err = tx.Items(ctx, p, pool.ItemQuery{Search: "person", Page: 1, PerPage: 10})
		require.NoError(t, err)
		require.Equal(t, n, total)
		return nil
	}))
}

// migrating reports whether another connection holds path's write lock:
// the child, inside its migration (before it, Open only reads).
func migrating(ctx context.Context, probe *sql.DB) bool {
	conn, err := probe.Conn(ctx)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		panic(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		if isBusy(err) {
			return true
		}
		panic(err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		panic(err)
	}
	return false
}
