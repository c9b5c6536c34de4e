package rpc

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hypha-go/hypha/internal/jsonlimit"
	"github.com/hypha-go/hypha/internal/jsonscan"
	"github.com/hypha-go/hypha/transport"
)

// Wire constants, as nameko uses them.
const (
	// DefaultExchange is the exchange requests and replies travel through.
	DefaultExchange = "nameko-rpc"
	// defaultTimeout bounds a call whose context has no sooner deadline (RPC_TIMEOUT's default).
	defaultTimeout = 30 * time.Second
	// defaultMaxInFlight bounds a client's calls waiting for their reply (RPC_MAX_IN_FLIGHT's default).
	defaultMaxInFlight = 65536

	contentTypeJSON  = "application/json"
	encodingUTF8     = "utf-8"
	deadlineHeader   = "x-hypha-deadline"
	directReplyTo    = "amq.rabbitmq.reply-to"
	replyQueueExpiry = 300000 // ms: a reply queue outlives its connection for 5 minutes
	replyPrefetch    = 256
	replyTimeout     = 30 * time.Second // for replies to callers that sent no deadline
	closeTimeout     = 2 * time.Second  // for deleting the reply queue on Close
)

// requestBody is what a request carries: {"args": [...], "kwargs": {...}}.
type requestBody struct {
	Args   []json.RawMessage          `json:"args"`
	Kwargs map[string]json.RawMessage `json:"kwargs"`
}

// request is a received request's args and kwargs as they came: a JSON list
// and a JSON object, valid, slices of the body. Binding walks them in place,
// so that what cannot bind (more positional arguments than the method takes,
// an unknown keyword) is refused before anything is decoded or copied.
type request struct {
	args   []byte
	kwargs []byte
}

// replyBody is what a reply carries: {"result": ..., "error": ...}.
type replyBody struct {
	Result json.RawMessage `json:"result"`
	Error  *RemoteError    `json:"error"`
}

// errMissingArgs is nameko's exact text, which nameko clients show as is.
//
//lint:ignore ST1005 the text is part of the wire protocol
var errMissingArgs = errors.New("Message missing `args` or `kwargs`")

// decodeRequest parses a request body, refusing what nameko refuses. It
// allocates nothing in proportion to the body: a list of millions of items
// costs one pass of the scanner, not a slice of millions of values.
func decodeRequest(contentType string, body []byte) (request, error) {
	if ct := strings.TrimSpace(strings.Split(contentType, ";")[0]); ct != "" && ct != contentTypeJSON {
		return request{}, fmt.Errorf("unsupported content type %q: send %s", contentType, contentTypeJSON)
	}
	if err := jsonlimit.CheckDepth(body, jsonlimit.MaxDepth); err != nil {
		return request{}, err
	}
	if jsonscan.Kind(body) == "null" && json.Valid(body) {
		return request{}, errMissingArgs // as nameko answers a null body
	}
	// One validating pass over the body; jsonscan then finds args, kwargs
	// and their items as slices of it, where decoding into maps and slices
	// of json.RawMessage would validate and copy each large value again.
	fields, err := members(body, "args", "kwargs")
	if err != nil {
		return request{}, fmt.Errorf("request body is not a JSON object: %v", err)
	}
	rawArgs, rawKwargs := fields[0], fields[1]
	if rawArgs == nil || rawKwargs == nil {
		return request{}, errMissingArgs
	}
	// A null would decode without error into a nil slice or map; nameko
	// refuses it too (IncorrectSignature: argument after * must be an iterable).
	switch kind := jsonscan.Kind(rawArgs); kind {
	case "a list":
	case "null":
		return request{}, errors.New("`args` must be a list, not null")
	default:
		return request{}, fmt.Errorf("`args` must be a list, not %s", kind)
	}
	switch kind := jsonscan.Kind(rawKwargs); kind {
	case "an object":
	case "null":
		return request{}, errors.New("`kwargs` must be an object, not null")
	default:
		return request{}, fmt.Errorf("`kwargs` must be an object, not %s", kind)
	}
	return request{args: rawArgs, kwargs: rawKwargs}, nil
}

// decodeReply parses a reply body as nameko does: the result's JSON, or the
// *RemoteError under "error" (keys spelled exactly so).
func decodeReply(body []byte) (json.RawMessage, error) {
	if err := checkReplyDepth(body); err != nil {
		return nil, err
	}
	fields, err := members(body, "result", "error")
	if err != nil {
		return nil, fmt.Errorf("hypha: reply is not a JSON object: %w", err)
	}
	result, rawErr := fields[0], fields[1]
	if rawErr != nil && string(rawErr) != "null" {
		var e RemoteError
		if err := json.Unmarshal(rawErr, &e); err != nil {
			return nil, fmt.Errorf("hypha: reply's error is not nameko's error object: %w", err)
		}
		return nil, &e
	}
	if result == nil {
		return json.RawMessage("null"), nil
	}
	return result, nil
}

// members returns the raw values of the named members of the JSON object
// body, nil for one it lacks (the last, for one it repeats), or why body is
// not a JSON object. The body is validated once; the values are slices of it.
func members(body []byte, names ...string) ([][]byte, error) {
	if !json.Valid(body) || jsonscan.Kind(body) != "an object" {
		var fields map[string]json.RawMessage
		err := json.Unmarshal(body, &fields) // for encoding/json's description of what is wrong
		if err == nil {
			err = fmt.Errorf("it is %s", jsonscan.Kind(body))
		}
		return nil, err
	}
	values := make([][]byte, len(names))
	for name, value := range jsonscan.Members(body) {
		if i := slices.Index(names, name); i >= 0 {
			values[i] = value
		}
	}
	return values, nil
}

// checkReplyDepth refuses a reply body nested deeper than jsonlimit.MaxDepth,
// before it is decoded.
func checkReplyDepth(body []byte) error {
	if err := jsonlimit.CheckDepth(body, jsonlimit.MaxDepth); err != nil {
		return fmt.Errorf("hypha: reply refused: %w", err)
	}
	return nil
}

// deadlineOf is when the caller of a request gives up: the time the request
// was received plus its expiration (the caller's budget, which no clock skew
// can shift), or, from a caller that sent no expiration, the absolute
// x-hypha-deadline header. Zero when it has neither.
func deadlineOf(d transport.Delivery) time.Time {
	if d.Expiration > 0 {
		received := d.Received
		if received.IsZero() {
			received = time.Now()
		}
		return received.Add(d.Expiration)
	}
	return headerDeadline(d.Headers)
}

// maxDeadlineMillis is the latest x-hypha-deadline read as a deadline: the
// last millisecond of the year 9999. Anything later, like anything not a
// positive finite number, is no deadline a caller could mean.
const maxDeadlineMillis = 253402300799999

// headerDeadline reads the x-hypha-deadline header (Unix milliseconds),
// whatever number type, or decimal string, it arrived as; zero (no deadline)
// when absent or unreadable. Every type is read the same way: a value that
// is not a finite number in (0, maxDeadlineMillis] (NaN, ±Inf, 1e300,
// int64's largest, zero or negative) is no deadline, rather than one long
// past (which would drop the call unrun) or one overflowed into nonsense.
func headerDeadline(headers map[string]any) time.Time {
	ms, ok := millis(headers[deadlineHeader])
	if !ok || !(ms > 0 && ms <= maxDeadlineMillis) { // NaN fails both
		return time.Time{}
	}
	return time.UnixMilli(int64(ms))
}

// millis reads a header's number, of any type a peer may send, as a float.
func millis(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int8:
		return float64(v), true
	case int16:
		return float64(v), true
	case int32:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint8:
		return float64(v), true
	case uint16:
		return float64(v), true
	case uint32:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float32:
		return float64(v), true
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		return f, err == nil
	}
	return 0, false
}
