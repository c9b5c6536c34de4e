package framework_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.uber.org/fx"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	transportdial "github.com/hypha-go/hypha/transport/dial"
	"github.com/hypha-go/hypha/transport/memory"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		runChild()
		return
	}
	testbroker.Main(m)
}

// timeout bounds starting and stopping an app, and a client's calls.
const timeout = 10 * time.Second

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// dial returns a standalone client on the package's vhost whose calls time
// out after timeout, closed when the test ends.
func dial(t testing.TB) *rpc.Client {
	t.Helper()
	c, err := hyphatest.Client(t, context.Background(), testbroker.URI(t), rpc.Config{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// reporter is a second service that proxies calculator, beside user_service.
type reporter struct{ calc *rpc.Proxy }

type reporterDeps struct {
	fx.In
	Calc *rpc.Proxy `name:"calculator"`
}

func (r *reporter) Register(reg *entrypoint.Registry) {
	rpc.Handle(reg, "total", func(ctx context.Context, in struct {
		Values []float64 `json:"values"`
	}) (float64, error) {
		sum := 0.0
		for _, v := range in.Values {
			var err error
			if sum, err = rpc.Call[float64](ctx, r.calc, "add", rpc.Args(sum, v)); err != nil {
				return 0, err
			}
		}
		return sum, nil
	})
}

func TestExamplesEndToEnd(t *testing.T) {
	hyphatest.Run(t, testbroker.URI(t),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
		framework.Service("reporter", func(d reporterDeps) *reporter { return &reporter{calc: d.Calc} }),
	)
	c := dial(t)
	ctx := context.Background()

	var score users.Score
	if err := c.Proxy(users.Name).Call(ctx, "calculate_user_score",
		map[string]any{"user_id": 7, "base_score": 10, "multiplier": 3}, &score); err != nil {
		t.Fatal(err)
	}
	if score.Score != 30 || score.UserID != 7.0 {
		t.Fatalf("score = %+v", score)
	}
	batch, err := rpc.Call[[]float64](ctx, c.Proxy(users.Name), "batch_scores",
		map[string]any{"base_scores": []float64{1, 2, 3, 4}, "multiplier": 2.5})
	if err != nil || len(batch) != 4 || batch[3] != 10 {
		t.Fatalf("batch = %v, %v", batch, err)
	}
	total, err := rpc.Call[float64](ctx, c.Proxy("reporter"), "total", map[string]any{"values": []float64{1, 2, 3}})
	if err != nil || total != 6 {
		t.Fatalf("total = %v, %v", total, err)
	}
	_, err = rpc.Call[float64](ctx, c.Proxy(calculator.Name), "divide", rpc.Args(1, 0))
	var re *rpc.RemoteError
	if !errors.Is(err, calculator.ErrDivisionByZero) || !errors.As(err, &re) ||
		re.ExcType != "ZeroDivisionError" || re.Value != "division by zero" {
		t.Fatalf("divide by zero: %#v", err)
	}
	for method, want := range map[string]float64{"add": 8, "subtract": 4, "multiply": 12, "divide": 3} {
		got, err := rpc.Call[float64](ctx, c.Proxy(calculator.Name), method, map[string]any{"a": 6, "b": 2})
		if err != nil || got != want {
			t.Errorf("%s(6, 2) = %v, %v; want %v", method, got, err, want)
		}
	}
}

// hop is a service that records the context data it sees and calls next.
type hop struct {
	name  string
	proxy *rpc.Proxy
	mu    *sync.Mutex
	seen  map[string]contextdata.Data
}

func (h *hop) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "relay", func(ctx context.Context, _ struct{}) (string, error) {
		h.mu.Lock()
		h.seen[h.name] = contextdata.From(ctx)
		h.mu.Unlock()
		if h.proxy == nil {
			return h.name, nil
		}
		out, err := rpc.Call[string](ctx, h.proxy, "relay", nil)
		return h.name + ">" + out, err
	})
}

type hopDeps struct {
	fx.In
	Next *rpc.Proxy `name:"hop_c"`
}

type hopDepsB struct {
	fx.In
	Next *rpc.Proxy `name:"hop_b"`
}

func TestContextDataAcrossThreeHops(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]contextdata.Data{}
	mk := func(name string) *hop { return &hop{name: name, mu: &mu, seen: seen} }
	hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{"PARENT_CALLS_TRACKED": 2}),
		framework.Service("hop_a", func(d hopDepsB) *hop { h := mk("hop_a"); h.proxy = d.Next; return h }),
		framework.Service("hop_b", func(d hopDeps) *hop { h := mk("hop_b"); h.proxy = d.Next; return h }),
		framework.Service("hop_c", func() *hop { return mk("hop_c") }),
	)
	ctx := contextdata.WithUserID(context.Background(), "u-42")
	ctx = contextdata.With(ctx, contextdata.KeyLanguage, "en-gb")
	ctx = contextdata.With(ctx, "tenant", "acme")
	out, err := rpc.Call[string](ctx, dial(t).Proxy("hop_a"), "relay", nil)
	if err != nil || out != "hop_a>hop_b>hop_c" {
		t.Fatalf("relay = %q, %v", out, err)
	}
	for _, name := range []string{"hop_a", "hop_b", "hop_c"} {
		d := seen[name]
		if d["user_id"] != "u-42" || d["language"] != "en-gb" || d["tenant"] != "acme" {
			t.Errorf("%s saw %v", name, d)
		}
	}
	stack := func(name string) []string {
		return contextdata.CallIDStack(contextdata.WithData(context.Background(), seen[name]))
	}
	a, b, c := stack("hop_a"), stack("hop_b"), stack("hop_c")
	if len(a) != 2 || !strings.HasPrefix(a[0], rpc.StandaloneOwner+".") || !strings.HasPrefix(a[1], "hop_a.relay.") {
		t.Errorf("hop_a stack = %v", a)
	}
	if len(b) != 3 || b[1] != a[1] || !strings.HasPrefix(b[2], "hop_b.relay.") {
		t.Errorf("hop_b stack = %v", b)
	}
	// PARENT_CALLS_TRACKED=2 keeps 3 entries: the standalone id has dropped off.
	if len(c) != 3 || c[0] != a[1] || c[1] != b[2] || !strings.HasPrefix(c[2], "hop_c.relay.") {
		t.Errorf("hop_c stack = %v", c)
	}
}

// slow answers after a pause, to be stopped mid-call.
type slow struct{ started chan struct{} }

func (s *slow) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "work", func(ctx context.Context, in struct {
		MS int `json:"ms"`
	}) (string, error) {
		close(s.started)
		time.Sleep(time.Duration(in.MS) * time.Millisecond)
		return "finished", nil
	})
}

func TestStopDuringCallStillReplies(t *testing.T) {
	s := &slow{started: make(chan struct{})}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 5}),
		framework.Logger(quiet),
		framework.Service("slow", func() *slow { return s }),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	reply := dial(t).Proxy("slow").CallAsync(context.Background(), "work", map[string]any{"ms": 700})
	<-s.started
	if err := app.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got string
	if err := reply.Result(&got); err != nil || got != "finished" {
		t.Fatalf("reply = %q, %v", got, err)
	}
}

func TestNewRefusesBadServices(t *testing.T) {
	uri := framework.ConfigValues(map[string]any{"AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/"})
	tests := []struct {
		name string
		opt  framework.Option
		want string
	}{
		{"no services", uri, "no services"},
		{"not a function", framework.Service("x", 42), "must be a function"},
		{"no Register", framework.Service("x", func() *strings.Builder { return nil }), "no Register"},
		{"unnamed proxy", framework.Service("x", func(p *rpc.Proxy) *hop { return nil }), "fx.In"},
		{"unnamed caller", framework.Service("x", func(p rpc.Caller) *hop { return nil }), "rpc.Caller parameter"},
		{"restricted to an unknown entrypoint", framework.Service(calculator.Name, calculator.New, framework.RestrictEntrypoints("pow")),
			`RestrictEntrypoints: service "calculator" has no entrypoint "pow"; it has "add", "subtract", "multiply", "divide"`},
		{"duplicate method", framework.Service("x", func() dup { return dup{} }), "registered twice"},
		{"bad config", framework.ConfigValues(map[string]any{"MAX_WORKERS": "ten"}), "MAX_WORKERS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := []framework.Option{uri, framework.Logger(quiet), tt.opt}
			if tt.name == "bad config" {
				opts = append(opts, framework.Service(calculator.Name, calculator.New))
			}
			_, err := framework.New(opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

type dup struct{}

func (dup) Register(r *entrypoint.Registry) {
	f := func(context.Context, struct{}) (int, error) { return 1, nil }
	rpc.Handle(r, "same", f)
	rpc.Handle(r, "same", f)
}

// childEnv makes the test binary run framework.Run as a service process;
// childLogsEnv makes it log errors to stderr.
const (
	childEnv     = "HYPHA_TEST_RUN_CHILD"
	childLogsEnv = "HYPHA_TEST_CHILD_LOGS"
)

func runChild() {
	log := quiet
	switch os.Getenv(childLogsEnv) {
	case "":
	case "framework": // the framework's own logger, as LOG_LEVEL and LOG_FORMAT say
		framework.Run(framework.Service(calculator.Name, calculator.New))
		os.Exit(0)
	default:
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	}
	framework.Run(framework.Service(calculator.Name, calculator.New), framework.Logger(log))
	os.Exit(0)
}

func TestRunStopsOnSIGTERM(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "HYPHA_AMQP_URI="+testbroker.URI(t), "HYPHA_CONFIG=")
	cmd.Dir = t.TempDir()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c := dial(t)
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := rpc.Call[float64](context.Background(), c.Proxy(calculator.Name), "add", rpc.Args(1, 1))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatal("the service never answered:", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("still running 15s after SIGTERM")
	}
}

func TestRunExitsNonZeroWhenItCannotStart(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=1", "HYPHA_AMQP_URI=amqp://guest:guest@127.0.0.1:1/", "HYPHA_CONFIG=",
		"HYPHA_RECONNECT__MAX_ELAPSED=0.5")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("err = %v, want exit status 1; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "hypha: cannot start:") || !strings.Contains(string(out), "127.0.0.1:1") {
		t.Fatalf("output does not say why:\n%s", out)
	}
}

// front calls back once told to: when the app stops before that, back must
// still answer, because front has not finished.
type front struct {
	back    *rpc.Proxy
	started chan struct{}
	proceed chan struct{}
}

type frontDeps struct {
	fx.In
	Back *rpc.Proxy `name:"back"`
}

func (f *front) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "relay", func(ctx context.Context, _ struct{}) (float64, error) {
		close(f.started)
		<-f.proceed
		return rpc.Call[float64](ctx, f.back, "add", rpc.Args(20, 22))
	})
}

func TestStopLetsCallersFinishFirst(t *testing.T) {
	f := &front{started: make(chan struct{}), proceed: make(chan struct{})}
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": testbroker.URI(t), "GRACE_PERIOD": 5}),
		framework.Logger(quiet),
		framework.Service("front", func(d frontDeps) *front { f.back = d.Back; return f }),
		framework.Service("back", calculator.New),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	reply := dial(t).Proxy("front").CallAsync(context.Background(), "relay", nil)
	select {
	case <-f.started: // front's worker is waiting now
	case <-time.After(10 * time.Second):
		t.Fatal("front's relay did not start")
	}
	stopped := make(chan error, 1)
	go func() { stopped <- app.Stop(context.Background()) }()
	// front calls back only once the stop is under way: its request queue
	// has lost its consumer.
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for deadline := time.Now().Add(10 * time.Second); rpcConsumers(t, conn, "front") != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("front still consumes 10 s after Stop began")
		}
	}
	close(f.proceed)
	var got float64
	if err := reply.Result(&got); err != nil || got != 42 {
		t.Fatalf("front's reply = %v, %v; back stopped before front finished", got, err)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
}

// rpcConsumers is the number of consumers of service's request queue, read
// with a passive declare on a channel of its own.
func rpcConsumers(t *testing.T, conn *amqp091.Connection, service string) int {
	t.Helper()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(rpc.QueueName(service), true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Consumers
}

// nestedDeps declares its proxy in an embedded fx.In struct (InnerDeps), and
// again as an rpc.Caller, beside an events.EventDispatcher.
// InnerDeps is an fx.In struct embedded in another.
type InnerDeps struct {
	fx.In
	Calc *rpc.Proxy `name:"calculator"`
}

type nestedDeps struct {
	fx.In
	InnerDeps
	Again  rpc.Caller `name:"calculator"`
	Events events.EventDispatcher
}

type nested struct {
	a *rpc.Proxy
	b rpc.Caller
}

func (n *nested) Register(r *entrypoint.Registry) {
	rpc.Handle(r, "sum", func(ctx context.Context, _ struct{}) (float64, error) {
		x, err := rpc.Call[float64](ctx, n.a, "add", rpc.Args(1, 2))
		if err != nil {
			return 0, err
		}
		return rpc.Call[float64](ctx, n.b, "add", rpc.Args(x, 3))
	})
}

func TestProxiesInEmbeddedAndRepeatedFields(t *testing.T) {
	hyphatest.Run(t, testbroker.URI(t),
		framework.Service(calculator.Name, calculator.New),
		framework.Service("nested", func(d nestedDeps) (*nested, error) {
			if d.Events == nil {
				return nil, errors.New("no events.EventDispatcher injected")
			}
			return &nested{a: d.Calc, b: d.Again}, nil
		}),
	)
	got, err := rpc.Call[float64](context.Background(), dial(t).Proxy("nested"), "sum", nil)
	if err != nil || got != 6 {
		t.Fatalf("sum = %v, %v", got, err)
	}
}

// TestRunsOnTheEmbeddedBroker starts services on memory:// and calls them,
// with no RabbitMQ involved.
func TestRunsOnTheEmbeddedBroker(t *testing.T) {
	uri := "memory://" + t.Name()
	t.Cleanup(func() { memory.Reset(t.Name()) })
	app, err := framework.New(
		framework.ConfigValues(map[string]any{"AMQP_URI": uri}),
		framework.Logger(quiet),
		framework.Service(calculator.Name, calculator.New),
		framework.Service(users.Name, users.New),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer app.Stop(ctx)
	broker, err := transportdial.Dial(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	c := rpc.NewClient(broker, rpc.Config{Owner: "test"})
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	score, err := rpc.Call[users.Score](ctx, c.Proxy(users.Name), "calculate_user_score",
		map[string]any{"user_id": "ann", "base_score": 10, "multiplier": 3})
	if err != nil || score.Score != 30 {
		t.Fatalf("calculate_user_score = %+v, %v", score, err)
	}
}
