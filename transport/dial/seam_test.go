package dial_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// exempt are the trees whose code may reach the broker library itself: the
// transport, the benchmarks' own module, and the test helper that writes
// frames amqp091-go will not.
var exempt = []string{"transport", "bench", filepath.Join("internal", "rawamqp")}

// onDefaults are the files whose dial.Dial calls load no config, and so run
// on config's defaults by design: the test kit's clients of a test broker.
var onDefaults = []string{filepath.Join("hyphatest", "conn.go")}

// dialers are the functions that make a broker connection from options set
// by hand; outside transport/ none may be called: dial.Dial is the way in.
var dialers = map[string][]string{
	"github.com/hypha-go/hypha/transport/amqp":   {"New", "Dial"},
	"github.com/hypha-go/hypha/transport/memory": {"New", "Dial"},
}

// dialPath is the package of the one Dial, whose every call outside
// transport/ applies the loaded settings (dial.Settings), so that every
// connection-level key reaches every connection.
const dialPath = "github.com/hypha-go/hypha/transport/dial"

// TestOneWayToConnect: no code outside transport/ (tests and bench/ aside)
// imports amqp091-go, or makes a connection other than through dial.Dial
// with the loaded config (dial.Settings).
func TestOneWayToConnect(t *testing.T) {
	fset := token.NewFileSet()
	files := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			for _, e := range exempt {
				if rel == e {
					return filepath.SkipDir
				}
			}
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly|parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files++
		names := map[string]string{} // local name -> import path, of the dialers' packages
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/rabbitmq/amqp091-go") {
				t.Errorf("%s imports %s: only transport/ may; add what it needs to the transport", rel, p)
			}
			if _, ok := dialers[p]; ok || p == dialPath {
				name := p[strings.LastIndex(p, "/")+1:]
				if imp.Name != nil {
					name = imp.Name.Name
				}
				names[name] = p
			}
		}
		if len(names) > 0 && !slices.Contains(onDefaults, rel) {
			checkCalls(t, fset, path, names)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 {
		t.Fatalf("looked at only %d files under %s: is the root right?", files, root)
	}
}

// checkCalls reports every call of a dialer in the file at path.
func checkCalls(t *testing.T, fset *token.FileSet, path string, names map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(f, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			checkDial(t, fset, call, names)
			return true
		}
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, ok := sel.X.(*ast.Ident)
		if !ok {
			return true
		}
		for _, fn := range dialers[names[x.Name]] {
			if sel.Sel.Name == fn {
				t.Errorf("%s: %s.%s makes a connection from hand-set options; use dial.Dial with dial.Settings of the loaded config",
					strings.TrimPrefix(fset.Position(sel.Pos()).String(), root+"/"), x.Name, fn)
			}
		}
		return true
	})
}

// checkDial reports a call of dial.Dial that passes no dial.Settings.
func checkDial(t *testing.T, fset *token.FileSet, call *ast.CallExpr, names map[string]string) {
	t.Helper()
	if !isSel(call.Fun, names, dialPath, "Dial") {
		return
	}
	for _, arg := range call.Args {
		if c, ok := arg.(*ast.CallExpr); ok && isSel(c.Fun, names, dialPath, "Settings") {
			return
		}
	}
	t.Errorf("%s: dial.Dial without dial.Settings leaves the loaded config's connection-level keys out; pass dial.Settings(cfg.Settings)",
		strings.TrimPrefix(fset.Position(call.Pos()).String(), root+"/"))
}

// isSel reports whether e is pkg.name, with pkg imported as names says.
func isSel(e ast.Expr, names map[string]string, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && names[x.Name] == pkg
}
