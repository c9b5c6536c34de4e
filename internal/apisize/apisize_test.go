// Package apisize holds the test that keeps Hypha's public API small: at
// most maxExported exported identifiers across the public packages.
package apisize

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"

	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// maxExported is the most exported identifiers the public packages may
// have together: a new one has to earn its place, or something else goes.
const maxExported = 300

// notPublic are the top-level folders whose packages are not API: tools,
// examples, tests and the module's own machinery.
var notPublic = map[string]bool{"internal": true, "cmd": true, "examples": true, "bench": true, "tools": true,
	"crosslang": true, "e2e": true, "faults": true, "testdata": true, "docs": true, "scripts": true}

// TestPublicAPIIsSmall counts, as the API is read by a user, the top-level
// exported names and the exported methods of exported types in the
// non-test files of every public package.
func TestPublicAPIIsSmall(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	perPackage := map[string]int{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "internal" || d.Name() == "testdata" ||
				notPublic[strings.Split(rel, string(filepath.Separator))[0]]) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if f.Name.Name != "main" {
			perPackage[filepath.Dir(rel)] += exported(f)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	var lines []string
	for pkg, n := range perPackage {
		total += n
		lines = append(lines, pkg+" "+strconv.Itoa(n))
	}
	sort.Strings(lines)
	if total > maxExported {
		t.Errorf("the public packages export %d identifiers, over the limit of %d: move machinery under internal/, "+
			"or unexport what no user writes\n%s", total, maxExported, strings.Join(lines, "\n"))
	}
	if total == 0 {
		t.Fatal("no exported identifier found: is the module root right?")
	}
	if testing.Verbose() {
		t.Logf("%d exported identifiers\n%s", total, strings.Join(lines, "\n"))
	}
}

// exported counts f's top-level exported names and the exported methods of
// its exported types.
func exported(f *ast.File) int {
	n := 0
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if !d.Name.IsExported() {
				continue
			}
			if d.Recv == nil || receiverExported(d.Recv.List[0].Type) {
				n++
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					if s.Name.IsExported() {
						n++
					}
				case *ast.ValueSpec:
					for _, name := range s.Names {
						if name.IsExported() {
							n++
						}
					}
				}
			}
		}
	}
	return n
}

// receiverExported reports whether a method's receiver type is exported.
func receiverExported(t ast.Expr) bool {
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
		case *ast.IndexExpr:
			t = x.X
		case *ast.IndexListExpr:
			t = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return false
		}
	}
}
