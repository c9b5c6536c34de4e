package frame

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"sync/atomic"
)

// A Reader passes AMQP frames through from src and rewrites content header
// frames amqp091-go would refuse; it drops the body frames of a message over
// MAX_MESSAGE_SIZE as they arrive, without holding them. Method, body and
// heartbeat frames stream through without being copied aside. It is what a
// Conn reads through. Read is for one goroutine at a time.
type Reader struct {
	src      *bufio.Reader
	limits   Limits
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

// NewReader reads the frames of src, checked against limits.
func NewReader(src io.Reader, limits Limits) *Reader {
	return &Reader{src: bufio.NewReaderSize(src, 64<<10), limits: limits}
}

// limit is the frame_max frames are checked against.
func (r *Reader) limit() uint32 {
	if n := r.frameMax.Load(); n > 0 {
		return n
	}
	return r.limits.FrameSize
}

// Read hands out the frames, rewritten where needed.
func (r *Reader) Read(p []byte) (int, error) {
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
func (r *Reader) next() error {
	hdr, err := r.src.Peek(7)
	if err != nil {
		if err == io.EOF && len(hdr) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	typ, ch, size := hdr[0], binary.BigEndian.Uint16(hdr[1:3]), binary.BigEndian.Uint32(hdr[3:7])
	switch typ {
	case TypeHeader:
		return r.header(ch, size)
	case TypeBody:
		if left, ok := r.skip[ch]; ok {
			return r.drop(ch, size, left)
		}
	case TypeMethod:
		if len(r.skip) > 0 {
			delete(r.skip, ch) // a method interrupts content, as amqp091-go reads it
		}
		if ch == 0 && size == tunePayload {
			return r.tune()
		}
	case TypeHeartbeat:
	default:
		return fmt.Errorf("%w: frame type %d", errFraming, typ)
	}
	r.pass = int64(size) + Overhead
	return nil
}

// tune learns frame_max from connection.tune, and proposes no heartbeat
// when heartbeats are off: amqp091-go takes the server's proposal when its
// own is zero, so the broker's must be zero too for none to be agreed.
func (r *Reader) tune() error {
	const n = 7 + tunePayload + 1
	r.buf = sized(r.buf, n)
	if _, err := io.ReadFull(r.src, r.buf); err != nil {
		return unexpected(err)
	}
	p := r.buf[7 : 7+tunePayload]
	if binary.BigEndian.Uint16(p[0:2]) == 10 && binary.BigEndian.Uint16(p[2:4]) == 30 {
		r.frameMax.Store(negotiateFrameMax(r.limits.FrameSize, binary.BigEndian.Uint32(p[6:10])))
		if r.limits.HeartbeatOff {
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
	if n > 0 && n < minSize {
		n = minSize
	}
	return n
}

// drop discards a body frame of a message over MAX_MESSAGE_SIZE.
func (r *Reader) drop(ch uint16, size uint32, left uint64) error {
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
func (r *Reader) end() error {
	b, err := r.src.ReadByte()
	if err != nil {
		return unexpected(err)
	}
	if b != End {
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
