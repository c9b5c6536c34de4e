package rpc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/hyphatest"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/telemetry"
	"github.com/hypha-go/hypha/transport/dial"
)

// The benchmarks time request/reply round trips of a tiny add call over the
// real broker, on the package's test vhost:
//
//	go test -run '^$' -bench 'BenchmarkCall' -benchtime 2s ./rpc/
//
// Every benchmark measures the raw amqp091-go baseline in the same run and
// prints, once its sub-benchmarks are done, a table of ns/op, calls/s and the
// ratio of each variant to the baseline.

const (
	benchBaseline = "raw_amqp091"
	benchWorkers  = 10 // server prefetch on both sides: Hypha's pool size, the baseline's Qos
	benchInFlight = 16 // concurrent calls in BenchmarkCallParallel
)

// benchVariant is one way of making the call; setup returns the function that
// makes one call, and registers its teardown with tb.Cleanup.
type benchVariant struct {
	name  string
	setup func(tb testing.TB, service string) func(ctx context.Context) error
}

func BenchmarkCall(b *testing.B) {
	benchTable(b, "sequential round trips", false, []benchVariant{
		{benchBaseline, baselineCaller},
		{"hypha", hyphaCaller(nil)},
		{"hypha_tracing_noop", hyphaCaller(noopTracing)},
		{"hypha_tracing_sdk", hyphaCaller(sdkTracing)},
		{"hypha_metrics", hyphaCaller(sdkMetrics)},
	})
}

func BenchmarkCallParallel(b *testing.B) {
	benchTable(b, fmt.Sprintf("%d calls in flight", benchInFlight), true, []benchVariant{
		{benchBaseline, baselineCaller},
		{"hypha", hyphaCaller(nil)},
	})
}

// benchTable runs each variant as a sub-benchmark and prints their figures.
func benchTable(b *testing.B, title string, parallel bool, variants []benchVariant) {
	testbroker.URI(b) // skip (or fail under CI) here, not in every sub-benchmark
	nsPerOp := map[string]float64{}
	var ran []string
	for _, v := range variants {
		ok := b.Run(v.name, func(b *testing.B) {
			service := "bench_" + v.name
			if parallel {
				service += "_parallel"
			}
			call := v.setup(b, service)
			ctx := context.Background()
			if err := call(ctx); err != nil { // warm up: channels open, queues bound
				b.Fatal("warm-up call:", err)
			}
			b.ResetTimer()
			var err error
			if parallel {
				err = benchConcurrently(b.N, benchInFlight, func() error { return call(ctx) })
			} else {
				for i := 0; i < b.N && err == nil; i++ {
					err = call(ctx)
				}
			}
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			nsPerOp[v.name] = ns // the last (largest) run overwrites the calibration runs
			b.ReportMetric(1e9/ns, "calls/s")
		})
		if ok {
			ran = append(ran, v.name)
		}
	}
	if len(ran) == 0 {
		return
	}
	base, haveBase := nsPerOp[benchBaseline]
	fmt.Printf("\n%s: %s, GOMAXPROCS=%d\n", b.Name(), title, runtime.GOMAXPROCS(0))
	fmt.Printf("%-20s %12s %10s  %s\n", "name", "ns/op", "calls/s", "vs "+benchBaseline)
	for _, name := range ran {
		ns, ok := nsPerOp[name]
		if !ok {
			fmt.Printf("%-20s %12s %10s\n", name, "-", "-")
			continue
		}
		ratio := "(baseline not run)"
		if haveBase {
			ratio = fmt.Sprintf("%.2fx raw", ns/base)
		}
		fmt.Printf("%-20s %12.0f %10.0f  %s\n", name, ns, 1e9/ns, ratio)
	}
	fmt.Println()
}

// benchConcurrently makes n calls from inFlight goroutines and returns the
// first error.
func benchConcurrently(n, inFlight int, call func() error) error {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				if err := call(); err != nil {
					errOnce.Do(func() { firstErr = err })
					next.Store(int64(n)) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// --- Hypha ---

// benchTelemetry returns the interceptors of one telemetry set-up, with its
// teardown registered on tb.
type benchTelemetry func(tb testing.TB) ([]entrypoint.Interceptor, []entrypoint.Interceptor)

func noopTracing(testing.TB) ([]entrypoint.Interceptor, []entrypoint.Interceptor) {
	tp := noop.NewTracerProvider()
	prop := propagation.TraceContext{}
	return []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}, []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}
}

func sdkTracing(tb testing.TB) ([]entrypoint.Interceptor, []entrypoint.Interceptor) {
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(tracetest.NewNoopExporter()),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
	)
	tb.Cleanup(func() {
		if err := tp.Shutdown(context.Background()); err != nil {
			tb.Error("tracer provider shutdown:", err)
		}
	})
	prop := propagation.TraceContext{}
	return []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}, []entrypoint.Interceptor{telemetry.Tracing(tp, prop)}
}

func sdkMetrics(tb testing.TB) ([]entrypoint.Interceptor, []entrypoint.Interceptor) {
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() {
		if err := mp.Shutdown(context.Background()); err != nil {
			tb.Error("meter provider shutdown:", err)
		}
	})
	metrics, err := telemetry.Metrics(mp)
	if err != nil {
		tb.Fatal(err)
	}
	return []entrypoint.Interceptor{metrics}, []entrypoint.Interceptor{metrics}
}

// hyphaCaller serves add with the rpc server and calls it through a standalone
// client, with the interceptors setUp returns (none when nil).
func hyphaCaller(setUp benchTelemetry) func(tb testing.TB, service string) func(ctx context.Context) error {
	return func(tb testing.TB, service string) func(ctx context.Context) error {
		var (
			serverInts []entrypoint.Interceptor
			clientInts []entrypoint.Interceptor
		)
		if setUp != nil {
			serverInts, clientInts = setUp(tb)
		}
		benchServe(tb, service, serverInts)
		c, err := hyphatest.Client(tb, context.Background(), testbroker.URI(tb), rpc.Config{Timeout: 10 * time.Second, Interceptors: clientInts})
		if err != nil {
			tb.Fatal(err)
		}
		proxy := c.Proxy(service)
		return func(ctx context.Context) error {
			var sum float64
			if err := proxy.Call(ctx, "add", rpc.Args(1, 2), &sum); err != nil {
				return err
			}
			if sum != 3 {
				return fmt.Errorf("add(1, 2) = %v", sum)
			}
			return nil
		}
	}
}

// benchServe runs a service with just add, on a connection of its own, until
// tb's cleanup.
func benchServe(tb testing.TB, service string, interceptors []entrypoint.Interceptor) {
	tb.Helper()
	ctx := context.Background()
	broker, err := dial.Dial(ctx, testbroker.URI(tb), dial.Name(service))
	if err != nil {
		tb.Fatal(err)
	}
	reg := entrypoint.NewRegistry(service)
	rpc.Handle(reg, "add", func(_ context.Context, in pair) (float64, error) { return in.A + in.B, nil })
	if err := reg.Err(); err != nil {
		broker.Close()
		tb.Fatal(err)
	}
	srv := rpc.NewServer(broker, reg, rpc.ServerConfig{
		Service: service, Pool: worker.NewPool(benchWorkers), Interceptors: interceptors,
	})
	if err := srv.Start(ctx); err != nil {
		broker.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			tb.Error("stop:", err)
		}
		broker.Close()
	})
}

// --- the raw amqp091-go baseline ---
//
// What a hand-written RPC over amqp091-go needs, doing the broker work Hypha
// does: a durable request queue and persistent messages, a mandatory request,
// publisher confirms awaited for the request and for the reply, and manual
// acks, the request's after its reply is confirmed. It leaves out what
// is Hypha's own: the topic exchange (requests go to the queue and replies to
// reply_to through the default exchange), headers (call-id stack, deadline,
// trace context), per-message TTL and the interceptor chain.

type baselineRequest struct {
	Args   []float64      `json:"args"`
	Kwargs map[string]any `json:"kwargs"`
}

type baselineReply struct {
	Result any `json:"result"`
	Error  any `json:"error"`
}

// baselineCaller serves add with baselineServe and returns a client's call.
func baselineCaller(tb testing.TB, service string) func(ctx context.Context) error {
	queue := "rpc-" + service
	baselineServe(tb, queue)
	c := baselineDial(tb, queue)
	body, err := json.Marshal(baselineRequest{Args: []float64{1, 2}, Kwargs: map[string]any{}})
	if err != nil {
		tb.Fatal(err)
	}
	return func(ctx context.Context) error {
		reply, err := c.call(ctx, body)
		if err != nil {
			return err
		}
		var rep struct {
			Result float64         `json:"result"`
			Error  json.RawMessage `json:"error"`
		}
		if err := json.Unmarshal(reply, &rep); err != nil {
			return err
		}
		if rep.Result != 3 || string(rep.Error) != "null" {
			return fmt.Errorf("add(1, 2) replied %s", reply)
		}
		return nil
	}
}

func baselineConn(tb testing.TB) *amqp091.Connection {
	tb.Helper()
	conn, err := amqp091.Dial(testbroker.URI(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return conn
}

// baselineServe consumes queue (prefetch benchWorkers, manual ack), answering
// each request in a goroutine of its own, until tb's cleanup.
func baselineServe(tb testing.TB, queue string) {
	tb.Helper()
	conn := baselineConn(tb)
	fail := func(err error) {
		conn.Close()
		tb.Fatal(err)
	}
	in, err := conn.Channel()
	if err != nil {
		fail(err)
	}
	if _, err := in.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		fail(err)
	}
	if err := in.Qos(benchWorkers, 0, false); err != nil {
		fail(err)
	}
	deliveries, err := in.Consume(queue, "bench-server", false, false, false, false, nil)
	if err != nil {
		fail(err)
	}
	out, err := conn.Channel()
	if err != nil {
		fail(err)
	}
	if err := out.Confirm(false); err != nil {
		fail(err)
	}

	var handlers sync.WaitGroup
	answer := func(d amqp091.Delivery) {
		defer handlers.Done()
		var req baselineRequest
		var rep baselineReply
		if err := json.Unmarshal(d.Body, &req); err != nil || len(req.Args) != 2 {
			rep.Error = fmt.Sprintf("bad request: %v", err)
		} else {
			rep.Result = req.Args[0] + req.Args[1]
		}
		body, _ := json.Marshal(rep)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		confirm, err := out.PublishWithDeferredConfirmWithContext(ctx, "", d.ReplyTo, false, false, amqp091.Publishing{
			ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: amqp091.Persistent,
			CorrelationId: d.CorrelationId, Body: body,
		})
		if err == nil {
			_, err = confirm.WaitContext(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "baseline server: reply:", err)
		}
		_ = d.Ack(false)
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for d := range deliveries {
			handlers.Add(1)
			go answer(d)
		}
	}()
	tb.Cleanup(func() {
		if err := in.Cancel("bench-server", false); err != nil {
			tb.Error("baseline server: cancel:", err)
		}
		<-loopDone // deliveries is closed once the cancel is done
		handlers.Wait()
		if _, err := in.QueueDelete(queue, false, false, false); err != nil {
			tb.Error("baseline server: delete queue:", err)
		}
		conn.Close()
	})
}

// baselineClient publishes requests and collects replies on an exclusive
// queue of its own, matching them to the waiting call by correlation id.
type baselineClient struct {
	out     *amqp091.Channel
	queue   string // the request queue
	replyTo string
	ids     atomic.Uint64

	mu      sync.Mutex
	pending map[string]chan []byte
}

func baselineDial(tb testing.TB, queue string) *baselineClient {
	tb.Helper()
	conn := baselineConn(tb)
	fail := func(err error) {
		conn.Close()
		tb.Fatal(err)
	}
	in, err := conn.Channel()
	if err != nil {
		fail(err)
	}
	q, err := in.QueueDeclare("", true, false, true, false, nil) // durable, as Hypha's reply queue
	if err != nil {
		fail(err)
	}
	if err := in.Qos(256, 0, false); err != nil { // Hypha's reply prefetch
		fail(err)
	}
	replies, err := in.Consume(q.Name, "bench-client", false, true, false, false, nil)
	if err != nil {
		fail(err)
	}
	out, err := conn.Channel()
	if err != nil {
		fail(err)
	}
	if err := out.Confirm(false); err != nil {
		fail(err)
	}
	c := &baselineClient{out: out, queue: queue, replyTo: q.Name, pending: map[string]chan []byte{}}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for d := range replies {
			_ = d.Ack(false)
			c.mu.Lock()
			ch, ok := c.pending[d.CorrelationId]
			delete(c.pending, d.CorrelationId)
			c.mu.Unlock()
			if ok {
				ch <- d.Body
			}
		}
	}()
	tb.Cleanup(func() {
		conn.Close() // closes replies; the exclusive queue goes with the connection
		<-loopDone
	})
	return c
}

func (c *baselineClient) call(ctx context.Context, body []byte) ([]byte, error) {
	id := strconv.FormatUint(c.ids.Add(1), 10)
	reply := make(chan []byte, 1)
	c.mu.Lock()
	c.pending[id] = reply
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	confirm, err := c.out.PublishWithDeferredConfirmWithContext(ctx, "", c.queue, true, false, amqp091.Publishing{
		ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: amqp091.Persistent,
		CorrelationId: id, ReplyTo: c.replyTo, Body: body,
	})
	if err != nil {
		return nil, err
	}
	acked, err := confirm.WaitContext(ctx)
	if err != nil {
		return nil, err
	}
	if !acked {
		return nil, errors.New("baseline client: request nacked")
	}
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, errors.New("baseline client: no reply within 10s")
	}
}
