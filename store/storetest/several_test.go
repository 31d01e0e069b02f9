package storetest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
)

// TestSeveral checks that several names exactly the suite's tests that
// start goroutines, as read from the package's source: a new test that
// starts one and is left out of several would otherwise never run under
// the race detector on the in-memory SQLite store (RunConcurrent).
//
// A test starts goroutines when its function, or a function, method or
// package variable of this package that it names, or that those name in
// turn, holds a go statement or a call of a method Go (sync.WaitGroup,
// errgroup), AfterFunc (time, context) or Parallel (parallel subtests).
// The check reads no types: x.m names every method m of the package. So
// it may take a test for concurrent that is not (and fail, naming the
// site), but it sees every goroutine this package's code starts. It does
// not see one that another package's function starts for a test (the
// suite calls none that does): a helper that starts goroutines belongs in
// this package.
func TestSeveral(t *testing.T) {
	t.Parallel()
	g := parseGraph(t)
	prefix := reflect.TypeOf(bundle{}).PkgPath() + "."
	var errs []string
	tests := map[string]bool{}
	for _, gr := range groups() {
		for _, tc := range gr.tests {
			name := gr.name + "/" + tc.name
			tests[name] = true
			fn := runtime.FuncForPC(reflect.ValueOf(tc.fn).Pointer()).Name()
			decl, ok := g.funcs[strings.TrimPrefix(fn, prefix)]
			if !ok || len(decl) != 1 {
				errs = append(errs, fmt.Sprintf("%s: its table entry holds %s, not a function declared in the package, which the check would follow: declare the test as a named function", name, fn))
				continue
			}
			site := g.goroutine(decl[0])
			switch {
			case site != "" && !several[name]:
				errs = append(errs, fmt.Sprintf("%s starts a goroutine (%s) but is not in several: add it, or RunConcurrent never runs it under -race", name, site))
			case site == "" && several[name]:
				errs = append(errs, fmt.Sprintf("%s is in several but starts no goroutine: take it out", name))
			}
		}
	}
	for name := range several {
		if !tests[name] {
			errs = append(errs, fmt.Sprintf("several names %s, which is no test of the suite (renamed?)", name))
		}
	}
	sort.Strings(errs)
	for _, e := range errs {
		t.Error(e)
	}
}

// graph is the package's source (its _test files aside): its package-level
// functions and variables by name, its methods by name.
type graph struct {
	fset    *token.FileSet
	funcs   map[string][]ast.Node
	methods map[string][]ast.Node
}

func parseGraph(t *testing.T) *graph {
	t.Helper()
	g := &graph{fset: token.NewFileSet(), funcs: map[string][]ast.Node{}, methods: map[string][]ast.Node{}}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(g.fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv != nil {
					g.methods[d.Name.Name] = append(g.methods[d.Name.Name], d)
				} else {
					g.funcs[d.Name.Name] = append(g.funcs[d.Name.Name], d)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if v, ok := s.(*ast.ValueSpec); ok {
						for _, n := range v.Names {
							g.funcs[n.Name] = append(g.funcs[n.Name], v)
						}
					}
				}
			}
		}
	}
	if len(g.funcs) == 0 {
		t.Fatal("no source found")
	}
	return g
}

// goroutine returns where start, or a declaration it names, directly or
// through others, first starts a goroutine ("file:line: go statement, in
// f"), or "" if none does.
func (g *graph) goroutine(start ast.Node) string {
	seen := map[ast.Node]bool{start: true}
	queue := []ast.Node{start}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		var site string
		visit := func(refs []ast.Node) {
			for _, r := range refs {
				if !seen[r] {
					seen[r] = true
					queue = append(queue, r)
				}
			}
		}
		var body ast.Node = n
		if d, ok := n.(*ast.FuncDecl); ok {
			body = d.Body
		}
		var inspect func(m ast.Node) bool
		inspect = func(m ast.Node) bool {
			if site != "" {
				return false
			}
			switch m := m.(type) {
			case *ast.GoStmt:
				site = g.where(m, "go statement", n)
			case *ast.CallExpr:
				if s, ok := m.Fun.(*ast.SelectorExpr); ok {
					switch s.Sel.Name {
					case "Go", "AfterFunc", "Parallel":
						site = g.where(m, s.Sel.Name+" call", n)
					}
				}
			case *ast.SelectorExpr: // x.m: any method m, not a function m
				visit(g.methods[m.Sel.Name])
				ast.Inspect(m.X, inspect)
				return false
			case *ast.Ident:
				if m.Obj == nil || slices.ContainsFunc(g.funcs[m.Name], func(d ast.Node) bool { return d == m.Obj.Decl }) {
					visit(g.funcs[m.Name]) // not a local name
				}
			}
			return true
		}
		ast.Inspect(body, inspect)
		if site != "" {
			return site
		}
	}
	return ""
}

// where names the site at, in the declaration in.
func (g *graph) where(at ast.Node, what string, in ast.Node) string {
	p := g.fset.Position(at.Pos())
	var name string
	switch d := in.(type) {
	case *ast.FuncDecl:
		name = d.Name.Name
	case *ast.ValueSpec:
		name = d.Names[0].Name
	}
	return fmt.Sprintf("%s:%d: %s, in %s", p.Filename, p.Line, what, name)
}
