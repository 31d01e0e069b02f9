// Package layout holds no code: its test checks the layout of the module
// that DESIGN.md draws — the arrows between the library's packages point
// down only (queue → store → campaign → pool → validate), and the domain
// packages know no SQL and no clock — so that an import that would bend
// it fails here rather than in a review.
package layout

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/poolq/poolq/"

// layers ranks the library's packages (module-relative paths): a package
// may import only packages of a lower rank, or its own internal ones.
// Packages of tests (storetest, pgtest, lockholder), examples and
// benchmarks are not in the library's layers.
var layers = map[string]int{
	"internal/sqlitefile":        0, // store/sqlite's file names, shared with the examples
	"internal/jsonenc":           0, // JSON without HTML escaping, for the MarshalJSON methods
	"validate":                   0,
	"pool":                       1,
	"campaign":                   2,
	"store":                      3,
	"store/internal/migrations":  3,
	"store/sqlite":               4,
	"store/postgres":             4,
	"queue":                      5,
	"queue/internal/groupcommit": 5,
}

// pure are the packages that must hold no SQL and read no clock: the
// domain decides, given the instant; the engine passes it.
var pure = []string{"validate", "pool", "campaign"}

// imports returns the imports of the non-test Go files of the package in
// dir (module-relative), and the calls of time.Now, time.Since and
// time.Until they make, as "file:line".
func imports(t *testing.T, dir string) (paths []string, clock []string) {
	t.Helper()
	root := filepath.Join("..", "..", filepath.FromSlash(dir))
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(root, name), nil, 0)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		timeName := ""
		for _, im := range f.Imports {
			p, err := strconv.Unquote(im.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, p)
			if p == "time" {
				timeName = "time"
				if im.Name != nil {
					timeName = im.Name.Name
				}
			}
		}
		if timeName == "" {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == timeName && slices.Contains([]string{"Now", "Since", "Until"}, sel.Sel.Name) {
				clock = append(clock, fset.Position(sel.Pos()).String())
			}
			return true
		})
	}
	if len(paths) == 0 && len(clock) == 0 {
		// A package of no file would pass every check: a renamed folder
		// must be renamed here too.
		t.Fatalf("%s: no Go file: is layers up to date?", dir)
	}
	return paths, clock
}

func TestLayout_ArrowsPointDown(t *testing.T) {
	for dir, rank := range layers {
		paths, _ := imports(t, dir)
		for _, p := range paths {
			rel, ok := strings.CutPrefix(p, module)
			if !ok {
				continue // the standard library or a dependency
			}
			if strings.HasPrefix(rel, dir+"/internal/") {
				continue // its own
			}
			to, known := layers[rel]
			if !known {
				t.Errorf("%s imports %s, which is not a library package (a test helper, an example?)", dir, rel)
				continue
			}
			if to >= rank {
				t.Errorf("%s (layer %d) imports %s (layer %d): the arrows point down only", dir, rank, rel, to)
			}
		}
	}
}

func TestLayout_DomainKnowsNoSQLAndNoClock(t *testing.T) {
	for _, dir := range pure {
		paths, clock := imports(t, dir)
		for _, p := range paths {
			if p == "database/sql" || strings.HasPrefix(p, "database/sql/") || strings.Contains(p, "sqlite") || strings.Contains(p, "pgx") {
				t.Errorf("%s imports %s: the domain knows no SQL", dir, p)
			}
		}
		for _, at := range clock {
			t.Errorf("%s reads the clock at %s: the domain is given the instant", dir, at)
		}
	}
}

// TestLayout_EveryLibraryPackageRanked fails when a new package appears
// under the library's folders without a place in layers, which would
// leave it unchecked.
func TestLayout_EveryLibraryPackageRanked(t *testing.T) {
	for _, top := range []string{"validate", "pool", "campaign", "store", "queue"} {
		err := filepath.WalkDir(filepath.Join("..", "..", top), func(path string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			rel, err := filepath.Rel(filepath.Join("..", ".."), path)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			files, err := filepath.Glob(filepath.Join(path, "*.go"))
			if err != nil {
				return err
			}
			code := slices.ContainsFunc(files, func(f string) bool { return !strings.HasSuffix(f, "_test.go") })
			if d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if _, ok := layers[rel]; !ok && code && !slices.Contains(testHelpers, rel) {
				t.Errorf("package %s has no layer: add it to layers (or to testHelpers)", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// testHelpers are packages for tests only, outside the layers.
var testHelpers = []string{"store/storetest", "store/postgres/pgtest"}
