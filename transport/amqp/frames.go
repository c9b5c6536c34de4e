package amqp

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
)

// amqp091-go closes the whole connection when one incoming frame is not to its
// liking, and the message that caused it comes back after every reconnect:
// field-table type 'L' (py-amqp and kombu send every int outside int32 so),
// tables or arrays over 8192 entries or nested deeper than 32, and a content
// header frame within 8 bytes of frame_max. The frame reader below rewrites
// such content headers before amqp091-go reads them, and enforces
// MAX_MESSAGE_SIZE from the body size the content header announces.
//
// What amqp091-go upstream should change, so that this can go: read 'L' as
// an int64 (or uint64), make the container and depth limits configurable,
// and report a content header it cannot read as an error on that one
// delivery instead of closing the connection.

// AMQP frame types and the frame-end octet.
const (
	frameMethod    = 1
	frameHeader    = 2
	frameBody      = 3
	frameHeartbeat = 8
	frameEnd       = 0xCE

	frameOverhead = 8    // type, channel, size and frame-end around a payload
	frameMinSize  = 4096 // the smallest frame_max AMQP allows
	tunePayload   = 12   // connection.tune: class, method, channel-max, frame-max, heartbeat
	fixedHeader   = 14   // class, weight, body size, first flags word
	maxWhy        = 200  // bytes of reason kept in the marker header
)

// malformedHeader is the header the frame reader puts in a content header it
// had to change; its value says why. delivery turns it into Delivery.Malformed.
const malformedHeader = "x-hypha-malformed"

// errFraming is a byte stream that is not AMQP frames: the connection cannot
// go on, as it could not with amqp091-go reading it directly.
var errFraming = errors.New("hypha: AMQP framing error")

// frameLimits configure a frameReader.
type frameLimits struct {
	maxBody      int64  // MAX_MESSAGE_SIZE
	frameSize    uint32 // the frame_max the client asks for
	heartbeatOff bool   // make connection.tune propose no heartbeat
}

// frameConn is the broker connection as amqp091-go sees it: reads come
// through a frameReader, writes go through a writeBehind, and everything
// else goes to the connection as it is.
type frameConn struct {
	net.Conn
	r *frameReader
	w *writeBehind
}

func newFrameConn(c net.Conn, limits frameLimits) *frameConn {
	if limits.frameSize == 0 {
		limits.frameSize = defaultFrameSize
	}
	return &frameConn{Conn: c, r: newFrameReader(c, limits), w: newWriteBehind(c)}
}

func (c *frameConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *frameConn) Write(p []byte) (int, error) { return c.w.Write(p) }

// Close writes what is still pending, then closes the connection.
func (c *frameConn) Close() error { return c.w.Close() }

// setFrameMax records the negotiated frame_max.
func (c *frameConn) setFrameMax(n int) {
	if n > 0 {
		c.r.frameMax.Store(uint32(n))
	}
}

// frameMax is the negotiated frame_max (the requested one before tuning).
func (c *frameConn) frameMax() int { return int(c.r.limit()) }

// frameReader passes AMQP frames through from src and rewrites content header
// frames amqp091-go would refuse; it drops the body frames of a message over
// MAX_MESSAGE_SIZE as they arrive, without holding them. Method, body and
// heartbeat frames stream through without being copied aside.
type frameReader struct {
	src      *bufio.Reader
	limits   frameLimits
	frameMax atomic.Uint32 // negotiated frame_max; zero until connection.tune

	out  []byte // rewritten frame still to hand out
	buf  []byte // backing store of out, reused
	tbl  []byte // scratch: the headers table, with its length
	post []byte // scratch: the properties after the headers
	pass int64  // bytes of the current frame still to stream through from src
	left int64  // payload bytes of the content header being read
	err  error  // sticky

	skip map[uint16]uint64 // body bytes still to drop, per channel
}

func newFrameReader(src io.Reader, limits frameLimits) *frameReader {
	return &frameReader{src: bufio.NewReaderSize(src, 64<<10), limits: limits}
}

// limit is the frame_max frames are checked against.
func (r *frameReader) limit() uint32 {
	if n := r.frameMax.Load(); n > 0 {
		return n
	}
	return r.limits.frameSize
}

// Read hands out the frames, rewritten where needed.
func (r *frameReader) Read(p []byte) (int, error) {
	for len(p) > 0 {
		switch {
		case len(r.out) > 0:
			n := copy(p, r.out)
			r.out = r.out[n:]
			return n, nil
		case r.pass > 0:
			n, err := r.src.Read(p[:min(int64(len(p)), r.pass)])
			r.pass -= int64(n)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		case r.err != nil:
			return 0, r.err
		}
		r.err = r.next()
	}
	return 0, nil
}

// next reads the next frame's header and decides what to do with the frame.
func (r *frameReader) next() error {
	hdr, err := r.src.Peek(7)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	typ, ch, size := hdr[0], binary.BigEndian.Uint16(hdr[1:3]), binary.BigEndian.Uint32(hdr[3:7])
	switch typ {
	case frameHeader:
		return r.header(ch, size)
	case frameBody:
		if left, ok := r.skip[ch]; ok {
			return r.drop(ch, size, left)
		}
	case frameMethod:
		if len(r.skip) > 0 {
			delete(r.skip, ch) // a method interrupts content, as amqp091-go reads it
		}
		if ch == 0 && size == tunePayload {
			return r.tune()
		}
	case frameHeartbeat:
	default:
		return fmt.Errorf("%w: frame type %d", errFraming, typ)
	}
	r.pass = int64(size) + frameOverhead
	return nil
}

// tune learns frame_max from connection.tune, and proposes no heartbeat
// when heartbeats are off: amqp091-go takes the server's proposal when its
// own is zero, so the broker's must be zero too for none to be agreed.
func (r *frameReader) tune() error {
	const n = 7 + tunePayload + 1
	r.buf = sized(r.buf, n)
	if _, err := io.ReadFull(r.src, r.buf); err != nil {
		return unexpected(err)
	}
	p := r.buf[7 : 7+tunePayload]
	if binary.BigEndian.Uint16(p[0:2]) == 10 && binary.BigEndian.Uint16(p[2:4]) == 30 {
		r.frameMax.Store(negotiateFrameMax(r.limits.frameSize, binary.BigEndian.Uint32(p[6:10])))
		if r.limits.heartbeatOff {
			binary.BigEndian.PutUint16(p[10:12], 0)
		}
	}
	r.out = r.buf
	return nil
}

// negotiateFrameMax is the frame_max amqp091-go settles on.
func negotiateFrameMax(client, server uint32) uint32 {
	n := min(client, server)
	if client == 0 || server == 0 {
		n = max(client, server)
	}
	if n > 0 && n < frameMinSize {
		n = frameMinSize
	}
	return n
}

// drop discards a body frame of a message over MAX_MESSAGE_SIZE.
func (r *frameReader) drop(ch uint16, size uint32, left uint64) error {
	if _, err := r.src.Discard(7 + int(size)); err != nil {
		return unexpected(err)
	}
	if err := r.end(); err != nil {
		return err
	}
	if uint64(size) >= left {
		delete(r.skip, ch)
	} else {
		r.skip[ch] = left - uint64(size)
	}
	return nil
}

// end reads a frame-end octet.
func (r *frameReader) end() error {
	b, err := r.src.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	if b != frameEnd {
		return fmt.Errorf("%w: frame-end octet %#x", errFraming, b)
	}
	return nil
}

// sized is b resized to n bytes, reusing its array when it is large enough.
func sized(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// reasons gathers why a content header had to change.
type reasons []string

func (w *reasons) add(format string, args ...any) { *w = append(*w, fmt.Sprintf(format, args...)) }

func (w reasons) String() string {
	s := strings.Join(w, "; ")
	if len(s) > maxWhy {
		s = s[:maxWhy]
	}
	return s
}
