package amqp

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/hypha-go/hypha/transport/amqp/internal/frame"
)

// fakeBroker is an amqp091-go channel on a fake broker inside the test
// process, which answers the handshake and channel.open and hands over the
// content header of every message published: what amqp091-go encodes, and
// whether it could, without a RabbitMQ (fuzz workers have none).
type fakeBroker struct {
	conn    *amqp091.Connection
	ch      *amqp091.Channel
	headers chan []byte   // content header payloads, in order
	done    chan struct{} // closed when the fake broker has returned
}

func newFakeBroker(t testing.TB) *fakeBroker {
	t.Helper()
	client, server := net.Pipe()
	l := &fakeBroker{headers: make(chan []byte, 16), done: make(chan struct{})}
	go l.serve(server)
	conn, err := amqp091.Open(client, amqp091.Config{
		SASL: []amqp091.Authentication{&amqp091.PlainAuth{Username: "u", Password: "p"}}, FrameSize: defaultFrameSize,
		Locale: "en_US",
	})
	if err != nil {
		client.Close()
		<-l.done
		t.Fatal(err)
	}
	l.conn = conn
	if l.ch, err = conn.Channel(); err != nil {
		l.close()
		t.Fatal(err)
	}
	return l
}

// publish publishes pub and returns the content header amqp091-go wrote,
// or the error amqp091-go gave.
func (l *fakeBroker) publish(t testing.TB, exchange, key string, pub amqp091.Publishing) ([]byte, error) {
	t.Helper()
	if err := l.ch.Publish(exchange, key, false, false, pub); err != nil {
		return nil, err
	}
	select {
	case h := <-l.headers:
		return h, nil
	case <-time.After(10 * time.Second):
		t.Fatal("the published message never reached the fake broker")
		return nil, nil
	}
}

// close closes the connection and waits for the fake broker to return.
func (l *fakeBroker) close() {
	_ = l.conn.Close()
	<-l.done
}

// serve plays the broker on c until the client closes the connection or
// the pipe breaks.
func (l *fakeBroker) serve(c net.Conn) {
	defer close(l.done)
	defer c.Close()
	r := bufio.NewReader(c)
	if _, err := io.ReadFull(r, make([]byte, 8)); err != nil { // the protocol header
		return
	}
	// connection.start: version 0-9, no server properties, PLAIN, en_US.
	start := []byte{0, 10, 0, 10, 0, 9, 0, 0, 0, 0}
	start = append(binary.BigEndian.AppendUint32(start, 5), "PLAIN"...)
	start = append(binary.BigEndian.AppendUint32(start, 5), "en_US"...)
	if !send(c, 0, start) {
		return
	}
	for {
		typ, ch, payload, err := readFrame(r)
		if err != nil {
			return
		}
		if typ == frame.TypeHeader {
			select {
			case l.headers <- payload:
			default: // nobody asked for it
			}
			continue
		}
		if typ != frame.TypeMethod || len(payload) < 4 {
			continue
		}
		var reply []byte
		switch class, method := binary.BigEndian.Uint16(payload), binary.BigEndian.Uint16(payload[2:]); {
		case class == 10 && method == 11: // start-ok: tune, no channel max, frame_max, no heartbeat
			reply = binary.BigEndian.AppendUint32([]byte{0, 10, 0, 30, 0, 0}, defaultFrameSize)
			reply = append(reply, 0, 0)
		case class == 10 && method == 40: // open
			reply = []byte{0, 10, 0, 41, 0}
		case class == 10 && method == 50: // close
			send(c, 0, []byte{0, 10, 0, 51})
			return
		case class == 20 && method == 10: // channel.open
			reply = []byte{0, 20, 0, 11, 0, 0, 0, 0}
		case class == 20 && method == 40: // channel.close
			reply = []byte{0, 20, 0, 41}
		}
		if reply != nil && !send(c, ch, reply) {
			return
		}
	}
}

func send(c net.Conn, ch uint16, payload []byte) bool {
	_, err := c.Write(rawFrame(frame.TypeMethod, ch, payload))
	return err == nil
}

// rawFrame is a frame of type typ on channel ch that carries payload.
func rawFrame(typ byte, ch uint16, payload []byte) []byte {
	f := []byte{typ, byte(ch >> 8), byte(ch)}
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, frame.End)
}

func readFrame(r *bufio.Reader) (typ byte, ch uint16, payload []byte, err error) {
	hdr := make([]byte, 7)
	if _, err = io.ReadFull(r, hdr); err != nil {
		return
	}
	payload = make([]byte, binary.BigEndian.Uint32(hdr[3:])+1)
	if _, err = io.ReadFull(r, payload); err != nil {
		return
	}
	return hdr[0], binary.BigEndian.Uint16(hdr[1:]), payload[:len(payload)-1], nil
}
