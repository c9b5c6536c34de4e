package contextdata_test

import (
	"context"
	"testing"

	"github.com/hypha-go/hypha/contextdata"
	"github.com/hypha-go/hypha/internal/ctxwire"
)

// Every built-in key is set and read (the user id by its own pair of
// functions, the others by With and String), travels as "nameko.<key>"
// (nameko's spelling), and comes back from the headers.
func TestEveryKeyTravels(t *testing.T) {
	with := func(key string) func(context.Context, string) context.Context {
		return func(ctx context.Context, v string) context.Context { return contextdata.With(ctx, key, v) }
	}
	get := func(key string) func(context.Context) string {
		return func(ctx context.Context) string { return contextdata.String(ctx, key) }
	}
	for _, tc := range []struct {
		key  string
		with func(context.Context, string) context.Context
		get  func(context.Context) string
	}{
		{contextdata.KeyUserID, contextdata.WithUserID, contextdata.UserID},
		{contextdata.KeyUserAgent, with(contextdata.KeyUserAgent), get(contextdata.KeyUserAgent)},
		{contextdata.KeyLanguage, with(contextdata.KeyLanguage), get(contextdata.KeyLanguage)},
		{contextdata.KeyAuthToken, with(contextdata.KeyAuthToken), get(contextdata.KeyAuthToken)},
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
			h := ctxwire.Headers(contextdata.From(ctx))
			if got := h["nameko."+tc.key]; got != "v-"+tc.key || len(h) != 1 {
				t.Fatalf("headers %v, want only nameko.%s", h, tc.key)
			}
			back := contextdata.WithData(context.Background(), ctxwire.FromHeaders(h))
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
