// Package frame is the AMQP 0-9-1 byte stream between amqp091-go and the
// broker: a Conn reads the broker's frames through a Reader, which rewrites
// the content headers amqp091-go would refuse and drops the bodies of
// messages over MAX_MESSAGE_SIZE, and writes behind, so that no lock is held
// across a socket write. It knows frames only, nothing of a broker.
//
// amqp091-go closes the whole connection when one incoming frame is not to
// its liking, and the message that caused it comes back after every
// reconnect: field-table type 'L' (py-amqp and kombu send every int outside
// int32 so), tables or arrays over 8192 entries or nested deeper than 32,
// and a content header frame within 8 bytes of frame_max. The Reader
// rewrites such content headers before amqp091-go reads them, and enforces
// MAX_MESSAGE_SIZE from the body size the content header announces; the
// message then carries MalformedHeader, saying why.
//
// What amqp091-go upstream should change, so that this can go: read 'L' as
// an int64 (or uint64), make the container and depth limits configurable,
// and report a content header it cannot read as an error on that one
// delivery instead of closing the connection.
package frame

import (
	"errors"
	"net"
)

// AMQP frame types and the frame-end octet.
const (
	TypeMethod    = 1
	TypeHeader    = 2
	TypeBody      = 3
	TypeHeartbeat = 8
	End           = 0xCE
)

// Sizes of a frame's parts.
const (
	// Overhead is the type, channel, size and frame-end around a payload.
	Overhead = 8
	// FixedHeader is the fixed part of a content header's payload: class,
	// weight, body size and the first flags word.
	FixedHeader = 14

	minSize     = 4096 // the smallest frame_max AMQP allows
	tunePayload = 12   // connection.tune: class, method, channel-max, frame-max, heartbeat
)

// MalformedHeader is the header the Reader puts in a content header it had
// to change; its value says why. The broker adapter takes it out again and
// marks the delivery malformed.
const MalformedHeader = "x-hypha-malformed"

// errFraming is a byte stream that is not AMQP frames: the connection cannot
// go on, as it could not with amqp091-go reading it directly.
var errFraming = errors.New("hypha: AMQP framing error")

// Limits configure a Reader.
type Limits struct {
	// MaxBody is MAX_MESSAGE_SIZE: a message whose content header announces
	// a larger body arrives without it, marked malformed. Zero is no bound.
	MaxBody int64
	// FrameSize is the frame_max the client asks for, as given to
	// amqp091-go; frames are checked against it until connection.tune.
	FrameSize uint32
	// HeartbeatOff makes connection.tune propose no heartbeat.
	HeartbeatOff bool
}

// Conn is the broker connection as amqp091-go sees it: reads come through a
// Reader, writes go through a write-behind buffer, and everything else goes
// to the connection as it is.
type Conn struct {
	net.Conn
	r *Reader
	w *writeBehind
}

// NewConn wraps c, whose frames the Reader checks against limits.
func NewConn(c net.Conn, limits Limits) *Conn {
	return &Conn{Conn: c, r: NewReader(c, limits), w: newWriteBehind(c)}
}

// Read hands out the broker's frames, rewritten where amqp091-go would
// refuse them.
func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p and returns at once, unless too much is already waiting;
// one goroutine writes what has gathered, in the order it came.
func (c *Conn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close writes what is still pending, then closes the connection.
func (c *Conn) Close() error { return c.w.Close() }

// SetFrameMax records the negotiated frame_max; zero leaves it as it is.
func (c *Conn) SetFrameMax(n int) {
	if n > 0 {
		c.r.frameMax.Store(uint32(n))
	}
}

// FrameMax is the negotiated frame_max (the requested one before tuning).
func (c *Conn) FrameMax() int { return int(c.r.limit()) }
