package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
)

// files are the files of a file store, as Open found them at their paths:
// the database, its -wal and -shm, and the path given to Open when it is
// not the database's own (a symbolic link, a relative path). Write checks,
// before every COMMIT, that each path still names the same file (device
// and inode). SQLite does not: in WAL mode it goes on writing through the
// descriptors it holds into a file deleted, renamed or replaced under it,
// which no process opens again, and a commit there is lost with the
// process (a deleted -wal before its checkpoint) or at Close (a deleted
// database). Checking costs a stat per path, a few microseconds a Write;
// never opening the files keeps SQLite's POSIX locks, which a close of any
// descriptor of the file would drop. On Windows, where SQLite's open files
// cannot be deleted or renamed at all, only the path given to Open can
// change; there os.SameFile opens each path (with no access, which
// SQLite's sharing mode allows) for its file index, and the locks, which
// belong to SQLite's own handles there, stay.
type files struct {
	paths []string
	infos []os.FileInfo
}

// openFiles records the files of the database open on wc, given to Open
// as path. SQLite names the -wal and -shm after the database's file as it
// resolved it (absolute, symbolic links followed), which PRAGMA
// database_list reports.
func openFiles(ctx context.Context, wc *sql.Conn, path string) (*files, error) {
	var seq int
	var schema, name string
	if err := wc.QueryRowContext(ctx, "PRAGMA database_list").Scan(&seq, &schema, &name); err != nil {
		return nil, wrap("read the database's file name", err)
	}
	paths := []string{name, name + "-wal", name + "-shm"}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if abs != name {
		paths = append(paths, abs)
	}
	f, err := statFiles(paths)
	if err != nil {
		return nil, err
	}
	if len(f.infos) > 3 && !os.SameFile(f.infos[0], f.infos[3]) {
		return nil, fmt.Errorf("%w: %s names another file than the one opened", ErrFileMoved, path)
	}
	return f, nil
}

// statFiles records the files at paths now. On Windows a FileInfo reads
// its file's identity (volume serial number and file index) only when
// os.SameFile first needs it, through its path: SameFile of each with
// itself reads it now, or check would compare a path's file then with
// itself. Elsewhere the identity (device and inode) comes with the stat.
func statFiles(paths []string) (*files, error) {
	f := &files{paths: paths}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !os.SameFile(fi, fi) {
			return nil, fmt.Errorf("the identity of %s: it cannot be read", p)
		}
		f.infos = append(f.infos, fi)
	}
	return f, nil
}

// check returns an error wrapping [ErrFileMoved] if a path no longer
// names the file it named at Open, or cannot be looked at.
func (f *files) check() error {
	for i, p := range f.paths {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrFileMoved, err)
		}
		if !os.SameFile(fi, f.infos[i]) {
			return fmt.Errorf("%w: %s is another file than the one opened", ErrFileMoved, p)
		}
	}
	return nil
}
