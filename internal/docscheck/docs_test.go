package docscheck

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// root is the repository's root, from this package's directory.
const root = "../.."

// block is one fenced code block of a Markdown document.
type block struct {
	file  string   // the document, relative to root
	line  int      // the line of its opening fence, 1-based
	lang  string   // the fence's info string: "go", "sh", ...
	lines []string // its lines, as written
}

// source is a Go file a block may be taken from.
type source struct {
	file  string   // relative to root
	lines []string // normalised, empty lines kept so that line numbers hold
}

// documents lists README.md and every Markdown file under docs/.
func documents(t *testing.T) []string {
	t.Helper()
	docs := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			docs = append(docs, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing docs/: %v", err)
	}
	return docs
}

// readLines returns a file's lines.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, path))
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return lines
}

// blocks returns the fenced code blocks of a document.
func blocks(t *testing.T, doc string) []block {
	t.Helper()
	var out []block
	var cur *block
	fence := ""
	for i, line := range readLines(t, doc) {
		trimmed := strings.TrimLeft(line, " \t")
		if cur == nil {
			if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				fence = trimmed[:3]
				cur = &block{file: doc, line: i + 1, lang: strings.TrimSpace(trimmed[3:])}
			}
			continue
		}
		if strings.HasPrefix(trimmed, fence) && strings.TrimSpace(trimmed[3:]) == "" {
			out = append(out, *cur)
			cur = nil
			continue
		}
		cur.lines = append(cur.lines, line)
	}
	if cur != nil {
		t.Errorf("%s:%d: a code block is never closed: end it with %s", doc, cur.line, fence)
	}
	return out
}

// normalise makes a line comparable whatever its indentation and the
// alignment gofmt gave its comments: its words, one space apart.
func normalise(line string) string { return strings.Join(strings.Fields(line), " ") }

// sources returns every Go file a block may be taken from: each file under
// examples/, and each *example_test.go file of the repository, whose
// Example functions go test compiles and runs.
func sources(t *testing.T) []source {
	t.Helper()
	var out []source
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			name := d.Name()
			if rel != "." && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") {
			return nil
		}
		if strings.HasPrefix(rel, "examples/") || strings.HasSuffix(rel, "example_test.go") {
			lines := readLines(t, rel)
			for i := range lines {
				lines[i] = normalise(lines[i])
			}
			out = append(out, source{file: rel, lines: lines})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing Go files: %v", err)
	}
	if len(out) == 0 {
		t.Fatal("found no Go file under examples/ and no *example_test.go file: is root wrong?")
	}
	return out
}

// match is how far a block matches a source from one line on.
type match struct {
	src   *source
	start int // index in src.lines of the block's first line
	n     int // how many of the block's lines match in turn
	next  int // index in src.lines of the line after the last that matched
}

// find looks for want, a block's non-empty normalised lines, as consecutive
// non-empty lines of a source. It returns the full match, or the longest
// partial one for the error message.
func find(want []string, srcs []source) (best match, ok bool) {
	for si := range srcs {
		src := &srcs[si]
		for start, line := range src.lines {
			if line != want[0] {
				continue
			}
			n, j := 0, start
			for n < len(want) && j < len(src.lines) {
				if src.lines[j] == "" {
					j++
					continue
				}
				if src.lines[j] != want[n] {
					break
				}
				n++
				j++
			}
			for j < len(src.lines) && src.lines[j] == "" {
				j++
			}
			if n == len(want) {
				return match{src, start, n, j}, true
			}
			if n > best.n {
				best = match{src, start, n, j}
			}
		}
	}
	return best, false
}

// TestGoBlocksAreCompiled checks that every ```go block of README.md and
// docs/ is compiled code: its lines, indentation and spacing aside, are
// consecutive lines of a file under examples/ or of an *example_test.go
// file (blank lines may differ).
func TestGoBlocksAreCompiled(t *testing.T) {
	srcs := sources(t)
	checked := 0
	for _, doc := range documents(t) {
		for _, b := range blocks(t, doc) {
			if b.lang != "go" {
				continue
			}
			checked++
			var want []string
			var at []int // the document's line of each of want's lines
			for i, line := range b.lines {
				if n := normalise(line); n != "" {
					want = append(want, n)
					at = append(at, b.line+1+i)
				}
			}
			if len(want) == 0 {
				t.Errorf("%s:%d: an empty ```go block: remove it", b.file, b.line)
				continue
			}
			best, ok := find(want, srcs)
			if ok {
				continue
			}
			msg := fmt.Sprintf("%s:%d: this ```go block is not compiled code: its lines are not a piece of any file under "+
				"examples/ nor of any *example_test.go file.\n"+
				"Put the code in a testable Example (func ExampleXxx in some package's example_test.go, with "+
				"// Output: where it is deterministic), or quote lines of an examples/ file, and copy those lines "+
				"into the block; if the block is not Go, give its fence another language (```text).", b.file, b.line)
			if best.src != nil {
				msg += fmt.Sprintf("\nNearest: its first %d line(s) match %s:%d, but its line %d differs:\n\tdocs:   %s",
					best.n, best.src.file, best.start+1, at[best.n], want[best.n])
				if best.next < len(best.src.lines) {
					msg += fmt.Sprintf("\n\t%s:%d: %s", best.src.file, best.next+1, best.src.lines[best.next])
				}
			} else {
				msg += fmt.Sprintf("\nIts first line matches nothing: %s", want[0])
			}
			t.Error(msg)
		}
	}
	if checked == 0 {
		t.Error("found no ```go block in README.md and docs/: is root wrong?")
	}
}

// linkRE finds Markdown links and their targets.
var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// codeRE finds inline code spans, whose text is not Markdown.
var codeRE = regexp.MustCompile("`[^`]*`")

// anchors returns the anchors GitHub gives the headings of a document.
func anchors(t *testing.T, doc string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	in := false
	for _, line := range readLines(t, doc) {
		if strings.HasPrefix(line, "```") {
			in = !in
			continue
		}
		if in || !strings.HasPrefix(line, "#") {
			continue
		}
		title := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
				b.WriteRune(r)
			}
		}
		out[b.String()] = true
	}
	return out
}

// TestLinksLead checks that every relative link of README.md and docs/
// leads to a file that exists and, with a #fragment into a Markdown file, to
// one of its headings.
func TestLinksLead(t *testing.T) {
	for _, doc := range documents(t) {
		in := false
		for i, line := range readLines(t, doc) {
			if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
				in = !in
				continue
			}
			if in {
				continue
			}
			for _, m := range linkRE.FindAllStringSubmatch(codeRE.ReplaceAllString(line, ""), -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, frag, _ := strings.Cut(target, "#")
				path := doc
				if file != "" {
					path = filepath.ToSlash(filepath.Join(filepath.Dir(doc), file))
					if _, err := os.Stat(filepath.Join(root, path)); err != nil {
						t.Errorf("%s:%d: the link to %s leads nowhere: %s does not exist; fix the path", doc, i+1, target, path)
						continue
					}
				}
				if frag != "" && strings.HasSuffix(path, ".md") && !anchors(t, path)[frag] {
					t.Errorf("%s:%d: the link to %s leads nowhere: %s has no heading whose anchor is #%s; "+
						"link to a heading that exists", doc, i+1, target, path, frag)
				}
			}
		}
	}
}
