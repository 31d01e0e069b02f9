package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// The write-ahead log is checkpointed (copied back into the database file)
// by a goroutine of the Store, not by the commit that happens to push it
// past SQLite's threshold: that commit would otherwise wait for the copy,
// several milliseconds, once every thousand pages written — the p99 of
// every write. The writer keeps SQLite's own automatic checkpoint as a
// backstop, at a threshold high enough that the goroutine always gets there
// first unless it is starved.
//
// The goroutine copies the log back once the Store has written
// CheckpointPages pages to it, not at every tick: the first commit after a
// checkpoint that copied everything restarts the log from its beginning,
// and SQLite syncs the log's new header to disk then, even at
// synchronous=NORMAL. Checkpointing whatever little was written every 100
// ms made that sync (about a millisecond here) land on nearly every commit
// of a service that writes a few times a second, such as the Add that wakes
// a dialer's idle workers.
const (
	// DefaultCheckpointInterval is how often the Store looks at the
	// write-ahead log when [Options.CheckpointInterval] is zero.
	DefaultCheckpointInterval = 100 * time.Millisecond
	// CheckpointPages is how many pages the Store writes to the
	// write-ahead log before its goroutine copies the log back into the
	// database file: SQLite's own threshold (wal_autocheckpoint's default).
	CheckpointPages = 1000
	// backstopPages is the writer's wal_autocheckpoint when the Store
	// checkpoints in the background (SQLite's default is 1000).
	backstopPages = 20000
	// heldPages bounds what a round copies with the writer's turn held
	// (see round): about a millisecond's copy.
	heldPages = 100
	// restartFrames is the size of the log, in frames, past which a round
	// that could not copy it whole restarts it (see restart): four
	// thresholds' worth, which one Store alone, whose rounds restart the
	// log, does not reach (TestCheckpoint_SteadyWrites).
	restartFrames = 4 * CheckpointPages
	// restartWait is the busy timeout of the checkpointer's connection: how
	// long a restart waits, in all, for the write lock and for the readers
	// of the log, the writers held (a passive pass never waits).
	restartWait = 20 * time.Millisecond
)

// checkpointer runs PASSIVE checkpoints on a connection of its own: they
// copy what they can without blocking the writer or the readers, and the
// writer's next transaction restarts the log once everything was copied.
// It looks every tick, and checkpoints when the writer has written at least
// threshold pages since the last round that copied the whole log. A log
// that has grown past restartFrames all the same (another process commits
// during every copy, or readers overlap without pause: see restart) is
// restarted by a RESTART checkpoint, the one time it holds every writer for
// more than a short copy: at most restartWait more.
//
// A round copies the log in two passes: the bulk without the writer's
// turn, then what was committed meanwhile, at most heldPages, with it (see
// round). Without the
// second pass, a writer committing all the time landed a commit in nearly
// every copy: the log was never whole copied when the writer began its
// next transaction, never restarted, and grew round after round to the
// backstop, where a commit copied 20,000 pages inline.
type checkpointer struct {
	db   *sql.DB
	turn chan struct{} // the Store's: held by whoever uses the writer's connection
	stop chan struct{}
	done sync.WaitGroup
	// pages is how many pages the Store's writer has written to the log
	// since the last full round (see wrote).
	pages atomic.Int64
	// threshold is CheckpointPages; tests lower it.
	threshold atomic.Int64
	// rounds counts the ticks looked at, full the rounds that found the
	// whole log copied into the database when they ended: what a test
	// waits for instead of a pause. held is the most pages a round has
	// left to its held pass, restarts the restarts done, restartHeld the
	// most frames a restart had to copy (for tests).
	rounds, full, held, restarts, restartHeld atomic.Int64
}

func startCheckpointer(db *sql.DB, every time.Duration, turn chan struct{}) *checkpointer {
	c := &checkpointer{db: db, turn: turn, stop: make(chan struct{})}
	c.threshold.Store(CheckpointPages)
	c.done.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.round()
				c.rounds.Add(1)
			}
		}
	})
	return c
}

// round checkpoints if enough pages were written since the last full
// round, and restarts the log if it has outgrown restartFrames. An error
// (SQLITE_BUSY from another process's checkpoint, say) only means this
// round is skipped; a pass that could not copy everything (a reader holds
// an older snapshot) keeps the count: the next tick tries again.
func (c *checkpointer) round() {
	if c.pages.Load() < c.threshold.Load() {
		return
	}
	if frames := c.copyBack(); frames > restartFrames {
		c.restart(frames)
	}
}

// copyBack copies the log back into the database, and returns the log's
// size in frames at its last pass.
func (c *checkpointer) copyBack() (frames int) {
	// What the writer commits while a pass copies is in the log, not yet
	// copied: copied with the writer's turn held (no commit can come
	// between), the writer's next transaction restarts the log. That
	// second pass must be short, or the writer waits for it as for an
	// inline checkpoint: unheld passes go on while the writer commits more
	// than heldPages pages during one, three at most; a writer that
	// outruns them (an import at full speed) is left to the backstop.
	var before int64
	for tries := 1; ; tries++ {
		before = c.pages.Load()
		var whole bool
		if whole, frames, _ = c.pass(passive); !whole {
			return frames
		}
		if c.pages.Load()-before <= heldPages {
			break
		}
		if tries == 3 {
			return frames
		}
	}
	// Close takes the turn and then stops the checkpointer: the wait ends
	// with either.
	select {
	case c.turn <- struct{}{}:
	case <-c.stop:
		return frames
	}
	written := c.pages.Load() // every commit so far: the writer counts under the turn
	if n := written - before; n > c.held.Load() {
		c.held.Store(n)
	}
	whole, frames, _ := c.pass(passive)
	<-c.turn
	if whole {
		c.pages.Add(-written)
		c.full.Add(1)
	}
	return frames
}

// restart brings back to its beginning a log of frames frames, more than
// restartFrames, that the rounds failed to restart. Only a writer restarts
// the log after a whole copy, and only if no reader is reading the log
// then: while another process commits during every copy, or readers
// overlap without pause, the log grows without end (SQLite's own backstop
// copies it too, but never restarts it).
//
// A RESTART checkpoint takes the write lock of the file, copies what is
// left, waits for the readers of the log to finish, and restarts it; every
// writer, of every process, waits for it meanwhile. So unheld passes first
// leave little to copy: they go on until the log has grown by at most
// heldPages frames (every process's) during one, three at most; the
// restart then holds this process's writer's turn (its writer has no
// transaction under way that the restart would wait for) and waits at
// most restartWait in all, its connection's busy timeout, for the write
// lock and for the readers; past that it gives up, and the next round
// tries again. A writer thus waits for the copy of what was committed
// during the last unheld pass, plus at most restartWait.
func (c *checkpointer) restart(frames int) {
	var copied int
	for tries := 1; ; tries++ {
		_, now, n := c.pass(passive)
		if now <= restartFrames { // an error (-1), or the log restarted
			return
		}
		// What this pass left to copy: what readers kept it from
		// copying, and about what came meanwhile, as much as came
		// during the pass before.
		left := now - n + now - frames
		frames, copied = now, n
		if left <= heldPages {
			break
		}
		if tries == 3 {
			return
		}
	}
	select {
	case c.turn <- struct{}{}:
	case <-c.stop:
		return
	}
	written := c.pages.Load()
	done, frames, _ := c.pass(restartLog)
	<-c.turn
	if frames-copied > int(c.restartHeld.Load()) {
		c.restartHeld.Store(int64(frames - copied))
	}
	if done {
		c.pages.Add(-written)
		c.full.Add(1)
		c.restarts.Add(1)
	}
}

// The checkpoints of pass.
const (
	passive    = "PRAGMA wal_checkpoint(PASSIVE)"
	restartLog = "PRAGMA wal_checkpoint(RESTART)"
)

// pass runs one checkpoint, passive or restartLog, and returns the log's
// size in frames (every process's commits since the log last restarted;
// -1 on an error) and how many of them are copied into the database. done
// reports that it did all it was asked: a passive pass copied the whole
// log, a restart also restarted it.
func (c *checkpointer) pass(mode string) (done bool, frames, copied int) {
	var busy int
	err := c.db.QueryRowContext(context.Background(), mode).Scan(&busy, &frames, &copied)
	if err != nil {
		return false, -1, 0
	}
	return busy == 0 && frames == copied, frames, copied
}

// wrote counts n pages written to the log by the Store's writer.
func (c *checkpointer) wrote(n int) { c.pages.Add(int64(n)) }

// close stops the goroutine and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	c.done.Wait()
	return c.db.Close()
}

// logWrites returns how many pages connection c has written to the
// write-ahead log since the last call (SQLite's SQLITE_DBSTATUS_CACHE_WRITE,
// read and reset): a call into SQLite, no statement.
func logWrites(c *sql.Conn) (int, error) {
	var n int
	err := c.Raw(func(dc any) error {
		s, ok := dc.(interface {
			Status(sqlite.DBStatusOp, bool) (int, int, error)
		})
		if !ok {
			return errors.New("the driver's connection reports no status")
		}
		var err error
		n, _, err = s.Status(sqlite.DBStatusCacheWrite, true)
		return err
	})
	return n, err
}
