package amqp

import (
	"math"

	amqp091 "github.com/rabbitmq/amqp091-go"
)

// table converts headers or arguments to an AMQP table, turning the slices and
// maps Go code builds ([]string, map[string]any) into the types AMQP encodes.
func table(m map[string]any) (amqp091.Table, error) {
	if len(m) == 0 {
		return nil, nil
	}
	t := make(amqp091.Table, len(m))
	for k, v := range m {
		t[k] = field(v)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

func field(v any) any {
	switch x := v.(type) {
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = field(e)
		}
		return out
	case map[string]any:
		t := make(amqp091.Table, len(x))
		for k, e := range x {
			t[k] = field(e)
		}
		return t
	case int:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return int64(x) // amqp091-go would cut an int to 32 bits
		}
	case uint:
		return int64(x)
	case uint64:
		return int64(x)
	}
	return v
}

// fromTable turns an AMQP table into plain Go maps and slices.
func fromTable(t amqp091.Table) map[string]any {
	if len(t) == 0 {
		return nil
	}
	m := make(map[string]any, len(t))
	for k, v := range t {
		m[k] = plain(v)
	}
	return m
}

func plain(v any) any {
	switch x := v.(type) {
	case amqp091.Table:
		return fromTable(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}
