package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

// binary is the hypha command, built once by TestCLI for its subtests.
var binary string

// TestMain checks for leaks, but readline's: the shell run in this process
// (TestEveryConnectionTakesTheConfig) starts readline's watcher of terminal
// resizes, a goroutine that lives as long as the process, by design.
func TestMain(m *testing.M) {
	testbroker.Main(m, goleak.IgnoreTopFunction("github.com/chzyer/readline.DefaultOnWidthChanged.func1.1"))
}

// TestCLI builds the binary and starts the example services (and echo) on
// the package's vhost, then runs the end-to-end tests, in parallel, against
// them; the services stop when they are done.
func TestCLI(t *testing.T) {
	binary = filepath.Join(t.TempDir(), "hypha")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		t.Fatalf("building hypha: %v\n%s", err, out)
	}
	hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"GRACE_PERIOD": 1, "EVENTS": map[string]any{"MAX_RETRIES": 0}}),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
		framework.Service(orders.Name, orders.New),
		framework.Service(mailer.Name, mailer.New),
		framework.Service("echo", func() *echo { return echoService }),
	)
	startLegacy(t)
	for name, test := range cliTests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t)
		})
	}
}

// cliTests are TestCLI's subtests, added by each test file's init.
var cliTests = map[string]func(t *testing.T){}

// result is what one run of the binary gave.
type result struct {
	stdout, stderr string
	code           int
}

// hypha runs the binary in an empty directory (no config.yaml), on the
// package's vhost unless args give --broker, with stdin.
func hypha(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	return hyphaEnv(t, nil, stdin, args...)
}

func hyphaEnv(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !hasFlag(args, "--broker") && !hasFlag(args, "--config") {
		args = append([]string{"--broker", testbroker.URI(t)}, args...)
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(cleanEnv(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running hypha %v: %v", args, err)
	}
	return r
}

// cleanEnv is the environment without Hypha's variables, so that the
// developer's own do not leak into the tests.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HYPHA_") && !strings.HasPrefix(kv, "AMQP_URI=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+os.TempDir())
}

func hasFlag(args []string, flag string) bool {
	for _, a := range args {
		if a == flag || strings.HasPrefix(a, flag+"=") {
			return true
		}
	}
	return false
}

func (r result) want(t *testing.T, code int, stdout ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout: %s\nstderr: %s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s\nstderr: %s", s, r.stdout, r.stderr)
		}
	}
}

func (r result) wantErr(t *testing.T, parts ...string) {
	t.Helper()
	for _, s := range parts {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, r.stderr)
		}
	}
}

var echoService = &echo{}

// echo answers with what it got (its context data, its reply key), sleeps on demand, and has an event handler
// that fails until told otherwise.
type echo struct {
	healed  atomic.Bool
	handled atomic.Int64
}

type sleepIn struct {
	MS int `json:"ms"`
}

type ticket struct {
	ID string `json:"id"`
}

func (e *echo) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "context", func(ctx context.Context, _ struct{}) (contextdata.Data, error) {
		d := contextdata.From(ctx)
		delete(d, contextdata.KeyCallIDStack)
		return d, nil
	}, rpc.Doc("Returns the call's context data."))
	rpc.HandleRaw(r, "reply_to", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		return reply.Reply(strconv.AppendQuote(nil, req.ReplyTo), "application/json")
	}, rpc.Doc("Returns the routing key its reply goes back with."))
	rpc.Handle(r, "sleep", func(ctx context.Context, in sleepIn) (string, error) {
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
		case <-ctx.Done():
		}
		return "slept", nil
	})
	events.Handle(r, "on_ticket", "helpdesk", "opened", func(_ context.Context, in ticket) error {
		if !e.healed.Load() {
			return errors.New("ticket store is down")
		}
		e.handled.Add(1)
		return nil
	})
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startLegacy serves "legacy", a service without the introspection method,
// as a nameko service is, until the test ends.
func startLegacy(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	b, err := dial.Dial(ctx, testbroker.URI(t), dial.Name("legacy"))
	if err != nil {
		t.Fatal(err)
	}
	reg := entrypoint.NewRegistry("legacy")
	rpc.Handle(reg, "ping", func(context.Context, struct{}) (string, error) { return "pong", nil })
	srv, err := rpc.Plugin().Serve(&entrypoint.Service{Name: "legacy", Registry: reg, Broker: b,
		Settings: config.DefaultSettings()})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		b.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Drain(ctx)
		_ = srv.Close()
		b.Close()
	})
}
