// Package migrations reads a store's embedded schema history: one file per
// version, "NNNN_name.sql", numbered 1, 2, 3, … without gaps or repeats.
// Each store applies them in its own way (its own SQL, locks and version
// table); what the files are and how they are numbered is the same for all.
package migrations

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// Migration is one schema version: its number, its file name and its SQL.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Load reads the files "NNNN_name.sql" of dir in fsys (other files are
// ignored), in version order. It fails when a name has no number, when the
// numbers do not run 1, 2, 3, … or when dir holds none.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", e.Name())
		}
		if v != len(out)+1 {
			return nil, fmt.Errorf("migration %s: version %d, want %d", e.Name(), v, len(out)+1)
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: e.Name(), SQL: string(b)})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no migrations in %s", dir)
	}
	return out, nil
}
