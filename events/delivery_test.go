package events_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/events"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/internal/worker"
	"github.com/hypha-go/hypha/transport/dial"
)

// seq is a payload with a unique id, for counting deliveries per event.
type seq struct {
	ID int `json:"id"`
}

// startService runs one instance of service's event handlers on a connection
// of its own, like handle, but returns a stop func (idempotent, also run when
// the test ends) so a test can take the instance down and bring up another.
// restores, when not nil, counts the connection's reconnects.
func startService(t *testing.T, service string, maxRetries, poolSize int, restores *atomic.Int32, register func(r *entrypoint.Registry)) (stop func()) {
	t.Helper()
	opts := []dial.Option{dial.Name(service + "-test")}
	if restores != nil {
		opts = append(opts, dial.OnRestore(func() { restores.Add(1) }))
	}
	return startServer(t, opts, events.ServerConfig{Service: service, Pool: worker.NewPool(poolSize),
		MaxRetries: maxRetries, ParentCallsTracked: 10}, register)
}

// startServer runs an events server configured by cfg on a connection of
// its own made with opts; see startService.
func startServer(t *testing.T, opts []dial.Option, cfg events.ServerConfig, register func(r *entrypoint.Registry)) (stop func()) {
	t.Helper()
	service := cfg.Service
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := dial.Dial(ctx, testbroker.URI(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	r := entrypoint.NewRegistry(service)
	register(r)
	if err := r.Err(); err != nil {
		b.Close()
		t.Fatal(err)
	}
	srv := events.NewServer(b, r, cfg)
	if err := srv.Start(ctx); err != nil {
		b.Close()
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Stop(ctx); err != nil {
				t.Logf("stopping %s: %v", service, err)
			}
			b.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitFor polls cond every 20 ms until it holds or d passes; it reports
// whether cond held.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitSettled waits up to d until no handler queue of source's events (its
// dead-letter queues aside, which keep what they hold) has a message ready
// or unacknowledged: every delivery has then been handled and settled
// (handlers record before the ack), and none is left to come.
func waitSettled(t *testing.T, source string, d time.Duration) {
	t.Helper()
	var out string
	settled := waitFor(d, func() bool {
		var err error
		out, err = testbroker.Rabbitmqctl("list_queues", "-q", "--no-table-headers", "-p", testbroker.VHost(t),
			"name", "messages_ready", "messages_unacknowledged")
		if err != nil {
			t.Fatalf("rabbitmqctl list_queues: %v\n%s", err, out)
		}
		for line := range strings.Lines(out) {
			f := strings.Fields(line)
			if len(f) != 3 || !strings.HasPrefix(f[0], "evt-"+source+"-") || strings.HasSuffix(f[0], ".dlq") {
				continue
			}
			if f[1] != "0" || f[2] != "0" {
				return false
			}
		}
		return true
	})
	if !settled {
		t.Fatalf("queues not settled within %v:\n%s", d, out)
	}
}

// idCounter records how often each id was handled.
type idCounter struct {
	mu  sync.Mutex
	ids map[int]int
}

func newIDCounter() *idCounter { return &idCounter{ids: map[int]int{}} }

func (c *idCounter) add(id int) {
	c.mu.Lock()
	c.ids[id]++
	c.mu.Unlock()
}

// stats returns how many distinct ids were seen, how many deliveries there
// were in all, and how many of them were duplicates.
func (c *idCounter) stats() (unique, deliveries, duplicates int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.ids {
		unique++
		deliveries += n
		duplicates += n - 1
	}
	return unique, deliveries, duplicates
}

// missing lists (at most 10 of) the ids in [0, n) never handled.
func (c *idCounter) missing(n int) []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for id := range n {
		if c.ids[id] == 0 {
			out = append(out, id)
			if len(out) == 10 {
				break
			}
		}
	}
	return out
}

// firstError keeps the first error of many goroutines.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// queueDepth reads a queue's ready-message count with a passive declare.
func queueDepth(t *testing.T, queue string) (int, error) {
	t.Helper()
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	return q.Messages, nil
}

func TestHandlerTypesFanOut(t *testing.T) {
	const (
		source    = "fan_src"
		eventType = "tick"
		n         = 20
		instances = 2
	)
	services := []string{"svc_a", "svc_b"}
	type key struct {
		svc  string
		inst int
		h    string
	}
	var mu sync.Mutex
	counts := map[key]int{}
	perEvent := map[string]map[int]int{} // "svc_a.pool" / "single" -> id -> deliveries
	record := func(k key, id int) {
		mu.Lock()
		defer mu.Unlock()
		counts[k]++
		group := k.svc + "." + k.h
		if k.h == "single" {
			group = "single"
		}
		if perEvent[group] == nil {
			perEvent[group] = map[int]int{}
		}
		perEvent[group][id]++
	}
	for _, svc := range services {
		for inst := range instances {
			handle(t, svc, 0, func(r *entrypoint.Registry) {
				on := func(h string) func(context.Context, seq) error {
					k := key{svc, inst, h}
					return func(_ context.Context, e seq) error { record(k, e.ID); return nil }
				}
				events.Handle(r, "pool", source, eventType, on("pool"), events.Type(events.ServicePool))
				events.Handle(r, "single", source, eventType, on("single"), events.Type(events.Singleton))
				events.Handle(r, "bcast", source, eventType, on("bcast"),
					events.Type(events.Broadcast), events.UnreliableDelivery())
			})
		}
	}
	d := dispatcher(t, source)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for id := range n {
		if err := d.Dispatch(ctx, eventType, seq{ID: id}); err != nil {
			t.Fatal(err)
		}
	}

	// totals: per service pool, singleton overall, broadcast per instance.
	complete := func() bool {
		mu.Lock()
		defer mu.Unlock()
		single := 0
		for _, svc := range services {
			pool := 0
			for inst := range instances {
				pool += counts[key{svc, inst, "pool"}]
				single += counts[key{svc, inst, "single"}]
				if counts[key{svc, inst, "bcast"}] < n {
					return false
				}
			}
			if pool < n {
				return false
			}
		}
		return single >= n
	}
	if !waitFor(10*time.Second, complete) {
		t.Error("not every handler got its events within 10 s")
	}
	waitSettled(t, source, 10*time.Second) // any extra delivery has been counted by now

	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for k, c := range counts {
		lines = append(lines, fmt.Sprintf("%s/%d/%s=%d", k.svc, k.inst, k.h, c))
	}
	sort.Strings(lines)
	t.Logf("counts: %s", strings.Join(lines, " "))
	single := 0
	for _, svc := range services {
		pool := 0
		for inst := range instances {
			pool += counts[key{svc, inst, "pool"}]
			single += counts[key{svc, inst, "single"}]
			if got := counts[key{svc, inst, "bcast"}]; got != n {
				t.Errorf("%s instance %d broadcast handler got %d events, want %d", svc, inst, got, n)
			}
		}
		if pool != n {
			t.Errorf("%s pool handlers got %d events in all, want %d", svc, pool, n)
		}
		for id := range n {
			if c := perEvent[svc+".pool"][id]; c != 1 {
				t.Errorf("%s pool: event %d handled %d times, want once", svc, id, c)
			}
		}
	}
	if single != n {
		t.Errorf("singleton handlers got %d events in all (across every service), want %d", single, n)
	}
	for id := range n {
		if c := perEvent["single"][id]; c != 1 {
			t.Errorf("singleton: event %d handled %d times, want once", id, c)
		}
	}
}

func TestReliableDeliveryWhileHandlerDown(t *testing.T) {
	const (
		service   = "store_down"
		source    = "orders_down"
		eventType = "placed"
		n         = 1000
		workers   = 4
	)
	got := newIDCounter()
	register := func(r *entrypoint.Registry) {
		events.Handle(r, "on_placed", source, eventType, func(_ context.Context, e seq) error {
			got.add(e.ID)
			return nil
		})
	}
	// Deployed once: its queue is declared (durable, reliable delivery by
	// default), then the service goes down.
	startService(t, service, 0, 10, nil, register)()
	queue := "evt-" + source + "-" + eventType + "--" + service + ".on_placed"
	if _, err := queueDepth(t, queue); err != nil {
		t.Fatalf("the handler's queue %s is gone once the service stopped: %v", queue, err)
	}

	d := dispatcher(t, source)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr firstError
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := d.Dispatch(ctx, eventType, seq{ID: i}); err != nil {
					failed.Add(1)
					firstErr.set(err)
				}
			}
		}()
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d dispatches failed; first: %v", f, firstErr.get())
	}
	depth, err := queueDepth(t, queue)
	if err != nil || depth != n {
		t.Errorf("while the service is down its queue holds %d events (%v), want %d", depth, err, n)
	}
	if u, _, _ := got.stats(); u != 0 {
		t.Fatalf("%d events handled while the service was down", u)
	}

	startService(t, service, 0, 10, nil, register)
	if !waitFor(20*time.Second, func() bool { u, _, _ := got.stats(); return u == n }) {
		u, _, _ := got.stats()
		t.Errorf("after the restart %d of %d events arrived within 20 s; missing e.g. %v", u, n, got.missing(n))
	}
	waitSettled(t, source, 10*time.Second) // any duplicate has been counted by now
	unique, deliveries, dups := got.stats()
	t.Logf("handler down: dispatched=%d unique=%d deliveries=%d duplicates=%d", n, unique, deliveries, dups)
	if dups != 0 {
		t.Errorf("%d duplicate deliveries with no connection lost", dups)
	}
}

func TestDispatchThroughConnectionDrops(t *testing.T) {
	const (
		service   = "recorder_drop"
		source    = "feeder_drop"
		eventType = "item"
		workers   = 4
		perWorker = 2500
		total     = workers * perWorker
	)
	start := time.Now()
	got := newIDCounter()
	var handlerRestores, dispatcherRestores atomic.Int32
	startService(t, service, 0, 10, &handlerRestores, func(r *entrypoint.Registry) {
		events.Handle(r, "record", source, eventType, func(_ context.Context, e seq) error {
			got.add(e.ID)
			return nil
		})
	})

	var dispatched, failed atomic.Int32
	var restoredMu sync.Mutex
	var restoredAt []int32 // dispatched when the dispatcher's connection came back
	restoredAtCopy := func() []int32 {
		restoredMu.Lock()
		defer restoredMu.Unlock()
		return append([]int32(nil), restoredAt...)
	}
	b, err := dial.Dial(context.Background(), testbroker.URI(t), dial.Name(source+"-dispatcher"),
		dial.OnRestore(func() {
			dispatcherRestores.Add(1)
			restoredMu.Lock()
			restoredAt = append(restoredAt, dispatched.Load())
			restoredMu.Unlock()
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	d := events.NewDispatcher(b, events.DispatcherConfig{Source: source, PublishTimeout: 30 * time.Second})

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() }) // before the dispatcher's connection closes
	var firstErr firstError
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				if err := d.Dispatch(ctx, eventType, seq{ID: w*perWorker + i}); err != nil {
					failed.Add(1)
					firstErr.set(err)
				}
				dispatched.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Drop every connection twice, mid-stream. rabbitmqctl takes a few
	// seconds to start, so the drops land well after these marks.
	var dropAt [2][2]int32 // dispatched when each drop started and when it returned
	for i, at := range []int32{total / 10, total * 4 / 10} {
		if !waitFor(60*time.Second, func() bool { return dispatched.Load() >= at }) {
			t.Fatalf("dispatching stalled at %d of %d before drop %d", dispatched.Load(), total, i+1)
		}
		dropAt[i][0] = dispatched.Load()
		testbroker.CloseConnections(t)
		dropAt[i][1] = dispatched.Load()
		t.Logf("drop %d: rabbitmqctl close_all_connections ran from %d to %d dispatched", i+1, dropAt[i][0], dropAt[i][1])
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("dispatching did not finish within 60 s of the last drop: %d of %d", dispatched.Load(), total)
	}
	dispatchTime := time.Since(start)
	if f := failed.Load(); f > 0 {
		t.Errorf("%d of %d dispatches failed; first: %v", f, total, firstErr.get())
	}

	if !waitFor(60*time.Second, func() bool { u, _, _ := got.stats(); return u == total }) {
		u, _, _ := got.stats()
		t.Errorf("%d of %d events handled within 60 s; missing e.g. %v", u, total, got.missing(total))
	}
	waitSettled(t, source, 30*time.Second) // redeliveries in flight have landed
	unique, deliveries, dups := got.stats()
	waitFor(10*time.Second, func() bool { return handlerRestores.Load() >= 2 && dispatcherRestores.Load() >= 2 })
	hr, dr := handlerRestores.Load(), dispatcherRestores.Load()
	t.Logf("dispatched=%d errors=%d unique=%d deliveries=%d duplicates=%d restores(handler=%d dispatcher=%d) dispatch=%s total=%s",
		total, failed.Load(), unique, deliveries, dups, hr, dr, dispatchTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	fmt.Printf("SUMMARY TestDispatchThroughConnectionDrops: dispatched=%d errors=%d handled_unique=%d deliveries=%d duplicates=%d drops=2 (issued at %d and %d dispatched, dispatcher back at %v) restores(handler=%d dispatcher=%d) dispatch_time=%s total_time=%s\n",
		total, failed.Load(), unique, deliveries, dups, dropAt[0][0], dropAt[1][0], restoredAtCopy(), hr, dr,
		dispatchTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	if hr < 2 || dr < 2 {
		t.Errorf("connections restored handler=%d dispatcher=%d times, want 2 each: the drops did not hit them", hr, dr)
	}
	for i, at := range restoredAtCopy() {
		if at >= total {
			t.Errorf("the dispatcher's connection came back (restore %d) only after dispatching ended: the drop was not mid-stream", i+1)
		}
	}
}

// TestPoisonDoesNotBlockQueue is not here: TestPoisonEventIsDeadLettered
// (events_test.go) already runs a poison event among good ones with
// MaxRetries 2 and RequeueOnError, and checks the good ones are each handled
// once while the poison ends in the dead-letter queue after 3 attempts.

func TestBroadcastReliableNeedsIdentifier(t *testing.T) {
	noop := func(context.Context, seq) error { return nil }

	r := entrypoint.NewRegistry("svc_cfg")
	events.Handle(r, "bcast_unstable", "src_cfg", "tick", noop, events.Type(events.Broadcast))
	err := r.Err()
	if err == nil {
		t.Fatal("a reliable broadcast handler without BroadcastIdentifier was accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, `"bcast_unstable"`) || !strings.Contains(msg, "BroadcastIdentifier") ||
		!strings.Contains(msg, "svc_cfg") {
		t.Errorf("error does not name the service, handler and the fix: %v", err)
	}
	if hs := entrypoint.Of[*events.Handler](r); len(hs) != 0 {
		t.Errorf("the misconfigured handler was registered anyway: %d handlers", len(hs))
	}

	// The two valid ways out.
	r = entrypoint.NewRegistry("svc_cfg")
	events.Handle(r, "bcast_stable", "src_cfg", "tick", noop, events.Type(events.Broadcast), events.BroadcastIdentifier("host-1"))
	events.Handle(r, "bcast_volatile", "src_cfg", "tick", noop, events.Type(events.Broadcast), events.UnreliableDelivery())
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	hs := entrypoint.Of[*events.Handler](r)
	if len(hs) != 2 {
		t.Fatalf("%d handlers registered, want 2", len(hs))
	}
	q := hs[0].Queue("svc_cfg")
	if q.Name != "evt-src_cfg-tick--svc_cfg.bcast_stable-host-1" || !q.Durable || q.AutoDelete || q.Exclusive {
		t.Errorf("reliable broadcast queue = %+v", q)
	}
	q = hs[1].Queue("svc_cfg")
	if !strings.HasPrefix(q.Name, "evt-src_cfg-tick--svc_cfg.bcast_volatile-") || q.Durable || !q.AutoDelete || !q.Exclusive {
		t.Errorf("volatile broadcast queue = %+v", q)
	}
}
