package wire

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hypha-go/hypha/transport"
)

// path is where a value sits in headers or arguments, for an error to name
// it: each step a table key or a list index.
type path struct {
	up    *path
	key   string
	index int // -1 for a key
}

func (p *path) String() string {
	var steps []string
	for ; p != nil; p = p.up {
		if p.index < 0 {
			steps = append(steps, clip(p.key))
		} else {
			steps = append(steps, "["+strconv.Itoa(p.index)+"]")
		}
	}
	slices.Reverse(steps)
	if len(steps) > 8 {
		steps = slices.Concat(steps[:3], []string{"…"}, steps[len(steps)-3:])
	}
	return strings.Join(steps, " > ")
}

// at is the path of a value of t under key.
func (p *path) at(key string) *path { return &path{up: p, key: key, index: -1} }

// table is the encoded size of m as an AMQP field table (its length
// included), as amqp091-go encodes what transport/amqp makes of it, or why
// it cannot travel. what names the table's kind in errors: "header".
func table(m map[string]any, at *path, what string) (int, error) {
	depth := at.depth()
	if depth > MaxDepth {
		return 0, at.refuse(what, "tables and lists are nested deeper than %d", MaxDepth)
	}
	if len(m) > MaxEntries {
		return 0, at.refuse(what, "%d entries, over the limit of %d in one table", len(m), MaxEntries)
	}
	n := 4
	for k, v := range m {
		p := at.at(k)
		if len(k) > MaxShortString {
			return 0, p.refuse(what, "the name is %d bytes, over AMQP's limit of %d for a short string",
				len(k), MaxShortString)
		}
		f, err := field(v, p, what)
		if err != nil {
			return 0, err
		}
		n += 1 + len(k) + f
	}
	return n, nil
}

// depth is how many tables and lists hold the value at p, the outermost
// table not counted.
func (p *path) depth() int {
	d := 0
	for ; p != nil; p = p.up {
		d++
	}
	return d
}

// field is the encoded size of one value, its type octet included.
func field(v any, at *path, what string) (int, error) {
	switch x := v.(type) {
	case nil:
		return 1, nil
	case bool, int8, uint8:
		return 2, nil
	case int16, uint16:
		return 3, nil
	case int32, uint32:
		return 5, nil
	case int64:
		return 9, nil
	case int:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return 9, nil // sent as int64: amqp091-go would cut an int to 32 bits
		}
		return 5, nil
	case uint:
		return unsigned(uint64(x), at, what)
	case uint64:
		return unsigned(x, at, what)
	case float32:
		return float(float64(x), 5, at, what)
	case float64:
		return float(x, 9, at, what)
	case string:
		return 5 + len(x), nil
	case []byte:
		return 5 + len(x), nil
	case time.Time:
		return 9, nil
	case []string:
		if err := list(len(x), at, what); err != nil {
			return 0, err
		}
		n := 5
		for _, s := range x {
			n += 5 + len(s)
		}
		return n, nil
	case []any:
		if err := list(len(x), at, what); err != nil {
			return 0, err
		}
		n := 5
		for i, e := range x {
			f, err := field(e, &path{up: at, index: i}, what)
			if err != nil {
				return 0, err
			}
			n += f
		}
		return n, nil
	case map[string]any:
		n, err := table(x, at, what)
		return 1 + n, err
	}
	return 0, at.refuse(what, "a value of type %T cannot travel in an AMQP table "+
		"(strings, numbers, booleans, time.Time, []byte, and lists and maps of those can)", v)
}

// list checks a list of n entries at at.
func list(n int, at *path, what string) error {
	switch {
	case at.depth() > MaxDepth:
		return at.refuse(what, "tables and lists are nested deeper than %d", MaxDepth)
	case n > MaxEntries:
		return at.refuse(what, "%d entries, over the limit of %d in one list", n, MaxEntries)
	}
	return nil
}

// unsigned is the size of an unsigned integer, sent as int64.
func unsigned(x uint64, at *path, what string) (int, error) {
	if x > math.MaxInt64 {
		return 0, at.refuse(what, "%d is over AMQP's largest integer, %d", x, int64(math.MaxInt64))
	}
	return 9, nil
}

// float is the size of a float, which RabbitMQ refuses (closing the
// connection) when it is NaN or infinite.
func float(x float64, size int, at *path, what string) (int, error) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, at.refuse(what, "%v cannot travel: RabbitMQ takes only finite numbers", x)
	}
	return size, nil
}

// refuse is the error for the value at p.
func (p *path) refuse(what, format string, args ...any) error {
	if p == nil {
		return fmt.Errorf("%w: %ss: %s", transport.ErrInvalid, what, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%w: %s %s: %s", transport.ErrInvalid, what, p, fmt.Sprintf(format, args...))
}
