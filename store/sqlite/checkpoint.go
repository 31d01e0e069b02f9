package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
	"time"
)

// The write-ahead log is checkpointed (copied back into the database file)
// by a goroutine of the Store, not by the commit that happens to push it
// past SQLite's threshold: that commit would otherwise wait for the copy,
// several milliseconds, once every thousand pages written — the p99 of
// every write. The writer keeps SQLite's own automatic checkpoint as a
// backstop, at a threshold high enough that the goroutine always gets there
// first unless it is starved.
const (
	// DefaultCheckpointInterval is how often the Store checkpoints the
	// write-ahead log when [Options.CheckpointInterval] is zero.
	DefaultCheckpointInterval = 100 * time.Millisecond
	// backstopPages is the writer's wal_autocheckpoint when the Store
	// checkpoints in the background (SQLite's default is 1000).
	backstopPages = 20000
)

// checkpointer runs PASSIVE checkpoints on a connection of its own: they
// copy what they can without blocking the writer or the readers, and the
// writer's next transaction restarts the log once everything was copied.
type checkpointer struct {
	db   *sql.DB
	stop chan struct{}
	done sync.WaitGroup
	// full counts the rounds that found the whole log copied into the
	// database when they ended: what a test waits for instead of a pause.
	full atomic.Int64
}

func startCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	c := &checkpointer{db: db, stop: make(chan struct{})}
	c.done.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				// An error (SQLITE_BUSY from another process's
				// checkpoint, say) only means this round is skipped.
				var busy, frames, copied int
				err := c.db.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
				if err == nil && busy == 0 && frames == copied {
					c.full.Add(1)
				}
			}
		}
	})
	return c
}

// close stops the goroutine and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	c.done.Wait()
	return c.db.Close()
}
