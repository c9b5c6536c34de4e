// Package label keeps the values of metric labels bounded. A value that came
// from the wire or from a caller (a method name, a target service, an
// exc_type) becomes a label only when it is in a set the program registered,
// or among the first few that a set may learn; any other value is Other. So
// no input can add series without limit, and none can put invalid UTF-8 in
// front of the Prometheus exporter, which fails the whole scrape on it.
//
//	methods := label.NewSet(0, "add", "subtract")
//	methods.Of("add")       // "add"
//	methods.Of("\xff\xfe")  // "_OTHER"
package label

import (
	"sync"
	"unicode/utf8"
)

// Other is the label of every value outside a set, as OpenTelemetry's
// conventions name values outside a known set (http.request.method "_OTHER").
const Other = "_OTHER"

// MaxLen bounds a label value, in bytes: a longer one is Other.
const MaxLen = 128

// Valid reports whether v can be a label value: valid UTF-8, not empty, and
// at most MaxLen bytes.
func Valid(v string) bool { return v != "" && len(v) <= MaxLen && utf8.ValidString(v) }

// Own is v when Valid, else Other: for values the program chose itself (a
// service's or a handler's registered name), which still pass one check
// before they reach the exporter.
func Own(v string) string {
	if Valid(v) {
		return v
	}
	return Other
}

// Set is a bounded set of label values: those registered when it is made,
// and up to a fixed number learned later, the first come. It is safe for
// concurrent use.
type Set struct {
	mu    sync.RWMutex
	known map[string]struct{}
	room  int // values Learn may still add
}

// NewSet returns a set of the valid values among registered that may learn
// up to learn more.
func NewSet(learn int, registered ...string) *Set {
	s := &Set{known: make(map[string]struct{}, len(registered)), room: max(learn, 0)}
	for _, v := range registered {
		if Valid(v) {
			s.known[v] = struct{}{}
		}
	}
	return s
}

// Of is v when the set holds it, else Other.
func (s *Set) Of(v string) string {
	s.mu.RLock()
	_, ok := s.known[v]
	s.mu.RUnlock()
	if ok {
		return v
	}
	return Other
}

// Learn adds v to the set while it has room and v is Valid, and returns Of(v).
func (s *Set) Learn(v string) string {
	if s.Of(v) == v || !Valid(v) {
		return s.Of(v)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.known[v]; ok {
		return v
	}
	if s.room == 0 {
		return Other
	}
	s.room--
	s.known[v] = struct{}{}
	return v
}

// Len is the number of values the set holds.
func (s *Set) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.known)
}
