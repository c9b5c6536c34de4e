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

// refusal is why a value in a table cannot travel, and where it sits: the
// steps (table keys, list indexes) are gathered on the way back out, from
// the innermost, so that a table that can travel costs no allocation.
type refusal struct {
	steps []string
	why   string
}

func refuse(format string, args ...any) *refusal {
	return &refusal{why: fmt.Sprintf(format, args...)}
}

// at adds the step under which the refused value sits.
func (r *refusal) at(step string) *refusal {
	r.steps = append(r.steps, step)
	return r
}

// err is the error for a refusal in a table of what ("header").
func (r *refusal) err(what string) error {
	if len(r.steps) == 0 {
		return fmt.Errorf("%w: %ss: %s", transport.ErrInvalid, what, r.why)
	}
	steps := slices.Clone(r.steps)
	slices.Reverse(steps)
	if len(steps) > 8 {
		steps = slices.Concat(steps[:3], []string{"…"}, steps[len(steps)-3:])
	}
	return fmt.Errorf("%w: %s %s: %s", transport.ErrInvalid, what, strings.Join(steps, " > "), r.why)
}

// table is the encoded size of m as an AMQP field table (its length
// included), as amqp091-go encodes what transport/amqp makes of it, or why
// it cannot travel. what names the table's kind in errors: "header".
func table(m map[string]any, what string) (int, error) {
	n, r := tableSize(m, 0)
	if r != nil {
		return 0, r.err(what)
	}
	return n, nil
}

// tableSize is table's size for a table depth tables and lists deep.
func tableSize(m map[string]any, depth int) (int, *refusal) {
	if r := container(len(m), depth, "table"); r != nil {
		return 0, r
	}
	n := 4
	for k, v := range m {
		if len(k) > MaxShortString {
			return 0, refuse("the name is %d bytes, over AMQP's limit of %d for a short string",
				len(k), MaxShortString).at(clip(k))
		}
		f, r := field(v, depth)
		if r != nil {
			return 0, r.at(clip(k))
		}
		n += 1 + len(k) + f
	}
	return n, nil
}

// container checks a table or list of n entries, depth deep.
func container(n, depth int, kind string) *refusal {
	switch {
	case depth > MaxDepth:
		return refuse("tables and lists are nested deeper than %d", MaxDepth)
	case n > MaxEntries:
		return refuse("%d entries, over the limit of %d in one %s", n, MaxEntries, kind)
	}
	return nil
}

// field is the encoded size of one value in a container depth deep, its
// type octet included.
func field(v any, depth int) (int, *refusal) {
	switch x := v.(type) {
	case nil:
		return 1, nil
	case bool, int8, uint8:
		return 2, nil
	case int16, uint16:
		return 3, nil
	case int32, uint32:
		return 5, nil
	case int64, time.Time:
		return 9, nil
	case int:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return 9, nil // sent as int64: amqp091-go would cut an int to 32 bits
		}
		return 5, nil
	case uint:
		return unsigned(uint64(x))
	case uint64:
		return unsigned(x)
	case float32:
		return float(float64(x), 5)
	case float64:
		return float(x, 9)
	case string:
		return 5 + len(x), nil
	case []byte:
		return 5 + len(x), nil
	case []string:
		if r := container(len(x), depth+1, "list"); r != nil {
			return 0, r
		}
		n := 5
		for _, s := range x {
			n += 5 + len(s)
		}
		return n, nil
	case []any:
		if r := container(len(x), depth+1, "list"); r != nil {
			return 0, r
		}
		n := 5
		for i, e := range x {
			f, r := field(e, depth+1)
			if r != nil {
				return 0, r.at("[" + strconv.Itoa(i) + "]")
			}
			n += f
		}
		return n, nil
	case map[string]any:
		n, r := tableSize(x, depth+1)
		return 1 + n, r
	}
	return 0, refuse("a value of type %T cannot travel in an AMQP table "+
		"(strings, numbers, booleans, time.Time, []byte, and lists and maps of those can)", v)
}

// unsigned is the size of an unsigned integer, sent as int64.
func unsigned(x uint64) (int, *refusal) {
	if x > math.MaxInt64 {
		return 0, refuse("%d is over AMQP's largest integer, %d", x, int64(math.MaxInt64))
	}
	return 9, nil
}

// float is the size of a float, which RabbitMQ refuses (closing the
// connection) when it is NaN or infinite.
func float(x float64, size int) (int, *refusal) {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, refuse("%v cannot travel: RabbitMQ takes only finite numbers", x)
	}
	return size, nil
}
