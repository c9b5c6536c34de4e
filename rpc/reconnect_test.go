package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/dial"
)

// waitAnswer calls add until it answers, for at most d.
func waitAnswer(t *testing.T, p *rpc.Proxy, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < d {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := rpc.Call[float64](ctx, p, "add", rpc.Args(2, 2))
		cancel()
		if err == nil && got == 4 {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no answer within %v", d)
	return 0
}

func TestCallsSurviveConnectionLoss(t *testing.T) {
	var runs atomic.Int64
	started := make(chan struct{}, 4)
	// slow_double runs until every connection has dropped under it.
	dropped := make(chan struct{})
	var dropOnce sync.Once
	dropDone := func() { dropOnce.Do(func() { close(dropped) }) }
	t.Cleanup(dropDone)
	serve(t, "math_reconnect", 4, func(r *entrypoint.Registry) {
		mathService(nil)(r)
		rpc.Handle(r, "slow_double", func(_ context.Context, in struct {
			X int `json:"x"`
		}) (int, error) {
			runs.Add(1)
			started <- struct{}{}
			<-dropped
			return 2 * in.X, nil
		})
	})
	// The client's log says when a reply came that no call waited for: a
	// second reply to the in-flight call would show there.
	var logs logBuffer
	var inflightID atomic.Value
	c, err := hyphatest.Client(t, context.Background(), testbroker.URI(t), rpc.Config{Timeout: 10 * time.Second, Logger: logs.logger(),
		Interceptors: []entrypoint.Interceptor{func(ctx context.Context, call *entrypoint.Call, next entrypoint.Next) error {
			if call.Name == "slow_double" {
				inflightID.Store(spec(call).CorrelationID)
			}
			return next(ctx)
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := c.Proxy("math_reconnect")
	waitAnswer(t, p, 5*time.Second)

	// A call in flight when every connection drops: its worker finishes
	// after the drop, and either its reply (the redelivered copy then
	// dropped as a duplicate) or the copy's reaches the caller, exactly once.
	inflight := p.CallAsync(context.Background(), "slow_double", map[string]any{"x": 21})
	select {
	case <-started: // the call is running now
	case <-time.After(waitBound):
		t.Fatal("slow_double did not start")
	}
	testbroker.CloseConnections(t)
	dropDone()
	// A call made during the outage waits for the reconnect.
	during := p.CallAsync(context.Background(), "add", rpc.Args(40, 2))

	var got int
	if err := inflight.Result(&got); err != nil || got != 42 {
		t.Fatalf("in-flight call: %v, %v", got, err)
	}
	var sum float64
	if err := during.Result(&sum); err != nil || sum != 42 {
		t.Fatalf("call during the outage: %v, %v", sum, err)
	}
	if took := waitAnswer(t, p, 5*time.Second); took > time.Second {
		t.Errorf("answering again took %v", took)
	}
	// Once the request is settled (its copy, if any, run or dropped) and a
	// later call has come back through the same reply queue, any second
	// reply would have arrived.
	waitQueueEmpty(t, rpc.QueueName("math_reconnect"))
	waitAnswer(t, p, 5*time.Second)
	corr, _ := inflightID.Load().(string)
	if corr == "" {
		t.Fatal("the client interceptor saw no slow_double call")
	}
	if extra := logs.count(t, "hypha: dropping reply nobody waits for", "correlation_id", corr); extra != 0 {
		t.Fatalf("the in-flight call got %d replies, want exactly 1 (slow_double ran %d times)", 1+extra, runs.Load())
	}
	// Executions are at least once: the run the drop cut short, and its
	// copy only when that run's reply may have been lost; never more.
	if n := runs.Load(); n < 1 || n > 2 {
		t.Fatalf("slow_double ran %d times, want once, or twice when the first run's reply may have been lost", n)
	}

	// Twice more, with calls running all along: every call gets its own
	// right answer, none fails. add is safe to run twice, so a request whose
	// confirm a drop swallowed is sent again rather than waited on.
	if calls, wrong := callAcrossDrops(t, p.Idempotent()); wrong != 0 {
		t.Fatalf("%d of %d calls failed or got a wrong answer across the drops", wrong, calls)
	}
}

// callAcrossDrops calls add through p from four goroutines while every
// connection of the test's vhost is closed twice, and returns how many
// calls were made and how many failed or got a wrong answer.
func callAcrossDrops(t *testing.T, p *rpc.Proxy) (calls, wrong int64) {
	t.Helper()
	var wg sync.WaitGroup
	var made, bad atomic.Int64
	stop := make(chan struct{})
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				got, err := rpc.Call[float64](ctx, p, "add", rpc.Args(w*1000, i))
				cancel()
				made.Add(1)
				if err != nil || got != float64(w*1000+i) {
					t.Logf("worker %d call %d: %v, %v", w, i, got, err)
					bad.Add(1)
				}
			}
		})
	}
	// Each drop comes once calls are being answered again since the one
	// before, and the calls go on until some are answered after the second.
	answered := func() int64 { return made.Load() - bad.Load() }
	for drop := range 3 {
		since := answered()
		eventually(t, "calls answered between the drops", func() bool { return answered() >= since+20 })
		if drop < 2 {
			testbroker.CloseConnections(t)
		}
	}
	close(stop)
	wg.Wait()
	return made.Load(), bad.Load()
}

// count is the number of records with message msg whose attribute key is
// value.
func (b *logBuffer) count(t *testing.T, msg, key string, value any) int {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for line := range strings.Lines(b.buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg && rec[key] == value {
			n++
		}
	}
	return n
}

func TestTimeoutDuringOutageFailsAtDeadline(t *testing.T) {
	started := make(chan struct{}, 2)
	serve(t, "math_outage", 2, func(r *entrypoint.Registry) {
		rpc.Handle(r, "sleep", func(_ context.Context, in struct {
			MS int `json:"ms"`
		}) (string, error) {
			started <- struct{}{}
			time.Sleep(time.Duration(in.MS) * time.Millisecond)
			return "slept", nil
		})
	})
	p := newClient(t, 10*time.Second).Proxy("math_outage")
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	start := time.Now()
	reply := p.CallAsync(ctx, "sleep", map[string]any{"ms": 5000})
	ended := make(chan time.Duration, 1)
	go func() {
		<-reply.Done()
		ended <- time.Since(start)
	}()
	select {
	case <-started: // the call is running when the connections drop
	case <-reply.Done():
	}
	testbroker.CloseConnections(t) // rabbitmqctl may take longer than the deadline
	err := reply.Result(nil)
	took := <-ended
	if !errors.Is(err, rpc.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// At its deadline, not when the reply comes 5 s later: generous for
	// -race on a loaded machine.
	if took > 3*time.Second {
		t.Fatalf("failed after %v, want at its 700ms deadline", took)
	}
}

func TestChannelErrorClosesOnlyThatChannel(t *testing.T) {
	serve(t, "math_chanerr", 2, mathService(nil))
	broker, err := dial.Dial(context.Background(), testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	client := rpc.NewClient(broker, rpc.Config{Timeout: 5 * time.Second})
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	err = broker.Publish(ctx, transport.Publishing{Exchange: "no-such-exchange", RoutingKey: "x", Message: transport.Message{Body: []byte("{}")}})
	if err == nil || errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Fatalf("publish to a missing exchange: err = %v after %v, want a prompt channel error", err, time.Since(start))
	}
	// The same connection goes on: its reply consumer and a new publish channel work.
	for i := range 3 {
		got, err := rpc.Call[float64](context.Background(), client.Proxy("math_chanerr"), "add", rpc.Args(i, 1))
		if err != nil || got != float64(i+1) {
			t.Fatalf("call after the channel error: %v, %v", got, err)
		}
	}
}

func TestCloseWhileBrokerUnreachable(t *testing.T) {
	b, err := dial.Dial(context.Background(), "amqp://guest:guest@127.0.0.1:1/", dial.Lazy())
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan error, 1)
	go func() { connected <- b.Connect(context.Background()) }()
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-connected:
		if err == nil {
			t.Fatal("Connect succeeded against a closed port")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Connect still waiting 2s after Close")
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Close took %v while the broker was unreachable", took)
	}
	err = b.Publish(context.Background(), transport.Publishing{Exchange: "x"})
	if !errors.Is(err, transport.ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}

func TestConnectFailsAtOnceOnBadCredentials(t *testing.T) {
	testbroker.URI(t)
	start := time.Now()
	_, err := dial.Dial(context.Background(), "amqp://guest:wrong@127.0.0.1:5672/")
	// RabbitMQ takes about 3 s to refuse a login (more on a loaded machine);
	// a dial that retried would keep going for the whole reconnect budget.
	if err == nil || time.Since(start) > 15*time.Second {
		t.Fatalf("err = %v after %v, want a prompt refusal", err, time.Since(start))
	}
}
