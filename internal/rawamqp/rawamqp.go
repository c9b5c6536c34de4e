// Package rawamqp sends, for tests, what amqp091-go will not write: a plain
// amqp091-go connection whose outgoing content header frames pass through an
// edit first, so that a test can publish the headers a Python peer sends (64-bit
// integers typed 'L', say) through the real broker.
package rawamqp

import (
	"bytes"
	"encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

const (
	frameHeader = 2    // a content header frame
	frameEnd    = 0xCE // the octet that ends every frame
)

// Channel returns a channel on a new connection to uri, closed when t ends,
// whose content header payloads pass through edit (unchanged when nil).
func Channel(t testing.TB, uri string, edit func(payload []byte) []byte) *amqp091.Channel {
	t.Helper()
	cfg := amqp091.Config{Dial: func(network, addr string) (net.Conn, error) {
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil || edit == nil {
			return c, err
		}
		return &rewriter{Conn: c, edit: edit}, nil
	}}
	conn, err := amqp091.DialConfig(uri, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// Flip returns an edit that changes the type octet of every field encoded
// exactly as pattern (a type octet and its value) to typ.
func Flip(pattern []byte, typ byte) func([]byte) []byte {
	return func(p []byte) []byte {
		for i := bytes.Index(p, pattern); i >= 0; i = bytes.Index(p, pattern) {
			p[i] = typ
		}
		return p
	}
}

// Int64Field is v encoded as an AMQP table field of type 'l'; Flip it to 'L'
// to send it as py-amqp sends every integer outside int32.
func Int64Field(v int64) []byte { return binary.BigEndian.AppendUint64([]byte{'l'}, uint64(v)) }

// rewriter passes frames through, editing content header payloads.
type rewriter struct {
	net.Conn
	edit    func(payload []byte) []byte
	mu      sync.Mutex
	pending []byte
	started bool
}

func (w *rewriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pending = append(w.pending, p...)
	if !w.started && len(w.pending) >= 8 {
		// The protocol header comes first, not a frame.
		if _, err := w.Conn.Write(w.pending[:8]); err != nil {
			return 0, err
		}
		w.pending, w.started = w.pending[8:], true
	}
	for w.started && len(w.pending) >= 7 {
		size := int(binary.BigEndian.Uint32(w.pending[3:7]))
		if len(w.pending) < 8+size {
			break
		}
		f := w.pending[:8+size]
		if f[0] == frameHeader {
			payload := w.edit(bytes.Clone(f[7 : 7+size]))
			f = append(binary.BigEndian.AppendUint32(bytes.Clone(f[:3]), uint32(len(payload))), payload...)
			f = append(f, frameEnd)
		}
		if _, err := w.Conn.Write(f); err != nil {
			return 0, err
		}
		w.pending = w.pending[8+size:]
	}
	return len(p), nil
}
