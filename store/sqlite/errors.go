package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/poolq/poolq/store"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrCacheMismatch is wrapped by the error of a Write in check mode
// ([Options.CheckCache]) when the state the Store keeps of a pool between
// write transactions differs from the database: a bug of the Store, or a
// write on the Store's own writer connection that did not go through
// [Store.Write]. The error names the pool, the field and both values.
var ErrCacheMismatch = errors.New("cached pool state differs from the database")

// ErrCorrupt is wrapped by the errors of a damaged database file: the
// report of [Store.Check] or of Open's [Options.QuickCheck], the error
// of any operation that reads a damaged page (its transaction is rolled
// back; the rest of the file stays readable and writable), and Open's for
// a poolq file whose schema was changed by hand (a table, index or trigger
// of poolq's dropped or recreated otherwise, schema_version emptied,
// dropped or rewritten), or for a file beside a rollback journal that
// would roll it back to nothing (an interrupted backup: VACUUM INTO or
// .backup killed before its end), which Open leaves as it is.
var ErrCorrupt = errors.New("database file is damaged")

// ErrNotPoolq is wrapped by Open's error for a SQLite file that holds
// another application's tables and no poolq schema (a mistaken path),
// also when one of them is named schema_version as poolq's is: Open
// writes nothing to it, and leaves its journal mode as it was.
var ErrNotPoolq = errors.New("not a poolq database: it holds tables of another application")

// ErrFileMoved is wrapped by the error of a Write on a file store whose
// database file, or the -wal or -shm file beside it, is no longer the file
// at its path that Open opened: deleted, renamed, or replaced by another
// (a restore with mv, a cleanup that took -wal and -shm for leftovers).
// SQLite would go on writing into the files it holds open, which no
// process opens again: the Write rolls back instead, and commits nothing.
// Writes go on once the files are back at their paths.
var ErrFileMoved = errors.New("database file moved, replaced or deleted while open")

// translate maps driver errors to the store's sentinels, by result code:
// a missing row is [store.ErrNotFound], a uniqueness violation
// [store.ErrConflict], a damaged page or file [ErrCorrupt] (still wrapping
// the driver's error). Other errors are
// returned as they are. It is the one place that inspects driver errors.
func translate(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		}
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%w: %w", ErrCorrupt, err)
		}
	}
	return err
}

// isBusy reports whether err is SQLITE_BUSY (or one of its extended
// codes): another connection holds a lock this one needs.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// wrap translates err and prefixes it with the operation: "sqlite: op: …".
// It returns nil for a nil err.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlite: %s: %w", op, translate(err))
}
