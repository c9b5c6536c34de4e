package amqp

import (
	"math"
	"time"

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

// contentHeaderSize is the payload size of the content header frame
// amqp091-go writes for pub.
func contentHeaderSize(pub amqp091.Publishing) int {
	n := fixedHeader
	for _, s := range [...]string{pub.ContentType, pub.ContentEncoding, pub.CorrelationId, pub.ReplyTo,
		pub.Expiration, pub.MessageId, pub.Type, pub.UserId, pub.AppId} {
		if s != "" {
			n += 1 + len(s)
		}
	}
	if len(pub.Headers) > 0 {
		n += tableSize(pub.Headers)
	}
	if pub.DeliveryMode > 0 {
		n++
	}
	if pub.Priority > 0 {
		n++
	}
	if !pub.Timestamp.IsZero() {
		n += 8
	}
	return n
}

// tableSize is the encoded size of t, its length included.
func tableSize(t amqp091.Table) int {
	n := 4
	for k, v := range t {
		n += 1 + len(k) + fieldSize(v)
	}
	return n
}

// fieldSize is the encoded size of a table value, its type octet included,
// as amqp091-go encodes it; types it refuses count nothing.
func fieldSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 1
	case bool, byte, int8:
		return 2
	case int16, uint16:
		return 3
	case int, int32, uint32, float32:
		return 5
	case amqp091.Decimal:
		return 6
	case int64, float64, time.Time:
		return 9
	case string:
		return 5 + len(x)
	case []byte:
		return 5 + len(x)
	case []any:
		n := 5
		for _, e := range x {
			n += fieldSize(e)
		}
		return n
	case amqp091.Table:
		return 1 + tableSize(x)
	}
	return 0
}
