package amqp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"io"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/testbroker"
	"github.com/hypha-go/hypha/transport"
	"github.com/hypha-go/hypha/transport/amqp/internal/frame"
	"github.com/hypha-go/hypha/transport/internal/wire"
)

// fuzzing reports whether this process is a worker of go test -fuzz, which
// has no broker (see testbroker).
func fuzzing() bool {
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}

// FuzzPublish publishes random routing keys, exchanges, properties and
// headers (nested, of odd types, with long names). Everywhere it checks the
// one check every publish passes against amqp091-go itself, on a fake
// broker in the process: what the check accepts, amqp091-go encodes, in the
// size the check computed, and Hypha's frame reader reads unchanged; what
// amqp091-go cannot encode, the check refuses. Under go test (not in a fuzz
// worker, which has no broker) each input also goes to RabbitMQ through
// connection.Publish, and the connection must never be lost over it.
func FuzzPublish(f *testing.F) {
	f.Add("", "calculator."+strings.Repeat("m", 300), "application/json|utf-8|corr|reply|id", int64(0), []byte{})
	f.Add("", "calculator.add", "application/json|utf-8|corr|reply|id", int64(1000),
		[]byte{1, 3, 3, 'a', 'b', 'c', 1, 14, 2, 'h', 'i', 1, 'n', 1, 9, 0, 0, 0, 1, 0, 0, 0, 0, 1, 't', 1, 16, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add("", strings.Repeat("k", 255), "", int64(0), []byte{1, 1, 1, 'a', 40, 0})                            // 255 bytes each
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'a', 48, 0})                                                 // a header name of 256
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'f', 1, 13, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1})                   // NaN
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'd', 1, 20, 0, 2})                                           // nested 32 deep
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'd', 1, 20, 0, 3})                                           // nested 33 deep
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'l', 1, 21, 2})                                              // a list of 8192
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'l', 1, 21, 3})                                              // a list of 8193
	f.Add("", "q", "", int64(0), []byte{1, 2, 1, 'o', 1, 22, 1, 1, 'p', 1, 22, 4})                            // odd types
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'u', 1, 11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // over int64
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'p', 1, 23, 197})                                            // within the frame size
	f.Add("", "q", "", int64(0), []byte{1, 1, 1, 'p', 1, 23, 199})                                            // over it
	f.Add("", "caf\xe9", "", int64(0), []byte{})
	f.Add("amq.direct", "q", strings.Repeat("c", 256), int64(0), []byte{})
	f.Add("", "q", "", int64(math.MaxInt64), []byte{})
	f.Add("", "q", "", int64(wire.MaxExpiration), []byte{1, 1, 1, 'a', 1, 18, 3, 14, 1, 'x', 4, 0, 0, 0, 0, 0, 0, 0, 5, 19, 1, 1, 'k', 1, 1, 1})

	lim := wire.Limits{MaxMessageSize: 1 << 20, FrameSize: defaultFrameSize}
	var lb *fakeBroker
	f.Cleanup(func() {
		if lb != nil {
			lb.close()
		}
	})
	var b *connection
	var restores atomic.Int32
	if !fuzzing() {
		var err error
		b, err = Dial(context.Background(), testbroker.URI(f), Options{MaxMessageSize: lim.MaxMessageSize,
			OnRestore: func() { restores.Add(1) }})
		if err != nil {
			f.Fatal(err)
		}
		f.Cleanup(func() { b.Close() })
	}
	f.Fuzz(func(t *testing.T, exchange, key, props string, expiration int64, headers []byte) {
		p := transport.Publishing{Exchange: exchange, RoutingKey: key, Message: transport.Message{
			Body: []byte("b"), Expiration: time.Duration(expiration), Headers: (&gen{b: headers}).headers(),
		}}
		fields := strings.SplitN(props, "|", 5)
		for i, dst := range []*string{&p.ContentType, &p.ContentEncoding, &p.CorrelationID, &p.ReplyTo, &p.MessageID} {
			if i < len(fields) {
				*dst = fields[i]
			}
		}
		checked := lim.Publishing(p)
		if checked != nil && !errors.Is(checked, transport.ErrInvalid) && !errors.Is(checked, transport.ErrTooLarge) {
			t.Fatalf("refused with neither ErrInvalid nor ErrTooLarge: %v", checked)
		}

		if lb == nil {
			lb = newFakeBroker(t)
		}
		pub, err := publishing(p.Message)
		var header []byte
		if err == nil {
			if header, err = lb.publish(t, p.Exchange, p.RoutingKey, pub); err != nil {
				lb.close() // amqp091-go is closing the connection over it
				lb = nil
			}
		}
		switch {
		case err != nil && checked == nil:
			t.Fatalf("accepted, but amqp091-go cannot send it: %v", err)
		case err == nil && checked == nil:
			size, _ := wire.ContentHeaderSize(p.Message)
			if len(header) != size {
				t.Fatalf("content header of %d bytes, computed %d", len(header), size)
			}
			in := rawFrame(frame.TypeHeader, 1, header)
			r := frame.NewReader(bytes.NewReader(in), frame.Limits{MaxBody: lim.MaxMessageSize, FrameSize: uint32(lim.FrameSize)})
			out, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(in, out) {
				t.Fatalf("accepted, but Hypha's consumers cannot read it as sent: %v", err)
			}
		}

		if b == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = b.Publish(ctx, p)
		switch {
		case checked != nil && !errors.Is(err, transport.ErrInvalid) && !errors.Is(err, transport.ErrTooLarge):
			t.Fatalf("Publish: %v, want the check's %v", err, checked)
		case errors.Is(err, transport.ErrUncertain), errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("Publish: %v", err)
		}
		if n := restores.Load(); n != 0 {
			t.Fatalf("the broker connection was lost and restored %d times", n)
		}
	})
}

// gen builds headers from fuzz bytes, each byte choosing what comes next;
// it runs out into zeros.
type gen struct{ b []byte }

func (g *gen) byte() byte {
	if len(g.b) == 0 {
		return 0
	}
	c := g.b[0]
	g.b = g.b[1:]
	return c
}

func (g *gen) uint64() uint64 {
	var b [8]byte
	for i := range b {
		b[i] = g.byte()
	}
	return binary.BigEndian.Uint64(b[:])
}

func (g *gen) str() string {
	n := min(int(g.byte()), len(g.b))
	s := string(g.b[:n])
	g.b = g.b[n:]
	return s
}

func (g *gen) headers() map[string]any {
	if g.byte()%8 == 0 {
		return nil
	}
	return g.table(0)
}

func (g *gen) table(depth int) map[string]any {
	n := int(g.byte() % 8)
	m := make(map[string]any, n)
	for range n {
		k := g.str()
		if c := g.byte(); c%8 == 0 {
			k = strings.Repeat("k", 250+int(c/8)) // around AMQP's 255 bytes
		}
		m[k] = g.value(depth + 1)
	}
	return m
}

func (g *gen) value(depth int) any {
	if depth > 40 {
		return nil
	}
	switch g.byte() % 24 {
	case 0:
		return nil
	case 1:
		return g.byte()%2 == 0
	case 2:
		return int8(g.byte())
	case 3:
		return g.byte()
	case 4:
		return int16(g.uint64())
	case 5:
		return uint16(g.uint64())
	case 6:
		return int32(g.uint64())
	case 7:
		return uint32(g.uint64())
	case 8:
		return int64(g.uint64())
	case 9:
		return int(g.uint64())
	case 10:
		return uint(g.uint64())
	case 11:
		return g.uint64()
	case 12:
		return math.Float32frombits(uint32(g.uint64()))
	case 13:
		return math.Float64frombits(g.uint64())
	case 14:
		return g.str()
	case 15:
		return []byte(g.str())
	case 16:
		return time.Unix(int64(g.uint64())>>20, 0)
	case 17:
		return strings.Fields(g.str())
	case 18:
		l := make([]any, g.byte()%6)
		for i := range l {
			l[i] = g.value(depth + 1)
		}
		return l
	case 19:
		return g.table(depth)
	case 20: // around amqp091-go's nesting limit
		v := g.value(depth + 1)
		for range 30 + int(g.byte()%6) {
			v = map[string]any{"n": v}
		}
		return v
	case 21: // around amqp091-go's entry limit
		return make([]any, 8190+int(g.byte()%6))
	case 22: // types AMQP cannot carry
		return [...]any{struct{}{}, map[string]string{"a": "b"}, []int{1}, complex(1, 2), make(chan int), &struct{}{}}[g.byte()%6]
	default: // large, to reach the frame size
		return strings.Repeat("v", int(g.byte())*660)
	}
}
