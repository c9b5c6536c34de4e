package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// safety is the broker work a hand-written contender asks for.
type safety struct {
	durable  bool // durable queues, persistent messages
	confirm  bool // publisher confirms awaited, the request's by the client and the reply's by the server
	manual   bool // the server acks a request once its reply is confirmed; the client acks replies
	prefetch int  // the server's prefetch; 0 leaves it unbounded
}

var (
	rawMin  = safety{}
	rawSafe = safety{durable: true, confirm: true, manual: true, prefetch: maxWorkers}
)

// withPrefetch is s with the server's prefetch set to n.
func (s safety) withPrefetch(n int) safety {
	s.prefetch = n
	return s
}

// maxWorkers is nameko's and Hypha's MAX_WORKERS default: the server's pool
// size and its request queue's prefetch.
const maxWorkers = 10

type request struct {
	Args   []any          `json:"args"`
	Kwargs map[string]any `json:"kwargs"`
}

type reply struct {
	Result any `json:"result"`
	Error  any `json:"error"`
}

// answer computes add's reply to a request body.
func answer(body []byte) []byte {
	var req request
	var rep reply
	if err := json.Unmarshal(body, &req); err != nil || len(req.Args) != 3 {
		rep.Error = fmt.Sprintf("bad request: %v", err)
	} else {
		a, _ := req.Args[0].(float64)
		b, _ := req.Args[1].(float64)
		rep.Result = a + b
	}
	out, _ := json.Marshal(rep)
	return out
}

// checkReply reports whether a reply body says 3 without an error.
func checkReply(body []byte) error {
	var rep struct {
		Result float64         `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(body, &rep); err != nil {
		return err
	}
	if rep.Result != 3 || string(rep.Error) != "null" {
		return fmt.Errorf("%w: %s", errBadReply, body)
	}
	return nil
}

// rawServe answers add on queue with amqp091-go alone, each request in a
// goroutine of its own; the returned stop cancels the consumer and waits for
// the requests in hand. With an exchange (topic, declared here) the queue is
// bound to it with bindKey and replies go to it with the request's reply_to
// as routing key, as nameko wires RPC; without one, replies go to the queue
// named by reply_to through the default exchange.
func rawServe(uri, queue, exchange, bindKey string, s safety) (stop func(), err error) {
	conn, err := amqp091.Dial(uri)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (func(), error) {
		conn.Close()
		return nil, err
	}
	in, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	if _, err := in.QueueDeclare(queue, s.durable, false, false, false, nil); err != nil {
		return fail(err)
	}
	if exchange != "" {
		if err := in.ExchangeDeclare(exchange, "topic", true, false, false, false, nil); err != nil {
			return fail(err)
		}
		if err := in.QueueBind(queue, bindKey, exchange, false, nil); err != nil {
			return fail(err)
		}
	}
	if s.prefetch > 0 {
		if err := in.Qos(s.prefetch, 0, false); err != nil {
			return fail(err)
		}
	}
	deliveries, err := in.Consume(queue, "rawbench-server", !s.manual, false, false, false, nil)
	if err != nil {
		return fail(err)
	}
	out, err := conn.Channel()
	if err != nil {
		return fail(err)
	}
	if s.confirm {
		if err := out.Confirm(false); err != nil {
			return fail(err)
		}
	}
	mode := amqp091.Transient
	if s.durable {
		mode = amqp091.Persistent
	}
	var handlers sync.WaitGroup
	handle := func(d amqp091.Delivery) {
		defer handlers.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		confirm, err := out.PublishWithDeferredConfirmWithContext(ctx, exchange, d.ReplyTo, false, false, amqp091.Publishing{
			ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: mode,
			CorrelationId: d.CorrelationId, Body: answer(d.Body),
		})
		if err == nil && confirm != nil {
			_, err = confirm.WaitContext(ctx)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "raw server: reply:", err)
		}
		if s.manual {
			_ = d.Ack(false)
		}
	}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for d := range deliveries {
			handlers.Add(1)
			go handle(d)
		}
	}()
	return func() {
		_ = in.Cancel("rawbench-server", false)
		<-loopDone
		handlers.Wait()
		conn.Close()
	}, nil
}

// route says where a wire client sends requests and how its replies come back.
type route struct {
	exchange   string // "" for the default exchange
	routingKey string
	// replyExchange, when set, is the exchange the server answers on: the
	// client binds its reply queue there with a routing key of its own and
	// sends that key as reply_to (nameko's way). Otherwise reply_to is the
	// reply queue's name, answered on the default exchange.
	replyExchange string
	owner         string        // the reply queue's name is rpc.reply-<owner>-<n> with replyExchange
	headers       amqp091.Table // sent with every request
	mandatory     bool
}

// wireClient calls over amqp091-go alone, matching replies to calls by
// correlation id.
type wireClient struct {
	conn    *amqp091.Connection
	out     *amqp091.Channel
	r       route
	s       safety
	replyTo string
	ids     atomic.Uint64
	done    chan struct{}

	mu      sync.Mutex
	pending map[string]chan []byte
}

func dialWire(uri string, r route, s safety) (*wireClient, error) {
	conn, err := amqp091.Dial(uri)
	if err != nil {
		return nil, err
	}
	c := &wireClient{conn: conn, r: r, s: s, done: make(chan struct{}), pending: map[string]chan []byte{}}
	if err := c.open(); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

func (c *wireClient) open() error {
	in, err := c.conn.Channel()
	if err != nil {
		return err
	}
	var replies <-chan amqp091.Delivery
	if c.r.replyExchange != "" {
		key := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		q, err := in.QueueDeclare("rpc.reply-"+c.r.owner+"-"+key, true, false, false, false, amqp091.Table{"x-expires": int32(300000)})
		if err != nil {
			return err
		}
		if err := in.QueueBind(q.Name, key, c.r.replyExchange, false, nil); err != nil {
			return err
		}
		c.replyTo = key
		replies, err = in.Consume(q.Name, "", !c.s.manual, false, false, false, nil)
		if err != nil {
			return err
		}
	} else {
		q, err := in.QueueDeclare("", c.s.durable, false, true, false, nil)
		if err != nil {
			return err
		}
		c.replyTo = q.Name
		replies, err = in.Consume(q.Name, "", !c.s.manual, true, false, false, nil)
		if err != nil {
			return err
		}
	}
	if c.s.manual {
		if err := in.Qos(256, 0, false); err != nil { // Hypha's reply prefetch
			return err
		}
	}
	if c.out, err = c.conn.Channel(); err != nil {
		return err
	}
	if c.s.confirm {
		if err := c.out.Confirm(false); err != nil {
			return err
		}
	}
	go c.receive(replies)
	return nil
}

func (c *wireClient) receive(replies <-chan amqp091.Delivery) {
	defer close(c.done)
	for d := range replies {
		if c.s.manual {
			_ = d.Ack(false)
		}
		c.mu.Lock()
		ch, ok := c.pending[d.CorrelationId]
		delete(c.pending, d.CorrelationId)
		c.mu.Unlock()
		if ok {
			ch <- d.Body
		}
	}
}

func (c *wireClient) close() {
	c.conn.Close()
	<-c.done
}

func (c *wireClient) call(ctx context.Context, pad string) error {
	body, err := json.Marshal(request{Args: []any{1, 2, pad}, Kwargs: map[string]any{}})
	if err != nil {
		return err
	}
	id := strconv.FormatUint(c.ids.Add(1), 10)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	mode := amqp091.Transient
	if c.s.durable {
		mode = amqp091.Persistent
	}
	confirm, err := c.out.PublishWithDeferredConfirmWithContext(ctx, c.r.exchange, c.r.routingKey, c.r.mandatory, false, amqp091.Publishing{
		ContentType: "application/json", ContentEncoding: "utf-8", DeliveryMode: mode,
		CorrelationId: id, ReplyTo: c.replyTo, Headers: c.r.headers, Body: body,
	})
	if err != nil {
		return err
	}
	if confirm != nil {
		acked, err := confirm.WaitContext(ctx)
		if err != nil {
			return err
		}
		if !acked {
			return errors.New("raw client: request nacked")
		}
	}
	timer := time.NewTimer(callTimeout)
	defer timer.Stop()
	select {
	case body := <-ch:
		return checkReply(body)
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("raw client: no reply within %s", callTimeout)
	}
}

// callTimeout bounds every call of every contender.
const callTimeout = 60 * time.Second
