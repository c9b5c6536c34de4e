package framework

import (
	"strings"
	"testing"

	"github.com/hypha-go/hypha/entrypoint"
)

type named string

func (n named) EntrypointName() string { return string(n) }
func (n named) Describe() entrypoint.Description {
	return entrypoint.Description{Kind: "test", Name: string(n)}
}

func names(r *entrypoint.Registry) string {
	var out []string
	for _, e := range r.Entrypoints() {
		out = append(out, e.EntrypointName())
	}
	return strings.Join(out, ",")
}

func TestKeepEntrypoints(t *testing.T) {
	tests := []struct {
		keep    []string
		want    string
		wantErr string
	}{
		{keep: []string{"b"}, want: "b"},
		{keep: []string{"c", "a"}, want: "a,c"},
		{keep: nil, want: ""},
		{keep: []string{"a", "x", "y"}, want: "a,b,c", wantErr: `service "svc" has no entrypoint "x", "y"; it has "a", "b", "c"`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.keep, "+"), func(t *testing.T) {
			r := entrypoint.NewRegistry("svc")
			for _, n := range []string{"a", "b", "c"} {
				r.Add(named(n))
			}
			r, err := keep(r, tt.keep...)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("keep = %v, want %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := names(r); got != tt.want {
				t.Errorf("entrypoints = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKeepForgetsTheRemovedNames(t *testing.T) {
	r := entrypoint.NewRegistry("svc")
	r.Add(named("a"))
	r.Add(named("b"))
	r, err := keep(r, "a")
	if err != nil {
		t.Fatal(err)
	}
	r.Add(named("b")) // no longer registered twice
	if err := r.Err(); err != nil || names(r) != "a,b" {
		t.Fatalf("after keep and Add: %q, %v", names(r), err)
	}
}
