package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/entrypoint"
	"github.com/hypha-go/hypha/internal/ctxwire"
	"github.com/hypha-go/hypha/transport"
)

// errNotStarted is returned by calls through a client whose Start has not
// succeeded: without its reply queue, no reply could reach it.
var errNotStarted = errors.New("hypha: rpc client not started: call its Start first")

// StandaloneOwner names the reply queue and call ids of a client that is not
// a service, as nameko 2.14's standalone proxy (ClusterRpcProxy) names its
// own: reply queues rpc.reply-standalone_rpc_proxy-<uuid>, call ids
// standalone_rpc_proxy.call.<uuid>. (nameko 3.0's release candidates renamed
// it standalone_rpc_client; 2.14 is the protocol Hypha speaks.)
const StandaloneOwner = "standalone_rpc_proxy"

// Config says how a client calls services.
type Config struct {
	// Owner names the client's reply queue ("rpc.reply-<Owner>-<uuid>") and,
	// outside a worker, its call ids: a service's name, or StandaloneOwner.
	Owner string
	// Exchange carries requests and replies; DefaultExchange when empty.
	Exchange string
	// ReplyKeyPrefix, when set, starts the routing key replies come back
	// with: "<ReplyKeyPrefix>.<uuid>" instead of nameko's bare uuid, so that
	// RabbitMQ's topic permissions can keep each user to its own reply keys
	// (RPC_REPLY_KEY_PREFIX). It is two or more dot-separated words of
	// letters, digits, '_' and '-', such as "reply.web", and does not start
	// with "amq.": the reply keys then have three words or more, which a
	// service's "<service>.*" binding never matches. Start fails on any
	// other. Servers need nothing: they reply with whatever key requests
	// carry.
	ReplyKeyPrefix string
	// Timeout bounds every call whose context has no sooner deadline;
	// 30 s (RPC_TIMEOUT's default) when zero.
	Timeout time.Duration
	// Transient sends requests with delivery mode 1 instead of persistent:
	// the broker then writes nothing to disk for them, which makes calls
	// faster, but a request waiting in a queue is lost when the broker
	// restarts. A Hypha server answers in the request's mode.
	Transient bool
	// NoResend keeps a request whose fate a lost connection left unknown
	// (published, then the connection dropped before the broker confirmed
	// it) from being sent again, unless the call was made through
	// Proxy.Idempotent: the call then waits for a reply until its deadline,
	// and fails with ErrTimeout when the request never reached the queue.
	// By default such a request is sent again after the reconnect, as
	// nameko's publisher does, with the same message id and correlation id,
	// so that a Hypha server drops the copy when the first one reached it
	// (per instance: see Plugin).
	NoResend bool
	// MaxInFlight bounds the calls waiting for their reply at once; a call
	// over it fails at once with ErrTooManyCalls. 65,536 (RPC_MAX_IN_FLIGHT's
	// default) when zero.
	MaxInFlight int
	// Interceptors wrap every call the client makes (see CallInfo), the
	// first outermost.
	Interceptors []entrypoint.Interceptor
	Logger       *slog.Logger
}

// Client calls services and collects their replies on a reply queue of its
// own. It is safe for concurrent use; create proxies with Proxy.
type Client struct {
	broker   transport.Broker
	cfg      Config
	replyKey string
	queue    string
	err      error // a Config that Start refuses
	consumer transport.Consumer

	mu      sync.Mutex
	pending map[string]chan transport.Delivery
	closed  chan struct{}
}

// NewClient returns a client that calls services over conn once Start has
// declared its reply queue. The client does not own conn: Close leaves it
// open. A program that is not a service (nameko's ClusterRpcClient) dials
// its connection with dial.Dial and starts the client itself:
//
//	conn, err := dial.Dial(ctx, uri)
//	if err != nil { ... }
//	defer conn.Close()
//	client := rpc.NewClient(conn, rpc.Config{})
//	if err := client.Start(ctx); err != nil { ... }
//	defer client.Close()
func NewClient(conn transport.Broker, cfg Config) *Client {
	if cfg.Owner == "" {
		cfg.Owner = StandaloneOwner
	}
	if cfg.Exchange == "" {
		cfg.Exchange = DefaultExchange
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{
		broker:   conn,
		cfg:      cfg,
		replyKey: uuid.NewString(),
		err:      checkReplyKeyPrefix(cfg.ReplyKeyPrefix),
		pending:  map[string]chan transport.Delivery{},
		closed:   make(chan struct{}),
	}
	if cfg.ReplyKeyPrefix != "" {
		c.replyKey = cfg.ReplyKeyPrefix + "." + c.replyKey
	}
	c.queue = fmt.Sprintf("rpc.reply-%s-%s", cfg.Owner, uuid.NewString())
	return c
}

// Start declares the exchange passively (see transport.Exchange) and the
// client's reply queue (durable, expiring 5 minutes after its last consumer
// leaves, bound with a key of its own) and starts consuming replies. Calls made before Start fail. A ReplyKeyPrefix
// out of form fails Start, before it touches the broker.
func (c *Client) Start(ctx context.Context) error {
	if c.err != nil {
		return c.err
	}
	// The services own the exchange; a caller only makes sure it is there,
	// so that its user needs no configure permission on it.
	if err := c.broker.DeclareExchange(ctx, transport.Exchange{Name: c.cfg.Exchange, Kind: transport.Topic, Durable: true, Passive: true}); err != nil {
		return err
	}
	if err := c.broker.DeclareQueue(ctx, transport.Queue{
		Name: c.queue, Durable: true,
		Args:     map[string]any{"x-expires": int32(replyQueueExpiry)},
		Bindings: []transport.Binding{{Exchange: c.cfg.Exchange, RoutingKey: c.replyKey}},
	}); err != nil {
		return err
	}
	consumer, err := c.broker.Consume(ctx, transport.ConsumeOptions{Queue: c.queue, Prefetch: replyPrefetch}, c.onReply)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.consumer = consumer
	c.mu.Unlock()
	return nil
}

// maxReplyKeyPrefix keeps "<prefix>.<uuid>" within AMQP's 255-byte routing keys.
const maxReplyKeyPrefix = 255 - len(".00000000-0000-0000-0000-000000000000")

// replyKeyPrefixForm is Config.ReplyKeyPrefix's form: two or more words.
var replyKeyPrefixForm = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$`)

// checkReplyKeyPrefix reports a ReplyKeyPrefix out of form, saying what it
// should be; "" (no prefix) is fine.
func checkReplyKeyPrefix(p string) error {
	why := ""
	switch {
	case p == "":
		return nil
	case !replyKeyPrefixForm.MatchString(p):
		why = "want two or more dot-separated words of letters, digits, '_' and '-', such as \"reply.web\", " +
			"so that reply keys \"<prefix>.<uuid>\" never match a service's \"<service>.*\" binding"
	case strings.HasPrefix(p, "amq."):
		why = "want a prefix that does not start with \"amq.\", which RabbitMQ keeps for itself"
	case len(p) > maxReplyKeyPrefix:
		why = fmt.Sprintf("want at most %d bytes, so that reply keys fit AMQP's 255; got %d", maxReplyKeyPrefix, len(p))
	default:
		return nil
	}
	return fmt.Errorf("hypha: rpc client ReplyKeyPrefix %q: %s", p, why)
}

// Proxy returns a proxy that calls the named service through c.
func (c *Client) Proxy(service string) *Proxy { return &Proxy{client: c, service: service} }

// Close fails calls still waiting with ErrClosed, stops consuming replies,
// and deletes the reply queue (waiting at most closeTimeout for the broker);
// it leaves the connection open for its owner to close. Calls after Close
// fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	select {
	case <-c.closed:
		c.mu.Unlock()
		return nil
	default:
		close(c.closed)
	}
	consumer := c.consumer
	c.mu.Unlock()
	if consumer == nil { // never started: there is no reply queue
		return nil
	}
	err := consumer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if delErr := c.broker.DeleteQueue(ctx, c.queue); delErr != nil {
		// It expires on its own, replyQueueExpiry after its consumer left.
		c.cfg.Logger.Debug("hypha: reply queue not deleted; it expires on its own", "queue", c.queue, "error", delErr)
	}
	return err
}

// InFlight is the number of calls waiting for their reply now.
func (c *Client) InFlight() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// onReply matches a reply to its waiting call by correlation id; a reply
// nobody waits for (late, duplicate, unknown) is dropped.
func (c *Client) onReply(d transport.Delivery) {
	_ = d.Ack()
	c.mu.Lock()
	ch, ok := c.pending[d.CorrelationID]
	delete(c.pending, d.CorrelationID)
	c.mu.Unlock()
	if !ok {
		c.cfg.Logger.Debug("hypha: dropping reply nobody waits for", "correlation_id", d.CorrelationID)
		return
	}
	ch <- d
}

// call runs one intercepted call with its deadline: the sooner of ctx's and
// the client's timeout. idempotent says the caller marked this call safe to
// run twice.
func (c *Client) call(ctx context.Context, service, method string, body []byte, idempotent bool) (json.RawMessage, error) {
	if err := checkTarget(service, method); err != nil {
		return nil, err
	}
	select {
	case <-c.closed:
		return nil, fmt.Errorf("calling %s.%s: %w", service, method, ErrClosed)
	default:
	}
	c.mu.Lock()
	started := c.consumer != nil
	c.mu.Unlock()
	if !started {
		return nil, fmt.Errorf("calling %s.%s: %w", service, method, errNotStarted)
	}
	deadline := time.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	headers := c.headers(ctx, deadline)
	if err := ctxwire.Check(headers); err != nil {
		return nil, contextDataError{service: service, method: method, err: err}
	}
	call := &CallInfo{
		Service: service, Method: method, CorrelationID: uuid.NewString(), Caller: c.cfg.Owner,
		Headers: headers, Deadline: deadline, Idempotent: idempotent,
		Exchange: c.cfg.Exchange, RoutingKey: service + "." + method, BodySize: len(body),
		started: time.Now(),
	}
	err := entrypoint.Intercept(c.cfg.Interceptors, call.clientCall(), func(ctx context.Context) error {
		var err error
		call.Result, err = c.roundTrip(ctx, call, body)
		return err
	})(ctx)
	if err != nil {
		return nil, err
	}
	return clientResult(call)
}

// checkTarget refuses a service or method name no server can be reached
// by. The request's routing key is "<service>.<method>" and a server binds
// "<service>.*", which matches one word after the service's: a dot in
// either name would make the request unroutable, and the caller would be
// told the service does not exist when it is the name that is wrong.
func checkTarget(service, method string) error {
	switch {
	case service == "" || strings.Contains(service, "."):
		return fmt.Errorf("calling %s.%s: service name %q: want a name without dots, such as \"calculator\": %w",
			service, method, service, ErrServiceNotFound)
	case method == "" || strings.Contains(method, "."):
		return fmt.Errorf("calling %s.%s: method name %q: want a name without dots, such as \"add\", since a "+
			"service's binding %q routes one word after its name: %w", service, method, method, service+".*",
			&RemoteError{ExcType: ErrMethodNotFound.ExcType, ExcPath: ErrMethodNotFound.ExcPath, ExcArgs: []any{method}, Value: method})
	}
	return nil
}

// headers are the request's context data plus its deadline. Outside a worker
// the call-id stack starts with this call's own id, <Owner>.call.<uuid>: the
// shape of nameko 2.14's standalone proxy, whose worker's entrypoint is "call".
func (c *Client) headers(ctx context.Context, deadline time.Time) map[string]any {
	h := contextdata.Outgoing(ctx, fmt.Sprintf("%s.call.%s", c.cfg.Owner, uuid.NewString()))
	h[deadlineHeader] = deadline.UnixMilli()
	return h
}

// roundTrip publishes the request, whose body is body, and waits for its
// reply: the innermost step, under the interceptors.
func (c *Client) roundTrip(ctx context.Context, call *CallInfo, body []byte) (json.RawMessage, error) {
	replies := make(chan transport.Delivery, 1)
	c.mu.Lock()
	if len(c.pending) >= c.cfg.MaxInFlight {
		c.mu.Unlock()
		return nil, fmt.Errorf("calling %s.%s: %d calls already wait for their reply: %w",
			call.Service, call.Method, c.cfg.MaxInFlight, ErrTooManyCalls)
	}
	c.pending[call.CorrelationID] = replies
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, call.CorrelationID)
		c.mu.Unlock()
	}()
	publishing := transport.Publishing{
		Exchange:   call.Exchange,
		RoutingKey: call.RoutingKey,
		Mandatory:  true,
		Message: transport.Message{
			Body: body, ContentType: contentTypeJSON, ContentEncoding: encodingUTF8,
			// One message id for every copy of the request, so that a
			// server can tell a copy sent again from another call.
			MessageID:     uuid.NewString(),
			CorrelationID: call.CorrelationID, ReplyTo: c.replyKey, Persistent: !c.cfg.Transient,
			Expiration: time.Until(call.Deadline), Headers: call.Headers,
		},
	}
	// The request's confirm and its reply race: a reply proves the request
	// arrived, so it need not wait for the confirm, and a mandatory return
	// (no such service) still fails the call as soon as it comes.
	sent := make(chan error, 1)
	publishCtx, stopPublishing := context.WithCancel(ctx)
	defer stopPublishing()
	go func() { sent <- c.publish(publishCtx, call, publishing) }()
	for {
		select {
		case reply := <-replies:
			call.ReplyHeaders = reply.Headers
			if reply.Malformed != nil {
				return nil, fmt.Errorf("calling %s.%s: the reply could not be read: %w", call.Service, call.Method, reply.Malformed)
			}
			res, err := decodeReply(reply.Body)
			if re, ok := err.(*RemoteError); ok {
				noteReceived(ctx, re)
			}
			return res, err
		case err := <-sent:
			if err != nil {
				return nil, err
			}
			sent = nil // confirmed, or its fate unknown: the reply may still come
		case <-ctx.Done():
			return nil, c.ended(ctx, call)
		case <-c.closed:
			return nil, fmt.Errorf("calling %s.%s: %w", call.Service, call.Method, ErrClosed)
		}
	}
}

// publish sends a request until the broker confirms it, sending it again
// when its fate is unknown (unless Config.NoResend is set and the call is not
// idempotent): a copy that reaches a server instance which already started
// the request is dropped there, and a second reply is dropped here. It returns nil once
// the reply may come (confirmed, or perhaps arrived), the call's error when
// none will (no such service, the client closed, the broker refused it),
// and nil when ctx ended: the call sees that itself.
func (c *Client) publish(ctx context.Context, call *CallInfo, p transport.Publishing) error {
	for {
		err := c.broker.Publish(ctx, p)
		switch {
		case errors.Is(err, transport.ErrUncertain) && (call.Idempotent || !c.cfg.NoResend) && ctx.Err() == nil:
			c.cfg.Logger.Debug("hypha: request may be lost with the connection; sending it again",
				"service", call.Service, "method", call.Method, "correlation_id", call.CorrelationID)
			p.Expiration = time.Until(call.Deadline)
			continue
		case err == nil, errors.Is(err, transport.ErrUncertain):
			// Its reply can come to the reply queue, which outlives the connection.
			return nil
		case errors.Is(err, transport.ErrUnroutable):
			return serviceNotFoundError{service: call.Service}
		case errors.Is(err, transport.ErrClosed):
			return fmt.Errorf("calling %s.%s: %w", call.Service, call.Method, ErrClosed)
		case ctx.Err() != nil:
			return nil
		default:
			return fmt.Errorf("calling %s.%s: %w", call.Service, call.Method, err)
		}
	}
}

// ended is the error of a call whose context ended before its reply came.
func (c *Client) ended(ctx context.Context, call *CallInfo) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && !call.Deadline.After(call.started):
		return fmt.Errorf("calling %s.%s: its deadline had passed before the call was made: %w",
			call.Service, call.Method, ErrTimeout)
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("calling %s.%s: no reply within %s: %w",
			call.Service, call.Method, call.Deadline.Sub(call.started).Round(time.Millisecond), ErrTimeout)
	case context.Cause(ctx) != ctx.Err():
		return fmt.Errorf("calling %s.%s: %w (%v)", call.Service, call.Method, ctx.Err(), context.Cause(ctx))
	}
	return fmt.Errorf("calling %s.%s: %w", call.Service, call.Method, ctx.Err())
}
