package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// A model of what amqp091-go reads (its read.go), written apart from the
// frame reader's checkTable so that the fuzz target does not grade the
// sanitizer with its own code. It is strict where amqp091-go is lenient (a
// duplicate key counts as an entry; an array's last field must be whole),
// as the sanitizer means to be: what the model accepts amqp091-go reads.

// Limits amqp091-go (read.go) puts on field tables and arrays.
const (
	modelMaxDepth    = 32   // maxFieldDepth
	modelMaxElements = 8192 // maxContainerElements
)

// modelReader reads AMQP encodings from a byte slice.
type modelReader struct{ b []byte }

func (r *modelReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b) {
		return nil, fmt.Errorf("%d bytes wanted, %d left", n, len(r.b))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *modelReader) u32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

// longBytes reads a 4-byte length and that many bytes; amqp091-go refuses a
// length over math.MaxInt32.
func (r *modelReader) longBytes() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	if n > math.MaxInt32 {
		return nil, fmt.Errorf("length %d", n)
	}
	return r.take(int(n))
}

// modelTable reads a field table, its length first, into the values
// amqp091-go would make of it. With py set, it also reads py-amqp's 'L'.
func modelTable(r *modelReader, depth int, py bool) (map[string]any, error) {
	if depth > modelMaxDepth {
		return nil, errors.New("nested too deep")
	}
	content, err := r.longBytes()
	if err != nil {
		return nil, err
	}
	in := &modelReader{content}
	table := map[string]any{}
	for entries := 0; len(in.b) > 0; entries++ {
		if entries == modelMaxElements {
			return nil, errors.New("too many entries")
		}
		n, err := in.take(1)
		if err != nil {
			return nil, err
		}
		key, err := in.take(int(n[0]))
		if err != nil {
			return nil, err
		}
		if table[string(key)], err = modelField(in, depth, py); err != nil {
			return nil, fmt.Errorf("%q: %w", key, err)
		}
	}
	return table, nil
}

func modelArray(r *modelReader, depth int, py bool) ([]any, error) {
	if depth > modelMaxDepth {
		return nil, errors.New("nested too deep")
	}
	content, err := r.longBytes()
	if err != nil {
		return nil, err
	}
	in := &modelReader{content}
	array := []any{}
	for len(in.b) > 0 {
		if len(array) == modelMaxElements {
			return nil, errors.New("too many elements")
		}
		v, err := modelField(in, depth, py)
		if err != nil {
			return nil, err
		}
		array = append(array, v)
	}
	return array, nil
}

// modelWidths are the field types of a fixed width, with that width.
var modelWidths = map[byte]int{'t': 1, 'B': 1, 'b': 1, 's': 2, 'u': 2, 'I': 4, 'i': 4, 'f': 4, 'D': 5, 'l': 8, 'd': 8, 'T': 8, 'V': 0}

// modelField reads one typed field value.
func modelField(r *modelReader, depth int, py bool) (any, error) {
	typ, err := r.take(1)
	if err != nil {
		return nil, err
	}
	switch c := typ[0]; c {
	case 'S', 'x':
		b, err := r.longBytes()
		return string(b), err
	case 'A':
		return modelArray(r, depth+1, py)
	case 'F':
		return modelTable(r, depth+1, py)
	default:
		n, ok := modelWidths[c]
		if c == 'L' && py {
			n, ok = 8, true
		}
		if !ok {
			return nil, fmt.Errorf("field type %q", c)
		}
		b, err := r.take(n)
		if c == 'L' {
			c = 'l' // the same int64
		}
		return fmt.Sprintf("%c%x", c, b), err
	}
}

// modelHeader reads a content header payload as amqp091-go would, strictly:
// one flags word, every announced property present, nothing after them. It
// returns the headers table (nil when absent) and the body size.
func modelHeader(p []byte, py bool) (table map[string]any, body uint64, err error) {
	r := &modelReader{p}
	fixed, err := r.take(FixedHeader)
	if err != nil {
		return nil, 0, err
	}
	body = binary.BigEndian.Uint64(fixed[4:12])
	flags := binary.BigEndian.Uint16(fixed[12:14])
	if flags&0x3 != 0 {
		return nil, 0, fmt.Errorf("flags %#x", flags)
	}
	width := map[uint16]int{flagDeliveryMode: 1, flagPriority: 1, flagTimestamp: 8}
	for bit := uint16(0x8000); bit > 0x3; bit >>= 1 {
		if flags&bit == 0 {
			continue
		}
		switch n, ok := width[bit]; {
		case bit == flagHeaders:
			table, err = modelTable(r, 0, py)
		case ok:
			_, err = r.take(n)
		default:
			var n []byte
			if n, err = r.take(1); err == nil {
				_, err = r.take(int(n[0]))
			}
		}
		if err != nil {
			return nil, 0, fmt.Errorf("property %#x: %w", bit, err)
		}
	}
	if len(r.b) > 0 {
		return nil, 0, fmt.Errorf("%d bytes after the properties", len(r.b))
	}
	return table, body, nil
}

// modelFrame is one whole AMQP frame.
type modelFrame struct {
	typ     byte
	ch      uint16
	payload []byte
	end     byte
}

// modelFrames splits b into whole frames, and returns what is left.
func modelFrames(b []byte) (frames []modelFrame, rest []byte) {
	for len(b) >= 8 {
		size := binary.BigEndian.Uint32(b[3:7])
		if uint64(len(b)) < 8+uint64(size) {
			break
		}
		frames = append(frames, modelFrame{b[0], binary.BigEndian.Uint16(b[1:3]), b[7 : 7+size], b[7+size]})
		b = b[8+size:]
	}
	return frames, b
}

// modelTune is the frame_max in force after f, a client asking for client.
func modelTune(f modelFrame, client, current uint32) uint32 {
	p := f.payload
	if f.typ != TypeMethod || f.ch != 0 || len(p) != tunePayload ||
		binary.BigEndian.Uint16(p[0:2]) != 10 || binary.BigEndian.Uint16(p[2:4]) != 30 {
		return current
	}
	n := client
	if server := binary.BigEndian.Uint32(p[6:10]); server != 0 && (client == 0 || server < client) {
		n = server
	}
	return max(n, minSize)
}
