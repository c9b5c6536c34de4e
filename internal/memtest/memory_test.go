package memtest_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/config"
	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
	"github.com/hypha-go/hypha/transport/dial"
)

func TestMain(m *testing.M) { testbroker.Main(m) }

// memoryHeadroom is what a service may take above its idle resident set
// while it decodes and runs large requests, with the default settings.
const memoryHeadroom = 512 << 20

// TestMemoryBoundedUnderLargeRequests loads a service, in a process of its
// own built without the race detector, with 14 requests of MAX_MESSAGE_SIZE
// at once, in the shapes that cost the most to decode: millions of numbers
// for a method of two arguments, hundreds of thousands of keyword
// arguments, millions of small objects and of nested arrays for an
// argument of type any, one long string, a raw method's body, and events
// whose payload is millions of small objects. The process's peak resident
// set must stay within memoryHeadroom of its idle one.
func TestMemoryBoundedUnderLargeRequests(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads the resident set from /proc")
	}
	bin := buildMemsvc(t)
	began := time.Now()
	uri := testbroker.URI(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HYPHA_AMQP_URI="+uri, "HYPHA_CONFIG=", "HYPHA_LOG_LEVEL=error")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("service output:\n%s", out.String())
		}
	})
	conn, err := dial.Dial(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := rpc.NewClient(conn, rpc.Config{Timeout: 10 * time.Second})
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	proxy := client.Proxy("memsvc")
	waitAnswers(t, proxy)

	r := newRequester(t, uri)
	size := int(config.DefaultSettings().MaxMessageSize)
	// Each shape once with a small body first, so that the idle resident set
	// includes what the first call of each kind sets up.
	shapes := requestShapes()
	for _, s := range shapes {
		r.publish(t, s, s.body(1024), "warm-"+s.name)
	}
	for _, s := range shapes {
		if !s.event {
			r.reply(t)
		}
	}
	idle := procStatus(t, cmd.Process.Pid, "VmRSS")

	const rounds = 2 // of every shape: 14 requests and events at once
	var wg sync.WaitGroup
	want := 0
	for i := range rounds {
		for _, s := range shapes {
			body := s.body(size)
			if !s.event {
				want++
			}
			wg.Go(func() { r.publish(t, s, body, fmt.Sprintf("%s-%d", s.name, i)) })
		}
	}
	wg.Wait()
	got := map[string]string{}
	for range want {
		d := r.reply(t)
		got[strings.SplitN(d.CorrelationId, "-", 2)[0]] = string(d.Body)
	}
	for _, s := range shapes {
		if !s.event && !strings.Contains(got[s.name], s.reply) {
			t.Errorf("%s: reply %s; want it to contain %s", s.name, got[s.name], s.reply)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		handled, err := rpc.Call[int](context.Background(), proxy, "events_handled", rpc.Args())
		if err != nil {
			t.Fatal(err)
		}
		if handled >= 1+rounds { // the warm-up's too
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events handled after a minute", handled-1, rounds)
		}
		time.Sleep(100 * time.Millisecond)
	}
	peak := procStatus(t, cmd.Process.Pid, "VmHWM")
	t.Logf("idle %d MiB, peak %d MiB: %d MiB above idle (%s)", idle>>20, peak>>20, (peak-idle)>>20, time.Since(began).Round(time.Second))
	if peak-idle > memoryHeadroom {
		t.Errorf("peak resident set %d MiB above idle, over the bound of %d MiB", (peak-idle)>>20, memoryHeadroom>>20)
	}
}

// shape is one kind of large request.
type shape struct {
	name  string
	key   string // the routing key: "memsvc.<method>", or the event type
	event bool
	body  func(size int) []byte // a body of at most size bytes
	reply string                // what the reply must contain
}

func requestShapes() []shape {
	return []shape{
		{name: "zeros", key: "memsvc.add", reply: "IncorrectSignature",
			body: func(n int) []byte { return request(n, `{"args":[`, "0,", "0", `],"kwargs":{}}`) }},
		{name: "kwargs", key: "memsvc.add", reply: "IncorrectSignature", body: func(n int) []byte {
			b := []byte(`{"args":[],"kwargs":{`)
			for i := 0; len(b) < n-40; i++ {
				b = append(b, `"k`...)
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, `":0,`...)
			}
			return append(b, `"z":0}}`...)
		}},
		{name: "objects", key: "memsvc.echo", reply: `"result":true`,
			body: func(n int) []byte { return request(n, `{"args":[[`, "{},", "{}", `]],"kwargs":{}}`) }},
		{name: "nested", key: "memsvc.echo", reply: `"result":true`, body: func(n int) []byte {
			deep := strings.Repeat("[", 100) + "0" + strings.Repeat("]", 100)
			return request(n, `{"args":[],"kwargs":{"v":[`, deep+",", deep, `]}}`)
		}},
		{name: "string", key: "memsvc.text", reply: `"error":null`,
			body: func(n int) []byte { return request(n, `{"args":["`, "x", "x", `"],"kwargs":{}}`) }},
		{name: "raw", key: "memsvc.blob", reply: `"result":true`,
			body: func(n int) []byte { return request(n, `[`, "0,", "0", `]`) }},
		{name: "event", key: "blob", event: true,
			body: func(n int) []byte { return request(n, `[`, "{},", "{}", `]`) }},
	}
}

// request is head, then item repeated, then last and tail, at most n bytes.
func request(n int, head, item, last, tail string) []byte {
	count := (n - len(head) - len(last) - len(tail)) / len(item)
	b := make([]byte, 0, n)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte(item), max(count, 0))...)
	b = append(b, last...)
	return append(b, tail...)
}

// buildMemsvc builds testdata/memsvc without the race detector, whose
// shadow memory would swamp what the test measures.
func buildMemsvc(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memsvc")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./testdata/memsvc")
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./testdata/memsvc: %v\n%s", err, out)
	}
	return bin
}

// waitAnswers waits until the service answers a call.
func waitAnswers(t *testing.T, proxy *rpc.Proxy) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := rpc.Call[int](context.Background(), proxy, "events_handled", rpc.Args())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the service never answered:", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// requester publishes requests and events on a channel of its own, with
// an exclusive queue for the replies.
type requester struct {
	ch      *amqp091.Channel
	queue   string
	replies <-chan amqp091.Delivery
}

func newRequester(t *testing.T, uri string) *requester {
	t.Helper()
	conn, err := amqp091.Dial(uri)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Replies travel through the RPC exchange, routed by the reply_to.
	if err := ch.QueueBind(q.Name, q.Name, rpc.DefaultExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	replies, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &requester{ch: ch, queue: q.Name, replies: replies}
}

// publish sends body as shape s, with correlation id id.
func (r *requester) publish(t *testing.T, s shape, body []byte, id string) {
	msg := amqp091.Publishing{Body: body, ContentType: "application/json", CorrelationId: id, ReplyTo: r.queue}
	exchange := rpc.DefaultExchange
	if s.event {
		exchange = "memsvc_source.events"
		msg.CorrelationId, msg.ReplyTo = "", ""
	}
	if err := r.ch.PublishWithContext(context.Background(), exchange, s.key, false, false, msg); err != nil {
		t.Error(err)
	}
}

// reply waits for the next reply.
func (r *requester) reply(t *testing.T) amqp091.Delivery {
	t.Helper()
	select {
	case d := <-r.replies:
		return d
	case <-time.After(time.Minute):
		t.Fatal("no reply within a minute")
		return amqp091.Delivery{}
	}
}

// procStatus reads a size in bytes from /proc/<pid>/status.
func procStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
