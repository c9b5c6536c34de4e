package rpc

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hypha-go/hypha/internal/jsonlimit"
	"github.com/hypha-go/hypha/internal/jsonscan"
)

func TestDecodeRequest(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name    string
		body    string
		wantErr string // "" for success; else a substring of the error
		args    int
		kwargs  int
	}{
		{name: "nameko request", body: `{"args": [1, 2], "kwargs": {}}`, args: 2},
		{name: "kwargs only", body: `{"args": [], "kwargs": {"a": 1, "b": "x"}}`, kwargs: 2},
		{name: "brackets in strings", body: `{"args": ["` + strings.Repeat("[", 300) + `"], "kwargs": {}}`, args: 1},
		{name: "nesting at the limit", body: `{"args": ` + deep(jsonlimit.MaxDepth-1) + `, "kwargs": {}}`, args: 1},
		{name: "nesting over the limit", body: `{"args": ` + deep(jsonlimit.MaxDepth) + `, "kwargs": {}}`,
			wantErr: "JSON nested deeper than 128 levels"},
		{name: "deep garbage", body: strings.Repeat("[", 20000), wantErr: "JSON nested deeper than 128 levels"},
		{name: "null args", body: `{"args": null, "kwargs": {}}`, wantErr: "`args` must be a list, not null"},
		{name: "null kwargs", body: `{"args": [], "kwargs": null}`, wantErr: "`kwargs` must be an object, not null"},
		{name: "null body", body: `null`, wantErr: "Message missing `args` or `kwargs`"},
		{name: "empty body", body: ``, wantErr: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := decodeRequest(contentTypeJSON, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(argsOf(req)) != tt.args || len(kwargsOf(req)) != tt.kwargs {
				t.Errorf("got %d args and %d kwargs, want %d and %d", len(argsOf(req)), len(kwargsOf(req)), tt.args, tt.kwargs)
			}
		})
	}
}

func TestCheckReplyDepth(t *testing.T) {
	ok := []byte(`{"result": [[1]], "error": null}`)
	if err := checkReplyDepth(ok); err != nil {
		t.Errorf("checkReplyDepth(%s) = %v", ok, err)
	}
	deep := []byte(`{"result": ` + strings.Repeat("[", 200) + strings.Repeat("]", 200) + `, "error": null}`)
	err := checkReplyDepth(deep)
	var de *jsonlimit.DepthError
	if !errors.As(err, &de) || !strings.HasPrefix(err.Error(), "hypha: ") {
		t.Errorf("checkReplyDepth(200 levels) = %v, want a hypha: error wrapping *jsonlimit.DepthError", err)
	}
}

// panicky panics when it decodes the magic input, as a buggy UnmarshalJSON might.
type panicky struct{ S string }

func (p *panicky) UnmarshalJSON(b []byte) error {
	if string(b) == `"boom"` {
		panic("panicky: boom")
	}
	p.S = string(b)
	return nil
}

func TestBindRecoversUnmarshalPanic(t *testing.T) {
	b, err := newBinder(reflect.TypeFor[struct {
		P panicky `json:"p"`
	}]())
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.bind(request{args: []byte(`[]`), kwargs: []byte(`{"p": "boom"}`)})
	if err == nil || !strings.Contains(err.Error(), "decoding panicked: panicky: boom") {
		t.Errorf("bind = %v, want the panic as an error", err)
	}
}

// BenchmarkDecodeRequest decodes a 4 KiB request shaped like the bench's.
func BenchmarkDecodeRequest(b *testing.B) {
	body := []byte(`{"args": [1, 2, "` + strings.Repeat("x", 4096) + `"], "kwargs": {"a": {"b": [1, 2, 3]}}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRequest(contentTypeJSON, body); err != nil {
			b.Fatal(err)
		}
	}
}

// argsOf is a request's positional arguments, each as raw JSON.
func argsOf(req request) []json.RawMessage {
	args := []json.RawMessage{}
	for value := range jsonscan.Elements(req.args) {
		args = append(args, value)
	}
	return args
}

// kwargsOf is a request's keyword arguments, each as raw JSON.
func kwargsOf(req request) map[string]json.RawMessage {
	kwargs := map[string]json.RawMessage{}
	for name, value := range jsonscan.Members(req.kwargs) {
		kwargs[name] = value
	}
	return kwargs
}

func TestHeaderDeadline(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_000)
	for _, v := range []any{int64(1_700_000_000_000), int(1_700_000_000_000), 1.7e12, float32(1.7e12), uint64(1_700_000_000_000),
		"1700000000000", " 1700000000000 "} {
		if got := headerDeadline(map[string]any{deadlineHeader: v}); !got.Equal(at) && math.Abs(float64(got.Sub(at))) > float64(time.Minute) { // float32 holds it roughly
			t.Errorf("%T %v: deadline %v, want %v", v, v, got, at)
		}
	}
	for _, v := range []any{nil, math.NaN(), math.Inf(1), math.Inf(-1), 1e300, -1e300, int64(math.MaxInt64), uint64(math.MaxUint64),
		int64(math.MinInt64), int64(0), int32(-1), -0.5, "1e300", "Inf", "NaN", "", "soon", true, []any{int64(1)}} {
		if got := headerDeadline(map[string]any{deadlineHeader: v}); !got.IsZero() {
			t.Errorf("%T %v: deadline %v, want none", v, v, got)
		}
	}
}
