package memory

import (
	"bytes"
	"fmt"
	"math"
	"time"
)

// normalizeHeaders returns a deep copy of h with every value as it would come
// back from a trip through RabbitMQ with transport/amqp: integers as the
// AMQP field type amqp091-go encodes them (int as int32 when it fits, else
// int64; uint and uint64 as int64), []string and []any as []any, maps as
// map[string]any, time.Time cut to whole seconds in the local zone, and an
// empty table as nil. A value AMQP cannot carry is an error naming its key.
func normalizeHeaders(h map[string]any) (map[string]any, error) {
	if len(h) == 0 {
		return nil, nil
	}
	out := make(map[string]any, len(h))
	for k, v := range h {
		n, err := normalize(v)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", k, err)
		}
		out[k] = n
	}
	return out, nil
}

// normalize is one value of normalizeHeaders.
func normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int8, uint8, int16, uint16, int32, uint32, int64, float32, float64, string:
		return x, nil
	case int:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return int64(x), nil
		}
		return int32(x), nil
	case uint:
		return int64(x), nil
	case uint64:
		return int64(x), nil
	case []byte:
		return bytes.Clone(x), nil
	case time.Time:
		return time.Unix(x.Unix(), 0), nil
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e)
			if err != nil {
				return nil, fmt.Errorf("in list: %w", err)
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		if len(x) == 0 {
			return map[string]any(nil), nil
		}
		return normalizeHeaders(x)
	}
	return nil, fmt.Errorf("value of type %T cannot travel in an AMQP header", v)
}

// clone deep-copies normalized headers, so that no two deliveries share a
// map, a list or bytes.
func clone(h map[string]any) map[string]any {
	if h == nil {
		return nil
	}
	out := make(map[string]any, len(h))
	for k, v := range h {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case []byte:
		return bytes.Clone(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	case map[string]any:
		return clone(x)
	}
	return v
}
