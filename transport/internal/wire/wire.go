// Package wire knows what AMQP 0-9-1, amqp091-go and RabbitMQ can carry, so
// that every broker implementation refuses the same inputs with the same
// errors before a byte is written.
//
// What it guards against is worse than one failed call: amqp091-go closes
// the whole connection when it cannot encode a short string (a routing key
// over 255 bytes), and RabbitMQ closes it for a name that is not UTF-8, a
// NaN in a header or an unknown exchange type; the connection comes back,
// the caller sends the same thing again, and every other publisher and
// consumer on the connection goes down with it, in a loop. Each check
// returns an error wrapping transport.ErrInvalid, or transport.ErrTooLarge
// for sizes, that names the field and its limit; sending the same again
// fails alike, so no caller retries it.
package wire

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/hypha-go/hypha/transport"
)

// The limits the checks enforce.
const (
	// MaxShortString is AMQP's bound on a short string: names, routing
	// keys, header names and message properties, in bytes.
	MaxShortString = 255
	// MaxDepth is how deeply tables and lists may nest in headers or
	// arguments: amqp091-go refuses to read deeper ones.
	MaxDepth = 32
	// MaxEntries is the most entries one table or list may hold:
	// amqp091-go refuses to read more.
	MaxEntries = 8192
	// MaxExpiration is the longest per-message expiration RabbitMQ
	// accepts (ten years); a longer one closes the publishing channel.
	MaxExpiration = 315360000000 * time.Millisecond
	// MaxPrefetch is the largest prefetch AMQP's basic.qos can carry.
	MaxPrefetch = math.MaxUint16
	// DefaultFrameSize is the frame_max Hypha asks the broker for:
	// RabbitMQ's own default.
	DefaultFrameSize = 131072

	headers       = "headers" // RabbitMQ's fourth exchange type, which the embedded broker lacks
	frameOverhead = 8         // type, channel, size and frame-end around a payload
	fixedHeader   = 14        // content header: class, weight, body size, flags
)

// Limits are a connection's bounds on what it sends.
type Limits struct {
	// MaxMessageSize bounds a message's body, in bytes (MAX_MESSAGE_SIZE).
	MaxMessageSize int64
	// FrameSize is the connection's frame_max: a message's properties and
	// headers travel in one frame, a declaration's arguments too.
	FrameSize int
}

// Expiration is the expiration property a message with expiration d
// carries: whole milliseconds, at least one; "" for none.
func Expiration(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return strconv.FormatInt(max(d.Milliseconds(), 1), 10)
}

// Publishing reports why p cannot be sent, or nil.
func (l Limits) Publishing(p transport.Publishing) error {
	if err := Name("exchange", p.Exchange); err != nil {
		return err
	}
	if err := Name("routing key", p.RoutingKey); err != nil {
		return err
	}
	for _, f := range [...]struct{ field, s string }{
		{"content type", p.ContentType}, {"content encoding", p.ContentEncoding},
		{"correlation id", p.CorrelationID}, {"reply_to", p.ReplyTo}, {"message id", p.MessageID},
	} {
		if err := shortstr(f.field, f.s); err != nil {
			return err
		}
	}
	if p.Expiration > MaxExpiration {
		return fmt.Errorf("%w: the expiration of %v is over RabbitMQ's limit of %v", transport.ErrInvalid,
			p.Expiration, MaxExpiration)
	}
	if int64(len(p.Body)) > l.MaxMessageSize {
		return fmt.Errorf("%w: message body of %d bytes is over MAX_MESSAGE_SIZE %d",
			transport.ErrTooLarge, len(p.Body), l.MaxMessageSize)
	}
	n, err := ContentHeaderSize(p.Message)
	if err != nil {
		return err
	}
	if n > l.FrameSize-frameOverhead {
		return fmt.Errorf("%w: message properties and headers of %d bytes do not fit the broker's frame size %d",
			transport.ErrTooLarge, n, l.FrameSize)
	}
	return nil
}

// ContentHeaderSize is the size of the content header frame's payload that
// carries m, as amqp091-go encodes it (the delivery mode is always sent),
// or the reason its headers cannot travel.
func ContentHeaderSize(m transport.Message) (int, error) {
	n := fixedHeader + 1
	for _, s := range [...]string{m.ContentType, m.ContentEncoding, m.CorrelationID, m.ReplyTo, m.MessageID} {
		if s != "" {
			n += 1 + len(s)
		}
	}
	if m.Expiration > 0 {
		var digits [20]byte
		n += 1 + len(strconv.AppendInt(digits[:0], max(m.Expiration.Milliseconds(), 1), 10))
	}
	if len(m.Headers) > 0 {
		t, err := table(m.Headers, "header")
		if err != nil {
			return 0, err
		}
		n += t
	}
	return n, nil
}

// Exchange reports why ex cannot be declared, or nil.
func Exchange(ex transport.Exchange) error {
	if err := Name("exchange name", ex.Name); err != nil {
		return err
	}
	switch ex.Kind {
	case transport.Topic, transport.Direct, transport.Fanout, headers:
		return nil
	}
	// RabbitMQ closes the connection for a type it does not know, and a
	// plugin's type cannot be told from a typo before it is sent.
	return fmt.Errorf("%w: exchange %s: the kind %s is not one of RabbitMQ's %q, %q, %q or %q", transport.ErrInvalid,
		Quote(ex.Name), clip(ex.Kind), transport.Topic, transport.Direct, transport.Fanout, headers)
}

// Queue reports why q and its bindings cannot be declared, or nil.
func (l Limits) Queue(q transport.Queue) error {
	if err := Name("queue name", q.Name); err != nil {
		return err
	}
	// queue.declare: class, method, ticket, the name, the flags, the arguments.
	n := 2 + 2 + 2 + 1 + len(q.Name) + 1 + 4
	if len(q.Args) > 0 {
		t, err := table(q.Args, "queue argument")
		if err != nil {
			return fmt.Errorf("queue %s: %w", Quote(q.Name), err)
		}
		n += t - 4
	}
	if n > l.FrameSize-frameOverhead {
		return fmt.Errorf("%w: queue %s: its declaration of %d bytes does not fit the broker's frame size %d",
			transport.ErrTooLarge, Quote(q.Name), n, l.FrameSize)
	}
	for _, b := range q.Bindings {
		if err := Name("binding's exchange", b.Exchange); err != nil {
			return fmt.Errorf("queue %s: %w", Quote(q.Name), err)
		}
		if err := Name("binding key", b.RoutingKey); err != nil {
			return fmt.Errorf("queue %s: %w", Quote(q.Name), err)
		}
	}
	return nil
}

// Consume reports why opts cannot start a consumer, or nil.
func Consume(opts transport.ConsumeOptions) error {
	if err := Name("queue name", opts.Queue); err != nil {
		return err
	}
	if opts.Prefetch < 0 || opts.Prefetch > MaxPrefetch {
		return fmt.Errorf("%w: queue %s: prefetch %d is not within 0 and AMQP's %d", transport.ErrInvalid,
			Quote(opts.Queue), opts.Prefetch, MaxPrefetch)
	}
	return nil
}

// Name reports why s cannot travel as the name or key field, or nil: a
// short string, in UTF-8 (RabbitMQ closes the connection for a name or
// binding key that is not).
func Name(field, s string) error {
	if err := shortstr(field, s); err != nil {
		return err
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: the %s %s is not valid UTF-8, which RabbitMQ requires", transport.ErrInvalid, field, clip(s))
	}
	return nil
}

func shortstr(field, s string) error {
	if len(s) > MaxShortString {
		return fmt.Errorf("%w: the %s %s is %d bytes, over AMQP's limit of %d for a short string", transport.ErrInvalid,
			field, clip(s), len(s), MaxShortString)
	}
	return nil
}

// Quote quotes a name or key for an error message: whole when it is within
// AMQP's limit, else cut as clip cuts it.
func Quote(s string) string {
	if len(s) <= MaxShortString {
		return strconv.Quote(s)
	}
	return clip(s)
}

// clip quotes s, cut to its first 40 bytes: enough to tell which it was.
func clip(s string) string {
	const keep = 40
	if len(s) <= keep {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:keep]) + "…"
}
