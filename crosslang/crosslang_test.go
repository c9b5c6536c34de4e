package crosslang_test

// Cross-language tests with nameko-style Python peers, for what the real
// nameko (nameko_test.go) would not send: a kombu client calls Hypha
// services, and nameko_service.py answers introspection as nameko does. The
// peers need /usr/bin/python3 with Debian's python3-kombu; see README.md.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/internal/apptest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

const python = "/usr/bin/python3"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// needKombu skips t (or fails it under CI=true) when /usr/bin/python3
// cannot import kombu.
func needKombu(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, python, "-c", "import kombu").CombinedOutput()
	if err == nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	msg := fmt.Sprintf("%s cannot import kombu (%v: %s); run scripts/broker.sh (it installs python3-kombu)",
		python, err, lines[len(lines)-1])
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// startApp starts an app on the test vhost (uri is that vhost's) until the test ends.
func startApp(t *testing.T, uri string, opts ...framework.Option) {
	t.Helper()
	apptest.Start(t, append([]framework.Option{framework.ConfigValues(map[string]any{"AMQP_URI": uri})}, opts...)...)
}

const uuidRE = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`

var (
	pythonCallID   = regexp.MustCompile(`^standalone_rpc_proxy\.call\.` + uuidRE + `$`)
	userServiceID  = regexp.MustCompile(`^user_service\.calculate_user_score\.` + uuidRE + `$`)
	calcMultiplyID = regexp.MustCompile(`^calculator\.multiply\.` + uuidRE + `$`)
)

// seenCall is what a server interceptor saw of one call.
type seenCall struct {
	service, method string
	data            contextdata.Data // contextdata.From(ctx) in the handler's context
	headers         map[string]any   // the request's AMQP headers as received
}

// stringsOf reads a list of strings as it comes from AMQP headers or Go code.
func stringsOf(v any) []string {
	return contextdata.CallIDStack(contextdata.WithData(context.Background(),
		contextdata.Data{contextdata.KeyCallIDStack: v}))
}

// uploads is a service of raw methods (rpc.HandleRaw), which a nameko client
// calls like any other.
type uploads struct{}

func (uploads) Register(r *entrypoint.Registry) {
	rpc.HandleRaw(r, "store", func(_ context.Context, req *rpc.RawRequest, reply *rpc.RawReply) error {
		if err := reply.Ack(); err != nil {
			return err
		}
		var in struct {
			Kwargs struct {
				Name string `json:"name"`
				Size int    `json:"size"`
			} `json:"kwargs"`
		}
		if err := json.Unmarshal(req.Body, &in); err != nil {
			return reply.Error("ValueError", err.Error())
		}
		return reply.Reply(fmt.Appendf(nil, `{"stored": %q, "size": %d}`, in.Kwargs.Name, in.Kwargs.Size), "application/json")
	})
	rpc.HandleRaw(r, "refuse", func(_ context.Context, _ *rpc.RawRequest, reply *rpc.RawReply) error {
		return reply.Error("QuotaExceeded", "no space left")
	})
}

func TestNamekoClientCallsHypha(t *testing.T) {
	needKombu(t)
	uri := testbroker.URI(t)

	var mu sync.Mutex
	var seen []seenCall
	record := func(ctx context.Context, call *rpc.CallInfo, next rpc.ServerHandler) (any, error) {
		if call.Service == calculator.Name || call.Service == users.Name {
			mu.Lock()
			seen = append(seen, seenCall{call.Service, call.Method, contextdata.From(ctx), maps.Clone(call.Headers)})
			mu.Unlock()
		}
		return next(ctx)
	}
	startApp(t, uri,
		framework.ServerInterceptors(record),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
		framework.Service("uploads", func() uploads { return uploads{} }),
	)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, python, "./nameko_client.py", "--uri", uri, "all")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	t.Logf("nameko_client.py stdout:\n%s", stdout.String())
	if stderr.Len() > 0 {
		t.Logf("nameko_client.py stderr:\n%s", stderr.String())
	}
	if ctx.Err() != nil {
		t.Fatalf("nameko_client.py did not finish within 60 s: %v", runErr)
	}
	if runErr != nil {
		t.Errorf("nameko_client.py: %v (want exit status 0)", runErr)
	}
	passed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if name, ok := strings.CutPrefix(line, "PASS "); ok {
			passed[name] = true
		} else {
			t.Errorf("check did not pass: %s", line)
		}
	}
	for _, name := range []string{"add_positional", "add_kwargs", "divide_zero", "method_not_found",
		"incorrect_signature", "unknown_service", "context_headers", "raw_method"} {
		if !passed[name] {
			t.Errorf("no PASS line for check %s", name)
		}
	}

	// What arrived downstream of the context_headers check: the Python client
	// called user_service.calculate_user_score with context data, and
	// user_service called calculator.multiply with it.
	mu.Lock()
	defer mu.Unlock()
	var upstream, downstream []seenCall
	for _, c := range seen {
		if c.data[contextdata.KeyUserID] != "u-42" {
			continue
		}
		switch {
		case c.service == users.Name && c.method == "calculate_user_score":
			upstream = append(upstream, c)
		case c.service == calculator.Name:
			downstream = append(downstream, c)
		}
	}
	if len(upstream) != 1 || len(downstream) != 1 {
		t.Fatalf("calls with user_id u-42: %d to user_service.calculate_user_score, %d to calculator (want 1 and 1); all seen: %+v",
			len(upstream), len(downstream), seen)
	}
	up, down := upstream[0], downstream[0]
	if down.method != "multiply" {
		t.Errorf("calculator method = %q, want multiply", down.method)
	}

	// The Python caller's id, as the Python client sent it to user_service.
	sent := stringsOf(up.headers["nameko.call_id_stack"])
	if len(sent) != 1 || !pythonCallID.MatchString(sent[0]) {
		t.Fatalf("user_service received nameko.call_id_stack %#v; want one standalone_rpc_proxy.call.<uuid>",
			up.headers["nameko.call_id_stack"])
	}

	for key, want := range map[string]string{"user_id": "u-42", "language": "en-gb", "custom_key": "custom-value"} {
		if got := down.data[key]; got != want {
			t.Errorf("calculator context data %s = %#v, want %q (data %v)", key, got, want, down.data)
		}
		if got := down.headers["nameko."+key]; got != want {
			t.Errorf("calculator header nameko.%s = %#v, want %q (headers %v)", key, got, want, down.headers)
		}
	}
	stack := contextdata.CallIDStack(contextdata.WithData(context.Background(), down.data))
	t.Logf("calculator.multiply saw context data %v", down.data)
	if len(stack) != 3 || stack[0] != sent[0] || !userServiceID.MatchString(stack[1]) || !calcMultiplyID.MatchString(stack[2]) {
		t.Errorf("calculator call_id_stack = %q; want [%q user_service.calculate_user_score.<uuid> calculator.multiply.<uuid>]",
			stack, sent[0])
	}
	// On the wire, calculator got the stack without its own id.
	if wire := stringsOf(down.headers["nameko.call_id_stack"]); len(stack) == 3 && !reflect.DeepEqual(wire, stack[:2]) {
		t.Errorf("calculator received nameko.call_id_stack %q; want %q", wire, stack[:2])
	}
	// And user_service's worker pushed the same id it passed on.
	upStack := contextdata.CallIDStack(contextdata.WithData(context.Background(), up.data))
	if len(stack) == 3 && !reflect.DeepEqual(upStack, stack[:2]) {
		t.Errorf("user_service call_id_stack = %q; want %q", upStack, stack[:2])
	}
}

// readyWriter collects a subprocess's stdout and closes ready at the first
// line that reads READY.
type readyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.seen {
		sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "READY" {
				w.seen = true
				close(w.ready)
				break
			}
		}
	}
	return len(p), nil
}

func (w *readyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// lockedBuffer is a bytes.Buffer safe to read while the subprocess writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startPythonService runs nameko_service.py as service name until the test
// ends, and returns once it has printed READY.
func startPythonService(t *testing.T, uri, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	stdout := &readyWriter{ready: make(chan struct{})}
	stderr := &lockedBuffer{}
	cmd := exec.CommandContext(ctx, python, "./nameko_service.py",
		"--uri", uri, "--service", name, "--max-seconds", "60")
	cmd.Stdout, cmd.Stderr = stdout, stderr
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
	t.Cleanup(func() {
		defer cancel()
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Errorf("nameko_service.py did not exit within 5 s of SIGTERM; killing it")
			_ = cmd.Process.Kill()
			<-done
		}
		if waitErr != nil {
			t.Errorf("nameko_service.py: %v", waitErr)
		}
		if t.Failed() {
			t.Logf("nameko_service.py stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	})
	select {
	case <-stdout.ready:
	case <-done:
		t.Fatalf("nameko_service.py exited before READY: %v", waitErr)
	case <-time.After(20 * time.Second):
		t.Fatal("nameko_service.py printed no READY within 20 s")
	}
}
