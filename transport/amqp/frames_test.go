package amqp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
)

// Builders for raw AMQP frames and field tables.

func rawFrame(typ byte, ch uint16, payload []byte) []byte {
	f := []byte{typ, byte(ch >> 8), byte(ch)}
	f = binary.BigEndian.AppendUint32(f, uint32(len(payload)))
	f = append(f, payload...)
	return append(f, frameEnd)
}

// rawHeader is a content header frame; props are the encoded properties flags announces.
func rawHeader(ch uint16, body uint64, flags uint16, props ...[]byte) []byte {
	p := []byte{0, 60, 0, 0}
	p = binary.BigEndian.AppendUint64(p, body)
	p = binary.BigEndian.AppendUint16(p, flags)
	for _, x := range props {
		p = append(p, x...)
	}
	return rawFrame(frameHeader, ch, p)
}

func shortstr(s string) []byte { return append([]byte{byte(len(s))}, s...) }

func longstr(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// tbl encodes a field table from key, field pairs.
func tbl(kv ...any) []byte {
	var b []byte
	for i := 0; i < len(kv); i += 2 {
		b = append(b, shortstr(kv[i].(string))...)
		b = append(b, kv[i+1].([]byte)...)
	}
	return longstr(b)
}

func fieldL(v int64) []byte  { return binary.BigEndian.AppendUint64([]byte{'L'}, uint64(v)) }
func fieldl(v int64) []byte  { return binary.BigEndian.AppendUint64([]byte{'l'}, uint64(v)) }
func fieldS(s string) []byte { return append([]byte{'S'}, longstr([]byte(s))...) }
func fieldF(t []byte) []byte { return append([]byte{'F'}, t...) }

func fieldA(fields ...[]byte) []byte {
	var b []byte
	for _, f := range fields {
		b = append(b, f...)
	}
	return append([]byte{'A'}, longstr(b)...)
}

func bigTable(n int) []byte {
	kv := make([]any, 0, 2*n)
	for i := range n {
		kv = append(kv, fmt.Sprintf("k%05d", i), []byte{'V'})
	}
	return tbl(kv...)
}

func bigArray(n int) []byte { return append([]byte{'A'}, longstr(bytes.Repeat([]byte{'V'}, n))...) }

// nested is a headers table with a table nested depth deep.
func nested(depth int) []byte {
	t := tbl("leaf", fieldS("x"))
	for range depth {
		t = tbl("n", fieldF(t))
	}
	return t
}

func tuneFrame(frameMax uint32, heartbeat uint16) []byte {
	p := []byte{0, 10, 0, 30, 0x07, 0xff}
	p = binary.BigEndian.AppendUint32(p, frameMax)
	p = binary.BigEndian.AppendUint16(p, heartbeat)
	return rawFrame(frameMethod, 0, p)
}

func sanitize(in []byte, limits frameLimits) ([]byte, error) {
	if limits.frameSize == 0 {
		limits.frameSize = defaultFrameSize
	}
	return io.ReadAll(newFrameReader(bytes.NewReader(in), limits))
}

// frame is one parsed frame of the sanitizer's output.
type frame struct {
	typ     byte
	ch      uint16
	payload []byte
}

// parsedHeader is a content header as amqp091-go would read it.
type parsedHeader struct {
	body    uint64
	flags   uint16
	headers []byte // the table's content, nil when absent
	strs    map[uint16]string
}

// splitFrames splits out into frames; a trailing partial frame is an error
// only when complete is set.
func splitFrames(out []byte, complete bool) ([]frame, error) {
	var fs []frame
	for len(out) > 0 {
		if len(out) < 8 {
			break
		}
		size := int(binary.BigEndian.Uint32(out[3:7]))
		if len(out) < 8+size {
			break
		}
		fs = append(fs, frame{out[0], binary.BigEndian.Uint16(out[1:3]), out[7 : 7+size]})
		if out[0] == frameHeader && out[7+size] != frameEnd {
			return fs, errors.New("content header without frame-end")
		}
		out = out[8+size:]
	}
	if complete && len(out) > 0 {
		return fs, fmt.Errorf("%d bytes of a partial frame", len(out))
	}
	return fs, nil
}

// parseHeader reads a content header payload strictly: every announced
// property present, nothing left over, a table amqp091-go reads with no 'L'.
func parseHeader(p []byte, frameMax int) (parsedHeader, error) {
	var h parsedHeader
	if len(p) > frameMax-frameOverhead {
		return h, fmt.Errorf("content header of %d bytes over frame_max %d", len(p), frameMax)
	}
	if len(p) < fixedHeader {
		return h, errors.New("short content header")
	}
	h.body = binary.BigEndian.Uint64(p[4:12])
	h.flags = binary.BigEndian.Uint16(p[12:14])
	h.strs = map[uint16]string{}
	if h.flags&0x3 != 0 {
		return h, fmt.Errorf("flags %#x", h.flags)
	}
	p = p[fixedHeader:]
	str := func(f uint16) error {
		if len(p) < 1 || len(p) < 1+int(p[0]) {
			return fmt.Errorf("property %#x truncated", f)
		}
		h.strs[f] = string(p[1 : 1+p[0]])
		p = p[1+p[0]:]
		return nil
	}
	for _, f := range []uint16{flagContentType, flagContentEncoding} {
		if h.flags&f != 0 {
			if err := str(f); err != nil {
				return h, err
			}
		}
	}
	if h.flags&flagHeaders != 0 {
		if len(p) < 4 || len(p) < 4+int(binary.BigEndian.Uint32(p)) {
			return h, errors.New("table truncated")
		}
		n := int(binary.BigEndian.Uint32(p))
		h.headers = bytes.Clone(p[4 : 4+n])
		check := bytes.Clone(h.headers)
		if err := checkTable(check, 0); err != nil {
			return h, fmt.Errorf("table: %w", err)
		}
		if !bytes.Equal(check, h.headers) {
			return h, errors.New("table still holds 'L'")
		}
		p = p[4+n:]
	}
	for _, a := range afterHeaders {
		if h.flags&a.flag == 0 {
			continue
		}
		if a.width == 0 {
			if err := str(a.flag); err != nil {
				return h, err
			}
			continue
		}
		if len(p) < a.width {
			return h, fmt.Errorf("property %#x truncated", a.flag)
		}
		h.strs[a.flag] = string(p[:a.width])
		p = p[a.width:]
	}
	if len(p) > 0 {
		return h, fmt.Errorf("%d bytes after the properties", len(p))
	}
	return h, nil
}

// marker returns the malformed marker's value in an encoded table's content.
func marker(t []byte) (string, bool) {
	key := append(shortstr(malformedHeader), 'S')
	i := bytes.Index(t, key)
	if i < 0 {
		return "", false
	}
	s := t[i+len(key):]
	n := binary.BigEndian.Uint32(s)
	return string(s[4 : 4+n]), true
}

func TestSanitizeHeaders(t *testing.T) {
	replyTo := shortstr("rpc.reply-abc")
	corr := shortstr("corr-1")
	const after = flagCorrelationID | flagReplyTo
	tests := []struct {
		name     string
		table    []byte
		want     []byte // the table's content out, when kept
		malforms string // part of the reason, when malformed
	}{
		{name: "plain", table: tbl("a", fieldS("b")), want: tbl("a", fieldS("b"))[4:]},
		{name: "L top level", table: tbl("nameko.user_id", fieldL(3000000000)),
			want: tbl("nameko.user_id", fieldl(3000000000))[4:]},
		{name: "L nested", table: tbl("x", fieldF(tbl("deadline", fieldL(-5))), "y", fieldA(fieldL(1), fieldF(tbl("z", fieldL(2))))),
			want: tbl("x", fieldF(tbl("deadline", fieldl(-5))), "y", fieldA(fieldl(1), fieldF(tbl("z", fieldl(2)))))[4:]},
		{name: "8192 entries", table: bigTable(8192), want: bigTable(8192)[4:]},
		{name: "8193 entries", table: bigTable(8193), malforms: "over 8192 entries"},
		{name: "8193-entry array", table: tbl("a", bigArray(8193)), malforms: "over 8192 entries"},
		{name: "32 deep", table: nested(32), want: nested(32)[4:]},
		{name: "33 deep", table: nested(33), malforms: "nested over 32 deep"},
		{name: "unknown type", table: tbl("a", []byte{'U', 0, 1}), malforms: `field type 'U'`},
		{name: "truncated string", table: tbl("a", []byte{'S', 0x7f, 0, 0, 0, 'x'}), malforms: "truncated"},
		{name: "truncated key", table: longstr([]byte{9, 'a'}), malforms: "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := rawHeader(3, 2, flagContentType|flagHeaders|after, shortstr("application/json"), tt.table, corr, replyTo)
			in = append(in, rawFrame(frameBody, 3, []byte("{}"))...)
			out, err := sanitize(in, frameLimits{maxBody: 100})
			if err != nil {
				t.Fatal(err)
			}
			fs, err := splitFrames(out, true)
			if err != nil || len(fs) != 2 {
				t.Fatalf("frames %d: %v", len(fs), err)
			}
			h, err := parseHeader(fs[0].payload, defaultFrameSize)
			if err != nil {
				t.Fatal(err)
			}
			if h.strs[flagContentType] != "application/json" || h.strs[flagCorrelationID] != "corr-1" || h.strs[flagReplyTo] != "rpc.reply-abc" || h.body != 2 {
				t.Errorf("other properties changed: %+v", h)
			}
			why, ok := marker(h.headers)
			switch {
			case tt.malforms == "" && !bytes.Equal(h.headers, tt.want):
				t.Errorf("headers changed: %q", h.headers)
			case tt.malforms != "" && (!ok || !strings.Contains(why, tt.malforms)):
				t.Errorf("marker %q (%v), want one saying %q", why, ok, tt.malforms)
			case tt.malforms != "" && len(h.headers) > 300:
				t.Errorf("malformed headers kept: %d bytes", len(h.headers))
			}
			if string(fs[1].payload) != "{}" {
				t.Errorf("body %q", fs[1].payload)
			}
		})
	}
}

func TestSanitizeFrameSize(t *testing.T) {
	const frameMax = 4096
	limits := frameLimits{maxBody: 100, frameSize: frameMax}
	for _, n := range []int{frameMax - 40, frameMax - 30, frameMax - 20, frameMax, 3 * frameMax} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			table := tbl("pad", fieldS(strings.Repeat("x", n)))
			out, err := sanitize(rawHeader(1, 0, flagHeaders|flagReplyTo, table, shortstr("r")), limits)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := splitFrames(out, true)
			if err != nil {
				t.Fatal(err)
			}
			h, err := parseHeader(fs[0].payload, frameMax)
			if err != nil {
				t.Fatal(err)
			}
			why, malformed := marker(h.headers)
			fits := fixedHeader+len(table)+2 <= frameMax-frameOverhead
			if malformed == fits || (malformed && !strings.Contains(why, "do not fit the frame size 4096")) {
				t.Errorf("table of %d bytes: marker %q", len(table), why)
			}
			if h.strs[flagReplyTo] != "r" {
				t.Errorf("reply-to lost: %+v", h)
			}
		})
	}
}

func TestSanitizeOversizedBody(t *testing.T) {
	limits := frameLimits{maxBody: 10}
	var in []byte
	in = append(in, rawHeader(1, 25, flagHeaders, tbl("keep", fieldS("me")))...)
	in = append(in, rawHeader(2, 4, 0)...)
	in = append(in, rawFrame(frameBody, 1, bytes.Repeat([]byte{'a'}, 10))...)
	in = append(in, rawFrame(frameBody, 2, []byte("ok!!"))...)
	in = append(in, rawFrame(frameBody, 1, bytes.Repeat([]byte{'a'}, 10))...)
	in = append(in, rawFrame(frameHeartbeat, 0, nil)...)
	in = append(in, rawFrame(frameBody, 1, bytes.Repeat([]byte{'a'}, 5))...)
	in = append(in, rawHeader(1, 3, 0)...)
	in = append(in, rawFrame(frameBody, 1, []byte("new"))...)
	out, err := sanitize(in, limits)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := splitFrames(out, true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%d/%d", f.typ, f.ch))
	}
	if strings.Join(got, " ") != "2/1 2/2 3/2 8/0 2/1 3/1" {
		t.Fatalf("frames %v", got)
	}
	h, err := parseHeader(fs[0].payload, defaultFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	why, ok := marker(h.headers)
	if h.body != 0 || !ok || why != "message body of 25 bytes is over MAX_MESSAGE_SIZE 10" {
		t.Errorf("body %d, marker %q", h.body, why)
	}
	if !bytes.Contains(h.headers, append(shortstr("keep"), fieldS("me")...)) {
		t.Errorf("readable headers dropped: %q", h.headers)
	}
	if string(fs[2].payload) != "ok!!" || string(fs[5].payload) != "new" {
		t.Errorf("other bodies: %q %q", fs[2].payload, fs[5].payload)
	}
}

func TestSanitizeTune(t *testing.T) {
	for _, off := range []bool{false, true} {
		r := newFrameReader(bytes.NewReader(tuneFrame(65536, 60)), frameLimits{frameSize: defaultFrameSize, heartbeatOff: off})
		out, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		hb := binary.BigEndian.Uint16(out[7+10:])
		if want := map[bool]uint16{false: 60, true: 0}[off]; hb != want {
			t.Errorf("heartbeat off %v: proposed %d, want %d", off, hb, want)
		}
		if r.limit() != 65536 {
			t.Errorf("frame_max %d", r.limit())
		}
	}
}

func TestSanitizePropertiesTruncated(t *testing.T) {
	// The reply-to claims 200 bytes, the frame ends first: what was read is
	// kept, with the marker.
	in := rawHeader(1, 0, flagContentType|flagCorrelationID|flagReplyTo, shortstr("text/plain"), shortstr("c"), []byte{200, 'r'})
	out, err := sanitize(in, frameLimits{maxBody: 10})
	if err != nil {
		t.Fatal(err)
	}
	fs, err := splitFrames(out, true)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseHeader(fs[0].payload, defaultFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	why, ok := marker(h.headers)
	if !ok || h.strs[flagCorrelationID] != "c" || h.flags&flagReplyTo != 0 {
		t.Errorf("%+v %q", h, why)
	}
}

func TestSanitizeFraming(t *testing.T) {
	for name, in := range map[string][]byte{
		"unknown frame type": rawFrame(7, 0, nil),
		"bad frame-end":      append(rawHeader(1, 0, 0)[:7+fixedHeader], 0),
		"short header":       rawFrame(frameHeader, 1, []byte{0, 60}),
	} {
		if _, err := sanitize(in, frameLimits{}); !errors.Is(err, errFraming) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := sanitize(rawHeader(1, 0, 0)[:10], frameLimits{}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut short: %v", err)
	}
}

func FuzzSanitize(f *testing.F) {
	hdr := func(t []byte) []byte { return rawHeader(1, 3, flagHeaders|flagReplyTo, t, shortstr("reply")) }
	small := tuneFrame(frameMinSize, 0) // frame_max 4096 from here on
	f.Add(hdr(tbl("id", fieldL(3000000000))))
	f.Add(hdr(tbl("x", fieldA(fieldF(tbl("y", fieldL(-1)))))))
	f.Add(hdr(bigTable(8193)))
	f.Add(hdr(tbl("a", bigArray(8193))))
	f.Add(hdr(tbl("a", bigArray(8192))))
	f.Add(hdr(nested(33)))
	f.Add(hdr(nested(32)))
	f.Add(hdr(tbl("a", []byte{'U'})))
	f.Add(hdr(tbl("a", []byte{'U', 0, 1}, "b", fieldA([]byte{'U', 0, 2})))) // an AMQP 0-9 short int amqp091-go does not read
	f.Add(hdr(tbl("a", fieldS("truncated"))[:12]))
	f.Add(append(small, hdr(tbl("pad", fieldS(strings.Repeat("x", 4040))))...))
	f.Add(append(small, hdr(tbl("pad", fieldS(strings.Repeat("x", 4070))))...))
	f.Add(append(tuneFrame(frameMinSize, 0), hdr(tbl("pad", fieldS(strings.Repeat("x", 5000))))...))
	f.Add(rawHeader(1, 1<<40, 0))
	f.Add(bytes.Join([][]byte{rawHeader(1, 30, 0), rawHeader(2, 2, 0), rawFrame(frameBody, 1, make([]byte, 20)),
		rawFrame(frameBody, 2, []byte("ok")), rawFrame(frameMethod, 1, []byte{0, 60, 0, 60}), rawFrame(frameBody, 1, make([]byte, 10))}, nil))
	f.Add(rawHeader(1, 0, flagMore|flagContentType, []byte{0x80, 0x00}, shortstr("x")))
	// Well-formed: every property, every field type amqp091-go reads.
	every := tbl("t", []byte{'t', 1}, "B", []byte{'B', 2}, "b", []byte{'b', 0xff}, "s", []byte{'s', 0, 1}, "u", []byte{'u', 0, 2},
		"I", []byte{'I', 0, 0, 0, 3}, "i", []byte{'i', 0, 0, 0, 4}, "f", []byte{'f', 0x3f, 0x80, 0, 0}, "D", []byte{'D', 2, 0, 0, 1, 0},
		"l", fieldl(-5), "d", []byte{'d', 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}, "T", append([]byte{'T'}, fieldl(1700000000)[1:]...), "V", []byte{'V'},
		"S", fieldS("str"), "x", append([]byte{'x'}, longstr([]byte{0, 1, 2})...), "A", fieldA(fieldS("a"), fieldl(1), []byte{'V'}),
		"F", fieldF(tbl("k", fieldS("v"))))
	f.Add(bytes.Join([][]byte{tuneFrame(64<<10, 60), rawFrame(frameMethod, 1, []byte{0, 60, 0, 60, 1, 2}),
		rawHeader(1, 5, 0xfffc, shortstr("application/json"), shortstr("utf-8"), every, []byte{2}, []byte{9},
			shortstr("corr"), shortstr("reply"), shortstr("60000"), shortstr("id"), fieldl(1)[1:],
			shortstr("type"), shortstr("user"), shortstr("app"), shortstr("cluster")),
		rawFrame(frameBody, 1, []byte("he")), rawFrame(frameBody, 1, []byte("llo")), rawFrame(frameHeartbeat, 0, nil),
		rawHeader(2, 0, 0)}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		const client = 128 << 10
		limits := frameLimits{maxBody: 16, frameSize: client}
		out, err := sanitize(in, limits)
		// A frame may grow by its marker, a short one by at most the marker
		// and the frame-end.
		if len(out) > len(in)+(len(in)/8+1)*(maxWhy+40) {
			t.Fatalf("%d bytes out of %d", len(out), len(in))
		}
		outFrames, rest := modelFrames(out)
		if err == nil && len(rest) > 0 {
			t.Fatalf("%d bytes of a partial frame out", len(rest))
		}
		var inHeaders []modelFrame
		inFrames, _ := modelFrames(in)
		for _, fr := range inFrames {
			if fr.typ == frameHeader {
				inHeaders = append(inHeaders, fr)
			}
		}
		limit := uint32(client)
		for _, fr := range outFrames {
			if limit = modelTune(fr, client, limit); fr.typ != frameHeader {
				continue
			}
			if fr.end != frameEnd || len(fr.payload) > int(limit)-frameOverhead {
				t.Fatalf("content header of %d bytes, frame-end %#x, out with frame_max %d", len(fr.payload), fr.end, limit)
			}
			table, _, err := modelHeader(fr.payload, false)
			if err != nil {
				t.Fatalf("content header out that amqp091-go cannot read: %v", err)
			}
			// Headers without the marker are the headers that came in,
			// py-amqp's 'L' read as the 'l' it became.
			sent, _, err := modelHeader(inHeaders[0].payload, true)
			inHeaders = inHeaders[1:]
			if _, marked := table[malformedHeader]; err == nil && !marked && !reflect.DeepEqual(table, sent) {
				t.Fatalf("headers %v came out as %v", sent, table)
			}
		}
		if wellFormed(in, client, uint64(limits.maxBody)) && (err != nil || !bytes.Equal(out, in)) {
			t.Fatalf("well-formed input changed (error %v):\n in %x\nout %x", err, in, out)
		}
	})
}

// wellFormed reports whether in is whole frames amqp091-go reads as they
// are, content headers of bodies within maxBody: what the frame reader must
// pass through unchanged.
func wellFormed(in []byte, client uint32, maxBody uint64) bool {
	frames, rest := modelFrames(in)
	if len(rest) > 0 {
		return false
	}
	limit := client
	for _, fr := range frames {
		limit = modelTune(fr, client, limit)
		switch fr.typ {
		case frameMethod, frameBody, frameHeartbeat:
		case frameHeader:
			if fr.end != frameEnd || len(fr.payload) > int(limit)-frameOverhead {
				return false
			}
			if _, body, err := modelHeader(fr.payload, false); err != nil || body > maxBody {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// loop repeats b forever.
type loop struct {
	b   []byte
	off int
}

func (l *loop) Read(p []byte) (int, error) {
	n := copy(p, l.b[l.off:])
	l.off = (l.off + n) % len(l.b)
	return n, nil
}

// BenchmarkFrameReader reads deliveries as RabbitMQ sends them: a
// basic.deliver, a content header with a few headers, a body.
func BenchmarkFrameReader(b *testing.B) {
	deliver := rawFrame(frameMethod, 1, append([]byte{0, 60, 0, 60}, make([]byte, 40)...))
	headers := tbl("nameko.call_id_stack", fieldA(fieldS("caller.method.1234")), "nameko.user_id", fieldL(3000000000))
	msg := bytes.Join([][]byte{deliver,
		rawHeader(1, 256, flagContentType|flagHeaders|flagCorrelationID|flagReplyTo,
			shortstr("application/json"), headers, shortstr("corr"), shortstr("rpc.reply-1")),
		rawFrame(frameBody, 1, make([]byte, 256))}, nil)
	r := newFrameReader(&loop{b: msg}, frameLimits{maxBody: defaultMaxMessageSize, frameSize: defaultFrameSize})
	buf := make([]byte, 4096)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		for n := 0; n < len(msg); {
			k, err := r.Read(buf[:min(len(buf), len(msg)-n)])
			if err != nil {
				b.Fatal(err)
			}
			n += k
		}
	}
}
