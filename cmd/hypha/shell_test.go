package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/hypha-go/hypha/internal/testbroker"
)

func init() {
	cliTests["shell"] = testShell
	cliTests["call on a terminal"] = testCallOnTerminal
}

// testCallOnTerminal: on a terminal, call indents its result.
func testCallOnTerminal(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--broker", testbroker.URI(t), "call", "user_service.calculate_user_score",
		"user_id=ann", "base_score=10", "multiplier=3")
	cmd.Env = cleanEnv()
	tty, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	term := &terminal{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = bytesCopy(term, tty)
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("call: %v\n%s", err, term.String())
	}
	term.expect(t, 0, "{\r\n  \"user_id\": \"ann\",\r\n  \"score\": 30\r\n}")
	tty.Close()
	<-copied
}

// terminal is the output of a program on a pseudo-terminal, collected as it comes.
type terminal struct {
	mu  sync.Mutex
	out bytes.Buffer
}

func (term *terminal) Write(p []byte) (int, error) {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.Write(p)
}

func (term *terminal) String() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return term.out.String()
}

// expect waits until the output holds want after position from, and returns
// the position after it.
func (term *terminal) expect(t *testing.T, from int, want string) int {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := term.String()
		if i := strings.Index(out[from:], want); i >= 0 {
			return from + i + len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the terminal never showed %q; it shows:\n%q", want, out[from:])
		}
	}
}

func testShell(t *testing.T) {
	history := filepath.Join(t.TempDir(), "history")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "--broker", testbroker.URI(t), "shell", "calculator", "--history", history)
	cmd.Env = append(cleanEnv(), "TERM=xterm")
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	term := &terminal{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = bytesCopy(term, tty)
	}()
	type step struct{ send, want string }
	pos := term.expect(t, 0, "hypha> ")
	for _, s := range []step{
		// Tab completes the service, then the method (from introspection).
		{"calc\t", "calculator."},
		{"ad\t", "add "},
		{"a=1 b=2\r", "3\r\n"},
		{"calculator.divide a=1 b=0\r", "error: calculator.divide raised ZeroDivisionError: division by zero"},
		{"calculator.add a=1\r", "expected: calculator.add(a, b)"},
		{"inspect calculator\r", "divide(a, b) -> number"},
		{"help\r", "inspect SERVICE"},
	} {
		if _, err := tty.Write([]byte(s.send)); err != nil {
			t.Fatal(err)
		}
		pos = term.expect(t, pos, s.want)
	}
	if _, err := tty.Write([]byte{4}); err != nil { // ctrl-D
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("shell: %v\n%s", err, term.String())
	}
	tty.Close()
	<-copied
	b, err := os.ReadFile(history)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "calculator.add a=1 b=2\n") {
		t.Errorf("history = %q, want the completed call in it", b)
	}
}

// bytesCopy copies until src fails (a pseudo-terminal ends with EIO, not EOF).
func bytesCopy(dst *terminal, src *os.File) (int64, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			_, _ = dst.Write(buf[:k])
			n += int64(k)
		}
		if err != nil {
			return n, err
		}
	}
}
