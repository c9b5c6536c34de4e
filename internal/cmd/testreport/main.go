// Command testreport runs `go test -json ...`, prints its output as go test
// would, and then lists the tests that were skipped, by package. A skipped
// test is a test that did not run: without RabbitMQ, python3-kombu or the
// fault tests' own node, whole packages of integration tests skip, and go
// test prints nothing about it. So testreport fails the run (exit status 1)
// when any test skipped, unless HYPHA_ALLOW_SKIPS is true; a failure of go
// test itself keeps go test's exit status.
//
// Usage (make test runs it so):
//
//	testreport [-v] go test -json [flags] [packages]
//
// Without -v it prints what go test prints without -v: each package's
// closing line ("ok", "FAIL", "?"), the output of the tests that failed and
// whatever a package prints outside its tests. With -v it prints all the
// output, as go test -v does. Either way the package lines are go test's
// own, byte for byte, so that whatever reads them reads the same.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// allowVar names the variable that accepts skipped tests.
const allowVar = "HYPHA_ALLOW_SKIPS"

func main() {
	verbose := flag.Bool("v", false, "print every test's output, as go test -v does")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: testreport [-v] go test -json [flags] [packages]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	allow, err := allowSkips(os.Getenv(allowVar))
	if err != nil {
		fmt.Fprintf(os.Stderr, "testreport: %v\n", err)
		os.Exit(2)
	}
	os.Exit(run(flag.Args(), *verbose, allow, os.Stdout, os.Stderr))
}

// allowSkips parses HYPHA_ALLOW_SKIPS: empty is false.
func allowSkips(v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q is not a boolean; set it to 1 to accept skipped tests, or unset it", allowVar, v)
	}
	return b, nil
}

// run runs the command args (go test -json ...), reports its output on
// stdout and returns the exit status.
func run(args []string, verbose, allow bool, stdout, stderr io.Writer) int {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = os.Stdin
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(stderr, "testreport: %v\n", err)
		return 2
	}
	// Ctrl-C reaches go test too (same process group); testreport waits for
	// it to end and still reports what ran. Caught, not ignored: an ignored
	// signal would stay ignored in go test, which inherits it through exec.
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(stderr, "testreport: %v\n", err)
		return 2
	}
	r := newReport(stdout, verbose)
	readErr := r.read(out)
	waitErr := cmd.Wait()
	code := r.finish(allow)
	if readErr != nil {
		fmt.Fprintf(stderr, "testreport: reading the output of %s: %v\n", args[0], readErr)
		code = max(code, 2)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(waitErr, &exit):
		fmt.Fprintf(stdout, "testreport: %s exited with status %d\n", strings.Join(args[:min(2, len(args))], " "), exit.ExitCode())
		return max(exit.ExitCode(), 1)
	case waitErr != nil:
		fmt.Fprintf(stderr, "testreport: %v\n", waitErr)
		return 2
	}
	return code
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// skip is one skipped test.
type skip struct {
	pkg, test string
}

// report follows a go test -json stream.
type report struct {
	w       *bufio.Writer
	verbose bool
	// top holds the output of each top-level test still running, its
	// subtests' included, in order, to print it only if it fails, as go
	// test does without -v.
	top map[skip]*strings.Builder
	// own holds each test's own output, until it passes: a skipped test's
	// gives the reason of the skip.
	own   map[skip]*strings.Builder
	skips []skip
}

func newReport(w io.Writer, verbose bool) *report {
	return &report{w: bufio.NewWriter(w), verbose: verbose,
		top: map[skip]*strings.Builder{}, own: map[skip]*strings.Builder{}}
}

// appendTo adds s to m[k].
func appendTo(m map[skip]*strings.Builder, k skip, s string) {
	b := m[k]
	if b == nil {
		b = &strings.Builder{}
		m[k] = b
	}
	b.WriteString(s)
}

// read consumes the stream; a line that is not a JSON event (a message of
// the go command) is printed as it is.
func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20) // a test may print long lines
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			r.w.Write(sc.Bytes())
			r.w.WriteByte('\n')
		} else {
			r.event(e)
		}
		// Flushed line by line, so that a long run shows its progress.
		r.w.Flush()
	}
	return sc.Err()
}

// framing matches the lines go test -v adds around a test's own output;
// without -v go test does not print them.
var framing = regexp.MustCompile(`^=== (RUN|PAUSE|CONT|NAME) `)

func (r *report) event(e event) {
	if e.Test == "" {
		// The package's own lines: "ok", "FAIL", "?", TestMain's output,
		// build errors. Tests of the package still unfinished when it
		// fails (a panic, a timeout) are printed before its FAIL line.
		if e.Action == "output" {
			if strings.HasPrefix(e.Output, "FAIL") {
				r.flushPackage(e.Package)
			}
			if r.verbose || e.Output != "PASS\n" {
				r.w.WriteString(e.Output)
			}
		}
		if e.Action == "build-output" {
			r.w.WriteString(e.Output)
		}
		return
	}
	k := skip{e.Package, e.Test}
	name, _, sub := strings.Cut(e.Test, "/")
	t := skip{e.Package, name}
	switch e.Action {
	case "output":
		if r.verbose {
			r.w.WriteString(e.Output)
		}
		appendTo(r.own, k, e.Output)
		appendTo(r.top, t, e.Output)
	case "pass":
		delete(r.own, k)
		if !sub {
			delete(r.top, t)
		}
	case "skip":
		// Its reason may follow the "--- SKIP" line: kept until the end.
		r.skips = append(r.skips, k)
		if !sub {
			delete(r.top, t)
		}
	case "fail":
		delete(r.own, k)
		if !sub {
			r.print(t)
		}
	}
}

// print writes the output of the failed top-level test t, subtests
// included, without -v's framing.
func (r *report) print(t skip) {
	b := r.top[t]
	delete(r.top, t)
	if b == nil || r.verbose {
		return
	}
	for line := range strings.Lines(b.String()) {
		if !framing.MatchString(line) {
			r.w.WriteString(line)
		}
	}
}

// flushPackage prints the output of pkg's top-level tests that have not
// ended: a panic or a timeout stopped them.
func (r *report) flushPackage(pkg string) {
	var tops []skip
	for t := range r.top {
		if t.pkg == pkg {
			tops = append(tops, t)
		}
	}
	slices.SortFunc(tops, func(a, b skip) int { return strings.Compare(a.test, b.test) })
	for _, t := range tops {
		r.print(t)
	}
}

// logPrefix is what t.Log (and t.Skip) puts before a message: the file
// and line; a message's further lines are indented deeper.
var logPrefix = regexp.MustCompile(`^(\s*)[^\s:]+\.go:\d+: `)

// reason is the message of the skipped test k, from its output: its t.Log
// lines only, since what the process prints elsewhere (a logger on stderr,
// another test running in parallel) is put down to whichever test go test
// named last.
func (r *report) reason(k skip) string {
	b := r.own[k]
	if b == nil {
		return "(no message)"
	}
	var msg []string
	indent := "" // of the t.Log line being read; "" between them
	for line := range strings.Lines(b.String()) {
		line = strings.TrimRight(line, "\n")
		if m := logPrefix.FindStringSubmatch(line); m != nil {
			indent = m[1]
			msg = append(msg, line[len(m[0]):])
		} else if indent != "" && strings.HasPrefix(line, indent+"    ") {
			msg = append(msg, strings.TrimSpace(line))
		} else {
			indent = ""
		}
	}
	if len(msg) == 0 {
		return "(no message)"
	}
	if len(msg) > 4 {
		msg = append(msg[:4], "...")
	}
	return strings.Join(msg, " / ")
}

// finish prints the skipped tests by package and returns 1 when there are
// some and they are not allowed, else 0.
func (r *report) finish(allow bool) int {
	defer r.w.Flush()
	if len(r.skips) == 0 {
		fmt.Fprintln(r.w, "testreport: no test skipped")
		return 0
	}
	fmt.Fprintf(r.w, "testreport: %d tests skipped (they did not run):\n", len(r.skips))
	skips := slices.Clone(r.skips)
	slices.SortStableFunc(skips, func(a, b skip) int { return strings.Compare(a.pkg, b.pkg) })
	pkg := ""
	for _, k := range skips {
		if k.pkg != pkg {
			pkg = k.pkg
			fmt.Fprintf(r.w, "  %s\n", pkg)
		}
		fmt.Fprintf(r.w, "    %s: %s\n", k.test, r.reason(k))
	}
	if allow {
		fmt.Fprintf(r.w, "testreport: skipped tests accepted (%s is true)\n", allowVar)
		return 0
	}
	fmt.Fprintf(r.w, "testreport: FAIL: %d tests skipped; make the broker, python3-kombu or the fault tests' node "+
		"available (scripts/broker.sh, scripts/cluster.sh), or set %s=1 to accept the skips\n", len(r.skips), allowVar)
	return 1
}
