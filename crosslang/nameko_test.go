package crosslang_test

// The harness that runs the real nameko 2.14.1 beside Hypha: nameko.sh (in
// the shared directory beside the repository) installs it once per package
// run, and startNameko runs `nameko run` with a service module of
// testdata/nameko on the test's vhost.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
)

var (
	namekoOnce sync.Once
	namekoSrc  string // the directory nameko.sh extracted nameko into, for PYTHONPATH
	namekoErr  error
)

// namekoSetup runs nameko.sh once per package run and returns the directory
// that holds nameko's source. Without nameko.sh, or when it fails, t skips,
// or fails under CI=true.
func namekoSetup(t *testing.T) string {
	t.Helper()
	namekoOnce.Do(func() {
		script, err := namekoScript()
		if err != nil {
			namekoErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		var stdout, stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "bash", "-c", `source "$0" >&2 && printf %s "$NAMEKO_SRC"`, script)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			namekoErr = fmt.Errorf("source %s: %v\n%s", script, err, stderr.String())
			return
		}
		namekoSrc = strings.TrimSpace(stdout.String())
	})
	if namekoErr != nil {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(namekoErr)
		}
		t.Skip(namekoErr)
	}
	return namekoSrc
}

// namekoScript finds shared/peers/nameko.sh beside the repository (in CI
// too). Tests run in the package directory, so the repository root is its
// parent; a git worktree elsewhere finds it beside its main checkout.
func namekoScript() (string, error) {
	rel := filepath.Join("shared", "peers", "nameko.sh")
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	tried := []string{filepath.Join(filepath.Dir(root), rel)}
	if out, err := exec.Command("git", "rev-parse", "--path-format=absolute", "--git-common-dir").Output(); err == nil {
		// The common directory is <main checkout>/.git.
		main := filepath.Dir(strings.TrimSpace(string(out)))
		tried = append(tried, filepath.Join(filepath.Dir(main), rel))
	}
	for _, p := range tried {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("nameko.sh, which installs nameko 2.14.1, is not beside the repository (tried %s): "+
		"put the shared directory next to the clone", strings.Join(tried, ", "))
}

// namekoCommand is python running nameko's code with args, from
// testdata/nameko (where the service modules are).
func namekoCommand(ctx context.Context, t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	src := namekoSetup(t)
	dir, err := filepath.Abs(filepath.Join("testdata", "nameko"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONPATH="+src+string(os.PathListSeparator)+dir, "PYTHONUNBUFFERED=1")
	return cmd
}

// namekoService is a `nameko run` started by startNameko.
type namekoService struct {
	stdout, stderr *lockedBuffer
}

// lines returns the lines nameko's service has printed so far that start
// with prefix, without it.
func (s *namekoService) lines(prefix string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s.stdout.String()))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			out = append(out, rest)
		}
	}
	return out
}

// startNameko runs `nameko run module:class` on the vhost of uri until the
// test ends, and returns once a consumer is on a queue named each of queues
// (or beginning with it, when it ends with "*"): nameko declares and consumes its queues as it starts,
// and prints nothing when it is ready. It stops it with SIGTERM, then SIGKILL
// when nameko's graceful stop hangs.
func startNameko(t *testing.T, uri, module, class string, queues ...string) *namekoService {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	// nameko reads AMQP_URI from its config; JSON is YAML.
	cfgJSON, err := json.Marshal(map[string]any{"AMQP_URI": uri, "max_workers": 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, cfgJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	s := &namekoService{stdout: &lockedBuffer{}, stderr: &lockedBuffer{}}
	cmd := namekoCommand(ctx, t, "-m", "nameko", "run", "--config", cfg, module+":"+class)
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	started := time.Now()
	t.Cleanup(func() {
		defer cancel()
		stopping := time.Now()
		defer func() {
			t.Logf("nameko run %s:%s stopped in %v", module, class, time.Since(stopping).Round(time.Millisecond))
		}()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Logf("nameko run %s:%s did not exit within 10 s of SIGTERM; killing it", module, class)
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("nameko run %s:%s (%v)\nstdout:\n%s\nstderr:\n%s", module, class, waitErr, s.stdout.String(), s.stderr.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		missing, err := unconsumed(t, queues)
		if err == nil && len(missing) == 0 {
			t.Logf("nameko run %s:%s consumed after %v", module, class, time.Since(started).Round(time.Millisecond))
			return s
		}
		select {
		case <-done:
			t.Fatalf("nameko run %s:%s exited before it consumed: %v\nstderr:\n%s", module, class, waitErr, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nameko run %s:%s: no consumer on %q within 60 s (%v)\nstderr:\n%s", module, class, missing, err, s.stderr.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unconsumed returns those of queues (names, or prefixes ending with "*") that have no
// queue with a consumer on the test's vhost.
func unconsumed(t *testing.T, queues []string) ([]string, error) {
	out, err := testbroker.Rabbitmqctl("-q", "list_queues", "-p", testbroker.VHost(t), "name", "consumers")
	if err != nil {
		return queues, fmt.Errorf("rabbitmqctl list_queues: %v: %s", err, out)
	}
	var missing []string
	for _, q := range queues {
		found := false
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			name, prefix := strings.CutSuffix(q, "*")
			if len(f) == 2 && (f[0] == name || prefix && strings.HasPrefix(f[0], name)) && f[1] != "0" {
				found = true
			}
		}
		if !found {
			missing = append(missing, q)
		}
	}
	return missing, nil
}

// runStandalone runs testdata/nameko/standalone.py (nameko's standalone RPC
// proxy or event dispatcher) with args to completion and returns its stdout.
func runStandalone(t *testing.T, uri string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := namekoCommand(ctx, t, append([]string{"standalone.py", uri}, args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	if err != nil {
		t.Fatalf("standalone.py %s: %v\nstdout:\n%s\nstderr:\n%s", args[0], err, stdout.String(), stderr.String())
	}
	return stdout.String()
}
