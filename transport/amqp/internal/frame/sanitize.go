package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Content header property flags, in the order the properties are encoded.
const (
	flagContentType     = 0x8000
	flagContentEncoding = 0x4000
	flagHeaders         = 0x2000
	flagDeliveryMode    = 0x1000
	flagPriority        = 0x0800
	flagCorrelationID   = 0x0400
	flagReplyTo         = 0x0200
	flagExpiration      = 0x0100
	flagMessageID       = 0x0080
	flagTimestamp       = 0x0040
	flagType            = 0x0020
	flagUserID          = 0x0010
	flagAppID           = 0x0008
	flagClusterID       = 0x0004
	flagMore            = 0x0001 // another flags word follows
)

// afterHeaders are the properties encoded after the headers table, with
// their width in bytes (zero: a short string).
var afterHeaders = [...]struct {
	flag  uint16
	width int
}{
	{flagDeliveryMode, 1}, {flagPriority, 1}, {flagCorrelationID, 0}, {flagReplyTo, 0},
	{flagExpiration, 0}, {flagMessageID, 0}, {flagTimestamp, 8}, {flagType, 0},
	{flagUserID, 0}, {flagAppID, 0}, {flagClusterID, 0},
}

// What a content header's headers table turned out to be.
const (
	noTable   = iota // the message has no headers
	goodTable        // r.tbl holds headers amqp091-go can read
	badTable         // the headers were dropped; the reasons say why
)

// errShort: a property runs past the end of the content header.
var errShort = errors.New("hypha: content header truncated")

// header reads a content header frame and hands out one amqp091-go can read:
// the same, or with 'L' integers made 'l', or with the headers replaced by
// (or, when only the body is too large, added to) the malformed marker.
func (r *Reader) header(ch uint16, size uint32) error {
	if size < FixedHeader {
		return fmt.Errorf("%w: content header of %d bytes", errFraming, size)
	}
	r.buf = sized(r.buf, 7+FixedHeader)
	if _, err := io.ReadFull(r.src, r.buf); err != nil {
		return unexpected(err)
	}
	r.left = int64(size) - FixedHeader
	r.tbl, r.post = r.tbl[:0], r.post[:0]
	var why reasons
	kept, tbl, err := r.properties(binary.BigEndian.Uint16(r.buf[7+12:]), &why)
	if err != nil {
		return err
	}
	// Whatever is left is padding, or properties of flags words amqp091-go
	// does not read.
	if _, err := r.src.Discard(int(r.left)); err != nil {
		return unexpected(err)
	}
	if err := r.end(); err != nil {
		return err
	}
	delete(r.skip, ch)
	if body := binary.BigEndian.Uint64(r.buf[7+4:]); body > uint64(r.limits.MaxBody) && r.limits.MaxBody > 0 {
		why.add("message body of %d bytes is over MAX_MESSAGE_SIZE %d", body, r.limits.MaxBody)
		binary.BigEndian.PutUint64(r.buf[7+4:], 0)
		if r.skip == nil {
			r.skip = map[uint16]uint64{}
		}
		r.skip[ch] = body
	}
	if len(why) > 0 {
		if tbl != goodTable {
			r.tbl = r.tbl[:0]
		}
		r.tbl = appendMarker(r.tbl, why.String())
	}
	limit := int(r.limit()) - Overhead
	if n := len(r.buf) - 7 + len(r.tbl) + len(r.post); tbl == goodTable && n > limit {
		why.add("message headers of %d bytes do not fit the frame size %d", len(r.tbl), r.limit())
		r.tbl = appendMarker(r.tbl[:0], why.String())
	}
	if len(r.tbl) > 0 {
		kept |= flagHeaders
	}
	r.buf = append(r.buf, r.tbl...)
	r.buf = append(r.buf, r.post...)
	r.buf = append(r.buf, End)
	binary.BigEndian.PutUint32(r.buf[3:7], uint32(len(r.buf)-Overhead))
	binary.BigEndian.PutUint16(r.buf[7+12:], kept)
	r.out = r.buf
	return nil
}

// properties reads the properties flags announces: those before the headers
// into r.buf, the headers into r.tbl, those after into r.post. It returns
// the flags of the properties kept and what the headers table was. A
// property that runs past the frame ends the reading, with a reason.
func (r *Reader) properties(flags uint16, why *reasons) (kept uint16, tbl int, err error) {
	for more := flags; more&flagMore != 0; {
		if more, err = r.u16(); err != nil {
			return kept, tbl, stop(err, why)
		}
	}
	for _, f := range [...]uint16{flagContentType, flagContentEncoding} {
		if flags&f != 0 {
			if r.buf, err = r.shortstr(r.buf); err != nil {
				return kept, tbl, stop(err, why)
			}
			kept |= f
		}
	}
	if flags&flagHeaders != 0 {
		if tbl, err = r.table(why); err != nil {
			return kept, tbl, stop(err, why)
		}
	}
	for _, p := range afterHeaders {
		if flags&p.flag == 0 {
			continue
		}
		if p.width == 0 {
			r.post, err = r.shortstr(r.post)
		} else {
			r.post, err = r.bytes(r.post, p.width)
		}
		if err != nil {
			return kept, tbl, stop(err, why)
		}
		kept |= p.flag
	}
	return kept, tbl, nil
}

// stop turns a property that runs past the frame into a reason; any other
// error is the connection's.
func stop(err error, why *reasons) error {
	if !errors.Is(err, errShort) {
		return err
	}
	if len(*why) == 0 {
		why.add("message properties run past the end of the content header")
	}
	return nil
}

// table reads the headers table into r.tbl, turning 'L' into 'l'. A table
// too large for a frame is skipped without being held.
func (r *Reader) table(why *reasons) (int, error) {
	var err error
	if r.tbl, err = r.bytes(r.tbl[:0], 4); err != nil {
		return badTable, err
	}
	n := int64(binary.BigEndian.Uint32(r.tbl))
	switch {
	case n > r.left:
		why.add("message headers of %d bytes run past the end of the content header", n)
		return badTable, errShort
	case n > int64(r.limit()):
		if _, err := r.src.Discard(int(n)); err != nil {
			return badTable, unexpected(err)
		}
		r.left -= n
		why.add("message headers of %d bytes do not fit the frame size %d", n, r.limit())
		return badTable, nil
	}
	if r.tbl, err = r.bytes(r.tbl, int(n)); err != nil {
		return badTable, err
	}
	if err := checkTable(r.tbl[4:], 0); err != nil {
		why.add("message headers amqp091-go cannot read: %v", err)
		return badTable, nil
	}
	return goodTable, nil
}

// bytes appends the next n bytes of the content header to dst.
func (r *Reader) bytes(dst []byte, n int) ([]byte, error) {
	if int64(n) > r.left {
		return dst, errShort
	}
	l := len(dst)
	dst = slices.Grow(dst, n)[:l+n]
	if _, err := io.ReadFull(r.src, dst[l:]); err != nil {
		return dst[:l], unexpected(err)
	}
	r.left -= int64(n)
	return dst, nil
}

// shortstr appends the next short string of the content header to dst.
func (r *Reader) shortstr(dst []byte) ([]byte, error) {
	l := len(dst)
	dst, err := r.bytes(dst, 1)
	if err != nil {
		return dst, err
	}
	if dst, err = r.bytes(dst, int(dst[l])); err != nil {
		return dst[:l], err
	}
	return dst, nil
}

// u16 reads the next two bytes of the content header.
func (r *Reader) u16() (uint16, error) {
	var v uint16
	for range 2 {
		if r.left < 1 {
			return 0, errShort
		}
		b, err := r.src.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		r.left--
		v = v<<8 | uint16(b)
	}
	return v, nil
}

// appendMarker adds the malformed marker to an encoded table (its 4-byte
// length first), or makes a table of it when tbl is empty.
func appendMarker(tbl []byte, why string) []byte {
	if len(tbl) < 4 {
		tbl = append(tbl[:0], 0, 0, 0, 0)
	}
	tbl = append(tbl, byte(len(MalformedHeader)))
	tbl = append(tbl, MalformedHeader...)
	tbl = append(tbl, 'S')
	tbl = binary.BigEndian.AppendUint32(tbl, uint32(len(why)))
	tbl = append(tbl, why...)
	binary.BigEndian.PutUint32(tbl, uint32(len(tbl)-4))
	return tbl
}

// maxWhy is the most bytes of reasons the marker header keeps.
const maxWhy = 200

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
