//go:build faults

// Package faults_test holds the fault tests: they break a broker (closing
// every connection of the test vhost, stopping the RabbitMQ app, raising its
// memory alarm, killing a cluster's nodes) while clients call services, and
// check that Hypha heals. They run on RabbitMQ nodes of their own that
// scripts/cluster.sh starts beside the machine's default node, which they
// never touch; they sit behind the faults build tag and run serially after
// the parallel suite: make test-faults.
package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

const (
	clients      = 4
	callDeadline = 10 * time.Second
	// hungAfter: a call still running this long ignored its deadline.
	hungAfter = callDeadline + time.Second
	// recoveryBound: the service must answer again this soon after the
	// broker is back.
	recoveryBound = 5 * time.Second
	// watchdog restarts the broker app and crashes the test binary, with
	// every goroutine's stack, when the soak hangs far beyond its ~30 s.
	watchdog = 150 * time.Second
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fault is one thing done to the broker: from start, the broker was
// available again at back.
type fault struct {
	name        string
	start, back time.Time
}

// tally collects the outcome of every call.
type tally struct {
	mu         sync.Mutex
	served     map[string]int // times the service ran each call, by correlation id
	failedIDs  []failedCall
	ok         int
	failures   map[string]int // by error text, ids masked
	firstFail  map[string]time.Duration
	mismatched []string
	longest    time.Duration
	longestErr string
	hung       int
	successes  []time.Time // when each successful call returned
	perClient  [clients][]time.Time
}

type failedCall struct {
	id    string
	start time.Duration
	err   string
}

// serve is an interceptor counting the runs of each call the app serves.
func (t *tally) serve(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
	if rc, ok := call.Spec.(*rpc.CallInfo); ok && !call.Client {
		t.mu.Lock()
		t.served[rc.CorrelationID]++
		t.mu.Unlock()
	}
	return next(ctx)
}

type callIDKey struct{}

// callID is a client interceptor telling the caller its call's correlation id.
func callID(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
	if p, ok := ctx.Value(callIDKey{}).(*string); ok {
		*p = call.Spec.(*rpc.CallInfo).CorrelationID
	}
	return next(ctx)
}

var idPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func (t *tally) record(client int, t0, start, end time.Time, id string, a, b, got float64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := end.Sub(start)
	if d > t.longest {
		t.longest = d
		t.longestErr = "ok"
		if err != nil {
			t.longestErr = err.Error()
		}
	}
	if d > hungAfter {
		t.hung++
	}
	switch {
	case err != nil:
		reason := idPattern.ReplaceAllString(err.Error(), "<id>")
		if t.failures[reason] == 0 {
			t.firstFail[reason] = start.Sub(t0)
		}
		t.failures[reason]++
		t.failedIDs = append(t.failedIDs, failedCall{id: id, start: start.Sub(t0), err: err.Error()})
	case got != a+b:
		t.mismatched = append(t.mismatched, fmt.Sprintf("add(%v, %v) = %v at +%s", a, b, got, start.Sub(t0).Round(time.Millisecond)))
	default:
		t.ok++
		t.successes = append(t.successes, end)
		t.perClient[client] = append(t.perClient[client], end)
	}
}

func (t *tally) failed() int {
	n := 0
	for _, c := range t.failures {
		n += c
	}
	return n
}

// recovery is the time from f.back until the first call in successes (in
// order) that succeeded after it, or -1 when none did.
func recovery(successes []time.Time, f fault) time.Duration {
	i := sort.Search(len(successes), func(i int) bool { return successes[i].After(f.back) })
	if i == len(successes) {
		return -1
	}
	return successes[i].Sub(f.back)
}

func roundText(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return d.Round(time.Millisecond).String()
}

func countIf(m map[string]int, f func(int) bool) int {
	n := 0
	for _, v := range m {
		if f(v) {
			n++
		}
	}
	return n
}

// requireLoopback skips the test unless the broker is on this machine:
// stopping it is done with the local rabbitmqctl (on the solo node).
func requireLoopback(t *testing.T, uri string) {
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Skipf("the broker %s is not on loopback; the soak test stops the local broker app", host)
	}
}

// TestSoak calls calculator.add from 4 clients without a pause while the
// broker closes every connection 3 times and then stops for 3 s, and checks
// that every call returned a+b within its deadline and that the service
// answered again within 5 s of each fault.
func TestSoak(t *testing.T) {
	uri := testbroker.URI(t)
	requireLoopback(t, uri)
	t0 := time.Now()

	dog := time.AfterFunc(watchdog, func() {
		ensureBrokerApp()
		debug.SetTraceback("all")
		panic(fmt.Sprintf("faults: TestSoak still running after %s", watchdog))
	})
	t.Cleanup(func() { dog.Stop() })

	var logs syncBuffer
	level := slog.LevelInfo
	if os.Getenv("HYPHA_FAULTS_DEBUG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))
	res := &tally{served: map[string]int{}, failures: map[string]int{}, firstFail: map[string]time.Duration{}}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("HYPHA_FAULTS_LOG") != "" {
			t.Logf("logs (app and clients, times are wall clock; the soak started at %s):\n%s",
				t0.Format("15:04:05.000"), logs.String())
		}
	})

	hyphatest.Run(t, testbroker.URI(t),
		framework.ConfigValues(map[string]any{
			"AMQP_URI":     uri,
			"RECONNECT":    map[string]any{"INTERVAL_START": 0.1, "INTERVAL_MAX": 1},
			"HEARTBEAT":    5,
			"GRACE_PERIOD": 5,
		}),
		framework.Logger(log.With("side", "app")),
		framework.Service(calculator.Name, calculator.New),
		framework.Interceptors(res.serve),
	)
	startCtx := context.Background()

	proxies := make([]*rpc.Proxy, clients)
	for i := range proxies {
		c, err := openClient(startCtx, t, map[string]any{"AMQP_URI": uri, "HEARTBEAT": 5, "RPC_TIMEOUT": callDeadline.Seconds()},
			log.With("side", fmt.Sprintf("client%d", i)), callID)
		if err != nil {
			t.Fatal(err)
		}
		// add is safe to run twice: a request whose fate a dropped
		// connection left unknown is sent again instead of waited on
		// (README, Failure behaviour). Without this, a call in flight at a
		// close_all_connections whose request the broker never took
		// waits out its whole deadline and fails with ErrTimeout.
		proxies[i] = c.Proxy(calculator.Name).Idempotent()
	}
	// The service answers before the soak starts.
	if _, err := rpc.Call[float64](startCtx, proxies[0], "add", calculator.Operands{A: 1, B: 2}); err != nil {
		t.Fatal("first call:", err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	seed := uint64(time.Now().UnixNano())
	t.Logf("operand seed %d", seed)
	for i, p := range proxies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, b := float64(rng.IntN(1_000_000_000)), float64(rng.IntN(1_000_000_000))
				var id string
				ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), callIDKey{}, &id), callDeadline)
				start := time.Now()
				got, err := rpc.Call[float64](ctx, p, "add", calculator.Operands{A: a, B: b})
				end := time.Now()
				cancel()
				res.record(i, t0, start, end, id, a, b, got, err)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // no hot loop on an error that comes at once
				}
			}
		}()
	}
	clientsDone := make(chan struct{})
	go func() { wg.Wait(); close(clientsDone) }()
	stopClients := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(func() { // also when the fault driver fails half-way
		stopClients()
		select {
		case <-clientsDone:
		case <-time.After(hungAfter + 5*time.Second):
			t.Errorf("clients still calling %s after being told to stop", hungAfter+5*time.Second)
		}
	})

	// The fault driver.
	var faults []fault
	time.Sleep(3 * time.Second)
	for i := range 3 {
		if i > 0 {
			time.Sleep(3 * time.Second)
		}
		f := fault{name: fmt.Sprintf("close_connections#%d", i+1), start: time.Now()}
		testbroker.CloseConnections(t)
		f.back = time.Now()
		faults = append(faults, f)
		t.Logf("+%s %s done (took %s)", f.start.Sub(t0).Round(time.Millisecond), f.name, f.back.Sub(f.start).Round(time.Millisecond))
	}
	time.Sleep(3 * time.Second)
	f := fault{name: "stop_app", start: time.Now()}
	stopped, back := stopBrokerApp(t, 3*time.Second)
	f.back = back
	faults = append(faults, f)
	t.Logf("+%s stop_app: stopped at +%s, back (await_startup returned) at +%s",
		f.start.Sub(t0).Round(time.Millisecond), stopped.Sub(t0).Round(time.Millisecond), back.Sub(t0).Round(time.Millisecond))
	time.Sleep(5 * time.Second)

	stopClients()
	select {
	case <-clientsDone:
	case <-time.After(hungAfter + 5*time.Second):
		t.Fatalf("clients still calling %s after being told to stop: a call ignored its deadline", hungAfter+5*time.Second)
	}
	soakTime := time.Since(t0)

	// The clients are done; only redeliveries to the service may still
	// write res.served.
	res.mu.Lock()
	defer res.mu.Unlock()
	slices.SortFunc(res.successes, func(a, b time.Time) int { return a.Compare(b) })
	var recov []string
	for _, f := range faults {
		r := recovery(res.successes, f)
		text := roundText(r)
		slowest := time.Duration(0)
		for _, s := range res.perClient {
			if c := recovery(s, f); c < 0 || slowest >= 0 && c > slowest {
				slowest = c
			}
		}
		recov = append(recov, f.name+"="+text)
		t.Logf("%s: the broker was available again %s after the fault began; the first call succeeded %s later, the slowest client's %s later",
			f.name, f.back.Sub(f.start).Round(time.Millisecond), text, roundText(slowest))
		if r < 0 || r > recoveryBound {
			t.Errorf("%s: the service did not answer within %s of the broker being back (first success: %s)", f.name, recoveryBound, text)
		}
	}
	// The AMQP listener opens before await_startup returns, so clients are
	// often back before f.back: the outage they saw ran from the stop.
	outage := recovery(res.successes, fault{back: stopped})
	t.Logf("stop_app: no call succeeded for %s after stop_app returned (the app was down %s)",
		roundText(outage), back.Sub(stopped).Round(time.Millisecond))
	reasons := make([]string, 0, len(res.failures))
	for r := range res.failures {
		reasons = append(reasons, r)
	}
	sort.Strings(reasons)
	warns, errs := strings.Count(logs.String(), "level=WARN"), strings.Count(logs.String(), "level=ERROR")

	t.Logf("soak of %s: %d calls ok, %d failed, %d mismatched results, %d hung; longest call %s (%s)",
		soakTime.Round(time.Millisecond), res.ok, res.failed(), len(res.mismatched), res.hung,
		res.longest.Round(time.Millisecond), res.longestErr)
	reruns := 0
	for _, n := range res.served {
		reruns += max(n-1, 0)
	}
	t.Logf("log records: %d WARN, %d ERROR; the service ran %d calls more than once (%d extra runs)",
		warns, errs, countIf(res.served, func(n int) bool { return n > 1 }), reruns)
	for _, r := range reasons {
		t.Logf("failure x%d (first at +%s): %s", res.failures[r], res.firstFail[r].Round(time.Millisecond), r)
	}
	for _, f := range res.failedIDs[:min(len(res.failedIDs), 20)] {
		t.Logf("failed call %s started at +%s, run by the service %d times: %s",
			f.id, f.start.Round(time.Millisecond), res.served[f.id], f.err)
	}
	fmt.Printf("faults: TestSoak: %d ok, %d failed, %d mismatched, %d hung, longest call %s, recovery %s, soak %s, logs %d WARN %d ERROR\n",
		res.ok, res.failed(), len(res.mismatched), res.hung, res.longest.Round(time.Millisecond),
		strings.Join(recov, " "), soakTime.Round(time.Second), warns, errs)

	if n := res.failed(); n > 0 {
		t.Errorf("%d calls failed; every call should have returned its result (reasons above)", n)
	}
	if len(res.mismatched) > 0 {
		t.Errorf("%d calls returned a result that is not a+b (a reply to another call, or a duplicate):\n%s",
			len(res.mismatched), strings.Join(res.mismatched[:min(len(res.mismatched), 20)], "\n"))
	}
	if res.hung > 0 || res.longest > hungAfter {
		t.Errorf("%d calls ran past their %s deadline + 1 s; the longest took %s", res.hung, callDeadline, res.longest)
	}
	if res.ok == 0 {
		t.Error("no call succeeded")
	}
}
