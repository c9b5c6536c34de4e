package contextdata_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/hypha-go/hypha/contextdata"
)

// Every built-in key is set and read by its own pair of functions, travels
// as "nameko.<key>" (nameko's spelling), and comes back from the headers.
func TestEveryKeyTravels(t *testing.T) {
	for _, tc := range []struct {
		key  string
		with func(context.Context, string) context.Context
		get  func(context.Context) string
	}{
		{contextdata.KeyUserID, contextdata.WithUserID, contextdata.UserID},
		{contextdata.KeyUserAgent, contextdata.WithUserAgent, contextdata.UserAgent},
		{contextdata.KeyLanguage, contextdata.WithLanguage, contextdata.Language},
		{contextdata.KeyAuthToken, contextdata.WithAuthToken, contextdata.AuthToken},
	} {
		t.Run(tc.key, func(t *testing.T) {
			ctx := context.Background()
			if got := tc.get(ctx); got != "" {
				t.Fatalf("unset: %q, want \"\"", got)
			}
			ctx = tc.with(ctx, "v-"+tc.key)
			if got := tc.get(ctx); got != "v-"+tc.key {
				t.Fatalf("got %q, want %q", got, "v-"+tc.key)
			}
			h := contextdata.Headers(contextdata.From(ctx))
			if got := h["nameko."+tc.key]; got != "v-"+tc.key || len(h) != 1 {
				t.Fatalf("headers %v, want only nameko.%s", h, tc.key)
			}
			back := contextdata.WithData(context.Background(), contextdata.FromHeaders(h))
			if got := tc.get(back); got != "v-"+tc.key {
				t.Fatalf("from the headers: %q, want %q", got, "v-"+tc.key)
			}
			// A value of another type, as a peer may send, reads as "".
			other := contextdata.With(ctx, tc.key, 42)
			if got := tc.get(other); got != "" {
				t.Fatalf("a number: %q, want \"\"", got)
			}
			if got := tc.get(contextdata.With(ctx, tc.key, nil)); got != "" {
				t.Fatalf("removed: %q, want \"\"", got)
			}
			// Setting one key leaves the others.
			if got := tc.get(contextdata.With(ctx, "other", "x")); got != "v-"+tc.key {
				t.Fatalf("after another key was set: %q", got)
			}
		})
	}
}

// Hypha's own headers that a nameko service sends back prefixed are not
// context data.
func TestReflectedHeadersAreNotData(t *testing.T) {
	h := map[string]any{
		"nameko.traceparent": "00-x", "nameko.tracestate": "a=b", "nameko.baggage": "k=v",
		"nameko.x-hypha-deadline": int64(1), "nameko.user_id": "u", "x-other": "o",
	}
	d := contextdata.FromHeaders(h)
	if len(d) != 1 || d[contextdata.KeyUserID] != "u" {
		t.Fatalf("FromHeaders = %v, want only user_id", d)
	}
}

// A call id over MaxCallIDSize keeps its end, cut on a character's start.
func TestPushCallIDClipsLongIDs(t *testing.T) {
	// Two bytes a rune, and an odd length: a cut by bytes would split one.
	id := strings.Repeat("é", contextdata.MaxCallIDSize) + ".ab"
	stack := contextdata.CallIDStack(contextdata.PushCallID(context.Background(), id, 5))
	if len(stack) != 1 {
		t.Fatalf("stack %d long, want 1", len(stack))
	}
	got := stack[0]
	if len(got) > contextdata.MaxCallIDSize || !utf8.ValidString(got) || !strings.HasSuffix(got, ".ab") {
		t.Fatalf("clipped id of %d bytes, valid UTF-8 %v, ends %q", len(got), utf8.ValidString(got), got[max(len(got)-3, 0):])
	}
	if err := contextdata.Check(contextdata.Headers(contextdata.From(contextdata.PushCallID(context.Background(), id, 5)))); err != nil {
		t.Fatalf("the pushed stack fails Check: %v", err)
	}
}

// Check refuses each bound it names, whatever shape the value has.
func TestCheckEveryBound(t *testing.T) {
	stackKey := contextdata.HeaderPrefix + contextdata.KeyCallIDStack
	long := strings.Repeat("x", contextdata.MaxCallIDSize+1)
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
		{"too many entries", map[string]any{stackKey: make([]string, contextdata.MaxCallIDs+1)}, "contextdata.MaxCallIDs"},
		{"an entry not a string", map[string]any{stackKey: []any{"a", int32(1)}}, "entry 1 is a int32"},
		{"not a list", map[string]any{stackKey: int64(1)}, "want a list of strings"},
		{"deep", map[string]any{"nameko.deep": deep}, "contextdata.MaxSize"},
		{"wide map", map[string]any{"nameko.wide": wide}, "contextdata.MaxSize"},
		{"long list", map[string]any{"nameko.list": []any{wide, wide}}, "contextdata.MaxSize"},
		{"bytes", map[string]any{"nameko.b": make([]byte, contextdata.MaxSize)}, "contextdata.MaxSize"},
		{"strings", map[string]any{"nameko.s": []string{strings.Repeat("s", contextdata.MaxSize)}}, "contextdata.MaxSize"},
		{"small values", map[string]any{"nameko.n": int64(1), "nameko.f": 1.5, "nameko.b": true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := contextdata.Check(tc.headers)
			switch {
			case tc.says == "" && err != nil:
				t.Fatalf("Check = %v, want within the bounds", err)
			case tc.says == "":
			case !errors.Is(err, contextdata.ErrOutOfBounds) || !strings.Contains(err.Error(), tc.says):
				t.Fatalf("Check = %v, want ErrOutOfBounds saying %q", err, tc.says)
			}
		})
	}
}
