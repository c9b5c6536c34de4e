package config

import (
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"
)

// Hypha's keys are read off the koanf tags of Settings, so that adding a field adds its key everywhere:
// to the defaults, to the case rules, to the unknown-key checks and to the typo warnings.

// schema is the shape of Settings as config.yaml keys.
type schema struct {
	top      []string            // top-level keys, in field order
	sections map[string][]string // section path ("EVENTS.RETRY_DELAY") -> its keys, in field order
	leaves   map[string]reflect.Type
}

var hyphaKeys = sync.OnceValue(func() schema {
	s := schema{sections: map[string][]string{}, leaves: map[string]reflect.Type{}}
	s.top = s.walk("", reflect.TypeFor[Settings]())
	return s
})

// walk records the keys of struct type t found at path and returns them.
func (s *schema) walk(path string, t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		key := f.Tag.Get("koanf")
		keys = append(keys, key)
		full := joinKey(path, key)
		if isSection(f.Type) {
			s.sections[full] = s.walk(full, f.Type)
		} else {
			s.leaves[full] = f.Type
		}
	}
	return keys
}

func isSection(t reflect.Type) bool { return t.Kind() == reflect.Struct }

// isTop reports whether key, upper-cased, is one of Hypha's top-level keys.
func isTop(key string) bool {
	_, leaf := hyphaKeys().leaves[key]
	_, section := hyphaKeys().sections[key]
	return leaf || section
}

// canonical is the spelling under which key, found in the mapping at path, is stored: Hypha's keys and
// everything inside Hypha's sections are upper-cased; a service's keys keep the case they were written in.
func canonical(path, key string) string {
	if _, section := hyphaKeys().sections[path]; section || path == "" && isTop(strings.ToUpper(key)) {
		return strings.ToUpper(key)
	}
	return key
}

// settingsMap is s as the key tree config.yaml would hold: durations in seconds, the log level by name.
func settingsMap(s Settings) map[string]any {
	return structMap(reflect.ValueOf(s))
}

func structMap(v reflect.Value) map[string]any {
	m := make(map[string]any, v.NumField())
	for i := range v.NumField() {
		key, f := v.Type().Field(i).Tag.Get("koanf"), v.Field(i)
		switch {
		case isSection(f.Type()):
			m[key] = structMap(f)
		case f.Type() == reflect.TypeFor[time.Duration]():
			m[key] = seconds(time.Duration(f.Int()))
		case f.Type() == reflect.TypeFor[slog.Level]():
			m[key] = strings.ToLower(slog.Level(f.Int()).String())
		default:
			m[key] = f.Interface()
		}
	}
	return m
}

// seconds is d as config.yaml writes it: an int when whole, else a float.
func seconds(d time.Duration) any {
	if d%time.Second == 0 {
		return int(d / time.Second)
	}
	return d.Seconds()
}

// wants is the expected form of each leaf key, for the errors of values of the wrong type.
var wants = map[string]string{
	"AMQP_URI":                        wantAMQPURI,
	"RPC_EXCHANGE":                    wantExchange,
	"RPC_TIMEOUT":                     wantSecondsAbove,
	"RPC_RETRY_POLICY.MAX_RETRIES":    wantCount,
	"RPC_RETRY_POLICY.INTERVAL_START": wantSeconds,
	"RPC_RETRY_POLICY.INTERVAL_STEP":  wantSeconds,
	"RPC_RETRY_POLICY.INTERVAL_MAX":   wantSeconds,
	"RECONNECT.INTERVAL_START":        wantSecondsAbove,
	"RECONNECT.INTERVAL_MAX":          wantSeconds,
	"RECONNECT.MAX_ELAPSED":           wantSeconds,
	"MAX_WORKERS":                     wantWorkers,
	"GRACE_PERIOD":                    wantSeconds,
	"HEARTBEAT":                       wantSeconds,
	"PARENT_CALLS_TRACKED":            wantCount,
	"SERIALIZER":                      wantSerializer,
	"LOG_LEVEL":                       wantLogLevel,
	"LOG_FORMAT":                      wantLogFormat,
	"TRACING.EXPORTER":                wantExporter,
	"TRACING.ENDPOINT":                wantEndpoint,
	"TRACING.PROTOCOL":                wantProtocol,
	"TRACING.SAMPLER_RATIO":           wantRatio,
	"METRICS.ADDRESS":                 wantHostPort,
	"HEALTH.ADDRESS":                  wantHostPort,
	"HTTP.ADDRESS":                    wantHostPort,
	"HTTP.READ_HEADER_TIMEOUT":        wantSecondsAbove,
	"HTTP.READ_TIMEOUT":               wantSecondsAbove,
	"HTTP.WRITE_TIMEOUT":              wantSecondsAbove,
	"HTTP.IDLE_TIMEOUT":               wantSecondsAbove,
	"HTTP.MAX_HEADER_BYTES":           wantBytes,
	"HTTP.MAX_BODY_SIZE":              wantBytes,
	"HTTP.MAX_CONNECTIONS":            wantLimit,
	"MAX_MESSAGE_SIZE":                wantBytes,
	"MAX_INFLIGHT_BYTES":              wantBytes,
	"RPC_MAX_IN_FLIGHT":               wantInFlight,
	"REDACT_UNEXPECTED_ERRORS":        wantBool,
	"RPC_PERSISTENT":                  wantBool,
	"RPC_REPLY_KEY_PREFIX":            wantReplyPrefix,
	"RPC_RESEND":                      wantBool,
	"EVENTS.MAX_RETRIES":              wantCount,
	"EVENTS.PUBLISH_TIMEOUT":          wantSecondsAbove,
	"EVENTS.HANDLER_TIMEOUT":          wantSecondsAbove,
	"EVENTS.RETRY_DELAY.INITIAL":      wantSecondsAbove,
	"EVENTS.RETRY_DELAY.MULTIPLIER":   wantMultiplier,
	"EVENTS.RETRY_DELAY.MAX":          wantSecondsAbove,
	"EVENTS.NAMEKO_QUEUES":            wantBool,
	"QUEUE_TYPE":                      wantQueueType,
	"QUEUE_DELIVERY_LIMIT":            wantLimit,
	"AMQP_SSL.CA_CERTS":               wantFile,
	"AMQP_SSL.CERTFILE":               wantFile,
	"AMQP_SSL.KEYFILE":                wantFile,
	"AMQP_SSL.CERT_REQS":              wantCertReqs,
	"LOGIN_METHOD":                    wantLoginMethod,
}

// nullable are the keys where null, as `${VAR:}` or a bare `KEY:` gives, means "".
var nullable = map[string]bool{"TRACING.ENDPOINT": true, "METRICS.ADDRESS": true, "HEALTH.ADDRESS": true, "HTTP.ADDRESS": true,
	"AMQP_SSL.CA_CERTS": true, "AMQP_SSL.CERTFILE": true, "AMQP_SSL.KEYFILE": true, "LOGIN_METHOD": true,
	"RPC_REPLY_KEY_PREFIX": true}

// want is the expected form of the value at a Hypha key.
func want(key string) string {
	if keys, ok := hyphaKeys().sections[key]; ok {
		return "a mapping of " + strings.Join(keys, ", ")
	}
	return wants[key]
}

// suggestion returns the Hypha top-level key that key, not one of them, looks like a typo of, or "".
func suggestion(key string) string {
	upper := strings.ToUpper(key)
	best, bestDist := "", 0
	for _, known := range hyphaKeys().top {
		d := editDistance(upper, known)
		if d <= maxTypo(known) && (best == "" || d < bestDist) {
			best, bestDist = known, d
		}
	}
	return best
}

// maxTypo is how many edits a key may be from a known one and still count as a typo of it: one for
// short keys, where two edits make another word, two otherwise.
func maxTypo(known string) int {
	if len(known) < 8 {
		return 1
	}
	return 2
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev, cur := make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
