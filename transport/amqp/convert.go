package amqp

import (
	"fmt"
	"net/url"

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

// redact hides the password in a broker URI for logs and errors.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return fmt.Sprintf("%q (not a valid AMQP URI)", "amqp://…")
	}
	return u.Redacted()
}
