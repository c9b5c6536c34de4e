// Package tracehdr reads and writes the trace context that travels in
// message headers: W3C trace context (traceparent, tracestate) and baggage,
// as plain headers, and the copies of them a nameko service forwards.
package tracehdr

// IsTraceHeader reports whether a header carries W3C trace context
// (traceparent, tracestate) or baggage, which travel as plain headers.
func IsTraceHeader(key string) bool {
	return key == "traceparent" || key == "tracestate" || key == "baggage"
}

// ReceivedTrace is the carrier a received message's trace context is read
// from: its own trace headers, or, when it has no traceparent, the copies a
// nameko service forwarded. nameko keeps every header it receives as
// context data and sends it on prefixed ("nameko.traceparent"), but traces
// nothing itself: reading the forwarded copies continues the caller's trace
// across the nameko hop, with the untraced hop inside the caller's span.
// Both sets are never mixed, and the forwarded copies are never context
// data (see internal/ctxwire's FromHeaders).
func ReceivedTrace(headers map[string]any) HeaderCarrier {
	if _, ok := headers["traceparent"]; ok {
		return HeaderCarrier(headers)
	}
	forwarded := HeaderCarrier{}
	for _, key := range [...]string{"traceparent", "tracestate", "baggage"} {
		if v, ok := headers[forwardedPrefix+key]; ok {
			forwarded[key] = v
		}
	}
	return forwarded
}

// forwardedPrefix is the prefix nameko gives every header it forwards (and
// every context data item).
const forwardedPrefix = "nameko."

// HeaderCarrier reads and writes string values in message headers, as
// OpenTelemetry's propagators (TextMapCarrier) expect: trace context travels
// as plain headers.
type HeaderCarrier map[string]any

// Get returns the header's value when it is a string (or bytes), else "".
func (h HeaderCarrier) Get(key string) string {
	switch v := h[key].(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// Set sets the header to value.
func (h HeaderCarrier) Set(key, value string) { h[key] = value }

// Keys lists the header names.
func (h HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}
