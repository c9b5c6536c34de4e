package ctxwire_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hypha-go/hypha/internal/ctxwire"
)

// Hypha's own headers that a nameko service sends back prefixed are not
// context data.
func TestReflectedHeadersAreNotData(t *testing.T) {
	h := map[string]any{
		"nameko.traceparent": "00-x", "nameko.tracestate": "a=b", "nameko.baggage": "k=v",
		"nameko.x-hypha-deadline": int64(1), "nameko.user_id": "u", "x-other": "o",
	}
	d := ctxwire.FromHeaders(h)
	if len(d) != 1 || d["user_id"] != "u" {
		t.Fatalf("FromHeaders = %v, want only user_id", d)
	}
}

// A call id over MaxCallIDSize keeps its end, cut on a character's start.
func TestPushCallIDClipsLongIDs(t *testing.T) {
	// Two bytes a rune, and an odd length: a cut by bytes would split one.
	id := strings.Repeat("é", ctxwire.MaxCallIDSize) + ".ab"
	stack := ctxwire.PushCallID(nil, id, 5)
	if len(stack) != 1 {
		t.Fatalf("stack %d long, want 1", len(stack))
	}
	got := stack[0]
	if len(got) > ctxwire.MaxCallIDSize || !utf8.ValidString(got) || !strings.HasSuffix(got, ".ab") {
		t.Fatalf("clipped id of %d bytes, valid UTF-8 %v, ends %q", len(got), utf8.ValidString(got), got[max(len(got)-3, 0):])
	}
	if err := ctxwire.Check(ctxwire.Headers(map[string]any{ctxwire.KeyCallIDStack: ctxwire.PushCallID(nil, id, 5)})); err != nil {
		t.Fatalf("the pushed stack fails Check: %v", err)
	}
}

// Check refuses each bound it names, whatever shape the value has.
func TestCheckEveryBound(t *testing.T) {
	stackKey := ctxwire.Prefix + ctxwire.KeyCallIDStack
	long := strings.Repeat("x", ctxwire.MaxCallIDSize+1)
	deep := any("leaf")
	for range 40 {
		deep = []any{deep}
	}
	wide := map[string]any{}
	for i := range 1000 {
		wide[strings.Repeat("k", 8)+string(rune('a'+i%26))+strings.Repeat("z", i%50)] = strings.Repeat("v", 100)
	}
	for _, tc := range []struct {
		name    string
		headers map[string]any
		says    string // "" when within the bounds
	}{
		{"nil stack", map[string]any{stackKey: nil}, ""},
		{"one string", map[string]any{stackKey: "a.b.c"}, ""},
		{"[]string", map[string]any{stackKey: []string{"a", "b"}}, ""},
		{"[]string too long an entry", map[string]any{stackKey: []string{long}}, "contextdata.MaxCallIDSize"},
		{"too many entries", map[string]any{stackKey: make([]string, ctxwire.MaxCallIDs+1)}, "contextdata.MaxCallIDs"},
		{"an entry not a string", map[string]any{stackKey: []any{"a", int32(1)}}, "entry 1 is a int32"},
		{"not a list", map[string]any{stackKey: int64(1)}, "want a list of strings"},
		{"deep", map[string]any{"nameko.deep": deep}, "contextdata.MaxSize"},
		{"wide map", map[string]any{"nameko.wide": wide}, "contextdata.MaxSize"},
		{"long list", map[string]any{"nameko.list": []any{wide, wide}}, "contextdata.MaxSize"},
		{"bytes", map[string]any{"nameko.b": make([]byte, ctxwire.MaxSize)}, "contextdata.MaxSize"},
		{"strings", map[string]any{"nameko.s": []string{strings.Repeat("s", ctxwire.MaxSize)}}, "contextdata.MaxSize"},
		{"small values", map[string]any{"nameko.n": int64(1), "nameko.f": 1.5, "nameko.b": true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ctxwire.Check(tc.headers)
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("Check = %v, want within the bounds", err)
			case tc.says == "":
			case !errors.Is(err, ctxwire.ErrOutOfBounds) || !strings.Contains(err.Error(), tc.says):
				t.Fatalf("Check = %v, want ErrOutOfBounds saying %q", err, tc.says)
			}
		})
	}
}

// PushCallID keeps the newest limit entries, MaxCallIDs when limit is out of
// range, and leaves the stack it was given as it was.
func TestPushCallIDKeepsTheNewest(t *testing.T) {
	stack := make([]string, 0, 8)
	stack = append(stack, "a.x.1", "b.y.2")
	if got := ctxwire.PushCallID(stack, "c.z.3", 2); !slices.Equal(got, []string{"b.y.2", "c.z.3"}) {
		t.Fatalf("limit 2: %q", got)
	}
	if got := ctxwire.PushCallID(stack[:1], "d", 3); !slices.Equal(got, []string{"a.x.1", "d"}) || stack[1] != "b.y.2" {
		t.Fatalf("limit 3: %q, and the stack given became %q", got, stack)
	}
	long := make([]string, ctxwire.MaxCallIDs)
	for _, limit := range []int{0, -1, ctxwire.MaxCallIDs + 1} {
		if got := ctxwire.PushCallID(long, "new", limit); len(got) != ctxwire.MaxCallIDs || got[len(got)-1] != "new" {
			t.Fatalf("limit %d: %d entries ending %q, want %d ending \"new\"", limit, len(got), got[len(got)-1], ctxwire.MaxCallIDs)
		}
	}
}
