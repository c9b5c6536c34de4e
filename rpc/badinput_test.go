package rpc_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/rpc"
)

// waitBound bounds every wait in the bad-input tests so nothing hangs.
const waitBound = 5 * time.Second

// rawClient talks AMQP directly, bypassing rpc.Client, to send requests no
// well-behaved client would.
type rawClient struct {
	conn     *amqp091.Connection
	ch       *amqp091.Channel
	replyKey string                  // reply_to for replies on nameko-rpc
	replies  <-chan amqp091.Delivery // our exclusive reply queue
	strays   <-chan amqp091.Delivery // anything published to nameko-rpc with an empty routing key
}

func rawDial(t *testing.T) *rawClient {
	t.Helper()
	conn, err := amqp091.Dial(testbroker.URI(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(rpc.DefaultExchange, "topic", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	rc := &rawClient{conn: conn, ch: ch, replyKey: uuid.NewString()}
	rc.replies = rawQueue(t, ch, rc.replyKey)
	rc.strays = rawQueue(t, ch, "")
	return rc
}

// rawQueue declares an exclusive server-named queue bound to nameko-rpc with
// key and consumes it with auto-ack.
func rawQueue(t *testing.T, ch *amqp091.Channel, key string) <-chan amqp091.Delivery {
	t.Helper()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.QueueBind(q.Name, key, rpc.DefaultExchange, false, nil); err != nil {
		t.Fatal(err)
	}
	d, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitReply returns the delivery on replies with correlation id corr, or
// fails t after waitBound.
func waitReply(t *testing.T, replies <-chan amqp091.Delivery, corr string) amqp091.Delivery {
	t.Helper()
	timeout := time.After(waitBound)
	for {
		select {
		case d, ok := <-replies:
			if !ok {
				t.Fatal("reply consumer closed")
			}
			if d.CorrelationId == corr {
				return d
			}
			t.Logf("ignoring reply with correlation id %q", d.CorrelationId)
		case <-timeout:
			t.Fatalf("no reply with correlation id %s within %v", corr, waitBound)
		}
	}
}

// staleDirectReplyTo returns a genuine direct reply-to key (as RabbitMQ
// rewrites "amq.rabbitmq.reply-to" on publish) of a channel that has since
// closed: the reply_to of a caller that gave up and went away.
func (rc *rawClient) staleDirectReplyTo(t *testing.T) string {
	t.Helper()
	ch, err := rc.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := ch.Publish("", q.Name, false, false, amqp091.Publishing{ReplyTo: "amq.rabbitmq.reply-to"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitBound)
	for {
		m, ok, err := ch.Get(q.Name, true)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if !strings.HasPrefix(m.ReplyTo, "amq.rabbitmq.reply-to.") {
				t.Fatalf("direct reply-to rewritten as %q", m.ReplyTo)
			}
			return m.ReplyTo // the deferred Close makes it stale
		}
		if time.Now().After(deadline) {
			t.Fatalf("probe message not back within %v", waitBound)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// readyMessages is the number of messages ready in queue, read with a
// passive declare on a channel of its own (a failed passive declare closes
// the channel).
func (rc *rawClient) readyMessages(t *testing.T, queue string) int {
	t.Helper()
	ch, err := rc.conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return q.Messages
}

// queueCounts reads messages_ready and messages_unacknowledged of a queue in
// the test vhost from rabbitmqctl.
func queueCounts(t *testing.T, queue string) (ready, unacked int) {
	t.Helper()
	out, err := testbroker.Rabbitmqctl("list_queues", "-q", "--no-table-headers", "-p", testbroker.VHost(t),
		"name", "messages_ready", "messages_unacknowledged")
	if err != nil {
		t.Fatalf("rabbitmqctl list_queues: %v\n%s", err, out)
	}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == queue {
			ready, err1 := strconv.Atoi(f[1])
			unacked, err2 := strconv.Atoi(f[2])
			if err1 != nil || err2 != nil {
				t.Fatalf("rabbitmqctl list_queues: cannot parse %q", line)
			}
			return ready, unacked
		}
	}
	t.Fatalf("queue %s not in rabbitmqctl list_queues:\n%s", queue, out)
	return 0, 0
}

// waitQueueEmpty waits until queue has no message ready or unacknowledged.
func waitQueueEmpty(t *testing.T, queue string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		ready, unacked := queueCounts(t, queue)
		if ready == 0 && unacked == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue %s: %d messages ready, %d unacknowledged after %v; want none", queue, ready, unacked, waitBound)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type wireReply struct {
	Result json.RawMessage  `json:"result"`
	Error  *rpc.RemoteError `json:"error"`
}

func TestBadInputServerSurvives(t *testing.T) {
	const service = "math_badinput"
	var calls atomic.Int64
	// One worker, so prefetch 1: a request left unacknowledged would block
	// every later delivery, and the follow-up calls below would time out.
	serve(t, service, 1, mathService(&calls))
	rc := rawDial(t)
	routingKey := service + ".add"
	queue := rpc.QueueName(service)
	goodBody := []byte(`{"args": [1, 2], "kwargs": {}}`)
	const jsonCT = "application/json"

	type wantErr struct {
		excType, excPath string
		value            string // exact value when exact, else a substring
		exact            bool
	}
	malformed := func(value string, exact bool) *wantErr {
		return &wantErr{excType: "MalformedRequest", excPath: "nameko.exceptions.MalformedRequest", value: value, exact: exact}
	}
	const (
		ownReplyTo    = iota // our own queue's binding key on nameko-rpc
		noReplyTo            // no reply_to: nothing may be sent
		directReplyTo        // RabbitMQ's direct reply-to, answered on the default exchange
		goneReplyTo          // a real direct reply-to key whose channel has closed: the broker drops the reply
	)
	tests := []struct {
		name        string
		body        []byte
		contentType string
		replyTo     int
		wantResult  float64
		wantErr     *wantErr
		wantReplyCT string // the reply's content_type; not checked when empty
		wantRuns    int64  // how many times the handler runs
	}{
		{name: "not JSON", body: []byte(`this is not json`), contentType: jsonCT,
			wantErr: malformed("not a JSON object", false), wantReplyCT: jsonCT},
		{name: "empty body", body: []byte{}, contentType: jsonCT,
			wantErr: malformed("not a JSON object", false), wantReplyCT: jsonCT},
		{name: "JSON array", body: []byte(`[1, 2]`), contentType: jsonCT,
			wantErr: malformed("not a JSON object", false), wantReplyCT: jsonCT},
		{name: "JSON string", body: []byte(`"args"`), contentType: jsonCT,
			wantErr: malformed("not a JSON object", false), wantReplyCT: jsonCT},
		{name: "no args or kwargs", body: []byte(`{"a": 1, "b": 2}`), contentType: jsonCT,
			wantErr: malformed("Message missing `args` or `kwargs`", true), wantReplyCT: jsonCT},
		{name: "args without kwargs", body: []byte(`{"args": [1, 2]}`), contentType: jsonCT,
			wantErr: malformed("Message missing `args` or `kwargs`", true), wantReplyCT: jsonCT},
		{name: "args not a list", body: []byte(`{"args": {"a": 1}, "kwargs": {}}`), contentType: jsonCT,
			wantErr: malformed("`args` must be a list", false), wantReplyCT: jsonCT},
		{name: "no reply_to", body: goodBody, contentType: jsonCT, replyTo: noReplyTo, wantRuns: 1},
		{name: "no reply_to and not JSON", body: []byte(`not json`), contentType: jsonCT, replyTo: noReplyTo},
		{name: "no content_type", body: goodBody, contentType: "", wantResult: 3, wantReplyCT: jsonCT, wantRuns: 1},
		{name: "content_type with charset", body: goodBody, contentType: jsonCT + "; charset=utf-8",
			wantResult: 3, wantReplyCT: jsonCT, wantRuns: 1},
		// The reply is JSON, and says so, whatever the request claimed.
		{name: "unknown content type", body: goodBody, contentType: "application/x-pickle",
			wantErr: malformed("application/x-pickle", false), wantReplyCT: jsonCT},
		{name: "unknown content type without reply_to", body: goodBody, contentType: "application/x-pickle", replyTo: noReplyTo},
		{name: "direct reply-to", body: goodBody, contentType: jsonCT, replyTo: directReplyTo,
			wantResult: 3, wantReplyCT: jsonCT, wantRuns: 1},
		{name: "direct reply-to of a gone caller", body: goodBody, contentType: jsonCT, replyTo: goneReplyTo, wantRuns: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := calls.Load()
			corr := uuid.NewString()
			pub := amqp091.Publishing{
				ContentType: tt.contentType, ContentEncoding: "utf-8", DeliveryMode: amqp091.Persistent,
				CorrelationId: corr, ReplyTo: rc.replyKey, Body: tt.body,
			}
			// A confirm-mode channel of its own per case: once the publish is
			// confirmed the request is in the queue, so an empty queue later
			// means it was delivered and acknowledged.
			ch, err := rc.conn.Channel()
			if err != nil {
				t.Fatal(err)
			}
			defer ch.Close()
			if err := ch.Confirm(false); err != nil {
				t.Fatal(err)
			}
			replies := rc.replies
			switch tt.replyTo {
			case noReplyTo:
				pub.ReplyTo = ""
			case directReplyTo:
				// Consume the pseudo-queue with auto-ack on the publishing
				// channel before publishing.
				if replies, err = ch.Consume("amq.rabbitmq.reply-to", "", true, false, false, false, nil); err != nil {
					t.Fatal(err)
				}
				pub.ReplyTo = "amq.rabbitmq.reply-to"
			case goneReplyTo:
				pub.ReplyTo = rc.staleDirectReplyTo(t)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitBound)
			defer cancel()
			confirm, err := ch.PublishWithDeferredConfirmWithContext(ctx, rpc.DefaultExchange, routingKey, true, false, pub)
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
				t.Fatalf("publish not confirmed: %v, %v", ok, err)
			}

			if tt.replyTo == noReplyTo || tt.replyTo == goneReplyTo {
				deadline := time.Now().Add(waitBound)
				for calls.Load()-before < tt.wantRuns {
					if time.Now().After(deadline) {
						t.Fatalf("the method did not run within %v", waitBound)
					}
					time.Sleep(10 * time.Millisecond)
				}
				if n := rc.readyMessages(t, queue); n != 0 {
					t.Errorf("%s has %d messages ready, want 0", queue, n)
				}
				waitQueueEmpty(t, queue) // delivered and acknowledged
				// Give a wrongly sent reply time to arrive.
				select {
				case d := <-rc.replies:
					t.Fatalf("a reply reached our reply queue: %s", d.Body)
				case d := <-rc.strays:
					t.Fatalf("a reply was sent to routing key \"\": %s", d.Body)
				case <-time.After(300 * time.Millisecond):
				}
				// With prefetch 1, a request still unacknowledged would block this call.
				fctx, fcancel := context.WithTimeout(context.Background(), waitBound)
				defer fcancel()
				got, err := rpc.Call[float64](fctx, newClient(t, waitBound).Proxy(service), "add", rpc.Args(2, 3))
				if err != nil || got != 5 {
					t.Fatalf("follow-up call: %v, %v", got, err)
				}
				if n := calls.Load() - before; n != tt.wantRuns+1 {
					t.Fatalf("handler ran %d times, want %d (the request and the follow-up)", n, tt.wantRuns+1)
				}
				return
			}

			d := waitReply(t, replies, corr)
			if tt.wantReplyCT != "" && d.ContentType != tt.wantReplyCT {
				t.Errorf("reply content_type %q, want %q", d.ContentType, tt.wantReplyCT)
			}
			var rep wireReply
			if err := json.Unmarshal(d.Body, &rep); err != nil {
				t.Fatalf("reply is not JSON: %v: %s", err, d.Body)
			}
			if tt.wantErr != nil {
				e := rep.Error
				if e == nil {
					t.Fatalf("reply %s, want error %s", d.Body, tt.wantErr.excType)
				}
				if string(rep.Result) != "null" {
					t.Errorf("result = %s alongside an error, want null", rep.Result)
				}
				if e.ExcType != tt.wantErr.excType || e.ExcPath != tt.wantErr.excPath {
					t.Errorf("error %s (%s), want %s (%s)", e.ExcType, e.ExcPath, tt.wantErr.excType, tt.wantErr.excPath)
				}
				if (tt.wantErr.exact && e.Value != tt.wantErr.value) || !strings.Contains(e.Value, tt.wantErr.value) {
					t.Errorf("value %q, want %q", e.Value, tt.wantErr.value)
				}
				if len(e.ExcArgs) != 1 || e.ExcArgs[0] != e.Value {
					t.Errorf("exc_args %#v, want [value]", e.ExcArgs)
				}
			} else {
				if rep.Error != nil {
					t.Fatalf("unexpected error %+v", rep.Error)
				}
				var got float64
				if err := json.Unmarshal(rep.Result, &got); err != nil || got != tt.wantResult {
					t.Fatalf("result %s, want %v", rep.Result, tt.wantResult)
				}
			}
			if n := calls.Load() - before; n != tt.wantRuns {
				t.Errorf("handler ran %d times, want %d", n, tt.wantRuns)
			}
		})
	}

	// The service still answers, and no bad request is left behind or being
	// redelivered.
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	got, err := rpc.Call[float64](ctx, newClient(t, waitBound).Proxy(service), "add", map[string]any{"a": 20, "b": 22})
	if err != nil || got != 42 {
		t.Fatalf("normal call after bad input: %v, %v", got, err)
	}
	if n := rc.readyMessages(t, queue); n != 0 {
		t.Fatalf("%s has %d messages ready, want 0", queue, n)
	}
	waitQueueEmpty(t, queue)
	runs := calls.Load()
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n != runs {
		t.Fatalf("handler ran %d more times with no call made: a request is being redelivered", n-runs)
	}
	select {
	case d := <-rc.replies:
		t.Fatalf("unexpected late reply: %s", d.Body)
	case d := <-rc.strays:
		t.Fatalf("unexpected reply to routing key \"\": %s", d.Body)
	default:
	}
}
