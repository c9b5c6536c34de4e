//go:build faults

package faults_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hypha-go/hypha/examples/calculator/calculator"
	"github.com/hypha-go/hypha/examples/mailer/mailer"
	"github.com/hypha-go/hypha/examples/orders/orders"
	"github.com/hypha-go/hypha/examples/users/users"
	"github.com/hypha-go/hypha/framework"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
)

// The failover test's bounds, generous for a 2-core machine running four
// Erlang nodes.
const (
	// failoverDeadline is every call's deadline: far longer than a
	// failover, which takes about a second.
	failoverDeadline = 10 * time.Second
	// steady is how long the load runs before, between and after faults.
	steady = 2 * time.Second
	// downFor is how long a killed node stays down.
	downFor = 3 * time.Second
	// drainFor bounds the wait for the last events after the load stops.
	drainFor = 60 * time.Second
)

// retry is the publish retry policy of the failover test's apps and client:
// about 10 s of retries, enough for a quorum queue to elect a new leader.
var retry = transport.RetryPolicy{MaxRetries: 12, IntervalStart: 100 * time.Millisecond,
	IntervalStep: 200 * time.Millisecond, IntervalMax: time.Second}

// clusterNodes are scripts/cluster.sh's nodes: name and AMQP port.
var clusterNodes = []struct {
	name string
	port int
}{{"hypha-c1@localhost", 5681}, {"hypha-c2@localhost", 5682}, {"hypha-c3@localhost", 5683}}

// clusterctl runs rabbitmqctl on the first cluster node that answers.
func clusterctl(args ...string) (string, error) {
	var errs []error
	for _, n := range clusterNodes {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		out, err := commandOutput(ctx, "rabbitmqctl", append([]string{"-n", n.name, "-q"}, args...)...)
		cancel()
		if err == nil {
			return out, nil
		}
		errs = append(errs, fmt.Errorf("%s: %v: %s", n.name, err, out))
	}
	return "", errors.Join(errs...)
}

// clusterVHost makes a vhost of its own on the cluster for the test.
func clusterVHost(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	vh := "hypha-failover-" + hex.EncodeToString(b)
	if out, err := clusterctl("add_vhost", vh); err != nil {
		t.Fatalf("add_vhost: %v\n%s", err, out)
	}
	if out, err := clusterctl("set_permissions", "-p", vh, "guest", ".*", ".*", ".*"); err != nil {
		t.Fatalf("set_permissions: %v\n%s", err, out)
	}
	t.Cleanup(func() { _, _ = clusterctl("delete_vhost", vh) })
	return vh
}

// leaderNode is the cluster node (1-3) that leads most of the vhost's
// quorum queues.
func leaderNode(t *testing.T, vh string) int {
	out, err := clusterctl("list_queues", "-p", vh, "--no-table-headers", "name", "leader")
	if err != nil {
		t.Fatalf("list_queues: %v", err)
	}
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			count[f[1]]++
		}
	}
	return busiest(t, count, "queue leaders")
}

// connectedNode is the cluster node (1-3) most of the vhost's connections are on.
func connectedNode(t *testing.T, vh string) int {
	out, err := clusterctl("list_connections", "--no-table-headers", "vhost", "port")
	if err != nil {
		t.Fatalf("list_connections: %v", err)
	}
	count := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == vh {
			for _, n := range clusterNodes {
				if f[1] == fmt.Sprint(n.port) {
					count[n.name]++
				}
			}
		}
	}
	return busiest(t, count, "connections")
}

func busiest(t *testing.T, count map[string]int, what string) int {
	best, bestN := 0, 0
	for i, n := range clusterNodes {
		if count[n.name] > bestN {
			best, bestN = i+1, count[n.name]
		}
	}
	if best == 0 {
		t.Fatalf("no node holds the %s: %v", what, count)
	}
	t.Logf("%s by node: %v", what, count)
	return best
}

// callLog records the outcome of every call of one kind.
type callLog struct {
	name string
	mu   sync.Mutex
	ok   []time.Time // completion times of the calls that succeeded
	fail []string
}

func (c *callLog) record(end time.Time, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.fail = append(c.fail, fmt.Sprintf("+%s %v", end.Format("15:04:05.000"), err))
		return
	}
	c.ok = append(c.ok, end)
}

// longestGap is the longest time between two successes in a row, from
// from to to: how long callers of this kind saw nothing succeed.
func (c *callLog) longestGap(from, to time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	times := append([]time.Time{from}, c.ok...)
	times = append(times, to)
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var gap time.Duration
	for i := 1; i < len(times); i++ {
		gap = max(gap, times[i].Sub(times[i-1]))
	}
	return gap
}

// confirmations counts mailer's send_confirmation runs by order id, from
// its log records.
type confirmations struct {
	slog.Handler
	mu   *sync.Mutex
	byID map[string]int
}

func newConfirmations(next slog.Handler) *confirmations {
	return &confirmations{Handler: next, mu: &sync.Mutex{}, byID: map[string]int{}}
}

func (c *confirmations) Handle(ctx context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "sending confirmation for order") || strings.Contains(r.Message, "already confirmed") {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "order_id" {
				c.mu.Lock()
				c.byID[a.Value.String()]++
				c.mu.Unlock()
				return false
			}
			return true
		})
	}
	return c.Handler.Handle(ctx, r)
}

func (c *confirmations) WithAttrs(attrs []slog.Attr) slog.Handler {
	d := *c
	d.Handler = c.Handler.WithAttrs(attrs)
	return &d
}

func (c *confirmations) WithGroup(name string) slog.Handler {
	d := *c
	d.Handler = c.Handler.WithGroup(name)
	return &d
}

// unknown is the number of orders confirmed that are not among ids.
func (c *confirmations) unknown(ids []string) int {
	known := map[string]bool{}
	for _, id := range ids {
		known[id] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id := range c.byID {
		if !known[id] {
			n++
		}
	}
	return n
}

func (c *confirmations) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byID[id]
}

// TestClusterFailover runs calculator, user_service, orders and mailer on the
// 3-node cluster of scripts/cluster.sh with QUEUE_TYPE quorum, keeps calls
// and events flowing, SIGKILLs the node leading most queues, then the node
// most connections are on, and restarts each. It reports the calls that
// failed (none may: every call here has a deadline longer than the
// failover, and a request whose publish the kill cut short is sent again),
// the events lost (none may be), the duplicates (events handled twice, and
// orders created that their caller never got: create_order run twice), and
// the longest time callers saw no call succeed.
func TestClusterFailover(t *testing.T) {
	startCluster(t)
	// Four idle Erlang nodes slow the broker restarts of the tests that
	// follow on a small machine: the cluster goes when this test is done.
	t.Cleanup(stopCluster)
	vh := clusterVHost(t)
	var uris []string
	for _, n := range clusterNodes {
		uris = append(uris, fmt.Sprintf("amqp://guest:guest@127.0.0.1:%d/%s", n.port, url.PathEscape(vh)))
	}
	list := strings.Join(uris, ",")
	t0 := time.Now()

	var logs syncBuffer
	level := slog.LevelInfo
	if os.Getenv("HYPHA_FAULTS_DEBUG") != "" {
		level = slog.LevelDebug
	}
	base := slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})
	mailed := newConfirmations(base)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("HYPHA_FAULTS_LOG") != "" {
			t.Logf("logs (the test started at %s):\n%s", t0.Format("15:04:05.000"), logs.String())
		}
	})
	settings := map[string]any{
		"AMQP_URI":     list,
		"QUEUE_TYPE":   "quorum",
		"RECONNECT":    map[string]any{"INTERVAL_START": 0.1, "INTERVAL_MAX": 1},
		"HEARTBEAT":    5,
		"GRACE_PERIOD": 5,
		"RPC_TIMEOUT":  failoverDeadline.Seconds(),
		// A quorum queue refuses publishes (basic.nack) until its new
		// leader is elected: retry for a few seconds, not one.
		"RPC_RETRY_POLICY": map[string]any{"MAX_RETRIES": retry.MaxRetries, "INTERVAL_START": retry.IntervalStart.Seconds(),
			"INTERVAL_STEP": retry.IntervalStep.Seconds(), "INTERVAL_MAX": retry.IntervalMax.Seconds()},
	}
	for _, svc := range []struct {
		name string
		opt  framework.Option
		log  slog.Handler
	}{
		{calculator.Name, framework.Service(calculator.Name, calculator.New), base},
		{users.Name, framework.Service(users.Name, users.New), base},
		{orders.Name, framework.Service(orders.Name, orders.New), base},
		{mailer.Name, framework.Service(mailer.Name, mailer.New), mailed},
	} {
		app, err := framework.New(framework.ConfigValues(settings), svc.opt,
			framework.Logger(slog.New(svc.log).With("app", svc.name)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		err = app.Start(ctx)
		cancel()
		if err != nil {
			t.Fatalf("starting %s: %v", svc.name, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := app.Stop(ctx); err != nil {
				t.Errorf("stopping %s: %v", svc.name, err)
			}
		})
	}

	// The client connects with the apps' settings, as a program reading
	// their config.yaml would.
	client, err := openClient(context.Background(), t, settings, slog.New(base).With("app", "client"))
	if err != nil {
		t.Fatal(err)
	}

	add := &callLog{name: "calculator.add (idempotent)"}
	score := &callLog{name: "user_service.calculate_user_score (idempotent)"}
	order := &callLog{name: "orders.create_order (not idempotent)"}
	var ordersMu sync.Mutex
	var placed []string // ids of the orders create_order returned

	stop := make(chan struct{})
	var wg sync.WaitGroup
	loop := func(c *callLog, call func(ctx context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), failoverDeadline)
				err := call(ctx)
				cancel()
				c.record(time.Now(), err)
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	for range 2 {
		loop(add, func(ctx context.Context) error {
			got, err := rpc.Call[float64](ctx, client.Proxy(calculator.Name).Idempotent(), "add", calculator.Operands{A: 2, B: 3})
			if err == nil && got != 5 {
				err = fmt.Errorf("add(2, 3) = %v", got)
			}
			return err
		})
	}
	loop(score, func(ctx context.Context) error {
		_, err := rpc.Call[users.Score](ctx, client.Proxy(users.Name).Idempotent(), "calculate_user_score",
			users.ScoreIn{UserID: 1, BaseScore: 2, Multiplier: 3})
		return err
	})
	loop(order, func(ctx context.Context) error {
		o, err := rpc.Call[orders.Order](ctx, client.Proxy(orders.Name), "create_order", orders.CreateIn{Item: "socks", Quantity: 1})
		if err == nil {
			ordersMu.Lock()
			placed = append(placed, o.ID)
			ordersMu.Unlock()
		}
		return err
	})
	var faultsTo time.Time // when the load stopped
	stopLoad := sync.OnceFunc(func() { faultsTo = time.Now(); close(stop); wg.Wait() })
	t.Cleanup(stopLoad)

	faultsFrom := time.Now()
	time.Sleep(steady)
	for _, f := range []struct {
		what string
		node func() int
	}{
		{"the node leading most queues", func() int { return leaderNode(t, vh) }},
		{"the node most connections are on", func() int { return connectedNode(t, vh) }},
	} {
		n := f.node()
		t.Logf("+%s SIGKILL %s, %s", time.Since(t0).Round(time.Millisecond), clusterNodes[n-1].name, f.what)
		if out, err := cluster(time.Minute, "kill", fmt.Sprint(n)); err != nil {
			t.Fatalf("killing node %d: %v\n%s", n, err, out)
		}
		time.Sleep(downFor)
		if out, err := cluster(3*time.Minute, "boot", fmt.Sprint(n)); err != nil {
			t.Fatalf("restarting node %d: %v\n%s", n, err, out)
		}
		t.Logf("+%s %s back", time.Since(t0).Round(time.Millisecond), clusterNodes[n-1].name)
		time.Sleep(steady)
	}
	stopLoad()

	// Every order placed must be confirmed by mailer.
	ordersMu.Lock()
	ids := append([]string(nil), placed...)
	ordersMu.Unlock()
	deadline := time.Now().Add(drainFor)
	var lost []string
	for {
		lost = lost[:0]
		for _, id := range ids {
			if mailed.count(id) == 0 {
				lost = append(lost, id)
			}
		}
		if len(lost) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	dups := 0
	for _, id := range ids {
		dups += max(0, mailed.count(id)-1)
	}
	// Every order_created event comes from a create_order run: an order
	// mailer confirmed that no caller got is a second run of a call.
	extra := mailed.unknown(ids)

	var report strings.Builder
	fmt.Fprintf(&report, "failover on 3 nodes, QUEUE_TYPE quorum, %s of load:\n", faultsTo.Sub(faultsFrom).Round(time.Second))
	for _, c := range []*callLog{add, score, order} {
		fmt.Fprintf(&report, "  %-48s %5d ok, %d failed, longest without a success %s\n", c.name, len(c.ok), len(c.fail),
			c.longestGap(faultsFrom, faultsTo).Round(10*time.Millisecond))
	}
	all := &callLog{}
	for _, c := range []*callLog{add, score, order} {
		all.ok = append(all.ok, c.ok...)
	}
	fmt.Fprintf(&report, "  longest time in which no call of any kind succeeded: %s\n",
		all.longestGap(faultsFrom, faultsTo).Round(10*time.Millisecond))
	fmt.Fprintf(&report, "  events: %d order_created dispatched, %d lost, %d duplicates\n", len(ids), len(lost), dups)
	fmt.Fprintf(&report, "  create_order runs whose order no caller got (a call run twice): %d", extra)
	t.Log(report.String())
	for _, c := range []*callLog{add, score, order} {
		if len(c.fail) > 0 {
			t.Errorf("%s: %d calls failed, first: %s", c.name, len(c.fail), c.fail[0])
		}
		if len(c.ok) == 0 {
			t.Errorf("%s: no call succeeded", c.name)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d order_created events never reached mailer, e.g. %s", len(lost), len(ids), lost[0])
	}
}

// commandOutput runs name with args, bounded by ctx, and returns its
// combined output.
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), ctx.Err())
	}
	return string(out), err
}
