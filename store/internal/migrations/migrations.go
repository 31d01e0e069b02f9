// Package migrations reads a store's embedded schema history: one file per
// version, "NNNN_name.sql", numbered 1, 2, 3, … without gaps or repeats.
// Each store applies them in its own way (its own SQL, locks and version
// table); what the files are and how they are numbered is the same for all.
package migrations

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"sort"
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

// Unlanded compares history with landed, the SHA-256 (hex) of every file
// that has landed, and returns what differs, one line each: a file edited
// since it landed, one gone, one new (with the line that pins it). A
// landed file must never change: databases migrated past it never run it
// again, so an edit reaches new databases only. Each store's tests pin its
// files with it.
func Unlanded(history []Migration, landed map[string]string) []string {
	var out []string
	seen := make(map[string]bool)
	for _, m := range history {
		seen[m.Name] = true
		sum := sha256.Sum256([]byte(m.SQL))
		got := hex.EncodeToString(sum[:])
		want, ok := landed[m.Name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("migrations/%s is new: once it is final, pin it\n\t%q: %q,", m.Name, m.Name, got))
		case got != want:
			out = append(out, fmt.Sprintf("migrations/%s has changed since it landed (SHA-256 %s, landed %s): undo the edit and "+
				"add the change as a new migration, %04d_name.sql", m.Name, got, want, len(history)+1))
		}
	}
	for name := range landed {
		if !seen[name] {
			out = append(out, fmt.Sprintf("migrations/%s has landed and is gone: put it back", name))
		}
	}
	sort.Strings(out)
	return out
}
