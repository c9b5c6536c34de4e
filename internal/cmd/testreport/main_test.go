package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The streams in testdata are what go test -json printed for a small
// module of three packages: a (a passing test, a skipped one, a skipped
// subtest), b (a failing subtest) and c (a passing test), and d (a build
// error).

// TestHelperStream is not a test: run as a child process by goTest, it
// plays go test, printing a canned stream and exiting with a given status.
func TestHelperStream(t *testing.T) {
	file := os.Getenv("TESTREPORT_STREAM")
	if file == "" {
		return
	}
	f, err := os.Open(file)
	if err != nil {
		os.Exit(100)
	}
	io.Copy(os.Stdout, f)
	io.WriteString(os.Stderr, os.Getenv("TESTREPORT_STDERR"))
	code, _ := strconv.Atoi(os.Getenv("TESTREPORT_EXIT"))
	os.Exit(code)
}

// goTest runs the reporter over a child that prints stream (a file of
// testdata, or a literal stream) and exits with exit; it returns the
// reporter's exit status and what it printed on stdout and stderr.
func goTest(t *testing.T, stream string, exit int, verbose, allow bool) (int, string, string) {
	t.Helper()
	if !strings.Contains(stream, "\n") {
		stream = filepath.Join("testdata", stream)
	} else {
		file := filepath.Join(t.TempDir(), "stream.json")
		if err := os.WriteFile(file, []byte(stream), 0o644); err != nil {
			t.Fatal(err)
		}
		stream = file
	}
	t.Setenv("TESTREPORT_STREAM", stream)
	t.Setenv("TESTREPORT_EXIT", strconv.Itoa(exit))
	var stdout, stderr bytes.Buffer
	code := run([]string{os.Args[0], "-test.run=^TestHelperStream$"}, verbose, allow, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(out, l) {
			t.Errorf("output lacks %q:\n%s", l, out)
		}
	}
}

func TestSkipFailsAndIsListed(t *testing.T) {
	code, out, _ := goTest(t, "skip.json", 0, false, false)
	if code != 1 {
		t.Errorf("exit status %d with skipped tests, want 1", code)
	}
	wantLines(t, out,
		"ok  \texample.com/tr/a\t", // go test's own line, as it is
		"testreport: 2 tests skipped",
		"  example.com/tr/a\n    TestBroker: RabbitMQ is not answering on 127.0.0.1:5672; run scripts/broker.sh\n",
		"    TestSub/two: no kombu\n",
		"HYPHA_ALLOW_SKIPS=1",
	)
	if strings.Contains(out, "fine") || strings.Contains(out, "=== RUN") {
		t.Errorf("without -v, a passing test's output is printed:\n%s", out)
	}
}

func TestSkipAllowed(t *testing.T) {
	code, out, _ := goTest(t, "skip.json", 0, false, true)
	if code != 0 {
		t.Errorf("exit status %d with skips allowed, want 0", code)
	}
	wantLines(t, out, "TestBroker: RabbitMQ is not answering", "skipped tests accepted (HYPHA_ALLOW_SKIPS is true)")
}

func TestAllPass(t *testing.T) {
	code, out, _ := goTest(t, "pass.json", 0, false, false)
	if code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
	if out != "ok  \texample.com/tr/c\t0.006s\ntestreport: no test skipped\n" {
		t.Errorf("output:\n%s", out)
	}
}

func TestFailureKeepsGoTestStatus(t *testing.T) {
	for _, allow := range []bool{false, true} {
		code, out, _ := goTest(t, "fail.json", 1, false, allow)
		if code != 1 {
			t.Errorf("allow=%v: exit status %d after go test failed, want 1", allow, code)
		}
		wantLines(t, out,
			"    b_test.go:8: got 3, want 4\n--- FAIL: TestBad/inner (0.00s)\n--- FAIL: TestBad (0.00s)\nFAIL\nFAIL\texample.com/tr/b\t",
			"ok  \texample.com/tr/a\t", "ok  \texample.com/tr/c\t",
			"TestSub/two: no kombu",
		)
		if strings.Contains(out, "TestOK") {
			t.Errorf("a passing test of a failing package is printed:\n%s", out)
		}
	}
	// Another status (go test's 2 for bad flags, say) is kept as it is.
	if code, _, _ := goTest(t, "pass.json", 3, false, false); code != 3 {
		t.Errorf("exit status %d, want go test's 3", code)
	}
}

func TestBuildFailure(t *testing.T) {
	t.Setenv("TESTREPORT_STDERR", "go: some message on stderr\n")
	code, out, errOut := goTest(t, "buildfail.json", 1, false, false)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	wantLines(t, out, "# example.com/tr/d [example.com/tr/d.test]\nd/d_test.go:5:28: undefined: undefined\n",
		"FAIL\texample.com/tr/d [build failed]\n")
	wantLines(t, errOut, "go: some message on stderr\n")
}

func TestVerbose(t *testing.T) {
	_, out, _ := goTest(t, "skip.json", 0, true, true)
	wantLines(t, out, "=== RUN   TestPass\n    a_test.go:5: fine\n--- PASS: TestPass (0.00s)\n", "PASS\nok  \texample.com/tr/a\t")
}

// TestUnfinishedTestPrinted: a test that never ends (a panic, a timeout)
// has its output printed before its package's FAIL line; a line that is
// not JSON is printed as it is.
func TestUnfinishedTestPrinted(t *testing.T) {
	stream := `not json: a message of the go command
{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"=== RUN   TestHang\n"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Package":"p","Output":"FAIL\tp\t1.0s\n"}
{"Action":"fail","Package":"p"}
`
	code, out, _ := goTest(t, stream, 1, false, false)
	if code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
	if want := "not json: a message of the go command\npanic: test timed out after 1s\nFAIL\tp\t1.0s\ntestreport: no test skipped\n"; !strings.HasPrefix(out, want) {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}

func TestAllowSkipsVariable(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "1": true, "true": true} {
		if got, err := allowSkips(v); err != nil || got != want {
			t.Errorf("allowSkips(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, err := allowSkips("yes please"); err == nil || !strings.Contains(err.Error(), "HYPHA_ALLOW_SKIPS") {
		t.Errorf("allowSkips of a bad value: %v; want an error naming HYPHA_ALLOW_SKIPS", err)
	}
}

// TestSkipReason: a skip's reason is its test's t.Log lines, continuation
// lines included, not what else the process printed meanwhile.
func TestSkipReason(t *testing.T) {
	stream := `{"Action":"run","Package":"p","Test":"TestX"}
{"Action":"output","Package":"p","Test":"TestX","Output":"=== RUN   TestX\n"}
{"Action":"output","Package":"p","Test":"TestX","Output":"    x_test.go:9: add_vhost failed\n"}
{"Action":"output","Package":"p","Test":"TestX","Output":"        Error: access refused\n"}
{"Action":"output","Package":"p","Test":"TestX","Output":"--- SKIP: TestX (0.00s)\n"}
{"Action":"skip","Package":"p","Test":"TestX"}
{"Action":"output","Package":"p","Test":"TestX","Output":"2026/12/07 21:47:56 WARN hypha: broker not reachable yet\n"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`
	_, out, _ := goTest(t, stream, 0, false, false)
	wantLines(t, out, "    TestX: add_vhost failed / Error: access refused\n")
	if strings.Contains(out, "WARN") {
		t.Errorf("the reason has another line of the process:\n%s", out)
	}
}
